-- One row per run, trade date and dataset (silver.* = validated landing data, gold.* = gold tables).
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id          VARCHAR   NOT NULL,  -- chainsignals run id (also the staging folder name)
    flow_run_id     VARCHAR,             -- Prefect flow run id, when run under Prefect
    flow_name       VARCHAR,             -- nightly | backfill
    trade_date      DATE      NOT NULL,
    dataset         VARCHAR   NOT NULL,
    status          VARCHAR   NOT NULL,  -- success (failed runs change nothing; see `chainsignals status`)
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    rows_in         BIGINT,
    rows_out        BIGINT,
    rows_rejected   BIGINT
);
COMMENT ON TABLE pipeline_runs IS 'One row per run, trade date and dataset: what each published run read, wrote and rejected';
COMMENT ON COLUMN pipeline_runs.run_id IS 'chainsignals run id (also the staging folder name)';
COMMENT ON COLUMN pipeline_runs.flow_run_id IS 'Prefect flow run id, when run under Prefect';
COMMENT ON COLUMN pipeline_runs.flow_name IS 'nightly or backfill';
COMMENT ON COLUMN pipeline_runs.trade_date IS 'The session the counts are for';
COMMENT ON COLUMN pipeline_runs.dataset IS 'silver.<dataset> (validated landing data) or gold.<table>';
COMMENT ON COLUMN pipeline_runs.status IS 'success (failed runs change nothing; see chainsignals status)';
COMMENT ON COLUMN pipeline_runs.started_at IS 'When the stage started (UTC)';
COMMENT ON COLUMN pipeline_runs.finished_at IS 'When the stage finished (UTC)';
COMMENT ON COLUMN pipeline_runs.rows_in IS 'Rows read (rows)';
COMMENT ON COLUMN pipeline_runs.rows_out IS 'Rows written (rows)';
COMMENT ON COLUMN pipeline_runs.rows_rejected IS 'Rows quarantined, duplicates included (rows)';

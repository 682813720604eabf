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

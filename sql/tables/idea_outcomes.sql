-- One row per idea and run: how the idea stood at trade_date, the run's session (the gold partition of
-- transforms/outcomes.py). A run writes its live ideas and the ones it decided; the latest row per
-- idea_id is the idea's current outcome. Declared here so the views bind before the first outcome.
CREATE TABLE IF NOT EXISTS idea_outcomes (
    trade_date          DATE      NOT NULL,  -- as of this session (data dated on or before it)
    idea_id             VARCHAR   NOT NULL,  -- trade_ideas.idea_id
    idea_date           DATE      NOT NULL,  -- trade_ideas.trade_date
    symbol              VARCHAR   NOT NULL,
    rule                VARCHAR   NOT NULL,
    direction           VARCHAR   NOT NULL,  -- bullish | bearish
    instrument          VARCHAR   NOT NULL,  -- stock | call | put
    option_symbol       VARCHAR,             -- 21-char OSI, NULL for stock
    status              VARCHAR   NOT NULL,  -- pending | not_triggered | open | target_hit | stop_hit | expired
    triggered_on        DATE,
    entry_price         DOUBLE,              -- the underlying's: trigger level, or the open on a gap
    closed_on           DATE,                -- the hit session, or the window's last session
    exit_price          DOUBLE,              -- target/stop level (open on a gap) or the last close
    r_multiple          DOUBLE,
    sessions_walked     BIGINT,
    option_exit_mid     DOUBLE,              -- the contract's mid on closed_on, from the chain
    option_mid_source   VARCHAR,             -- chain | missing (options with an exit), else NULL
    option_r_multiple   DOUBLE               -- (option_exit_mid - entry_premium) / entry_premium
);

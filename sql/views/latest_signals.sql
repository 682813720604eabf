-- The most recent session's bias per symbol, with the levels and scenarios of that session.
CREATE OR REPLACE VIEW latest_signals AS
WITH latest_session AS (
    SELECT max(trade_date) AS trade_date FROM signals_daily
)
SELECT signals.*
FROM signals_daily AS signals
JOIN latest_session USING (trade_date)
ORDER BY signals.bias_score DESC, signals.symbol;

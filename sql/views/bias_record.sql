-- The bias score's record: how often a bullish (bearish) day was followed by a higher (lower) close
-- 1, 5 and 10 sessions later. Forward closes come from technicals_daily (the symbol's own next
-- sessions); a day counts at a horizon only when that forward close exists. Neutral days are left out.
CREATE OR REPLACE VIEW bias_record AS
WITH closes_with_forward AS (
    SELECT
        trade_date,
        symbol,
        close,
        lead(close, 1) OVER symbol_sessions AS close_1,
        lead(close, 5) OVER symbol_sessions AS close_5,
        lead(close, 10) OVER symbol_sessions AS close_10
    FROM technicals_daily
    WINDOW symbol_sessions AS (PARTITION BY symbol ORDER BY trade_date)
),
biased_days AS (
    SELECT signals.trade_date, signals.symbol, signals.bias, closes.close, closes.close_1, closes.close_5,
           closes.close_10
    FROM signals_daily AS signals
    JOIN closes_with_forward AS closes USING (trade_date, symbol)
    WHERE signals.bias IN ('bullish', 'bearish')
),
horizons AS (
    SELECT horizon_sessions::BIGINT AS horizon_sessions FROM (VALUES (1), (5), (10)) AS horizons (horizon_sessions)
),
forward_returns AS (
    SELECT
        biased_days.bias,
        horizons.horizon_sessions,
        CASE horizons.horizon_sessions
            WHEN 1 THEN biased_days.close_1
            WHEN 5 THEN biased_days.close_5
            WHEN 10 THEN biased_days.close_10
        END / biased_days.close - 1 AS forward_return
    FROM biased_days
    CROSS JOIN horizons
),
bias_horizons AS (
    SELECT biases.bias, horizons.horizon_sessions
    FROM (VALUES ('bullish'), ('bearish')) AS biases (bias)
    CROSS JOIN horizons
),
record AS (
    SELECT
        bias_horizons.bias,
        bias_horizons.horizon_sessions,
        count(returns.forward_return) AS days,
        count(*) FILTER (WHERE (bias_horizons.bias = 'bullish' AND returns.forward_return > 0)
                            OR (bias_horizons.bias = 'bearish' AND returns.forward_return < 0))
            AS followed_by_move_in_bias_direction,
        avg(returns.forward_return) * 100 AS mean_forward_return_pct
    FROM bias_horizons
    LEFT JOIN forward_returns AS returns
        ON returns.bias = bias_horizons.bias
        AND returns.horizon_sessions = bias_horizons.horizon_sessions
        AND returns.forward_return IS NOT NULL
    GROUP BY bias_horizons.bias, bias_horizons.horizon_sessions
)
SELECT
    bias,
    horizon_sessions,
    days,
    followed_by_move_in_bias_direction,
    followed_by_move_in_bias_direction::DOUBLE / nullif(days, 0) AS hit_rate,
    mean_forward_return_pct
FROM record
ORDER BY bias DESC, horizon_sessions;

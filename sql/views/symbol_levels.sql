-- One row per symbol and session: the numbers a note like SPEC 1 quotes, side by side.
CREATE OR REPLACE VIEW symbol_levels AS
SELECT
    technicals.trade_date,
    technicals.symbol,
    technicals.close,
    technicals.prev_close,
    technicals.change_pct,
    technicals.sma_30,
    technicals.sma_200,
    technicals.bb_lower,
    technicals.bb_middle,
    technicals.bb_upper,
    technicals.pivot_point,
    technicals.s1,
    technicals.r1,
    positioning.pcr_oi,
    positioning.call_wall,
    positioning.call_wall_oi,
    positioning.put_wall,
    positioning.put_wall_oi,
    positioning.max_pain,
    positioning.max_pain_expiration
FROM technicals_daily AS technicals
LEFT JOIN positioning_daily AS positioning
    ON positioning.trade_date = technicals.trade_date AND positioning.symbol = technicals.symbol;

-- Ideas still alive: their latest idea_outcomes row says pending (waiting for the trigger) or open
-- (triggered, neither target nor stop touched yet), with the close of the outcome's session. The idea
-- reads as in idea_display (direction, levels labelled as the underlying's and rounded to the cent,
-- premium per contract); entry price and close are rounded to the cent too. unrealized_r is the open
-- position's R at that close, from the unrounded levels of trade_ideas.
CREATE OR REPLACE VIEW open_ideas AS
WITH latest_outcomes AS (
    SELECT *
    FROM idea_outcomes
    QUALIFY row_number() OVER (PARTITION BY idea_id ORDER BY trade_date DESC) = 1
),
live_outcomes AS (
    SELECT * FROM latest_outcomes WHERE status IN ('pending', 'open')
)
SELECT
    outcomes.trade_date AS as_of,
    outcomes.status,
    display.trade_date AS idea_date,
    display.symbol,
    display.idea_id,
    display.rule,
    display.direction,
    display.instrument,
    display.contract,
    display.option_symbol,
    display.expiration,
    display.strike,
    display.entry_premium,
    display.premium_per_contract,
    display.trigger_level,
    display.trigger_direction,
    display.target,
    display.stop,
    display.risk_reward,
    display.trigger_text,
    display.target_text,
    display.stop_text,
    outcomes.triggered_on,
    round(outcomes.entry_price, 2) AS entry_price,
    outcomes.sessions_walked,
    round(closes.close, 2) AS last_close,
    CASE
        WHEN outcomes.status = 'open' AND ideas.direction = 'bullish'
            THEN (closes.close - outcomes.entry_price) / nullif(outcomes.entry_price - ideas.stop, 0)
        WHEN outcomes.status = 'open'
            THEN (outcomes.entry_price - closes.close) / nullif(ideas.stop - outcomes.entry_price, 0)
    END AS unrealized_r
FROM live_outcomes AS outcomes
JOIN trade_ideas AS ideas USING (idea_id)
JOIN idea_display AS display USING (idea_id)
LEFT JOIN technicals_daily AS closes ON closes.trade_date = outcomes.trade_date AND closes.symbol = display.symbol
ORDER BY display.symbol, display.trade_date, display.rule;

-- Ideas still alive: their latest idea_outcomes row says pending (waiting for the trigger) or open
-- (triggered, neither target nor stop touched yet), with the idea's levels and the close of the
-- outcome's session. unrealized_r is the open position's R at that close.
CREATE OR REPLACE VIEW open_ideas AS
WITH latest_outcomes AS (
    SELECT *
    FROM idea_outcomes
    QUALIFY row_number() OVER (PARTITION BY idea_id ORDER BY trade_date DESC) = 1
),
live_outcomes AS (
    SELECT * FROM latest_outcomes WHERE status IN ('pending', 'open')
),
live_ideas AS (
    SELECT
        outcomes.trade_date AS as_of,
        outcomes.status,
        ideas.trade_date AS idea_date,
        ideas.symbol,
        ideas.idea_id,
        ideas.rule,
        ideas.direction,
        ideas.instrument,
        ideas.option_symbol,
        ideas.expiration,
        ideas.strike,
        ideas.entry_premium,
        ideas.trigger_level,
        ideas.trigger_direction,
        ideas.target,
        ideas.stop,
        ideas.risk_reward,
        outcomes.triggered_on,
        outcomes.entry_price,
        outcomes.sessions_walked
    FROM live_outcomes AS outcomes
    JOIN trade_ideas AS ideas USING (idea_id)
),
closes_as_of AS (
    SELECT trade_date AS as_of, symbol, close FROM technicals_daily
)
SELECT
    live_ideas.*,
    closes_as_of.close AS last_close,
    CASE
        WHEN live_ideas.status = 'open' AND live_ideas.direction = 'bullish'
            THEN (closes_as_of.close - live_ideas.entry_price) / nullif(live_ideas.entry_price - live_ideas.stop, 0)
        WHEN live_ideas.status = 'open'
            THEN (live_ideas.entry_price - closes_as_of.close) / nullif(live_ideas.stop - live_ideas.entry_price, 0)
    END AS unrealized_r
FROM live_ideas
LEFT JOIN closes_as_of USING (as_of, symbol)
ORDER BY live_ideas.symbol, live_ideas.idea_date, live_ideas.rule;

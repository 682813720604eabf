-- The trade ideas of the most recent session as they read (idea_display: direction, levels labelled as
-- the underlying's and rounded to the cent, premium per contract), with the symbol's bias for context.
CREATE OR REPLACE VIEW todays_ideas AS
WITH latest_session AS (
    SELECT max(trade_date) AS trade_date FROM trade_ideas
),
ideas AS (
    SELECT idea_display.* FROM idea_display JOIN latest_session USING (trade_date)
)
SELECT
    ideas.*,
    signals.bias,
    signals.bias_score
FROM ideas
LEFT JOIN signals_daily AS signals USING (trade_date, symbol)
ORDER BY ideas.symbol, ideas.rule;

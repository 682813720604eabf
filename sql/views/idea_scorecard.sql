-- How each rule's ideas played out, per rule and direction, over all time and over the ideas of the last
-- 60 sessions (period = 'all' | 'last_60_sessions'). An idea's outcome is its latest idea_outcomes row;
-- an idea without one yet (made in the latest session) counts as pending.
-- hit_rate = target_hits / (target_hits + stop_hits); mean_r averages r_multiple over the ideas closed
-- with an exit (target_hit, stop_hit, expired).
CREATE OR REPLACE VIEW idea_scorecard AS
WITH latest_outcomes AS (
    SELECT *
    FROM idea_outcomes
    QUALIFY row_number() OVER (PARTITION BY idea_id ORDER BY trade_date DESC) = 1
),
sessions_newest_first AS (
    SELECT trade_date, row_number() OVER (ORDER BY trade_date DESC) AS sessions_ago
    FROM (SELECT DISTINCT trade_date FROM technicals_daily)
),
periods AS (
    SELECT 'all' AS period, DATE '0001-01-01' AS first_idea_date
    UNION ALL
    SELECT 'last_60_sessions' AS period, min(trade_date) AS first_idea_date
    FROM sessions_newest_first
    WHERE sessions_ago <= 60
),
rule_directions AS (
    SELECT DISTINCT rule, direction FROM trade_ideas
),
ideas_with_outcomes AS (
    SELECT
        ideas.rule,
        ideas.direction,
        ideas.trade_date AS idea_date,
        coalesce(outcomes.status, 'pending') AS status,
        outcomes.triggered_on,
        outcomes.r_multiple
    FROM trade_ideas AS ideas
    LEFT JOIN latest_outcomes AS outcomes USING (idea_id)
),
counts_per_period AS (
    SELECT
        rule_directions.rule,
        rule_directions.direction,
        periods.period,
        count(ideas.idea_date) AS ideas,
        count(ideas.triggered_on) AS triggered,
        count(*) FILTER (WHERE ideas.status = 'target_hit') AS target_hits,
        count(*) FILTER (WHERE ideas.status = 'stop_hit') AS stop_hits,
        count(*) FILTER (WHERE ideas.status = 'expired') AS expired,
        count(*) FILTER (WHERE ideas.status = 'not_triggered') AS not_triggered,
        count(*) FILTER (WHERE ideas.status = 'open') AS open,
        count(*) FILTER (WHERE ideas.status = 'pending') AS pending,
        avg(ideas.r_multiple) FILTER (WHERE ideas.status IN ('target_hit', 'stop_hit', 'expired')) AS mean_r
    FROM rule_directions
    CROSS JOIN periods
    LEFT JOIN ideas_with_outcomes AS ideas
        ON ideas.rule = rule_directions.rule
        AND ideas.direction = rule_directions.direction
        AND ideas.idea_date >= periods.first_idea_date
    GROUP BY rule_directions.rule, rule_directions.direction, periods.period
)
SELECT
    rule,
    direction,
    period,
    ideas,
    triggered,
    target_hits,
    stop_hits,
    expired,
    not_triggered,
    open,
    pending,
    target_hits::DOUBLE / nullif(target_hits + stop_hits, 0) AS hit_rate,
    mean_r
FROM counts_per_period
ORDER BY rule, direction, period;

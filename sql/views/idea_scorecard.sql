-- The scorecard: how each rule's ideas played out, per rule and direction, over all ideas and over the
-- ideas of the last 60 sessions (period = 'all' | 'last_60_sessions'; the second row only when it holds
-- fewer ideas than the first, as otherwise it repeats it). This file is the one definition: the view in
-- the warehouse, the report and `chainsignals backtest` (over its own ideas and outcomes) all run it.
-- An idea's outcome is its latest idea_outcomes row; an idea without one yet (made in the latest
-- session) counts as pending.
--   closed              = target_hits + stop_hits + expired: the ideas that exited (at the target, at
--                         the stop, or at the end of their window: an option's expiry, a stock idea's
--                         horizon). Every rate below rests on `closed` ideas: the count stands beside it.
--   hit_rate            = target_hits / closed
--   mean_r              = the mean r_multiple of the closed ideas (an exit whose entry gapped past its
--                         stop has no R: it counts in closed, not in mean_r)
--   expectancy          = the R summed over the closed ideas / (closed + not_triggered): what an idea
--                         earns on average once it is resolved, an idea that never triggered earning 0
--   worst_losing_streak = the longest run of consecutive losses (a stop_hit, or an exit with R < 0)
--                         among the closed ideas in the order they closed
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
        ideas.idea_id,
        ideas.symbol,
        ideas.rule,
        ideas.direction,
        ideas.trade_date AS idea_date,
        coalesce(outcomes.status, 'pending') AS status,
        outcomes.triggered_on,
        outcomes.closed_on,
        outcomes.r_multiple
    FROM trade_ideas AS ideas
    LEFT JOIN latest_outcomes AS outcomes USING (idea_id)
),
ideas_per_period AS (
    SELECT periods.period, ideas.*
    FROM ideas_with_outcomes AS ideas
    JOIN periods ON ideas.idea_date >= periods.first_idea_date
),
closed_in_order AS (
    SELECT
        rule,
        direction,
        period,
        status = 'stop_hit' OR coalesce(r_multiple < 0, FALSE) AS is_loss,
        row_number() OVER (PARTITION BY rule, direction, period ORDER BY closed_on, idea_date, symbol, idea_id)
        - row_number() OVER (PARTITION BY rule, direction, period, status = 'stop_hit' OR coalesce(r_multiple < 0, FALSE)
                             ORDER BY closed_on, idea_date, symbol, idea_id) AS run_id
    FROM ideas_per_period
    WHERE status IN ('target_hit', 'stop_hit', 'expired')
),
losing_streaks AS (
    SELECT rule, direction, period, max(losses) AS worst_losing_streak
    FROM (
        SELECT rule, direction, period, run_id, count(*) AS losses
        FROM closed_in_order
        WHERE is_loss
        GROUP BY rule, direction, period, run_id
    )
    GROUP BY rule, direction, period
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
        count(*) FILTER (WHERE ideas.status IN ('target_hit', 'stop_hit', 'expired')) AS closed,
        avg(ideas.r_multiple) FILTER (WHERE ideas.status IN ('target_hit', 'stop_hit', 'expired')) AS mean_r,
        sum(ideas.r_multiple) FILTER (WHERE ideas.status IN ('target_hit', 'stop_hit', 'expired')) AS total_r
    FROM rule_directions
    CROSS JOIN periods
    LEFT JOIN ideas_per_period AS ideas
        ON ideas.rule = rule_directions.rule
        AND ideas.direction = rule_directions.direction
        AND ideas.period = periods.period
    GROUP BY rule_directions.rule, rule_directions.direction, periods.period
),
scorecard AS (
    SELECT
        counts.rule,
        counts.direction,
        counts.period,
        counts.ideas,
        counts.triggered,
        counts.target_hits,
        counts.stop_hits,
        counts.expired,
        counts.not_triggered,
        counts.open,
        counts.pending,
        counts.closed,
        counts.target_hits::DOUBLE / nullif(counts.closed, 0) AS hit_rate,
        counts.mean_r,
        coalesce(counts.total_r, 0.0) / nullif(counts.closed + counts.not_triggered, 0) AS expectancy,
        coalesce(streaks.worst_losing_streak, 0) AS worst_losing_streak,
        max(counts.ideas) FILTER (WHERE counts.period = 'all')
            OVER (PARTITION BY counts.rule, counts.direction) AS ideas_all
    FROM counts_per_period AS counts
    LEFT JOIN losing_streaks AS streaks USING (rule, direction, period)
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
    closed,
    hit_rate,
    mean_r,
    expectancy,
    worst_losing_streak
FROM scorecard
WHERE period = 'all' OR ideas < ideas_all
ORDER BY rule, direction, period;

-- Each idea's current outcome: its latest idea_outcomes row (idea_outcomes keeps one snapshot per idea
-- and run, as of that run's session, so a reader without folder names sees every session's view of it).
CREATE OR REPLACE VIEW latest_idea_outcomes AS
SELECT *
FROM idea_outcomes
QUALIFY row_number() OVER (PARTITION BY idea_id ORDER BY trade_date DESC) = 1;

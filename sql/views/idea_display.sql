-- Every trade idea as it reads wherever it is shown (the CLI, the Prefect artifact, todays_ideas): the
-- direction; the trigger, target and stop labelled as the underlying's levels ("IWM above 250.94"), also
-- for option ideas, whose contract is bought at its premium; the premium per contract in dollars (mid x
-- 100); levels rounded to the cent (trade_ideas keeps full precision).
CREATE OR REPLACE VIEW idea_display AS
SELECT
    trade_date,
    symbol,
    idea_id,
    rule,
    direction,
    instrument,
    coalesce(option_symbol, 'stock') AS contract,
    option_symbol,
    expiration,
    strike,
    dte,
    contract_open_interest,
    round(entry_premium, 2) AS entry_premium,
    round(entry_premium * 100, 2) AS premium_per_contract,
    round(underlying_close, 2) AS underlying_close,
    round(trigger_level, 2) AS trigger_level,
    trigger_direction,
    round(target, 2) AS target,
    round(stop, 2) AS stop,
    round(risk_reward, 2) AS risk_reward,
    format('{} {} {:.2f}', symbol, trigger_direction, trigger_level) AS trigger_text,
    format('{} {:.2f}', symbol, target) AS target_text,
    format('{} {:.2f}', symbol, stop) AS stop_text,
    rationale
FROM trade_ideas;

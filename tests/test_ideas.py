"""Trade-idea rules (transforms/ideas.py, flows/config.py) against hand-computed contracts and levels.

The scenario is the note of SPEC section 1 for IWM on 2025-12-29: close 249.80, low 249.35, high 252.00,
bands 244.92 / 250.94 / 256.96, pivots R1 252.08 / S1 249.73, call wall 255 (next 266), put wall 240
(next 235), SMA 30 246.33, SMA 200 224.02, ATR 3.00.
"""

from __future__ import annotations

import copy
import re
import tomllib
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.config import DEFAULT_CONFIG, ConfigError, load_settings
from tests.builders import features, osi, silver_chain
from transforms.ideas import (
    EXPIRY_FIELDS,
    TRADE_IDEA_SCHEMA,
    RuleError,
    compile_rules,
    expiry_flags,
    option_chain,
    trade_ideas,
)
from transforms.positioning import strike_open_interest

D = date(2025, 12, 29)  # Monday
DEC31 = date(2025, 12, 31)  # dte 2: too near for the breakout rules (dte >= 3)
JAN02 = date(2026, 1, 2)  # weekly Friday, dte 4
JAN09 = date(2026, 1, 9)  # weekly Friday, dte 11
JAN12 = date(2026, 1, 12)  # Monday daily, dte 14: neither weekly nor monthly
JAN15 = date(2026, 1, 15)  # Thursday daily before a regular third Friday, dte 17
JAN16 = date(2026, 1, 16)  # third Friday: monthly, dte 18
FEB20 = date(2026, 2, 20)  # monthly, dte 53

DEFAULT_RAW = tomllib.loads(DEFAULT_CONFIG.read_text())["rules"]
RULES = {r.name: r for r in compile_rules(DEFAULT_RAW)}

IWM = {
    "trade_date": D,
    "symbol": "IWM",
    "open": 251.0,
    "high": 252.0,
    "low": 249.35,
    "close": 249.80,
    "bb_upper": 256.96,
    "bb_middle": 250.94,
    "bb_lower": 244.92,
    "r1": 252.08,
    "s1": 249.73,
    "sma_30": 246.33,
    "sma_200": 224.02,
    "atr_14": 3.0,
    "call_wall": 255.0,
    "call_wall_oi": 10_000,
    "next_call_wall": 266.0,
    "put_wall": 240.0,
    "put_wall_oi": 7_739,
    "next_put_wall": 235.0,
}


def chain(legs: list[tuple], trade_date: date = D) -> pl.LazyFrame:
    """A silver chain. legs: (underlying, expiration, option_type, strike, open_interest, bid); ask = bid + 0.2."""
    return silver_chain(
        [
            {
                "underlying": u,
                "expiration": e,
                "strike": float(k),
                "option_type": t,
                "open_interest": oi,
                "bid": bid,
                "ask": bid + 0.2,
                "mid": bid + 0.1,
            }
            for u, e, t, k, oi, bid in legs
        ],
        columns=[
            "trade_date",
            "underlying",
            "expiration",
            "strike",
            "option_type",
            "open_interest",
            "volume",
            "bid",
            "ask",
            "mid",
            "dte",
            "option_symbol",
        ],
        trade_date=trade_date,
        volume=10,
    )


def ideas(feats: pl.LazyFrame, chains: pl.LazyFrame, *names: str, rules=None) -> pl.DataFrame:
    chosen = rules if rules is not None else [RULES[n] for n in names]
    return trade_ideas(feats, option_chain(chains, strike_open_interest(chains)), chosen).collect()


def only(frame: pl.DataFrame, **match) -> dict:
    rows = frame.filter(*[pl.col(k) == v for k, v in match.items()]).to_dicts()
    assert len(rows) == 1, (match, frame)
    return rows[0]


# The IWM chain: calls around the call wall (255 itself is listed only on the too-near Dec 31), puts
# around the put wall, and puts for the protective put between the lower band (244.92) and spot.
IWM_LEGS = [
    ("IWM", DEC31, "C", 255, 900, 1.00),
    ("IWM", JAN02, "C", 250, 300, 3.00),
    ("IWM", JAN02, "C", 253, 200, 2.00),
    ("IWM", JAN02, "C", 256, 100, 1.50),  # nearest listed strike to the 255 wall on the chosen expiry
    ("IWM", JAN02, "C", 266, 100, 0.30),
    ("IWM", JAN09, "C", 255, 800, 2.50),  # the wall strike itself, but on a farther expiry
    ("IWM", JAN02, "P", 239, 100, 0.40),
    ("IWM", JAN02, "P", 241, 100, 0.60),  # 240 not listed: 239 and 241 tie, put_breakdown breaks ties DESC
    ("IWM", JAN12, "P", 247, 10, 2.80),
    ("IWM", JAN15, "P", 247, 10, 2.90),
    ("IWM", JAN16, "P", 240, 5_000, 1.00),  # below the lower band: not a protective-put candidate
    ("IWM", JAN16, "P", 245, 500, 2.00),
    ("IWM", JAN16, "P", 247, 100, 3.00),  # heaviest put strike in [244.92, 249.80] summed over expiries
    ("IWM", JAN16, "P", 250, 2_000, 4.00),  # above spot: not a candidate
    ("IWM", FEB20, "P", 247, 1_000, 5.00),
]


# --- compile_rules and load_settings ----------------------------------------------------------------


def test_default_config_compiles_four_rules_in_order():
    assert [r.name for r in compile_rules(DEFAULT_RAW)] == [
        "call_breakout",
        "protective_put",
        "stock_entry",
        "put_breakdown",
    ]
    rules = load_settings(DEFAULT_CONFIG).rules
    assert [(r.name, r.direction, r.instrument, r.option_type) for r in rules] == [
        ("call_breakout", "bullish", "call", "C"),
        ("protective_put", "bearish", "put", "P"),
        ("stock_entry", "bullish", "stock", None),
        ("put_breakdown", "bearish", "put", "P"),
    ]
    assert RULES["call_breakout"].strike_order == ("round(abs(strike - call_wall), 6) ASC", "strike ASC")


def _variant(index: int = 0, **changes) -> dict:
    raw = copy.deepcopy(DEFAULT_RAW[index])
    raw.update(changes)
    return raw


BAD_RULES = [
    pytest.param({"when": "close <"}, "when", id="sql-syntax"),
    pytest.param({"when": "SELECT close"}, "when", id="sql-statement"),
    pytest.param({"when": "closing_price > 1"}, "when", id="when-unknown-column"),
    pytest.param({"when": "strike > 1"}, "when", id="when-contract-column"),  # `when` sees features only
    pytest.param({"trigger": "bb_middel"}, "trigger", id="trigger-unknown-column"),
    pytest.param({"target": "next_call_wal + 1"}, "target", id="target-unknown-column"),
    pytest.param({"stop": "lowest"}, "stop", id="stop-unknown-column"),
    pytest.param({"expiry_filter": "days_left >= 3"}, "expiry_filter", id="expiry-filter-unknown-column"),
    pytest.param({"expiry_order": ["days_left ASC"]}, "expiry_order", id="expiry-order-unknown-column"),
    pytest.param({"strike_filter": "strik > 0"}, "strike_filter", id="strike-filter-unknown-column"),
    pytest.param({"strike_order": ["abs(strike - wall) DESC"]}, "strike_order", id="strike-order-unknown"),
    pytest.param(
        {"contract_filter": "premium >= 0.05"}, "contract_filter", id="contract-filter-unknown-column"
    ),
    pytest.param(
        {"rationale": "{symbol} at {closing_price}"}, "closing_price", id="rationale-unknown-column"
    ),
    pytest.param({"rationale": "{close:>10}"}, "close:>10", id="rationale-bad-format"),
    pytest.param({"rationale": "{close"}, "rationale", id="rationale-unclosed"),
    pytest.param({"direction": "up"}, "direction", id="bad-direction"),
    pytest.param({"instrument": "future"}, "instrument", id="bad-instrument"),
    pytest.param({"trigger_direction": "sideways"}, "trigger_direction", id="bad-trigger-direction"),
    # Type errors: caught at start-up, not mid-run by polars without the rule's name.
    pytest.param({"when": "close + 1"}, "when", id="when-not-boolean"),
    pytest.param({"strike_filter": "strike"}, "strike_filter", id="strike-filter-not-boolean"),
    pytest.param({"contract_filter": "mid"}, "contract_filter", id="contract-filter-not-boolean"),
    pytest.param({"trigger": "symbol"}, "trigger", id="trigger-text"),
    pytest.param({"target": "'266'"}, "target", id="target-text"),
]


@pytest.mark.parametrize(("changes", "fragment"), BAD_RULES)
def test_compile_rules_rejects_a_bad_rule_naming_it(changes, fragment):
    good = _variant(1)  # protective_put, unchanged, before the bad one
    bad = _variant(0, name="my_breakout", **changes)
    with pytest.raises(RuleError) as err:
        compile_rules([good, bad])
    message = str(err.value)
    assert "'my_breakout'" in message
    assert fragment in message
    assert "\n" not in message


def test_a_stock_rule_cannot_use_contract_columns_but_an_option_rule_can():
    with pytest.raises(RuleError, match="rule 'stock_entry': trigger"):
        compile_rules([_variant(2, trigger="strike")])
    with pytest.raises(RuleError, match="rule 'stock_entry': rationale names unknown column"):
        compile_rules([_variant(2, rationale="{bogus}")])
    # Option rules see the chosen contract; target/stop may use trigger_level.
    (rule,) = compile_rules(
        [
            _variant(
                0,
                trigger="strike + mid",
                target="trigger_level + 10",
                stop="trigger_level - mid",
                rationale="{option_symbol} {strike:.1f} {entry_premium} {risk_reward:.3f}",
            )
        ]
    )
    assert (rule.trigger, rule.target, rule.stop) == (
        "strike + mid",
        "trigger_level + 10",
        "trigger_level - mid",
    )


def test_compile_rules_rejects_duplicates_missing_fields_and_bad_names():
    with pytest.raises(RuleError, match="rule 'call_breakout' is declared twice"):
        compile_rules([_variant(0), _variant(1), _variant(0)])
    raw = _variant(3)
    del raw["stop"]
    with pytest.raises(RuleError, match=r"rule 'put_breakdown': missing field 'stop'"):
        compile_rules([raw])
    with pytest.raises(RuleError, match="Call-Breakout"):
        compile_rules([_variant(0, name="Call-Breakout")])
    assert compile_rules([]) == []


def _toml_with(rules_toml: str) -> str:
    return '[paths]\nwarehouse = "wh"\n\n[signals]\nbullish_at = 25\n\n' + rules_toml


GOOD_RULE = """
[[rules]]
name = "dip_buy"
direction = "bullish"
instrument = "stock"
when = "close < sma_30"
trigger = "s1"
trigger_direction = "below"
target = "sma_30"
stop = "trigger_level - atr_14"
rationale = "{symbol} {trigger_level}"
"""


def test_load_settings_reads_rules_from_a_toml_file(tmp_path, monkeypatch):
    for var in ("CHAINSIGNALS_CONFIG", "CHAINSIGNALS_WAREHOUSE", "CHAINSIGNALS_LANDING"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "custom.toml"
    path.write_text(_toml_with(GOOD_RULE))
    s = load_settings(path, warehouse=tmp_path / "wh")
    assert [r.name for r in s.rules] == ["dip_buy"]
    assert s.rules[0].stop == "trigger_level - atr_14"
    assert s.bullish_at == 25.0 and s.bearish_at == -20.0
    assert s.config_file == path
    assert s.landing == (tmp_path / "wh" / "landing").resolve()


@pytest.mark.parametrize(
    ("replace", "by", "fragment"),
    [
        ('when = "close < sma_30"', 'when = "close < sma_31"', "when"),
        ('target = "sma_30"', 'target = "sma_30 +"', "target"),
        ('rationale = "{symbol} {trigger_level}"', 'rationale = "{symbol} {tigger_level}"', "tigger_level"),
        ('direction = "bullish"', 'direction = "long"', "direction"),
        ('instrument = "stock"', 'instrument = "etf"', "instrument"),
    ],
)
def test_load_settings_fails_with_config_error_naming_file_and_rule(tmp_path, replace, by, fragment):
    path = tmp_path / "bad.toml"
    text = _toml_with(GOOD_RULE.replace(replace, by))
    assert by in text
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message and "'dip_buy'" in message and fragment in message
    assert "\n" not in message


def test_load_settings_duplicate_rule_and_unreadable_files(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(_toml_with(GOOD_RULE + GOOD_RULE))
    with pytest.raises(ConfigError, match="'dip_buy' is declared twice"):
        load_settings(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]\nname = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


# --- expiry_flags -----------------------------------------------------------------------------------


def _flags(expirations: list[date]) -> dict[date, dict]:
    frame = pl.DataFrame(
        {"expiration": expirations, "dte": [300] * len(expirations)},
        schema={"expiration": pl.Date, "dte": pl.Int64},
    )
    out = frame.with_columns(expiry_flags(pl.col("expiration"), pl.col("dte")))
    return {r["expiration"]: r for r in out.to_dicts()}


def test_expiry_flags_classify_weekly_monthly_quarterly():
    f = _flags(
        [
            date(2026, 1, 16),
            date(2026, 1, 2),
            date(2026, 6, 18),
            date(2026, 3, 31),
            date(2026, 1, 15),
            date(2025, 4, 17),
            date(2027, 6, 17),
            date(2026, 3, 20),
            date(2026, 2, 20),
            date(2026, 1, 22),
        ]
    )
    kinds = {d: (r["is_weekly"], r["is_monthly"], r["is_quarterly"]) for d, r in f.items()}
    assert kinds[date(2026, 1, 16)] == (False, True, False)  # third Friday
    assert kinds[date(2026, 1, 2)] == (True, False, False)  # first Friday
    assert kinds[date(2026, 6, 18)] == (False, True, False)  # Thursday: Friday 19 June is Juneteenth
    assert kinds[date(2025, 4, 17)] == (False, True, False)  # Thursday: Friday 18 April 2025 is Good Friday
    assert kinds[date(2027, 6, 17)] == (False, True, False)  # Thursday: Juneteenth 2027 observed Friday 18
    assert kinds[date(2026, 3, 31)] == (False, False, True)  # Tuesday, last day of Q1
    assert kinds[date(2026, 3, 20)] == (False, True, False)  # third Friday of March, not the quarter end
    assert kinds[date(2026, 2, 20)] == (False, True, False)
    # A Thursday daily expiry before a regular third Friday is not the monthly.
    assert kinds[date(2026, 1, 15)] == (True, False, False)
    assert kinds[date(2026, 1, 22)] == (True, False, False)


def test_expiry_flags_leaps_by_dte():
    frame = pl.DataFrame({"expiration": [date(2027, 1, 15)] * 2, "dte": [270, 271]})
    out = frame.with_columns(expiry_flags(pl.col("expiration"), pl.col("dte")))
    assert out["is_leaps"].to_list() == [False, True]


def test_monthly_matches_the_exchange_calendar_for_every_month():
    """Every month 2000-2026: the Friday 15-21 is monthly iff it is a session, else the Thursday before."""
    from flows.sources.calendar import sessions

    open_days = set(sessions(date(2000, 1, 3), date(2026, 12, 31)))
    third_fridays = []
    for year in range(2000, 2027):
        for month in range(1, 13):
            day = date(year, month, 15)
            third_fridays.append(day + timedelta(days=(4 - day.weekday()) % 7))
    thursdays = [f - timedelta(days=1) for f in third_fridays]
    f = _flags(third_fridays + thursdays)
    holidays = 0
    for friday, thursday in zip(third_fridays, thursdays, strict=True):
        friday_open = friday in open_days
        holidays += not friday_open
        if friday_open:  # a holiday Friday is never listed; its Thursday is the monthly instead
            assert f[friday]["is_monthly"], friday
        assert f[thursday]["is_monthly"] is (not friday_open), thursday
    assert holidays == 8  # Good Fridays 2000, 2003, 2008, 2014, 2019, 2022, 2025 and Juneteenth 2026
    assert f[date(2026, 6, 18)]["is_monthly"] and not f[date(2026, 5, 14)]["is_monthly"]


# --- call_breakout ----------------------------------------------------------------------------------


def test_listed_expirations_one_row_per_session_side_and_expiration():
    listed = (
        option_chain(chain(IWM_LEGS), strike_open_interest(chain(IWM_LEGS)))
        .expirations.collect()
        .sort("option_type", "expiration")
    )
    assert listed.columns == ["_listing", "trade_date", "symbol", "option_type", *EXPIRY_FIELDS]
    # Several strikes of one expiration are one row; DEC31 expires the day after D, so it is listed.
    assert listed.select("option_type", "expiration", "dte", "is_weekly", "is_monthly").rows() == [
        ("C", DEC31, 2, False, False),
        ("C", JAN02, 4, True, False),
        ("C", JAN09, 11, True, False),
        ("P", JAN02, 4, True, False),
        ("P", JAN12, 14, False, False),
        ("P", JAN15, 17, True, False),
        ("P", JAN16, 18, False, True),
        ("P", FEB20, 53, False, True),
    ]
    assert set(listed["trade_date"]) == {D} and set(listed["symbol"]) == {"IWM"}


def test_call_breakout_reproduces_the_note():
    out = ideas(features(IWM), chain(IWM_LEGS), "call_breakout")
    idea = only(out, rule="call_breakout")
    trigger, target, stop = 250.94, 266.0, 249.35  # close < bb_middle: the middle band
    assert idea == {
        "trade_date": D,
        "symbol": "IWM",
        "idea_id": idea["idea_id"],
        "rule": "call_breakout",
        "direction": "bullish",
        "instrument": "call",
        # dte >= 3 excludes Dec 31 (which lists 255 itself); on Jan 2 256 is nearest to the 255 wall.
        "option_symbol": "IWM   260102C00256000",
        "expiration": JAN02,
        "strike": 256.0,
        "dte": 4,
        "entry_premium": pytest.approx(1.60),
        "contract_open_interest": 100,
        "underlying_close": 249.80,
        "trigger_level": trigger,
        "trigger_direction": "above",
        "target": target,
        "stop": stop,
        "risk_reward": pytest.approx((266.0 - 250.94) / (250.94 - 249.35)),
        "rationale": "IWM 249.80 sits below its call wall at 255.00 (10000 contracts). Buy the 2026-01-02 "
        "256.00 call on a break above 250.94; target the next wall at 266.00, stop below "
        "today's low of 249.35.",
    }
    assert idea["risk_reward"] == pytest.approx(9.4716981, rel=1e-7)


def test_call_breakout_triggers_at_r1_when_price_is_above_the_middle_band():
    qqq = {
        **IWM,
        "symbol": "QQQ",
        "close": 252.0,
        "low": 251.0,
        "r1": 253.5,
        "call_wall": 260.0,
        "next_call_wall": 270.0,
    }
    legs = [("QQQ", JAN02, "C", 259, 10, 1.0), ("QQQ", JAN02, "C", 262, 10, 0.5)]
    idea = only(ideas(features(qqq), chain(legs), "call_breakout"), symbol="QQQ")
    assert (idea["trigger_level"], idea["target"], idea["stop"]) == (253.5, 270.0, 251.0)
    assert idea["risk_reward"] == pytest.approx((270.0 - 253.5) / (253.5 - 251.0))
    assert (idea["option_symbol"], idea["entry_premium"]) == ("QQQ   260102C00259000", pytest.approx(1.1))


def test_call_breakout_ties_go_to_the_lower_strike_and_only_listed_contracts_are_named():
    legs = [
        ("IWM", JAN02, "C", 254, 10, 2.0),
        ("IWM", JAN02, "C", 256, 10, 1.0),
        ("IWM", JAN09, "C", 255, 10, 3.0),
    ]
    idea = only(ideas(features(IWM), chain(legs), "call_breakout"), symbol="IWM")
    assert (idea["option_symbol"], idea["strike"]) == ("IWM   260102C00254000", 254.0)
    assert idea["entry_premium"] == pytest.approx(2.1)


def test_ideas_are_per_symbol_and_session():
    spy = {
        **IWM,
        "symbol": "SPY",
        "trade_date": D,
        "call_wall": 600.0,
        "next_call_wall": 610.0,
        "close": 590.0,
        "low": 588.0,
        "bb_middle": 595.0,
    }
    iwm_next = {**IWM, "trade_date": D + timedelta(days=1)}
    legs_d = [
        ("IWM", JAN02, "C", 256, 10, 1.5),
        ("SPY", JAN02, "C", 600, 10, 4.0),
        ("SPY", JAN02, "C", 256, 10, 9.0),
    ]
    legs_next = [("IWM", JAN02, "C", 255, 10, 1.8)]
    chains = pl.concat([chain(legs_d), chain(legs_next, trade_date=D + timedelta(days=1))])
    out = ideas(features(IWM, spy, iwm_next), chains, "call_breakout")
    assert out.select("trade_date", "symbol", "option_symbol", "dte").rows() == [
        (D, "IWM", "IWM   260102C00256000", 4),
        (D, "SPY", "SPY   260102C00600000", 4),
        (D + timedelta(days=1), "IWM", "IWM   260102C00255000", 3),
    ]
    assert only(out, symbol="SPY")["trigger_level"] == 595.0


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"low": 251.0}, "stop above the trigger"),
        ({"next_call_wall": 250.5}, "target below the trigger"),
        ({"low": 250.94}, "stop equal to the trigger"),
        ({"close": 256.0}, "price above the call wall: `when` is false"),
        ({"next_call_wall": None}, "no next wall"),
        ({"bb_middle": None}, "no middle band"),
    ],
)
def test_call_breakout_is_not_emitted_when_inconsistent_or_not_applicable(changes, why):
    out = ideas(features({**IWM, **changes}), chain(IWM_LEGS), "call_breakout")
    assert out.height == 0, why


def test_no_contract_no_option_idea_but_stock_ideas_remain():
    out = ideas(features(IWM), chain([("SPY", JAN02, "C", 600, 10, 1.0)]), rules=list(RULES.values()))
    assert out["rule"].to_list() == ["stock_entry"]
    # Calls only on expiries that are too near, or only puts: no call idea.
    too_near = [("IWM", DEC31, "C", 255, 10, 1.0), ("IWM", JAN02, "P", 241, 10, 1.0)]
    assert ideas(features(IWM), chain(too_near), "call_breakout").height == 0


def test_expired_and_same_day_contracts_are_never_named():
    legs = [
        ("IWM", D, "C", 255, 10, 1.0),
        ("IWM", D - timedelta(days=3), "C", 255, 10, 1.0),
        ("IWM", JAN02, "C", 262, 10, 0.2),
    ]
    strikes = [
        r["strike"]
        for r in option_chain(chain(legs), strike_open_interest(chain(legs))).contracts.collect().to_dicts()
    ]
    assert strikes == [262.0]
    idea = only(ideas(features(IWM), chain(legs), "call_breakout"), symbol="IWM")
    assert idea["option_symbol"] == "IWM   260102C00262000"


def with_mid(legs: list[tuple], mids: dict[float, float], trade_date: date = D) -> pl.LazyFrame:
    """chain(legs) with the mid of the given strikes replaced (a contract quoted under a nickel)."""
    mid = pl.col("mid")
    for strike, value in mids.items():
        mid = pl.when(pl.col("strike") == strike).then(value).otherwise(mid)
    return chain(legs, trade_date).with_columns(mid.alias("mid"))


def test_breakout_ideas_name_the_wall_strike_or_none_when_it_is_quoted_under_a_nickel():
    """SPEC 5: the call at the call-wall strike. When that contract is a lottery ticket (mid under 0.05)
    there is no idea; the rule does not move to a nearer, dearer strike the rationale would not match."""
    legs = [("IWM", JAN02, "C", 253, 10, 2.0), ("IWM", JAN02, "C", 255, 10, 0.01)]
    assert ideas(features(IWM), with_mid(legs, {255.0: 0.03}), "call_breakout").height == 0
    idea = only(ideas(features(IWM), with_mid(legs, {255.0: 0.05}), "call_breakout"), symbol="IWM")
    assert (idea["strike"], idea["entry_premium"]) == (255.0, 0.05)
    puts = [("IWM", JAN02, "P", 240, 10, 0.01), ("IWM", JAN02, "P", 242, 10, 1.0)]
    assert ideas(features(IWM), with_mid(puts, {240.0: 0.02}), "put_breakdown").height == 0
    assert only(ideas(features(IWM), chain(puts), "put_breakdown"), symbol="IWM")["strike"] == 240.0


def test_protective_put_is_dropped_not_moved_when_the_heaviest_strike_is_quoted_under_a_nickel():
    legs = [("IWM", JAN16, "P", 245, 500, 2.0), ("IWM", JAN16, "P", 247, 1_000, 0.01)]
    assert ideas(features(IWM), with_mid(legs, {247.0: 0.04}), "protective_put").height == 0
    assert only(ideas(features(IWM), chain(legs), "protective_put"), symbol="IWM")["strike"] == 247.0


def test_no_option_idea_names_a_contract_with_a_zero_bid():
    """A 0.00 bid / 0.10 ask has a mid of 0.05, not under a nickel, but nobody will sell it at 0.05 (the
    real SPX chain of 2019-05-22 named such a call): the default rules drop the idea, they do not move it."""
    zero_bid = pl.col("strike") == 255.0
    legs = [("IWM", JAN02, "C", 253, 10, 2.0), ("IWM", JAN02, "C", 255, 10, 0.0)]
    quoted = chain(legs).with_columns(
        pl.when(zero_bid).then(0.10).otherwise(pl.col("ask")).alias("ask"),
        pl.when(zero_bid).then(0.05).otherwise(pl.col("mid")).alias("mid"),
    )
    assert ideas(features(IWM), quoted, "call_breakout").height == 0
    bid = pl.when(zero_bid).then(0.01).otherwise(pl.col("bid"))
    assert (
        only(ideas(features(IWM), quoted.with_columns(bid.alias("bid")), "call_breakout"), symbol="IWM")[
            "strike"
        ]
        == 255.0
    )
    puts = [("IWM", JAN02, "P", 240, 10, 0.0), ("IWM", JAN02, "P", 242, 10, 1.0)]
    assert ideas(features(IWM), chain(puts), "put_breakdown").height == 0  # bid 0.00, mid 0.10
    legs = [("IWM", JAN16, "P", 245, 500, 2.0), ("IWM", JAN16, "P", 247, 1_000, 0.0)]
    assert ideas(features(IWM), chain(legs), "protective_put").height == 0
    assert all(
        "bid > 0" in RULES[name].contract_filter
        for name in ("call_breakout", "put_breakdown", "protective_put")
    )


def test_breakout_ideas_take_the_nearest_friday_expiry_not_a_quarter_end_wednesday():
    """'The nearest weekly': on Wednesday 2025-12-24 this Friday is 2 days out (under the 3-day minimum),
    Wednesday 12-31 is the quarter-end expiry, and Friday 2026-01-02 is the nearest weekly."""
    day = date(2025, 12, 24)
    legs = [
        ("IWM", date(2025, 12, 26), "C", 255, 10, 1.0),
        ("IWM", DEC31, "C", 255, 10, 1.0),
        ("IWM", JAN02, "C", 255, 10, 1.0),
    ]
    idea = only(
        ideas(features({**IWM, "trade_date": day}), chain(legs, trade_date=day), "call_breakout"),
        symbol="IWM",
    )
    assert (idea["expiration"], idea["dte"], idea["option_symbol"]) == (JAN02, 9, "IWM   260102C00255000")
    flags = option_chain(
        chain(legs, trade_date=day), strike_open_interest(chain(legs, trade_date=day))
    ).expirations
    assert flags.filter(pl.col("expiration") == DEC31).select(
        "is_weekly", "is_monthly", "is_quarterly"
    ).collect().row(0) == (False, False, True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    strikes=st.lists(st.integers(min_value=480, max_value=560), min_size=1, max_size=8, unique=True),
    wall=st.integers(min_value=500, max_value=520),
)
def test_the_named_call_is_a_listed_strike_nearest_the_wall(strikes, wall):
    """Whatever strikes are listed (a 0.5 grid), the idea names one of them: nearest the wall, ties lower.

    (On a 0.1 grid float noise can decide a tie: 250.8 - 246.4 > 255.2 - 250.8 in binary.)
    """
    legs = [("IWM", JAN02, "C", s / 2, 10, 1.0) for s in strikes]
    out = ideas(features({**IWM, "call_wall": wall / 2}), chain(legs), "call_breakout")
    idea = only(out, symbol="IWM")
    expected = min(strikes, key=lambda s: (abs(s - wall), s)) / 2
    assert idea["strike"] == expected
    assert idea["option_symbol"] == osi(JAN02, "C", expected, "IWM")


# --- protective_put, stock_entry, put_breakdown -----------------------------------------------------


def test_protective_put_picks_the_nearest_monthly_at_least_14_days_and_the_heaviest_put_strike():
    idea = only(ideas(features(IWM), chain(IWM_LEGS), "protective_put"), symbol="IWM")
    # Jan 12 (dte 14) is not monthly, Jan 15 is a daily Thursday, Jan 16 is the third Friday (dte 18).
    # Strikes in [244.92, 249.80]: 245 (put OI 500) and 247 (100 + Jan 12/15 10 + 10 + Feb 1000 = 1120).
    assert (idea["option_symbol"], idea["expiration"], idea["dte"]) == ("IWM   260116P00247000", JAN16, 18)
    assert idea["entry_premium"] == pytest.approx(3.1)
    assert idea["contract_open_interest"] == 100
    assert (idea["trigger_level"], idea["target"], idea["stop"]) == (244.92, 240.0, 250.94)
    assert idea["trigger_direction"] == "below" and idea["direction"] == "bearish"
    assert idea["risk_reward"] == pytest.approx((244.92 - 240.0) / (250.94 - 244.92))
    assert idea["rationale"] == (
        "Protective put for holders: the 2026-01-16 247.00 put (the heaviest put strike between the lower "
        "band and spot) hedges a drop below the lower band at 244.92; target 240.00, the hedge is no longer "
        "needed above 250.94."
    )


def test_protective_put_target_falls_back_to_two_atr_below_the_band():
    # Put wall above the lower band: target = bb_lower - 2 * atr_14.
    idea = only(ideas(features({**IWM, "put_wall": 246.0}), chain(IWM_LEGS), "protective_put"), symbol="IWM")
    assert idea["target"] == pytest.approx(244.92 - 6.0)


def test_protective_put_uses_the_juneteenth_thursday_monthly():
    day = date(2026, 6, 1)
    row = {**IWM, "trade_date": day}
    legs = [
        ("IWM", date(2026, 6, 12), "P", 247, 10, 1.0),  # weekly, dte 11
        ("IWM", date(2026, 6, 17), "P", 247, 10, 1.5),  # Wednesday, dte 16
        ("IWM", date(2026, 6, 18), "P", 247, 10, 2.0),  # the June monthly (Friday 19 is a holiday)
        ("IWM", date(2026, 7, 17), "P", 247, 10, 3.0),
    ]
    idea = only(ideas(features(row), chain(legs, trade_date=day), "protective_put"), symbol="IWM")
    assert (idea["option_symbol"], idea["dte"]) == ("IWM   260618P00247000", 17)


def test_protective_put_needs_a_strike_between_the_band_and_spot():
    legs = [leg for leg in IWM_LEGS if not (leg[1] == JAN16 and 244.92 <= leg[3] <= 249.8)]
    assert ideas(features(IWM), chain(legs), "protective_put").height == 0


def test_stock_entry_levels_and_rationale():
    out = ideas(features(IWM), chain([]), "stock_entry")
    idea = only(out, symbol="IWM")
    # support = the higher of S1 249.73 and SMA 30 246.33 (both below 249.80); stop = support - ATR/2.
    assert (idea["trigger_level"], idea["target"]) == (249.73, 256.96)
    assert idea["stop"] == pytest.approx(248.23)
    assert idea["risk_reward"] == pytest.approx((256.96 - 249.73) / 1.5)
    assert idea["option_symbol"] is None and idea["expiration"] is None and idea["entry_premium"] is None
    assert idea["instrument"] == "stock" and idea["trigger_direction"] == "below"
    assert idea["rationale"] == (
        "Stock: enter IWM near support at 249.73 (the higher of pivot S1 249.73 and SMA 30 246.33); target "
        "the upper band at 256.96, stop below support at 248.23. A break of the 200-day MA at 224.02 is the "
        "deeper risk line."
    )
    # S1 above the close: SMA 30 is the support.
    idea = only(ideas(features({**IWM, "s1": 250.5}), chain([]), "stock_entry"), symbol="IWM")
    assert idea["trigger_level"] == 246.33 and idea["stop"] == pytest.approx(244.83)


def test_put_breakdown_mirrors_the_call_breakout():
    idea = only(ideas(features(IWM), chain(IWM_LEGS), "put_breakdown"), symbol="IWM")
    # close 249.80 < bb_middle: trigger at S1; 239 and 241 tie around the 240 wall, DESC picks 241.
    assert (idea["option_symbol"], idea["dte"]) == ("IWM   260102P00241000", 4)
    assert (idea["trigger_level"], idea["target"], idea["stop"]) == (249.73, 235.0, 252.0)
    assert idea["risk_reward"] == pytest.approx((249.73 - 235.0) / (252.0 - 249.73))
    assert idea["rationale"].startswith(
        "IWM 249.80 sits above its put wall at 240.00 (7739 contracts). "
        "Buy the 2026-01-02 241.00 put on a break below 249.73;"
    )
    above = only(
        ideas(features({**IWM, "close": 251.5, "high": 252.5}), chain(IWM_LEGS), "put_breakdown"),
        symbol="IWM",
    )
    assert above["trigger_level"] == 250.94  # close above the middle band: trigger at the band
    # bearish consistency: stop (the high) below the trigger -> no idea
    assert ideas(features({**IWM, "high": 249.0}), chain(IWM_LEGS), "put_breakdown").height == 0


def test_every_option_idea_names_a_contract_of_the_chain_with_its_mid():
    chains = chain(IWM_LEGS)
    out = ideas(features(IWM), chains, rules=list(RULES.values()))
    assert out["rule"].to_list() == ["call_breakout", "protective_put", "put_breakdown", "stock_entry"]
    listed = {r["option_symbol"]: r for r in chains.collect().to_dicts()}
    for idea in out.filter(pl.col("instrument") != "stock").to_dicts():
        contract = listed[idea["option_symbol"]]
        assert (idea["expiration"], idea["strike"]) == (contract["expiration"], contract["strike"])
        assert idea["entry_premium"] == contract["mid"]
        assert contract["option_type"] == {"call": "C", "put": "P"}[idea["instrument"]]
    assert dict(out.schema) == TRADE_IDEA_SCHEMA


# --- idea_id, rationale formatting, empty rules -----------------------------------------------------


def test_idea_id_is_a_stable_16_hex_digest():
    all_rules = list(RULES.values())
    first = ideas(features(IWM), chain(IWM_LEGS), rules=all_rules)
    again = ideas(features(IWM), chain(IWM_LEGS), rules=all_rules)
    ids = first["idea_id"].to_list()
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == 4
    assert again["idea_id"].to_list() == ids
    # Another symbol in the same run does not move IWM's ids; another date does.
    spy = {**IWM, "symbol": "SPY"}
    with_spy = ideas(features(spy, IWM), chain(IWM_LEGS), rules=all_rules)
    assert with_spy.filter(pl.col("symbol") == "IWM")["idea_id"].to_list() == ids
    later = {**IWM, "trade_date": D + timedelta(days=1)}
    moved = ideas(features(later), chain(IWM_LEGS, trade_date=D + timedelta(days=1)), rules=all_rules)
    assert set(moved["idea_id"].to_list()).isdisjoint(ids)
    # A rule renamed (same levels, same contract) gets another id.
    renamed = compile_rules([_variant(2, name="stock_entry_2")])
    other = ideas(features(IWM), chain([]), rules=renamed)
    assert other["idea_id"].item() != only(first, rule="stock_entry")["idea_id"]


def test_rationale_formats_floats_with_two_decimals_or_the_given_precision():
    (rule,) = compile_rules(
        [
            _variant(
                2,
                name="fmt_check",
                rationale="{symbol}|{close}|{bb_middle}|{sma_200:.0f}|{trigger_level:.3f}|{call_wall_oi}|{trade_date}|"
                "{risk_reward:.1f}",
            )
        ]
    )
    idea = only(ideas(features({**IWM, "bb_middle": 250.935}), chain([]), rules=[rule]), symbol="IWM")
    assert idea["rationale"] == "IWM|249.80|250.94|224|249.730|10000|2025-12-29|4.8"


def test_no_rules_no_ideas():
    out = ideas(features(IWM), chain(IWM_LEGS), rules=[])
    assert out.height == 0 and dict(out.schema) == TRADE_IDEA_SCHEMA


@pytest.mark.parametrize(
    ("years", "expected"), [(None, 2), ("3", 3), ("1", None), ("2.5", None), ('"2"', None)]
)
def test_history_years_defaults_to_two_and_refuses_less_or_a_fraction(tmp_path, years, expected):
    text = DEFAULT_CONFIG.read_text()
    assert "\n[history]\nyears = 2 " in text  # the default file states it
    if years is not None:
        text = text.replace("\n[history]\nyears = 2 ", f"\n[history]\nyears = {years} ")
    else:
        text = text.replace("\n[history]\nyears = 2 ", "\n[history]\n# ")
    path = tmp_path / "history.toml"
    path.write_text(text)
    if expected is None:
        with pytest.raises(
            ConfigError, match=r"\[history\] years must be a whole number of at least 2"
        ) as err:
            load_settings(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    else:
        assert load_settings(path).history_years == expected


@pytest.mark.parametrize(
    ("sessions", "years", "ok"),
    [(60, 2, True), (504, 2, True), (505, 2, False), (505, 3, True), (0, 2, False)],
)
def test_the_put_call_history_must_fit_in_the_history_read(tmp_path, sessions, years, ok):
    text = (
        DEFAULT_CONFIG.read_text()
        .replace("pcr_history_sessions = 60 ", f"pcr_history_sessions = {sessions} ")
        .replace("\n[history]\nyears = 2 ", f"\n[history]\nyears = {years} ")
    )
    path = tmp_path / "pcr.toml"
    path.write_text(text)
    if ok:
        assert load_settings(path).pcr_history_sessions == sessions
    else:
        with pytest.raises(ConfigError, match=rf"pcr_history_sessions must be between 1 and {252 * years} "):
            load_settings(path)


# --- the rule vocabulary: the day's signals, min_risk_reward ---------------------------------------------


def test_a_rule_can_follow_the_days_bias_and_its_components():
    from transforms.features import SIGNAL_FEATURES, with_signals

    following = compile_rules(
        [
            _variant(
                2,
                name="stock_with_bias",
                when="bias = 'bullish' AND score_trend > 0 AND bias_score >= 25 AND sma_30 IS NOT NULL",
            )
        ]
    )
    signals = pl.DataFrame(
        [
            {"trade_date": D, "symbol": "IWM", "bias": "bullish", "bias_score": 30, "score_trend": 15.0},
            {"trade_date": D, "symbol": "QQQ", "bias": "bearish", "bias_score": -40, "score_trend": -15.0},
            {"trade_date": D, "symbol": "SPY", "bias": "bullish", "bias_score": 20, "score_trend": 10.0},
        ],
        schema={"trade_date": pl.Date, "symbol": pl.String, **SIGNAL_FEATURES},
    )
    feats = features(IWM, {**IWM, "symbol": "QQQ"}, {**IWM, "symbol": "SPY"}, {**IWM, "symbol": "DIA"})
    rows = trade_ideas(
        with_signals(feats, signals.lazy()),
        option_chain(chain([]), strike_open_interest(chain([]))),
        following,
    ).collect()
    # QQQ is bearish, SPY's score is under 25, DIA has no signals row (NULL bias): only IWM follows.
    assert rows["symbol"].to_list() == ["IWM"]
    assert rows["trigger_level"].to_list() == [249.73]


def test_min_risk_reward_per_rule_and_as_the_files_default(tmp_path):
    # stock_entry on IWM: reward 256.96 - 249.73 = 7.23 over risk 1.5, a risk/reward of 4.82.
    def emitted(**changes) -> bool:
        return ideas(features(IWM), chain([]), rules=compile_rules([_variant(2, **changes)])).height == 1

    assert emitted() and emitted(min_risk_reward=4.8) and not emitted(min_risk_reward=4.9)
    assert compile_rules([_variant(2)], min_risk_reward=5.0)[0].min_risk_reward == 5.0
    assert compile_rules([_variant(2, min_risk_reward=1)], min_risk_reward=5.0)[0].min_risk_reward == 1
    with pytest.raises(RuleError, match="min_risk_reward"):
        compile_rules([_variant(2, min_risk_reward=-1)])
    with pytest.raises(RuleError, match="min_risk_reward"):
        compile_rules([_variant(2, min_risk_reward="2")])
    # The global default ([ideas] min_risk_reward) reaches the rules without their own; 0 keeps the seed rules.
    assert {r.min_risk_reward for r in load_settings(DEFAULT_CONFIG).rules} == {0.0}
    config = tmp_path / "c.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("min_risk_reward = 0.0", "min_risk_reward = 1.5"))
    assert {r.min_risk_reward for r in load_settings(config).rules} == {1.5}

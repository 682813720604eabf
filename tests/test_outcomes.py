"""Idea outcomes (transforms/outcomes.py) on crafted price paths, with hand-computed entries, exits and R.

The default idea is bullish, triggered above 101, target 105, stop 99 (risk 2 points), dated S0, the
Monday 2026-01-05; S1..S9 are the sessions after it. Each bar is (open, high, low, close).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.gold import GoldValidationError, IdeaOutcomes, validate_gold
from tests.builders import BARS_SCHEMA, silver_bars
from transforms.outcomes import (
    BAR_COLUMNS,
    IDEA_OUTCOME_SCHEMA,
    exit_mid_sessions,
    idea_outcomes,
    outcomes_for_run,
    walk_from,
)

S = [
    date(2026, 1, 5) + timedelta(days=i)
    for i in range(28)
    if (date(2026, 1, 5) + timedelta(days=i)).weekday() < 5
]
# S[0] Mon 01-05 (the idea's session), S[1] 01-06, S[2] 01-07, S[3] 01-08, S[4] Fri 01-09, S[5] Mon 01-12

IDEA_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "idea_id": pl.String(),
    "symbol": pl.String(),
    "rule": pl.String(),
    "direction": pl.String(),
    "instrument": pl.String(),
    "option_symbol": pl.String(),
    "expiration": pl.Date(),
    "entry_premium": pl.Float64(),
    "trigger_level": pl.Float64(),
    "trigger_direction": pl.String(),
    "target": pl.Float64(),
    "stop": pl.Float64(),
}
BAR_SCHEMA: dict[str, pl.DataType] = {c: BARS_SCHEMA[c] for c in BAR_COLUMNS}  # what the walk reads of a bar
MID_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "option_symbol": pl.String(),
    "mid": pl.Float64(),
}

IDEA_DAY = (100.0, 101.5, 99.5, 100.5)  # crosses the trigger, but the idea's own session is not walked
QUIET = (100.5, 100.9, 99.8, 100.2)  # touches nothing
TRIGGER = (100.2, 102.0, 100.0, 101.8)  # high 102 >= 101, opened below it: entry 101
DRIFT = (101.8, 104.0, 101.0, 103.5)  # no target, no stop
TARGET = (103.5, 105.5, 103.0, 105.2)  # high 105.5 >= 105, opened below it: exit 105
CALL = "XYZ   260109C00105000"


def bars(*ohlc: tuple[float, float, float, float], symbol: str = "XYZ") -> pl.LazyFrame:
    return silver_bars(
        [
            {"trade_date": S[i], "open": o, "high": h, "low": lo, "close": c}
            for i, (o, h, lo, c) in enumerate(ohlc)
        ],
        columns=BAR_COLUMNS,
        symbol=symbol,
    )


def idea(**fields) -> dict:
    return {
        "trade_date": S[0],
        "idea_id": "a",
        "symbol": "XYZ",
        "rule": "call_breakout",
        "direction": "bullish",
        "instrument": "stock",
        "option_symbol": None,
        "expiration": None,
        "entry_premium": None,
        "trigger_level": 101.0,
        "trigger_direction": "above",
        "target": 105.0,
        "stop": 99.0,
        **fields,
    }


def option_idea(**fields) -> dict:
    return idea(
        **{"instrument": "call", "option_symbol": CALL, "expiration": S[4], "entry_premium": 1.20, **fields}
    )


def ideas(*rows: dict) -> pl.LazyFrame:
    return pl.DataFrame(list(rows), schema=IDEA_SCHEMA).lazy()


def mids(*rows: tuple[date, str, float | None]) -> pl.LazyFrame:
    return pl.DataFrame([dict(zip(MID_SCHEMA, r, strict=False)) for r in rows], schema=MID_SCHEMA).lazy()


def walk(path: pl.LazyFrame, as_of: date, *rows: dict, **kwargs) -> dict[str, dict]:
    out = idea_outcomes(ideas(*(rows or (idea(),))), path, as_of, **kwargs).collect()
    validate_gold(out, IdeaOutcomes)
    return {r["idea_id"]: r for r in out.to_dicts()}


def test_trigger_then_target():
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, TARGET, QUIET), S[5])["a"]
    assert got["status"] == "target_hit"
    assert (got["triggered_on"], got["entry_price"]) == (S[2], 101.0)
    assert (got["closed_on"], got["exit_price"]) == (S[4], 105.0)
    assert got["r_multiple"] == pytest.approx(2.0)  # (105 - 101) / (101 - 99)
    assert got["sessions_walked"] == 4
    assert got["trade_date"] == S[5] and got["idea_date"] == S[0]
    assert got["option_mid_source"] is None and got["option_exit_mid"] is None


def test_output_schema():
    out = idea_outcomes(ideas(idea()), bars(IDEA_DAY, QUIET), S[1])
    assert dict(out.collect_schema()) == IDEA_OUTCOME_SCHEMA
    assert dict(out.collect().schema) == IDEA_OUTCOME_SCHEMA


def test_stop_first():
    stop = (101.5, 102.5, 98.7, 99.2)  # low 98.7 <= 99
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, stop, TARGET), S[4])["a"]
    assert (got["status"], got["closed_on"], got["exit_price"]) == ("stop_hit", S[3], 99.0)
    assert got["r_multiple"] == pytest.approx(-1.0)
    assert got["sessions_walked"] == 3


def test_session_touching_target_and_stop_is_a_stop():
    both = (101.5, 105.5, 98.5, 100.0)
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, both, TARGET), S[4])["a"]
    assert (got["status"], got["closed_on"], got["exit_price"]) == ("stop_hit", S[3], 99.0)
    assert got["r_multiple"] == pytest.approx(-1.0)


def test_trigger_session_counts_for_target_and_stop():
    # The bar cannot order the trigger and the stop touch: the walk assumes the worst.
    trigger_and_stop = (100.2, 102.0, 98.9, 100.0)
    got = walk(bars(IDEA_DAY, QUIET, trigger_and_stop, TARGET), S[3])["a"]
    assert (got["status"], got["triggered_on"], got["closed_on"], got["exit_price"]) == (
        "stop_hit",
        S[2],
        S[2],
        99.0,
    )
    trigger_and_target = (100.2, 105.3, 100.0, 105.0)
    got = walk(bars(IDEA_DAY, QUIET, trigger_and_target, QUIET), S[3])["a"]
    assert (got["status"], got["triggered_on"], got["closed_on"], got["exit_price"]) == (
        "target_hit",
        S[2],
        S[2],
        105.0,
    )
    assert got["r_multiple"] == pytest.approx(2.0)
    assert got["sessions_walked"] == 2


def test_idea_session_is_not_walked_and_later_ideas_are_ignored():
    # IDEA_DAY crosses the trigger and the stop: only sessions after the idea count.
    crossing_day = (100.0, 105.5, 98.0, 100.0)
    got = walk(bars(crossing_day, QUIET, QUIET), S[2], idea(), idea(idea_id="later", trade_date=S[2]))
    assert set(got) == {"a"}
    assert (got["a"]["status"], got["a"]["triggered_on"], got["a"]["sessions_walked"]) == ("pending", None, 2)


def test_gap_through_trigger_enters_at_the_open():
    gap_up = (101.6, 102.0, 101.2, 101.8)
    got = walk(bars(IDEA_DAY, QUIET, gap_up, DRIFT, TARGET), S[4])["a"]
    assert (got["status"], got["triggered_on"], got["entry_price"], got["exit_price"]) == (
        "target_hit",
        S[2],
        101.6,
        105.0,
    )
    assert got["r_multiple"] == pytest.approx(3.4 / 2.6)  # (105 - 101.6) / (101.6 - 99)


def test_gap_through_target_exits_at_the_open():
    gap_over_target = (105.8, 106.5, 105.1, 106.0)
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, gap_over_target), S[4])["a"]
    assert (got["status"], got["closed_on"], got["exit_price"]) == ("target_hit", S[4], 105.8)
    assert got["r_multiple"] == pytest.approx(2.4)  # (105.8 - 101) / 2
    # The open is the one price whose time is known: it filled the target before the low reached the stop.
    gap_over_target_then_stop = (105.8, 106.5, 98.0, 98.5)
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, gap_over_target_then_stop), S[4])["a"]
    assert (got["status"], got["exit_price"]) == ("target_hit", 105.8)


def test_gap_through_stop_exits_at_the_open():
    gap_under_stop = (98.4, 99.5, 97.9, 99.0)
    got = walk(bars(IDEA_DAY, QUIET, TRIGGER, gap_under_stop), S[3])["a"]
    assert (got["status"], got["closed_on"], got["exit_price"]) == ("stop_hit", S[3], 98.4)
    assert got["r_multiple"] == pytest.approx(-1.3)  # (98.4 - 101) / 2


def test_open_beyond_stop_on_trigger_session_exits_at_the_level():
    # Opened under the stop, then rallied through the trigger: the open came before the entry.
    open_low_then_rally = (98.5, 101.5, 98.2, 101.0)
    got = walk(bars(IDEA_DAY, QUIET, open_low_then_rally), S[2])["a"]
    assert (got["status"], got["entry_price"], got["exit_price"], got["r_multiple"]) == (
        "stop_hit",
        101.0,
        99.0,
        -1.0,
    )


def test_stock_horizon_expires_at_the_last_close():
    path = bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, TARGET)
    got = walk(path, S[4], horizon_sessions=3)["a"]
    assert (got["status"], got["triggered_on"], got["closed_on"], got["exit_price"]) == (
        "expired",
        S[2],
        S[3],
        103.5,
    )
    assert got["r_multiple"] == pytest.approx(1.25)  # (103.5 - 101) / 2
    assert got["sessions_walked"] == 3
    never = walk(bars(IDEA_DAY, QUIET, QUIET, QUIET, TARGET), S[4], horizon_sessions=3)["a"]
    assert (never["status"], never["triggered_on"], never["closed_on"], never["exit_price"]) == (
        "not_triggered",
        None,
        S[3],
        None,
    )
    assert never["r_multiple"] is None


def test_default_stock_horizon_is_ten_sessions():
    path = bars(IDEA_DAY, QUIET, TRIGGER, *[DRIFT] * 9)
    assert walk(path, S[10])["a"]["status"] == "expired"
    assert walk(path, S[9])["a"]["status"] == "open"


def test_pending_and_open_mid_walk():
    path = bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, TARGET)
    pending = walk(path, S[1])["a"]
    assert (pending["status"], pending["triggered_on"], pending["closed_on"], pending["sessions_walked"]) == (
        "pending",
        None,
        None,
        1,
    )
    opened = walk(path, S[3])["a"]
    assert (opened["status"], opened["triggered_on"], opened["entry_price"], opened["closed_on"]) == (
        "open",
        S[2],
        101.0,
        None,
    )
    assert (opened["exit_price"], opened["r_multiple"], opened["sessions_walked"]) == (None, None, 3)


def test_option_not_triggered_before_expiry():
    # Expires Friday S4; the trigger is crossed on Monday S5, too late.
    path = bars(IDEA_DAY, QUIET, QUIET, QUIET, QUIET, TRIGGER, TARGET)
    got = walk(path, S[6], option_idea())["a"]
    assert (got["status"], got["triggered_on"], got["closed_on"], got["sessions_walked"]) == (
        "not_triggered",
        None,
        S[4],
        4,
    )
    assert (got["option_exit_mid"], got["option_mid_source"]) == (None, None)
    assert walk(path, S[3], option_idea())["a"]["status"] == "pending"


def test_option_expiring_on_a_weekend_ends_on_the_friday():
    saturday = S[4] + timedelta(days=1)
    path = bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, DRIFT, TARGET)
    got = walk(path, S[5], option_idea(expiration=saturday))["a"]
    assert (got["status"], got["closed_on"], got["exit_price"]) == ("expired", S[4], 103.5)
    # Saturday has no bar: at Friday's close the window is not over yet.
    assert walk(path, S[4], option_idea(expiration=saturday))["a"]["status"] == "open"


def test_bearish_mirror():
    idea_day, quiet = (100.0, 100.5, 97.5, 99.0), (99.0, 99.5, 98.2, 98.6)
    trigger = (98.6, 98.9, 97.0, 97.4)  # low 97 <= 98, opened above it: entry 98
    target = (97.4, 97.6, 93.5, 94.2)  # low 93.5 <= 94: exit 94
    bearish = {
        "direction": "bearish",
        "trigger_direction": "below",
        "trigger_level": 98.0,
        "target": 94.0,
        "stop": 101.0,
        "rule": "put_breakdown",
    }
    got = walk(bars(idea_day, quiet, trigger, target), S[3], idea(**bearish))["a"]
    assert (got["status"], got["triggered_on"], got["entry_price"], got["closed_on"], got["exit_price"]) == (
        "target_hit",
        S[2],
        98.0,
        S[3],
        94.0,
    )
    assert got["r_multiple"] == pytest.approx(4 / 3)  # (98 - 94) / (101 - 98)

    stop = (97.4, 101.5, 97.0, 100.8)
    got = walk(bars(idea_day, quiet, trigger, stop), S[3], idea(**bearish))["a"]
    assert (got["status"], got["exit_price"], got["r_multiple"]) == ("stop_hit", 101.0, -1.0)

    gap_down = (97.5, 97.9, 96.8, 97.0)  # opened under 98: entry 97.5
    got = walk(bars(idea_day, quiet, gap_down, target), S[3], idea(**bearish))["a"]
    assert (got["entry_price"], got["exit_price"], got["r_multiple"]) == (97.5, 94.0, 1.0)  # 3.5 / 3.5

    gap_under_target = (93.0, 93.6, 92.5, 93.2)
    got = walk(bars(idea_day, quiet, trigger, gap_under_target), S[3], idea(**bearish))["a"]
    assert (got["status"], got["exit_price"]) == ("target_hit", 93.0)
    assert got["r_multiple"] == pytest.approx(5 / 3)  # (98 - 93) / 3


def test_bullish_idea_triggered_below_support():
    # stock_entry: buy the dip to 100, target 104, stop 98.5.
    dip = {
        "trigger_level": 100.0,
        "trigger_direction": "below",
        "target": 104.0,
        "stop": 98.5,
        "rule": "stock_entry",
    }
    idea_day, rally = (101.0, 101.5, 100.5, 101.0), (100.5, 104.2, 100.3, 104.0)
    touch = (101.0, 101.2, 99.6, 100.5)
    got = walk(bars(idea_day, touch, rally), S[2], idea(**dip))["a"]
    assert (got["status"], got["entry_price"], got["exit_price"]) == ("target_hit", 100.0, 104.0)
    assert got["r_multiple"] == pytest.approx(4 / 1.5)

    gap_down = (99.5, 100.2, 99.0, 99.8)
    got = walk(bars(idea_day, gap_down, rally), S[2], idea(**dip))["a"]
    assert (got["entry_price"], got["r_multiple"]) == (
        99.5,
        pytest.approx(4.5),
    )  # (104 - 99.5) / (99.5 - 98.5)

    # Opened under the stop: filled at the open and stopped at the same price, no risk to measure R in.
    gap_under_stop = (98.0, 98.4, 97.5, 98.2)
    got = walk(bars(idea_day, gap_under_stop, rally), S[2], idea(**dip))["a"]
    assert (got["status"], got["entry_price"], got["exit_price"], got["r_multiple"]) == (
        "stop_hit",
        98.0,
        98.0,
        None,
    )


def test_option_exit_mid_from_the_chain_or_missing():
    path = bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, TARGET, QUIET)
    other = "XYZ   260109C00110000"
    chain = mids((S[3], CALL, 1.60), (S[4], CALL, 2.10), (S[5], CALL, 9.99), (S[4], other, None))
    rows = (
        option_idea(),
        option_idea(idea_id="b", option_symbol=other),
        option_idea(idea_id="c", option_symbol="XYZ   260109C00120000"),
        option_idea(idea_id="live", trade_date=S[3]),
        idea(idea_id="stock"),
    )
    got = walk(path, S[5], *rows, contract_mids=chain)
    assert (got["a"]["closed_on"], got["a"]["option_exit_mid"], got["a"]["option_mid_source"]) == (
        S[4],
        2.10,
        "chain",
    )
    assert got["a"]["option_r_multiple"] == pytest.approx(0.75)  # (2.10 - 1.20) / 1.20
    assert (got["b"]["option_exit_mid"], got["b"]["option_mid_source"], got["b"]["option_r_multiple"]) == (
        None,
        "missing",
        None,
    )  # listed that day, but without a mid
    assert (got["c"]["option_exit_mid"], got["c"]["option_mid_source"]) == (
        None,
        "missing",
    )  # not in the chain
    assert (got["live"]["status"], got["live"]["option_mid_source"]) == (
        "target_hit",
        "chain",
    )  # S4 touches 105
    assert got["stock"]["option_mid_source"] is None
    no_chains = walk(path, S[5], option_idea())["a"]
    assert (no_chains["option_exit_mid"], no_chains["option_mid_source"]) == (None, "missing")
    pending = walk(path, S[1], option_idea(), contract_mids=chain)["a"]
    assert (pending["status"], pending["option_mid_source"]) == ("pending", None)


def test_symbols_walk_their_own_bars():
    path = pl.concat(
        [
            bars(IDEA_DAY, QUIET, TRIGGER, DRIFT, TARGET),
            bars(IDEA_DAY, QUIET, QUIET, QUIET, QUIET, symbol="ABC"),
        ]
    )
    got = walk(path, S[4], idea(), idea(idea_id="b", symbol="ABC"))
    assert (got["a"]["status"], got["b"]["status"]) == ("target_hit", "pending")


def test_horizon_must_be_positive():
    with pytest.raises(ValueError, match="horizon_sessions"):
        idea_outcomes(ideas(idea()), bars(IDEA_DAY), S[1], horizon_sessions=0)


# ------------------------------------------------------------------ no lookahead, nightly == backfill
def market(
    seed: int = 7, n: int = 30, gaps: float = 0.0
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame, list[date]]:
    """Random walks for three symbols, ideas of four kinds every session, and a chain of mids.

    gaps: the share of bars left out at random, and CCC stops trading for the last 8 sessions (its
    stock ideas of its last sessions never reach their horizon): symbols walk their own sessions.
    """
    rng = np.random.default_rng(seed)
    days = [date(2025, 10, 1) + timedelta(days=i) for i in range(n * 2)]
    days = [d for d in days if d.weekday() < 5][:n]
    bar_rows, idea_rows, mid_rows = [], [], []
    for symbol in ("AAA", "BBB", "CCC"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        opens = close * np.exp(rng.normal(0, 0.006, n))
        highs = np.maximum(opens, close) * np.exp(np.abs(rng.normal(0, 0.008, n)))
        lows = np.minimum(opens, close) * np.exp(-np.abs(rng.normal(0, 0.008, n)))
        for i, d in enumerate(days):
            bar_rows.append(
                {
                    "trade_date": d,
                    "symbol": symbol,
                    "open": opens[i],
                    "high": highs[i],
                    "low": lows[i],
                    "close": close[i],
                }
            )
            c = close[i]
            expiry = d + timedelta(days=int(rng.integers(3, 16)))
            osi = f"{symbol}   {expiry:%y%m%d}C{round(float(c)) * 1000:08d}"
            kinds = [
                ("call_breakout", "bullish", "call", osi, expiry, c * 1.01, "above", c * 1.04, c * 0.985),
                ("stock_entry", "bullish", "stock", None, None, c * 0.99, "below", c * 1.03, c * 0.975),
                (
                    "put_breakdown",
                    "bearish",
                    "put",
                    osi[:12] + "P" + osi[13:],
                    expiry,
                    c * 0.99,
                    "below",
                    c * 0.96,
                    c * 1.015,
                ),
                ("fade", "bearish", "stock", None, None, c * 1.01, "above", c * 0.98, c * 1.025),
            ]
            for rule, direction, instrument, option_symbol, expiration, trig, trig_dir, target, stop in kinds:
                idea_rows.append(
                    {
                        "trade_date": d,
                        "idea_id": f"{symbol}-{d}-{rule}",
                        "symbol": symbol,
                        "rule": rule,
                        "direction": direction,
                        "instrument": instrument,
                        "option_symbol": option_symbol,
                        "expiration": expiration,
                        "entry_premium": 1.5 if option_symbol else None,
                        "trigger_level": trig,
                        "trigger_direction": trig_dir,
                        "target": target,
                        "stop": stop,
                    }
                )
                if option_symbol:
                    mid_rows += [
                        {
                            "trade_date": later,
                            "option_symbol": option_symbol,
                            "mid": float(rng.uniform(0.1, 4)),
                        }
                        for later in days[i + 1 : i + 12]
                        if rng.random() < 0.8
                    ]
    bar_frame = pl.DataFrame(bar_rows, schema=BAR_SCHEMA)
    if gaps:
        kept = pl.Series(np.random.default_rng(seed + 1).random(bar_frame.height) >= gaps)
        bar_frame = bar_frame.filter(kept & ((pl.col("symbol") != "CCC") | (pl.col("trade_date") < days[-8])))
    return (
        pl.DataFrame(idea_rows, schema=IDEA_SCHEMA).lazy(),
        bar_frame.lazy(),
        pl.DataFrame(mid_rows, schema=MID_SCHEMA).lazy(),
        days,
    )


def test_no_lookahead():
    idea_frame, bar_frame, mid_frame, days = market()
    statuses = set()
    for as_of in days[3::4]:
        full = idea_outcomes(idea_frame, bar_frame, as_of, mid_frame, horizon_sessions=5).collect()
        alone = idea_outcomes(
            idea_frame.filter(pl.col("trade_date") <= as_of),
            bar_frame.filter(pl.col("trade_date") <= as_of),
            as_of,
            mid_frame.filter(pl.col("trade_date") <= as_of),
            horizon_sessions=5,
        ).collect()
        assert_frame_equal(full, alone)
        validate_gold(full, IdeaOutcomes)
        statuses |= set(full.get_column("status"))
    assert statuses == {"pending", "not_triggered", "open", "target_hit", "stop_hit", "expired"}


@pytest.mark.parametrize(("seed", "gaps"), [(11, 0.0), (5, 0.1)])
def test_nightly_runs_add_up_to_a_backfill(seed: int, gaps: float):
    idea_frame, bar_frame, mid_frame, days = market(seed=seed, gaps=gaps)
    written, since, starts, priced_before_since = [], None, [], 0
    for as_of in days[1:]:
        # The nightly reads the ideas and bars from the oldest idea still open in the previous run's rows
        # on (from the oldest idea on in the first run), and the chains of exit_mid_sessions only.
        start = days[0] if since is None else walk_from(written[-1].lazy(), since).collect().item()
        starts.append(start)
        run_ideas, run_bars = (f.filter(pl.col("trade_date") >= start) for f in (idea_frame, bar_frame))
        run_mids = mid_frame.join(
            exit_mid_sessions(run_ideas, run_bars, as_of, since), on="trade_date", how="semi"
        )
        rows = outcomes_for_run(run_ideas, run_bars, as_of, since, run_mids, horizon_sessions=5).collect()
        if since is not None:  # expiries whose last session was before `since` (the symbol missed it)
            priced_before_since += rows.filter(
                (pl.col("closed_on") < since) & (pl.col("option_mid_source") == "chain")
            ).height
        # Every written row is that idea's row of the full computation at the same date.
        full = idea_outcomes(idea_frame, bar_frame, as_of, mid_frame, horizon_sessions=5).collect()
        assert_frame_equal(rows, full.join(rows.select("idea_id"), on="idea_id", how="semi"))
        written.append(rows)
        since = as_of
    history = pl.concat(written)
    latest = history.sort("trade_date").group_by("idea_id").last().drop("trade_date").sort("idea_id")
    backfill = idea_outcomes(idea_frame, bar_frame, days[-1], mid_frame, horizon_sessions=5).collect()
    assert_frame_equal(latest, backfill.drop("trade_date").sort("idea_id").select(latest.columns))
    assert set(latest.get_column("option_mid_source").drop_nulls()) == {"chain", "missing"}
    # A final row is written once: on the run of the session that decided it.
    finals = history.filter(pl.col("status").is_in(["target_hit", "stop_hit", "expired", "not_triggered"]))
    assert finals.get_column("idea_id").is_unique().all()
    hits = finals.filter(pl.col("status").is_in(["target_hit", "stop_hit"]))
    assert (hits.get_column("closed_on") == hits.get_column("trade_date")).all()
    assert len(history) < len(backfill) * 6  # bounded by the windows, not by the history's length
    assert (priced_before_since > 0) == (gaps > 0)  # with gaps, the case the mid sessions reach back for
    assert starts[-1] > days[len(days) // 2]  # the runs read weeks, not the history


def test_exit_mid_sessions_reach_back_to_a_symbols_last_session_before_since():
    # XYZ misses S3 (since) and S4 (as_of); ABC trades on. XYZ's call expiring S4 expires on S2's close.
    path = pl.concat([bars(IDEA_DAY, QUIET, QUIET), bars(IDEA_DAY, QUIET, QUIET, QUIET, QUIET, symbol="ABC")])
    frame = ideas(option_idea(), idea(idea_id="stock", symbol="ABC"))
    needed = exit_mid_sessions(frame, path, S[4], since=S[3]).collect().get_column("trade_date").to_list()
    assert needed == [S[2], S[4]]  # XYZ's last session by S3; every session after S3 (ABC's S4)
    only_abc_stock = exit_mid_sessions(ideas(idea(symbol="ABC")), path, S[4], since=S[3]).collect()
    assert only_abc_stock.get_column("trade_date").to_list() == [S[4]]  # no option idea: nothing back
    first_run = exit_mid_sessions(frame, path, S[2], since=None).collect()
    assert first_run.get_column("trade_date").to_list() == S[:3]
    chain = mids((S[2], CALL, 0.40), (S[3], CALL, 9.99))
    row = outcomes_for_run(
        frame, path, S[4], S[3], chain.join(pl.LazyFrame({"trade_date": needed}), on="trade_date", how="semi")
    ).collect()
    got = row.filter(pl.col("idea_id") == "a").row(0, named=True)
    assert (got["status"], got["closed_on"], got["option_exit_mid"], got["option_mid_source"]) == (
        "not_triggered",
        S[2],
        None,
        None,
    )  # never triggered: no exit to price
    triggered = ideas(option_idea(trigger_level=100.5), idea(idea_id="stock", symbol="ABC"))
    row = outcomes_for_run(triggered, path, S[4], S[3], chain).collect().filter(pl.col("idea_id") == "a")
    assert row.select("status", "closed_on", "option_exit_mid", "option_mid_source").row(0) == (
        "expired",
        S[2],
        0.40,
        "chain",
    )


def test_walk_from_is_the_oldest_open_idea():
    previous = pl.LazyFrame({"idea_date": [S[0], S[1], S[2]], "status": ["stop_hit", "open", "pending"]})
    assert walk_from(previous, S[3]).collect().item() == S[1]
    assert walk_from(previous.filter(pl.col("status") == "stop_hit"), S[3]).collect().item() == S[3]


def test_outcomes_for_run_by_hand():
    path = bars(IDEA_DAY, QUIET, TRIGGER, (101.5, 102.5, 98.7, 99.2), QUIET)  # stopped out on S3
    frame = ideas(idea(), idea(idea_id="new", trade_date=S[3]))
    on_s3 = outcomes_for_run(frame, path, S[3], since=S[2]).collect()
    assert on_s3.select("idea_id", "status", "closed_on").rows() == [("a", "stop_hit", S[3])]
    on_s4 = outcomes_for_run(frame, path, S[4], since=S[3]).collect()
    assert on_s4.select("idea_id", "status").rows() == [("new", "pending")]
    with pytest.raises(ValueError, match="since"):
        outcomes_for_run(frame, path, S[4], since=S[4])


def test_gold_model_rejects_inconsistent_rows():
    good = idea_outcomes(ideas(idea()), bars(IDEA_DAY, QUIET, TRIGGER), S[2]).collect()
    assert good.item(0, "status") == "open"
    with pytest.raises(GoldValidationError, match="status_fields"):
        validate_gold(good.with_columns(pl.lit(105.0).alias("exit_price")), IdeaOutcomes)  # open with an exit
    with pytest.raises(GoldValidationError, match="dates_ordered"):
        validate_gold(good.with_columns(pl.lit(S[3]).alias("triggered_on")), IdeaOutcomes)  # after as_of

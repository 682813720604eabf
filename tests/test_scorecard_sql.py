"""The analyst views over trade ideas and their outcomes (sql/views/idea_scorecard.sql, open_ideas.sql,
bias_record.sql) on small hand-made tables in an in-memory DuckDB, checked against hand counts.

Sessions D[0]..D[69] are 70 weekdays; the last 60 sessions start at D[10].
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from schemas.gold import GOLD_BY_NAME
from transforms.outcomes import IDEA_OUTCOME_SCHEMA

SQL = Path(__file__).resolve().parent.parent / "sql"
D = [d for d in (date(2025, 6, 2) + timedelta(days=i) for i in range(100)) if d.weekday() < 5][:70]

IDEA_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "symbol": pl.String(),
    "idea_id": pl.String(),
    "rule": pl.String(),
    "direction": pl.String(),
    "instrument": pl.String(),
    "option_symbol": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "entry_premium": pl.Float64(),
    "trigger_level": pl.Float64(),
    "trigger_direction": pl.String(),
    "target": pl.Float64(),
    "stop": pl.Float64(),
    "risk_reward": pl.Float64(),
}
# (idea_id, idea session, symbol, rule, direction, trigger, target, stop)
IDEAS = [
    ("i1", 5, "AAA", "call_breakout", "bullish", 101.0, 105.0, 99.0),
    ("i2", 20, "AAA", "call_breakout", "bullish", 101.0, 105.0, 99.0),
    ("i3", 30, "AAA", "call_breakout", "bullish", 101.0, 105.0, 99.0),
    ("i4", 40, "AAA", "call_breakout", "bullish", 101.0, 105.0, 99.0),
    ("i5", 68, "AAA", "call_breakout", "bullish", 101.0, 105.0, 99.0),
    ("i6", 69, "AAA", "call_breakout", "bullish", 104.0, 108.0, 102.0),  # no outcome row yet
    ("j1", 3, "AAA", "stock_entry", "bullish", 100.0, 104.0, 98.0),
    ("k1", 50, "BBB", "put_breakdown", "bearish", 98.0, 94.0, 101.0),
    ("k2", 50, "CCC", "put_breakdown", "bearish", 98.0, 94.0, 101.0),
    ("k3", 60, "AAA", "put_breakdown", "bearish", 104.0, 100.0, 106.0),
    ("k4", 67, "AAA", "put_breakdown", "bearish", 102.0, 98.0, 104.5),
]
# (idea_id, as_of session, status, triggered session, entry, closed session, exit, r); earlier rows first
OUTCOMES = [
    ("i1", 6, "pending", None, None, None, None, None),
    ("i1", 7, "open", 7, 101.0, None, None, None),
    ("i1", 8, "target_hit", 7, 101.0, 8, 105.0, 2.0),
    ("i2", 21, "open", 21, 101.0, None, None, None),
    ("i2", 22, "stop_hit", 21, 101.0, 22, 99.0, -1.0),
    ("i3", 40, "expired", 31, 101.0, 40, 102.0, 0.5),
    ("i3", 35, "open", 31, 101.0, None, None, None),  # an older row stored after the newer one
    ("i4", 45, "not_triggered", None, None, 45, None, None),
    ("i5", 69, "open", 69, 101.0, None, None, None),
    ("j1", 5, "stop_hit", 4, 100.0, 5, 98.0, -1.0),
    ("k1", 52, "target_hit", 51, 98.0, 52, 94.0, 4 / 3 + 1 / 6),  # R 1.5
    ("k2", 51, "stop_hit", 51, 100.5, 51, 100.5, None),  # opened past the stop: no R
    ("k3", 69, "open", 61, 104.0, None, None, None),
    ("k4", 68, "pending", None, None, None, None, None),
    ("k4", 69, "pending", None, None, None, None, None),
]
AAA_CLOSE = [100.0 + 0.05 * i for i in range(70)]  # D[69]: 103.45
BBB_CLOSE = [100.0, 102.0, 101.0, 103.0, 99.0, 104.0, 105.0, 100.0, 98.0, 97.0, 99.0, 101.0]  # on D[58..69]
BBB_BIAS = {0: "bullish", 1: "bearish", 3: "bullish", 5: "neutral", 10: "bearish", 11: "bullish"}


def ideas_frame() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "trade_date": D[day],
                "symbol": symbol,
                "idea_id": idea_id,
                "rule": rule,
                "direction": direction,
                "instrument": "stock",
                "option_symbol": None,
                "expiration": None,
                "strike": None,
                "entry_premium": None,
                "trigger_level": trigger,
                "trigger_direction": "above" if direction == "bullish" else "below",
                "target": target,
                "stop": stop,
                "risk_reward": abs(target - trigger) / abs(trigger - stop),
            }
            for idea_id, day, symbol, rule, direction, trigger, target, stop in IDEAS
        ],
        schema=IDEA_SCHEMA,
    )


def outcomes_frame() -> pl.DataFrame:
    ideas = {i[0]: i for i in IDEAS}

    def day(i):
        return D[i] if i is not None else None

    return pl.DataFrame(
        [
            {
                "trade_date": D[as_of],
                "idea_id": idea_id,
                "idea_date": D[ideas[idea_id][1]],
                "symbol": ideas[idea_id][2],
                "rule": ideas[idea_id][3],
                "direction": ideas[idea_id][4],
                "instrument": "stock",
                "option_symbol": None,
                "status": status,
                "triggered_on": day(triggered),
                "entry_price": entry,
                "closed_on": day(closed),
                "exit_price": exit_price,
                "r_multiple": r,
                "sessions_walked": as_of - ideas[idea_id][1],
                "option_exit_mid": None,
                "option_mid_source": None,
                "option_r_multiple": None,
            }
            for idea_id, as_of, status, triggered, entry, closed, exit_price, r in OUTCOMES
        ],
        schema=IDEA_OUTCOME_SCHEMA,
    )


def technicals_frame() -> pl.DataFrame:
    rows = [{"trade_date": D[i], "symbol": "AAA", "close": c} for i, c in enumerate(AAA_CLOSE)]
    rows += [{"trade_date": D[58 + i], "symbol": "BBB", "close": c} for i, c in enumerate(BBB_CLOSE)]
    return pl.DataFrame(rows, schema={"trade_date": pl.Date(), "symbol": pl.String(), "close": pl.Float64()})


def signals_frame() -> pl.DataFrame:
    rows = [{"trade_date": D[58 + i], "symbol": "BBB", "bias": bias} for i, bias in BBB_BIAS.items()]
    rows += [{"trade_date": D[i], "symbol": "AAA", "bias": "neutral"} for i in range(69)]
    rows.append({"trade_date": D[69], "symbol": "AAA", "bias": "bullish"})  # no forward close: left out
    return pl.DataFrame(rows, schema={"trade_date": pl.Date(), "symbol": pl.String(), "bias": pl.String()})


# trade_ideas columns the views read beyond IDEA_SCHEMA (idea_display shows them): NULL unless a test sets them.
DISPLAY_ONLY: dict[str, pl.DataType] = {
    "dte": pl.Int64(),
    "contract_open_interest": pl.Int64(),
    "underlying_close": pl.Float64(),
    "rationale": pl.String(),
}


def warehouse(
    ideas: pl.DataFrame, outcomes: pl.DataFrame, technicals: pl.DataFrame, signals: pl.DataFrame
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(GOLD_BY_NAME["idea_outcomes"].ddl())
    ideas = ideas.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in DISPLAY_ONLY.items() if c not in ideas.columns
    )
    for name, frame in {
        "trade_ideas": ideas,
        "technicals_daily": technicals,
        "signals_daily": signals,
        "new_outcomes": outcomes,
    }.items():
        con.register("frame", frame.to_arrow())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.execute("INSERT INTO idea_outcomes BY NAME SELECT * FROM new_outcomes")
    for view in ("idea_display", "idea_scorecard", "open_ideas", "bias_record"):
        con.execute((SQL / "views" / f"{view}.sql").read_text())
    return con


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return warehouse(ideas_frame(), outcomes_frame(), technicals_frame(), signals_frame())


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    return con.sql(sql).pl().to_dicts()


def test_scorecard_counts(con):
    got = {(r["rule"], r["period"]): r for r in rows(con, "SELECT * FROM idea_scorecard")}
    # put_breakdown's ideas are all in the last 60 sessions: that row would repeat 'all', so it is left out.
    assert list(got) == [
        ("call_breakout", "all"),
        ("call_breakout", "last_60_sessions"),
        ("put_breakdown", "all"),
        ("stock_entry", "all"),
        ("stock_entry", "last_60_sessions"),
    ]
    counts = (
        "ideas",
        "triggered",
        "target_hits",
        "stop_hits",
        "expired",
        "not_triggered",
        "open",
        "pending",
        "closed",
        "worst_losing_streak",
    )
    # i1..i6: i1 target (R 2), i2 stop (R -1), i3 expired (R 0.5), i4 not triggered, i5 open, i6 no row yet.
    assert [got["call_breakout", "all"][c] for c in counts] == [6, 4, 1, 1, 1, 1, 1, 1, 3, 1]
    # closed = target + stop + expired: hit rate and mean R rest on the same three ideas.
    assert got["call_breakout", "all"]["hit_rate"] == pytest.approx(1 / 3)
    assert got["call_breakout", "all"]["mean_r"] == pytest.approx((2.0 - 1.0 + 0.5) / 3)
    # expectancy: R over the closed ideas and the one that never triggered (0 R).
    assert got["call_breakout", "all"]["expectancy"] == pytest.approx((2.0 - 1.0 + 0.5) / 4)
    # i1 (D[5]) is older than the last 60 sessions (from D[10]).
    assert [got["call_breakout", "last_60_sessions"][c] for c in counts] == [5, 3, 0, 1, 1, 1, 1, 1, 2, 1]
    assert got["call_breakout", "last_60_sessions"]["hit_rate"] == 0.0
    assert got["call_breakout", "last_60_sessions"]["mean_r"] == pytest.approx(-0.25)
    assert got["call_breakout", "last_60_sessions"]["expectancy"] == pytest.approx(-0.5 / 3)
    # k2's stop has no R (it opened past the stop): it is closed and a loss, but mean_r is k1's alone.
    assert [got["put_breakdown", "all"][c] for c in counts] == [4, 3, 1, 1, 0, 0, 1, 1, 2, 1]
    assert got["put_breakdown", "all"]["hit_rate"] == pytest.approx(0.5)
    assert got["put_breakdown", "all"]["mean_r"] == pytest.approx(1.5)
    assert got["put_breakdown", "all"]["expectancy"] == pytest.approx(0.75)
    assert got["stock_entry", "all"]["direction"] == "bullish"
    assert [got["stock_entry", "all"][c] for c in counts] == [1, 1, 0, 1, 0, 0, 0, 0, 1, 1]
    assert (got["stock_entry", "all"]["hit_rate"], got["stock_entry", "all"]["mean_r"]) == (0.0, -1.0)
    # No stock_entry idea in the last 60 sessions: that differs from 'all', so the row is there, with zeros
    # and no rates.
    assert [got["stock_entry", "last_60_sessions"][c] for c in counts] == [0] * 10
    last_60 = got["stock_entry", "last_60_sessions"]
    assert (last_60["hit_rate"], last_60["mean_r"], last_60["expectancy"]) == (None, None, None)


def test_worst_losing_streak_counts_consecutive_losses_in_closing_order():
    # Five closed ideas of one rule, closing on D[1..5]: loss, loss, win, loss (R -0.2 at expiry), loss.
    day_r = [
        (1, "stop_hit", -1.0),
        (2, "stop_hit", -1.0),
        (3, "target_hit", 2.0),
        (4, "expired", -0.2),
        (5, "stop_hit", -1.0),
        (6, "stop_hit", -1.0),
    ]
    ideas = pl.DataFrame(
        [
            {
                "trade_date": D[0],
                "symbol": f"S{i}",
                "idea_id": f"x{i}",
                "rule": "r",
                "direction": "bullish",
                "instrument": "stock",
                "option_symbol": None,
                "expiration": None,
                "strike": None,
                "entry_premium": None,
                "trigger_level": 10.0,
                "trigger_direction": "above",
                "target": 12.0,
                "stop": 9.0,
                "risk_reward": 2.0,
            }
            for i in range(len(day_r))
        ],
        schema=IDEA_SCHEMA,
    )
    outcomes = pl.DataFrame(
        [
            {
                "trade_date": D[7],
                "idea_id": f"x{i}",
                "idea_date": D[0],
                "symbol": f"S{i}",
                "rule": "r",
                "direction": "bullish",
                "instrument": "stock",
                "option_symbol": None,
                "status": status,
                "triggered_on": D[1],
                "entry_price": 10.0,
                "closed_on": D[day],
                "exit_price": 10.0 + r,
                "r_multiple": r,
                "sessions_walked": day,
                "option_exit_mid": None,
                "option_mid_source": None,
                "option_r_multiple": None,
            }
            for i, (day, status, r) in enumerate(day_r)
        ],
        schema=IDEA_OUTCOME_SCHEMA,
    )
    card = rows(
        warehouse(ideas, outcomes, technicals_frame(), signals_frame()), "SELECT * FROM idea_scorecard"
    )
    assert [(r["period"], r["closed"], r["worst_losing_streak"]) for r in card] == [
        ("all", 6, 3),
        ("last_60_sessions", 0, 0),
    ]


def test_open_ideas(con):
    got = {r["idea_id"]: r for r in rows(con, "SELECT * FROM open_ideas")}
    assert list(got) == ["k3", "k4", "i5"]  # by symbol, idea date (D[60], D[67], D[68]), rule
    assert (got["i5"]["status"], got["i5"]["as_of"], got["i5"]["idea_date"], got["i5"]["triggered_on"]) == (
        "open",
        D[69],
        D[68],
        D[69],
    )
    assert (got["i5"]["trigger_level"], got["i5"]["target"], got["i5"]["stop"], got["i5"]["entry_price"]) == (
        101.0,
        105.0,
        99.0,
        101.0,
    )
    assert got["i5"]["last_close"] == pytest.approx(103.45)
    assert got["i5"]["unrealized_r"] == pytest.approx((103.45 - 101.0) / 2.0)
    assert got["k3"]["unrealized_r"] == pytest.approx((104.0 - 103.45) / 2.0)  # bearish: entry 104, stop 106
    assert (got["k4"]["status"], got["k4"]["entry_price"], got["k4"]["unrealized_r"]) == (
        "pending",
        None,
        None,
    )


def test_open_ideas_read_as_idea_display_rounded_to_the_cent_and_labelled_as_the_underlyings():
    """An open call idea with unrounded levels: the view prints them to the cent, labelled with the
    underlying (the levels are AAA's, not the option's), the premium per contract in dollars; its
    unrealized R comes from the unrounded levels."""
    idea = {
        "trade_date": D[68],
        "symbol": "AAA",
        "idea_id": "c1",
        "rule": "call_breakout",
        "direction": "bullish",
        "instrument": "call",
        "option_symbol": "AAA   250930C00105000",
        "expiration": date(2025, 9, 30),
        "strike": 105.0,
        "entry_premium": 1.23456,
        "trigger_level": 101.23456,
        "trigger_direction": "above",
        "target": 105.004999,
        "stop": 99.3351,
        "risk_reward": (105.004999 - 101.23456) / (101.23456 - 99.3351),
    }  # 1.985
    outcome = (
        outcomes_frame()
        .filter(pl.col("idea_id") == "i5")
        .with_columns(
            pl.lit("c1").alias("idea_id"),
            pl.lit("call").alias("instrument"),
            pl.lit(101.23456).alias("entry_price"),
        )
    )
    technicals = technicals_frame().with_columns(
        pl.when(pl.col("trade_date") == D[69]).then(103.456789).otherwise(pl.col("close")).alias("close")
    )
    con = warehouse(pl.DataFrame([idea], schema=IDEA_SCHEMA), outcome, technicals, signals_frame())
    (got,) = rows(con, "SELECT * FROM open_ideas")
    assert (got["status"], got["direction"], got["contract"]) == ("open", "bullish", "AAA   250930C00105000")
    assert (got["trigger_text"], got["target_text"], got["stop_text"]) == (
        "AAA above 101.23",
        "AAA 105.00",
        "AAA 99.34",
    )
    assert (got["trigger_level"], got["target"], got["stop"], got["risk_reward"]) == (
        101.23,
        105.0,
        99.34,
        1.99,
    )
    assert (got["entry_premium"], got["premium_per_contract"]) == (1.23, 123.46)
    assert (got["entry_price"], got["last_close"]) == (101.23, 103.46)
    assert got["unrealized_r"] == pytest.approx((103.456789 - 101.23456) / (101.23456 - 99.3351), rel=1e-12)


def test_bias_record(con):
    got = {(r["bias"], r["horizon_sessions"]): r for r in rows(con, "SELECT * FROM bias_record")}
    assert list(got) == [
        ("bullish", 1),
        ("bullish", 5),
        ("bullish", 10),
        ("bearish", 1),
        ("bearish", 5),
        ("bearish", 10),
    ]
    expected = {
        # bullish days: BBB idx 0 (100), 3 (103); idx 11 and AAA's last day have no forward close.
        ("bullish", 1): (2, 1, (2.0 + (99 / 103 - 1) * 100) / 2),  # 102/100, 99/103
        ("bullish", 5): (2, 1, ((104 / 100 - 1) + (98 / 103 - 1)) * 50),
        ("bullish", 10): (1, 0, -1.0),  # 99/100
        # bearish days: BBB idx 1 (102), 10 (99)
        ("bearish", 1): (2, 1, ((101 / 102 - 1) + (101 / 99 - 1)) * 50),
        ("bearish", 5): (1, 0, (105 / 102 - 1) * 100),
        ("bearish", 10): (1, 1, (101 / 102 - 1) * 100),
    }
    for key, (days, hits, mean_pct) in expected.items():
        row = got[key]
        assert (row["days"], row["followed_by_move_in_bias_direction"]) == (days, hits), key
        assert row["hit_rate"] == pytest.approx(hits / days), key
        assert row["mean_forward_return_pct"] == pytest.approx(mean_pct), key


def test_views_on_empty_tables():
    con = warehouse(
        ideas_frame().clear(), outcomes_frame().clear(), technicals_frame().clear(), signals_frame().clear()
    )
    assert rows(con, "SELECT * FROM idea_scorecard") == []
    assert rows(con, "SELECT * FROM open_ideas") == []
    record = rows(con, "SELECT * FROM bias_record")
    assert [(r["bias"], r["horizon_sessions"], r["days"], r["hit_rate"]) for r in record] == [
        ("bullish", 1, 0, None),
        ("bullish", 5, 0, None),
        ("bullish", 10, 0, None),
        ("bearish", 1, 0, None),
        ("bearish", 5, 0, None),
        ("bearish", 10, 0, None),
    ]


def test_views_are_create_or_replace():
    for view in ("idea_scorecard", "open_ideas", "bias_record"):
        assert f"CREATE OR REPLACE VIEW {view} AS" in (SQL / "views" / f"{view}.sql").read_text()


def test_ideas_read_unambiguously_in_idea_display_and_todays_ideas():
    ideas = pl.DataFrame(
        [
            {
                "trade_date": D[1],
                "symbol": "IWM",
                "idea_id": "c1",
                "rule": "call_breakout",
                "direction": "bullish",
                "instrument": "call",
                "option_symbol": "IWM   260102C00255000",
                "expiration": date(2026, 1, 2),
                "strike": 255.0,
                "entry_premium": 1.2345,
                "trigger_level": 250.944999,
                "trigger_direction": "above",
                "target": 266.0,
                "stop": 249.3549,
                "risk_reward": 15.0 / 1.59,
            },
            {
                "trade_date": D[1],
                "symbol": "IWM",
                "idea_id": "s1",
                "rule": "stock_entry",
                "direction": "bullish",
                "instrument": "stock",
                "option_symbol": None,
                "expiration": None,
                "strike": None,
                "entry_premium": None,
                "trigger_level": 249.73,
                "trigger_direction": "below",
                "target": 256.96,
                "stop": 248.23,
                "risk_reward": 4.82,
            },
            {
                "trade_date": D[0],
                "symbol": "IWM",
                "idea_id": "old",
                "rule": "stock_entry",
                "direction": "bullish",
                "instrument": "stock",
                "option_symbol": None,
                "expiration": None,
                "strike": None,
                "entry_premium": None,
                "trigger_level": 1.0,
                "trigger_direction": "below",
                "target": 3.0,
                "stop": 0.5,
                "risk_reward": 4.0,
            },
        ],
        schema=IDEA_SCHEMA,
    ).with_columns(
        pl.lit(None, dtype=pl.Int64).alias("dte"),
        pl.lit(None, dtype=pl.Float64).alias("underlying_close"),
        pl.lit("why").alias("rationale"),
    )
    signals = pl.DataFrame(
        {"trade_date": [D[1]], "symbol": ["IWM"], "bias": ["bearish"], "bias_score": [-30]}
    )
    con = warehouse(
        ideas, outcomes_frame().clear(), technicals_frame(), signals.select("trade_date", "symbol", "bias")
    )
    con.execute("DROP TABLE signals_daily")
    con.register("frame", signals.to_arrow())
    con.execute("CREATE TABLE signals_daily AS SELECT * FROM frame")
    for view in ("idea_display", "todays_ideas"):
        con.execute((SQL / "views" / f"{view}.sql").read_text())
    got = {r["idea_id"]: r for r in rows(con, "SELECT * FROM todays_ideas")}
    assert list(got) == ["c1", "s1"]  # the latest session only
    call = got["c1"]
    assert (call["direction"], call["contract"], call["premium_per_contract"]) == (
        "bullish",
        "IWM   260102C00255000",
        123.45,
    )
    assert (call["trigger_text"], call["target_text"], call["stop_text"]) == (
        "IWM above 250.94",
        "IWM 266.00",
        "IWM 249.35",
    )
    assert (call["trigger_level"], call["stop"], call["risk_reward"]) == (250.94, 249.35, 9.43)
    assert (call["bias"], call["bias_score"]) == ("bearish", -30)
    stock = got["s1"]
    assert (stock["contract"], stock["premium_per_contract"], stock["trigger_text"]) == (
        "stock",
        None,
        "IWM below 249.73",
    )

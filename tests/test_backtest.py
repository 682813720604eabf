"""`chainsignals backtest` (flows/stages/backtest.py) against what the nightly pipeline wrote for the same rules.

One small lake (the demo generator: three underlyings, 16 chain sessions) is built by the pipeline's own
stages; the backtest then reads its gold and silver only.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from flows.config import DEFAULT_CONFIG, load_rule_file, load_settings
from flows.stages.backtest import run_backtest, scorecard
from flows.storage.lake import Lake
from transforms.outcomes import FINAL_STATUSES, IDEA_OUTCOME_SCHEMA
from transforms.scorecard import bootstrap_mean_interval, mean_r_intervals

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SYMBOLS = ["SPY", "IWM", "AAPL"]
CHAIN_SESSIONS = 16


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A lake the pipeline built session by session, as the nightly would; and its settings."""
    from flows.market.simulator import generate_demo_market
    from flows.stages.gold import build_gold
    from flows.stages.ingest import ingest_and_validate
    from flows.stages.sessions import StageStats, gold_sessions

    root = tmp_path_factory.mktemp("backtest")
    market = generate_demo_market(
        root / "landing", symbols=SYMBOLS, sessions=260, chain_sessions=CHAIN_SESSIONS
    )
    settings = load_settings(warehouse=root / "wh", landing=root / "landing")
    ingest_and_validate(settings, "test", end=market.chain_sessions[-1])
    dates = gold_sessions(settings, market.chain_sessions[0], market.chain_sessions[-1])
    build_gold(settings, dates, StageStats())
    return settings, dates


def nightly(settings, table: str, schema: dict) -> pl.DataFrame:
    return Lake(settings.lake).scan("gold", table, schema).collect()


def latest_outcomes(settings, before_or_on=None) -> pl.DataFrame:
    rows = nightly(settings, "idea_outcomes", IDEA_OUTCOME_SCHEMA)
    if before_or_on is not None:
        rows = rows.filter(pl.col("trade_date") <= before_or_on)
    return rows.sort("trade_date").unique("idea_id", keep="last")


def by_idea(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([c for c in IDEA_OUTCOME_SCHEMA if c != "trade_date"]).sort("idea_id")


def test_backtest_equals_the_nightly_ideas_and_outcomes_row_for_row(built, tmp_path):
    settings, dates = built
    result = run_backtest(settings, {"config": settings.rules}, out=tmp_path / "bt.parquet")
    assert result.sessions == dates
    from transforms.ideas import TRADE_IDEA_SCHEMA

    gold_ideas = nightly(settings, "trade_ideas", TRADE_IDEA_SCHEMA).sort(
        "trade_date", "symbol", "rule", "idea_id"
    )
    ideas = result.ideas.drop("rule_set").sort("trade_date", "symbol", "rule", "idea_id")
    assert ideas.height > 40 and set(ideas["instrument"]) == {"stock", "call", "put"}
    assert ideas.equals(gold_ideas)
    # The nightly's latest row per idea (ideas of the last session have none yet: nor in the backtest).
    expected = by_idea(latest_outcomes(settings))
    got = by_idea(result.outcomes)
    assert got.equals(expected)
    statuses = set(got["status"])
    assert {"target_hit", "stop_hit"} <= statuses or {"stop_hit", "expired"} <= statuses, statuses
    # Written to the Parquet file, one row per idea; nothing to the lake's gold or a warehouse.
    written = pl.read_parquet(tmp_path / "bt.parquet")
    assert (
        written.height == ideas.height
        and written["status"].null_count() == ideas.filter(pl.col("trade_date") == dates[-1]).height
    )
    assert not settings.database.exists()


def test_no_lookahead_a_backtest_ending_earlier_gives_the_same_rows_except_what_was_open(built, tmp_path):
    settings, dates = built
    cut = dates[len(dates) // 2]
    early = run_backtest(settings, {"config": settings.rules}, end=cut, out=tmp_path / "early.parquet")
    late = run_backtest(settings, {"config": settings.rules}, out=tmp_path / "late.parquet")
    early_ideas = early.ideas.sort("idea_id")
    assert early_ideas.equals(late.ideas.filter(pl.col("trade_date") <= cut).sort("idea_id"))
    final = by_idea(early.outcomes.filter(pl.col("status").is_in(FINAL_STATUSES)))
    assert final.height > 5
    assert final.equals(by_idea(late.outcomes.join(final.select("idea_id"), on="idea_id", how="semi")))
    # And the early backtest is the nightly as it stood at the cut.
    assert by_idea(early.outcomes).equals(by_idea(latest_outcomes(settings, cut)))


def test_the_scorecard_is_the_views_definition_and_the_interval_is_seeded(built, tmp_path):
    settings, _ = built
    one = run_backtest(settings, {"config": settings.rules}, seed=3, out=tmp_path / "a.parquet")
    two = run_backtest(settings, {"config": settings.rules}, seed=3, out=tmp_path / "b.parquet")
    other = run_backtest(settings, {"config": settings.rules}, seed=4, out=tmp_path / "c.parquet")
    assert one.scorecard.equals(two.scorecard)
    assert not one.scorecard["mean_r_low"].equals(other.scorecard["mean_r_low"])
    closed = one.outcomes.filter(pl.col("status").is_in(["target_hit", "stop_hit", "expired"]))
    for row in one.scorecard.iter_rows(named=True):
        mine = closed.filter(pl.col("rule") == row["rule"])
        assert row["closed"] == mine.height
        assert row["target_hits"] == mine.filter(pl.col("status") == "target_hit").height
        if row["closed"]:
            assert row["hit_rate"] == pytest.approx(row["target_hits"] / row["closed"])
            assert row["mean_r"] == pytest.approx(mine["r_multiple"].mean())
            assert row["mean_r_low"] <= row["mean_r"] <= row["mean_r_high"]


def _with_nulls(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    return frame.with_columns(pl.lit(None, t).alias(c) for c, t in schema.items() if c not in frame.columns)


def _closed_ideas_in_chunks(n: int, chunks: int) -> tuple[pl.DataFrame, pl.DataFrame, list]:
    """n closed ideas of one rule, their R spread over six orders of magnitude (a sum that depends on
    the order it is added in), held in `chunks` chunks as a backtest's batches are."""
    from transforms.ideas import TRADE_IDEA_SCHEMA

    rng = np.random.default_rng(5)
    days = [date(2025, 1, 2) + timedelta(days=int(d)) for d in rng.integers(0, 60, n)]
    ids = [f"idea{i}" for i in range(n)]
    r = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3, n)
    rule = {"idea_id": ids, "rule": "r", "direction": "bullish"}
    ideas = _with_nulls(pl.DataFrame({**rule, "trade_date": days, "symbol": "SPX"}), TRADE_IDEA_SCHEMA)
    outcomes = _with_nulls(
        pl.DataFrame(
            {
                **rule,
                "trade_date": date(2025, 3, 31),
                "idea_date": days,
                "status": "stop_hit",
                "triggered_on": days,
                "closed_on": days,
                "r_multiple": r,
            }
        ),
        IDEA_OUTCOME_SCHEMA,
    )
    step = n // chunks
    ideas, outcomes = (
        pl.concat([frame[i : i + step] for i in range(0, n, step)], rechunk=False)
        for frame in (ideas, outcomes)
    )
    assert ideas.n_chunks() == outcomes.n_chunks() == chunks
    return ideas, outcomes, sorted(set(days))


def test_the_scorecard_is_bit_identical_run_to_run():
    # Split over many chunks, the ideas are scanned by several DuckDB threads at once, and a parallel avg
    # adds the rows in the order the threads finish: on more than one thread the mean's last bits vary.
    ideas, outcomes, sessions = _closed_ideas_in_chunks(20_000, 100)
    first = scorecard(ideas, outcomes, sessions)
    assert first["closed"].to_list() == [20_000]
    assert first["mean_r"][0] == pytest.approx(outcomes["r_multiple"].mean(), rel=1e-9)
    for _ in range(5):
        assert_frame_equal(scorecard(ideas, outcomes, sessions), first, check_exact=True)


def test_two_backtests_of_the_same_lake_rules_and_seed_are_bit_identical(built, tmp_path):
    settings, _ = built
    rule_sets = {"config": settings.rules, "variant": load_rule_file(RULES / "bias_following.toml", settings)}
    one = run_backtest(settings, rule_sets, seed=11, out=tmp_path / "one.parquet")
    two = run_backtest(settings, rule_sets, seed=11, out=tmp_path / "two.parquet")
    assert one.scorecard["closed"].sum() > 20
    assert_frame_equal(one.scorecard, two.scorecard, check_exact=True)
    assert_frame_equal(one.ideas, two.ideas, check_exact=True)
    assert_frame_equal(one.outcomes, two.outcomes, check_exact=True)


def test_bootstrap_interval_by_hand():
    # A constant has a zero-width interval; the interval depends on the seed and the key only.
    assert bootstrap_mean_interval(np.full(7, -1.0), seed=1) == (-1.0, -1.0)
    assert bootstrap_mean_interval(np.array([]), seed=1) == (None, None)
    values = np.array([-1.0, -0.97, 2.13, -1.0, 0.52, 3.07, -0.88, -1.0])
    low, high = bootstrap_mean_interval(values, seed=7, key="r")
    assert (low, high) == bootstrap_mean_interval(values, seed=7, key="r")
    assert (low, high) != bootstrap_mean_interval(values, seed=8, key="r")
    # The mean (0.10875) inside; the standard error is about 1.6 / sqrt(8) = 0.56: +- 1.96 of it, roughly.
    assert -1.3 < low < 0.10875 < high < 1.5
    frame = pl.DataFrame(
        {
            "rule": ["a"] * 8 + ["b"] * 2,
            "direction": ["bullish"] * 10,
            "status": ["stop_hit"] * 8 + ["target_hit", "open"],
            "idea_date": [None] * 10,
            "symbol": ["X"] * 10,
            "idea_id": [str(i) for i in range(10)],
            "r_multiple": [*values, 2.0, None],
        },
        schema_overrides={"idea_date": pl.Date},
    )
    got = {r["rule"]: r for r in mean_r_intervals(frame, ["rule", "direction"], seed=7).to_dicts()}
    assert (got["a"]["mean_r_low"], got["a"]["mean_r_high"]) == bootstrap_mean_interval(
        values, 7, "a|bullish"
    )
    assert (got["b"]["mean_r_low"], got["b"]["mean_r_high"]) == (2.0, 2.0)  # the open idea is not closed


def test_the_seed_note_file_declares_the_configs_rules():
    settings = load_settings(DEFAULT_CONFIG)
    assert load_rule_file(RULES / "seed_note.toml", settings) == settings.rules
    variant = load_rule_file(RULES / "bias_following.toml", settings)
    assert {r.min_risk_reward for r in variant} == {1.5}


def test_cli_backtest_prints_both_rule_sets_and_writes_only_its_file(built, tmp_path):
    from flows.cli.app import app

    settings, dates = built
    lake_files = sorted(str(p) for p in Path(settings.lake).rglob("*.parquet"))
    out = tmp_path / "cli.parquet"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            str(RULES / "bias_following.toml"),
            "--baseline",
            "--out",
            str(out),
            "--warehouse",
            str(settings.warehouse),
            "--start",
            dates[2].isoformat(),
        ],
        env={**os.environ, "COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"backtest {dates[2]}..{dates[-1]} ({len(dates) - 2} sessions)" in text
    for name in ("baseline", "bias_following", "call_breakout", "stock_entry", "95% CI"):
        assert name in text
    assert out.exists() and set(pl.read_parquet(out)["rule_set"]) <= {"baseline", "bias_following"}
    assert sorted(str(p) for p in Path(settings.lake).rglob("*.parquet")) == lake_files
    bad = CliRunner().invoke(
        app, ["backtest", str(tmp_path / "missing.toml"), "--warehouse", str(settings.warehouse)]
    )
    assert bad.exit_code == 2 and "rule file not found" in bad.output


# An option rule on some symbols and sessions only (never SPY; AAPL only on days it closed above its
# SMA 20), one that sizes by the strike totals (never SPY), and a stock rule on every symbol.
SOME_RULES = """
[[rules]]
name = "call_some"
direction = "bullish"
instrument = "call"
when = "symbol <> 'SPY' AND (symbol = 'IWM' OR close > sma_20) AND close < call_wall AND next_call_wall IS NOT NULL AND bb_middle IS NOT NULL"
expiry_filter = "(is_weekly OR is_monthly) AND dte >= 3"
strike_order = ["round(abs(strike - call_wall), 6) ASC", "strike ASC"]
contract_filter = "bid > 0"
trigger = "CASE WHEN close < bb_middle THEN bb_middle ELSE r1 END"
trigger_direction = "above"
target = "next_call_wall"
stop = "low"
rationale = "{symbol}: the {expiration} {strike} call, {strike_call_oi} calls at the strike"

[[rules]]
name = "put_some"
direction = "bearish"
instrument = "put"
when = "symbol <> 'SPY' AND bb_lower IS NOT NULL AND close > bb_lower"
expiry_filter = "is_monthly AND dte >= 14"
strike_filter = "strike >= bb_lower AND strike <= close"
strike_order = ["strike_put_oi DESC", "strike ASC"]
trigger = "bb_lower"
trigger_direction = "below"
target = "bb_lower - 2 * atr_14"
stop = "bb_middle"

[[rules]]
name = "stock_all"
direction = "bullish"
instrument = "stock"
when = "close IS NOT NULL"
trigger = "close * 0.99"
trigger_direction = "below"
target = "close * 1.05"
stop = "close * 0.95"
"""


def _whole_chain_ideas(lake, dates, rules):
    """The ideas of trade_ideas over every contract of the sessions' chains (the nightly's way)."""
    from flows.stages.backtest import CHAIN_COLUMNS, expiry_yardsticks, rule_rows
    from transforms.ideas import option_chain, trade_ideas
    from transforms.positioning import strike_open_interest

    chains = lake.scan("silver", "chains", CHAIN_COLUMNS, dates=dates).collect().lazy()
    chain = option_chain(chains, strike_open_interest(chains), expiry_yardsticks(lake, dates, None))
    return trade_ideas(rule_rows(lake, dates, None).lazy(), chain, rules).collect(), chains.collect()


def test_the_pruned_chain_read_gives_the_whole_chains_ideas_and_mids(built, tmp_path, monkeypatch):
    from flows.stages import backtest

    settings, dates = built
    lake = Lake(settings.lake)
    (tmp_path / "some.toml").write_text(SOME_RULES)
    rules = load_rule_file(tmp_path / "some.toml", settings)
    read = []
    listed_chain = backtest.listed_chain
    monkeypatch.setattr(backtest, "listed_chain", lambda chains: read.append(chains) or listed_chain(chains))

    first, later = dates[:8], dates[8:]
    ideas, mids = backtest.session_ideas(lake, first, {"some": rules}, None)
    expected, chains = _whole_chain_ideas(lake, first, rules)
    got = ideas["some"]
    assert got.equals(expected)
    calls, puts = got.filter(pl.col("rule") == "call_some"), got.filter(pl.col("rule") == "put_some")
    assert set(calls["symbol"]) == {"IWM", "AAPL"} and set(puts["symbol"]) == {"IWM", "AAPL"}
    # AAPL's call rule fired on some sessions only; SPY has stock ideas, and no option rule read its chain.
    aapl_days = set(calls.filter(pl.col("symbol") == "AAPL")["trade_date"])
    assert 0 < len(aapl_days) < len(first)
    assert got.filter(pl.col("symbol") == "SPY")["rule"].unique().to_list() == ["stock_all"]
    assert set(read[0]["underlying"]) == {"IWM", "AAPL"}
    # The strike totals the rationale quotes: every live call's OI at that strike, summed by hand.
    idea = calls.row(0, named=True)
    calls_at_strike = chains.filter(
        (pl.col("trade_date") == idea["trade_date"])
        & (pl.col("underlying") == idea["symbol"])
        & (pl.col("strike") == idea["strike"])
        & (pl.col("option_type") == "C")
        & (pl.col("expiration") > pl.col("trade_date"))
    )["open_interest"].sum()
    assert calls_at_strike > 0
    assert idea["rationale"] == (
        f"{idea['symbol']}: the {idea['expiration']} {idea['strike']:.2f} call, {calls_at_strike} calls at the strike"
    )
    # The mids of the named contracts in these sessions: every one of their chain rows.
    assert mids.sort("trade_date", "option_symbol").equals(
        chains.filter(pl.col("option_symbol").is_in(got["option_symbol"].drop_nulls().implode()))
        .select("trade_date", "option_symbol", "mid")
        .sort("trade_date", "option_symbol")
    )

    # Later sessions with stock rules only: no option rule reads the chain, but the contracts named
    # before still get their exit mids (their underlyings only are read).
    stock = tuple(r for r in rules if r.instrument == "stock")
    named = backtest.named_contracts(got).unique()
    ideas, mids = backtest.session_ideas(lake, later, {"stock": stock}, None, named)
    expected, chains = _whole_chain_ideas(lake, later, stock)
    assert ideas["stock"].equals(expected) and ideas["stock"]["option_symbol"].null_count() == expected.height
    assert set(read[1]["underlying"]) == {"IWM", "AAPL"}
    want = chains.filter(pl.col("option_symbol").is_in(named["option_symbol"].implode()))
    assert want.height > 0
    assert mids.sort("trade_date", "option_symbol").equals(
        want.select("trade_date", "option_symbol", "mid").sort("trade_date", "option_symbol")
    )
    # Nothing named and no option rule: no chain row is read at all.
    backtest.session_ideas(lake, later, {"stock": stock}, None)
    assert read[2].height == 0

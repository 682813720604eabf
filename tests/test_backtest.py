"""`chainsignals backtest` (flows/stages/backtest.py) against what the nightly pipeline wrote for the same rules.

One small lake (the demo generator: three underlyings, 16 chain sessions) is built by the pipeline's own
stages; the backtest then reads its gold and silver only.
"""

from __future__ import annotations

import itertools
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
    """The ideas of trade_ideas over every contract of the sessions' chains (the nightly's way: the
    listings and strike totals found in the chain itself)."""
    from flows.stages.backtest import CHAIN_COLUMNS, rule_rows
    from transforms.ideas import option_chain, trade_ideas
    from transforms.positioning import strike_open_interest
    from transforms.yardsticks import YARDSTICK_COLUMNS

    chains = lake.scan("silver", "chains", CHAIN_COLUMNS, dates=dates).collect().lazy()
    keys = {"trade_date": pl.Date(), "symbol": pl.String(), "expiration": pl.Date()}
    yardsticks = lake.scan("gold", "expiry_levels", keys | YARDSTICK_COLUMNS, dates=dates)
    chain = option_chain(chains, strike_open_interest(chains), yardsticks.rename({"symbol": "underlying"}))
    return trade_ideas(rule_rows(lake, dates, None).lazy(), chain, rules).collect(), chains.collect()


def test_the_pruned_chain_read_gives_the_whole_chains_ideas_and_exit_mids(built, tmp_path, monkeypatch):
    from flows.stages import backtest
    from transforms.outcomes import idea_outcomes

    settings, dates = built
    lake = Lake(settings.lake)
    (tmp_path / "some.toml").write_text(SOME_RULES)
    rules = load_rule_file(tmp_path / "some.toml", settings)
    read = []
    read_chain = backtest.read_chain
    monkeypatch.setattr(backtest, "read_chain", lambda *args: read.append(read_chain(*args)) or read[-1])

    first = dates[:8]
    got = backtest.session_ideas(lake, first, {"some": rules}, None)["some"]
    expected, chains = _whole_chain_ideas(lake, first, rules)
    assert got.equals(expected)
    calls, puts = got.filter(pl.col("rule") == "call_some"), got.filter(pl.col("rule") == "put_some")
    assert set(calls["symbol"]) == {"IWM", "AAPL"} and set(puts["symbol"]) == {"IWM", "AAPL"}
    # AAPL's call rule fired on some sessions only; SPY has stock ideas, and no option rule read its chain.
    aapl_days = set(calls.filter(pl.col("symbol") == "AAPL")["trade_date"])
    assert 0 < len(aapl_days) < len(first)
    assert got.filter(pl.col("symbol") == "SPY")["rule"].unique().to_list() == ["stock_all"]
    # Only the chosen listings were read: each on its own session, a small share of the chain, and every
    # named contract among them.
    (rows,) = read
    listing = ["trade_date", "underlying", "option_type", "expiration"]
    assert set(rows["underlying"]) == {"IWM", "AAPL"}
    assert rows.select(listing).unique().height <= 2 * len(first) * 2
    assert rows.height < chains.height / 4
    named = got.filter(pl.col("option_symbol").is_not_null()).select("trade_date", "option_symbol")
    assert named.join(rows, on=["trade_date", "option_symbol"], how="anti").is_empty()
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

    # The exit mids: each option idea's contract on the session it closed, as the whole chain has it.
    bars = Lake(settings.lake).scan(
        "silver",
        "bars",
        {
            "trade_date": pl.Date(),
            "symbol": pl.String(),
            **dict.fromkeys(("open", "high", "low", "close"), pl.Float64()),
        },
    )
    unpriced = idea_outcomes(got.lazy(), bars, dates[-1], None).collect()
    mids = backtest.exit_mids(lake, got, unpriced)
    everything = lake.scan("silver", "chains", backtest.CHAIN_COLUMNS, dates=dates).collect()
    exits = unpriced.filter(
        pl.col("status").is_in(["target_hit", "stop_hit", "expired"]) & pl.col("option_symbol").is_not_null()
    )
    assert exits.height > 0
    want = everything.join(
        exits.select(pl.col("closed_on").alias("trade_date"), "option_symbol").unique(),
        on=["trade_date", "option_symbol"],
    ).select("trade_date", "option_symbol", "mid")
    assert want.height > 0
    assert mids.sort("trade_date", "option_symbol").equals(want.sort("trade_date", "option_symbol"))
    # Priced with them, the outcomes are those priced with the whole chain's mids.
    assert (
        idea_outcomes(got.lazy(), bars, dates[-1], mids.lazy())
        .collect()
        .equals(idea_outcomes(got.lazy(), bars, dates[-1], everything.lazy()).collect())
    )

    # Stock rules alone read no chain row at all.
    stock = tuple(r for r in rules if r.instrument == "stock")
    ideas = backtest.session_ideas(lake, dates[8:], {"stock": stock}, None)
    assert ideas["stock"].equals(_whole_chain_ideas(lake, dates[8:], stock)[0])
    assert read[-1].height == 0


def test_silver_chains_are_clustered_by_expiration_in_small_row_groups(tmp_path, monkeypatch):
    """What lets the backtest read only the listings rules pick: each silver chain partition is in
    (expiration, side, underlying, contract) order, in row groups of SILVER_ROW_GROUP_ROWS, so each row
    group spans few expirations and a filter on them skips the others by their statistics."""
    import pyarrow.parquet as pq

    from flows.market.simulator import generate_demo_market
    from flows.stages import silver
    from flows.stages.backtest import read_chain
    from flows.stages.ingest import ingest_and_validate

    monkeypatch.setattr(silver, "SILVER_ROW_GROUP_ROWS", {"chains": 500})
    market = generate_demo_market(tmp_path / "landing", symbols=["SPY", "IWM"], sessions=40, chain_sessions=2)
    settings = load_settings(warehouse=tmp_path / "wh", landing=tmp_path / "landing")
    ingest_and_validate(settings, "test", end=market.chain_sessions[-1])
    lake = Lake(settings.lake)
    day = market.chain_sessions[-1]
    (path,) = lake.files("silver", "chains", dates=[day])
    frame = pl.read_parquet(path, hive_partitioning=False)
    assert frame.height > 2_000
    assert frame.equals(frame.sort(["expiration", "option_type", "underlying", "option_symbol", "strike"]))
    meta = pq.ParquetFile(path).metadata
    column = meta.schema.to_arrow_schema().get_field_index("expiration")
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sizes == [500] * (len(sizes) - 1) + [frame.height - 500 * (len(sizes) - 1)]
    spans = [
        (meta.row_group(g).column(column).statistics.min, meta.row_group(g).column(column).statistics.max)
        for g in range(meta.num_row_groups)
    ]
    # Consecutive row groups share at most their boundary expiration: one expiration's rows are in
    # a few neighbouring groups, not spread over all of them.
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))
    expiration = frame["expiration"].unique().sort()[3]
    in_groups = sum(low <= expiration <= high for low, high in spans)
    assert 0 < in_groups < len(spans) / 2
    # The read of one listing gives exactly its rows.
    wanted = pl.DataFrame(
        {"trade_date": [day], "symbol": ["IWM"], "option_type": ["P"], "expiration": [expiration]}
    )
    got = read_chain(lake, wanted)
    expected = frame.filter(
        (pl.col("underlying") == "IWM")
        & (pl.col("option_type") == "P")
        & (pl.col("expiration") == expiration)
    )
    assert got.height == expected.height > 0
    assert got["option_symbol"].to_list() == expected["option_symbol"].to_list()
    assert got["strike_put_oi"].null_count() == 0


def test_a_lake_written_before_the_listing_counts_says_how_to_rewrite_it(built, tmp_path):
    """A gold expiry_levels partition without call_contracts and put_contracts (an older chainsignals)
    stops the backtest with the sessions to rewrite, instead of finding no listings there."""
    import shutil

    from flows.stages.backtest import BacktestError

    settings, dates = built
    copy = tmp_path / "wh"
    shutil.copytree(settings.warehouse, copy, ignore=shutil.ignore_patterns("*.duckdb*"))
    old = load_settings(warehouse=copy, landing=settings.landing)
    lake = Lake(old.lake)
    for day in (dates[3], dates[-2]):
        (path,) = lake.files("gold", "expiry_levels", dates=[day])
        pl.read_parquet(path, hive_partitioning=False).drop("call_contracts", "put_contracts").write_parquet(
            path
        )
    with pytest.raises(BacktestError) as raised:
        run_backtest(old, {"config": old.rules}, out=tmp_path / "bt.parquet")
    # Every session to rewrite is named at once, before any batch runs.
    message = str(raised.value)
    assert "call_contracts" in message and f"--start {dates[3]} --end {dates[-2]} --force" in message
    # A rule file of stock rules reads no listing, and runs.
    stock = tuple(rule for rule in old.rules if rule.instrument == "stock")
    assert run_backtest(old, {"stock": stock}, out=tmp_path / "stock.parquet").ideas.height > 0


def test_a_backtest_of_some_symbols_gives_their_rows_of_the_whole_backtest(built, tmp_path):
    """--symbols narrows what is read (rule rows, listings, chain), never what a symbol's ideas and
    outcomes are: each idea depends on its own symbol's features, chain and bars only."""
    settings, _ = built
    rules = {"config": settings.rules}
    whole = run_backtest(settings, rules, out=tmp_path / "all.parquet")
    some = run_backtest(settings, rules, symbols=["IWM"], out=tmp_path / "iwm.parquet")
    iwm = pl.col("symbol") == "IWM"
    assert some.ideas.height > 0 and some.ideas["symbol"].unique().to_list() == ["IWM"]
    assert some.ideas["option_symbol"].drop_nulls().len() > 0
    assert some.ideas.equals(whole.ideas.filter(iwm))
    assert some.outcomes.equals(whole.outcomes.filter(iwm))

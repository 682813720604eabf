"""bench/bench.py (`make bench`) at tiny scale: the same code path, fresh child processes included."""

from __future__ import annotations

import os

import pytest

from bench.bench import (
    BACKTEST_RULES,
    BenchError,
    Options,
    _backtest_section,
    backfill_months,
    child_backfill,
    cli_split,
    machine_busy_seconds,
    measure_backtest,
    render,
    run_bench,
    slope_per_month,
)
from flows.market.simulator import generate_demo_market
from schemas.gold import GOLD_TABLES

pytestmark = pytest.mark.e2e  # the bench's rounds run in child processes

UNDERLYINGS = 12  # the report draws charts per symbol (~0.2 s each): keep the universe small


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    opts = Options(
        underlyings=UNDERLYINGS,
        sessions=40,
        prints=500,
        rounds=1,
        skip_backfill=True,
        output=None,
        workdir=tmp_path_factory.mktemp("bench"),
    )
    return run_bench(opts, log=lambda _message: None)


def test_report_has_both_figures_their_ratio_and_peak_memory(report):
    assert report["floor"]["seconds"] > 0
    assert report["nightly"]["seconds"] > 0
    assert report["ratio"] == pytest.approx(report["nightly"]["seconds"] / report["floor"]["seconds"])
    assert report["nightly"]["peak_rss_mb"] > 0
    assert report["floor"]["peak_rss_mb"] > 0
    assert report["warmup"]["seconds"] > 0


def test_every_stage_is_timed_and_the_stages_add_up_to_the_run(report):
    expected = {"ingest + silver", "gold", "publish: DuckDB", "report: Markdown, HTML, charts"}
    assert expected <= set(report["stages"])
    assert all(report["stages"][name] > 0 for name in expected)
    run = report["nightly"]["runs"][0]
    assert sum(run["stages"].values()) == pytest.approx(run["seconds"], rel=1e-6)
    # Process CPU per stage adds up to the run's too, and no stage used more cores than the machine has.
    assert set(run["stage_cpu"]) == set(run["stages"])
    assert sum(run["stage_cpu"].values()) == pytest.approx(run["run_cpu"], rel=1e-6)
    assert 0 < run["run_cpu"] < run["cpu"] and all(cpu >= 0 for cpu in run["stage_cpu"].values())
    assert run["stage_cpu"]["ingest + silver"] <= run["stages"]["ingest + silver"] * os.cpu_count() + 0.05
    # The ingest's steps and every gold table, inside their stages.
    parts = {
        "ingest: landing -> bronze",
        "ingest: silver bars",
        "ingest: silver chains",
        *(f"gold: {table}" for table in GOLD_TABLES),
    }
    assert parts <= set(report["parts"])
    gold_parts = sum(v for k, v in run["parts"].items() if k.startswith("gold: "))
    assert 0 < gold_parts <= run["stages"]["gold"] + 0.01


def test_the_whole_cli_process_is_split_before_during_and_after_the_flow(report):
    cli, pandas = report["cli"], report["pandas"]
    split = cli["split"]
    assert cli["wall"] > 0 and cli["cpu"] > 0 and cli["peak_rss_mb"] > 0 and pandas["wall"] > 0
    assert split["before the flow"] + split["the flow"] + split["after the flow"] == pytest.approx(
        cli["wall"]
    )
    assert split["start-up"] + split["prefect start"] == pytest.approx(split["before the flow"])
    assert split["prefect end"] + split["output and exit"] == pytest.approx(split["after the flow"])
    assert all(v >= 0 for v in split.values()) and split["the flow"] > 0
    assert 0 < cli["stdout_lines"] <= 80
    text = render(report)
    assert "## The user's view: `chainsignals run`, whole process" in text
    assert f"| **chainsignals run** | **{cli['wall']:.2f}** |" in text
    assert f"**{cli['wall'] / report['floor']['wall']:.2f}** | {cli['wall'] / pandas['wall']:.2f} |" in text
    # The same run against a server already running (PREFECT_API_URL): it starts none of its own.
    kept = report["cli_server"]
    assert kept["wall"] > 0 and kept["split"]["the flow"] > 0 and 0 < kept["stdout_lines"] <= 80
    assert f"| chainsignals run, a Prefect server running | {kept['wall']:.2f} |" in text


def test_cli_split_cuts_at_the_progress_lines():
    lines = [
        (0.5, "12:00:00 nightly 2025-12-31: starting on a temporary Prefect server"),
        (3.0, "12:00:03 ingest and validate landing files ..."),
        (5.0, "12:00:05 ingest and validate landing files: done in 2.0 s"),
        (5.1, "12:00:05 compute gold tables for 1 session(s) ..."),
        (8.0, "12:00:08 write the 2025-12-31 report: done in 1.0 s"),
        (9.0, "12:00:09 nightly 2025-12-31: finished in 8.5 s"),
    ]
    assert cli_split(lines, 10.0) == pytest.approx(
        {
            "start-up": 0.5,
            "prefect start": 2.5,
            "stages": 5.0,
            "prefect end": 1.0,
            "output and exit": 1.0,
            "before the flow": 3.0,
            "the flow": 5.0,
            "after the flow": 2.0,
        }
    )
    with pytest.raises(BenchError, match="progress lines"):
        cli_split(lines[:2], 10.0)


def test_the_nightly_round_ingests_the_last_day_the_floor_reads(report):
    run = report["nightly"]["runs"][0]
    floor_rows = {f["file"].split("/")[0]: f["rows"] for f in report["floor"]["runs"][0]["files"]}
    assert run["rows_in"]["silver.bars"] == UNDERLYINGS  # one bar per underlying, the day's drop only
    assert run["rows_in"]["silver.chains"] == floor_rows["chains"]
    assert report["scale"]["target"] > report["scale"]["previous"]


def test_markdown_report_states_the_figures(report):
    text = render(report)
    assert "| run time (s, in process) |" in text
    floor_cpu, night_cpu = report["floor"]["run_cpu"], report["nightly"]["run_cpu"]
    assert 0 < floor_cpu < report["floor"]["cpu"] and 0 < night_cpu < report["nightly"]["cpu"]
    assert (
        f"| run CPU (s, in process, every thread) | {floor_cpu:.2f} | {night_cpu:.2f} | "
        f"{night_cpu / floor_cpu:.2f} | |"
    ) in text
    assert f"{report['ratio']:.2f}" in text
    assert "| publish: DuckDB |" in text
    publish = next(line for line in text.splitlines() if line.startswith("| publish: DuckDB |"))
    seconds, cpu = report["stages"]["publish: DuckDB"], report["stage_cpu"]["publish: DuckDB"]
    assert publish.split("|")[2:6] == [
        f" {seconds:.2f} ",
        publish.split("|")[3],
        f" {cpu:.2f} ",
        f" {cpu / seconds:.1f} ",
    ]


def test_other_work_is_the_machines_busy_time_less_the_childs_and_warned_past_a_quarter_core(
    report, tmp_path
):
    import copy
    import os

    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice: busy = all but idle and iowait
    stat.write_text("cpu  100 20 30 4000 50 5 6 7 0 0\ncpu0 50 10 15 2000 25 2 3 3 0 0\n")
    assert machine_busy_seconds(stat) == pytest.approx(168 / os.sysconf("SC_CLK_TCK"))
    assert machine_busy_seconds(tmp_path / "missing") is None
    assert machine_busy_seconds() is not None  # this machine's own counters
    runs = [*report["floor"]["runs"], *report["nightly"]["runs"]]
    assert all(r["other_cores"] is not None and r["other_cores"] >= 0 for r in runs)

    busy = copy.deepcopy(report)
    busy["other_work"]["max_cores"] = 0.6
    assert "other processes kept 0.60 of the" in render(busy)
    quiet = copy.deepcopy(report)
    quiet["other_work"]["max_cores"] = 0.1
    assert "other processes kept" not in render(quiet)


def test_backfill_months_aggregate_samples_per_calendar_month():
    def sample(phase, day, rss, peak, rows, t):
        return {"phase": phase, "day": day, "rss_mb": rss, "window_peak_mb": peak, "rows": rows, "t": t}

    samples = [
        sample("bronze.chains", "2025-01-02", 90.0, 300.0, 10, 1.0),
        sample("bronze.chains", "2025-01-03", 95.0, 310.0, 20, 2.0),
        sample("bronze.chains", "2025-02-03", 96.0, 305.0, 5, 4.0),
        sample("silver.chains", "2025-01-02", 100.0, 400.0, 10, 7.0),
        sample("silver.chains", "2025-01-03", 110.0, 120.0, 20, 8.0),
        sample("silver.chains", "2025-02-03", 105.0, 390.0, 5, 8.5),
        sample("gold.positioning_daily", "2025-01-02", 150.0, 200.0, 3, 10.0),
        sample("gold.trade_ideas", "2025-01-03", 140.0, 170.0, 3, 10.5),
        sample("gold.trade_ideas", "2025-02-03", 145.0, 175.0, 3, 12.0),
    ]
    assert backfill_months(samples) == [
        {
            "month": "2025-01",
            "sessions": 2,
            "chain_rows": 30,
            "bronze_peak_mb": 310.0,
            "bronze_seconds": 2.0,
            "silver_peak_mb": 400.0,
            "silver_seconds": 4.0,
            "gold_peak_mb": 200.0,
            "gold_seconds": 2.0,
            "rss_after_mb": 140.0,
        },
        {
            "month": "2025-02",
            "sessions": 1,
            "chain_rows": 5,
            "bronze_peak_mb": 305.0,
            "bronze_seconds": 2.0,
            "silver_peak_mb": 390.0,
            "silver_seconds": 0.5,
            "gold_peak_mb": 175.0,
            "gold_seconds": 1.5,
            "rss_after_mb": 145.0,
        },
    ]


def test_slope_per_month():
    assert slope_per_month([100.0, 110.0, 120.0]) == pytest.approx(10.0)
    assert slope_per_month([100.0, 100.0, 100.0]) == 0.0
    assert slope_per_month([5.0]) == 0.0


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    """A small market through the backfill child: its folder, the market and the child's result."""
    root = tmp_path_factory.mktemp("backfill")
    market = generate_demo_market(
        root / "landing", symbols=["SPY", "AAPL"], sessions=30, chain_sessions=3, trades=False
    )
    result = child_backfill(
        {
            "warehouse": str(root / "wh"),
            "landing": str(root / "landing"),
            "start": market.chain_sessions[0].isoformat(),
            "end": market.chain_sessions[-1].isoformat(),
            "report": False,
        }
    )
    return root, market, result


def test_backfill_child_samples_rss_for_every_chain_session(backfilled):
    _, market, result = backfilled
    months = backfill_months(result["samples"])
    assert sum(m["sessions"] for m in months) == 3
    assert sum(m["chain_rows"] for m in months) == market.rows["chains"]
    assert all(m["bronze_peak_mb"] > 0 and m["silver_peak_mb"] > 0 and m["gold_peak_mb"] > 0 for m in months)
    assert result["peak_mb"] >= max(m["silver_peak_mb"] for m in months)
    assert result["sessions"] == 3


def test_nightly_children_get_the_allocator_of_chainsignals_run(monkeypatch):
    import os

    import polars  # noqa: F401 - loaded: it has rewritten the variable with its own defaults

    from bench import bench
    from flows.cli.launcher import ALLOCATOR_VARIABLE, NIGHTLY_ALLOCATOR

    assert ALLOCATOR_VARIABLE in os.environ  # polars' rewrite, not an operator's setting
    monkeypatch.setattr(bench, "STARTED_ALLOCATOR", {})
    assert bench.nightly_env() == {ALLOCATOR_VARIABLE: NIGHTLY_ALLOCATOR}
    monkeypatch.setattr(bench, "STARTED_ALLOCATOR", {ALLOCATOR_VARIABLE: "dirty_decay_ms:0"})
    assert bench.nightly_env() == {ALLOCATOR_VARIABLE: "dirty_decay_ms:0"}


def test_the_backtest_over_the_backfilled_lake_is_timed_and_reported(backfilled, tmp_path):
    from flows.config import load_rule_file, load_settings
    from flows.stages.backtest import run_backtest

    root, market, _ = backfilled
    figures = measure_backtest(root / "wh", tmp_path)
    # The CLI's ideas are run_backtest's in this process, rule set by rule set.
    settings = load_settings(warehouse=root / "wh")
    rule_sets = {"baseline": settings.rules, "bias_following": load_rule_file(BACKTEST_RULES, settings)}
    ideas = run_backtest(settings, rule_sets, out=tmp_path / "here.parquet").ideas
    per_set = dict(ideas.group_by("rule_set").len().iter_rows())
    assert figures["ideas_per_set"] == {name: per_set.get(name, 0) for name in figures["ideas_per_set"]}
    assert figures["ideas"] == ideas.height == sum(figures["ideas_per_set"].values()) > 0
    assert figures["sessions"] == 3 and figures["underlyings"] == 2
    first, last = market.chain_sessions[0], market.chain_sessions[-1]
    assert (figures["first"], figures["last"]) == (first.isoformat(), last.isoformat())
    assert figures["wall"] > 0 and figures["cpu"] > 0 and figures["peak_mb"] > 0
    section = "\n".join(_backtest_section(figures))
    assert (
        f"over the lake the backfill built: 3 sessions ({figures['first']} to {figures['last']}), 2 "
        f"underlyings, {figures['ideas']:,} ideas (baseline {figures['ideas_per_set']['baseline']:,}, "
    ) in section
    assert f"in {figures['wall']:.1f} s wall and {figures['cpu']:.1f} CPU s" in section
    assert _backtest_section({"error": "it broke"})[-1] == "Failed: it broke"

"""The `chainsignals` console script, run as a user runs it (a subprocess), on the SPEC 1 note."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.helpers import cli, run_note_day
from tests.spec_note import NOTE_DATE, note_chain, write_note_landing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def note_warehouse(tmp_path_factory, prefect_api) -> Path:
    """The note's landing files, run once through `chainsignals run --date 2025-12-29`."""
    import os

    root = tmp_path_factory.mktemp("note")
    done = run_note_day(root, dict(os.environ, PREFECT_API_URL=prefect_api))
    (root / "stdout.txt").write_text(done.stdout)
    return root


def one(root: Path, sql: str, params: list | None = None):
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_run_reproduces_the_notes_figures(note_warehouse: Path):
    row = one(
        note_warehouse,
        """
        SELECT round(close, 2), round(prev_close, 2), round(change_pct, 2), round(low, 2), round(sma_30, 2),
               round(bb_lower, 2), round(bb_middle, 2), round(bb_upper, 2), round(sma_200, 2)
        FROM technicals_daily WHERE symbol = 'IWM' AND trade_date = ?""",
        [NOTE_DATE],
    )
    assert row == [(249.80, 251.42, -0.64, 249.35, 246.33, 244.92, 250.94, 256.96, 224.02)]
    positioning = one(
        note_warehouse,
        """
        SELECT call_wall, call_wall_oi, next_call_wall, next_call_wall_oi, put_wall, put_wall_oi,
               next_put_wall, next_put_wall_oi, round(pcr_oi, 2)
        FROM positioning_daily WHERE symbol = 'IWM'""",
    )
    assert positioning == [(255.0, 10_000, 266.0, 8_401, 240.0, 7_739, 235.0, 7_321, 2.18)]
    calls = one(
        note_warehouse, "SELECT strike, open_interest FROM strike_levels WHERE side = 'call' ORDER BY rank"
    )
    puts = one(
        note_warehouse, "SELECT strike, open_interest FROM strike_levels WHERE side = 'put' ORDER BY rank"
    )
    assert calls[:2] == [(255.0, 10_000), (266.0, 8_401)]
    assert puts[:3] == [(240.0, 7_739), (235.0, 7_321), (245.0, 5_000)]


def test_run_reproduces_the_notes_plays(note_warehouse: Path):
    ideas = {
        r[0]: r[1:]
        for r in one(
            note_warehouse,
            """
        SELECT rule, option_symbol, expiration, strike, trigger_direction, round(trigger_level, 2), round(target, 2),
               round(stop, 2), entry_premium
        FROM trade_ideas WHERE symbol = 'IWM' AND trade_date = ?""",
            [NOTE_DATE],
        )
    }
    assert ideas["call_breakout"][:7] == (
        "IWM   260102C00255000",
        date(2026, 1, 2),
        255.0,
        "above",
        250.94,
        266.0,
        249.35,
    )
    assert ideas["protective_put"][:5] == ("IWM   260116P00245000", date(2026, 1, 16), 245.0, "below", 244.92)
    assert ideas["stock_entry"][0] is None and ideas["stock_entry"][5] == 256.96
    chain = note_chain()
    listed = chain.filter(
        (pl.col("expiration") == date(2026, 1, 2))
        & (pl.col("strike") == 255)
        & (pl.col("option_type") == "C")
    ).row(0, named=True)
    assert ideas["call_breakout"][7] == pytest.approx((listed["bid"] + listed["ask"]) / 2)
    printed = (note_warehouse / "stdout.txt").read_text()
    assert "IWM   260102C00255000" in printed and "IWM above 250.94" in printed
    # The levels are the underlying's, named so; the premium is per contract, in dollars.
    assert "IWM 266.00" in printed and "IWM 249.35" in printed and "bullish" in printed
    assert f"{ideas['call_breakout'][7] * 100:,.2f}" in printed


def test_status_lists_tables_and_the_run(note_warehouse: Path, cli_env):
    done = cli("status", "--warehouse", str(note_warehouse / "wh"), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "trade_ideas" in done.stdout and "2025-12-29" in done.stdout and "success" in done.stdout
    rows = [[cell for cell in line.split() if cell != "│"] for line in done.stdout.splitlines()]
    assert [row[:5] for row in rows if row[:2] == ["silver", "chains"]] == [
        ["silver", "chains", "1", "2025-12-29", "2025-12-29"]
    ]


def test_status_shows_a_runs_reason_and_warnings_whole_and_exits_non_zero_after_a_failure(
    tmp_path: Path, cli_env
):
    from flows.storage import runlog

    reason = (
        "chains 2025-12-30: 120000 of 2000000 rows rejected (6.0%) > limit 5.0%; top reasons: "
        "bid_not_above_ask:bid (90000), greater_than_or_equal_to(0):open_interest (30000)"
    )
    warning = "report for 2025-12-29 not written: lock held by another process [pid 4242]"
    runlog.append(
        tmp_path / "wh",
        {
            "finished_at": "2025-12-29T22:15:00",
            "flow": "nightly",
            "status": "success",
            "dates": ["2025-12-29", "2025-12-29"],
            "rows": {"trade_ideas": 21},
            "warnings": [warning],
        },
    )
    runlog.append(
        tmp_path / "wh",
        {
            "finished_at": "2025-12-30T22:15:00",
            "flow": "nightly",
            "status": "failed",
            "date": "2025-12-30",
            "error": reason,
        },
    )
    done = cli("status", "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert done.returncode == 1
    assert "lake: empty" in done.stdout and "no warehouse yet" in done.stdout  # said, not an empty table
    shown = done.stdout.split()
    assert all(word in shown for word in reason.split()), done.stdout  # folded over lines, not cut
    # A success's warnings are shown with its rows, as written (brackets are text, not Rich markup).
    assert all(word in shown for word in ["21;", "warning:", *warning.split()]), done.stdout


def test_validate_reports_rejected_rows_and_writes_nothing(tmp_path: Path, cli_env):
    chain = (
        note_chain()
        .head(60)
        .with_columns(
            pl.when(pl.int_range(pl.len()) == 3)
            .then(-1)
            .otherwise(pl.col("open_interest"))
            .alias("open_interest")
        )
    )
    path = tmp_path / "chains" / "drop.csv"
    path.parent.mkdir()
    chain.write_csv(path)
    done = cli("validate", str(path), "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert done.returncode == 0, done.stderr  # 1 of 60 (1.7%) is under the 5% limit
    assert "60 rows, 59 valid, 1 rejected" in done.stdout
    assert "greater_than_or_equal_to(0):open_interest" in done.stdout
    chain.with_columns(pl.lit(9.0).alias("bid")).write_csv(path)  # bid > ask on most rows
    done = cli("validate", str(path), "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert done.returncode == 1 and "over the 5% limit" in done.stderr
    assert not (tmp_path / "wh").exists()


def test_a_file_missing_a_column_fails_with_one_line(tmp_path: Path, cli_env):
    write_note_landing(tmp_path / "landing")
    chain_file = tmp_path / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    pl.read_csv(chain_file).drop("bid").write_csv(chain_file)
    done = cli(
        "run",
        "--date",
        str(NOTE_DATE),
        "--warehouse",
        str(tmp_path / "wh"),
        "--landing",
        str(tmp_path / "landing"),
        env=cli_env,
    )
    assert done.returncode == 1
    # One line: Prefect's console copy of the failure (a traceback per failed task and flow) is left out.
    # (Captured stderr is not a terminal: the stages' timestamped progress lines come before it.)
    progress = re.compile(r"\d\d:\d\d:\d\d ")
    assert [line for line in done.stderr.splitlines() if line.strip() and not progress.match(line)] == [
        f"error: {chain_file}: missing required column(s) bid for chains"
    ], done.stderr
    assert not (tmp_path / "wh" / "signals.duckdb").exists()
    assert not list((tmp_path / "wh" / "lake").rglob("*.parquet"))


def test_report_command_writes_the_days_pages(note_warehouse: Path, cli_env):
    done = cli(
        "report",
        "--date",
        str(NOTE_DATE),
        "--symbol",
        "iwm",
        "--warehouse",
        str(note_warehouse / "wh"),
        env=cli_env,
    )
    assert done.returncode == 0, done.stderr
    page = note_warehouse / "wh" / "reports" / str(NOTE_DATE) / "IWM.md"
    assert "1 symbol page(s)" in done.stdout and page.exists()
    assert "IWM   260102C00255000" in page.read_text()
    done = cli(
        "report",
        "--date",
        str(NOTE_DATE),
        "--symbol",
        "../X",
        "--warehouse",
        str(note_warehouse / "wh"),
        env=cli_env,
    )
    assert done.returncode == 1 and done.stderr.startswith("error:")


def test_every_commands_help_shows_its_summary_whole(cli_env):
    """Typer renders help as Rich markup: a bracketed word in a docstring ("[start, end]") vanished."""
    import inspect

    from flows.cli.app import app

    env = dict(cli_env, COLUMNS="240")
    listing = " ".join(cli("--help", env=env).stdout.split())
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        summary = " ".join(inspect.getdoc(command.callback).split("\n\n")[0].split())
        assert summary in listing, name
        assert summary in " ".join(cli(name, "--help", env=env).stdout.split()), name


def test_bad_arguments_exit_non_zero(tmp_path: Path, cli_env):
    done = cli("run", "--date", "2025-13-45", "--warehouse", str(tmp_path), env=cli_env)
    assert done.returncode == 2 and "is not a date" in done.stderr
    # Refused as a usage error before any flow run starts (no Prefect run is started to fail).
    done = cli("run", "--symbols", "IWM;DROP", "--warehouse", str(tmp_path), env=cli_env)
    assert done.returncode == 2 and "invalid symbol(s) ['IWM;DROP']" in done.stderr, done.stderr
    assert "Flow run" not in done.stderr and "Traceback" not in done.stderr
    done = cli(
        "backfill",
        "--start",
        "2025-12-01",
        "--end",
        "2025-12-31",
        "--workers",
        "-1",
        "--warehouse",
        str(tmp_path),
        env=cli_env,
    )
    assert done.returncode == 2 and "--workers" in done.stderr and "Flow run" not in done.stderr, done.stderr
    done = cli("run", "--symbols", "IWM", "--workers", "2", "--warehouse", str(tmp_path), env=cli_env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: --symbols and --workers/--dask-address do not combine: shards split all underlyings"
    )
    assert not tmp_path.joinpath("lake").exists()


def test_a_demo_longer_than_the_simulator_models_is_a_usage_error(tmp_path: Path, cli_env):
    done = cli("demo", "--sessions", "40000", "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert done.returncode == 2 and "--sessions" in done.stderr and "5000" in done.stderr, done.stderr
    assert not (tmp_path / "wh").exists()


def test_a_market_longer_than_the_calendar_says_so():
    from flows.market.simulator import MarketError, generate_demo_market

    with pytest.raises(
        MarketError, match=r"^100000 sessions before 2025-12-31 reach back to 1626-08-22, outside"
    ):
        generate_demo_market(Path("/nonexistent"), sessions=100_000)


def test_demo_writes_landing_runs_and_prints(tmp_path: Path, cli_env):
    done = cli(
        "demo", "--sessions", "260", "--chain-sessions", "2", "--warehouse", str(tmp_path / "wh"), env=cli_env
    )
    assert done.returncode == 0, done.stderr
    assert "signals 2025-12-31" in done.stdout and "trade ideas 2025-12-31" in done.stdout
    index = tmp_path / "wh" / "reports" / "2025-12-31" / "index.html"
    assert f"report: {index}" in done.stdout and index.exists()
    rows = one(tmp_path, "SELECT count(DISTINCT symbol), min(trade_date), max(trade_date) FROM signals_daily")
    assert rows[0][0] == 7 and str(rows[0][2]) == "2025-12-31"
    contracts = one(
        tmp_path,
        """
        SELECT count(*) FROM trade_ideas i WHERE instrument <> 'stock' AND NOT EXISTS (
            SELECT 1 FROM read_parquet(? , hive_partitioning = true) c
            WHERE c.option_symbol = i.option_symbol AND c.trade_date = i.trade_date)""",
        [str(tmp_path / "wh" / "lake" / "silver" / "chains" / "*" / "*.parquet")],
    )
    assert contracts == [(0,)]  # every option idea names a contract listed that day

"""`chainsignals sql|ideas|levels|signals` through the real entry point, on the SPEC 1 note's warehouse."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from spec_note import NOTE_DATE
from test_cli import cli, note_warehouse  # noqa: F401 - the module's warehouse fixture, run once here


def wh(root: Path) -> list[str]:
    return ["--warehouse", str(root / "wh")]


def test_sql_in_each_format(note_warehouse: Path, cli_env, tmp_path: Path):  # noqa: F811
    query = ("SELECT symbol, round(trigger_level, 2) AS trigger_level, expiration FROM trade_ideas "
             "WHERE rule = 'call_breakout' AND symbol = 'IWM'")
    table = cli("sql", query, *wh(note_warehouse), env=cli_env)
    assert table.returncode == 0, table.stderr
    assert "250.94" in table.stdout and "IWM" in table.stdout and "2026-01-02" in table.stdout

    as_csv = cli("sql", query, "--format", "csv", *wh(note_warehouse), env=cli_env)
    assert list(csv.DictReader(io.StringIO(as_csv.stdout))) == [
        {"symbol": "IWM", "trigger_level": "250.94", "expiration": "2026-01-02"}]

    as_json = cli("sql", query, "--format", "json", *wh(note_warehouse), env=cli_env)
    assert json.loads(as_json.stdout) == [{"symbol": "IWM", "trigger_level": 250.94, "expiration": "2026-01-02"}]

    out = tmp_path / "ideas.parquet"
    as_parquet = cli("sql", query, "--format", "parquet", "--out", str(out), *wh(note_warehouse), env=cli_env)
    assert as_parquet.returncode == 0, as_parquet.stderr
    frame = pl.read_parquet(out)
    assert frame.rows() == [("IWM", 250.94, date(2026, 1, 2))]
    assert frame.schema["expiration"] == pl.Date


def test_sql_refuses_writes_and_several_statements(note_warehouse: Path, cli_env, tmp_path: Path):  # noqa: F811
    database = note_warehouse / "wh" / "signals.duckdb"
    before = database.stat().st_mtime_ns
    for statement, reason in [("DROP TABLE trade_ideas", "not DROP"),
                              (f"COPY trade_ideas TO '{tmp_path / 'x.csv'}'", "not COPY"),
                              ("SELECT 1; SELECT 2", "one statement at a time")]:
        done = cli("sql", statement, *wh(note_warehouse), env=cli_env)
        assert done.returncode == 1 and reason in done.stderr, done.stderr
    assert not (tmp_path / "x.csv").exists()
    assert database.stat().st_mtime_ns == before
    bad = cli("sql", "SELECT * FROM no_such_table", *wh(note_warehouse), env=cli_env)
    assert bad.returncode == 1 and "no_such_table" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    parquet_to_stdout = cli("sql", "SELECT 1", "--format", "parquet", *wh(note_warehouse), env=cli_env)
    assert parquet_to_stdout.returncode == 2 and "--out" in parquet_to_stdout.stderr


def test_ideas_levels_signals_answer_for_the_latest_session(note_warehouse: Path, cli_env):  # noqa: F811
    ideas = json.loads(cli("ideas", "--format", "json", "--symbol", "iwm", *wh(note_warehouse), env=cli_env).stdout)
    breakout = next(i for i in ideas if i["rule"] == "call_breakout")
    assert breakout["trade_date"] == str(NOTE_DATE)
    assert (breakout["option_symbol"], breakout["trigger_direction"], round(breakout["trigger_level"], 2),
            breakout["target"], breakout["stop"]) == ("IWM   260102C00255000", "above", 250.94, 266.0, 249.35)
    assert {i["symbol"] for i in ideas} == {"IWM"} and breakout["bias"] in ("bullish", "bearish", "neutral")

    levels = list(csv.DictReader(io.StringIO(
        cli("levels", "--format", "csv", "-s", "IWM", *wh(note_warehouse), env=cli_env).stdout)))
    assert len(levels) == 1
    iwm = levels[0]
    assert (iwm["symbol"], iwm["trade_date"], round(float(iwm["close"]), 2), round(float(iwm["sma_30"]), 2),
            float(iwm["call_wall"]), float(iwm["put_wall"])) == ("IWM", str(NOTE_DATE), 249.80, 246.33, 255.0, 240.0)

    table = cli("signals", *wh(note_warehouse), env=cli_env)
    assert table.returncode == 0, table.stderr
    assert f"signals {NOTE_DATE}" in table.stdout and "IWM" in table.stdout and "249.80" in table.stdout


def test_ideas_of_a_given_date_and_bad_input(note_warehouse: Path, cli_env):  # noqa: F811
    dated = cli("ideas", "--date", str(NOTE_DATE), "--format", "csv", *wh(note_warehouse), env=cli_env)
    rows = list(csv.DictReader(io.StringIO(dated.stdout)))
    assert {r["trade_date"] for r in rows} == {str(NOTE_DATE)} and "call_breakout" in {r["rule"] for r in rows}
    none_such = cli("signals", "--date", "2025-12-25", *wh(note_warehouse), env=cli_env)
    assert none_such.returncode == 1 and "no session 2025-12-25 in the warehouse (it holds" in none_such.stderr
    injected = cli("ideas", "--symbol", "IWM' OR '1'='1", *wh(note_warehouse), env=cli_env)
    assert injected.returncode == 2 and "invalid symbol" in injected.stderr
    other = json.loads(cli("levels", "--format", "json", "-s", "QQQ", *wh(note_warehouse), env=cli_env).stdout)
    assert other == []


@pytest.mark.parametrize("command", ["sql", "ideas"])
def test_without_a_warehouse_one_line(command: str, tmp_path: Path, cli_env):
    args = ["SELECT 1"] if command == "sql" else []
    done = cli(command, *args, "--warehouse", str(tmp_path), env=cli_env)
    assert done.returncode == 1 and "no warehouse at" in done.stderr

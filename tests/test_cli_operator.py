"""The analyst's and the operator's day through the real `chainsignals` entry point, on the SPEC 1 note:
`sql|ideas|levels|signals` in every format, a run's logs, name and URL on a Prefect server, skips answered
with their reason, progress lines in a log file."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import date
from pathlib import Path
from uuid import UUID

import polars as pl
import pytest

from tests.helpers import cli
from tests.spec_note import NOTE_DATE, write_note_landing

pytestmark = pytest.mark.e2e

CHRISTMAS = "2025-12-25 is not an XNYS session (Christmas); next session 2025-12-26"


@pytest.fixture(scope="module")
def server_env(prefect_api) -> dict:
    """The environment of an operator with a Prefect server and Prefect's default log level (INFO; the
    test session's WARNING is for its own in-process flows)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"}
    return dict(env, PREFECT_API_URL=prefect_api)


@pytest.fixture(scope="module")
def note_warehouse(tmp_path_factory, server_env) -> Path:
    """The note's landing files run once through `chainsignals run --date 2025-12-29` on the server, its
    output captured (so stderr is not a terminal, as under cron)."""
    root = tmp_path_factory.mktemp("note")
    write_note_landing(root / "landing")
    done = cli("run", "--date", str(NOTE_DATE), *wh(root), "--landing", str(root / "landing"), env=server_env)
    assert done.returncode == 0, done.stderr
    (root / "stdout.txt").write_text(done.stdout)
    (root / "stderr.txt").write_text(done.stderr)
    return root


def wh(root: Path) -> list[str]:
    return ["--warehouse", str(root / "wh")]


def test_sql_in_each_format(note_warehouse: Path, cli_env, tmp_path: Path):
    query = (
        "SELECT symbol, round(trigger_level, 2) AS trigger_level, expiration FROM trade_ideas "
        "WHERE rule = 'call_breakout' AND symbol = 'IWM'"
    )
    table = cli("sql", query, *wh(note_warehouse), env=cli_env)
    assert table.returncode == 0, table.stderr
    assert "250.94" in table.stdout and "IWM" in table.stdout and "2026-01-02" in table.stdout

    as_csv = cli("sql", query, "--format", "csv", *wh(note_warehouse), env=cli_env)
    assert list(csv.DictReader(io.StringIO(as_csv.stdout))) == [
        {"symbol": "IWM", "trigger_level": "250.94", "expiration": "2026-01-02"}
    ]

    as_json = cli("sql", query, "--format", "json", *wh(note_warehouse), env=cli_env)
    assert json.loads(as_json.stdout) == [
        {"symbol": "IWM", "trigger_level": 250.94, "expiration": "2026-01-02"}
    ]

    out = tmp_path / "ideas.parquet"
    as_parquet = cli("sql", query, "--format", "parquet", "--out", str(out), *wh(note_warehouse), env=cli_env)
    assert as_parquet.returncode == 0, as_parquet.stderr
    frame = pl.read_parquet(out)
    assert frame.rows() == [("IWM", 250.94, date(2026, 1, 2))]
    assert frame.schema["expiration"] == pl.Date


def test_sql_refuses_writes_and_several_statements(note_warehouse: Path, cli_env, tmp_path: Path):
    database = note_warehouse / "wh" / "signals.duckdb"
    before = database.stat().st_mtime_ns
    for statement, reason in [
        ("DROP TABLE trade_ideas", "not DROP"),
        (f"COPY trade_ideas TO '{tmp_path / 'x.csv'}'", "not COPY"),
        ("SELECT 1; SELECT 2", "one statement at a time"),
    ]:
        done = cli("sql", statement, *wh(note_warehouse), env=cli_env)
        assert done.returncode == 1 and reason in done.stderr, done.stderr
    assert not (tmp_path / "x.csv").exists()
    assert database.stat().st_mtime_ns == before
    bad = cli("sql", "SELECT * FROM no_such_table", *wh(note_warehouse), env=cli_env)
    assert bad.returncode == 1 and "no_such_table" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    parquet_to_stdout = cli("sql", "SELECT 1", "--format", "parquet", *wh(note_warehouse), env=cli_env)
    assert parquet_to_stdout.returncode == 2 and "--out" in parquet_to_stdout.stderr


def test_ideas_levels_signals_answer_for_the_latest_session(note_warehouse: Path, cli_env):
    ideas = json.loads(
        cli("ideas", "--format", "json", "--symbol", "iwm", *wh(note_warehouse), env=cli_env).stdout
    )
    breakout = next(i for i in ideas if i["rule"] == "call_breakout")
    assert breakout["trade_date"] == str(NOTE_DATE)
    assert (
        breakout["option_symbol"],
        breakout["trigger_direction"],
        round(breakout["trigger_level"], 2),
        breakout["target"],
        breakout["stop"],
    ) == ("IWM   260102C00255000", "above", 250.94, 266.0, 249.35)
    assert {i["symbol"] for i in ideas} == {"IWM"} and breakout["bias"] in ("bullish", "bearish", "neutral")

    levels = list(
        csv.DictReader(
            io.StringIO(
                cli("levels", "--format", "csv", "-s", "IWM", *wh(note_warehouse), env=cli_env).stdout
            )
        )
    )
    assert len(levels) == 1
    iwm = levels[0]
    assert (
        iwm["symbol"],
        iwm["trade_date"],
        round(float(iwm["close"]), 2),
        round(float(iwm["sma_30"]), 2),
        float(iwm["call_wall"]),
        float(iwm["put_wall"]),
    ) == ("IWM", str(NOTE_DATE), 249.80, 246.33, 255.0, 240.0)

    table = cli("signals", *wh(note_warehouse), env=cli_env)
    assert table.returncode == 0, table.stderr
    assert f"signals {NOTE_DATE}" in table.stdout and "IWM" in table.stdout and "249.80" in table.stdout


def test_ideas_of_a_given_date_and_bad_input(note_warehouse: Path, cli_env):
    dated = cli("ideas", "--date", str(NOTE_DATE), "--format", "csv", *wh(note_warehouse), env=cli_env)
    rows = list(csv.DictReader(io.StringIO(dated.stdout)))
    assert {r["trade_date"] for r in rows} == {str(NOTE_DATE)} and "call_breakout" in {
        r["rule"] for r in rows
    }
    none_such = cli("signals", "--date", "2025-12-25", *wh(note_warehouse), env=cli_env)
    assert (
        none_such.returncode == 1 and "no session 2025-12-25 in the warehouse (it holds" in none_such.stderr
    )
    injected = cli("ideas", "--symbol", "IWM' OR '1'='1", *wh(note_warehouse), env=cli_env)
    assert injected.returncode == 2 and "invalid symbol" in injected.stderr
    other = json.loads(
        cli("levels", "--format", "json", "-s", "QQQ", *wh(note_warehouse), env=cli_env).stdout
    )
    assert other == []


@pytest.mark.parametrize("command", ["sql", "ideas"])
def test_without_a_warehouse_one_line(command: str, tmp_path: Path, cli_env):
    args = ["SELECT 1"] if command == "sql" else []
    done = cli(command, *args, "--warehouse", str(tmp_path), env=cli_env)
    assert done.returncode == 1 and "no warehouse at" in done.stderr


def flow_run_id(stdout: str) -> UUID:
    url = re.search(r"^flow run: (http\S+)$", stdout, re.MULTILINE)
    assert url, stdout
    return UUID(url.group(1).rstrip("/").split("/")[-1])


def test_a_runs_name_and_info_logs_are_on_the_server_and_the_console_stays_quiet(note_warehouse: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    run_id = flow_run_id((note_warehouse / "stdout.txt").read_text())
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    assert run.name == f"nightly-{NOTE_DATE}" and run.state.is_completed() and run.state.name == "Completed"
    info = [log.message for log in logs if log.level == 20]
    assert any(m.startswith("ingested 3 file(s), 0 unchanged") for m in info), info
    assert any(m.startswith("nightly ") and "signals_daily" in m for m in info), info
    stderr = (note_warehouse / "stderr.txt").read_text()
    assert "INFO" not in stderr and "Traceback" not in stderr and "Error" not in stderr, stderr


def test_progress_lines_when_stderr_is_not_a_terminal(note_warehouse: Path):
    stderr = (note_warehouse / "stderr.txt").read_text().splitlines()
    stamped = [line[9:] for line in stderr if re.match(r"^\d\d:\d\d:\d\d ", line)]
    assert stamped[0] == f"nightly {NOTE_DATE}: starting on the Prefect server"
    assert "ingest and validate landing files ..." in stamped
    assert any(
        re.fullmatch(r"ingest and validate landing files: done in \d+\.\d s", line) for line in stamped
    )
    assert "gold sessions 1/1" in stamped
    assert re.fullmatch(rf"nightly {NOTE_DATE}: finished in \d+\.\d s", stamped[-1])


def test_a_holiday_on_a_server_is_a_skipped_run_with_its_reason(note_warehouse: Path, server_env):
    from prefect.client.orchestration import get_client

    done = cli("run", "--date", "2025-12-25", *wh(note_warehouse), env=server_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"skipped: {CHRISTMAS}\n")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id(done.stdout))
    assert run.name == "nightly-2025-12-25"
    assert (run.state.type.value, run.state.name, run.state.message) == ("COMPLETED", "Skipped", CHRISTMAS)
    logged = [
        json.loads(line) for line in (note_warehouse / "wh" / "logs" / "runs.jsonl").read_text().splitlines()
    ]
    assert {"status": "skipped", "date": "2025-12-25", "reason": CHRISTMAS}.items() <= logged[-1].items()


def test_without_a_server_a_holiday_and_nothing_new_answer_before_prefect(note_warehouse: Path, server_env):
    """Recorded in runs.jsonl by the CLI itself (the "-precheck" run id): no flow run, no temporary server."""
    local = {k: v for k, v in server_env.items() if k != "PREFECT_API_URL"}
    holiday = cli("run", "--date", "2025-12-25", *wh(note_warehouse), env=local)
    assert (holiday.returncode, holiday.stdout) == (0, f"skipped: {CHRISTMAS}\n"), holiday.stderr
    weekend = cli("run", "--date", "2025-12-27", *wh(note_warehouse), env=local)
    assert (
        weekend.stdout == "skipped: 2025-12-27 is not an XNYS session (Saturday); next session 2025-12-29\n"
    )
    again = cli(
        "run",
        "--date",
        str(NOTE_DATE),
        *wh(note_warehouse),
        "--landing",
        str(note_warehouse / "landing"),
        env=local,
    )
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(
        rf"skipped: nothing new in landing since run \S+ computed {NOTE_DATE} \(finished [^)]+\); "
        r"--force runs it again\n",
        again.stdout,
    ), again.stdout
    logged = [
        json.loads(line) for line in (note_warehouse / "wh" / "logs" / "runs.jsonl").read_text().splitlines()
    ]
    skips = [r for r in logged[-3:] if r["run_id"].endswith("-precheck")]
    assert [r["reason"][:27] for r in skips] == [
        CHRISTMAS[:27],
        "2025-12-27 is not an XNYS s",
        "nothing new in landing sinc",
    ]

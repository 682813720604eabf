"""A run SIGKILLed at any point, then re-run, leaves the lake and warehouse as one clean run would."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.storage.faults import CRASH_POINTS
from schemas.gold import GOLD_TABLES
from tests.helpers import cli_run, gold_bytes
from tests.spec_note import NEXT_DAY, NOTE_DATE

pytestmark = pytest.mark.e2e

LINEAGE_THAT_VARIES = ("_ingested_at",)  # when a row was read differs between two runs by design


def lake_contents(root: Path) -> dict[str, pl.DataFrame]:
    lake = root / "wh" / "lake"
    out = {}
    for path in sorted(lake.rglob("*")):
        if path.is_file() and "_staging" not in path.parts and "_manifest" not in path.parts:
            frame = (
                pl.read_parquet(path)
                if path.suffix == ".parquet"
                else pl.DataFrame({"raw": [path.read_bytes()]})
            )
            out[str(path.relative_to(lake))] = frame.drop(LINEAGE_THAT_VARIES, strict=False)
    return out


def warehouse_contents(root: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in GOLD_TABLES}
        tables["pipeline_runs"] = con.execute(
            "SELECT trade_date, dataset, rows_in, rows_out, rows_rejected, count(DISTINCT run_id) "
            "FROM pipeline_runs GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        return tables
    finally:
        con.close()


GOLD_COMMITTED = ("publish-half-committed",)
"""Crash points after the publish decided: the re-run finishes the commit and reuses the gold task's
cached result. Before it, the staged gold is not the lake's: the re-run computes it again."""


def gold_file_times(root: Path) -> dict[str, int]:
    """The next day's gold files with their modification times (ns)."""
    lake = root / "wh" / "lake"
    return {
        str(p.relative_to(lake)): p.stat().st_mtime_ns
        for p in (lake / "gold").glob(f"*/trade_date={NEXT_DAY}/*.parquet")
    }


@pytest.fixture(scope="module")
def clean_run(before_next_day, tmp_path_factory) -> Path:
    base, env = before_next_day
    root = tmp_path_factory.mktemp("clean")
    shutil.copytree(base, root, dirs_exist_ok=True)
    assert cli_run(root, env).returncode == 0
    return root


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_killed_run_then_rerun_equals_one_clean_run(crash_at, before_next_day, clean_run, tmp_path):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    killed = cli_run(tmp_path, env, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, (crash_at, killed.stderr[-500:])
    # Until the publish is decided, an analyst sees only the note's day, in the database and the lake.
    con = duckdb.connect(str(tmp_path / "wh" / "signals.duckdb"), read_only=True)
    assert con.execute("SELECT max(trade_date) FROM signals_daily").fetchall() == [(NOTE_DATE,)]
    con.close()
    gold_files = gold_file_times(tmp_path)
    if crash_at not in GOLD_COMMITTED:
        assert gold_files == {}, crash_at
        assert gold_bytes(tmp_path) == gold_bytes(base)
    rerun = cli_run(tmp_path, env)
    assert rerun.returncode == 0, rerun.stderr
    if crash_at in GOLD_COMMITTED:  # the gold task's cached result was reused: its files were not rewritten
        committed = gold_file_times(tmp_path)
        assert {k: v for k, v in committed.items() if k in gold_files} == gold_files and len(
            committed
        ) == len(GOLD_TABLES)
    recovered, clean = lake_contents(tmp_path), lake_contents(clean_run)
    assert recovered.keys() == clean.keys()
    for name, frame in clean.items():
        assert recovered[name].equals(frame), name
    assert warehouse_contents(tmp_path) == warehouse_contents(clean_run)
    debris = [p for p in (tmp_path / "wh").rglob("*") if ".tmp-" in p.name or ".next-" in p.name]
    assert debris == [] and not any((tmp_path / "wh" / "lake" / "_staging").glob("*"))

"""Running the pipeline as the tests run it (in process under the session's Prefect, or the real
`chainsignals` entry point as a subprocess) and reading back what it wrote."""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from flows.config import DEFAULT_CONFIG
from flows.storage.lake import Lake
from tests.spec_note import NEXT_DAY, NOTE_DATE, write_note_landing

ROOT = Path(__file__).resolve().parent.parent
CHAINSIGNALS = ROOT / ".venv" / "bin" / "chainsignals"


def cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """`chainsignals *args` as a user runs it; the result is returned whatever the exit code."""
    return subprocess.run(
        [str(CHAINSIGNALS), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def cli_run(root: Path, env: dict, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """`chainsignals run` for the note's next session on root, crashing at `crash_at` if given."""
    env = dict(env, **({"CHAINSIGNALS_CRASH_AT": crash_at} if crash_at else {}))
    return cli(
        "run",
        "--date",
        str(NEXT_DAY),
        "--warehouse",
        str(root / "wh"),
        "--landing",
        str(root / "landing"),
        env=env,
    )


def run_note_day(root: Path, env: dict) -> subprocess.CompletedProcess:
    """The note's landing files written under root/landing and run once through `chainsignals run
    --date <the note's day>` into root/wh; the run must succeed."""
    write_note_landing(root / "landing")
    done = cli(
        "run",
        "--date",
        str(NOTE_DATE),
        "--warehouse",
        str(root / "wh"),
        "--landing",
        str(root / "landing"),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_nightly(root: Path, day: date | None = None, **kw):
    """The nightly flow in process on root/landing into root/wh."""
    from flows.nightly import (
        nightly,  # Prefect loads only in the tests that run a flow (conftest imports this)
    )

    return nightly(date=day, warehouse=str(root / "wh"), landing=str(root / "landing"), **kw)


def config_with(tmp: Path, **ingest: float) -> str:
    """The default config with [ingest] settings replaced (e.g. a looser reject limit)."""
    text = DEFAULT_CONFIG.read_text()
    for key, value in ingest.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    path = tmp / "chainsignals.toml"
    path.write_text(text)
    return str(path)


def gold(root: Path, table: str, day: date) -> pl.DataFrame:
    """One session of a gold table from root/wh's lake, sorted by its first three columns."""
    files = Lake(root / "wh" / "lake").files("gold", table, dates=[day])
    frame = pl.read_parquet(files, hive_partitioning=True)
    return frame.sort(frame.columns[:3])


def gold_bytes(root: Path) -> dict[str, bytes]:
    """Every gold file of the lake, by path, with its bytes."""
    lake = root / "wh" / "lake" / "gold"
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}


def query(root: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Every row of `sql` on root/wh's DuckDB warehouse, read-only."""
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()

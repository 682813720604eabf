"""Scale-out: the gold stage in hash shards of underlyings, on threads or a local Dask cluster,
gives the same warehouse as one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from flows.nightly import backfill, with_dask
from flows.stages.gold import shard_of
from flows.storage.lake import Lake
from schemas.gold import GOLD_TABLES

pytestmark = pytest.mark.e2e  # Prefect flows, and Dask worker processes


def tables(root: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in GOLD_TABLES}
    finally:
        con.close()


def run(flow, root: Path, days: list, shards: int):
    return flow(
        start=days[0], end=days[-1], warehouse=str(root / "wh"), landing=str(root / "landing"), shards=shards
    )


@pytest.fixture(scope="module")
def single(market, tmp_path_factory) -> Path:
    source, days = market
    root = tmp_path_factory.mktemp("single")
    shutil.copytree(source / "landing", root / "landing")
    run(backfill, root, days, shards=1)
    return root


def test_shards_split_the_universe():
    symbols = ["SPY", "IWM", "QQQ", "AAPL", "MSFT", "NVDA", "TSLA"]
    assignment = {s: shard_of(s, 2) for s in symbols}
    assert set(assignment.values()) == {0, 1}  # both shards get work on the demo universe
    assert assignment == {s: shard_of(s, 2) for s in symbols}  # stable (not Python's salted hash)


def test_two_dask_workers_give_the_same_tables(market, single, tmp_path):
    source, days = market
    shutil.copytree(source / "landing", tmp_path / "landing")
    summary = run(with_dask(backfill, workers=2), tmp_path, days, shards=2)
    assert summary.dates == days
    assert tables(tmp_path) == tables(single)
    parts = {p.name for p in Lake(tmp_path / "wh" / "lake").files("gold", "signals_daily", dates=days)}
    assert parts == {"part-0-of-2.parquet", "part-1-of-2.parquet"}


def test_a_single_process_rerun_replaces_shard_parts(market, single, tmp_path):
    source, days = market
    shutil.copytree(source / "landing", tmp_path / "landing")
    run(backfill, tmp_path, days, shards=3)  # threads, three shards
    assert tables(tmp_path) == tables(single)
    run(backfill, tmp_path, days, shards=1)
    parts = {p.name for p in Lake(tmp_path / "wh" / "lake").files("gold", "trade_ideas", dates=days)}
    assert parts == {"part-0.parquet"}
    assert tables(tmp_path) == tables(single)

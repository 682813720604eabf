"""Run staging: background writes, back-pressure, in-memory hand-off, and failures that change nothing."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.storage import lake as lake_module
from flows.storage.lake import MAX_QUEUED_WRITES, Lake, Staging

DAY = date(2025, 12, 29)
SCHEMA = {"trade_date": pl.Date(), "symbol": pl.String(), "close": pl.Float64()}


def frame(symbol: str, close: float) -> pl.DataFrame:
    return pl.DataFrame({"trade_date": [DAY], "symbol": [symbol], "close": [close]}, schema=SCHEMA)


def committed_silver_and_bronze(tmp_path: Path) -> Staging:
    """A run that staged IWM's silver bar and SPY's bronze bar, committed."""
    staging = Staging(Lake(tmp_path / "lake"), "run-1")
    staging.stage(frame("IWM", 249.8), "silver", "bars", DAY, "part-0", exclusive=True)
    staging.stage(frame("SPY", 600.0), "bronze", "bars", DAY, "src-a", exclusive=False)
    staging.commit()
    return staging


def test_staged_files_are_written_in_the_background_and_committed_whole(tmp_path: Path):
    staging = committed_silver_and_bronze(tmp_path)
    lake = Lake(tmp_path / "lake")
    assert lake.scan("silver", "bars", SCHEMA).collect().rows() == [(DAY, "IWM", 249.8)]
    assert lake.scan("bronze", "bars", SCHEMA).collect().rows() == [(DAY, "SPY", 600.0)]
    assert not staging.root.exists()


def test_a_failed_background_write_fails_the_commit_and_changes_nothing(tmp_path: Path, monkeypatch):
    real_write = lake_module.write_atomic

    def failing(data: pl.DataFrame, path: Path, *args) -> None:
        if "SPY" in data.get_column("symbol").to_list():
            raise OSError("disk full")
        real_write(data, path, *args)

    monkeypatch.setattr(lake_module, "write_atomic", failing)
    staging = Staging(Lake(tmp_path / "lake"), "run-1")
    staging.stage(frame("IWM", 249.8), "silver", "bars", DAY, "part-0", exclusive=True)
    staging.stage(frame("SPY", 600.0), "silver", "chains", DAY, "part-0", exclusive=True)
    with pytest.raises(OSError, match="disk full"):
        staging.commit()
    staging.discard()
    assert Lake(tmp_path / "lake").dates("silver", "bars") == []


def test_staging_waits_when_the_writer_falls_behind(tmp_path: Path, monkeypatch):
    release = threading.Event()
    real_write = lake_module.write_atomic

    def slow(data: pl.DataFrame, path: Path, *args) -> None:
        release.wait(10)
        real_write(data, path, *args)

    monkeypatch.setattr(lake_module, "write_atomic", slow)
    staging = Staging(Lake(tmp_path / "lake"), "run-1")
    for index in range(MAX_QUEUED_WRITES):
        staging.stage(frame(f"S{index}", 1.0), "bronze", "bars", DAY, f"src-{index}", exclusive=False)
    blocked = threading.Thread(
        target=staging.stage, args=(frame("LAST", 1.0), "bronze", "bars", DAY, "src-x", False)
    )
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive()  # a fourth frame waits for the writer instead of queueing in memory
    release.set()
    blocked.join(10)
    assert not blocked.is_alive()
    staging.commit()
    assert Lake(tmp_path / "lake").scan("bronze", "bars", SCHEMA).collect().height == MAX_QUEUED_WRITES + 1


def test_kept_frames_read_as_the_files_would(tmp_path: Path):
    staging = Staging(Lake(tmp_path / "lake"), "run-1", keep_rows=10)
    kept = staging.stage(frame("IWM", 249.8), "bronze", "bars", DAY, "src-a", exclusive=False, keep=True)
    assert kept in staging.kept
    from_memory = staging.read([kept], SCHEMA).collect()
    staging.forget([kept])
    from_file = staging.read([kept], SCHEMA).collect()
    assert from_memory.equals(from_file) and from_file.rows() == [(DAY, "IWM", 249.8)]
    assert staging.rows([kept]) == 1
    staging.discard()


def test_frames_beyond_the_budget_are_not_kept(tmp_path: Path):
    staging = Staging(Lake(tmp_path / "lake"), "run-1", keep_rows=1)
    first = staging.stage(frame("IWM", 249.8), "bronze", "bars", DAY, "src-a", exclusive=False, keep=True)
    second = staging.stage(frame("SPY", 600.0), "bronze", "bars", DAY, "src-b", exclusive=False, keep=True)
    assert staging.kept == {} and staging.keep_rows == 0  # all or nothing: a backfill reads its files
    assert staging.read([first, second], SCHEMA).collect().get_column("symbol").to_list() == ["IWM", "SPY"]
    staging.discard()


def test_split_dates_hands_back_a_one_date_frame_without_copying_it():
    day = date(2025, 12, 31)
    nightly = pl.DataFrame({"trade_date": [day, day], "x": [1, 2]})
    assert lake_module.split_dates(nightly)[day] is nightly


def test_split_dates_partitions_a_history_and_leaves_out_rows_without_a_date():
    first, second = date(2025, 12, 30), date(2025, 12, 31)
    history = pl.DataFrame({"trade_date": [second, first, None, second], "x": [1, 2, 3, 4]})
    parts = lake_module.split_dates(history)
    assert sorted(parts) == [first, second]
    assert parts[first]["x"].to_list() == [2]
    assert parts[second]["x"].to_list() == [1, 4]
    assert (
        lake_module.split_dates(
            pl.DataFrame({"trade_date": [None], "x": [1]}, schema={"trade_date": pl.Date, "x": pl.Int64})
        )
        == {}
    )
    assert lake_module.split_dates(history.clear()) == {}


def parquet_close_column(path: Path) -> tuple:
    import duckdb

    return duckdb.sql(
        "SELECT compression, stats_min_value, stats_max_value FROM parquet_metadata(?) "
        "WHERE path_in_schema = 'close'",
        params=[str(path)],
    ).fetchall()[0]


def test_scratch_rows_stay_in_memory_until_the_budget_is_passed_then_go_to_lz4_files_never_the_lake(
    tmp_path: Path,
):
    lake = Lake(tmp_path / "lake")
    staging = Staging(lake, "run-1", keep_rows=1)
    first = staging.stage_scratch(frame("IWM", 249.8), "bars", DAY, "src-a")
    assert first in staging.kept and not first.exists()  # a nightly's rows never touch the disk
    second = staging.stage_scratch(frame("SPY", 600.0), "bars", DAY, "src-b")
    staging.wait()
    assert staging.kept == {} and first.exists() and second.exists()  # both spilled, the kept one too
    assert parquet_close_column(first) == ("LZ4_RAW", None, None)
    assert staging.scratch_files("bars", DAY) == [first, second]
    assert staging.read([first, second], SCHEMA).collect().rows() == [
        (DAY, "IWM", 249.8),
        (DAY, "SPY", 600.0),
    ]
    staging.stage(frame("IWM", 249.8), "silver", "bars", DAY, "part-0", exclusive=True)
    staging.commit()
    [silver] = lake.files("silver", "bars")
    assert parquet_close_column(silver) == ("ZSTD", "249.8", "249.8")
    assert sorted(
        p.relative_to(lake.root).as_posix()
        for p in lake.root.rglob("*.parquet")
        if "_manifest" not in p.parts
    ) == [f"silver/bars/trade_date={DAY}/part-0.parquet"]


def test_a_raw_copy_commits_at_its_content_address_with_its_checksum(tmp_path: Path):
    landing = tmp_path / "bars_2025-12-29.csv"
    landing.write_text("date,symbol,close\n2025-12-29,IWM,249.8\n")
    lake = Lake(tmp_path / "lake")
    staging = Staging(lake, "run-1")
    copy = staging.stage_raw(landing)
    digest = lake_module.file_sha256(copy)
    final = lake.bronze_file(lake_module.bronze_key("bars", digest, lake_module.raw_suffix(landing.name)))
    staging.keep_raw(copy, final, digest)
    landing.write_text("date,symbol,close\n2025-12-29,IWM,1.0\n")  # rewritten in place meanwhile
    assert not final.exists()  # nothing in the lake before the commit
    staging.commit()
    assert final == lake.root / "bronze" / "bars" / digest[:2] / f"{digest}.csv"
    assert final.read_text() == "date,symbol,close\n2025-12-29,IWM,249.8\n"  # the bytes that were read
    assert lake_module.verify_lake(lake) == (1, [])
    final.write_text("tampered")
    now = lake_module.file_sha256(final)
    assert lake_module.verify_lake(lake)[1] == [
        f"{final}: sha256 {now[:12]}... differs from the {digest[:12]}... it was committed with"
    ]


def test_files_of_named_dates_are_the_listings_without_listing_the_history(tmp_path: Path, monkeypatch):
    """A nightly names its dates: their folders are looked up, the rest of the history is not listed
    (a year of partitions would cost a scan per call), and the answer is what the listing gives."""
    lake = Lake(tmp_path / "lake")
    days = [date(2025, 12, d) for d in (26, 29, 30, 31)]
    for day in days:
        lake.write_partitions(
            frame("IWM", 249.8).with_columns(pl.lit(day).alias("trade_date")), "silver", "bars"
        )
    (lake.partition_dir("silver", "bars", date(2025, 12, 24))).mkdir(parents=True)  # a folder without files
    wanted = [date(2025, 12, 31), date(2025, 12, 24), date(2025, 12, 29), date(2025, 12, 1)]
    listed = lake.files("silver", "bars")
    expected = [f for f in listed if f.parent.name in {"trade_date=2025-12-29", "trade_date=2025-12-31"}]
    monkeypatch.setattr(Lake, "dates", lambda *a, **k: pytest.fail("listed every partition"))
    assert lake.files("silver", "bars", dates=wanted) == expected
    assert lake.files("silver", "bars", dates=wanted, end=date(2025, 12, 30)) == expected[:1]
    assert lake.files("silver", "bars", dates=wanted, start=date(2025, 12, 30)) == expected[1:]


def test_a_commit_stopped_between_its_halves_leaves_no_partition_with_old_and_new_parts(
    tmp_path: Path, monkeypatch
):
    """Each partition's replaced files go as soon as its half is in place: a reader between a killed commit
    and the next run sees the old rows or the new ones, never both."""
    lake = Lake(tmp_path / "lake")
    other = date(2025, 12, 30)
    first = Staging(lake, "run-1")
    first.stage(frame("IWM", 1.0), "silver", "bars", other, "old-part", exclusive=True)
    first.stage(frame("IWM", 2.0), "silver", "bars", DAY, "old-part", exclusive=True)
    first.commit()

    class Stopped(Exception):
        pass

    def stop_at(name: str) -> None:
        if name == "commit-half-done":
            raise Stopped

    monkeypatch.setattr(lake_module, "crash_point", stop_at)
    second = Staging(lake, "run-2")
    second.stage(
        frame("IWM", 10.0).with_columns(trade_date=pl.lit(other)),
        "silver",
        "bars",
        other,
        "new-part",
        exclusive=True,
    )
    second.stage(frame("IWM", 20.0), "silver", "bars", DAY, "new-part", exclusive=True)
    with pytest.raises(Stopped):
        second.commit()
    closes = dict(lake.scan("silver", "bars", SCHEMA).collect().select("trade_date", "close").rows())
    assert sorted(p.name for p in lake.partition_dir("silver", "bars", other).glob("*.parquet")) == [
        "new-part.parquet"
    ]
    assert closes == {other: 10.0, DAY: 2.0}

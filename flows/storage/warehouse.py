"""The DuckDB warehouse: gold tables, pipeline_runs and the analyst views of sql/.

DuckDB lets one process write or many read a file, never both. A publish therefore builds the next
database beside the current one (a copy, the new dates loaded in one transaction, views applied,
checkpointed) and swaps it in with an atomic rename. An analyst holding `signals.duckdb` open keeps
reading the previous day's file until they reconnect; they never see a partial load, and they never
block the nightly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from flows.config import PROJECT_ROOT
from flows.errors import ChainsignalsError
from flows.storage.faults import crash_point, disk_full_point
from flows.storage.lake import GoldStagedLake, Lake, roll_forward, uri, write_journal

if TYPE_CHECKING:
    from schemas.gold import GoldTable

SQL_DIR = PROJECT_ROOT / "sql"


class WarehouseBusy(ChainsignalsError):
    """Another run holds the warehouse; the message says which."""


_HELD: dict[Path, int] = {}
"""Locks the CLI took for the flow it runs in this process, with their depth: the flow takes the lock
again and enters (a second flock on another open file would refuse it)."""


@contextmanager
def warehouse_lock(
    root: Path, wait_seconds: float = 0.0, *, for_this_process: bool = False
) -> Iterator[None]:
    """One run at a time per warehouse (the lake and the database file are shared state).
    `for_this_process`: later calls in this process enter it (the CLI holds it for its flow)."""
    import time

    root.mkdir(parents=True, exist_ok=True)
    path = (root / ".chainsignals.lock").resolve()
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise WarehouseBusy(
                        f"another chainsignals run holds {path} ({holder})", file=path
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        if for_this_process:
            _HELD[path] = 1
        try:
            yield
        finally:
            _HELD.pop(path, None)
            fcntl.flock(handle, fcntl.LOCK_UN)


class WarehouseInUse(ChainsignalsError):
    """An analyst's read-write connection holds signals.duckdb; the message says how to reconnect."""


def _writer_pid(database: Path) -> int | None:
    """The process holding DuckDB's write lock on the file (a read-write connection), if another one
    does: fcntl F_GETLK asks who would conflict with a write lock. Read-only connections hold read
    locks, which a publish does not mind (it swaps the file; they keep the old one)."""
    try:
        with database.open("rb") as handle:
            query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(handle.fileno(), fcntl.F_GETLK, query))
    except OSError:
        return None
    return pid if kind == fcntl.F_WRLCK else None


def check_no_writer(database: Path) -> str | None:
    """Refuse to publish under an analyst's read-write connection, and fold the WAL one left behind
    into the file (their changes kept) so the database the publish copies opens. Returns a warning
    line when a WAL had to be set aside instead."""
    if not database.exists():
        return None
    pid = _writer_pid(database)
    if pid:
        raise WarehouseInUse(
            f"{database} is open read-write by process {pid} (DuckDB's default): a publish would lose what that "
            f"connection writes. Close it and reconnect read-only: duckdb.connect('{database}', read_only=True)",
            file=database,
        )
    wal = database.with_name(database.name + ".wal")
    if not wal.exists():
        return None
    try:  # a connection that ended without a checkpoint: replay its WAL and checkpoint it into the file
        con = quiet(duckdb.connect(str(database)))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return None
    except duckdb.Error as exc:
        # A WAL written against a file a publish has since replaced cannot apply to this one.
        aside = wal.with_name(f"{wal.name}.orphaned-{uuid.uuid4().hex[:8]}")
        os.replace(wal, aside)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{wal} did not apply to {database} ({first}): set aside as {aside.name}"


def sql_files(kind: str) -> list[Path]:
    return sorted((SQL_DIR / kind).glob("*.sql"))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _gold_source(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, files: list) -> str:
    """What the load selects from: DuckDB reads local gold files itself; from object storage polars
    reads them (DuckDB's httpfs extension would be a download at run time) and DuckDB scans the Arrow."""
    if not lake.remote:
        return (
            f"read_parquet([{', '.join(_quote(str(f)) for f in files)}], hive_partitioning = true, "
            f"union_by_name = true)"
        )
    frames = [
        pl.scan_parquet(uri(f), hive_partitioning=True, hive_schema={"trade_date": pl.Date}) for f in files
    ]
    con.register(f"gold_{table}", pl.concat(frames, how="diagonal_relaxed").collect().to_arrow())
    return f"gold_{table}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }


def declare_gold_table(con: duckdb.DuckDBPyConnection, table: GoldTable) -> None:
    """The gold table as its model declares it (types, NOT NULL, key, comments). A database from before
    gold named the instrument `symbol` gets its column renamed; its other columns stay as they were."""
    con.execute(table.ddl())
    columns = _columns(con, table.name)
    if "underlying" in columns and "symbol" not in columns:
        con.execute(f"ALTER TABLE {table.name} RENAME COLUMN underlying TO symbol")
        columns = _columns(con, table.name)
    for statement in table.comments(columns):
        con.execute(statement)


def _load_table(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, dates: list[date]) -> int:
    files = lake.files("gold", table, dates=dates)
    if not files:
        return 0
    source = _gold_source(con, lake, table, files)
    select = f"SELECT trade_date, * EXCLUDE (trade_date) FROM {source}"
    existing = _columns(con, table)
    for name, dtype, *_ in con.execute(f"DESCRIBE {select}").fetchall():
        if name not in existing:  # gold gained a column: the table gains it too (older rows NULL)
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {dtype}')
    con.execute(f"DELETE FROM {table} WHERE trade_date IN (SELECT unnest(?::DATE[]))", [dates])
    con.execute(f"INSERT INTO {table} BY NAME {select}")
    if lake.remote:
        con.unregister(source)
    return con.execute(
        f"SELECT count(*) FROM {table} WHERE trade_date IN (SELECT unnest(?::DATE[]))", [dates]
    ).fetchall()[0][0]


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int), share the source's extents copy-on-write


def clone_file(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source`: a reflink where the filesystem has them (XFS, Btrfs), a byte
    copy elsewhere. The database file grows with every session kept (about 1 GB after a full-market
    year); a reflink makes the nightly's copy O(1) instead of a read and write of all of it."""
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return
        except OSError:  # EOPNOTSUPP, EXDEV, EINVAL...: this filesystem or pair cannot share extents
            pass
    try:
        shutil.copyfile(source, target)  # an in-kernel copy (sendfile) on Linux
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # sendfile's error names no file: the operator needs the path
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from None
        raise


def publish(database: Path, lake: Lake, tables: dict[str, list[date]], runs: pl.DataFrame) -> dict[str, int]:
    """Load the given gold partitions and run records into a new database file and swap it in.

    With a run's staged gold (a GoldStagedLake) the staged partitions are committed into the lake with
    the swap: a journal written once the new database is complete records both, and `roll_forward`
    carries them out (the next run finishes it if this one is killed half-way). Before the journal,
    a failure leaves the lake's gold and the database as they were."""
    from schemas.gold import GOLD  # pandera costs a second to import: read-only commands do without it

    database.parent.mkdir(parents=True, exist_ok=True)
    roll_forward(database.parent)  # a publish killed after its decision: finish it before the next one
    check_no_writer(database)
    for debris in database.parent.glob(f".{database.name}.next-*"):  # from a publish that was killed
        debris.unlink(missing_ok=True)
    next_file = database.with_name(f".{database.name}.next-{uuid.uuid4().hex[:8]}")
    loaded: dict[str, int] = {}
    decided = False
    try:
        if database.exists():
            disk_full_point("database-copy", next_file)
            clone_file(database, next_file)
        con = quiet(duckdb.connect(str(next_file)))
        try:
            con.execute("BEGIN TRANSACTION")
            for ddl in sql_files("tables"):
                con.execute(ddl.read_text())
            for gold in GOLD:
                declare_gold_table(con, gold)
            for index, (table, dates) in enumerate(tables.items()):
                if index == len(tables) // 2:
                    crash_point("load-mid-transaction")
                    disk_full_point("database-load", next_file)
                loaded[table] = _load_table(con, lake, table, sorted(set(dates)))
            if runs.height:
                con.register("new_runs", runs.to_arrow())
                # Idempotent: stats a killed run left pending may already be in (published, not cleared).
                con.execute("""
                    INSERT INTO pipeline_runs BY NAME
                    SELECT * FROM new_runs AS r WHERE NOT EXISTS (
                        SELECT 1 FROM pipeline_runs AS p
                        WHERE p.run_id = r.run_id AND p.trade_date = r.trade_date AND p.dataset = r.dataset)""")
                con.unregister("new_runs")
            for view in sql_files("views"):
                con.execute(view.read_text())
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except BaseException:
            # The failure may have happened outside the transaction (or after it ended).
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        crash_point("database-built")
        if isinstance(lake, GoldStagedLake):
            write_journal(database.parent, lake, next_file, database)
            decided = True
            roll_forward(database.parent)
        else:
            os.replace(next_file, database)
    finally:
        if not decided:
            next_file.unlink(missing_ok=True)
        Path(str(next_file) + ".wal").unlink(missing_ok=True)
    return loaded


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` without DuckDB's progress bar, which prints to stdout: into cron mail, and into the output
    of `chainsignals sql --format csv`."""
    con.execute("SET enable_progress_bar = false")
    return con


def connect_read_only(database: Path) -> duckdb.DuckDBPyConnection:
    return quiet(duckdb.connect(str(database), read_only=True))

"""Ingest: landing files taken when complete, their raw bytes kept as bronze, the manifest, rows dated on a
non-session quarantined; then silver for the sessions that changed (`ingest_and_validate`)."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from flows.config import Settings
from flows.sources.calendar import non_sessions
from flows.sources.files import (
    IDENTITY_COLUMNS,
    SourceError,
    check_size,
    conform,
    file_digest,
    file_status,
    identity_between,
    landing_digest,
    landing_files,
    now_utc,
    read_text_frame,
)
from flows.stages.sessions import StageStats, record_pending_stats
from flows.stages.silver import PIPELINE_DATASETS, build_silver, dirty_silver_dates
from flows.storage.faults import crash_point
from flows.storage.lake import (
    Lake,
    Staging,
    bronze_key,
    copy_file,
    raw_suffix,
    read_manifest,
    split_dates,
    sweep_debris,
    write_manifest,
)
from schemas.quarantine import NOT_A_SESSION, REASON


# ------------------------------------------------------------------------------------------ ingest
@dataclass
class IngestResult:
    touched: dict[str, set[date]]
    manifest: pl.DataFrame
    files_read: int
    files_skipped: int
    warnings: list[str] = field(default_factory=list)  # for the operator; the run goes on
    hidden: list[str] = field(default_factory=list)  # landing files skipped for a leading dot
    unsettled: list[str] = field(default_factory=list)  # still changing: left for the next run


def _part_name(relative: str) -> str:
    return "src-" + hashlib.sha1(relative.encode()).hexdigest()[:16]


def _settled(paths: list[Path], seconds: float) -> tuple[list[Path], list[Path]]:
    """(files whose size and mtime held still for `seconds`, files still changing). A file younger
    than that is looked at again once it would be old enough (one wait for all, at most `seconds`):
    a copy in progress keeps growing and is left for the next run."""
    if seconds <= 0 or not paths:
        return paths, []
    before = {p: p.stat() for p in paths}
    youngest = max(st.st_mtime for st in before.values())
    wait = youngest + seconds - time.time()
    if wait <= 0:
        return paths, []
    time.sleep(min(wait, seconds))
    settled, moving = [], []
    for path in paths:
        now = path.stat()
        same = (now.st_size, now.st_mtime_ns) == (before[path].st_size, before[path].st_mtime_ns)
        (settled if same else moving).append(path)
    return settled, moving


@dataclass
class LandedFile:
    """A landing file copied once (a reflink where the filesystem has them), the copy hashed and
    conformed to typed bronze rows: bronze keeps exactly the bytes that were parsed, even if the vendor
    rewrites the file meanwhile."""

    path: Path  # the landing file
    copy: Path
    identity: dict[str, int | None]  # the manifest's status columns (file_identity)
    status: tuple[int, int, int, int]  # the landing file's, right after the copy (file_status)
    sha256: str
    bronze: pl.DataFrame
    fmt: str
    ingested_at: datetime
    explicit_format: str | None

    def unchanged(self) -> bool:
        """The landing file is still the one copied (its status has not moved since)."""
        return file_status(self.path.stat()) == self.status


def land_file(
    path: Path,
    settings: Settings,
    dataset: str,
    ingested_at: datetime,
    explicit_format: str | None,
    copy_of: Callable[[Path], Path],
    hasher: Executor,
) -> LandedFile:
    """Copy (`copy_of`), hash (on `hasher`, beside the parse: both mostly GIL-free) and conform one
    landing file."""
    check_size(path, settings.max_file_bytes)
    started, before = time.time(), path.stat()
    copy = copy_of(path)
    after = path.stat()
    digest = hasher.submit(file_digest, copy)
    bronze, fmt = conform(
        read_text_frame(copy, settings.max_file_bytes, shown=path),
        dataset,
        path,
        path.relative_to(settings.landing).as_posix(),
        ingested_at,
        explicit_format,
    )
    return LandedFile(
        path,
        copy,
        identity_between(before, after, started),
        file_status(after),
        digest.result(),
        bronze,
        fmt,
        ingested_at,
        explicit_format,
    )


def _in_bronze(path: Path, previous: dict | None, landed: LandedFile | None = None) -> dict | None:
    """The file's status columns (file_identity) when the manifest's row `previous` says bronze holds
    exactly its bytes, else None. A new file, or a row from before bronze kept raw bytes, is not hashed
    here: it is read (and hashed) once, by land_file."""
    if not (previous and previous["bronze"]):
        return None
    digest, identity = (landed.sha256, landed.identity) if landed else landing_digest(path, previous)
    return identity if digest == previous["sha256"] else None


class ReadAhead:
    """The landing files the next ingest will read, copied, hashed and conformed on a background thread
    while the process waits for something else (`chainsignals run` waits for Prefect's temporary
    server). Its copies wait under <warehouse>/.cache/read-ahead; nothing in the lake is written. The
    ingest takes a file's result only while the file is unchanged since (the same status); any other
    file, or all of them after a failure here, it reads itself as usual, and a failure is then reported
    in its context. It holds at most about the rows a nightly's ingest keeps in memory (2 x batch_rows):
    a landing folder of many new files (a week offline, `--force`) is read ahead only up to that, the
    rest by the ingest itself."""

    def __init__(self, settings: Settings, force: bool = False) -> None:
        self._stop = threading.Event()
        self._landed: dict[Path, LandedFile] = {}
        # Its copies wait outside the lake's staging (the run sweeps that first); the warehouse lock is
        # held, so a folder left here is a dead process's.
        shutil.rmtree(settings.warehouse / READ_AHEAD_FOLDER, ignore_errors=True)
        self.folder = settings.warehouse / READ_AHEAD_FOLDER / uuid.uuid4().hex
        self._thread = threading.Thread(
            target=self._read, args=(settings, force), name="landing-read-ahead", daemon=True
        )
        self._thread.start()

    def _read(self, settings: Settings, force: bool) -> None:
        try:
            manifest = read_manifest(Lake(settings.lake))
            known = {row["path"]: row for row in manifest.iter_rows(named=True)}
            ingested_at = now_utc()
            held, budget = 0, 2 * settings.batch_rows
            with ThreadPoolExecutor(max_workers=1) as hasher:
                for dataset in PIPELINE_DATASETS:
                    for path in landing_files(settings.landing, dataset):
                        if self._stop.is_set() or held >= budget:
                            return
                        previous = known.get(path.relative_to(settings.landing).as_posix())
                        if path.stat().st_mtime > time.time() - settings.stable_seconds:
                            continue  # still arriving: the ingest waits for it (_settled)
                        if not force and _in_bronze(path, previous) is not None:
                            continue
                        self._landed[path] = land_file(
                            path, settings, dataset, ingested_at, None, self._copy, hasher
                        )
                        held += self._landed[path].bronze.height
        except Exception:  # what is not read ahead the ingest reads, and reports a failure in its context
            return

    def _copy(self, path: Path) -> Path:
        copy = self.folder / f"{uuid.uuid4().hex}{raw_suffix(path.name)}"
        copy_file(path, copy)
        return copy

    def take(self, path: Path, explicit_format: str | None) -> LandedFile | None:
        """The file as read ahead, if it was and has not changed since; the read-ahead stops at its first
        take (the ingest reads the files it had not reached)."""
        self._stop.set()
        self._thread.join()
        landed = self._landed.pop(path, None)
        if landed is None or landed.explicit_format != explicit_format or not landed.unchanged():
            return None
        return landed

    def close(self) -> None:
        """Stop; the copies no ingest took are deleted."""
        self._stop.set()
        self._thread.join()
        self._landed.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


READ_AHEAD_FOLDER = Path(".cache") / "read-ahead"
"""Under the warehouse: the read-ahead's copies until the ingest moves them into its staging."""


_READ_AHEAD: dict[Path, ReadAhead] = {}
"""Per landing folder, the read-ahead this process started for its next ingest (process-local: a
Prefect task in this process takes it; an ingest elsewhere never sees it and reads as usual)."""


def start_read_ahead(settings: Settings, force: bool = False) -> None:
    """Read ahead the landing files the next ingest of `settings.landing` in this process will take."""
    previous = _READ_AHEAD.pop(settings.landing.resolve(), None)
    if previous:
        previous.close()
    _READ_AHEAD[settings.landing.resolve()] = ReadAhead(settings, force)


def ingest_landing(
    settings: Settings,
    staging: Staging,
    *,
    datasets: tuple[str, ...] = PIPELINE_DATASETS,
    force: bool = False,
    formats: dict[str, str] | None = None,
) -> IngestResult:
    """Copy every new or changed landing file into bronze (its raw bytes, keyed by sha256) and hold its
    typed rows for silver; unchanged files are skipped.

    A file is unchanged when its sha256 matches the manifest's, whatever its size and mtime (a
    corrected file extracted from an archive keeps both); the manifest's ctime and inode spare hashing
    a file that provably did not change (`known_digest`). The run parses and hashes its own copy of the
    file, so bronze holds exactly the bytes that were read. A file of several sessions delivered again re-validates only
    the sessions whose rows changed (the manifest keeps each session's rows digest). Files still being
    written (see _settled) and hidden files are left out, and listed in the result.
    """
    manifest = read_manifest(staging.lake)
    known = {row["path"]: row for row in manifest.iter_rows(named=True)}
    touched: dict[str, set[date]] = defaultdict(set)
    new_rows, read, skipped, warnings = [], 0, 0, []
    hidden: list[Path] = []
    listed = {dataset: landing_files(settings.landing, dataset, hidden) for dataset in datasets}
    settled, unsettled = _settled([p for paths in listed.values() for p in paths], settings.stable_seconds)
    settled_set = set(settled)
    ingested_at = now_utc()
    ahead = _READ_AHEAD.pop(settings.landing.resolve(), None)
    try:
        with ThreadPoolExecutor(max_workers=1) as background:
            for dataset in datasets:
                for path in (p for p in listed[dataset] if p in settled_set):
                    relative = path.relative_to(settings.landing).as_posix()
                    previous = known.get(relative)
                    explicit = (formats or {}).get(dataset)
                    landed = ahead.take(path, explicit) if ahead else None
                    identity = None if force else _in_bronze(path, previous, landed)
                    if identity is not None:
                        if any(previous[c] != identity[c] for c in IDENTITY_COLUMNS):
                            new_rows.append({**previous, **identity})
                        skipped += 1
                        continue
                    if landed is None:
                        landed = land_file(
                            path, settings, dataset, ingested_at, explicit, staging.stage_raw, background
                        )
                        copy = landed.copy
                    else:
                        copy = staging.adopt_raw(landed.copy)
                    row = _land_rows(
                        settings, staging, dataset, relative, landed, previous, force, touched, warnings
                    )
                    key = bronze_key(dataset, landed.sha256, raw_suffix(path.name))
                    staging.keep_raw(copy, staging.lake.bronze_file(key), landed.sha256)
                    new_rows.append({**row, **landed.identity, "bronze": key})
                    read += 1
    finally:
        if ahead:
            ahead.close()
    updated = {r["path"]: r for r in [*known.values(), *new_rows]}
    merged = pl.DataFrame(list(updated.values()), schema=manifest.schema) if updated else manifest
    return IngestResult(
        dict(touched),
        merged,
        read,
        skipped,
        warnings,
        [p.relative_to(settings.landing).as_posix() for p in hidden],
        [p.relative_to(settings.landing).as_posix() for p in unsettled],
    )


def _land_rows(
    settings: Settings,
    staging: Staging,
    dataset: str,
    relative: str,
    landed: LandedFile,
    previous: dict | None,
    force: bool,
    touched: dict[str, set[date]],
    warnings: list[str],
) -> dict:
    """Stage a read file's rows by session (non-sessions and undated rows to quarantine); its manifest
    row, without status and bronze key."""
    path, bronze = landed.path, landed.bronze
    part = _part_name(relative)
    dates = sorted(d for d in bronze.get_column("trade_date").unique().to_list() if d is not None)
    undated = (
        bronze.filter(pl.col("trade_date").is_null())
        if bronze.get_column("trade_date").null_count()
        else bronze.clear()
    )
    if len(undated) == len(bronze) and len(bronze):
        raise SourceError(f"{path}: no row has a readable date", file=path, dataset=dataset)
    off = non_sessions(dates, settings.calendar)
    if off:  # e.g. a vendor's stale snapshot on a holiday: quarantined here, never a session
        bronze = _stage_non_sessions(staging, dataset, bronze, off, part)
        dates = [d for d in dates if d not in off]
        warnings.append(_non_session_warning(relative, off, settings.calendar))
    by_day = split_dates(bronze)
    # A file of one session that changed has changed that session: no digest needed.
    digests = {day: _rows_digest(rows) for day, rows in by_day.items()} if len(by_day) > 1 else {}
    before = (
        dict(zip(previous["dates"], previous["digests"], strict=True))
        if previous and previous["digests"] and not force
        else {}
    )
    changed = []
    for day, rows in by_day.items():
        if before.get(day) is not None and before[day] == digests.get(day):
            continue  # a cumulative file delivered again: this day's rows as they were
        staging.stage_scratch(rows, dataset, day, part)
        changed.append(day)
    if len(undated):
        # Rows without a date cannot be partitioned: they go straight to quarantine.
        _stage_undated(staging, dataset, undated, landed.ingested_at.date(), part)
    for stale in set(previous["dates"] if previous else []) - set(dates):
        touched[dataset].add(stale)  # the file no longer holds it: rebuilt from the others
    touched[dataset].update(changed)
    unbuilt = (set(previous["unbuilt"] or []) & set(dates) if previous else set()) | set(changed)
    return {
        "path": relative,
        "dataset": dataset,
        "format": landed.fmt,
        "sha256": landed.sha256,
        "part": part,
        "dates": dates,
        "rows": len(bronze),
        "ingested_at": landed.ingested_at,
        "digests": [digests[d] for d in dates] if digests else None,
        "unbuilt": sorted(unbuilt),
    }


# What a delivery adds to a row, left out of a session's rows digest: in a file sorted by symbol a new
# session's rows land between the old ones and shift every row number.
DELIVERY_COLUMNS = ["trade_date", "_source_row", "_ingested_at"]


def _rows_digest(rows: pl.DataFrame) -> str:
    """A session's rows, in order (the order decides duplicates), as one digest. polars' row hashes
    are stable within its version; after an upgrade a cumulative file's sessions are re-validated once."""
    hashes = rows.drop(DELIVERY_COLUMNS, strict=False).hash_rows()
    return hashlib.sha256(hashes.to_numpy().tobytes()).hexdigest()


def _stage_non_sessions(
    staging: Staging, dataset: str, bronze: pl.DataFrame, days: list[date], part: str
) -> pl.DataFrame:
    """Stage the rows dated on `days` (not sessions) to quarantine; the other rows, for bronze.

    They never reach bronze or silver, so such a day is never a session nor any session's previous one,
    and they are not part of any session's rejected share: a vendor's stale holiday file is normal, not
    bad data. The run warns about them instead (_non_session_warning)."""
    off = pl.col("trade_date").is_in(days)
    rows = bronze.filter(off).with_columns(pl.lit(NOT_A_SESSION).alias(REASON))
    for day, day_rows in split_dates(rows).items():
        staging.stage(day_rows, "quarantine", dataset, day, part, exclusive=False)
    return bronze.filter(~off)


def _non_session_warning(relative: str, days: list[date], calendar: str) -> str:
    shown = ", ".join(map(str, days[:5])) + (f" and {len(days) - 5} more" if len(days) > 5 else "")
    return (
        f"{relative}: rows dated {shown}, not {calendar} session(s), quarantined as {NOT_A_SESSION} "
        f"(a vendor's stale snapshot; never a previous session)"
    )


def _stage_undated(staging: Staging, dataset: str, undated: pl.DataFrame, day: date, part: str) -> None:
    rows = undated.with_columns(pl.lit("unparsable:trade_date").alias(REASON))
    staging.stage(rows.drop("trade_date"), "quarantine", f"{dataset}_undated", day, part, exclusive=False)


def ingest_and_validate(
    settings: Settings,
    run_id: str,
    *,
    end: date | None = None,
    force: bool = False,
    formats: dict[str, str] | None = None,
) -> tuple[IngestResult, StageStats]:
    """Landing -> bronze -> silver for every new or dirty date, committed only when all of it passed."""
    lake = Lake(settings.lake)
    # A lake on object storage stages on local disk, beside the lock that guards it.
    staging_folder = settings.warehouse / ".staging" if lake.remote else None
    sweep_debris(lake, staging_folder)
    # A nightly's typed rows (one session of every dataset, each up to a batch) pass to silver in memory;
    # a backfill's do not fit and are re-read from scratch files.
    staging = Staging(lake, run_id, folder=staging_folder, keep_rows=2 * settings.batch_rows)
    stats = StageStats()
    try:
        result = ingest_landing(settings, staging, force=force, formats=formats)
        manifest = result.manifest
        built: dict[str, list[date]] = {}
        for dataset in PIPELINE_DATASETS:  # bars first: chains take spot from them
            dates = result.touched.get(dataset, set()) | dirty_silver_dates(lake, dataset, manifest)
            if dataset == "trades":  # a changed chain re-judges that day's prints (unknown_contract...)
                printed = set(
                    manifest.filter(pl.col("dataset") == "trades").get_column("dates").explode().to_list()
                )
                dates |= result.touched.get("chains", set()) & printed
            if end is not None:
                dates = {d for d in dates if d <= end}
            build_silver(settings, staging, dataset, dates, stats, manifest)
            built[dataset] = sorted(dates)
        # Sessions whose silver this run built are no longer waiting for it.
        result.manifest = manifest.with_columns(
            pl.coalesce(
                *(
                    pl.when(pl.col("dataset") == dataset).then(
                        pl.col("unbuilt").list.set_difference(pl.lit(days, dtype=pl.List(pl.Date)))
                    )
                    for dataset, days in built.items()
                ),
                pl.col("unbuilt"),
            ).alias("unbuilt")
        )
        crash_point("ingest-staged")
        staging.commit()
        # Silver's row counts travel with the lake until a publish records them: a run killed after
        # this commit still gets its pipeline_runs rows from whichever run publishes next.
        record_pending_stats(lake, stats.frame().with_columns(pl.lit(run_id).alias("run_id")))
        # A crash here leaves the lake committed and the manifest behind: the next run re-reads the
        # same files and stages identical parts (and replaces these stats), so the end state is the same.
        crash_point("manifest-pending")
        write_manifest(lake, result.manifest)
    except BaseException:
        staging.discard()
        raise
    return result, stats


def latest_landing_session(settings: Settings) -> date | None:
    manifest = read_manifest(Lake(settings.lake))
    dates = manifest.filter(pl.col("dataset").is_in(list(PIPELINE_DATASETS))).get_column("dates").explode()
    dates = dates.drop_nulls()
    return dates.max() if len(dates) else None

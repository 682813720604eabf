"""The Parquet lake: hive partitions (one date each), atomic writes, run staging and the landing manifest.

Bronze is the landing files' raw bytes, one immutable copy per content at
`bronze/<dataset>/<sha256[:2]>/<sha256><suffix>`; the manifest maps each landing path to its copy.
Silver, quarantine and gold are Parquet. Every partition file is written under a temporary name and
renamed into place, so a reader or a crash never sees half a file. A run stages everything it ingests
(bronze copies, silver, quarantine) under `_staging/<run_id>/` and commits by renames only after every
input passed validation: a failed run leaves the lake as it was.

The lake's root is a local path or an object-storage URL (`s3://bucket/prefix`, `gs://`, `az://`; fsspec
through universal-pathlib for listing, copying and deleting, polars' own object-store client for reading
and writing, both configured by the usual environment: AWS_*, GOOGLE_*, AZURE_*). The I/O of each is a
`Storage` (`flows.storage.backends`), chosen once per Lake from its root; this module holds the logic
once. On object storage a single PUT is the atomic write (an object appears whole or not at all): a run
stages on local disk and its commit uploads each file to its final key, so each file still flips from
old to new in one step.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
from upath import UPath

from flows.storage.backends import (
    LakePath,
    Partitions,
    Storage,
    by_storage,
    file_sha256,
    partition_name,
    storage_for,
)
from flows.storage.faults import crash_point, disk_full_point

LAYERS = ("bronze", "silver", "quarantine", "gold")
# Linux's FICLONE ioctl: a copy sharing the source's blocks until either is written (btrfs, XFS).
FICLONE = 0x40049409
# A run's typed copy of the rows it read (scratch, never committed) is written only when it does not fit
# in memory and is read back once, whole: LZ4 without min/max statistics is the cheapest to write. The
# layers people keep and query (silver, gold) are zstd with statistics.
SCRATCH_CODEC = "lz4"
# Layers whose files also hold their partition column `trade_date` (a DATE, first), so readers that ignore
# folder names (pyarrow or pandas on a file, polars globs) still see the date (SPEC 2). Quarantine keeps
# undated rows, whose partition date is not theirs.
DATED_LAYERS = ("silver", "gold")
# Staged files waiting for the background writer; staging waits beyond this, so a run that parses
# faster than it writes (a backfill) never holds more than a few frames in memory for the writer.
MAX_QUEUED_WRITES = 3


def lake_root(location: str | Path) -> LakePath:
    """A lake root from a config value: a URL with a scheme is object storage, anything else a folder.
    Listings are not cached: files appear and vanish during a run, and polars writes past fsspec."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return UPath(text.rstrip("/"), use_listings_cache=False)
    return Path(text.removeprefix("file://")).resolve()


def uri(path: LakePath) -> str:
    """The string polars and DuckDB take (`s3://bucket/key` or a local path)."""
    return str(path)


def write_atomic(
    frame: pl.DataFrame,
    path: LakePath,
    compression: str = "zstd",
    statistics: bool = True,
    row_group_rows: int | None = None,
) -> None:
    """Write Parquet so that a reader or a crash sees the old file or the new one, never half (a
    temporary name renamed over `path` on disk, one PUT on object storage). A full disk raises
    OSError(ENOSPC) naming `path`. `row_group_rows`: rows per row group (None: polars' default)."""
    disk_full_point(f"write:{_layer_of(path)}", path)
    storage_for(path).write_parquet(frame, path, compression, statistics, row_group_rows)


def _layer_of(path: LakePath) -> str:
    """The lake layer a path is in (for fault injection and messages), else its file name."""
    parts = path.parts
    return next((part for part in reversed(parts) if part in LAYERS), path.name)


def replace(source: LakePath, target: LakePath) -> None:
    """Move `source` over `target` (to object storage: the source stays, for the caller to delete
    with its folder)."""
    storage_for(target).replace(source, target)


def remove_tree(folder: LakePath) -> None:
    storage_for(folder).remove_tree(folder)


def parquet_files(folder: LakePath) -> list[LakePath]:
    """The partition folder's Parquet files, sorted (none when the folder does not exist)."""
    return storage_for(folder).parquet_files(folder)


def remove_files(files: Iterable[LakePath]) -> None:
    """Delete files (object storage: bulk requests, not one request per file)."""
    for storage, group in by_storage(files).items():
        storage.remove_files(group)


def modified_ns(path: LakePath) -> int:
    """Last modification in nanoseconds (object storage keeps whole seconds: compare with care)."""
    return storage_for(path).modified_ns(path)


def version(path: LakePath) -> list:
    """What identifies this file's content without reading it: [size, mtime_ns] on disk, [size, ETag] on
    object storage."""
    return storage_for(path).version(path)


def read_parquet(path: LakePath) -> pl.DataFrame:
    """One lake file; a file that does not read (truncated, corrupt) fails naming it."""
    try:
        return pl.read_parquet(uri(path), glob=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OSError(
            f"{path}: unreadable Parquet ({first}); `chainsignals verify` checks the lake"
        ) from None


def copy_file(source: Path, target: Path) -> None:
    """`source`'s bytes at `target`, written under a temporary name and renamed: a reflink where the
    filesystem has them, else a copy (the kernel's, without passing through Python). Never a hard link:
    it would share the inode, so a vendor rewriting a landing file in place would change bronze too."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        except OSError:  # a filesystem without reflinks, or source and target on two of them
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def bronze_key(dataset: str, sha256: str, suffix: str) -> str:
    """Where, under the lake root, the landing file with this content keeps its raw bytes."""
    return f"bronze/{dataset}/{sha256[:2]}/{sha256}{suffix}"


def raw_suffix(name: str) -> str:
    """The suffix a landing file's bronze copy keeps, so a reader knows how to read it."""
    lower = name.lower()
    return next((s for s in (".csv.gz", ".csv", ".parquet", ".gz") if lower.endswith(s)), "")


def _write_and_hash(
    frame: pl.DataFrame, path: LakePath, compression: str, statistics: bool, row_group_rows: int | None
) -> str | None:
    """write_atomic, then the file's sha256 (on the staging writer's thread, beside the parsing)."""
    write_atomic(frame, path, compression, statistics, row_group_rows)
    return storage_for(path).sha256(path)


@dataclass
class Lake:
    root: LakePath  # <warehouse>/lake, or an object-storage URL

    def __post_init__(self) -> None:
        if not isinstance(self.root, (Path, UPath)):
            self.root = lake_root(self.root)
        self.storage: Storage = storage_for(self.root)

    @property
    def remote(self) -> bool:
        return self.storage.remote

    def dataset_dir(self, layer: str, dataset: str) -> LakePath:
        return self.root / layer / dataset

    def partition_dir(self, layer: str, dataset: str, day: date) -> LakePath:
        return self.dataset_dir(layer, dataset) / partition_name(day)

    def bronze_file(self, key: str) -> LakePath:
        """A bronze copy by its key (`bronze_key`, what the manifest records)."""
        return self.root / key

    def listing(self, layer: str, dataset: str) -> Partitions:
        """The dataset's partitions (object storage lists them here, in one listing)."""
        return self.storage.partitions(self.dataset_dir(layer, dataset))

    def dates(self, layer: str, dataset: str) -> list[date]:
        return self.listing(layer, dataset).dates()

    def files(
        self,
        layer: str,
        dataset: str,
        *,
        dates: Iterable[date] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[LakePath]:
        partitions = self.listing(layer, dataset)
        # Named dates: their folders only on disk, not a listing of the whole history.
        days = sorted(set(dates)) if dates is not None else partitions.dates()
        out = []
        for day in days:
            if (start and day < start) or (end and day > end):
                continue
            out.extend(partitions.files(day))
        return out

    def scan(self, layer: str, dataset: str, schema: dict[str, pl.DataType], **select) -> pl.LazyFrame:
        """The dataset's partitions as one LazyFrame with `trade_date` first; empty (typed) when none."""
        return scan_files(self.files(layer, dataset, **select), schema)

    def write_partitions(
        self,
        frame: pl.DataFrame,
        layer: str,
        dataset: str,
        *,
        part: str = "part-0",
        dates: Iterable[date] | None = None,
        exclusive: bool = True,
    ) -> list[LakePath]:
        """Write one file per trade_date partition.

        `dates` lists partitions to write even when `frame` has no rows for them (an empty table is
        written, so a re-run that now yields nothing still replaces the old rows). `exclusive`: the
        file replaces the partition's content; otherwise other parts stay (shards write side by side).
        """
        written, replaced = [], []
        by_date = split_dates(frame)
        # Object storage lists here, before the writes; a local disk lists each folder after its write.
        partitions = self.listing(layer, dataset) if exclusive else None
        for day in sorted(set(by_date) | set(dates or ())):
            data = _file_columns(by_date.get(day, frame.clear()), layer)
            target = self.partition_dir(layer, dataset, day) / f"{part}.parquet"
            write_atomic(data, target)
            if partitions is not None:  # older parts and temp files a killed writer left behind
                present = [*partitions.files(day), *partitions.debris(day)]
                replaced.extend(other for other in present if other != target)
            written.append(target)
        remove_files(replaced)
        return written

    def keep_only_parts(self, layer: str, dataset: str, days: Iterable[date], parts: set[str]) -> None:
        """Drop the partitions' files other than `parts` (e.g. a previous run's with another shard count)."""
        partitions = self.listing(layer, dataset)
        remove_files(f for day in days for f in partitions.files(day) if f.stem not in parts)


GOLD_STAGING_PREFIX = "gold-"


@dataclass
class GoldStagedLake(Lake):
    """The lake as a run's gold stage sees it: its gold partitions written under
    `_staging/gold-<run_id>/` and read back over the committed ones (a staged partition replaces the
    committed one whole); every other layer is the lake's. Nothing a reader of the lake sees changes
    until the publish commits the staged partitions together with the database (`GoldCommit`)."""

    run_id: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.staged = Lake(self.root / "_staging" / f"{GOLD_STAGING_PREFIX}{self.run_id}")

    def dates(self, layer: str, dataset: str) -> list[date]:
        if layer != "gold":
            return super().dates(layer, dataset)
        return sorted(set(super().dates(layer, dataset)) | set(self.staged.dates(layer, dataset)))

    def files(self, layer: str, dataset: str, **select) -> list[LakePath]:
        if layer != "gold":
            return super().files(layer, dataset, **select)
        staged = self.staged.files(layer, dataset, **select)
        replaced = {f.parent.name for f in staged}
        committed = [f for f in super().files(layer, dataset, **select) if f.parent.name not in replaced]
        return sorted([*committed, *staged], key=lambda f: (f.parent.name, f.name))

    def write_partitions(self, frame: pl.DataFrame, layer: str, dataset: str, **kwargs) -> list[LakePath]:
        if layer != "gold":
            raise ValueError(f"a gold stage writes gold only, not {layer}")
        return self.staged.write_partitions(frame, layer, dataset, **kwargs)

    def keep_only_parts(self, layer: str, dataset: str, days: Iterable[date], parts: set[str]) -> None:
        self.staged.keep_only_parts(layer, dataset, days, parts)

    def logical(self, path: LakePath) -> str:
        """A gold file's path as it will be in the lake (staged or committed alike)."""
        text = str(path)
        for root in (str(self.staged.root), str(self.root)):
            if text.startswith(root + "/"):
                return text[len(root) + 1 :]
        return text

    def partitions(self) -> list[tuple[LakePath, LakePath, list[str]]]:
        """(staged folder, lake folder, file names) of every staged gold partition."""
        out = []
        gold = self.staged.root / "gold"
        if not self.storage.is_folder(gold):
            return out
        for table in sorted(p.name for p in gold.iterdir()):
            for day in self.staged.dates("gold", table):
                files = parquet_files(self.staged.partition_dir("gold", table, day))
                out.append(
                    (
                        self.staged.partition_dir("gold", table, day),
                        self.partition_dir("gold", table, day),
                        [f.name for f in files],
                    )
                )
        return out

    def discard(self) -> None:
        remove_tree(self.staged.root)


def journal_path(warehouse: Path) -> Path:
    return warehouse / ".publish-journal.json"


def write_journal(warehouse: Path, lake: GoldStagedLake, database_next: Path, database: Path) -> None:
    """Record a decided publish: which staged gold partitions replace which, and the database file to
    swap in. From here the publish only goes forward: `roll_forward` finishes it, now or in the next
    run if this one is killed half-way."""
    partitions = lake.partitions()
    digests = (
        {str(f / n): file_sha256(s / n) for s, f, names in partitions for n in names}
        if lake.storage.checksums
        else {}
    )
    record = {
        "lake": str(lake.root),
        "run_id": lake.run_id,
        "database_next": str(database_next),
        "database": str(database),
        "sha256": digests,
        "partitions": [[str(s), str(f), names] for s, f, names in partitions],
    }
    path = journal_path(warehouse)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def roll_forward(warehouse: Path) -> bool:
    """Finish a decided publish (see write_journal); idempotent, so a kill at any point of it is
    finished by the next call. True when there was one to finish."""
    path = journal_path(warehouse)
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    lake = GoldStagedLake(lake_root(record["lake"]), run_id=record["run_id"])
    record_checksums(lake, {Path(name): digest for name, digest in record.get("sha256", {}).items()})
    for index, (staged, final, names) in enumerate(record["partitions"]):
        if index == len(record["partitions"]) // 2:
            crash_point("publish-half-committed")
        staged_dir, final_dir = lake.storage.path(staged), lake.storage.path(final)
        for name in names:
            source = staged_dir / name
            if source.exists():
                replace(source, final_dir / name)
        remove_files(f for f in parquet_files(final_dir) if f.name not in names)
    record_checksums(lake, {}, prune=True)
    database_next = Path(record["database_next"])
    if database_next.exists():
        os.replace(database_next, record["database"])
    lake.discard()
    path.unlink()
    return True


def split_dates(frame: pl.DataFrame) -> dict[date, pl.DataFrame]:
    """The rows of each trade_date (rows without one are left out). A frame of one date, what a nightly
    drop is, comes back as it is: partition_by would copy every row of it."""
    dates = frame.get_column("trade_date")
    if frame.height and not dates.null_count() and dates.min() == dates.max():
        return {dates.first(): frame}
    return {
        key[0]: part
        for key, part in frame.filter(pl.col("trade_date").is_not_null())
        .partition_by("trade_date", as_dict=True)
        .items()
    }


def scan_files(files: list[LakePath], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """Partition files (hive paths) as one frame with `schema`'s columns; absent columns are null."""
    if not files:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet(
        [uri(f) for f in files],
        hive_partitioning=True,
        hive_schema={"trade_date": pl.Date},
        missing_columns="insert",
        extra_columns="ignore",
        schema=_without_date(schema),
    ).select(list(schema))


def _file_columns(frame: pl.DataFrame, layer: str) -> pl.DataFrame:
    """The columns a partition file of `layer` holds: `trade_date` first in dated layers, none elsewhere
    (a selection, no copy of the rows)."""
    if layer in DATED_LAYERS and "trade_date" in frame.columns:
        return frame.select("trade_date", pl.exclude("trade_date"))
    return frame.drop("trade_date", strict=False)


def _without_date(schema: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
    return {c: t for c, t in schema.items() if c != "trade_date"}


@dataclass
class Staging:
    """Files a run prepares before it may change the lake; `commit()` renames them into place.

    Staged files are written on a background thread (polars writes without holding the GIL), so the
    run parses and validates the next data while the last is compressed; a staged file is awaited
    before anything reads it, and `commit()` awaits them all.
    """

    lake: Lake
    run_id: str
    # Where staged files go (default <lake>/_staging). A lake on object storage stages on local disk:
    # the commit is then one PUT per file, not a PUT, a HEAD and a copy, and the run's own reads of
    # what it staged stay local.
    folder: LakePath | None = None
    # (staged, final, exclusive, partition) in staging order, and by partition (layer, dataset, day):
    # path objects on object storage are costly to take apart, so nothing compares their parents.
    moves: list[tuple[LakePath, LakePath, bool, tuple[str, str, date]]] = field(default_factory=list)
    _moves_by_partition: dict[tuple[str, str, date], list[tuple[LakePath, LakePath, bool]]] = field(
        default_factory=dict
    )
    removals: dict[tuple[str, str, date], list[LakePath]] = field(default_factory=dict)
    # Staged frames kept in memory (by staged path) while their rows fit `keep_rows`, so the next stage
    # of the same run reads them without a Parquet round trip; a large backfill keeps none.
    keep_rows: int = 0
    kept: dict[LakePath, pl.DataFrame] = field(default_factory=dict)
    writes: dict[LakePath, Future] = field(default_factory=dict)
    digests: dict[LakePath, str | None] = field(default_factory=dict)  # staged file -> sha256
    _writer: ThreadPoolExecutor | None = None
    # Bronze: each landing file read this run, as final path -> (staged copy, sha256).
    raw: dict[LakePath, tuple[Path, str]] = field(default_factory=dict)
    # The typed rows this run read, by (dataset, day) then part: scratch files (or kept frames) that
    # silver reads and the commit leaves out; a kept one is written only when memory runs short.
    scratch: dict[tuple[str, date], dict[str, LakePath]] = field(default_factory=dict)
    _unwritten: dict[LakePath, pl.DataFrame] = field(default_factory=dict)
    _downloads: dict[LakePath, Path] = field(default_factory=dict)
    # Each dataset's committed partitions, by (layer, dataset): object storage lists them once per run
    # (the run holds the lock, so nothing else changes them before its commit); a local disk lists a
    # partition folder when asked.
    _listings: dict[tuple[str, str], Partitions] = field(default_factory=dict)

    @property
    def root(self) -> LakePath:
        return (self.folder if self.folder is not None else self.lake.root / "_staging") / self.run_id

    def stage(
        self,
        frame: pl.DataFrame,
        layer: str,
        dataset: str,
        day: date,
        part: str,
        exclusive: bool,
        keep: bool = False,
        row_group_rows: int | None = None,
    ) -> LakePath:
        """Stage one partition file. `exclusive`: on commit it replaces everything in the partition.
        `keep`: also hold the frame in memory for `read` (within the run's `keep_rows`).
        `row_group_rows`: rows per row group (None: polars' default)."""
        final = self.lake.partition_dir(layer, dataset, day) / f"{part}.parquet"
        staged = self.root / layer / dataset / final.parent.name / final.name
        self._submit(_file_columns(frame, layer), staged, "zstd", True, row_group_rows)
        self.moves.append((staged, final, exclusive, (layer, dataset, day)))
        self._moves_by_partition.setdefault((layer, dataset, day), []).append((staged, final, exclusive))
        if keep:
            self._keep(staged, frame)
        return staged

    def _submit(
        self,
        frame: pl.DataFrame,
        staged: LakePath,
        compression: str,
        statistics: bool,
        row_group_rows: int | None = None,
    ) -> None:
        self.wait([staged])  # a file staged again replaces the earlier write, never races it
        while len(self.writes) >= MAX_QUEUED_WRITES:  # back-pressure: queued frames are held in memory
            self.wait([next(iter(self.writes))])
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging-writer")
        self.writes[staged] = self._writer.submit(
            _write_and_hash, frame, staged, compression, statistics, row_group_rows
        )

    def _keep(self, staged: LakePath, frame: pl.DataFrame) -> bool:
        """Hold `frame` in memory for `read` while the run's frames fit `keep_rows`; False when not."""
        if not self.keep_rows:
            return False
        if sum(map(len, self.kept.values())) + len(frame) <= self.keep_rows:
            self.kept[staged] = frame
            return True
        # A backfill: it reads its batches from the files; memory stays bounded.
        for path, unwritten in self._unwritten.items():
            self._submit(unwritten.drop("trade_date", strict=False), path, SCRATCH_CODEC, False)
        self._unwritten.clear()
        self.kept.clear()
        self.keep_rows = 0
        return False

    def stage_scratch(self, frame: pl.DataFrame, dataset: str, day: date, part: str) -> LakePath:
        """Hold a landing file's typed rows of `day` for silver: in memory while they fit, else in a
        scratch file under the staging folder. Never committed: bronze keeps the raw bytes."""
        staged = self.root / "scratch" / dataset / partition_name(day) / f"{part}.parquet"
        self._unwritten.pop(staged, None)
        self.kept.pop(staged, None)
        if self._keep(staged, frame):
            self.wait([staged])
            self._unwritten[staged] = frame
        else:
            self._submit(frame.drop("trade_date", strict=False), staged, SCRATCH_CODEC, False)
        self.scratch.setdefault((dataset, day), {})[part] = staged
        return staged

    def scratch_files(self, dataset: str, day: date) -> list[LakePath]:
        """The typed rows this run holds for `day`, one entry per landing file, in part order."""
        parts = self.scratch.get((dataset, day), {})
        return [parts[name] for name in sorted(parts)]

    def stage_raw(self, source: Path) -> Path:
        """A copy of landing file `source` in the staging folder: what the run parses and hashes, so
        bronze holds exactly the bytes that were read even if the vendor rewrites the file meanwhile."""
        staged = Path(self.root) / "raw" / f"{uuid.uuid4().hex}{raw_suffix(source.name)}"
        disk_full_point("write:bronze", staged)
        copy_file(source, staged)
        return staged

    def adopt_raw(self, copy: Path) -> Path:
        """A landing file's copy made before this run's staging existed (`chainsignals run` reads ahead
        while Prefect starts), moved into the staging folder as if stage_raw had made it."""
        staged = Path(self.root) / "raw" / copy.name
        disk_full_point("write:bronze", staged)
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(copy, staged)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # a copy on another filesystem than the staging folder's
                raise
            copy_file(copy, staged)
            copy.unlink()
        return staged

    def keep_raw(self, staged: Path, final: LakePath, sha256: str) -> None:
        """On commit, the staged copy becomes bronze file `final` (unless the lake has those bytes)."""
        self.raw[final] = (staged, sha256)

    def raw_copy(self, final: LakePath) -> Path:
        """A local path holding bronze file `final`'s bytes: the run's staged copy, the lake's file, or
        (object storage) a download into the staging folder."""
        if final in self.raw:
            return self.raw[final][0]
        if final not in self._downloads:
            download = Path(self.root) / "raw" / f"{uuid.uuid4().hex}{raw_suffix(final.name)}"
            self._downloads[final] = self.lake.storage.local_copy(final, download)
        return self._downloads[final]

    def wait(self, files: Iterable[LakePath] | None = None) -> None:
        """Until the given staged files (all when None) are written; a failed write raises here."""
        pending = list(self.writes) if files is None else [f for f in files if f in self.writes]
        for path in pending:
            self.digests[path] = self.writes.pop(path).result()

    def read(self, files: list[LakePath], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
        """Staged or committed partition files as one frame with `schema`'s columns, in file order:
        the files this run staged are taken from memory when it kept them."""
        if not files:
            return pl.LazyFrame(schema=schema)
        if not all(f in self.kept for f in files):
            self.wait(files)
            return scan_files(files, schema)
        return pl.concat([self.kept[f].lazy().select(list(schema)) for f in files])

    def rows(self, files: list[LakePath]) -> int:
        """Rows in staged or committed partition files (kept frames counted in memory)."""
        on_disk = [f for f in files if f not in self.kept]
        self.wait(on_disk)
        return sum(len(self.kept[f]) for f in files if f in self.kept) + sum(
            pl.scan_parquet(uri(f)).select(pl.len()).collect().item() for f in on_disk
        )

    def forget(self, files: list[LakePath]) -> None:
        """Drop frames the run no longer needs from memory."""
        for f in files:
            self.kept.pop(f, None)
            self._unwritten.pop(f, None)

    def staged_or_committed(self, layer: str, dataset: str, day: date) -> list[LakePath]:
        """The files partition `day` will hold after commit (staged ones win over committed).
        Staged files may still be being written: read them through `read`/`rows` (or `wait` first)."""
        files = {p.name: p for p in self._committed(layer, dataset, day)}
        for p in self.removals.get((layer, dataset, day), []):
            files.pop(p.name, None)
        for staged, final, exclusive in self._moves_by_partition.get((layer, dataset, day), []):
            if exclusive:
                files = {}
            files[final.name] = staged
        return sorted(files.values())

    def _committed(self, layer: str, dataset: str, day: date) -> list[LakePath]:
        return self._listing(layer, dataset).files(day)

    def _listing(self, layer: str, dataset: str) -> Partitions:
        if (layer, dataset) not in self._listings:
            self._listings[layer, dataset] = self.lake.listing(layer, dataset)
        return self._listings[layer, dataset]

    def remove(self, layer: str, dataset: str, day: date, part: str) -> None:
        """On commit, delete this partition file (e.g. a re-delivered landing file no longer has rows
        for that date)."""
        path = self.lake.partition_dir(layer, dataset, day) / f"{part}.parquet"
        self.removals.setdefault((layer, dataset, day), []).append(path)

    def commit(self) -> None:
        self.wait()
        self._stop_writer()
        storage = self.lake.storage
        for layer, dataset, _ in self._moves_by_partition:  # object storage: listed before any copy
            self._listing(layer, dataset)
        # The committed files' sha256 are recorded first: a commit killed half-way is redone by the next
        # run, which records its own.
        record_checksums(
            self.lake,
            {final: self.digests.get(staged) for staged, final, *_ in self.moves}
            | {final: digest for final, (_, digest) in self.raw.items()},
        )
        # Bronze first: what silver is built from is in the lake before silver is. Content-addressed: a
        # file already there holds these very bytes.
        storage.place([(staged, final) for final, (staged, _) in self.raw.items()], keep_existing=True)
        remove_files(p for paths in self.removals.values() for p in paths)
        # A partition's replaced files go as soon as its half of the moves is in place, so a commit killed
        # between the halves leaves no partition holding an old part beside its new one.
        replaced = self._replaced()
        half = len(self.moves) // 2
        self._place(self.moves[:half], replaced)
        if self.moves:
            crash_point("commit-half-done")
        self._place(self.moves[half:], replaced)
        remove_files(f for files in replaced.values() for f in files)
        record_checksums(self.lake, {}, prune=True)  # the files this commit replaced
        self.discard()

    def _place(self, moves: list, replaced: dict[tuple[str, str, date], list[LakePath]]) -> None:
        """Put `moves` in place, then delete what they replace in their partitions (taken from `replaced`)."""
        self.lake.storage.place([(staged, final) for staged, final, *_ in moves])
        for key in dict.fromkeys(key for *_, key in moves):
            remove_files(replaced.pop(key, []))

    def _replaced(self) -> dict[tuple[str, str, date], list[LakePath]]:
        """Per partition, what the exclusive moves displace: its committed files (listed before any
        move) and earlier moves into it. Deleted per half of the commit, in bulk on object storage (a
        request per file would cost a round trip each)."""
        placed: dict[tuple[str, str, date], dict[str, LakePath]] = {}
        replaced: dict[tuple[str, str, date], dict[str, LakePath]] = {}
        for _staged, final, exclusive, key in self.moves:
            here, gone = placed.setdefault(key, {}), replaced.setdefault(key, {})
            if exclusive:
                gone.update({f.name: f for f in self._committed(*key)})
                gone.update(here)
                here.clear()
            here[final.name] = final
            gone.pop(final.name, None)
        return {key: list(gone.values()) for key, gone in replaced.items() if gone}

    def discard(self) -> None:
        # Let running writes end first: one finishing after the folder is gone would leave debris.
        self._stop_writer()
        self.writes.clear()
        self.kept.clear()
        self._unwritten.clear()
        remove_tree(self.root)

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True, cancel_futures=True)
            self._writer = None


def sweep_debris(lake: Lake, staging_folder: Path | None = None) -> int:
    """Remove what killed runs left: staging folders and half-written temp files. Call under the lock."""
    removed = 0
    for staging in [lake.root / "_staging", *([staging_folder] if staging_folder else [])]:
        removed += storage_for(staging).sweep_runs(staging)
    return removed + lake.storage.sweep_temp(lake.root)


# One row per landing file: its bronze copy (`bronze`, relative to the lake root), the sessions it holds
# (`dates`) and, for a file of several, each session's rows digest (`digests`, in `dates` order) so a
# file delivered again re-validates only the sessions whose rows changed; `unbuilt`: sessions whose rows
# changed but whose silver a run left for later (a backfill's `end`).
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "dataset": pl.String(),
    "format": pl.String(),
    "size": pl.Int64(),
    "mtime_ns": pl.Int64(),
    # ctime and inode when the sha256 was taken: with size and mtime they prove a file unchanged without
    # reading it (null: the file had changed just before, or during, its read; it is hashed again).
    "ctime_ns": pl.Int64(),
    "inode": pl.Int64(),
    "sha256": pl.String(),
    "part": pl.String(),
    "dates": pl.List(pl.Date()),
    "rows": pl.Int64(),
    "ingested_at": pl.Datetime("us", "UTC"),
    "bronze": pl.String(),
    "digests": pl.List(pl.String()),
    "unbuilt": pl.List(pl.Date()),
}


def manifest_path(lake: Lake) -> LakePath:
    return lake.root / "_manifest" / "landing_files.parquet"


def read_manifest(lake: Lake) -> pl.DataFrame:
    path = manifest_path(lake)
    if not path.exists():
        return pl.DataFrame(schema=MANIFEST_SCHEMA)
    frame = read_parquet(path)
    # A manifest from before bronze kept raw bytes has no copies: its files are read again, once.
    absent = [pl.lit(None, dtype=t).alias(c) for c, t in MANIFEST_SCHEMA.items() if c not in frame.columns]
    return frame.with_columns(absent).select(list(MANIFEST_SCHEMA)).cast(MANIFEST_SCHEMA)


def write_manifest(lake: Lake, manifest: pl.DataFrame) -> None:
    write_atomic(manifest.select(list(MANIFEST_SCHEMA)).sort("dataset", "path"), manifest_path(lake))
    record_checksums(lake, {manifest_path(lake): None})


# ------------------------------------------------------------------------------------------ integrity
CHECKSUMS_SCHEMA: dict[str, pl.DataType] = {"path": pl.String(), "sha256": pl.String()}


def checksums_path(lake: Lake) -> LakePath:
    return lake.root / "_manifest" / "lake_files.parquet"


def read_checksums(lake: Lake) -> dict[str, str]:
    """Lake file (relative path) -> the sha256 it had when committed."""
    path = checksums_path(lake)
    if not lake.storage.checksums or not path.exists():
        return {}
    return dict(read_parquet(path).select("path", "sha256").iter_rows())


def record_checksums(lake: Lake, files: dict[LakePath, str | None], *, prune: bool = False) -> None:
    """Record committed files' sha256 (a None digest is computed here), dropping records of files
    that are gone (`prune`: only that). Local lakes only: object stores keep their own checksums."""
    if not lake.storage.checksums or not (files or prune):
        return
    root = Path(lake.root)
    known = {rel: sha for rel, sha in read_checksums(lake).items() if (root / rel).exists()}
    for path, digest in files.items():
        rel = Path(path).relative_to(root).as_posix()
        known[rel] = digest or file_sha256(Path(path))
    frame = pl.DataFrame({"path": list(known), "sha256": list(known.values())}, schema=CHECKSUMS_SCHEMA)
    write_atomic(frame.sort("path"), checksums_path(lake))


def verify_lake(lake: Lake) -> tuple[int, list[str]]:
    """(files checked, one line per committed file that is missing or whose bytes changed)."""
    recorded = read_checksums(lake)
    problems = []
    for rel, sha in sorted(recorded.items()):
        path = Path(lake.root) / rel
        if not path.exists():
            problems.append(f"{path}: missing (committed with sha256 {sha[:12]}...)")
        elif (now := file_sha256(path)) != sha:
            problems.append(
                f"{path}: sha256 {now[:12]}... differs from the {sha[:12]}... it was committed with"
            )
    return len(recorded), problems

"""Where the lake's bytes live: a local disk or an object store, behind the few primitives the lake uses.

The lake (`flows.storage.lake`) holds the logic (partitions, staging, commit, manifest, journal, verify)
once; a `Storage` does the I/O its way. `LocalStorage` writes under a temporary name and renames, lists a
partition folder when asked and records each file's sha256. `ObjectStorage` (fsspec through
universal-pathlib for listing, copying and deleting; polars' own object-store client for writing) relies
on a single PUT being atomic (an object appears whole or not at all), lists a dataset in one recursive
request (1,000 keys a request, not a round trip per partition) and batches uploads and deletes.
`storage_for` picks one from a path; a Lake picks once, from its root.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Protocol

import polars as pl
from upath import UPath

PARTITION_PREFIX = "trade_date="

# A lake path: pathlib on a local disk, a UPath on object storage.
LakePath = Path | UPath


def partition_date(name: str) -> date | None:
    """The date of a partition folder's name (`trade_date=YYYY-MM-DD`), else None."""
    if not name.startswith(PARTITION_PREFIX):
        return None
    try:
        return date.fromisoformat(name[len(PARTITION_PREFIX) :])
    except ValueError:
        return None


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day.isoformat()}"


class Partitions(Protocol):
    """A dataset's partition folders and their Parquet files."""

    def dates(self) -> list[date]: ...

    def files(self, day: date) -> list[LakePath]:
        """The partition's Parquet files, sorted (none when it does not exist)."""
        ...

    def debris(self, day: date) -> list[LakePath]:
        """Temporary files a killed writer left in the partition."""
        ...


class Storage(Protocol):
    remote: bool
    # Whether the lake records each committed file's sha256 (`chainsignals verify`): object stores keep
    # their own checksums, and hashing there would mean reading every file back.
    checksums: bool

    def path(self, text: str) -> LakePath:
        """A path of this storage from its string form (as a journal records it)."""
        ...

    def write_parquet(
        self,
        frame: pl.DataFrame,
        path: LakePath,
        compression: str,
        statistics: bool,
        row_group_rows: int | None = None,
    ) -> None:
        """Write `path` so that a reader or a crash sees the old file or the new one, never half.
        `row_group_rows`: rows per row group (None: polars' default)."""
        ...

    def sha256(self, path: LakePath) -> str | None:
        """The written file's sha256 where the lake records them, else None."""
        ...

    def replace(self, source: LakePath, target: LakePath) -> None: ...

    def place(self, moves: list[tuple[LakePath, LakePath]], *, keep_existing: bool = False) -> None:
        """Each (staged, final) into place. `keep_existing`: a final already there holds the same bytes
        (content-addressed), so it may stay."""
        ...

    def partitions(self, folder: LakePath) -> Partitions: ...

    def parquet_files(self, folder: LakePath) -> list[LakePath]: ...

    def remove_files(self, files: list[LakePath]) -> None: ...

    def remove_tree(self, folder: LakePath) -> None: ...

    def is_folder(self, path: LakePath) -> bool: ...

    def modified_ns(self, path: LakePath) -> int: ...

    def version(self, path: LakePath) -> list: ...

    def local_copy(self, path: LakePath, download: Path) -> Path:
        """A local path holding `path`'s bytes: itself on disk, else a download to `download`."""
        ...

    def sweep_runs(self, staging: LakePath) -> int:
        """Remove every run folder under `staging`; how many."""
        ...

    def sweep_temp(self, root: LakePath) -> int:
        """Remove temporary files killed writers left under `root`; how many."""
        ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 16 << 20
    except OSError:
        return False


class LocalPartitions:
    """Listed when asked: a partition folder at a time, so naming dates lists only their folders."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def dates(self) -> list[date]:
        if not self.folder.is_dir():
            return []
        found = (
            partition_date(p.name) for p in self.folder.iterdir() if p.is_dir() and any(p.glob("*.parquet"))
        )
        return sorted(d for d in found if d is not None)

    def files(self, day: date) -> list[LakePath]:
        return LOCAL.parquet_files(self.folder / partition_name(day))

    def debris(self, day: date) -> list[LakePath]:
        return list((self.folder / partition_name(day)).glob(".*.tmp-*"))


class LocalStorage:
    remote = False
    checksums = True

    def path(self, text: str) -> Path:
        return Path(text)

    def write_parquet(
        self,
        frame: pl.DataFrame,
        path: Path,
        compression: str,
        statistics: bool,
        row_group_rows: int | None = None,
    ) -> None:
        """Under a temporary name in the same folder, then renamed over `path`. A full disk raises
        OSError(ENOSPC) naming `path`."""
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(
                tmp, compression=compression, statistics=statistics, row_group_size=row_group_rows
            )
            os.replace(tmp, path)
        except pl.exceptions.PolarsError as exc:
            # polars reports a full disk as "underlying IO error: No space left on device (os error 28)"
            # (or, mid-footer, "Invalid thrift: transport error") without the file: say what and where.
            if "os error 28" in str(exc) or "No space left" in str(exc) or _nearly_full(path.parent):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
            raise OSError(f"{path}: could not be written: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def sha256(self, path: Path) -> str:
        return file_sha256(path)

    def replace(self, source: LakePath, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def place(self, moves: list[tuple[LakePath, LakePath]], *, keep_existing: bool = False) -> None:
        for staged, final in moves:
            if not (keep_existing and final.exists()):
                self.replace(staged, final)

    def partitions(self, folder: Path) -> LocalPartitions:
        return LocalPartitions(folder)

    def parquet_files(self, folder: Path) -> list[LakePath]:
        return sorted(folder.glob("*.parquet")) if folder.is_dir() else []

    def remove_files(self, files: list[LakePath]) -> None:
        for f in files:
            f.unlink(missing_ok=True)

    def remove_tree(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def is_folder(self, path: Path) -> bool:
        return path.is_dir()

    def modified_ns(self, path: Path) -> int:
        return path.stat().st_mtime_ns

    def version(self, path: Path) -> list:
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]

    def local_copy(self, path: Path, download: Path) -> Path:
        return path

    def sweep_runs(self, staging: Path) -> int:
        if not staging.is_dir():
            return 0
        removed = 0
        for run in staging.iterdir():
            shutil.rmtree(run, ignore_errors=True)
            removed += 1
        return removed

    def sweep_temp(self, root: Path) -> int:
        if not root.is_dir():
            return 0
        removed = 0
        for tmp in root.rglob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed


class ObjectPartitions:
    """Listed once, whole, when made: partition -> files from one recursive listing."""

    def __init__(self, folder: UPath) -> None:
        self.listing: dict[date, list[LakePath]] = {}
        for key in sorted(folder.fs.find(folder.path)):
            partition, _, name = key[len(folder.path) :].strip("/").partition("/")
            day = partition_date(partition)
            if day is not None and name.endswith(".parquet") and "/" not in name:
                self.listing.setdefault(day, []).append(folder / partition / name)

    def dates(self) -> list[date]:
        return sorted(self.listing)

    def files(self, day: date) -> list[LakePath]:
        return self.listing.get(day, [])

    def debris(self, day: date) -> list[LakePath]:
        return []  # a PUT is atomic: no temporary files


class ObjectStorage:
    remote = True
    checksums = False

    def path(self, text: str) -> UPath:
        return UPath(text.rstrip("/"), use_listings_cache=False)

    def write_parquet(
        self,
        frame: pl.DataFrame,
        path: UPath,
        compression: str,
        statistics: bool,
        row_group_rows: int | None = None,
    ) -> None:
        frame.write_parquet(
            str(path), compression=compression, statistics=statistics, row_group_size=row_group_rows
        )

    def sha256(self, path: UPath) -> None:
        return None

    def replace(self, source: LakePath, target: UPath) -> None:
        """One PUT of a local file (the source stays, for the caller to delete with its folder), or a
        server-side copy then a delete."""
        if isinstance(source, Path):
            target.fs.put_file(str(source), target.path)
        else:
            target.fs.mv(source.path, target.path)

    def place(self, moves: list[tuple[LakePath, LakePath]], *, keep_existing: bool = False) -> None:
        """Concurrently (fsspec batches the requests); an existing final is written again all the same:
        a HEAD to find it costs a request as a PUT does."""
        uploads = [(str(staged), final.path) for staged, final in moves if isinstance(staged, Path)]
        if uploads:
            moves[0][1].fs.put([s for s, _ in uploads], [f for _, f in uploads])
        for staged, final in moves:
            if not isinstance(staged, Path):
                self.replace(staged, final)

    def partitions(self, folder: UPath) -> ObjectPartitions:
        return ObjectPartitions(folder)

    def parquet_files(self, folder: UPath) -> list[LakePath]:
        return sorted(folder.glob("*.parquet"))

    def remove_files(self, files: list[LakePath]) -> None:
        """Bulk requests of up to 1,000 keys, not one request per file."""
        files[0].fs.rm([f.path for f in files])

    def remove_tree(self, folder: UPath) -> None:
        if folder.fs.exists(folder.path):
            folder.fs.rm(folder.path, recursive=True)

    def is_folder(self, path: UPath) -> bool:
        return path.exists()

    def modified_ns(self, path: UPath) -> int:
        """Object storage keeps whole seconds: compare with care."""
        return int(path.stat().st_mtime) * 1_000_000_000

    def version(self, path: UPath) -> list:
        """[size, ETag]: a rewrite within the same second changes the ETag, not the whole-second mtime."""
        info = path.fs.info(path.path)
        return [
            int(info["size"]),
            str(
                info.get("ETag")
                or info.get("etag")
                or info.get("md5Hash")
                or info.get("mtime")
                or info.get("LastModified")
            ),
        ]

    def local_copy(self, path: UPath, download: Path) -> Path:
        download.parent.mkdir(parents=True, exist_ok=True)
        path.fs.get_file(path.path, str(download))
        return download

    def sweep_runs(self, staging: UPath) -> int:
        runs = {key[len(staging.path) :].strip("/").split("/")[0] for key in staging.fs.find(staging.path)}
        for run in sorted(runs - {""}):
            self.remove_tree(staging / run)
        return len(runs - {""})

    def sweep_temp(self, root: UPath) -> int:
        return 0  # a PUT is atomic: no temporary files


LOCAL = LocalStorage()
OBJECT = ObjectStorage()


def storage_for(path: LakePath) -> Storage:
    """The storage a path lives on: pathlib paths are local disk, anything else an object store."""
    return LOCAL if isinstance(path, Path) else OBJECT


def by_storage(files: Iterable[LakePath]) -> dict[Storage, list[LakePath]]:
    """Files grouped by the storage they live on, in order."""
    groups: dict[Storage, list[LakePath]] = {}
    for f in files:
        groups.setdefault(storage_for(f), []).append(f)
    return groups

"""Named crash points, so tests can SIGKILL a real run exactly where a crash would hurt most; named
write points, so tests can fill the disk exactly there.

Set CHAINSIGNALS_CRASH_AT=<name> and the process kills itself (no cleanup, no finally blocks) when
it reaches that point; CHAINSIGNALS_PAUSE_AT=<name> touches CHAINSIGNALS_PAUSE_MARK and sleeps there
(for a test to signal the run at that point). Set CHAINSIGNALS_DISK_FULL_AT=<name> and the write at that point fails as a
full disk does (OSError ENOSPC naming the file). Unset, each costs one dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import signal

CRASH_POINTS = (
    "ingest-staged",  # bronze/silver/quarantine staged, nothing committed
    "commit-half-done",  # some staged files renamed into the lake, others not
    "manifest-pending",  # lake committed, manifest not yet written
    "gold-half-written",  # some gold tables written for the day, others not
    "load-mid-transaction",  # inside the DuckDB transaction, some tables loaded
    "database-built",  # next database file complete, not yet swapped in
    "publish-half-committed",  # publish decided (journal written), some gold files moved into the lake
)

DISK_FULL_POINTS = (
    "write:bronze",
    "write:silver",
    "write:quarantine",  # staged ingest files
    "write:gold",  # a gold table's staged partition file
    "write:landing_files.parquet",  # the manifest
    "write:pending_stats.parquet",  # silver stats awaiting a publish
    "database-copy",  # the copy of signals.duckdb the publish loads into
    "database-load",  # inside the load transaction
    "report-write",  # a page of the day's report
)


def crash_point(name: str) -> None:
    if os.environ.get("CHAINSIGNALS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("CHAINSIGNALS_PAUSE_AT") == name:  # a test's signal arrives exactly here
        import time
        from pathlib import Path

        Path(os.environ["CHAINSIGNALS_PAUSE_MARK"]).touch()
        time.sleep(float(os.environ.get("CHAINSIGNALS_PAUSE_SECONDS", "120")))


def disk_full_point(name: str, path: object) -> None:
    if os.environ.get("CHAINSIGNALS_DISK_FULL_AT") == name:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

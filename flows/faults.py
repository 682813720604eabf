"""Named crash points, so tests can SIGKILL a real run exactly where a crash would hurt most.

Set CHAINSIGNALS_CRASH_AT=<name> and the process kills itself (no cleanup, no finally blocks) when
it reaches that point. Unset, a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = (
    "ingest-staged",      # bronze/silver/quarantine staged, nothing committed
    "commit-half-done",   # some staged files renamed into the lake, others not
    "manifest-pending",   # lake committed, manifest not yet written
    "gold-half-written",  # some gold tables written for the day, others not
    "load-mid-transaction",  # inside the DuckDB transaction, some tables loaded
    "database-built",     # next database file complete, not yet swapped in
)


def crash_point(name: str) -> None:
    if os.environ.get("CHAINSIGNALS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)

"""The `chainsignals` console script: what the process must set before polars and Prefect load, then
the CLI.

polars' allocator (jemalloc) hands freed pages back to the system after 0.5 s (1 s once "muzzy"),
polars' own defaults, and reads any override from `_RJEM_MALLOC_CONF` once, when polars is imported.
The nightly allocates and frees frames of hundreds of MB stage after stage, so with those defaults the
kernel keeps zeroing pages it just took back: on the full-market day (`make bench`) that is 6-8 s of
system CPU. Keeping freed pages for 10 s halves it, for a peak RSS of 2.7-2.9 GB instead of 2.1 GB.
A backfill must not pay that: its batches of many sessions kept 4.6 GB (over SPEC 8's 4 GB) instead
of 3.1 GB, so only the one-session commands get it, and an operator's own setting always wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
NIGHTLY_ALLOCATOR = "dirty_decay_ms:10000,muzzy_decay_ms:10000"
# `serve` runs the nightly deployment; its flow runs inherit the server process's environment.
NIGHTLY_COMMANDS = frozenset({"run", "serve"})


# The temporary Prefect server a serverless run starts creates its database on first use; on a busy
# 2-core machine, or right after an install (nothing in the page cache), that passes Prefect's 20 s.
STARTUP_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT_SECONDS = "120"


def allocator_environment(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add for this command line (arguments after the program name)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in NIGHTLY_COMMANDS and ALLOCATOR_VARIABLE not in environ:
        return {ALLOCATOR_VARIABLE: NIGHTLY_ALLOCATOR}
    return {}


def main() -> None:
    if "polars" not in sys.modules:  # too late otherwise: the allocator is configured once
        os.environ.update(allocator_environment(sys.argv[1:], os.environ))
    os.environ.setdefault(STARTUP_TIMEOUT_VARIABLE, STARTUP_TIMEOUT_SECONDS)
    from flows.cli import app

    app()


if __name__ == "__main__":
    main()

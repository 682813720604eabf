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
import signal
import subprocess
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C is: the run stops, is recorded as interrupted, and
    everything that cleans up on an interrupt (staging, the temporary Prefect server) does so."""


def _terminate(signum, frame) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def stop_on_signals() -> None:
    """SIGTERM and SIGINT both interrupt the main thread, whatever an import installed before."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _parent_death_signal(parent: int):
    """A function for the child to run between fork and exec: the kernel then sends it SIGTERM when
    the CLI dies, however it dies (SIGKILL, the OOM killer). Everything it needs is looked up here,
    in the parent: after a fork only the calls themselves are safe. None where prctl is missing."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the CLI died before prctl took effect
            os._exit(1)

    return in_child


class _ServerSubprocess:
    """`subprocess` as Prefect's temporary-server module sees it: the server process gets its own
    session (a Ctrl-C to the terminal's process group reaches the CLI only, which then still reports to
    a live server and stops it) and dies with the CLI."""

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):
        # preexec_fn runs only prctl and getppid (no import, no lock) in the child.
        return subprocess.Popen(*args, start_new_session=True,
                                preexec_fn=_parent_death_signal(os.getpid()), **kwargs)  # noqa: PLW1509


def server_dies_with_cli() -> None:
    """Prefect's temporary server (a serverless run starts one) is started through _ServerSubprocess."""
    from prefect.server.api import server

    server.subprocess = _ServerSubprocess()


def main() -> None:
    if "polars" not in sys.modules:  # too late otherwise: the allocator is configured once
        os.environ.update(allocator_environment(sys.argv[1:], os.environ))
    os.environ.setdefault(STARTUP_TIMEOUT_VARIABLE, STARTUP_TIMEOUT_SECONDS)
    stop_on_signals()
    from flows.cli import app

    app()


if __name__ == "__main__":
    main()

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

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
NIGHTLY_ALLOCATOR = "dirty_decay_ms:10000,muzzy_decay_ms:10000"
# `serve` runs the nightly deployment; its flow runs inherit the server process's environment.
NIGHTLY_COMMANDS = frozenset({"run", "serve"})


# The temporary Prefect server a serverless run starts creates its database on first use; on a busy
# small machine, or right after an install (nothing in the page cache), that can pass Prefect's default.
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
        return subprocess.Popen(
            *args, start_new_session=True, preexec_fn=_parent_death_signal(os.getpid()), **kwargs
        )


def server_dies_with_cli() -> None:
    """Prefect's temporary server (a serverless run starts one) is started through _ServerSubprocess."""
    from prefect.server.api import server

    server.subprocess = _ServerSubprocess()


# Commands that run a flow; without a Prefect server (no PREFECT_API_URL) each needs a temporary one.
FLOW_COMMANDS = frozenset({"run", "backfill", "demo"})
# What the CLI sets for the temporary server (its own errors do not decide a run's outcome: stopped when
# the run ends, it logs the events still in flight as a traceback).
SERVER_ENVIRONMENT = {"PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class TemporaryServer:
    """Prefect's temporary API server (what Prefect starts for a serverless flow run, the same uvicorn
    command), started by the launcher before anything is imported: it boots on the other core while
    this process imports polars, Prefect and the pipeline and runs its pre-checks, instead of after
    them (15-20 s on a busy 2-core machine). Its own session (a Ctrl-C reaches the CLI only), dies with
    the CLI (parent-death signal), stopped when the CLI exits."""

    def __init__(self) -> None:
        from importlib.util import find_spec

        with socket.socket() as probe:  # a free port now; uvicorn binds it a moment later
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        app_dir = os.path.dirname(find_spec("prefect").submodule_search_locations[0])  # not imported
        env = {
            **os.environ,
            **SERVER_ENVIRONMENT,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                app_dir,
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            start_new_session=True,
            preexec_fn=_parent_death_signal(os.getpid()),
        )
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout: float) -> None:
        """Until the server answers its health check; a server that exits or never answers is an error."""
        from urllib.error import URLError
        from urllib.request import urlopen

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {self.process.returncode}")
            try:
                with urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the temporary Prefect server did not start within {timeout:.0f} s "
                    f"({STARTUP_TIMEOUT_VARIABLE})"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_server: TemporaryServer | None = None


def start_temporary_server(argv: Sequence[str]) -> TemporaryServer | None:
    """For a flow command without a Prefect server: start the temporary one now and point Prefect at it
    (set before Prefect is imported, so its settings see it)."""
    global _server
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in FLOW_COMMANDS or "--help" in argv or os.environ.get("PREFECT_API_URL") or _server:
        return _server
    _server = TemporaryServer()
    os.environ["PREFECT_API_URL"] = _server.api_url
    return _server


def temporary_server() -> TemporaryServer | None:
    """The temporary server this process started, if any (PREFECT_API_URL then names it, not an operator's)."""
    return _server


def exit_without_teardown(code: int | str | None) -> NoReturn:
    """End the process as `sys.exit(code)` would, less the interpreter's teardown (freeing every module
    and the gigabytes of frames a run leaves: most of a second after a full-market night). The atexit
    handlers still run (Prefect's log and event workers drain, the temporary server stops) and the
    standard streams are flushed first."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    # What the interpreter's exit runs before its teardown, in its order: wait for the non-daemon threads
    # (and tell executors' workers to stop), then the atexit handlers.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be written to it
            stream.flush()
    os._exit(status)


def main() -> None:
    if "polars" not in sys.modules:  # too late otherwise: the allocator is configured once
        os.environ.update(allocator_environment(sys.argv[1:], os.environ))
    os.environ.setdefault(STARTUP_TIMEOUT_VARIABLE, STARTUP_TIMEOUT_SECONDS)
    stop_on_signals()
    start_temporary_server(sys.argv[1:])
    from flows.cli.app import app

    try:
        app()
    except SystemExit as stop:
        exit_without_teardown(stop.code)
    exit_without_teardown(0)


if __name__ == "__main__":
    # `python -m flows.cli.launcher` runs this file as __main__, a second copy of the module beside the
    # flows.cli.launcher the CLI imports: the temporary server must be started by, and found in, one
    # module, or the CLI takes it for an operator's server.
    from flows.cli.launcher import main as launcher_main

    launcher_main()

"""The console script sets the nightly's allocator before polars loads, for one-session commands only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from flows.cli.launcher import ALLOCATOR_VARIABLE, NIGHTLY_ALLOCATOR, allocator_environment
from tests.helpers import ROOT

POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what polars sets when nobody else does


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--date", "2025-12-31"], {ALLOCATOR_VARIABLE: NIGHTLY_ALLOCATOR}),
        (["serve", "--warehouse", "/srv/cs"], {ALLOCATOR_VARIABLE: NIGHTLY_ALLOCATOR}),
        (["backfill", "--start", "2025-01-02", "--end", "2025-12-31"], {}),  # batches of many sessions
        (["demo"], {}),
        (["--help"], {}),
        ([], {}),
    ],
)
def test_one_session_commands_get_the_nightly_allocator(argv, expected):
    assert allocator_environment(argv, {}) == expected


def test_an_operators_own_allocator_setting_wins():
    assert allocator_environment(["run"], {ALLOCATOR_VARIABLE: "dirty_decay_ms:0"}) == {}


def _probe(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter from the project root (the console script's process, stubbed)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _allocator_seen_by_polars(*argv: str) -> str:
    """The allocator setting polars started with in a fresh `chainsignals ARGV` process."""
    # The CLI stands in as a command that loads polars (flows.cli.app itself does not import it).
    probe = (
        "import os, sys\n"
        "import flows.cli.app\n"
        "def command():\n"
        "    import polars\n"
        "    print('CONF=' + os.environ.get('_RJEM_MALLOC_CONF', ''))\n"
        "flows.cli.app.app = command\n"
        f"sys.argv = ['chainsignals', *{list(argv)!r}]\n"
        "from flows.cli.launcher import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_VARIABLE}
    done = _probe(probe, env)
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("CONF=")).removeprefix("CONF=")


@pytest.mark.e2e
def test_polars_starts_with_the_nightly_allocator_under_run_and_its_own_under_backfill():
    # polars appends an override it finds at import after its defaults (the last setting wins), so
    # seeing ours appended proves it was in place before polars loaded.
    assert _allocator_seen_by_polars("run", "--date", "2025-12-31") == f"{POLARS_DEFAULT},{NIGHTLY_ALLOCATOR}"
    assert _allocator_seen_by_polars("backfill") == POLARS_DEFAULT


def test_the_work_pool_deployment_sets_it_too():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    nightly = next(d for d in spec["deployments"] if d["name"] == "nightly")
    assert nightly["work_pool"]["job_variables"]["env"][ALLOCATOR_VARIABLE] == NIGHTLY_ALLOCATOR


@pytest.mark.e2e
def test_the_temporary_prefect_server_gets_time_to_start_unless_told_otherwise():
    probe = (
        "import os, sys\n"
        "import flows.cli.app\n"
        "flows.cli.app.app = lambda: print('TIMEOUT=' + os.environ['PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS'])\n"
        "sys.argv = ['chainsignals', 'demo']\n"
        "from flows.cli.launcher import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    for given, expected in ((None, "120"), ("45", "45")):
        run_env = env if given is None else {**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": given}
        done = _probe(probe, run_env)
        assert done.returncode == 0, done.stderr
        assert f"TIMEOUT={expected}" in done.stdout.splitlines()


@pytest.mark.parametrize(
    ("command", "status", "stdout", "stderr"),
    [
        ("pass", 0, "printed, not flushed", ""),
        ("sys.exit(3)", 3, "printed, not flushed", ""),
        ("sys.exit('a refusal')", 1, "printed, not flushed", "a refusal\n"),
    ],
)
def test_the_exit_skips_the_teardown_but_not_what_a_normal_exit_does(
    tmp_path, command, status, stdout, stderr
):
    """The console script ends with os._exit, after what a normal exit runs: the threads joined (a
    non-daemon thread finishes its write), the atexit handlers (Prefect's drains, the temporary server's
    stop), the streams flushed; the status is sys.exit's."""
    marker, thread_marker = tmp_path / "atexit", tmp_path / "thread"
    probe = (
        "import atexit, sys, threading, time\n"
        "import flows.cli.app\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "def command():\n"
        f"    threading.Thread(target=lambda: (time.sleep(0.3), open({str(thread_marker)!r}, 'w').write('done'))).start()\n"
        "    sys.stdout.write('printed, not flushed')\n"
        f"    {command}\n"
        "flows.cli.app.app = command\n"
        "sys.argv = ['chainsignals', 'status']\n"
        "from flows.cli.launcher import main\n"
        "main()\n"
        "raise AssertionError('main returned')\n"
    )
    done = _probe(probe)
    assert (done.returncode, done.stdout, done.stderr) == (status, stdout, stderr)
    assert marker.read_text() == "ran" and thread_marker.read_text() == "done"


def test_python_m_runs_the_launcher_the_cli_finds_its_temporary_server_in():
    """`python -m flows.cli.launcher run ...` (the console script's module, run as __main__): the server
    it starts is the one `flows.cli.launcher.temporary_server()` returns to the CLI, which otherwise took
    it for an operator's server and failed to reach it."""
    probe = (
        "import runpy, sys\n"
        "import flows.cli.app, flows.cli.launcher as launcher\n"
        "class Fake:\n"
        "    api_url = 'http://127.0.0.1:9/api'\n"
        "launcher.TemporaryServer = Fake\n"
        "flows.cli.app.app = lambda: print('FOUND=' + type(launcher.temporary_server()).__name__)\n"
        "sys.argv = ['chainsignals', 'run', '--date', '2025-12-31']\n"
        "runpy.run_module('flows.cli.launcher', run_name='__main__', alter_sys=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = _probe(probe, env)
    assert done.returncode == 0, done.stderr
    assert "FOUND=Fake" in done.stdout.splitlines()

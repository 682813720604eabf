"""Test-session setup: Prefect without network or telemetry, started once per session; the fixtures
shared across modules; and the `e2e` marker on every test that needs the session's Prefect."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parent.parent / ".prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Tests write landing files and run at once: the stability wait (flows.config) would only add seconds.
os.environ["CHAINSIGNALS_STABLE_SECONDS"] = "0"

import pytest

from tests.helpers import run_note_day
from tests.spec_note import NEXT_DAY, add_session, write_note_landing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reaches the session's Prefect (directly or through a fixture) starts a server, so it
    is `e2e` wherever it is written; modules that start subprocesses mark themselves."""
    for item in items:
        if "prefect_api" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def prefect_api():
    """A Prefect API for the whole session; yields its URL so CLI subprocesses can share it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture
def cli_env(prefect_api):
    """Environment for running the real `chainsignals` entry point against the session's Prefect."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = prefect_api
    return env


@pytest.fixture(scope="module")
def market(tmp_path_factory, prefect_api) -> tuple[Path, list]:
    """A small demo market (260 sessions of bars, the last 2 with chains) and its two chain sessions."""
    from flows.market.simulator import generate_demo_market

    root = tmp_path_factory.mktemp("market")
    summary = generate_demo_market(root / "landing", sessions=260, chain_sessions=2)
    return root, summary.sessions[-2:]


@pytest.fixture
def note(tmp_path: Path) -> Path:
    """A folder whose landing/ holds the SPEC 1 note's files (tests/spec_note.py); runs write to wh/."""
    write_note_landing(tmp_path / "landing")
    return tmp_path


@pytest.fixture(scope="module")
def before_next_day(tmp_path_factory, prefect_api) -> tuple[Path, dict]:
    """A warehouse holding the note's day (one `chainsignals run`), with the next session waiting in
    landing; and the environment that run used."""
    env = dict(os.environ, PREFECT_API_URL=prefect_api)
    root = tmp_path_factory.mktemp("base")
    run_note_day(root, env)
    add_session(root / "landing", NEXT_DAY, oi_bump=900)
    return root, env

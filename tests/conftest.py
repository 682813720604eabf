"""Test-session setup: Prefect without network or telemetry, started once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Tests write landing files and run at once: the stability wait (flows.config) would only add seconds.
os.environ["CHAINSIGNALS_STABLE_SECONDS"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers such as spec_note

import pytest


@pytest.fixture(scope="session")
def prefect_api():
    """A Prefect API for the whole session; yields its URL so CLI subprocesses can share it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture()
def cli_env(prefect_api):
    """Environment for running the real `chainsignals` entry point against the session's Prefect."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = prefect_api
    return env


CHAINSIGNALS = ROOT / ".venv" / "bin" / "chainsignals"


@pytest.fixture(scope="module")
def market(tmp_path_factory, prefect_api) -> tuple[Path, list]:
    """A small demo market (260 sessions of bars, the last 2 with chains) and its two chain sessions."""
    from flows.demo import generate_demo_market

    root = tmp_path_factory.mktemp("market")
    summary = generate_demo_market(root / "landing", sessions=260, chain_sessions=2)
    return root, summary.sessions[-2:]

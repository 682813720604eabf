"""The nightly deployment: prefect.yaml's schedule and parameters are what `chainsignals serve` serves."""

from __future__ import annotations

import pytest

from flows.deployment import build_nightly, deployment_spec


def test_prefect_yaml_declares_the_weekday_evening_schedule():
    spec = deployment_spec("nightly")
    assert spec["entrypoint"] == "flows/nightly.py:nightly"
    assert spec["schedules"] == [{"cron": "30 18 * * 1-5", "timezone": "America/New_York", "active": True}]
    assert spec["parameters"]["default_date"] == "today"
    assert spec["concurrency_limit"] == 1


def test_served_deployment_carries_the_schedule_and_overrides(prefect_api):
    deployment = build_nightly({"warehouse": "/data/wh", "landing": None})
    assert deployment.name == "nightly"
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "30 18 * * 1-5"
    assert schedule.schedule.timezone == "America/New_York"
    assert deployment.parameters["warehouse"] == "/data/wh"
    assert deployment.parameters["landing"] is None and deployment.parameters["default_date"] == "today"
    assert deployment.concurrency_limit == 1


def test_unknown_default_date_is_refused(prefect_api, tmp_path):
    from flows.nightly import nightly
    from flows.stages.run import RunError

    with pytest.raises(RunError, match="default_date must be"):
        nightly(warehouse=str(tmp_path), default_date="tomorrow")

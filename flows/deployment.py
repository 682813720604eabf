"""The nightly deployment as declared in prefect.yaml, served by `chainsignals serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect.schedules import Cron

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def deployment_spec(name: str = "nightly", path: Path = PREFECT_YAML) -> dict[str, Any]:
    """One deployment's block of prefect.yaml (the single place its schedule and parameters live)."""
    spec = yaml.safe_load(path.read_text())
    for deployment in spec.get("deployments", []):
        if deployment.get("name") == name:
            return deployment
    raise KeyError(f"{path}: no deployment named {name!r}")


def serve_nightly(overrides: dict[str, Any] | None = None) -> None:  # pragma: no cover - blocks forever
    from prefect import serve

    serve(build_nightly(overrides))


def build_nightly(overrides: dict[str, Any] | None = None):
    """A RunnerDeployment of the nightly flow with prefect.yaml's schedule and parameters."""
    from flows.nightly import nightly

    spec = deployment_spec("nightly")
    parameters = {
        **spec.get("parameters", {}),
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    schedules = [
        Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
        for s in spec.get("schedules", [])
    ]
    return nightly.to_deployment(
        name=spec["name"],
        description=spec.get("description"),
        tags=spec.get("tags"),
        parameters=parameters,
        schedules=schedules,
        concurrency_limit=spec.get("concurrency_limit"),
    )

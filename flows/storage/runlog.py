"""An append-only log of every run, failures included (the warehouse only records successes)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path


def log_path(warehouse: Path) -> Path:
    return warehouse / "logs" / "runs.jsonl"


APPENDED: list[str] = []
"""Statuses this process recorded (the CLI records an interrupt itself when the flow had not)."""


def append(warehouse: Path, record: dict) -> None:
    APPENDED.append(str(record.get("status")))
    path = log_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, default=_jsonable) + "\n")


def record_skip(warehouse: Path, flow: str, day: date | None, reason: str, started: datetime) -> None:
    """A run with no work (a closed date, nothing new) is in the log too, with its reason."""
    finished = datetime.now(UTC)
    append(
        warehouse,
        {
            "run_id": f"{finished:%Y%m%dT%H%M%SZ}-precheck",
            "flow": flow,
            "status": "skipped",
            "date": day,
            "started_at": started,
            "finished_at": finished,
            "reason": reason,
        },
    )


def read(warehouse: Path, last: int = 20) -> list[dict]:
    path = log_path(warehouse)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[-last:]
    return [json.loads(line) for line in lines if line.strip()]


def _jsonable(value: object) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)

"""Answers for a run with no work, found before Prefect starts (a temporary Prefect server takes far
longer to start than these checks take to run): a date the exchange is closed, and a landing folder with
nothing new since the run that computed the session."""

from __future__ import annotations

from datetime import date

from flows.config import Settings
from flows.sources.files import landing_digest, landing_files
from flows.stages.ingest import latest_landing_session
from flows.stages.sessions import pending_stats
from flows.stages.silver import PIPELINE_DATASETS, dirty_silver_dates
from flows.storage import runlog
from flows.storage.fingerprints import run_inputs_fingerprint
from flows.storage.lake import Lake, read_manifest

RUNS_LOOKED_AT = 200
"""runs.jsonl records searched for the run that computed the session (skips of a long holiday included)."""


def nothing_new(settings: Settings, target: date | None) -> str | None:
    """Why a nightly for `target` (None: the latest session in landing) has nothing to do, or None when it
    has: every landing file is as the manifest recorded it (its sha256, read again unless the file's
    ctime and inode prove it unchanged: a file corrected in place keeps its size and may keep its
    mtime), no silver or publish is left pending by a killed run, and a successful run computed the
    session from these same inputs (landing files, configuration, code) with nothing failing since."""
    lake = Lake(settings.lake)
    if lake.remote or not settings.database.exists():
        return None
    manifest = read_manifest(lake)
    if manifest.is_empty():
        return None
    recorded = {row["path"]: row for row in manifest.iter_rows(named=True)}
    for dataset in PIPELINE_DATASETS:
        for path in landing_files(settings.landing, dataset):
            known = recorded.get(path.relative_to(settings.landing).as_posix())
            if known is None or known["sha256"] != landing_digest(path, known)[0]:
                return None
    if not pending_stats(lake).is_empty() or any(dirty_silver_dates(lake, d) for d in PIPELINE_DATASETS):
        return None
    day = target or latest_landing_session(settings)
    if day is None:
        return None
    runs = runlog.read(settings.warehouse, last=RUNS_LOOKED_AT)
    finished = [r for r in runs if r.get("status") in ("success", "failed")]
    if not finished or finished[-1].get("status") != "success":
        return None  # the last run failed: running again is what the operator asked for
    fingerprint = run_inputs_fingerprint(settings)
    for record in reversed(finished):
        if (
            record.get("inputs") != fingerprint
            or record.get("status") != "success"
            or not record.get("dates")
        ):
            continue
        first, last = (date.fromisoformat(d) for d in record["dates"])
        if first <= day <= last:
            return (
                f"nothing new in landing since run {record['run_id']} computed {day} "
                f"(finished {str(record.get('finished_at', ''))[:19]}); --force runs it again"
            )
    return None

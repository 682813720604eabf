"""Prefect result caching for the gold stage, keyed on the hashes of the landing files it derives from.

An interrupted night (killed during publish, say) re-runs without recomputing gold: the key is the
same when the landing files (their sha256 in the lake's manifest), the configuration, the code and the
task's parameters are. Ingest needs no task cache: the manifest already skips unchanged files one by
one, which is finer than a stage.

A cached result is only used if the gold partitions it wrote are still the ones on disk (same files,
sizes and modification times): a cache record never stands in for data that has since been removed or
rewritten. Records live beside the data, in `<warehouse>/.cache/prefect` (deleting a warehouse deletes
its cache), and expire after CACHE_EXPIRATION.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from flows.config import PROJECT_ROOT, Settings
from flows.storage.lake import GoldStagedLake, Lake, read_manifest, version

CACHE_EXPIRATION = timedelta(days=7)
CODE_PACKAGES = ("transforms", "schemas", "flows", "sql")
"""Source folders whose content is part of every key: changed code never reuses an old result."""


@cache
def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*")):
            if path.suffix in (".py", ".sql") and path.is_file():
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(settings: Settings) -> str:
    """The landing files the lake holds (by content hash), the configuration and the paths."""
    manifest = read_manifest(Lake(settings.lake)).select("dataset", "path", "sha256").sort("dataset", "path")
    config = (
        settings.config_file.read_bytes() if settings.config_file and settings.config_file.exists() else b""
    )
    digest = hashlib.sha256()
    digest.update(json.dumps([str(settings.warehouse), str(settings.landing)]).encode())
    digest.update(hashlib.sha256(config).digest())
    for dataset, path, sha in manifest.iter_rows():
        digest.update(f"{dataset}\0{path}\0{sha}\n".encode())
    return digest.hexdigest()


def run_inputs_fingerprint(settings: Settings) -> str:
    """What a whole run computes from: the landing files ingested, the configuration, the paths and the code."""
    return hashlib.sha256(f"{inputs_fingerprint(settings)}\n{code_fingerprint()}".encode()).hexdigest()


def stage_key(stage: str, settings: Settings, **parameters: Any) -> str:
    """The cache key of one stage call: its name and parameters, the inputs and the code."""
    described = json.dumps({k: _plain(v) for k, v in sorted(parameters.items())}, sort_keys=True)
    return hashlib.sha256(
        "\n".join([stage, described, inputs_fingerprint(settings), code_fingerprint()]).encode()
    ).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def outputs_fingerprint(
    settings: Settings,
    tables: Iterable[str],
    dates: Iterable[date],
    part: str | None = None,
    run_id: str | None = None,
) -> dict[str, list]:
    """Relative path -> [size, mtime_ns] (object storage: [size, ETag]) of the gold files a stage wrote
    (`part`: one shard's files). With `run_id`, the run's staged files over the committed ones, by the
    path each has in the lake: the commit renames them, which keeps size and time."""
    lake = GoldStagedLake(settings.lake, run_id=run_id) if run_id else Lake(settings.lake)
    found: dict[str, list] = {}
    for table in tables:
        for path in lake.files("gold", table, dates=list(dates)):
            if part is None or path.stem == part:
                name = lake.logical(path) if run_id else str(path.relative_to(lake.root))
                found[name] = version(path)
    return found


def result_storage(settings: Settings) -> Path:
    """Where cache records go: a folder of the warehouse (Prefect takes a Path as local storage; on a
    multi-machine cluster the warehouse is a path every worker sees)."""
    folder = Path(settings.warehouse) / ".cache" / "prefect"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


__all__ = [
    "CACHE_EXPIRATION",
    "code_fingerprint",
    "inputs_fingerprint",
    "outputs_fingerprint",
    "result_storage",
    "stage_key",
]

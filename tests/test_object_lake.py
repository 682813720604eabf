"""The lake on object storage: an S3 endpoint (moto's server, on localhost) holds bronze, silver, gold and
the manifest; the warehouse (DuckDB, cache records, reports) stays a local folder. The same runs give
the same tables as a lake on disk, on one process and on a two-worker Dask cluster, and a run killed
mid-commit then re-run equals one clean run."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.nightly import backfill, nightly, with_dask
from flows.storage.lake import Lake, Staging, lake_root
from schemas.gold import GOLD_TABLES
from tests.helpers import CHAINSIGNALS

pytestmark = pytest.mark.e2e

BUCKET = "chainsignals-test"


@pytest.fixture(scope="module")
def s3(prefect_api):
    """A local S3 endpoint; polars and s3fs both find it through the standard AWS_* variables."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }.items():
            env.setenv(name, value)
        lake_root(f"s3://{BUCKET}").fs.mkdir(BUCKET)
        yield f"s3://{BUCKET}"
    server.stop()


def tables(warehouse: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse / "signals.duckdb"), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in [*GOLD_TABLES, "pipeline_runs"]
            if t != "pipeline_runs"
        }
    finally:
        con.close()


def lake_frames(lake: Lake) -> dict[str, pl.DataFrame]:
    """Every dataset of every layer, read through the lake's own listing, ingestion times dropped."""
    out = {}
    for layer in ("bronze", "silver", "quarantine", "gold"):
        for dataset in ("bars", "chains", "trades", *GOLD_TABLES):
            files = lake.files(layer, dataset)
            if files:
                frame = pl.concat([pl.read_parquet(str(f)) for f in files], how="diagonal_relaxed")
                out[f"{layer}/{dataset}"] = frame.drop("_ingested_at", "_source_file", strict=False)
    return out


def assert_same_lake(remote: Lake, local: Lake) -> None:
    remote_frames, local_frames = lake_frames(remote), lake_frames(local)
    assert sorted(remote_frames) == sorted(local_frames) and len(local_frames) > 12
    for name, frame in local_frames.items():
        try:
            assert_frame_equal(remote_frames[name], frame, check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def run_backfill(flow, root: Path, days: list, lake: str | None = None, shards: int = 1):
    return flow(
        start=days[0],
        end=days[-1],
        warehouse=str(root / "wh"),
        landing=str(root / "landing"),
        lake=lake,
        shards=shards,
    )


@pytest.fixture(scope="module")
def on_disk(market, tmp_path_factory) -> Path:
    source, days = market
    root = tmp_path_factory.mktemp("disk")
    shutil.copytree(source / "landing", root / "landing")
    run_backfill(backfill, root, days)
    return root


@pytest.fixture(scope="module")
def on_s3(market, s3, tmp_path_factory) -> tuple[Path, str]:
    source, days = market
    root = tmp_path_factory.mktemp("s3")
    shutil.copytree(source / "landing", root / "landing")
    lake = f"{s3}/one-process/lake"
    run_backfill(backfill, root, days, lake=lake)
    return root, lake


def test_a_lake_on_s3_gives_the_same_warehouse_and_files(on_disk, on_s3):
    root, lake_url = on_s3
    assert tables(root / "wh") == tables(on_disk / "wh")
    assert_same_lake(Lake(lake_url), Lake(on_disk / "wh" / "lake"))
    assert not (root / "wh" / "lake").exists()  # nothing went to the local default
    keys = Lake(lake_url).root.fs.find(f"{BUCKET}/one-process/lake")
    assert not [k for k in keys if "/_staging/" in k or ".tmp-" in k]  # committed, nothing left behind
    assert f"{BUCKET}/one-process/lake/_manifest/landing_files.parquet" in keys


def test_a_rerun_on_s3_reuses_the_manifest_and_changes_nothing(market, on_s3):
    root, lake_url = on_s3
    lake = Lake(lake_url)
    before = {str(f): f.fs.info(f.path)["ETag"] for f in lake.files("silver", "chains")}
    warehouse_before = tables(root / "wh")
    summary = nightly(
        date=market[1][-1], warehouse=str(root / "wh"), landing=str(root / "landing"), lake=lake_url
    )
    assert summary.status == "success"
    assert {str(f): f.fs.info(f.path)["ETag"] for f in lake.files("silver", "chains")} == before
    assert tables(root / "wh") == warehouse_before


def test_two_dask_workers_on_an_s3_lake_give_the_same_tables(market, s3, on_disk, tmp_path):
    source, days = market
    shutil.copytree(source / "landing", tmp_path / "landing")
    lake = f"{s3}/dask/lake"
    run_backfill(with_dask(backfill, workers=2), tmp_path, days, lake=lake, shards=2)
    assert tables(tmp_path / "wh") == tables(on_disk / "wh")
    parts = {f.name for f in Lake(lake).files("gold", "signals_daily", dates=days)}
    assert parts == {"part-0-of-2.parquet", "part-1-of-2.parquet"}


def test_a_cli_run_killed_mid_commit_on_s3_then_rerun_equals_a_clean_run(
    market, s3, on_disk, tmp_path, cli_env
):
    source, days = market
    shutil.copytree(source / "landing", tmp_path / "landing")
    lake = f"{s3}/killed/lake"
    command = [
        str(CHAINSIGNALS),
        "backfill",
        "--start",
        str(days[0]),
        "--end",
        str(days[-1]),
        "--warehouse",
        str(tmp_path / "wh"),
        "--landing",
        str(tmp_path / "landing"),
        "--lake",
        lake,
    ]
    killed = subprocess.run(
        command,
        env={**cli_env, "CHAINSIGNALS_CRASH_AT": "commit-half-done"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # killed at the crash point, not failed
    keys = lake_root(lake).fs.find(f"{BUCKET}/killed/lake")
    staging = tmp_path / "wh" / ".staging"  # a lake on object storage stages on local disk
    assert any(staging.iterdir()), killed.stderr  # it died with staged files not yet uploaded ...
    assert any("/bronze/" in k for k in keys)  # ... after the first half went into place ...
    assert not any(
        k.endswith("landing_files.parquet") or "/gold/" in k for k in keys
    )  # ... and before the rest
    # With its traceback should it fail: once in about 80 runs this re-run has exited with only "error:
    # 'module' object does not support item assignment", cause not yet found.
    rerun = subprocess.run(
        command,
        env={**cli_env, "CHAINSIGNALS_DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert tables(tmp_path / "wh") == tables(on_disk / "wh")
    assert_same_lake(Lake(lake), Lake(on_disk / "wh" / "lake"))
    assert not any(staging.iterdir())  # the re-run swept the debris
    status = subprocess.run(
        [str(CHAINSIGNALS), "status", "--warehouse", str(tmp_path / "wh"), "--lake", lake],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"lake       {lake}" in status.stdout
    rows = [[cell for cell in line.split() if cell != "│"] for line in status.stdout.splitlines()]
    assert [row[2:5] for row in rows if row[:2] == ["silver", "chains"]] == [
        ["2", str(days[0]), str(days[-1])]
    ]


def test_staging_on_s3_replaces_or_adds_parts_as_a_local_lake_does(s3, tmp_path):
    lake = Lake(f"{s3}/staging-unit/lake")
    day = date(2025, 12, 31)
    frame = pl.DataFrame(
        {"trade_date": [day], "symbol": ["SPY"]}, schema={"trade_date": pl.Date, "symbol": pl.String}
    )
    for part in ("part-0", "part-1"):  # committed: two parts in the partition
        lake.write_partitions(frame, "gold", "blocks", part=part, exclusive=False)
    staging = Staging(lake, "run-1", folder=tmp_path / ".staging")
    staging.stage(
        frame.with_columns(pl.lit("IWM").alias("symbol")), "gold", "blocks", day, "part-0", exclusive=True
    )
    staging.stage(frame, "silver", "bars", day, "part-0", exclusive=False)
    staging.commit()
    assert [f.name for f in lake.files("gold", "blocks")] == [
        "part-0.parquet"
    ]  # the exclusive one replaced both
    assert lake.scan("gold", "blocks", {"trade_date": pl.Date(), "symbol": pl.String()}).collect()[
        "symbol"
    ].to_list() == ["IWM"]
    assert [f.name for f in lake.files("silver", "bars")] == ["part-0.parquet"]
    assert not any((tmp_path / ".staging").iterdir())

    staging = Staging(lake, "run-2", folder=tmp_path / ".staging")
    staging.stage(frame, "gold", "blocks", day, "part-2", exclusive=False)  # beside the others
    staging.remove("silver", "bars", day, "part-0")
    staging.commit()
    assert [f.name for f in lake.files("gold", "blocks")] == ["part-0.parquet", "part-2.parquet"]
    assert lake.dates("silver", "bars") == []


def test_the_lake_location_comes_from_the_flag_the_environment_or_the_config(tmp_path, monkeypatch):
    from flows.config import load_settings

    config = tmp_path / "c.toml"
    config.write_text(
        Path("chainsignals.toml").read_text().replace('lake = ""', 'lake = "s3://from-config/lake"')
    )
    monkeypatch.delenv("CHAINSIGNALS_LAKE", raising=False)
    assert str(load_settings(config, warehouse=tmp_path).lake) == "s3://from-config/lake"
    monkeypatch.setenv("CHAINSIGNALS_LAKE", "gs://from-env/lake/")
    assert str(load_settings(config, warehouse=tmp_path).lake) == "gs://from-env/lake"
    assert load_settings(config, warehouse=tmp_path, lake=str(tmp_path / "here")).lake == tmp_path / "here"
    monkeypatch.delenv("CHAINSIGNALS_LAKE")
    assert load_settings(warehouse=tmp_path).lake == tmp_path.resolve() / "lake"  # the default
    assert Lake(tmp_path / "lake").remote is False and Lake("s3://b/lake").remote is True

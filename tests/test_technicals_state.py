"""The nightly's technicals carried forward from the previous session's state (flows.stages.gold._technicals):
the same rows as a full recompute, bit for bit, and a full recompute whenever the state no longer stands."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.config import load_settings
from flows.market.simulator import generate_demo_market
from flows.stages import gold as pipeline
from flows.stages.gold import build_gold, history_start
from flows.stages.ingest import ingest_and_validate
from flows.stages.sessions import StageStats
from flows.stages.silver import silver_schema
from flows.storage.lake import Lake
from transforms.technicals import technicals_daily

SYMBOLS = ["SPY", "IWM", "QQQ", "XLE"]  # SPY is the configured benchmark


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[Path, list[date]]:
    root = tmp_path_factory.mktemp("demo")
    days = generate_demo_market(root / "landing", sessions=300, symbols=SYMBOLS, chain_sessions=1).sessions
    return root / "landing", days


@pytest.fixture
def passes(monkeypatch) -> dict[str, int]:
    """How many sessions each way computed: a full pass over the history, or carried forward."""
    calls = {"full": 0, "carried": 0}

    def counted(name: str, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(pipeline, "technicals_with_state", counted("full", pipeline.technicals_with_state))
    monkeypatch.setattr(pipeline, "carry_forward", counted("carried", pipeline.carry_forward))
    return calls


def _warehouse(tmp_path: Path, landing: Path, name: str, days: list[date]):
    copy = tmp_path / name / "landing"
    shutil.copytree(landing, copy)
    settings = load_settings(warehouse=tmp_path / name / "wh", landing=copy)
    ingest_and_validate(settings, f"ingest-{name}", end=days[-1])
    return settings


def _gold_technicals(settings, day: date) -> pl.DataFrame:
    return pl.read_parquet(Lake(settings.lake).files("gold", "technicals_daily", dates=[day])).sort("symbol")


def _full_recompute(settings, day: date) -> pl.DataFrame:
    """technicals_daily of `day` straight from the lake's silver bars since its history start."""
    bars = Lake(settings.lake).scan(
        "silver", "bars", silver_schema("bars"), start=history_start(day, settings.history_years), end=day
    )
    return technicals_daily(bars, settings.benchmark).filter(pl.col("trade_date") == day).collect()


def test_nightlies_carry_forward_and_equal_a_backfill(tmp_path: Path, landing, passes):
    landing, days = landing
    run = days[-5:]
    nightly = _warehouse(tmp_path, landing, "nightly", days)
    for day in run:
        build_gold(nightly, [day], StageStats())
    assert passes == {"full": 1, "carried": 4}  # the first night has no state yet

    passes.update(full=0, carried=0)
    bulk = _warehouse(tmp_path, landing, "bulk", days)
    build_gold(bulk, run, StageStats())
    assert passes == {"full": 1, "carried": 0}
    for day in run:
        carried = _gold_technicals(nightly, day)
        assert carried.height == len(SYMBOLS) and carried["beta_252"].drop_nulls().len() == len(SYMBOLS)
        assert_frame_equal(carried, _gold_technicals(bulk, day), check_exact=True)
        expected = _full_recompute(nightly, day).drop("trade_date")  # the partition holds the date
        assert_frame_equal(carried.select(expected.columns), expected, check_exact=True)


def _correct_close(landing: Path, day: date, symbol: str, by: float) -> None:
    """The vendor re-delivers its history file with one session's close corrected."""
    path = landing / "bars" / "bars_history.csv"
    bars = pl.read_csv(path, try_parse_dates=True)
    hit = (pl.col("date") == day) & (pl.col("symbol") == symbol)
    assert bars.filter(hit).height == 1
    bars.with_columns(
        close=pl.when(hit).then(pl.col("close") + by).otherwise(pl.col("close")),
        high=pl.when(hit).then(pl.col("high") + by).otherwise(pl.col("high")),
    ).write_csv(path)


def test_a_late_correction_of_an_earlier_bar_recomputes_from_the_history(tmp_path: Path, landing, passes):
    landing, days = landing
    settings = _warehouse(tmp_path, landing, "late", days)
    for day in days[-5:-2]:
        build_gold(settings, [day], StageStats())
    tonight = days[-2]
    uncorrected = _full_recompute(settings, tonight)

    _correct_close(settings.landing, days[-4], "IWM", 5.0)
    ingest_and_validate(settings, "ingest-correction", end=days[-1])
    passes.update(full=0, carried=0)
    build_gold(
        settings, [tonight], StageStats()
    )  # the state after days[-3] saw the bar before its correction
    assert passes == {"full": 1, "carried": 0}
    expected = _full_recompute(settings, tonight)
    assert (
        expected.filter(pl.col("symbol") == "IWM")["sma_20"].item()
        != uncorrected.filter(pl.col("symbol") == "IWM")["sma_20"].item()
    )
    assert_frame_equal(
        _gold_technicals(settings, tonight).select(expected.drop("trade_date").columns),
        expected.drop("trade_date"),
        check_exact=True,
    )

    # The state that run left stands for the corrected bars: the next session carries forward again.
    passes.update(full=0, carried=0)
    build_gold(settings, [days[-1]], StageStats())
    assert passes == {"full": 0, "carried": 1}
    expected = _full_recompute(settings, days[-1]).drop("trade_date")
    assert_frame_equal(
        _gold_technicals(settings, days[-1]).select(expected.columns), expected, check_exact=True
    )


def test_a_changed_benchmark_or_a_new_year_recomputes(tmp_path: Path, landing, passes):
    landing, days = landing
    settings = _warehouse(tmp_path, landing, "config", days)
    build_gold(settings, [days[-2]], StageStats())
    lake = Lake(settings.lake)
    passes.update(full=0, carried=0)
    other = dataclasses.replace(settings, benchmark="QQQ")
    technicals = pipeline._technicals(other, lake, [days[-1]], None)
    assert passes == {"full": 1, "carried": 0}
    expected = _full_recompute(other, days[-1])
    assert_frame_equal(technicals, expected, check_exact=True)
    # history_years moves the history start: the state after days[-2] was computed from another one.
    passes.update(full=0, carried=0)
    longer = dataclasses.replace(other, history_years=other.history_years + 1)
    assert_frame_equal(pipeline._technicals(longer, lake, [days[-1]], None), expected, check_exact=True)
    assert passes == {"full": 1, "carried": 0}

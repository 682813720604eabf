"""One exception base: every error the code raises on purpose is a ChainsignalsError carrying where it
happened; the CLI prints such an error as the reason, and anything else as a bug with its traceback kept."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
import tempfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.errors import ChainsignalsError


def _error_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in flows, transforms and schemas, by its qualified name."""
    found = {}
    for package in ("transforms", "schemas", "flows"):
        for module in pkgutil.walk_packages([package], prefix=f"{package}."):
            loaded = importlib.import_module(module.name)
            for name, obj in vars(loaded).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == loaded.__name__
                ):
                    found[f"{module.name}.{name}"] = obj
    return found


def test_every_error_class_derives_from_chainsignals_error():
    classes = _error_classes()
    # The classes of 2026-12 (the issue counted ten modules), so the walk above is known to reach them.
    assert {
        "flows.config.ConfigError",
        "flows.sources.files.SourceError",
        "flows.sources.files.TooLargeError",
        "flows.stages.silver.RejectedShareError",
        "flows.storage.warehouse.WarehouseBusy",
        "flows.storage.warehouse.WarehouseInUse",
        "flows.report.build.ReportError",
        "flows.cli.query.QueryError",
        "flows.stages.backtest.BacktestError",
        "flows.sources.yfinance_live.MissingExtraError",
        "flows.stages.run.RunError",
        "transforms.ideas.RuleError",
        "schemas.quarantine.StructuralError",
        "schemas.gold.GoldValidationError",
    } <= set(classes)
    # A signal is not an error: SIGTERM is raised as a KeyboardInterrupt, as Ctrl-C is.
    errors = {name: cls for name, cls in classes.items() if issubclass(cls, Exception)}
    assert [name for name, cls in errors.items() if not issubclass(cls, ChainsignalsError)] == []
    assert [name for name, cls in classes.items() if cls not in errors.values()] == [
        "flows.cli.launcher.Terminated"
    ]
    # The classes other code catches by a builtin type still are one.
    from flows.report.build import ReportError
    from flows.sources.yfinance_live import MissingExtraError
    from flows.stages.run import RunError
    from transforms.ideas import RuleError

    assert issubclass(RuleError, ValueError) and issubclass(ReportError, ValueError)
    assert issubclass(RunError, RuntimeError) and issubclass(MissingExtraError, ImportError)


def test_an_unusable_landing_file_names_the_file_and_dataset(tmp_path):
    from flows.sources.files import SourceError, detect_format

    path = tmp_path / "chains.csv"
    with pytest.raises(SourceError) as err:
        detect_format("chains", {"quote_date", "strike"}, path)
    assert (err.value.file, err.value.dataset, err.value.date) == (path, "chains", None)
    assert str(err.value).startswith(f"{path}: missing required column(s) ")


def test_structural_and_gold_failures_name_their_dataset():
    from schemas.gold import GoldValidationError, TechnicalsDaily, validate_gold
    from schemas.quarantine import StructuralError, split_valid
    from schemas.silver import Bars

    with pytest.raises(StructuralError) as err:
        split_valid(pl.DataFrame({"symbol": ["IWM"]}), Bars, "bars")
    assert err.value.dataset == "bars" and str(err.value).startswith("bars: ")
    with pytest.raises(GoldValidationError) as err:
        validate_gold(pl.DataFrame({"close": [float("inf")]}), TechnicalsDaily)
    assert err.value.dataset == "technicals_daily"
    assert str(err.value) == "technicals_daily: non_finite:close (1 rows)"


def test_a_config_error_names_its_file(tmp_path):
    from flows.config import ConfigError, load_settings

    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as err:
        load_settings(missing)
    assert err.value.file == missing


def test_the_context_survives_pickling():
    """Errors cross process boundaries (Dask workers, Prefect results) pickled."""
    from flows.sources.files import SourceError
    from flows.stages.silver import RejectedShareError

    error = pickle.loads(
        pickle.dumps(
            RejectedShareError(
                "chains 2025-12-29: 9 of 10 rows rejected", dataset="chains", date=date(2025, 12, 29)
            )
        )
    )
    assert (str(error), error.dataset, error.date, error.file) == (
        "chains 2025-12-29: 9 of 10 rows rejected",
        "chains",
        date(2025, 12, 29),
        None,
    )
    transient = pickle.loads(pickle.dumps(SourceError("x.csv: unreadable", transient=True, file="x.csv")))
    assert (transient.transient, transient.file) == (True, "x.csv")


def _validate_with(monkeypatch, tmp_path: Path, exc: BaseException):
    """`chainsignals validate FILE` with the validation raising `exc`."""
    from flows.cli import validate
    from flows.cli.app import app

    def failing(*args, **kwargs):
        raise exc

    monkeypatch.setattr(validate, "validate_file", failing)
    monkeypatch.delenv("CHAINSIGNALS_DEBUG", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the traceback of a bug is written
    return CliRunner().invoke(app, ["validate", str(tmp_path / "x.csv"), "--warehouse", str(tmp_path / "wh")])


def test_the_cli_prints_a_named_error_as_its_reason(monkeypatch, tmp_path):
    from flows.sources.files import SourceError

    done = _validate_with(
        monkeypatch, tmp_path, SourceError("x.csv: missing required column(s) bid for chains")
    )
    assert done.exit_code == 1
    assert done.output.strip() == "error: x.csv: missing required column(s) bid for chains"
    assert not list(tmp_path.glob("chainsignals-*.traceback"))


def test_the_cli_prints_a_bug_in_one_line_and_keeps_its_traceback(monkeypatch, tmp_path):
    done = _validate_with(monkeypatch, tmp_path, KeyError("close"))
    assert done.exit_code == 1
    (kept,) = tmp_path.glob("chainsignals-*.traceback")
    line = " ".join(done.output.split())  # Rich wraps at the console's width
    assert line == f"error: 'close' (KeyError, unexpected: traceback in {kept})"
    traceback = kept.read_text()
    assert traceback.startswith("Traceback (most recent call last):") and "in failing" in traceback
    assert re.search(r"KeyError: 'close'\n$", traceback)

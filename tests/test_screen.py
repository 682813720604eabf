"""meets_model: the one-pass screen that lets a clean frame skip pandera's per-check queries must reach
pandera's verdict on every frame (a frame it passes, pandera passes; one pandera rejects, it rejects)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaErrors

from schemas.gold import StrikeLevels
from schemas.quarantine import meets_model, split_valid
from schemas.silver import Bars, Chains, Trades
from tests.builders import (
    BARS_SCHEMA,
    CHAINS_SCHEMA,
    EXPIRY,
    HOSTILE,
    TRADES_SCHEMA,
    bar,
    chain_row,
    osi,
    trade,
)


def pandera_passes(df: pl.DataFrame, model) -> bool:
    with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        try:
            model.validate(df, lazy=True)
        except SchemaErrors:
            return False
    return True


NUMBERS = [None, math.nan, -1.0, 0.0, 0.5, 1.0, 1.2, 1.5, 249.0, 251.0, 253.0, 1e9]
COUNTS = [None, -1, 0, 1, 100]
DATES = [None, date(2025, 1, 1), date(2025, 1, 2), EXPIRY]
SYMBOLS = [None, "IWM", "BRK.B", *HOSTILE]

# Per column, values that break a rule mixed with values that keep it.
BAR_VALUES = {"trade_date": DATES, "symbol": SYMBOLS, "open": NUMBERS, "high": NUMBERS, "low": NUMBERS,
              "close": NUMBERS, "volume": COUNTS, "adj_close": NUMBERS}  # fmt: skip
CHAIN_VALUES = {
    "trade_date": DATES, "underlying": SYMBOLS, "expiration": DATES, "strike": [None, -5.0, 0.0, 250.0, 255.0],
    "option_type": [None, "C", "P", "X", "c"], "open_interest": COUNTS, "volume": COUNTS, "bid": NUMBERS,
    "ask": NUMBERS, "last": NUMBERS, "mid": NUMBERS, "implied_volatility": NUMBERS, "delta": NUMBERS,
    "gamma": NUMBERS, "underlying_price": NUMBERS, "dte": [None, -1, 0, 14, 15],
    "option_symbol": [None, "IWM 251231C2", osi(EXPIRY, "C", 250.0), osi(EXPIRY, "P", 250.0),
                      osi(EXPIRY, "C", 255.0), "iwm   250117C00250000", "IWM   251340C00250000"],
}  # fmt: skip
TRADE_VALUES = {
    "trade_date": DATES, "ts": [None, datetime(2025, 1, 2, 15, 30, tzinfo=UTC)], "underlying": SYMBOLS,
    "option_symbol": CHAIN_VALUES["option_symbol"], "expiration": DATES, "strike": [None, -5.0, 250.0],
    "option_type": [None, "C", "P", "X"], "price": NUMBERS, "size": COUNTS, "bid": NUMBERS, "ask": NUMBERS,
    "exchange": [None, "CBOE"],
}  # fmt: skip


def chain(**changes) -> dict:
    """chain_row with its symbol given, so a row may change its expiry or strike to null."""
    return chain_row() | changes


CASES = {"bars": (Bars, BARS_SCHEMA, bar, BAR_VALUES), "chains": (Chains, CHAINS_SCHEMA, chain, CHAIN_VALUES),
         "trades": (Trades, TRADES_SCHEMA, trade, TRADE_VALUES)}  # fmt: skip


@st.composite
def frames(draw, dataset: str) -> pl.DataFrame:
    _, schema, good_row, values = CASES[dataset]
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        changed = draw(st.lists(st.sampled_from(sorted(values)), max_size=2, unique=True))
        rows.append(good_row(**{column: draw(st.sampled_from(values[column])) for column in changed}))
    return pl.DataFrame(rows, schema=schema)


@pytest.mark.parametrize("dataset", sorted(CASES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_screen_reaches_pandera_verdict(dataset, data):
    model = CASES[dataset][0]
    df = data.draw(frames(dataset))
    assert meets_model(df, model) == pandera_passes(df, model)


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_good_rows_pass_and_each_kind_of_bad_row_fails(dataset):
    model, schema, good_row, _ = CASES[dataset]
    good = pl.DataFrame([good_row(), good_row()], schema=schema)
    assert meets_model(good, model)
    assert not meets_model(
        pl.DataFrame([good_row(), good_row(underlying="iwm", symbol="iwm")], schema=schema), model
    )


def test_nan_counts_as_null_where_nulls_are_refused():
    df = pl.DataFrame([bar(close=math.nan)], schema=BARS_SCHEMA)
    assert not meets_model(df, Bars)
    _, rejected = split_valid(df, Bars, "bars")
    assert rejected["_reason"].to_list() == ["not_nullable:close; close_in_range:close,low,high"]


def test_wrong_dtype_or_missing_column_is_left_to_pandera():
    good = pl.DataFrame([bar()], schema=BARS_SCHEMA)
    assert not meets_model(good.with_columns(pl.col("volume").cast(pl.Float64)), Bars)
    assert not meets_model(good.drop("close"), Bars)
    assert meets_model(good.drop("adj_close").with_columns(pl.lit(None, pl.Float64).alias("adj_close")), Bars)


def test_a_rule_the_screen_does_not_evaluate_sends_the_frame_to_pandera():
    class UniqueSymbols(pa.DataFrameModel):
        symbol: str = pa.Field(unique=True)

    df = pl.DataFrame({"symbol": ["A", "B"]})
    assert not meets_model(df, UniqueSymbols)  # not judged here ...
    assert pandera_passes(df, UniqueSymbols)  # ... pandera passes it
    valid, rejected = split_valid(pl.DataFrame({"symbol": ["A", "A"]}), UniqueSymbols, "x")
    assert rejected.height == 2 and valid.is_empty()


def test_gold_model_checks_are_screened_too():
    row = {
        "trade_date": date(2025, 1, 2),
        "symbol": "IWM",
        "side": "call",
        "rank": 1,
        "strike": 250.0,
        "open_interest": 100,
        "volume": 5,
        "oi_change": 3,
    }
    schema = {
        "trade_date": pl.Date,
        "symbol": pl.String,
        "side": pl.String,
        "rank": pl.Int64,
        "strike": pl.Float64,
        "open_interest": pl.Int64,
        "volume": pl.Int64,
        "oi_change": pl.Int64,
    }
    good = pl.DataFrame([row], schema=schema)
    assert meets_model(good, StrikeLevels) == pandera_passes(good, StrikeLevels)
    bad = pl.DataFrame([row | {"side": "sideways"}], schema=schema)
    assert not meets_model(bad, StrikeLevels)
    assert not pandera_passes(bad, StrikeLevels)

"""Test data builders: silver chains, bars, trade prints and feature rows, typed as the pipeline types them.

Every builder takes plain rows (dicts naming only what a test cares about) and keyword defaults for the
columns the rows leave out, and returns a frame with the pipeline's own column types (from the pandera
models in schemas/silver.py and the transforms' schemas), so a test states its data and nothing else.
A column a builder does not know is refused: a misspelt field would otherwise be silently NULL.

The one-row dict builders (`bar`, `chain_row`, `trade`) start from one valid silver row each, so a test
changes only the field under test; `osi` writes the 21-character contract symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from flows.sources.files import conform
from schemas.silver import Bars, Chains, Trades
from transforms.features import FEATURE_SCHEMA
from transforms.silver import CHAIN_COLUMNS, LINEAGE_COLUMNS
from transforms.trades import TRADE_SCHEMA


def _model_schema(model) -> dict[str, pl.DataType]:
    return {name: column.dtype.type for name, column in model.to_schema().columns.items()}


BARS_SCHEMA: dict[str, pl.DataType] = _model_schema(Bars)
TRADES_SCHEMA: dict[str, pl.DataType] = _model_schema(Trades)
# The chain columns silver validates (schemas.silver.Chains), then the derivation flags, the forward, the
# strike's open interest and the row's source file.
CHAIN_MODEL_COLUMNS: list[str] = list(_model_schema(Chains))
SILVER_CHAIN_SCHEMA: dict[str, pl.DataType] = {
    **_model_schema(Chains),
    "spot_derived": pl.Boolean,
    "iv_derived": pl.Boolean,
    "greeks_derived": pl.Boolean,
    "forward": pl.Float64,
    "forward_source": pl.String,
    "iv_status": pl.String,
    "strike_call_oi": pl.Int64,
    "strike_put_oi": pl.Int64,
    "_source_file": pl.String,
}
assert list(SILVER_CHAIN_SCHEMA) == [*CHAIN_COLUMNS, LINEAGE_COLUMNS[0]]
# What the chain quarantine (schemas.silver.Chains) sees: the model's columns and the source file.
CHAINS_SCHEMA: dict[str, pl.DataType] = {**_model_schema(Chains), "_source_file": pl.String}


def _frame(
    rows: Iterable[dict], schema: dict[str, pl.DataType], columns: Sequence[str], defaults: dict
) -> pl.DataFrame:
    """rows over defaults, in `columns`' order with `schema`'s types; a name outside `schema` is refused."""
    filled = [defaults | row for row in rows]
    unknown = ({k for row in filled for k in row} | set(columns)) - set(schema)
    assert not unknown, f"not columns of this frame: {sorted(unknown)}"
    return pl.DataFrame(
        [{c: row.get(c) for c in columns} for row in filled], schema={c: schema[c] for c in columns}
    )


# --- chains -----------------------------------------------------------------------------------------------


def osi(expiration: date, option_type: str, strike: float, root: str = "IWM") -> str:
    """The 21-character OSI symbol: root padded to 6, YYMMDD, C/P, strike x 1000 in 8 digits."""
    return f"{root:<6}{expiration:%y%m%d}{option_type}{round(strike * 1000):08d}"


def silver_chain(
    rows: Iterable[dict], *, columns: Sequence[str] = tuple(SILVER_CHAIN_SCHEMA), **defaults
) -> pl.LazyFrame:
    """Silver chain rows with `columns` (default: all of silver's, lineage's source file last).

    A row (over `defaults`) names trade_date, underlying, expiration, option_type and strike; what it
    leaves out of `option_symbol` and `dte` is derived from them (the OSI symbol, calendar days to expiry)
    when `columns` asks for them; any other column not given is NULL.
    """
    derived = []
    for row in rows:
        row = defaults | row
        if "option_symbol" in columns and "option_symbol" not in row:
            row["option_symbol"] = osi(
                row["expiration"], row["option_type"], row["strike"], row["underlying"]
            )
            assert len(row["option_symbol"]) == 21, row
        if "dte" in columns and "dte" not in row:
            row["dte"] = (row["expiration"] - row["trade_date"]).days
        derived.append(row)
    return _frame(derived, SILVER_CHAIN_SCHEMA, columns, {}).lazy()


QUOTE = date(2025, 1, 2)
EXPIRY = date(2025, 1, 17)
HOSTILE = ["../etc", "IWM'; DROP TABLE x;--", "iwm", "", "IWM/..", " IWM", "ABCDEFGHIJK"]
"""Symbols a path or SQL statement must never be built from."""


def chain_row(**changes) -> dict:
    """One valid silver chain row (IWM 250 call, 2025-01-02), as CHAINS_SCHEMA; `changes` override fields."""
    row = {"trade_date": QUOTE, "underlying": "IWM", "expiration": EXPIRY, "strike": 250.0,
           "option_type": "C", "open_interest": 100, "volume": 10, "bid": 1.0, "ask": 1.2, "last": 1.1,
           "mid": 1.1, "implied_volatility": 0.2, "delta": 0.5, "gamma": 0.02, "underlying_price": 249.8,
           "dte": 15, "_source_file": "chains/x.csv"} | changes  # fmt: skip
    row.setdefault("option_symbol", osi(row["expiration"], "C", row["strike"]))
    return row


# --- bars -------------------------------------------------------------------------------------------------


def silver_bars(
    rows: Iterable[dict], *, columns: Sequence[str] = tuple(BARS_SCHEMA), **defaults
) -> pl.LazyFrame:
    """Silver bar rows with `columns` (default: all of silver's); what a row does not name is `defaults`' or NULL."""
    return _frame(rows, BARS_SCHEMA, columns, defaults).lazy()


def bar(**changes) -> dict:
    """One valid silver bar (IWM on 2025-01-02), as BARS_SCHEMA; `changes` override fields."""
    return {"trade_date": QUOTE, "symbol": "IWM", "open": 250.0, "high": 252.0, "low": 249.0, "close": 251.0,
            "volume": 1_000_000, "adj_close": 251.0} | changes  # fmt: skip


# --- prints -----------------------------------------------------------------------------------------------


def trade(**changes) -> dict:
    """One valid silver print (the IWM 250 call on 2025-01-02), as TRADES_SCHEMA; `changes` override fields."""
    return {"trade_date": QUOTE, "ts": datetime(2025, 1, 2, 15, 30, tzinfo=UTC),
            "option_symbol": osi(EXPIRY, "C", 250.0), "underlying": "IWM", "expiration": EXPIRY,
            "strike": 250.0, "option_type": "C", "price": 1.1, "size": 10, "bid": 1.0, "ask": 1.2,
            "exchange": "CBOE"} | changes  # fmt: skip


def silver_prints(rows: Iterable[dict], **defaults) -> pl.LazyFrame:
    """Silver print rows (TRADE_SCHEMA); the contract's fields come from the 21-character symbol, the
    underlying from its root unless a row names one; exchange CBOE and no quote unless given."""
    base = {"exchange": "CBOE", "bid": None, "ask": None} | defaults
    frame = pl.DataFrame([base | r for r in rows]).with_columns(
        pl.col("option_symbol").str.slice(0, 6).str.strip_chars().alias("underlying_from_root")
    )
    if "underlying" not in frame.columns:
        frame = frame.with_columns(pl.col("underlying_from_root").alias("underlying"))
    return (
        frame.lazy()
        .with_columns(
            pl.col("underlying").fill_null(pl.col("underlying_from_root")),
            pl.col("option_symbol").str.slice(6, 6).str.to_date("%y%m%d").alias("expiration"),
            pl.col("option_symbol").str.slice(12, 1).alias("option_type"),
            (pl.col("option_symbol").str.slice(13, 8).cast(pl.Int64) * 0.001).alias("strike"),
        )
        .select(*[pl.col(c).cast(t) for c, t in TRADE_SCHEMA.items()])
    )


PRINTS_INGESTED = datetime(2025, 12, 30, 1, 0, tzinfo=UTC)
PRINTS_PATH = Path("/landing/trades/trades_2025-12-29.csv")
PRINT_COLUMNS = ["ts", "option_symbol", "price", "size", "bid", "ask", "exchange", "underlying"]


def print_row(symbol: str, ts: str = "2025-12-29T15:30:00Z", **extra) -> dict:
    """One landing print as text: 10 contracts at 4.10 against a 4.00 / 4.10 quote on CBOE."""
    return {
        "ts": ts,
        "option_symbol": symbol,
        "price": "4.10",
        "size": "10",
        "bid": "4.00",
        "ask": "4.10",
        "exchange": "CBOE",
    } | extra


def bronze_prints(rows: list[dict]) -> pl.DataFrame:
    """Landing text rows -> bronze via the real reader (flows.sources.files.conform)."""
    text = pl.DataFrame(
        [{c: r.get(c) for c in PRINT_COLUMNS} for r in rows], schema=dict.fromkeys(PRINT_COLUMNS, pl.String)
    )
    bronze, _ = conform(text, "trades", PRINTS_PATH, PRINTS_PATH.name, PRINTS_INGESTED)
    return bronze


# --- features ---------------------------------------------------------------------------------------------


def features(*rows: dict, extra: dict[str, pl.DataType] | None = None, **defaults) -> pl.LazyFrame:
    """A feature frame with every FEATURE_SCHEMA column (plus `extra`); what a row does not name is
    `defaults`' or NULL."""
    schema = {**FEATURE_SCHEMA, **(extra or {})}
    return _frame(rows, schema, list(schema), defaults).lazy()

"""Silver models: what the transforms may rely on after validation and de-duplication.

``strict=False`` lets lineage and derived-flag columns (``_source_file``, ``iv_derived``, ...) ride along;
``coerce=False`` because typing is bronze's job: a wrong dtype here is a structural error, not a row error.
Row rules and their quarantine reasons are listed in each model's docstring.
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.checks import (
    OPTION_TYPE_RULE,
    OSI_RULE,
    SYMBOL_RULE,
    osi21_ok,
    reason,
    rows,
    symbol_ok,
)
from transforms.osi import parse_osi

EXPIRATION_RULE = reason("expiration_ge_trade_date", "expiration", "trade_date")
BID_ASK_RULE = reason("bid_le_ask", "bid", "ask")


# Every number is checked: a non-finite value (inf, NaN) is quarantined as non_finite:<col>, a finite one
# beyond what any listed instrument shows as out_of_range:<col>. The bounds keep derived numbers
# representable (gamma*OI and delta*OI are summed as Int64 fixed point at 1e-8 in transforms.greeks).
MAX_PRICE = 1e7  # a price, strike or spot (the dearest share trades under 1e6)
MAX_IV = 100.0  # implied volatility as a fraction (10,000%)
MAX_GAMMA = 1_000.0  # per share; a 0DTE at-the-money option on a $1 stock is under 100
MAX_OPEN_INTEREST = 10_000_000
MAX_VOLUME = 10_000_000_000_000  # shares a day (bars); contracts (chains, prints) are held to the OI bound
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"


def _not_infinite(column: str) -> pl.Expr:
    """For a column that is not nullable: NaN is already a null there (not_nullable:<col>)."""
    return ~pl.col(column).is_infinite()


def _finite(column: str) -> pl.Expr:
    """For a nullable column: NaN is not a missing value but a broken one."""
    return pl.col(column).is_finite()


def _within(column: str, bound: float) -> pl.Expr:
    """|value| <= bound; a non-finite value is non_finite's to report, not this rule's."""
    return ~pl.col(column).is_finite() | (pl.col(column).abs() <= bound)


def _int_within(column: str, bound: int) -> pl.Expr:
    return pl.col(column).abs() <= bound


def _expiration_not_before_quote() -> pl.Expr:
    # Expiring ON the quote date is a live contract (0DTE); before it, the quote cannot exist.
    return pl.col("expiration") >= pl.col("trade_date")


class Bars(pa.DataFrameModel):
    """Daily bars, one row per (trade_date, symbol).

    Reasons: not_nullable:<col>, symbol_pattern:symbol, greater_than(0):open|high|low|close|adj_close,
    greater_than_or_equal_to(0):volume, high_ge_low:high,low, open_in_range:open,low,high,
    close_in_range:close,low,high, non_finite:open|high|low|close|adj_close, out_of_range:the same|volume.
    """

    trade_date: pl.Date
    symbol: str
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Int64 = pa.Field(ge=0)
    adj_close: pl.Float64 = pa.Field(gt=0, nullable=True)

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

    @pa.check("open", "high", "low", "close", error=NON_FINITE)
    def _finite(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _not_infinite(data.key))

    @pa.check("adj_close", error=NON_FINITE)
    def _finite_or_null(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _finite(data.key))

    @pa.check("open", "high", "low", "close", "adj_close", error=OUT_OF_RANGE)
    def _price_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _within(data.key, MAX_PRICE))

    @pa.check("volume", error=OUT_OF_RANGE)
    def _volume_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _int_within("volume", MAX_VOLUME))

    @pa.check("high", error=reason("high_ge_low", "high", "low"))
    def _high_ge_low(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("high") >= pl.col("low"))

    @pa.check("open", error=reason("open_in_range", "open", "low", "high"))
    def _open_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("open").is_between(pl.col("low"), pl.col("high")))

    @pa.check("close", error=reason("close_in_range", "close", "low", "high"))
    def _close_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("close").is_between(pl.col("low"), pl.col("high")))

    class Config:
        name = "bars"
        strict = False
        coerce = False


class Chains(pa.DataFrameModel):
    """Option chain snapshot, one row per (trade_date, option_symbol); trade_date is the quote date.

    Reasons: not_nullable:<col>, symbol_pattern:underlying, osi_symbol:option_symbol,
    osi_matches_contract:option_symbol,expiration,option_type,strike, isin(C,P):option_type,
    greater_than(0):strike|underlying_price, greater_than_or_equal_to(0):open_interest|volume|bid|ask|
    last|mid|implied_volatility|gamma, in_unit_range:delta, bid_le_ask:bid,ask,
    expiration_ge_trade_date:expiration,trade_date, dte_matches_expiration:dte,expiration,trade_date,
    non_finite:<every float column>, out_of_range:strike|bid|ask|last|mid|underlying_price|
    implied_volatility|gamma|open_interest|volume.
    """

    trade_date: pl.Date
    underlying: str
    option_symbol: str
    expiration: pl.Date
    strike: pl.Float64 = pa.Field(gt=0)
    option_type: str
    open_interest: pl.Int64 = pa.Field(ge=0)
    volume: pl.Int64 = pa.Field(ge=0)
    bid: pl.Float64 = pa.Field(ge=0)
    ask: pl.Float64 = pa.Field(ge=0)
    # A chain may arrive without `last`; it stays null rather than being invented.
    last: pl.Float64 = pa.Field(ge=0, nullable=True)
    mid: pl.Float64 = pa.Field(ge=0)
    implied_volatility: pl.Float64 = pa.Field(ge=0, nullable=True)
    delta: pl.Float64 = pa.Field(nullable=True)
    gamma: pl.Float64 = pa.Field(ge=0, nullable=True)
    underlying_price: pl.Float64 = pa.Field(gt=0)
    # Not >= 0 on its own: dte_matches_expiration plus expiration_ge_trade_date already imply it.
    dte: pl.Int64

    @pa.check("underlying", error=SYMBOL_RULE)
    def _underlying(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("underlying"))

    @pa.check("strike", "bid", "ask", "mid", "underlying_price", error=NON_FINITE)
    def _finite(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _not_infinite(data.key))

    @pa.check("last", "implied_volatility", "delta", "gamma", error=NON_FINITE)
    def _finite_or_null(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _finite(data.key))

    @pa.check("strike", "bid", "ask", "last", "mid", "underlying_price", error=OUT_OF_RANGE)
    def _price_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _within(data.key, MAX_PRICE))

    @pa.check("implied_volatility", error=OUT_OF_RANGE)
    def _iv_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _within("implied_volatility", MAX_IV))

    @pa.check("gamma", error=OUT_OF_RANGE)
    def _gamma_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _within("gamma", MAX_GAMMA))

    @pa.check("open_interest", "volume", error=OUT_OF_RANGE)
    def _count_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _int_within(data.key, MAX_OPEN_INTEREST))

    @pa.check("option_symbol", error=OSI_RULE)
    def _option_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, osi21_ok("option_symbol"))

    @pa.check(
        "option_symbol",
        error=reason("osi_matches_contract", "option_symbol", "expiration", "option_type", "strike"),
    )
    def _osi_matches_contract(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _osi_matches_contract())

    @pa.check("option_type", error=OPTION_TYPE_RULE)
    def _option_type(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("option_type").is_in(["C", "P"]))

    @pa.check("delta", error="in_unit_range")
    def _delta(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("delta").is_between(-1.0, 1.0))

    @pa.check("bid", error=BID_ASK_RULE)
    def _bid_le_ask(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("bid") <= pl.col("ask"))

    @pa.check("expiration", error=EXPIRATION_RULE)
    def _not_expired(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _expiration_not_before_quote())

    @pa.check("dte", error=reason("dte_matches_expiration", "dte", "expiration", "trade_date"))
    def _dte(cls, data: PolarsData) -> pl.LazyFrame:
        calendar_days = (pl.col("expiration") - pl.col("trade_date")).dt.total_days()
        return rows(data, pl.col("dte") == calendar_days)

    class Config:
        name = "chains"
        strict = False
        coerce = False


def _osi_matches_contract() -> pl.Expr:
    # The symbol and the contract columns come from different vendor fields; a mismatch means one is wrong.
    # The root is not compared: it differs from the underlying for adjusted (IWM1) and weekly (SPXW) roots.
    agrees = (
        (pl.field("expiration") == pl.col("expiration"))
        & (pl.field("option_type") == pl.col("option_type"))
        & ((pl.field("strike") - pl.col("strike")).abs() < 5e-4)
    )
    # A symbol of the right shape whose date cannot exist (IWM   251340C...) names no contract at all:
    # that is a mismatch, not "not judged" (osi_symbol only checks the shape, so nothing else rejects it).
    no_contract = pl.field("expiration").is_null() & osi21_ok("option_symbol")
    ok = pl.when(no_contract).then(False).otherwise(agrees)
    return parse_osi(pl.col("option_symbol")).struct.eval(ok.alias("ok")).struct.field("ok")


class Trades(pa.DataFrameModel):
    """Option trade prints.

    Reasons: not_nullable:<col>, symbol_pattern:underlying, osi_symbol:option_symbol,
    isin(C,P):option_type, greater_than(0):strike|price|size, greater_than_or_equal_to(0):bid|ask,
    bid_le_ask:bid,ask, expiration_ge_trade_date:expiration,trade_date, non_finite:strike|price|bid|ask,
    out_of_range:strike|price|bid|ask|size.
    """

    trade_date: pl.Date
    ts: Annotated[pl.Datetime, "us", "UTC"]
    option_symbol: str
    underlying: str
    expiration: pl.Date
    strike: pl.Float64 = pa.Field(gt=0)
    option_type: str
    price: pl.Float64 = pa.Field(gt=0)
    size: pl.Int64 = pa.Field(gt=0)
    # Prints often come without the prevailing quote; the side is then unknown, the print still counts.
    bid: pl.Float64 = pa.Field(ge=0, nullable=True)
    ask: pl.Float64 = pa.Field(ge=0, nullable=True)
    exchange: str = pa.Field(nullable=True)

    @pa.check("underlying", error=SYMBOL_RULE)
    def _underlying(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("underlying"))

    @pa.check("strike", "price", error=NON_FINITE)
    def _finite(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _not_infinite(data.key))

    @pa.check("bid", "ask", error=NON_FINITE)
    def _finite_or_null(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _finite(data.key))

    @pa.check("strike", "price", "bid", "ask", error=OUT_OF_RANGE)
    def _price_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _within(data.key, MAX_PRICE))

    @pa.check("size", error=OUT_OF_RANGE)
    def _size_range(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _int_within("size", MAX_OPEN_INTEREST))

    @pa.check("option_symbol", error=OSI_RULE)
    def _option_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, osi21_ok("option_symbol"))

    @pa.check("option_type", error=OPTION_TYPE_RULE)
    def _option_type(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("option_type").is_in(["C", "P"]))

    @pa.check("bid", error=BID_ASK_RULE)
    def _bid_le_ask(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("bid") <= pl.col("ask"))

    @pa.check("expiration", error=EXPIRATION_RULE)
    def _not_expired(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _expiration_not_before_quote())

    class Config:
        name = "trades"
        strict = False
        coerce = False


__all__ = ["Bars", "Chains", "Trades"]

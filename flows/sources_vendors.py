"""Vendor chain formats (SPEC 3): CBOE DataShop "Option EOD Summary" and saved yfinance option_chain() frames.

Each adapter maps a landing file's all-text frame (header lower-cased by the reader) to the canonical
all-text chain columns of flows.sources.FIELDS['chains']; typing, parse errors and validation then run
exactly as for canonical files. Values are moved, not judged: text that does not parse is passed on as
is, so the row is quarantined with what came in. The only rewrites are vendor conventions for "none":

- CBOE writes 0 for the close of a contract that did not trade and 0 for an IV (and its greeks) it
  could not compute; those become empty (no last trade; IV and greeks derived downstream).
- yfinance (Yahoo) omits volume and open interest when they are zero; pandas saves them as empty or
  NaN; those become 0.

Underlying vs root: a contract's OSI root can differ from its underlying (SPXW for SPX, IWM1 for an
adjusted IWM contract). CBOE files name the underlying (``underlying_symbol``, ``^SPX`` for indexes) and
the OSI symbol is built from ``root``; yfinance files carry only ``contractSymbol``, so the underlying is
an ``underlying`` column when the file has one (the live source writes it), else the root with trailing
digits dropped and the index weekly roots mapped (SPXW -> SPX, ...).
"""

from __future__ import annotations

import polars as pl

from flows.sources import FIELDS, Adapter
from transforms.osi import format_osi, parse_osi

NY = "America/New_York"
CHAIN_COLUMNS = list(FIELDS["chains"])  # canonical landing names, in FIELDS order
_MISSING_WORDS = ["", "NAN", "NONE", "NULL", "NAT", "NA", "N/A"]
# Index options whose weekly (PM-settled) series trade under their own root.
WEEKLY_ROOTS = {"SPXW": "SPX", "NDXP": "NDX", "RUTW": "RUT", "VIXW": "VIX", "XSPW": "XSP"}

CBOE_COLUMNS = {"underlying_symbol", "quote_date", "root", "expiration", "strike", "option_type",
                "open_interest", "trade_volume"}
CBOE_1545_QUOTE = {"bid_1545", "ask_1545"}
CBOE_EOD_QUOTE = {"bid_eod", "ask_eod"}
YFINANCE_COLUMNS = {"contractsymbol", "strike", "bid", "ask", "volume", "openinterest"}


# ------------------------------------------------------------------------------------------ text helpers
class _Columns:
    """Column access on a text frame where optional columns may be absent (then null)."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self.names = set(lf.collect_schema().names())

    def raw(self, name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in self.names else pl.lit(None, dtype=pl.String)

    def value(self, name: str) -> pl.Expr:
        """Trimmed text; null when absent, empty or a missing-value word (NaN, None, NaT, ...)."""
        text = self.raw(name).str.strip_chars()
        return pl.when(~text.str.to_uppercase().is_in(_MISSING_WORDS)).then(text)


def _number(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().cast(pl.Float64, strict=False)


def _as_date(text: pl.Expr) -> pl.Expr:
    """A calendar date in the forms vendors use (ISO, possibly with a time; US; compact)."""
    text = text.str.strip_chars()
    return pl.coalesce(
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
        text.str.to_date("%m/%d/%Y", strict=False),
        text.str.to_date("%Y%m%d", strict=False),
    )


def _new_york_date(text: pl.Expr) -> pl.Expr:
    """The New York date of a timestamp with an offset (yfinance's lastTradeDate); else its date part."""
    zoned = text.str.strip_chars().str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d):?(\d\d)$", "$1$2")
    instant = pl.coalesce(
        *[zoned.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")
          for fmt in ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z")]
    )
    return pl.coalesce(instant.dt.convert_time_zone(NY).dt.date(), _as_date(text))


def _iso(day: pl.Expr) -> pl.Expr:
    return day.dt.strftime("%Y-%m-%d")


def _option_type(text: pl.Expr) -> pl.Expr:
    upper = text.str.strip_chars().str.to_uppercase()
    return pl.when(upper.is_in(["CALL", "C"])).then(pl.lit("C")).when(upper.is_in(["PUT", "P"])).then(
        pl.lit("P")).otherwise(upper)


def _ticker(text: pl.Expr) -> pl.Expr:
    """A vendor's underlying symbol: upper case, without the index caret (^SPX -> SPX)."""
    return text.str.strip_chars().str.to_uppercase().str.strip_prefix("^")


def underlying_from_root(root: pl.Expr) -> pl.Expr:
    """The underlying a root most likely belongs to: SPXW -> SPX, IWM1 -> IWM, IWM -> IWM."""
    plain = root.str.replace(r"[0-9]+$", "")
    return plain.replace(WEEKLY_ROOTS)


def _canonical(columns: dict[str, pl.Expr]) -> list[pl.Expr]:
    return [columns.get(c, pl.lit(None, dtype=pl.String)).cast(pl.String).alias(c) for c in CHAIN_COLUMNS]


# ------------------------------------------------------------------------------------------ CBOE DataShop
def is_cboe_eod(columns: set[str]) -> bool:
    return CBOE_COLUMNS <= columns and (CBOE_1545_QUOTE <= columns or CBOE_EOD_QUOTE <= columns)


def conform_cboe_eod(lf: pl.LazyFrame) -> pl.LazyFrame:
    """CBOE DataShop Option EOD Summary (with or without the 15:45 calcs) -> canonical chain text.

    Quotes, IV and greeks are the 15:45 snapshot (the one CBOE computes the greeks at); a row without a
    15:45 bid/ask pair takes the end-of-day pair. Spot is active_underlying_price_1545, else the mid of
    the 15:45 underlying quote.
    """
    c = _Columns(lf)
    has_1545 = c.value("bid_1545").is_not_null() & c.value("ask_1545").is_not_null()
    underlying_mid = (_number(c.value("underlying_bid_1545")) + _number(c.value("underlying_ask_1545"))) * 0.5
    iv_computed = _number(c.value("implied_volatility_1545")) != 0
    close = c.value("close")
    osi = format_osi(c.value("root").str.to_uppercase(), _as_date(c.value("expiration")),
                     _option_type(c.value("option_type")), _number(c.value("strike")))
    return lf.select(_canonical({
        "quote_date": c.value("quote_date"),
        "underlying": _ticker(c.value("underlying_symbol")),
        "expiration": c.value("expiration"),
        "strike": c.value("strike"),
        "option_type": c.value("option_type"),
        "open_interest": c.value("open_interest"),
        "volume": c.value("trade_volume"),
        "bid": pl.when(has_1545).then(c.value("bid_1545")).otherwise(c.value("bid_eod")),
        "ask": pl.when(has_1545).then(c.value("ask_1545")).otherwise(c.value("ask_eod")),
        "last": pl.when(_number(close) != 0).then(close).when(_number(close).is_null()).then(close),
        "implied_volatility": pl.when(iv_computed | iv_computed.is_null()).then(c.value("implied_volatility_1545")),
        "delta": pl.when(iv_computed | iv_computed.is_null()).then(c.value("delta_1545")),
        "gamma": pl.when(iv_computed | iv_computed.is_null()).then(c.value("gamma_1545")),
        "underlying_price": pl.coalesce(c.value("active_underlying_price_1545"),
                                        pl.when(underlying_mid > 0).then(underlying_mid.cast(pl.String))),
        # Built from the root, not the underlying: SPXW and SPX series are different contracts.
        "option_symbol": osi,
    }))


# ------------------------------------------------------------------------------------------ yfinance
def is_yfinance_chain(columns: set[str]) -> bool:
    return YFINANCE_COLUMNS <= columns and bool({"lasttradedate", "quote_date"} & columns)


def _zero_when_missing(text: pl.Expr) -> pl.Expr:
    return pl.coalesce(text, pl.lit("0"))


def conform_yfinance(lf: pl.LazyFrame) -> pl.LazyFrame:
    """A saved yfinance option_chain() frame (calls, puts or both) -> canonical chain text.

    The quote date is a ``quote_date`` column when present, else the latest New York date of
    ``lastTradeDate`` in the file (so one file is one snapshot). Underlying, expiration and type come
    from contractSymbol; the strike from ``strike``. underlying_price is taken from an
    ``underlying_price`` column when present, else left empty (filled from the bars downstream).
    """
    c = _Columns(lf)
    contract = parse_osi(c.value("contractsymbol"))
    latest_trade = _new_york_date(c.value("lasttradedate")).max()
    root = contract.struct.field("root")
    return lf.select(_canonical({
        "quote_date": pl.coalesce(c.value("quote_date"), _iso(latest_trade)),
        "underlying": pl.coalesce(_ticker(c.value("underlying")), underlying_from_root(root)),
        "expiration": _iso(contract.struct.field("expiration")),
        "strike": pl.coalesce(c.value("strike"), contract.struct.field("strike").cast(pl.String)),
        "option_type": contract.struct.field("option_type"),
        "open_interest": _zero_when_missing(c.value("openinterest")),
        "volume": _zero_when_missing(c.value("volume")),
        "bid": c.value("bid"),
        "ask": c.value("ask"),
        "last": c.value("lastprice"),
        "implied_volatility": c.value("impliedvolatility"),
        "delta": c.value("delta"),
        "gamma": c.value("gamma"),
        "underlying_price": c.value("underlying_price"),
        "option_symbol": c.value("contractsymbol"),
    }))


CBOE_EOD = Adapter("cboe-chains", "chains", is_cboe_eod, conform_cboe_eod)
YFINANCE = Adapter("yfinance-chains", "chains", is_yfinance_chain, conform_yfinance)
VENDOR_ADAPTERS: list[Adapter] = [CBOE_EOD, YFINANCE]

__all__ = ["CBOE_EOD", "VENDOR_ADAPTERS", "YFINANCE", "conform_cboe_eod", "conform_yfinance",
           "is_cboe_eod", "is_yfinance_chain", "underlying_from_root"]

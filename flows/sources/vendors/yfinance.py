"""yfinance ``option_chain()`` frames saved as CSV (calls, puts or both).

The quote date is a ``quote_date`` column when present, else the latest New York date of
``lastTradeDate`` in the file (so one file is one snapshot). Underlying, expiration and type come from
``contractSymbol``; the strike from ``strike``. The underlying is an ``underlying`` column when the file
has one (the live source writes it), else the symbol's root with trailing digits dropped and the index
weekly roots mapped (SPXW -> SPX, IWM1 -> IWM). Yahoo omits volume and open interest when they are zero
(pandas saves them empty or NaN): those are 0. ``underlying_price`` is taken when present, else left to
the bars.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows.sources.vendors.format import NY, Columns, VendorFormat, as_date, iso, ticker
from transforms.osi import parse_osi

# Index options whose weekly (PM-settled) series trade under their own root.
WEEKLY_ROOTS = {"SPXW": "SPX", "NDXP": "NDX", "RUTW": "RUT", "VIXW": "VIX", "XSPW": "XSP"}


def underlying_from_root(root: pl.Expr) -> pl.Expr:
    """The underlying a root most likely belongs to: SPXW -> SPX, IWM1 -> IWM, IWM -> IWM."""
    plain = root.str.replace(r"[0-9]+$", "")
    return plain.replace(WEEKLY_ROOTS)


def _new_york_date(text: pl.Expr) -> pl.Expr:
    """The New York date of a timestamp with an offset (lastTradeDate); else its date part."""
    zoned = text.str.strip_chars().str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d):?(\d\d)$", "$1$2")
    instant = pl.coalesce(
        *[
            zoned.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")
            for fmt in ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z")
        ]
    )
    return pl.coalesce(instant.dt.convert_time_zone(NY).dt.date(), as_date(text))


def _contract(c: Columns) -> pl.Expr:
    return parse_osi(c.value("contractsymbol"))


def _quote_date(c: Columns, path: Path | None) -> pl.Expr:
    return pl.coalesce(c.value("quote_date"), iso(_new_york_date(c.value("lasttradedate")).max()))


def _underlying(c: Columns, path: Path | None) -> pl.Expr:
    return pl.coalesce(ticker(c.value("underlying")), underlying_from_root(_contract(c).struct.field("root")))


def _expiration(c: Columns, path: Path | None) -> pl.Expr:
    return iso(_contract(c).struct.field("expiration"))


def _strike(c: Columns, path: Path | None) -> pl.Expr:
    return pl.coalesce(c.value("strike"), _contract(c).struct.field("strike").cast(pl.String))


def _option_type(c: Columns, path: Path | None) -> pl.Expr:
    return _contract(c).struct.field("option_type")


YFINANCE = VendorFormat(
    name="yfinance-chains",
    dataset="chains",
    header=frozenset({"contractsymbol", "strike", "bid", "ask", "volume", "openinterest"}),
    header_any=(frozenset({"lasttradedate"}), frozenset({"quote_date"})),
    columns={
        "quote_date": _quote_date,
        "underlying": _underlying,
        "expiration": _expiration,
        "strike": _strike,
        "option_type": _option_type,
        "open_interest": "openinterest",
        "volume": "volume",
        "bid": "bid",
        "ask": "ask",
        "last": "lastprice",
        "implied_volatility": "impliedvolatility",
        "delta": "delta",
        "gamma": "gamma",
        "underlying_price": "underlying_price",
        "option_symbol": "contractsymbol",
    },
    when_missing={"open_interest": "0", "volume": "0"},
)

"""CBOE DataShop "Option EOD Summary" CSV (with or without the 15:45 calcs).

Quotes, IV and greeks are the 15:45 snapshot (the one CBOE computes the greeks at); a row without a
15:45 bid/ask pair takes the end-of-day pair. Spot is active_underlying_price_1545, else the mid of the
15:45 underlying quote. CBOE writes 0 for the close of a contract that did not trade and 0 for an IV it
could not compute; its greeks are then 0 too, so IV, delta and gamma are all left empty (derived
downstream). The file names the underlying (``underlying_symbol``, ``^SPX`` for indexes); the OSI symbol
is built from ``root``: SPXW and SPX series are different contracts.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows.sources.vendors.format import Columns, VendorFormat, as_date, number
from transforms.osi import format_osi


def _spot(c: Columns, path: Path | None) -> pl.Expr:
    mid = (number(c.value("underlying_bid_1545")) + number(c.value("underlying_ask_1545"))) * 0.5
    return pl.coalesce(c.value("active_underlying_price_1545"), pl.when(mid > 0).then(mid.cast(pl.String)))


def _symbol(c: Columns, path: Path | None) -> pl.Expr:
    option_type = c.value("option_type").str.to_uppercase().replace({"CALL": "C", "PUT": "P"})
    return format_osi(
        c.value("root").str.to_uppercase(),
        as_date(c.value("expiration")),
        option_type,
        number(c.value("strike")),
    )


CBOE_DATASHOP = VendorFormat(
    name="cboe-chains",
    dataset="chains",
    header=frozenset(
        {
            "underlying_symbol",
            "quote_date",
            "root",
            "expiration",
            "strike",
            "option_type",
            "open_interest",
            "trade_volume",
        }
    ),
    header_any=(frozenset({"bid_1545", "ask_1545"}), frozenset({"bid_eod", "ask_eod"})),
    columns={
        "quote_date": "quote_date",
        "underlying": "underlying_symbol",
        "expiration": "expiration",
        "strike": "strike",
        "option_type": "option_type",
        "open_interest": "open_interest",
        "volume": "trade_volume",
        "bid": ("bid_1545", "bid_eod"),
        "ask": ("ask_1545", "ask_eod"),
        "last": "close",
        "implied_volatility": "implied_volatility_1545",
        "delta": "delta_1545",
        "gamma": "gamma_1545",
        "underlying_price": _spot,
        "option_symbol": _symbol,
    },
    together=(("bid", "ask"),),
    tickers=("underlying",),
    zero_means_none=("last",),
    not_computed={"implied_volatility": ("delta", "gamma")},
)

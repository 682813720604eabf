"""CBOE delayed quotes: the ``quotedata`` table of cboe.com/delayedquote, as many scrapers save it.

One row per contract: ``underlying, underlying_last, exchange, optionroot, type, expiration, quotedate,
strike, last, net, bid, ask, volume, openinterest, impliedvol, delta, gamma``. Dates are MM/DD/YYYY,
``type`` is call|put, ``optionroot`` a compact OSI symbol (SPXW190531P02600000) and ``underlying_last``
the intraday spot the quotes were taken with. A ``last`` of 0 means no trade. An ``impliedvol`` of 0 is
CBOE's "not computed", but those rows still carry CBOE's delta and gamma (computed on its own model):
the IV is left empty (derived downstream) and the greeks are kept.
"""

from __future__ import annotations

from flows.sources.vendors.format import VendorFormat

CBOE_DELAYED = VendorFormat(
    name="cboe-delayed-chains",
    dataset="chains",
    header=frozenset(
        {
            "underlying",
            "underlying_last",
            "optionroot",
            "type",
            "expiration",
            "quotedate",
            "strike",
            "bid",
            "ask",
            "volume",
            "openinterest",
        }
    ),
    columns={
        "quote_date": "quotedate",
        "underlying": "underlying",
        "expiration": "expiration",
        "strike": "strike",
        "option_type": "type",
        "open_interest": "openinterest",
        "volume": "volume",
        "bid": "bid",
        "ask": "ask",
        "last": "last",
        "implied_volatility": "impliedvol",
        "delta": "delta",
        "gamma": "gamma",
        "underlying_price": "underlying_last",
        "option_symbol": "optionroot",
    },
    dates=("quote_date", "expiration"),
    date_formats=("%m/%d/%Y",),
    values={"option_type": {"call": "C", "put": "P"}},
    tickers=("underlying",),
    osi=("option_symbol",),
    zero_means_none=("last",),
    not_computed={"implied_volatility": ()},
)

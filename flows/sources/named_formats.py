"""The first two vendor chain formats under the names other modules and tests import them by.

The declarations live in flows/sources/vendors/ (one module per vendor, read by one conformer); this module
only names them: CBOE DataShop "Option EOD Summary" (CBOE_EOD) and saved yfinance option_chain() frames
(YFINANCE). flows.sources.files.ADAPTERS lists every vendor format.
"""

from __future__ import annotations

import polars as pl

from flows.sources.files import FIELDS
from flows.sources.vendors.cboe_datashop import CBOE_DATASHOP as CBOE_EOD
from flows.sources.vendors.yfinance import WEEKLY_ROOTS, YFINANCE, underlying_from_root

CHAIN_COLUMNS = list(FIELDS["chains"])  # canonical landing names, in FIELDS order
VENDOR_ADAPTERS = [CBOE_EOD, YFINANCE]


def conform_yfinance(lf: pl.LazyFrame) -> pl.LazyFrame:
    """A saved or fetched yfinance frame -> every canonical chain column as text, in FIELDS order."""
    conformed = YFINANCE.conform(lf)
    given = set(conformed.collect_schema().names())
    return conformed.select(
        [pl.col(c) if c in given else pl.lit(None, dtype=pl.String).alias(c) for c in CHAIN_COLUMNS]
    )


__all__ = [
    "CBOE_EOD",
    "CHAIN_COLUMNS",
    "VENDOR_ADAPTERS",
    "WEEKLY_ROOTS",
    "YFINANCE",
    "conform_yfinance",
    "underlying_from_root",
]

"""Yahoo Finance daily download for bars: ``Date,Open,High,Low,Close,Adj Close,Volume``.

The file has no symbol column: the symbol is the file name's part before the first ``_`` or ``.``,
upper-cased, a leading ``^`` dropped (``SPX.csv``, ``SPX_daily.csv``, ``^SPX.csv`` are SPX). A file with
a ``symbol`` column is a canonical bars file, not this one.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows.sources.vendors.format import Columns, VendorFormat, file_symbol


def _symbol(c: Columns, path: Path | None) -> pl.Expr:
    return pl.lit(file_symbol(path), dtype=pl.String)


YAHOO_DAILY = VendorFormat(
    name="yahoo-bars",
    dataset="bars",
    header=frozenset({"date", "open", "high", "low", "close", "volume"}),
    header_none=frozenset({"symbol"}),
    columns={
        "date": "date",
        "symbol": _symbol,
        "open": "open",
        "high": "high",
        "low": "low",
        "close": "close",
        "volume": "volume",
        "adj_close": "adj close",
    },
    dates=("date",),
)

"""Live option chains from Yahoo Finance through ``yfinance`` (the optional ``yfinance`` extra).

``fetch_chain`` asks ``yfinance.Ticker(symbol)`` for its expirations (``.options``) and each
expiration's ``.option_chain(exp)`` (calls and puts as pandas frames, plus an ``underlying`` quote dict),
and returns canonical chains landing rows (all text, flows.sources.files.FIELDS['chains'] columns). pandas
appears only here, at the boundary: each frame goes straight to polars and then through the same
yfinance adapter that reads saved option_chain() CSVs, so live and saved data conform identically.
``land_chains`` writes those rows as ordinary landing files.

yfinance is imported lazily; without the extra a clear MissingExtraError says how to install it.
Tests pass a recorded fake ``client`` (anything with ``Ticker(symbol)``), so they need no network.
"""

from __future__ import annotations

import importlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from flows.errors import ChainsignalsError
from flows.sources.named_formats import CHAIN_COLUMNS, conform_yfinance

NY = ZoneInfo("America/New_York")
INSTALL_HINT = (
    "install the optional extra: `uv sync --extra yfinance` (or `pip install 'chainsignals[yfinance]'`)"
)


class MissingExtraError(ChainsignalsError, ImportError):
    """An optional extra the requested source needs is not installed."""


def load_yfinance() -> Any:
    try:
        return importlib.import_module("yfinance")
    except ImportError as exc:
        raise MissingExtraError(f"the yfinance source needs the yfinance package: {INSTALL_HINT}") from exc


def _text_frame(frame: Any) -> pl.DataFrame:
    """One pandas option_chain() frame -> polars, every column text, header lower-cased (as the reader does)."""
    polars_frame = pl.from_pandas(frame, include_index=False)
    return polars_frame.select(pl.all().cast(pl.String)).rename(lambda c: c.strip().lower())


def _quote_date(underlying: dict | None) -> str | None:
    """The session the quote belongs to: the New York date of regularMarketTime (epoch seconds)."""
    stamp = (underlying or {}).get("regularMarketTime")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return None
    return datetime.fromtimestamp(stamp, UTC).astimezone(NY).date().isoformat()


def _spot(underlying: dict | None) -> str | None:
    price = (underlying or {}).get("regularMarketPrice")
    return (
        repr(float(price))
        if isinstance(price, int | float) and not isinstance(price, bool) and price > 0
        else None
    )


def fetch_chain(symbol: str, client: Any = None) -> pl.DataFrame:
    """Every listed expiration's calls and puts for ``symbol`` as canonical chains landing rows (text).

    ``client``: the yfinance module (default) or a stand-in with the same ``Ticker`` interface. The
    quote date and spot come from the chain's underlying quote (regularMarketTime, regularMarketPrice);
    without them the quote date is the latest lastTradeDate and the spot is left to the bars.
    """
    client = client if client is not None else load_yfinance()
    ticker = client.Ticker(symbol)
    underlying_symbol = symbol.strip().upper().removeprefix("^")
    parts: list[pl.DataFrame] = []
    quote: dict | None = None
    for expiration in ticker.options:  # one request per expiration: the API's shape, not a row loop
        chain = ticker.option_chain(expiration)
        quote = getattr(chain, "underlying", None) or quote
        parts += [_text_frame(side) for side in (chain.calls, chain.puts) if side is not None and len(side)]
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in CHAIN_COLUMNS})
    frame = pl.concat(parts, how="diagonal").with_columns(
        pl.lit(underlying_symbol).alias("underlying"),
        pl.lit(_spot(quote), dtype=pl.String).alias("underlying_price"),
        pl.lit(_quote_date(quote), dtype=pl.String).alias("quote_date"),
    )
    return conform_yfinance(frame.lazy()).collect()


def land_chains(symbols: list[str], landing: Path, client: Any = None) -> list[Path]:
    """Fetch each symbol's chain and write it to ``landing/chains/yfinance_<SYMBOL>_<date>.csv``.

    Written to a temporary name and renamed, so the ingest never sees a half-written file.
    """
    client = client if client is not None else load_yfinance()
    folder = landing / "chains"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for symbol in symbols:  # one request batch per symbol
        rows = fetch_chain(symbol, client)
        if rows.is_empty():
            continue
        day = rows.get_column("quote_date").drop_nulls().max()
        name = f"yfinance_{symbol.strip().upper().removeprefix('^')}_{day}.csv"
        path, temporary = folder / name, folder / f".{name}.tmp"
        rows.write_csv(temporary)
        os.replace(temporary, path)
        written.append(path)
    return written


__all__ = ["MissingExtraError", "fetch_chain", "land_chains", "load_yfinance"]

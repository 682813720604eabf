"""Bronze -> silver derivations (pure): canonical OSI symbols, mid, DTE, spot from the bars.

Validation (what is rejected and why) lives in schemas/; this module only derives fields and the
row-level facts validation needs (e.g. whether a given option symbol agrees with the row's contract).
"""

from __future__ import annotations

import polars as pl

from transforms.osi import all_rows, format_osi, is_canonical_osi, normalize_osi

BARS_COLUMNS = ["trade_date", "symbol", "open", "high", "low", "close", "volume", "adj_close"]
CHAIN_COLUMNS = [
    "trade_date",
    "underlying",
    "option_symbol",
    "expiration",
    "strike",
    "option_type",
    "open_interest",
    "volume",
    "bid",
    "ask",
    "last",
    "mid",
    "implied_volatility",
    "delta",
    "gamma",
    "underlying_price",
    "dte",
    "spot_derived",
    "iv_derived",
    "greeks_derived",
    "forward",
    "forward_source",
    "iv_status",
    "strike_call_oi",
    "strike_put_oi",
]
LINEAGE_COLUMNS = ["_source_file", "_source_row", "_ingested_at", "_parse_errors"]


def silver_bars(bronze: pl.LazyFrame) -> pl.LazyFrame:
    return bronze.select(*BARS_COLUMNS, *LINEAGE_COLUMNS)


def silver_chains(bronze: pl.LazyFrame, closes: pl.LazyFrame) -> pl.LazyFrame:
    """Chain rows with derived fields.

    closes: (trade_date, symbol, close) from silver bars; it fills a missing underlying_price
    (flagged in spot_derived). A vendor option_symbol is normalised to the 21-char OSI form; one that
    does not parse keeps its raw text so validation quarantines it with what came in. An IV of 0,
    negative or non-finite is a vendor's "not computed" in every format, canonical files included: it
    is missing (NULL), derived like any other; the row's greeks stay as given (a format whose greeks
    mean nothing without its IV declares so, see flows/sources/vendors/).
    """
    given = normalize_osi(pl.col("option_symbol"))
    own = format_osi(pl.col("underlying"), pl.col("expiration"), pl.col("option_type"), pl.col("strike"))
    spot = closes.select(
        "trade_date", pl.col("symbol").alias("underlying"), pl.col("close").alias("_bars_close")
    )
    # Symbols already in the 21-char form stay as they are (normalising would return them unchanged);
    # only the others pay for the regex. A symbol that does not parse keeps its raw text, so the
    # quarantine shows what came in.
    canonical = is_canonical_osi(pl.col("option_symbol"))
    symbols = (
        bronze
        if all_rows(bronze, canonical)
        else pl.concat(
            [
                bronze.filter(canonical),
                bronze.filter(~canonical).with_columns(
                    pl.coalesce(given, pl.col("option_symbol"), own).alias("option_symbol")
                ),
            ]
        )
    )
    # The vendor's row order is kept: silver sorts a chain listed underlying by underlying with a stable
    # sort by the underlying alone, and an unordered join would split those runs into a full sort.
    return (
        symbols.join(spot, on=["trade_date", "underlying"], how="left", maintain_order="left")
        .with_columns(
            ((pl.col("bid") + pl.col("ask")) / 2.0).alias("mid"),
            (pl.col("expiration") - pl.col("trade_date")).dt.total_days().cast(pl.Int64).alias("dte"),
            (pl.col("underlying_price").is_null() & pl.col("_bars_close").is_not_null()).alias(
                "spot_derived"
            ),
            pl.coalesce("underlying_price", "_bars_close").alias("underlying_price"),
            computed_iv().alias("implied_volatility"),
            pl.lit(False).alias("iv_derived"),
            pl.lit(False).alias("greeks_derived"),
            pl.lit(None, dtype=pl.Float64).alias("forward"),
            pl.lit(None, dtype=pl.String).alias("forward_source"),
            pl.lit(None, dtype=pl.String).alias("iv_status"),
            # The strike's open interest over the session's chain, once it is de-duplicated.
            pl.lit(None, dtype=pl.Int64).alias("strike_call_oi"),
            pl.lit(None, dtype=pl.Int64).alias("strike_put_oi"),
        )
        .select(*CHAIN_COLUMNS, *LINEAGE_COLUMNS)
    )


def computed_iv() -> pl.Expr:
    """implied_volatility where the vendor computed one: an IV of 0, negative or non-finite is a vendor's
    "not computed" (SPEC 3), so it is missing (NULL), in every format."""
    iv = pl.col("implied_volatility")
    return pl.when(iv.is_finite() & (iv > 0)).then(iv.cast(pl.Float64))


def dedupe_order() -> list[str]:
    """Among rows with the same key the one from the last file (by name), last row in it, wins."""
    return ["_source_file", "_source_row"]

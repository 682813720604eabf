"""Text built from numbers, as polars expressions (the one-sentence cases, summaries, rationales)."""

from __future__ import annotations

import polars as pl


def fmt_fixed(value: pl.Expr, decimals: int = 2) -> pl.Expr:
    """A number printed with a fixed number of decimals ('249.80', '-0.64'); NULL stays NULL.

    polars has no printf, so the value is scaled to an integer and the fraction zero-padded. Halves
    round away from zero as in printed tables (0.005 -> '0.01'); polars' default is half-to-even.
    """
    scale = 10**decimals
    # NaN/inf have no fixed-point text: they print as NULL rather than failing the whole table.
    scaled = (value * scale).round(0, mode="half_away_from_zero").cast(pl.Int64, strict=False)
    whole = (scaled.abs() // scale).cast(pl.String)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if decimals == 0:
        return pl.concat_str([sign, whole])
    fraction = (scaled.abs() % scale).cast(pl.String).str.zfill(decimals)
    return pl.concat_str([sign, whole, pl.lit("."), fraction])


def fmt_signed(value: pl.Expr, decimals: int = 2) -> pl.Expr:
    """Like fmt_fixed with an explicit '+' for positive values ('+0.42', '-0.64')."""
    text = fmt_fixed(value, decimals)
    return pl.when(value > 0).then(pl.lit("+") + text).otherwise(text)


def fmt_value(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column as text for a template: floats with 2 decimals, integers plain, dates ISO."""
    col = pl.col(column)
    if dtype.is_float():
        return fmt_fixed(col, 2)
    return col.cast(pl.String)

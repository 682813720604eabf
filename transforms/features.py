"""The joined feature row: one row per symbol and session, the input of signals and rules."""

from __future__ import annotations

import polars as pl

# Columns every rule and the bias score may reference, with their types. Technicals are always
# present; positioning columns are NULL for symbols or sessions without a chain (bars-only).
TECHNICAL_FEATURES: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "symbol": pl.String(),
    **{c: pl.Float64() for c in ("open", "high", "low", "close")},
    "volume": pl.Int64(),
    **{
        c: pl.Float64()
        for c in (
            "prev_close", "change_pct", "sma_20", "sma_30", "sma_50", "sma_200", "ema_20",
            "bb_upper", "bb_middle", "bb_lower", "atr_14", "rsi_14", "rv_20", "high_52w", "low_52w",
            "beta_252", "volume_ratio_20", "pivot_point", "r1", "s1", "r2", "s2", "r3", "s3",
        )
    },
}
POSITIONING_FEATURES: dict[str, pl.DataType] = {
    "spot": pl.Float64(),
    "contracts": pl.Int64(),
    "call_oi": pl.Int64(),
    "put_oi": pl.Int64(),
    "call_volume": pl.Int64(),
    "put_volume": pl.Int64(),
    "pcr_oi": pl.Float64(),
    "pcr_volume": pl.Float64(),
    "call_wall": pl.Float64(),
    "call_wall_oi": pl.Int64(),
    "put_wall": pl.Float64(),
    "put_wall_oi": pl.Int64(),
    "next_call_wall": pl.Float64(),
    "next_call_wall_oi": pl.Int64(),
    "next_put_wall": pl.Float64(),
    "next_put_wall_oi": pl.Int64(),
    "max_pain": pl.Float64(),
    "max_pain_expiration": pl.Date(),
    "call_oi_change": pl.Int64(),
    "put_oi_change": pl.Int64(),
}
FEATURE_SCHEMA: dict[str, pl.DataType] = {**TECHNICAL_FEATURES, **POSITIONING_FEATURES}


def join_features(technicals: pl.LazyFrame, positioning: pl.LazyFrame) -> pl.LazyFrame:
    """Technicals left-joined with positioning on (trade_date, symbol = underlying).

    Left join: a bars-only symbol still gets a row (and a bias from its technicals).
    """
    positioning_cols = [c for c in POSITIONING_FEATURES if c in positioning.collect_schema().names()]
    return technicals.join(
        positioning.select("trade_date", pl.col("underlying").alias("symbol"), *positioning_cols),
        on=["trade_date", "symbol"],
        how="left",
    ).with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in POSITIONING_FEATURES.items() if c not in positioning_cols]
    )

"""The joined feature row: one row per symbol and session, the input of signals and rules."""

from __future__ import annotations

import polars as pl

from transforms.order_flow import FLOW_DAILY_SCHEMA
from transforms.positioning import POSITIONING_SCHEMA

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
            "prev_close",
            "change_pct",
            "sma_20",
            "sma_30",
            "sma_50",
            "sma_200",
            "ema_20",
            "bb_upper",
            "bb_middle",
            "bb_lower",
            "atr_14",
            "rsi_14",
            "rv_20",
            "high_52w",
            "low_52w",
            "beta_252",
            "volume_ratio_20",
            "pivot_point",
            "r1",
            "s1",
            "r2",
            "s2",
            "r3",
            "s3",
        )
    },
}
_KEYS = ("trade_date", "symbol", "underlying")
POSITIONING_FEATURES: dict[str, pl.DataType] = {
    **{c: t for c, t in POSITIONING_SCHEMA.items() if c not in _KEYS},
    # from transforms.greeks.session_greeks and iv_rank_percentile
    **{
        c: pl.Float64()
        for c in (
            "net_gex",
            "net_dex",
            "call_gex_wall",
            "put_gex_wall",
            "gamma_flip",
            "atm_iv_30",
            "rr_25d",
            "iv_rank_252",
            "iv_percentile_252",
        )
    },
}
# Block-flow columns (flow_daily): NULL without prints.
FLOW_FEATURES: dict[str, pl.DataType] = {c: t for c, t in FLOW_DAILY_SCHEMA.items() if c not in _KEYS}
FEATURE_SCHEMA: dict[str, pl.DataType] = {**TECHNICAL_FEATURES, **POSITIONING_FEATURES, **FLOW_FEATURES}
# The day's signals (signals_daily) a rule may also read: the bias, its score and components, and the levels
# behind the scenarios. Not part of FEATURE_SCHEMA: the signals are computed from the features.
SIGNAL_FEATURES: dict[str, pl.DataType] = {
    "bias": pl.String(),
    "bias_score": pl.Int64(),
    **{
        c: pl.Float64()
        for c in (
            "score_trend",
            "score_rsi",
            "score_percent_b",
            "score_pcr",
            "score_flow",
            "score_gamma",
            "percent_b",
            "pcr_oi_z",
            "support",
            "resistance",
            "breakout_level",
            "breakdown_level",
        )
    },
}
RULE_ROW_SCHEMA: dict[str, pl.DataType] = {**FEATURE_SCHEMA, **SIGNAL_FEATURES}


def _by_symbol(frame: pl.LazyFrame, columns: dict[str, pl.DataType]) -> tuple[pl.LazyFrame, list[str]]:
    present = [c for c in columns if c in frame.collect_schema().names()]
    return frame.select("trade_date", "symbol", *present), present


def join_features(
    technicals: pl.LazyFrame, positioning: pl.LazyFrame, flow: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Technicals left-joined with gold positioning and block flow on (trade_date, symbol).

    Left joins: a bars-only symbol still gets a row (and a bias from its technicals). Columns a
    source does not have are NULL, so every rule sees the whole FEATURE_SCHEMA.
    """
    joined, present = technicals, set(TECHNICAL_FEATURES)
    for source, columns in ((positioning, POSITIONING_FEATURES), (flow, FLOW_FEATURES)):
        if source is None:
            continue
        side, cols = _by_symbol(source, columns)
        joined = joined.join(side, on=["trade_date", "symbol"], how="left")
        present.update(cols)
    return joined.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in FEATURE_SCHEMA.items() if c not in present]
    )


def with_signals(features: pl.LazyFrame, signals: pl.LazyFrame) -> pl.LazyFrame:
    """The rule row: the features with the same session's signals (SIGNAL_FEATURES) left-joined."""
    return features.join(
        signals.select("trade_date", "symbol", *[pl.col(c).cast(t) for c, t in SIGNAL_FEATURES.items()]),
        on=["trade_date", "symbol"],
        how="left",
    )

"""The daily bias: a documented sum of components, each kept as a column, plus levels and scenarios.

bias_score = score_trend + score_rsi + score_percent_b + score_pcr + score_flow + score_gamma, rounded
and clipped to [-100, 100]. With the default weights:
  score_trend      +-10 close vs SMA 30, +-10 vs SMA 50, +-15 vs SMA 200 (0 while an average is NULL)
  score_rsi        momentum: (RSI 14 - 50) / 20, clipped to +-1, times 15 (RSI 70 = +15, 30 = -15)
  score_percent_b  position in the Bollinger band: (%B - 0.5) * 2, clipped to +-1, times 10
  score_pcr        put/call OI against its own prior sessions (z-score over up to 60, at least 20):
                   -z / 2 clipped to +-1, times 15 (puts piling up relative to normal is bearish)
  score_flow       block-flow direction: (buy - sell notional) / (buy + sell notional) times 10
  score_gamma      spot above the gamma flip +10 (dealers long gamma damp moves), below -10
A component whose inputs are missing (no chain, no prints, short history) scores 0.
"""

from __future__ import annotations

import polars as pl

from transforms.text import fmt_fixed, fmt_signed

DEFAULT_WEIGHTS = {
    "trend_sma_30": 10.0,
    "trend_sma_50": 10.0,
    "trend_sma_200": 15.0,
    "rsi": 15.0,
    "percent_b": 10.0,
    "pcr": 15.0,
    "flow": 10.0,
    "gamma": 10.0,
}
SCORE_COLUMNS = ["score_trend", "score_rsi", "score_percent_b", "score_pcr", "score_flow", "score_gamma"]
SIGNAL_COLUMNS = [
    "trade_date",
    "symbol",
    "close",
    "change_pct",
    "bias_score",
    "bias",
    *SCORE_COLUMNS,
    "percent_b",
    "pcr_oi",
    "pcr_oi_z",
    "support",
    "resistance",
    "breakout_level",
    "breakdown_level",
    "bull_case",
    "bear_case",
    "summary",
]


def pcr_zscore(positioning_history: pl.LazyFrame, sessions: int = 60, min_sessions: int = 20) -> pl.LazyFrame:
    """z-score of each session's pcr_oi against the prior `sessions` sessions of that underlying.

    The window excludes the session itself (today is compared with its history, not with itself).
    """
    prior = pl.col("pcr_oi").shift(1)
    mean = prior.rolling_mean(sessions, min_samples=min_sessions)
    std = prior.rolling_std(sessions, min_samples=min_sessions, ddof=1)
    return (
        positioning_history.select("trade_date", "underlying", "pcr_oi")
        .sort("underlying", "trade_date")
        .with_columns(
            pl.when(std.over("underlying") > 0)
            .then((pl.col("pcr_oi") - mean.over("underlying")) / std.over("underlying"))
            .alias("pcr_oi_z")
        )
        .select("trade_date", pl.col("underlying").alias("symbol"), "pcr_oi_z")
    )


def _sign_points(above: pl.Expr, level: pl.Expr, weight: float) -> pl.Expr:
    return (
        pl.when(level.is_null())
        .then(0.0)
        .when(above > level)
        .then(weight)
        .when(above < level)
        .then(-weight)
        .otherwise(0.0)
    )


def _clipped(value: pl.Expr, weight: float) -> pl.Expr:
    return value.clip(-1.0, 1.0).fill_null(0.0).fill_nan(0.0) * weight


def score_components(weights: dict[str, float] | None = None) -> list[pl.Expr]:
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    close = pl.col("close")
    percent_b = (close - pl.col("bb_lower")) / (pl.col("bb_upper") - pl.col("bb_lower"))
    flow_total = pl.col("block_buy_notional") + pl.col("block_sell_notional")
    return [
        percent_b.alias("percent_b"),
        (
            _sign_points(close, pl.col("sma_30"), w["trend_sma_30"])
            + _sign_points(close, pl.col("sma_50"), w["trend_sma_50"])
            + _sign_points(close, pl.col("sma_200"), w["trend_sma_200"])
        ).alias("score_trend"),
        _clipped((pl.col("rsi_14") - 50.0) * (1.0 / 20.0), w["rsi"]).alias("score_rsi"),
        _clipped((percent_b - 0.5) * 2.0, w["percent_b"]).alias("score_percent_b"),
        _clipped(-pl.col("pcr_oi_z") * 0.5, w["pcr"]).alias("score_pcr"),
        _clipped(
            pl.when(flow_total > 0).then(
                (pl.col("block_buy_notional") - pl.col("block_sell_notional")) / flow_total
            ),
            w["flow"],
        ).alias("score_flow"),
        _sign_points(close, pl.col("gamma_flip"), w["gamma"]).alias("score_gamma"),
    ]


def _nearest(candidates: list[pl.Expr], below: bool) -> pl.Expr:
    close = pl.col("close")
    kept = [pl.when(c < close if below else c > close).then(c) for c in candidates]
    return pl.max_horizontal(kept) if below else pl.min_horizontal(kept)


def _money(expr: pl.Expr) -> pl.Expr:
    return fmt_fixed(expr, 2)


def signals_daily(
    features: pl.LazyFrame,
    pcr_z: pl.LazyFrame,
    *,
    weights: dict[str, float] | None = None,
    bullish_at: float = 20.0,
    bearish_at: float = -20.0,
) -> pl.LazyFrame:
    """One row per symbol and session: bias, its components, levels and one-sentence scenarios."""
    optional = {"block_buy_notional": pl.Float64, "block_sell_notional": pl.Float64, "gamma_flip": pl.Float64}
    names = features.collect_schema().names()
    frame = features.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in optional.items() if c not in names]
    ).join(pcr_z, on=["trade_date", "symbol"], how="left")

    close = pl.col("close")
    support = _nearest(
        [pl.col("s1"), pl.col("sma_30"), pl.col("sma_50"), pl.col("bb_lower"), pl.col("put_wall")], below=True
    )
    resistance = _nearest(
        [pl.col("r1"), pl.col("sma_30"), pl.col("sma_50"), pl.col("bb_upper"), pl.col("call_wall")],
        below=False,
    )
    frame = (
        frame.with_columns(score_components(weights))
        .with_columns(
            pl.sum_horizontal(SCORE_COLUMNS).round(0).clip(-100, 100).cast(pl.Int64).alias("bias_score"),
            support.alias("support"),
            resistance.alias("resistance"),
            pl.when(close < pl.col("bb_middle"))
            .then(pl.col("bb_middle"))
            .otherwise(pl.col("r1"))
            .alias("breakout_level"),
            pl.when(close > pl.col("bb_middle"))
            .then(pl.col("bb_middle"))
            .otherwise(pl.col("s1"))
            .alias("breakdown_level"),
        )
        .with_columns(
            pl.when(pl.col("bias_score") >= bullish_at)
            .then(pl.lit("bullish"))
            .when(pl.col("bias_score") <= bearish_at)
            .then(pl.lit("bearish"))
            .otherwise(pl.lit("neutral"))
            .alias("bias"),
        )
    )
    upside = pl.coalesce(
        pl.when(pl.col("call_wall") > pl.col("breakout_level")).then(pl.col("call_wall")),
        pl.when(pl.col("bb_upper") > pl.col("breakout_level")).then(pl.col("bb_upper")),
        pl.col("r2"),
    )
    downside = pl.coalesce(
        pl.when(pl.col("put_wall") < pl.col("breakdown_level")).then(pl.col("put_wall")),
        pl.when(pl.col("bb_lower") < pl.col("breakdown_level")).then(pl.col("bb_lower")),
        pl.col("s2"),
    )
    frame = frame.with_columns(
        pl.concat_str(
            [
                pl.col("symbol"),
                pl.lit(": a move above "),
                _money(pl.col("breakout_level")),
                pl.lit(" opens "),
                _money(upside),
                pl.lit(" while support at "),
                _money(pl.col("support")).fill_null("n/a"),
                pl.lit(" holds."),
            ]
        ).alias("bull_case"),
        pl.concat_str(
            [
                pl.col("symbol"),
                pl.lit(": a break below "),
                _money(pl.col("breakdown_level")),
                pl.lit(" exposes "),
                _money(downside),
                pl.lit("; the 200-day MA at "),
                _money(pl.col("sma_200")).fill_null("n/a"),
                pl.lit(" is the deeper risk line."),
            ]
        ).alias("bear_case"),
        pl.concat_str(
            [
                pl.col("symbol"),
                pl.lit(" closed at "),
                _money(close),
                pl.lit(" ("),
                fmt_signed(pl.col("change_pct")).fill_null("n/a"),
                pl.lit("%), bias "),
                pl.col("bias"),
                pl.lit(" ("),
                fmt_signed(pl.col("bias_score").cast(pl.Float64), 0),
                pl.lit("): trend "),
                fmt_signed(pl.col("score_trend"), 0),
                pl.lit(", RSI "),
                fmt_signed(pl.col("score_rsi"), 0),
                pl.lit(", %B "),
                fmt_signed(pl.col("score_percent_b"), 0),
                pl.lit(", put/call "),
                fmt_signed(pl.col("score_pcr"), 0),
                pl.lit(", flow "),
                fmt_signed(pl.col("score_flow"), 0),
                pl.lit(", gamma "),
                fmt_signed(pl.col("score_gamma"), 0),
                pl.lit("."),
            ]
        ).alias("summary"),
    )
    return frame.select(SIGNAL_COLUMNS).sort("trade_date", "symbol")

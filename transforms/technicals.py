"""Daily technical indicators per symbol: the gold ``technicals_daily`` table (SPEC section 4).

Every indicator is written as an expression over ONE symbol's series in date order and then evaluated
with ``.over("symbol")`` on bars sorted by (symbol, trade_date), so a row only ever sees that symbol's
rows dated on or before it (plus the benchmark's, joined on trade_date): no lookahead by construction.

Moving averages, Bollinger bands, ATR and RSI reproduce TA-Lib exactly where TA-Lib has a value and are
NULL where TA-Lib returns NaN (too little history); they are never partial averages.
"""

from __future__ import annotations

import math

import polars as pl
import polars.selectors as cs

SMA_WINDOWS = (20, 30, 50, 200)
EMA_WINDOW = 20
BB_WINDOW = 20
BB_STDDEVS = 2.0
ATR_PERIOD = 14
RSI_PERIOD = 14
RV_WINDOW = 20
TRADING_DAYS_PER_YEAR = 252
RANGE_WINDOW = 252
BETA_WINDOW = 252
BETA_MIN_PAIRS = 60
VOLUME_WINDOW = 20

_BAR_COLUMNS = ["trade_date", "symbol", "open", "high", "low", "close", "volume"]


def technicals_columns() -> list[str]:
    """Output column order of ``technicals_daily``."""
    return [
        *_BAR_COLUMNS,
        "prev_close",
        "change_pct",
        *(f"sma_{window}" for window in SMA_WINDOWS),
        f"ema_{EMA_WINDOW}",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        f"atr_{ATR_PERIOD}",
        f"rsi_{RSI_PERIOD}",
        f"rv_{RV_WINDOW}",
        "high_52w",
        "low_52w",
        f"beta_{BETA_WINDOW}",
        f"volume_ratio_{VOLUME_WINDOW}",
        "pivot_point",
        "r1",
        "s1",
        "r2",
        "s2",
        "r3",
        "s3",
    ]


def technicals_daily(bars: pl.LazyFrame, benchmark: str) -> pl.LazyFrame:
    """One row per (trade_date, symbol), sorted by symbol then trade_date; see ``technicals_columns``.

    ``bars`` is silver bars over the full history wanted (any number of symbols and dates); ``benchmark``
    is the symbol that ``beta_252`` is measured against (it must be among ``bars`` for beta to exist).
    """
    per_symbol = (
        _with_benchmark_return(bars, benchmark)
        .sort("symbol", "trade_date")
        .with_columns(prev_close=pl.col("close").shift(1).over("symbol"))
    )
    indicators = {
        "change_pct": _change_pct(),
        **{f"sma_{window}": _sma(pl.col("close"), window) for window in SMA_WINDOWS},
        f"ema_{EMA_WINDOW}": _ema(pl.col("close"), EMA_WINDOW),
        **_bollinger_bands(pl.col("close")),
        f"atr_{ATR_PERIOD}": _atr(ATR_PERIOD),
        f"rsi_{RSI_PERIOD}": _rsi(pl.col("close"), RSI_PERIOD),
        f"rv_{RV_WINDOW}": _realised_vol(pl.col("close"), RV_WINDOW),
        "high_52w": pl.col("high").rolling_max(RANGE_WINDOW),
        "low_52w": pl.col("low").rolling_min(RANGE_WINDOW),
        f"beta_{BETA_WINDOW}": _beta(_simple_return(pl.col("close")), pl.col("benchmark_return")),
        f"volume_ratio_{VOLUME_WINDOW}": _volume_ratio(VOLUME_WINDOW),
    }
    return (
        per_symbol.with_columns(expr.over("symbol").alias(name) for name, expr in indicators.items())
        .with_columns(**_floor_pivots())
        .select(technicals_columns())
        # TA-Lib conventions aside, consumers (DuckDB, BI tools) should only ever see NULL for "no value".
        .with_columns(cs.float().fill_nan(None))
    )


def _with_benchmark_return(bars: pl.LazyFrame, benchmark: str) -> pl.LazyFrame:
    """Attach the benchmark's daily simple return of the same trade_date to every bar."""
    benchmark_returns = (
        bars.filter(pl.col("symbol") == benchmark)
        .sort("trade_date")
        .select("trade_date", benchmark_return=_simple_return(pl.col("close")))
    )
    return bars.join(benchmark_returns, on="trade_date", how="left")


def _simple_return(price: pl.Expr) -> pl.Expr:
    previous = price.shift(1)
    return pl.when(previous != 0).then(price / previous - 1.0)


def _change_pct() -> pl.Expr:
    prev_close = pl.col("prev_close")
    return pl.when(prev_close != 0).then((pl.col("close") / prev_close - 1.0) * 100.0)


def _sma(values: pl.Expr, window: int) -> pl.Expr:
    # min_samples defaults to the window: short history is NULL, never a partial average.
    return values.rolling_mean(window)


def _seeded_recursion(values: pl.Expr, period: int, alpha: float, seed_row: int) -> pl.Expr:
    """TA-Lib's seeded exponential recursion: NULL before ``seed_row``, the simple mean of the ``period``
    values ending at ``seed_row`` on it, then ``y = y_prev + alpha * (x - y_prev)``.

    Feeding ewm_mean(adjust=False) a series that starts with the seed reproduces exactly that.
    """
    row = pl.int_range(pl.len())
    seeded = pl.when(row == seed_row).then(values.rolling_mean(period)).when(row > seed_row).then(values)
    return seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True)


def _ema(values: pl.Expr, period: int) -> pl.Expr:
    return _seeded_recursion(values, period, alpha=2.0 / (period + 1), seed_row=period - 1)


def _bollinger_bands(close: pl.Expr) -> dict[str, pl.Expr]:
    middle = _sma(close, BB_WINDOW)
    # Population standard deviation, as TA-Lib's BBANDS.
    width = BB_STDDEVS * close.rolling_std(BB_WINDOW, ddof=0)
    return {"bb_upper": middle + width, "bb_middle": middle, "bb_lower": middle - width}


def _true_range() -> pl.Expr:
    high, low, prev_close = pl.col("high"), pl.col("low"), pl.col("close").shift(1)
    # TA-Lib has no true range for the first bar (no previous close); neither do we.
    return pl.when(prev_close.is_not_null()).then(
        pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
    )


def _atr(period: int) -> pl.Expr:
    # Wilder smoothing, first value at row `period` = mean of TR[1..period].
    return _seeded_recursion(_true_range(), period, alpha=1.0 / period, seed_row=period)


def _rsi(close: pl.Expr, period: int) -> pl.Expr:
    change = close.diff()
    avg_gain = _seeded_recursion(change.clip(lower_bound=0.0), period, 1.0 / period, seed_row=period)
    avg_loss = _seeded_recursion((-change).clip(lower_bound=0.0), period, 1.0 / period, seed_row=period)
    total = avg_gain + avg_loss
    # A perfectly flat stretch has no gains and no losses; TA-Lib reports 0 there, not 50 or NaN.
    return pl.when(total == 0).then(0.0).otherwise(100.0 * avg_gain / total)


def _realised_vol(close: pl.Expr, window: int) -> pl.Expr:
    previous = close.shift(1)
    log_return = pl.when((close > 0) & (previous > 0)).then((close / previous).log())
    return log_return.rolling_std(window, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)


def _beta(asset_return: pl.Expr, benchmark_return: pl.Expr) -> pl.Expr:
    """OLS slope of the asset's returns on the benchmark's over the last BETA_WINDOW sessions, using only
    sessions where both returns exist, and only once there are BETA_MIN_PAIRS of them."""
    paired = asset_return.is_not_null() & benchmark_return.is_not_null()
    x = pl.when(paired).then(benchmark_return)
    y = pl.when(paired).then(asset_return)

    def window_sum(values: pl.Expr) -> pl.Expr:
        return values.rolling_sum(BETA_WINDOW, min_samples=1)

    pairs = window_sum(paired.cast(pl.Float64))
    sum_x, sum_y = window_sum(x), window_sum(y)
    co_moment = window_sum(x * y) - sum_x * sum_y / pairs
    benchmark_moment = window_sum(x * x) - sum_x * sum_x / pairs
    return pl.when((pairs >= BETA_MIN_PAIRS) & (benchmark_moment > 0)).then(co_moment / benchmark_moment)


def _volume_ratio(window: int) -> pl.Expr:
    # The average excludes today, so a volume spike is measured against the sessions before it.
    previous_average = pl.col("volume").shift(1).rolling_mean(window)
    return pl.when(previous_average != 0).then(pl.col("volume") / previous_average)


def _floor_pivots() -> dict[str, pl.Expr]:
    """Classic floor pivots for the NEXT session from this session's high, low and close."""
    high, low, close = pl.col("high"), pl.col("low"), pl.col("close")
    # Multiply, not divide: polars divides a column by a literal via its reciprocal on some chunk
    # sizes only, so the same bar could differ in the last bit between a nightly and a backfill.
    pivot = (high + low + close) * (1.0 / 3.0)
    return {
        "pivot_point": pivot,
        "r1": 2.0 * pivot - low,
        "s1": 2.0 * pivot - high,
        "r2": pivot + (high - low),
        "s2": pivot - (high - low),
        "r3": high + 2.0 * (pivot - low),
        "s3": low - 2.0 * (high - pivot),
    }

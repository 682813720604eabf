"""Daily technical indicators per symbol: the gold ``technicals_daily`` table (SPEC section 4).

Bars are sorted by (symbol, trade_date) once and every indicator is a pass over one symbol's series in date
order, so a row only ever sees that symbol's rows dated on or before it (plus the benchmark's return of the
same trade_date): no lookahead by construction.

Moving averages, Bollinger bands, ATR and RSI reproduce TA-Lib exactly where TA-Lib has a value and are
NULL where TA-Lib returns NaN (too little history); they are never partial averages.

This is one of the nightly's largest CPU costs, so the work is laid out to do each step once, and the
result is bit for bit what evaluating every indicator with ``.over("symbol")`` gives:
- Rolling sums, means and stds carry a compensated running sum, so their last bits depend on where the pass
  starts: they run per symbol from its first bar in ``bars``, even when the caller keeps only the last
  session. A caller that bounds the history must give every session it compares the same first bar (the
  pipeline starts all sessions of a year at the same date: flows.pipeline.history_start).
- Steps that do not depend on where a pass starts (previous close, returns, true range, rolling max/min)
  run once over the whole sorted column and are masked at symbol starts with ``session``.
- Shared sub-results are columns computed once: the previous close feeds change, returns, true range and
  RSI; ``sma_20`` is also the middle band and the EMA's seed.
- The final formulas are elementwise and come last, so a caller's filter on trade_date (the nightly keeps
  one session) is pushed down past them.
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
    return (
        _symbol_sessions(bars)
        .with_columns(**_daily_moves(benchmark))
        .with_columns(**_windows())
        .with_columns(**_recursions())
        .with_columns(**_indicators(), **_floor_pivots())
        .select(technicals_columns())
        # TA-Lib conventions aside, consumers (DuckDB, BI tools) should only ever see NULL for "no value".
        .with_columns(cs.float().fill_nan(None))
    )


def _symbol_sessions(bars: pl.LazyFrame) -> pl.LazyFrame:
    """Bars sorted by (symbol, trade_date) with ``session`` (0 on the symbol's first bar) and the
    symbol's previous close and volume."""
    position = pl.int_range(pl.len(), dtype=pl.UInt32)
    first_bar = pl.col("symbol").ne_missing(pl.col("symbol").shift(1))

    def previous(values: pl.Expr) -> pl.Expr:
        return pl.when(~first_bar).then(values.shift(1))

    return (
        bars.select(_BAR_COLUMNS)
        .sort("symbol", "trade_date")
        .with_columns(
            session=position - pl.when(first_bar).then(position).forward_fill(),
            prev_close=previous(pl.col("close")),
            prev_volume=previous(pl.col("volume")),
        )
    )


def _daily_moves(benchmark: str) -> dict[str, pl.Expr]:
    close, prev_close = pl.col("close"), pl.col("prev_close")
    high, low = pl.col("high"), pl.col("low")
    close_return = _simple_return(close, prev_close)
    return {
        "close_return": close_return,
        # The benchmark's return of the same trade_date (NULL when it has no bar that day).
        "benchmark_return": close_return.filter(pl.col("symbol") == benchmark).first().over("trade_date"),
        "close_change": close - prev_close,
        # TA-Lib has no true range for the first bar (no previous close); neither do we.
        "true_range": pl.when(prev_close.is_not_null()).then(
            pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
        ),
        "log_return": pl.when((close > 0) & (prev_close > 0)).then((close / prev_close).log()),
    }


def _simple_return(price: pl.Expr, previous: pl.Expr) -> pl.Expr:
    return pl.when(previous != 0).then(price / previous - 1.0)


def _per_symbol(values: pl.Expr) -> pl.Expr:
    # Rows are sorted by symbol, so the groups come back in row order: exploding them is enough, no
    # mapping of every result back to its row.
    return values.over("symbol", mapping_strategy="explode")


def _mean(values: pl.Expr, window: int) -> pl.Expr:
    # min_samples defaults to the window: short history is NULL, never a partial average.
    return _per_symbol(values.rolling_mean(window))


def _windows() -> dict[str, pl.Expr]:
    close = pl.col("close")
    # Beta only uses sessions where both returns exist.
    asset_return, benchmark_return = pl.col("close_return"), pl.col("benchmark_return")
    paired = asset_return.is_not_null() & benchmark_return.is_not_null()
    x, y = pl.when(paired).then(benchmark_return), pl.when(paired).then(asset_return)

    def beta_sum(values: pl.Expr) -> pl.Expr:
        return _per_symbol(values.rolling_sum(BETA_WINDOW, min_samples=1))

    return {
        **{f"sma_{window}": _mean(close, window) for window in SMA_WINDOWS},
        # Population standard deviation, as TA-Lib's BBANDS.
        "bb_std": _per_symbol(close.rolling_std(BB_WINDOW, ddof=0)),
        "atr_seed": _mean(pl.col("true_range"), ATR_PERIOD),
        "gain_seed": _mean(_gain(), RSI_PERIOD),
        "loss_seed": _mean(_loss(), RSI_PERIOD),
        "log_return_std": _per_symbol(pl.col("log_return").rolling_std(RV_WINDOW, ddof=1)),
        # A running max/min only looks at the window's values: no need to restart it per symbol.
        "high_252": pl.col("high").rolling_max(RANGE_WINDOW),
        "low_252": pl.col("low").rolling_min(RANGE_WINDOW),
        "beta_pairs": beta_sum(paired.cast(pl.Float64)),
        "beta_sum_x": beta_sum(x),
        "beta_sum_y": beta_sum(y),
        "beta_sum_xy": beta_sum(x * y),
        "beta_sum_xx": beta_sum(x * x),
        "prev_volume_mean": _mean(pl.col("prev_volume"), VOLUME_WINDOW),
    }


def _gain() -> pl.Expr:
    return pl.col("close_change").clip(lower_bound=0.0)


def _loss() -> pl.Expr:
    return (-pl.col("close_change")).clip(lower_bound=0.0)


def _seeded_recursion(values: pl.Expr, seed: str, alpha: float, seed_row: int) -> pl.Expr:
    """TA-Lib's seeded exponential recursion: NULL before ``seed_row``, the ``seed`` column (the simple
    mean of the ``period`` values ending there) on it, then ``y = y_prev + alpha * (x - y_prev)``.

    Feeding ewm_mean(adjust=False) a series that starts with the seed reproduces exactly that.
    """
    session = pl.col("session")
    seeded = pl.when(session == seed_row).then(pl.col(seed)).when(session > seed_row).then(values)
    return _per_symbol(seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True))


def _recursions() -> dict[str, pl.Expr]:
    return {
        f"ema_{EMA_WINDOW}": _seeded_recursion(
            pl.col("close"), f"sma_{EMA_WINDOW}", alpha=2.0 / (EMA_WINDOW + 1), seed_row=EMA_WINDOW - 1
        ),
        # Wilder smoothing, first value at row `period` = mean of TR[1..period].
        f"atr_{ATR_PERIOD}": _seeded_recursion(
            pl.col("true_range"), "atr_seed", alpha=1.0 / ATR_PERIOD, seed_row=ATR_PERIOD
        ),
        "avg_gain": _seeded_recursion(_gain(), "gain_seed", alpha=1.0 / RSI_PERIOD, seed_row=RSI_PERIOD),
        "avg_loss": _seeded_recursion(_loss(), "loss_seed", alpha=1.0 / RSI_PERIOD, seed_row=RSI_PERIOD),
    }


def _indicators() -> dict[str, pl.Expr]:
    """Elementwise on the passes above, so they only run on the rows a caller keeps."""
    session = pl.col("session")
    return {
        "change_pct": _change_pct(),
        **_bollinger_bands(),
        f"rsi_{RSI_PERIOD}": _rsi(pl.col("avg_gain"), pl.col("avg_loss")),
        f"rv_{RV_WINDOW}": pl.col("log_return_std") * math.sqrt(TRADING_DAYS_PER_YEAR),
        # Before a full window the running max/min still reaches into the previous symbol's bars.
        "high_52w": pl.when(session >= RANGE_WINDOW - 1).then(pl.col("high_252")),
        "low_52w": pl.when(session >= RANGE_WINDOW - 1).then(pl.col("low_252")),
        f"beta_{BETA_WINDOW}": _beta(),
        f"volume_ratio_{VOLUME_WINDOW}": _volume_ratio(),
    }


def _change_pct() -> pl.Expr:
    prev_close = pl.col("prev_close")
    return pl.when(prev_close != 0).then((pl.col("close") / prev_close - 1.0) * 100.0)


def _bollinger_bands() -> dict[str, pl.Expr]:
    middle = pl.col(f"sma_{BB_WINDOW}")
    width = BB_STDDEVS * pl.col("bb_std")
    return {"bb_upper": middle + width, "bb_middle": middle, "bb_lower": middle - width}


def _rsi(avg_gain: pl.Expr, avg_loss: pl.Expr) -> pl.Expr:
    total = avg_gain + avg_loss
    # A perfectly flat stretch has no gains and no losses; TA-Lib reports 0 there, not 50 or NaN.
    return pl.when(total == 0).then(0.0).otherwise(100.0 * avg_gain / total)


def _beta() -> pl.Expr:
    """OLS slope of the asset's returns on the benchmark's over the last BETA_WINDOW sessions, using only
    sessions where both returns exist, and only once there are BETA_MIN_PAIRS of them."""
    pairs = pl.col("beta_pairs")
    sum_x, sum_y = pl.col("beta_sum_x"), pl.col("beta_sum_y")
    co_moment = pl.col("beta_sum_xy") - sum_x * sum_y / pairs
    benchmark_moment = pl.col("beta_sum_xx") - sum_x * sum_x / pairs
    return pl.when((pairs >= BETA_MIN_PAIRS) & (benchmark_moment > 0)).then(co_moment / benchmark_moment)


def _volume_ratio() -> pl.Expr:
    # The average excludes today, so a volume spike is measured against the sessions before it.
    previous_average = pl.col("prev_volume_mean")
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

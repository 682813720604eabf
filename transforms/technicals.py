"""Daily technical indicators per symbol: the gold ``technicals_daily`` table (SPEC section 4).

Bars are sorted by (symbol, trade_date) once and every indicator is a pass over one symbol's series in date
order, so a row only ever sees that symbol's rows dated on or before it (plus the benchmark's return of the
same trade_date): no lookahead by construction.

Moving averages, Bollinger bands, ATR and RSI reproduce TA-Lib exactly where TA-Lib has a value and are
NULL where TA-Lib returns NaN (too little history); they are never partial averages.

This is one of the nightly's largest CPU costs, so the work is laid out to do each step once, and the
result is bit for bit what evaluating every indicator with ``.over("symbol")`` gives:
- Window sums (means, stds, beta's moments) are running sums, so their last bits depend on where the pass
  starts: they run per symbol from its first bar in ``bars``, even when the caller keeps only the last
  session. A caller that bounds the history must give every session it compares the same first bar (the
  pipeline starts all sessions of a year at the same date: flows.stages.gold.history_start).
- A running sum's whole state is the sum and the values still in its window, and the EMA, ATR and RSI
  recursions' is their last value: ``technicals_with_state`` returns that state after a pass and
  ``carry_forward`` continues from it one session at a time, giving the same rows as the pass would.
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
    return _technicals_of(_passes(bars, benchmark))


def technicals_with_state(bars: pl.LazyFrame, benchmark: str) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``technicals_daily`` of ``bars`` and the state after its last row per symbol (see
    ``carry_forward``), from one pass."""
    passes = _passes(bars, benchmark).cache()
    return _technicals_of(passes), _state_of(passes)


def _technicals_of(passes: pl.LazyFrame) -> pl.LazyFrame:
    return (
        passes.with_columns(**_indicators(), **_floor_pivots())
        .select(technicals_columns())
        # TA-Lib conventions aside, consumers (DuckDB, BI tools) should only ever see NULL for "no value".
        .with_columns(cs.float().fill_nan(None))
    )


def _passes(bars: pl.LazyFrame, benchmark: str) -> pl.LazyFrame:
    """Every per-row quantity the indicators are made of, over each symbol's whole series."""
    return (
        _symbol_sessions(bars)
        .with_columns(**_daily_moves(benchmark))
        .with_columns(**_window_inputs())
        .with_columns(**_summands())
        .with_columns(**_running_sums())
        .with_columns(**_window_statistics(), **_range_windows())
        .with_columns(**_recursions())
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
        "log_return": _log_return(close, prev_close),
    }


def _simple_return(price: pl.Expr, previous: pl.Expr) -> pl.Expr:
    return pl.when(previous != 0).then(price / previous - 1.0)


def _log_return(price: pl.Expr, previous: pl.Expr) -> pl.Expr:
    return pl.when((price > 0) & (previous > 0)).then((price / previous).log())


def _per_symbol(values: pl.Expr) -> pl.Expr:
    # Rows are sorted by symbol, so the groups come back in row order: exploding them is enough, no
    # mapping of every result back to its row.
    return values.over("symbol", mapping_strategy="explode")


# Windowed sums are running sums: each row adds the value entering the window and subtracts the one
# leaving it, one left-to-right cum_sum per symbol. Its whole state after a row is the sum itself plus
# the values still in the window, which is what lets carry_forward continue a symbol's series bit for
# bit from the previous session (polars' rolling kernels keep a hidden compensation term instead).
# A sum of 0/1 indicators counts the values present, so a window with a missing value is NULL, never a
# partial average.

# The per-row values that windowed sums run over, from the bar's own columns and the daily moves.
# carry_forward computes the value leaving a window with the same expressions over the stored tails.
_BASE_INPUTS = (
    "close",
    "true_range",
    "close_change",
    "log_return",
    "prev_volume",
    "close_return",
    "benchmark_return",
)


def _window_inputs(base: dict[str, pl.Expr] | None = None) -> dict[str, pl.Expr]:
    """Columns named as WINDOW_SUMS's inputs, over `base` (default: this row's _BASE_INPUTS columns)."""
    close, true_range, change, log_return, prev_volume, asset_return, benchmark_return = (
        (base or {}).get(name, pl.col(name)) for name in _BASE_INPUTS
    )
    # Beta only uses sessions where both returns exist.
    paired = asset_return.is_not_null() & benchmark_return.is_not_null()
    x, y = pl.when(paired).then(benchmark_return), pl.when(paired).then(asset_return)
    return {
        "close": close,
        "close_present": _present(close),
        "close_squared": close * close,
        "true_range": true_range,
        "true_range_present": _present(true_range),
        "true_range_nan": true_range.is_nan().cast(pl.Float64),
        "gain": change.clip(lower_bound=0.0),
        "loss": (-change).clip(lower_bound=0.0),
        "change_present": _present(change),
        "log_return": log_return,
        "log_return_present": _present(log_return),
        "log_return_squared": log_return * log_return,
        "prev_volume_value": prev_volume.cast(pl.Float64),
        "prev_volume_present": _present(prev_volume),
        "beta_pair": _present(x),
        "beta_x": x,
        "beta_y": y,
        "beta_xy": x * y,
        "beta_xx": x * x,
    }


def _present(values: pl.Expr) -> pl.Expr:
    return values.is_not_null().cast(pl.Float64)


# input column -> the windows summed over it (only those the indicators below read).
_SUMMED: dict[str, tuple[int, ...]] = {
    "close": SMA_WINDOWS,
    "close_present": SMA_WINDOWS,
    "close_squared": (BB_WINDOW,),
    # The seeds of ATR and RSI: read on one row per symbol only (session ATR_PERIOD / RSI_PERIOD).
    **{name: (ATR_PERIOD,) for name in ("true_range", "true_range_present", "true_range_nan")},
    **{name: (RSI_PERIOD,) for name in ("gain", "loss", "change_present")},
    **{name: (RV_WINDOW,) for name in ("log_return", "log_return_squared", "log_return_present")},
    **{name: (VOLUME_WINDOW,) for name in ("prev_volume_value", "prev_volume_present")},
    **{f"beta_{name}": (BETA_WINDOW,) for name in ("pair", "x", "y", "xy", "xx")},
}
# sum name -> (input column, window)
WINDOW_SUMS: dict[str, tuple[str, int]] = {
    f"{column}_{window}": (column, window) for column, windows in _SUMMED.items() for window in windows
}
SEED_SUMS = {name for name, (_, window) in WINDOW_SUMS.items() if window in (ATR_PERIOD, RSI_PERIOD)}


def _entering(values: pl.Expr) -> pl.Expr:
    # A missing value adds nothing (its window is NULL through its count); NaN is counted apart, as a
    # NaN inside a sum would stay in it after leaving the window.
    return pl.when(values.is_finite()).then(values).otherwise(0.0)


def _window_step(entering: pl.Expr, leaving: pl.Expr, window: int) -> pl.Expr:
    """The change of a window sum on a row: the value entering minus the one leaving (the input
    `window` rows back on the symbol, or 0.0 while the symbol has fewer rows); both through _entering."""
    return entering - pl.when(pl.col("session") >= window).then(leaving).otherwise(0.0)


def _summands() -> dict[str, pl.Expr]:
    return {f"summand_{column}": _entering(pl.col(column)) for column in _SUMMED}


def _running_sums() -> dict[str, pl.Expr]:
    # The value leaving the window is `window` rows up the sorted column; rows before a symbol's
    # window-th are masked by `session` in _window_step.
    def step(column: str, window: int) -> pl.Expr:
        summand = pl.col(f"summand_{column}")
        return _window_step(summand, summand.shift(window), window)

    return {
        f"sum_{name}": _per_symbol(step(column, window).cum_sum())
        for name, (column, window) in WINDOW_SUMS.items()
    }


def _sum(name: str) -> pl.Expr:
    return pl.col(f"sum_{name}")


def _window_mean(name: str, present: str, window: int) -> pl.Expr:
    # Multiply, not divide: see _floor_pivots.
    return pl.when(_sum(present) >= window).then(_sum(name) * (1.0 / window))


def _window_variance(name: str, present: str, window: int, ddof: int) -> pl.Expr:
    total, squares = _sum(name), _sum(f"{name.rsplit('_', 1)[0]}_squared_{window}")
    moment = (squares - total * total * (1.0 / window)).clip(lower_bound=0.0)
    return pl.when(_sum(present) >= window).then(moment * (1.0 / (window - ddof)))


def _seed_mean(name: str, present: str, nan: str | None, window: int) -> pl.Expr:
    # As a rolling mean would be: NaN when a NaN is in the window, so the recursion it seeds stays NaN.
    mean = _window_mean(name, present, window)
    return mean if nan is None else pl.when(_sum(nan) > 0).then(float("nan")).otherwise(mean)


def _window_statistics() -> dict[str, pl.Expr]:
    return {
        **{f"sma_{w}": _window_mean(f"close_{w}", f"close_present_{w}", w) for w in SMA_WINDOWS},
        # Population standard deviation, as TA-Lib's BBANDS.
        "bb_std": _window_variance(f"close_{BB_WINDOW}", f"close_present_{BB_WINDOW}", BB_WINDOW, 0).sqrt(),
        "atr_seed": _seed_mean(
            f"true_range_{ATR_PERIOD}",
            f"true_range_present_{ATR_PERIOD}",
            f"true_range_nan_{ATR_PERIOD}",
            ATR_PERIOD,
        ),
        "gain_seed": _seed_mean(f"gain_{RSI_PERIOD}", f"change_present_{RSI_PERIOD}", None, RSI_PERIOD),
        "loss_seed": _seed_mean(f"loss_{RSI_PERIOD}", f"change_present_{RSI_PERIOD}", None, RSI_PERIOD),
        "log_return_std": _window_variance(
            f"log_return_{RV_WINDOW}", f"log_return_present_{RV_WINDOW}", RV_WINDOW, 1
        ).sqrt(),
        "prev_volume_mean": _window_mean(
            f"prev_volume_value_{VOLUME_WINDOW}", f"prev_volume_present_{VOLUME_WINDOW}", VOLUME_WINDOW
        ),
        **{f"beta_sum_{name}": _sum(f"beta_{name}_{BETA_WINDOW}") for name in ("x", "y", "xy", "xx")},
        "beta_pairs": _sum(f"beta_pair_{BETA_WINDOW}"),
    }


def _range_windows() -> dict[str, pl.Expr]:
    # A running max/min only looks at the window's values: no need to restart it per symbol.
    return {
        "high_252": pl.col("high").rolling_max(RANGE_WINDOW),
        "low_252": pl.col("low").rolling_min(RANGE_WINDOW),
    }


# (recursion, input, seed column, alpha, seed row). TA-Lib's seeded exponential recursion: NULL before
# the seed row, the seed (the simple mean of the `period` values ending there) on it, then
# y = y_prev + alpha * (x - y_prev). Feeding ewm_mean(adjust=False) a series that starts with the seed
# reproduces exactly that, and its step depends on the previous output and the input only.
def _recursion_specs() -> dict[str, tuple[pl.Expr, str, float, int]]:
    return {
        f"ema_{EMA_WINDOW}": (pl.col("close"), f"sma_{EMA_WINDOW}", 2.0 / (EMA_WINDOW + 1), EMA_WINDOW - 1),
        # Wilder smoothing, first value at row `period` = mean of TR[1..period].
        f"atr_{ATR_PERIOD}": (pl.col("true_range"), "atr_seed", 1.0 / ATR_PERIOD, ATR_PERIOD),
        "avg_gain": (pl.col("gain"), "gain_seed", 1.0 / RSI_PERIOD, RSI_PERIOD),
        "avg_loss": (pl.col("loss"), "loss_seed", 1.0 / RSI_PERIOD, RSI_PERIOD),
    }


def _seeded(values: pl.Expr, seed: str, seed_row: int) -> pl.Expr:
    session = pl.col("session")
    return pl.when(session == seed_row).then(pl.col(seed)).when(session > seed_row).then(values)


def _recursions() -> dict[str, pl.Expr]:
    return {
        name: _per_symbol(_seeded(values, seed, row).ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True))
        for name, (values, seed, alpha, row) in _recursion_specs().items()
    }


# ------------------------------------------------------------------------------ carrying forward
# The state of a symbol after its last bar: what the next session's row is computed from. Tails hold
# the inputs still inside a window (oldest first), as many as the longest window over them needs; the
# seeds' inputs need none: their sums are read on the seed row only, where the value leaving is the
# first bar's (always missing: it has no previous close).
TAIL_LENGTHS: dict[str, int] = {
    # The averages' windows, and the close before the oldest return a window holds (returns are
    # recomputed from closes).
    "close": max(*SMA_WINDOWS, RV_WINDOW + 1, BETA_WINDOW + 1),
    "prev_volume": VOLUME_WINDOW,
    "benchmark_return": BETA_WINDOW,
    "high": RANGE_WINDOW - 1,
    "low": RANGE_WINDOW - 1,
}
_STATE_SCALARS = ["trade_date", "symbol", "session", "close", "volume"]


def state_columns() -> list[str]:
    return [
        *_STATE_SCALARS,
        *(f"sum_{name}" for name in WINDOW_SUMS),
        *_recursion_specs(),
        *(f"tail_{name}" for name in TAIL_LENGTHS),
    ]


def _state_of(passes: pl.LazyFrame) -> pl.LazyFrame:
    """One row per symbol: its last row's sums, the recursions' last values and the tails."""
    return (
        passes.group_by("symbol", maintain_order=True)
        .agg(
            *(pl.col(c).last() for c in _STATE_SCALARS if c != "symbol"),
            *(
                _seed_sum_kept(pl.col(f"sum_{name}").last(), name, pl.col("session").last())
                for name in WINDOW_SUMS
            ),
            # An input the recursion skips (NULL) leaves its value as it was.
            *(pl.col(name).drop_nulls().last() for name in _recursion_specs()),
            *(pl.col(name).tail(length).alias(f"tail_{name}") for name, length in TAIL_LENGTHS.items()),
        )
        .select(state_columns())
    )


def carry_forward(
    state: pl.LazyFrame, bars: pl.LazyFrame, benchmark: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``technicals_daily`` rows of one session's ``bars`` (every symbol of that trade_date, the benchmark
    among them for beta) from ``state`` (``technicals_with_state`` or an earlier ``carry_forward`` over
    the sessions before), and the state after it. Bit for bit the rows ``technicals_daily`` gives over
    the whole series; a symbol absent from ``state`` starts its series here, one absent from ``bars``
    keeps its state."""
    previous = state.rename({"trade_date": "state_date", "close": "prev_close", "volume": "prev_volume"})
    today = (
        bars.select(_BAR_COLUMNS)
        .join(previous, on="symbol", how="left")
        .sort("symbol")
        .with_columns(
            session=pl.when(pl.col("session").is_null())
            .then(pl.lit(0, pl.UInt32))
            .otherwise(pl.col("session") + 1)
        )
        .with_columns(**_daily_moves(benchmark))
        .with_columns(**_window_inputs())
        .with_columns(**_carried_sums())
        .with_columns(**_window_statistics(), **_carried_ranges())
    )
    today = _carried_recursions(today.cache(), previous)
    carried = (
        previous.join(bars.select("symbol"), on="symbol", how="anti")
        .rename({"state_date": "trade_date", "prev_close": "close", "prev_volume": "volume"})
        .select(state_columns())
    )
    updated = today.with_columns(
        *(_with_today(name).list.tail(length).alias(f"tail_{name}") for name, length in TAIL_LENGTHS.items()),
        # An input the recursion skips (NULL) leaves its value as it was.
        *(pl.coalesce(pl.col(name), pl.col(f"{name}_before")).alias(name) for name in _recursion_specs()),
    ).select(state_columns())
    return _technicals_of(today), pl.concat([carried, updated]).sort("symbol")


def _lagged(name: str, lag: int) -> pl.Expr:
    return pl.col(f"tail_{name}").list.get(-lag, null_on_oob=True)


def _lagged_inputs(lag: int) -> dict[str, pl.Expr]:
    """_BASE_INPUTS of the row `lag` rows back. The seeds' inputs have no tail: their value leaving is
    the first bar's, always missing."""
    close, previous = _lagged("close", lag), _lagged("close", lag + 1)
    return {
        "close": close,
        "true_range": pl.lit(None, pl.Float64),
        "close_change": pl.lit(None, pl.Float64),
        "log_return": _log_return(close, previous),
        "prev_volume": _lagged("prev_volume", lag),
        "close_return": _simple_return(close, previous),
        "benchmark_return": _lagged("benchmark_return", lag),
    }


def _carried_sums() -> dict[str, pl.Expr]:
    # The inputs `window` rows back, from the tails, with the same expressions as today's.
    lagged = {
        window: _window_inputs(_lagged_inputs(window)) for window in {w for _, w in WINDOW_SUMS.values()}
    }
    sums = {}
    for name, (column, window) in WINDOW_SUMS.items():
        step = _window_step(_entering(pl.col(column)), _entering(lagged[window][column]), window)
        before = _sum(name)
        # cum_sum starts from the first value itself.
        sums[f"sum_{name}"] = _seed_sum_kept(
            pl.when(before.is_null()).then(step).otherwise(before + step), name, pl.col("session")
        )
    return sums


def _seed_sum_kept(value: pl.Expr, name: str, session: pl.Expr) -> pl.Expr:
    """A seed's sum in the state while a later session can still read it (NULL after its seed row)."""
    return pl.when(session <= WINDOW_SUMS[name][1]).then(value) if name in SEED_SUMS else value


def _with_today(name: str) -> pl.Expr:
    """The tail of `name` with today's value appended (a symbol new today has no tail yet)."""
    tail, today = pl.col(f"tail_{name}"), pl.concat_list(pl.col(name))
    return pl.when(tail.is_null()).then(today).otherwise(tail.list.concat(today))


def _carried_ranges() -> dict[str, pl.Expr]:
    def ranged(name: str, pick: str) -> pl.Expr:
        values = _with_today(name)
        # As rolling_max/min: NULL unless the window holds RANGE_WINDOW values, NaN when one is NaN.
        full = values.list.drop_nulls().list.len() >= RANGE_WINDOW
        extreme = values.list.max() if pick == "max" else values.list.min()
        has_nan = values.list.eval(pl.element().is_nan().any()).list.first()
        return pl.when(full).then(pl.when(has_nan).then(float("nan")).otherwise(extreme))

    return {"high_252": ranged("high", "max"), "low_252": ranged("low", "min")}


def _carried_recursions(today: pl.LazyFrame, previous: pl.LazyFrame) -> pl.LazyFrame:
    """Each recursion's next value: ewm_mean over two rows per symbol, its previous value and today's input."""
    specs = _recursion_specs()
    inputs = today.select(
        "symbol",
        pl.lit(1, pl.Int8).alias("order"),
        *(_seeded(values, seed, row).alias(name) for name, (values, seed, _, row) in specs.items()),
    )
    before = previous.join(today.select("symbol"), on="symbol", how="semi").select(
        "symbol", pl.lit(0, pl.Int8).alias("order"), *specs
    )
    stepped = (
        pl.concat([before, inputs])
        .sort("symbol", "order")
        .with_columns(
            pl.col(name).ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True).over("symbol")
            for name, (_, _, alpha, _) in specs.items()
        )
        .filter(pl.col("order") == 1)
        .drop("order")
    )
    return (
        today.drop(*specs)
        .join(
            before.drop("order").rename({name: f"{name}_before" for name in specs}), on="symbol", how="left"
        )
        .join(stepped, on="symbol", how="left")
    )


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

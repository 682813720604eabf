"""technicals_daily: TA-Lib parity, NULL where history is short, hand-computed values, no lookahead."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib
from polars.testing import assert_frame_equal

from transforms.technicals import carry_forward, technicals_columns, technicals_daily, technicals_with_state

BENCHMARK = "SPY"
SESSIONS = 320
SHORT_HISTORY = 150  # fewer rows than the 200/252-session windows need
FIRST_SESSION = dt.date(2024, 1, 2)


def _session_dates(count: int) -> list[dt.date]:
    """Weekdays only, so calendar gaps (weekends) sit between sessions as in real bars."""
    dates: list[dt.date] = []
    day = FIRST_SESSION
    while len(dates) < count:
        if day.weekday() < 5:
            dates.append(day)
        day += dt.timedelta(days=1)
    return dates


def _bars_from_returns(
    symbol: str, dates: list[dt.date], returns: np.ndarray, start: float, rng: np.random.Generator
) -> pl.DataFrame:
    close = start * np.cumprod(1.0 + returns)
    open_ = np.r_[start, close[:-1]] * (1.0 + rng.normal(0.0, 0.002, len(close)))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.012, len(close)))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.012, len(close)))
    return pl.DataFrame(
        {
            "trade_date": dates,
            "symbol": symbol,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(200_000, 2_000_000, len(close)),
            "adj_close": close,
        },
        schema_overrides={"trade_date": pl.Date, "volume": pl.Int64},
    )


def _make_bars() -> pl.DataFrame:
    rng = np.random.default_rng(20240102)
    dates = _session_dates(SESSIONS)
    # Volatility clusters: calm and stormy regimes alternating every 40 sessions.
    regime_vol = np.where((np.arange(SESSIONS) // 40) % 2 == 0, 0.006, 0.022)
    market = rng.normal(0.0003, 1.0, SESSIONS) * regime_vol
    high_beta = 1.4 * market + rng.normal(0.0, 0.008, SESSIONS)
    late_listing = 0.7 * market[-SHORT_HISTORY:] + rng.normal(0.0, 0.01, SHORT_HISTORY)
    # A suspended stretch: 25 sessions without a single price change (zero gains and losses).
    late_listing[60:85] = 0.0
    frames = [
        _bars_from_returns(BENCHMARK, dates, market, 480.0, rng),
        _bars_from_returns("IWM", dates, high_beta, 220.0, rng),
        _bars_from_returns("NEWCO", dates[-SHORT_HISTORY:], late_listing, 35.0, rng),
    ]
    # Shuffled on purpose: the transform must not rely on the input order.
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=7)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return _make_bars()


@pytest.fixture(scope="module")
def technicals(bars: pl.DataFrame) -> pl.DataFrame:
    return technicals_daily(bars.lazy(), BENCHMARK).collect()


def _column(frame: pl.DataFrame, symbol: str, name: str) -> np.ndarray:
    """One symbol's column in date order, NULL as NaN (TA-Lib's convention) for comparison."""
    values = frame.filter(pl.col("symbol") == symbol).sort("trade_date")[name]
    return values.cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _assert_matches_talib(ours: np.ndarray, expected: np.ndarray, *, rel: float = 0.0, abs_: float = 0.0):
    missing = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(ours), missing, err_msg="NULL must be exactly where TA-Lib is NaN")
    assert (~missing).any(), "comparison would be vacuous"
    np.testing.assert_allclose(ours[~missing], expected[~missing], rtol=rel, atol=abs_)


def _talib_reference(frame: pl.DataFrame, symbol: str) -> dict[str, tuple[np.ndarray, dict[str, float]]]:
    high, low, close = (_column(frame, symbol, name) for name in ("high", "low", "close"))
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    averages = {"rel": 1e-9}
    return {
        "sma_20": (talib.SMA(close, 20), averages),
        "sma_30": (talib.SMA(close, 30), averages),
        "sma_50": (talib.SMA(close, 50), averages),
        "sma_200": (talib.SMA(close, 200), averages),
        "ema_20": (talib.EMA(close, 20), averages),
        "bb_upper": (upper, averages),
        "bb_middle": (middle, averages),
        "bb_lower": (lower, averages),
        "atr_14": (talib.ATR(high, low, close, 14), {"rel": 1e-6}),
        "rsi_14": (talib.RSI(close, 14), {"abs_": 1e-6}),
    }


TALIB_COLUMNS = ["sma_20", "sma_30", "sma_50", "sma_200", "ema_20", "bb_upper", "bb_middle", "bb_lower"]
TALIB_COLUMNS += ["atr_14", "rsi_14"]


@pytest.mark.parametrize("symbol", [BENCHMARK, "IWM", "NEWCO"])
@pytest.mark.parametrize("name", TALIB_COLUMNS)
def test_indicator_equals_talib(technicals: pl.DataFrame, symbol: str, name: str):
    if symbol == "NEWCO" and name == "sma_200":
        # 150 sessions: TA-Lib is all NaN, so we must be all NULL.
        assert technicals.filter(pl.col("symbol") == symbol)["sma_200"].null_count() == SHORT_HISTORY
        return
    expected, tolerance = _talib_reference(technicals, symbol)[name]
    _assert_matches_talib(_column(technicals, symbol, name), expected, **tolerance)


def test_output_shape_order_and_no_nan(bars: pl.DataFrame, technicals: pl.DataFrame):
    assert technicals.columns == technicals_columns()
    assert technicals.height == bars.height
    assert technicals.select(pl.struct("trade_date", "symbol").is_unique().all()).item()
    assert technicals.select(["symbol", "trade_date"]).equals(
        technicals.select(["symbol", "trade_date"]).sort("symbol", "trade_date")
    )
    float_columns = technicals.select(pl.selectors.float())
    assert not float_columns.select(pl.any_horizontal(pl.all().is_nan()).any()).item()


def test_nan_in_input_comes_out_as_null(bars: pl.DataFrame):
    iwm = bars.filter(pl.col("symbol") == "IWM").sort("trade_date")
    broken_day = iwm["trade_date"][100]
    broken = iwm.with_columns(
        high=pl.when(pl.col("trade_date") == broken_day).then(float("nan")).otherwise(pl.col("high"))
    )
    result = technicals_daily(broken.lazy(), BENCHMARK).collect()
    assert not result.select(pl.any_horizontal(pl.selectors.float().is_nan()).any()).item()
    assert result.filter(pl.col("trade_date") == broken_day)["pivot_point"].item() is None


def test_first_values_appear_exactly_when_history_allows(technicals: pl.DataFrame):
    iwm = technicals.filter(pl.col("symbol") == "IWM").with_row_index("row")
    first_row = {
        name: iwm.filter(pl.col(name).is_not_null())["row"].min()
        for name in ["sma_20", "ema_20", "sma_200", "atr_14", "rsi_14", "rv_20", "high_52w", "beta_252"]
    }
    assert first_row == {
        "sma_20": 19,
        "ema_20": 19,
        "sma_200": 199,
        "atr_14": 14,
        "rsi_14": 14,
        "rv_20": 20,  # 20 log returns need 21 closes
        "high_52w": 251,
        "beta_252": 60,  # 60 return pairs need 61 sessions
    }


def test_rsi_flat_stretch_and_flat_start_match_talib():
    # Flat start: the first 14 changes are all zero (TA-Lib then reports RSI 0, not 50);
    # then moves, then a flat run long enough to fill the whole 14-change window with zeros.
    rng = np.random.default_rng(3)
    close = np.r_[np.full(18, 50.0), 50.0 + np.cumsum(rng.normal(0, 0.6, 40)), np.full(30, 52.25)]
    close = np.r_[close, close[-1] + np.cumsum(rng.normal(0, 0.6, 20))]
    frame = pl.DataFrame(
        {
            "trade_date": _session_dates(len(close)),
            "symbol": "FLAT",
            "open": close,
            "high": close + 0.1,
            "low": close - 0.1,
            "close": close,
            "volume": 1_000,
        },
        schema_overrides={"volume": pl.Int64},
    )
    result = technicals_daily(frame.lazy(), BENCHMARK).collect()
    rsi = result["rsi_14"].to_numpy()
    _assert_matches_talib(rsi, talib.RSI(close, 14), abs_=1e-6)
    assert rsi[14] == 0.0 and rsi[17] == 0.0
    _assert_matches_talib(
        result["atr_14"].to_numpy(), talib.ATR(close + 0.1, close - 0.1, close, 14), rel=1e-6
    )


def test_rv_20_is_annualised_sample_std_of_log_returns(technicals: pl.DataFrame):
    close = _column(technicals, "IWM", "close")
    rv = _column(technicals, "IWM", "rv_20")
    log_returns = np.diff(np.log(close))
    # TA-Lib's STDDEV is the population std; rescale to ddof 1.
    expected = np.r_[np.nan, talib.STDDEV(log_returns, 20, 1.0) * math.sqrt(20 / 19) * math.sqrt(252)]
    _assert_matches_talib(rv, expected, rel=1e-9)
    assert rv[300] == pytest.approx(np.std(log_returns[280:300], ddof=1) * math.sqrt(252), rel=1e-12)


def test_52_week_range_covers_last_252_sessions(technicals: pl.DataFrame):
    high = _column(technicals, "IWM", "high")
    low = _column(technicals, "IWM", "low")
    high_52w = _column(technicals, "IWM", "high_52w")
    low_52w = _column(technicals, "IWM", "low_52w")
    assert np.isnan(high_52w[250]) and np.isnan(low_52w[250])
    assert high_52w[251] == high[:252].max() and low_52w[251] == low[:252].min()
    assert high_52w[300] == high[49:301].max() and low_52w[300] == low[49:301].min()
    assert technicals.filter(pl.col("symbol") == "NEWCO")["high_52w"].null_count() == SHORT_HISTORY


def test_beta_equals_talib_beta_with_benchmark_first(technicals: pl.DataFrame):
    # TA-Lib's BETA(x, y) is the slope of y's returns on x's: the benchmark goes FIRST.
    benchmark_close = _column(technicals, BENCHMARK, "close")
    iwm_close = _column(technicals, "IWM", "close")
    beta = _column(technicals, "IWM", "beta_252")
    expected = talib.BETA(benchmark_close, iwm_close, 252)
    full_window = ~np.isnan(expected)
    assert full_window.sum() == SESSIONS - 252
    np.testing.assert_allclose(beta[full_window], expected[full_window], rtol=1e-9)
    assert 1.0 < np.nanmean(beta) < 1.8  # built as 1.4 x market + noise


def test_beta_on_partial_window_is_ols_slope_of_available_pairs(technicals: pl.DataFrame):
    # NEWCO listed on the benchmark's last 150 sessions, so its i-th return pairs with the benchmark's
    # return on the same date; below 252 sessions the window is all pairs so far.
    benchmark_close = _column(technicals, BENCHMARK, "close")
    newco_close = _column(technicals, "NEWCO", "close")
    benchmark_returns = (benchmark_close[1:] / benchmark_close[:-1] - 1.0)[-(SHORT_HISTORY - 1) :]
    newco_returns = newco_close[1:] / newco_close[:-1] - 1.0
    beta = _column(technicals, "NEWCO", "beta_252")
    assert np.isnan(beta[:60]).all()
    for row in (60, 100, SHORT_HISTORY - 1):
        x, y = benchmark_returns[:row], newco_returns[:row]
        assert beta[row] == pytest.approx(np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1), rel=1e-9)


def test_benchmark_beta_is_one(technicals: pl.DataFrame):
    beta = technicals.filter(pl.col("symbol") == BENCHMARK)["beta_252"]
    assert beta[:60].is_null().all()
    assert (beta[60:] == 1.0).all()


def _two_symbol_frame(benchmark_close: list[float], asset_close: list[float], dates: list[dt.date]):
    def bars(symbol: str, close: list[float], symbol_dates: list[dt.date]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "trade_date": symbol_dates,
                "symbol": symbol,
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": [1_000] * len(close),
            },
            schema_overrides={"volume": pl.Int64},
        )

    return pl.concat([bars(BENCHMARK, benchmark_close, dates), bars("XYZ", asset_close, dates)])


def test_beta_needs_60_overlapping_return_pairs():
    # XYZ's return is exactly 2 x the benchmark's + 0.1%, so its beta is exactly 2 once defined.
    dates = _session_dates(62)
    bench_returns = 0.01 * np.sin(np.arange(1, 62))
    bench_close = list(100.0 * np.cumprod(np.r_[1.0, 1.0 + bench_returns]))
    asset_close = list(40.0 * np.cumprod(np.r_[1.0, 1.0 + 2.0 * bench_returns + 0.001]))
    beta = (
        technicals_daily(_two_symbol_frame(bench_close, asset_close, dates).lazy(), BENCHMARK)
        .filter(pl.col("symbol") == "XYZ")
        .collect()["beta_252"]
    )
    assert beta[:60].is_null().all()  # row 59 has only 59 pairs
    assert beta[60] == pytest.approx(2.0, rel=1e-9)
    assert beta[61] == pytest.approx(2.0, rel=1e-9)

    # A session missing from the benchmark is not an overlapping pair: row 60 falls back to 59 pairs.
    gapped = _two_symbol_frame(bench_close, asset_close, dates).filter(
        ~((pl.col("symbol") == BENCHMARK) & (pl.col("trade_date") == dates[30]))
    )
    gapped_beta = (
        technicals_daily(gapped.lazy(), BENCHMARK).filter(pl.col("symbol") == "XYZ").collect()["beta_252"]
    )
    assert gapped_beta[60] is None
    assert gapped_beta[61] is not None


def test_beta_is_null_without_benchmark(bars: pl.DataFrame):
    result = technicals_daily(bars.lazy(), "NOT_IN_BARS").collect()
    assert result["beta_252"].null_count() == result.height


def _one_bar(high: float, low: float, close: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trade_date": [dt.date(2025, 9, 12)],
            "symbol": ["IWM"],
            "open": [250.10],
            "high": [high],
            "low": [low],
            "close": [close],
            "volume": [1_000],
        },
        schema_overrides={"volume": pl.Int64},
    )


def test_floor_pivots_for_next_session():
    row = technicals_daily(_one_bar(251.70, 249.35, 249.80).lazy(), BENCHMARK).collect().row(0, named=True)
    # P = (251.70 + 249.35 + 249.80) / 3 = 750.85 / 3
    assert row["pivot_point"] == pytest.approx(250.283333333, abs=1e-8)
    assert row["r1"] == pytest.approx(251.216666667, abs=1e-8)  # 2P - L
    assert row["s1"] == pytest.approx(248.866666667, abs=1e-8)  # 2P - H
    assert row["r2"] == pytest.approx(252.633333333, abs=1e-8)  # P + (H - L)
    assert row["s2"] == pytest.approx(247.933333333, abs=1e-8)  # P - (H - L)
    assert row["r3"] == pytest.approx(253.566666667, abs=1e-8)  # H + 2(P - L)
    assert row["s3"] == pytest.approx(246.516666667, abs=1e-8)  # L - 2(H - P)
    # A single session: nothing that needs history has a value.
    assert row["prev_close"] is None and row["change_pct"] is None and row["sma_20"] is None


def test_change_pct_is_in_percent():
    frame = pl.concat(
        [
            _one_bar(252.10, 250.90, 251.42).with_columns(trade_date=pl.lit(dt.date(2025, 9, 11))),
            _one_bar(251.70, 249.35, 249.80),
        ]
    )
    result = technicals_daily(frame.lazy(), BENCHMARK).collect()
    assert result["prev_close"].to_list() == [None, 251.42]
    # (249.80 - 251.42) / 251.42 * 100 = -1.62 / 2.5142
    assert result["change_pct"][1] == pytest.approx(-0.644340148, abs=1e-8)


def test_volume_ratio_against_previous_20_sessions():
    volumes = [100] * 10 + [300] * 10 + [800, 0]
    dates = _session_dates(len(volumes))
    frame = pl.DataFrame(
        {
            "trade_date": dates,
            "symbol": "VOL",
            "open": 10.0,
            "high": 10.5,
            "low": 9.5,
            "close": 10.0,
            "volume": volumes,
        },
        schema_overrides={"volume": pl.Int64},
    )
    ratio = technicals_daily(frame.lazy(), BENCHMARK).collect()["volume_ratio_20"]
    assert ratio[:20].is_null().all()  # fewer than 20 previous sessions
    assert ratio[20] == pytest.approx(800 / 200)  # mean of 10 x 100 and 10 x 300, today excluded
    assert ratio[21] == pytest.approx(0 / ((100 * 9 + 300 * 10 + 800) / 20))

    idle = frame.with_columns(volume=pl.when(pl.int_range(pl.len()) < 20).then(0).otherwise(50))
    assert technicals_daily(idle.lazy(), BENCHMARK).collect()["volume_ratio_20"][20] is None


def test_no_lookahead(bars: pl.DataFrame, technicals: pl.DataFrame):
    cutoff = _session_dates(SESSIONS)[270]  # past the 252-session windows, inside NEWCO's history
    truncated = technicals_daily(bars.filter(pl.col("trade_date") <= cutoff).lazy(), BENCHMARK).collect()
    assert truncated["beta_252"].drop_nulls().len() > 0
    assert_frame_equal(truncated, technicals.filter(pl.col("trade_date") <= cutoff))


# --- same bits as the plain per-symbol formulation (differential) ------------------------------------------
# technicals_daily lays the work out for speed: whole-column passes masked at symbol starts, sub-results
# shared between indicators, per-symbol passes exploded back in row order, final formulas after a caller's
# filter. The reference below writes every indicator as one expression over a symbol's series evaluated
# with .over("symbol") (a window sum being a running sum from the symbol's first bar); on messy bars (gaps in the benchmark, short listings, NaN, NULL, zero prices and
# volumes, flat stretches, shuffled rows) the two must agree bit for bit.


def _reference_technicals(bars: pl.LazyFrame, benchmark: str) -> pl.DataFrame:
    close, high, low, volume = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")

    def simple_return(price: pl.Expr) -> pl.Expr:
        return pl.when(price.shift(1) != 0).then(price / price.shift(1) - 1.0)

    def running_sum(values: pl.Expr, window: int) -> pl.Expr:
        # A window sum is a running sum (the value entering minus the one leaving, from the first bar).
        finite = pl.when(values.is_finite()).then(values).otherwise(0.0)
        return (finite - finite.shift(window, fill_value=0.0)).cum_sum()

    def count(values: pl.Expr, window: int) -> pl.Expr:
        return running_sum(values.is_not_null().cast(pl.Float64), window)

    def window_mean(values: pl.Expr, window: int) -> pl.Expr:
        return pl.when(count(values, window) >= window).then(running_sum(values, window) * (1.0 / window))

    def window_std(values: pl.Expr, window: int, ddof: int) -> pl.Expr:
        total, squares = running_sum(values, window), running_sum(values * values, window)
        moment = (squares - total * total * (1.0 / window)).clip(lower_bound=0.0)
        return pl.when(count(values, window) >= window).then((moment * (1.0 / (window - ddof))).sqrt())

    def seeded(values: pl.Expr, period: int, alpha: float, seed_row: int) -> pl.Expr:
        row = pl.int_range(pl.len())
        # As a rolling mean: NaN when the window holds a NaN.
        mean = (
            pl.when(running_sum(values.is_nan().cast(pl.Float64), period) > 0)
            .then(float("nan"))
            .otherwise(window_mean(values, period))
        )
        seed = pl.when(row == seed_row).then(mean).when(row > seed_row).then(values)
        return seed.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True)

    def window_sum(values: pl.Expr) -> pl.Expr:
        return running_sum(values, 252)

    prev = close.shift(1)
    true_range = pl.when(prev.is_not_null()).then(
        pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    )
    gain = seeded(close.diff().clip(lower_bound=0.0), 14, 1.0 / 14, 14)
    loss = seeded((-close.diff()).clip(lower_bound=0.0), 14, 1.0 / 14, 14)
    log_return = pl.when((close > 0) & (prev > 0)).then((close / prev).log())
    asset, bench = simple_return(close), pl.col("benchmark_return")
    paired = asset.is_not_null() & bench.is_not_null()
    x, y = pl.when(paired).then(bench), pl.when(paired).then(asset)
    pairs, sum_x, sum_y = window_sum(paired.cast(pl.Float64)), window_sum(x), window_sum(y)
    x_moment = window_sum(x * x) - sum_x * sum_x / pairs
    volume_average = window_mean(volume.shift(1).cast(pl.Float64), 20)
    middle, width = window_mean(close, 20), 2.0 * window_std(close, 20, 0)
    indicators = {
        "prev_close": prev,
        "change_pct": pl.when(prev != 0).then((close / prev - 1.0) * 100.0),
        **{f"sma_{n}": window_mean(close, n) for n in (20, 30, 50, 200)},
        "ema_20": seeded(close, 20, 2.0 / 21, 19),
        "bb_upper": middle + width,
        "bb_middle": middle,
        "bb_lower": middle - width,
        "atr_14": seeded(true_range, 14, 1.0 / 14, 14),
        "rsi_14": pl.when(gain + loss == 0).then(0.0).otherwise(100.0 * gain / (gain + loss)),
        "rv_20": window_std(log_return, 20, 1) * math.sqrt(252),
        "high_52w": high.rolling_max(252),
        "low_52w": low.rolling_min(252),
        "beta_252": pl.when((pairs >= 60) & (x_moment > 0)).then(
            (window_sum(x * y) - sum_x * sum_y / pairs) / x_moment
        ),
        "volume_ratio_20": pl.when(volume_average != 0).then(volume / volume_average),
    }
    benchmark_returns = (
        bars.filter(pl.col("symbol") == benchmark)
        .sort("trade_date")
        .select("trade_date", benchmark_return=simple_return(close))
    )
    pivot = (high + low + close) * (1.0 / 3.0)
    return (
        bars.join(benchmark_returns, on="trade_date", how="left")
        .sort("symbol", "trade_date")
        .with_columns(expr.over("symbol").alias(name) for name, expr in indicators.items())
        .with_columns(
            pivot_point=pivot,
            r1=2.0 * pivot - low,
            s1=2.0 * pivot - high,
            r2=pivot + (high - low),
            s2=pivot - (high - low),
            r3=high + 2.0 * (pivot - low),
            s3=low - 2.0 * (high - pivot),
        )
        .select(technicals_columns())
        .with_columns(pl.selectors.float().fill_nan(None))
        .collect()
    )


def _punch_holes(frame: pl.DataFrame, rng: np.random.Generator, **values: float | None) -> pl.DataFrame:
    """Replace about 1% of each named column's values with the given one (NULL, NaN or 0)."""
    return frame.with_columns(
        pl.when(pl.Series(rng.random(frame.height) < 0.01))
        .then(pl.lit(value, dtype=frame.schema[name]))
        .otherwise(pl.col(name))
        .alias(name)
        for name, value in values.items()
    )


def _messy_bars(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = _session_dates(SESSIONS)
    lengths = [SESSIONS, SESSIONS, 1, 2, 14, 15, 16, 20, 21, 61, 251, 252, 253, *rng.integers(1, SESSIONS, 5)]
    frames = []
    for i, length in enumerate(lengths):
        first = 0 if i < 2 else int(rng.integers(0, SESSIONS - length + 1))
        symbol_dates = dates[first : first + length]
        if i == 0:  # the benchmark misses a few sessions
            symbol_dates = [d for d in symbol_dates if rng.random() > 0.05]
        n = len(symbol_dates)
        close = 50.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, n))
        if i % 3 == 1:
            close[n // 3 : n // 3 + 30] = close[n // 3]  # flat stretch
        frame = pl.DataFrame(
            {
                "trade_date": symbol_dates,
                "symbol": BENCHMARK if i == 0 else f"S{i:02d}",
                "open": close,
                "high": close * (1.0 + rng.uniform(0.0, 0.02, n)),
                "low": close * (1.0 - rng.uniform(0.0, 0.02, n)),
                "close": close,
                "volume": rng.integers(0, 3, n) * rng.integers(0, 1_000_000, n),
            },
            schema_overrides={"trade_date": pl.Date, "volume": pl.Int64},
        )
        if i >= 2:
            frame = _punch_holes(frame, rng, high=None, low=float("nan"), close=0.0, volume=None)
        if i >= 2 and i % 4 == 0:
            frame = _punch_holes(frame, rng, close=None, high=float("nan"))
        frames.append(frame)
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("benchmark", [BENCHMARK, "NOT_IN_BARS"])
def test_same_bits_as_per_symbol_formulation(seed: int, benchmark: str):
    bars = _messy_bars(seed)
    expected = _reference_technicals(bars.lazy(), benchmark)
    if benchmark == BENCHMARK:
        assert expected["beta_252"].drop_nulls().len() > 0, "comparison would be vacuous"
    assert_frame_equal(technicals_daily(bars.lazy(), benchmark).collect(), expected, check_exact=True)
    # The nightly keeps one session: the filter pushed into the plan must not change a bit either.
    last = expected["trade_date"].max()
    kept = technicals_daily(bars.lazy(), benchmark).filter(pl.col("trade_date") == last).collect()
    assert_frame_equal(kept, expected.filter(pl.col("trade_date") == last), check_exact=True)


# --- carried forward from the previous session's state -----------------------------------------------------
# A nightly computes its session from the state the previous one left (window sums and tails, the EMA,
# ATR and RSI recursions) instead of re-reading the history; it must give the very rows a pass over the
# whole series gives, bit for bit, on every session.

REAL_BARS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "GSPC_daily_2016-01_2019-07.csv"


def _gspc_bars() -> pl.DataFrame:
    path = REAL_BARS if REAL_BARS.exists() else Path("/work/shared/realdata") / REAL_BARS.name
    return pl.read_csv(path, schema_overrides={"Date": pl.Date, "Volume": pl.Int64}).select(
        trade_date="Date",
        symbol=pl.lit("SPX"),
        open="Open",
        high="High",
        low="Low",
        close="Close",
        volume="Volume",
    )


def _carry_session_by_session(
    bars: pl.DataFrame, benchmark: str, first: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of every session after the first `first` ones, each carried forward from the state the
    session before left (collected in between, as a nightly stores it), and the last state."""
    dates = bars["trade_date"].unique().sort()
    _, state = technicals_with_state(bars.filter(pl.col("trade_date") < dates[first]).lazy(), benchmark)
    state = state.collect()
    rows = []
    for day in dates[first:]:
        today, state = carry_forward(state.lazy(), bars.filter(pl.col("trade_date") == day).lazy(), benchmark)
        rows.append(today.collect())
        state = state.collect()
    return pl.concat(rows).sort("symbol", "trade_date"), state


def test_carried_forward_equals_full_pass_on_real_gspc_bars():
    bars = _gspc_bars()
    assert bars.height == 900
    full = technicals_daily(bars.lazy(), "SPX").collect()
    carried, state = _carry_session_by_session(bars, "SPX", first=1)
    assert carried.height == 899 and carried["beta_252"].drop_nulls().len() > 500, (
        "comparison would be vacuous"
    )
    assert_frame_equal(
        carried, full.filter(pl.col("trade_date") > bars["trade_date"].min()), check_exact=True
    )
    _, expected_state = technicals_with_state(bars.lazy(), "SPX")
    assert_frame_equal(state, expected_state.collect(), check_exact=True)


@pytest.mark.parametrize("seed", range(2))
def test_carried_forward_equals_full_pass_on_messy_bars(seed: int):
    # Several symbols listed and delisted mid-way, a benchmark with gaps, NULL, NaN and zero prices.
    bars = _messy_bars(seed)
    full = technicals_daily(bars.lazy(), BENCHMARK).collect()
    first = 5
    carried, _ = _carry_session_by_session(bars, BENCHMARK, first=first)
    start = bars["trade_date"].unique().sort()[first]
    expected = full.filter(pl.col("trade_date") >= start)
    assert expected["atr_14"].drop_nulls().len() > 0 and expected["beta_252"].drop_nulls().len() > 0
    assert_frame_equal(carried, expected, check_exact=True)


def test_carried_forward_from_the_demo_like_market_state(bars: pl.DataFrame):
    # The benchmark, a high-beta name and a late listing (its first bar arrives in a carried session).
    full = technicals_daily(bars.lazy(), BENCHMARK).collect()
    carried, _ = _carry_session_by_session(bars, BENCHMARK, first=SESSIONS - SHORT_HISTORY - 3)
    expected = full.filter(pl.col("trade_date") >= carried["trade_date"].min())
    assert expected.filter(pl.col("symbol") == "NEWCO")["close"].len() == SHORT_HISTORY
    assert_frame_equal(carried, expected, check_exact=True)

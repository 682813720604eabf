"""signals_daily (transforms/signals.py) and number text (transforms/text.py) on hand-made rows."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from tests import builders
from transforms.signals import SCORE_COLUMNS, SIGNAL_COLUMNS, pcr_zscore, signals_daily
from transforms.text import fmt_fixed, fmt_signed, fmt_value

D = date(2025, 12, 29)
Z_SCHEMA = {"trade_date": pl.Date, "symbol": pl.String, "pcr_oi_z": pl.Float64}
NO_Z = pl.LazyFrame(schema=Z_SCHEMA)


def features(*rows: dict, extra: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
    """Feature rows on D (tests/builders.py), with `extra` columns beyond FEATURE_SCHEMA."""
    return builders.features(*rows, extra=extra, trade_date=D)


def signals(
    *rows: dict, z: list[tuple[str, float | None]] | None = None, extra=None, **kwargs
) -> dict[str, dict]:
    zframe = pl.LazyFrame([(D, s, v) for s, v in z], schema=Z_SCHEMA, orient="row") if z else NO_Z
    out = signals_daily(features(*rows, extra=extra), zframe, **kwargs).collect()
    assert out.columns == SIGNAL_COLUMNS
    return {r["symbol"]: r for r in out.to_dicts()}


# --- components -------------------------------------------------------------------------------------


def test_trend_component_signs_and_null_averages():
    out = signals(
        {"symbol": "ALLUP", "close": 100.0, "sma_30": 90.0, "sma_50": 95.0, "sma_200": 99.99},
        {"symbol": "ALLDN", "close": 100.0, "sma_30": 110.0, "sma_50": 100.01, "sma_200": 150.0},
        {"symbol": "MIXED", "close": 100.0, "sma_30": 90.0, "sma_50": 110.0, "sma_200": None},
        {"symbol": "LONG", "close": 100.0, "sma_200": 80.0},
        {"symbol": "EQUAL", "close": 100.0, "sma_30": 100.0, "sma_50": 100.0, "sma_200": 100.0},
        {"symbol": "NONE", "close": 100.0},
    )
    assert {s: r["score_trend"] for s, r in out.items()} == {
        "ALLUP": 35.0,
        "ALLDN": -35.0,
        "MIXED": 0.0,
        "LONG": 15.0,
        "EQUAL": 0.0,
        "NONE": 0.0,
    }


def test_rsi_component():
    rsi = {"R70": 70.0, "R30": 30.0, "R60": 60.0, "R50": 50.0, "R95": 95.0, "R5": 5.0, "RNULL": None}
    out = signals(*[{"symbol": s, "close": 10.0, "rsi_14": v} for s, v in rsi.items()])
    assert {s: r["score_rsi"] for s, r in out.items()} == pytest.approx(
        {"R70": 15.0, "R30": -15.0, "R60": 7.5, "R50": 0.0, "R95": 15.0, "R5": -15.0, "RNULL": 0.0}
    )


def test_percent_b_component():
    band = {"bb_lower": 90.0, "bb_middle": 100.0, "bb_upper": 110.0}
    closes = {"TOP": 110.0, "BOTTOM": 90.0, "MID": 100.0, "Q3": 105.0, "ABOVE": 120.0, "BELOW": 80.0}
    out = signals(
        *[{"symbol": s, "close": c, **band} for s, c in closes.items()], {"symbol": "NOBAND", "close": 100.0}
    )
    assert {s: r["percent_b"] for s, r in out.items()} == pytest.approx(
        {"TOP": 1.0, "BOTTOM": 0.0, "MID": 0.5, "Q3": 0.75, "ABOVE": 1.5, "BELOW": -0.5, "NOBAND": None}
    )
    assert {s: r["score_percent_b"] for s, r in out.items()} == pytest.approx(
        {"TOP": 10.0, "BOTTOM": -10.0, "MID": 0.0, "Q3": 5.0, "ABOVE": 10.0, "BELOW": -10.0, "NOBAND": 0.0}
    )


def test_flow_and_gamma_components():
    extra = {"block_buy_notional": pl.Float64, "block_sell_notional": pl.Float64, "gamma_flip": pl.Float64}
    out = signals(
        {
            "symbol": "BUY",
            "close": 100.0,
            "block_buy_notional": 3e6,
            "block_sell_notional": 1e6,
            "gamma_flip": 95.0,
        },
        {
            "symbol": "SELL",
            "close": 100.0,
            "block_buy_notional": 0.0,
            "block_sell_notional": 2e6,
            "gamma_flip": 105.0,
        },
        {
            "symbol": "ZERO",
            "close": 100.0,
            "block_buy_notional": 0.0,
            "block_sell_notional": 0.0,
            "gamma_flip": 100.0,
        },
        {"symbol": "NULL", "close": 100.0},
        extra=extra,
    )
    assert {s: (r["score_flow"], r["score_gamma"]) for s, r in out.items()} == {
        "BUY": (5.0, 10.0),
        "SELL": (-10.0, -10.0),
        "ZERO": (0.0, 0.0),
        "NULL": (0.0, 0.0),
    }
    # Without the columns at all (no prints, no gamma flip yet): both 0.
    absent = signals({"symbol": "BARE", "close": 100.0, "rsi_14": 70.0})["BARE"]
    assert (absent["score_flow"], absent["score_gamma"], absent["bias_score"]) == (0.0, 0.0, 15)


def _history(values: dict[str, list[float | None]]) -> pl.LazyFrame:
    rows = [(D + timedelta(days=i), u, v) for u, vs in values.items() for i, v in enumerate(vs)]
    return pl.LazyFrame(
        rows, schema={"trade_date": pl.Date, "underlying": pl.String, "pcr_oi": pl.Float64}, orient="row"
    )


def test_pcr_zscore_against_the_prior_sessions_only():
    prior = [1.0, 2.0] * 10  # mean 1.5, sample std sqrt(20 * 0.25 / 19)
    out = pcr_zscore(_history({"IWM": [*prior, 2.5], "SPY": [0.7] * 21})).collect()
    iwm = out.filter(pl.col("symbol") == "IWM")["pcr_oi_z"].to_list()
    assert iwm[:20] == [None] * 20  # fewer than 20 prior sessions
    assert iwm[20] == pytest.approx((2.5 - 1.5) / math.sqrt(5 / 19))
    # A flat history has no spread: NULL, not inf.
    assert out.filter(pl.col("symbol") == "SPY")["pcr_oi_z"].to_list() == [None] * 21
    assert out.columns == ["trade_date", "symbol", "pcr_oi_z"]


def test_pcr_zscore_window_is_the_last_60_sessions():
    values = [100.0] * 10 + [1.0, 2.0] * 30 + [2.5]  # the 100s are more than 60 sessions back
    z = pcr_zscore(_history({"IWM": values})).collect()["pcr_oi_z"].to_list()
    assert z[-1] == pytest.approx((2.5 - 1.5) / math.sqrt(60 * 0.25 / 59))
    # A shorter configured window: only the last 20 sessions count.
    z20 = pcr_zscore(_history({"IWM": values}), sessions=20).collect()["pcr_oi_z"].to_list()
    assert z20[-1] == pytest.approx((2.5 - 1.5) / math.sqrt(5 / 19))
    # Row 30 (a 1.0) sees rows 10..29 only, the first 20 sessions after the 100s.
    assert z20[30] == pytest.approx((1.0 - 1.5) / math.sqrt(5 / 19))
    assert z20[:20] == [None] * 20 and z20[20] is not None


def test_pcr_component_from_the_zscore():
    prior = [1.0, 2.0] * 10
    history = _history({"UP": [*prior, 2.5], "DOWN": [*prior, 1.25], "SHORT": [*prior[:19], 2.5]})
    z = pcr_zscore(history).filter(pl.col("trade_date") == D + timedelta(days=20))
    z_short = pcr_zscore(history).filter(
        (pl.col("symbol") == "SHORT") & (pl.col("trade_date") == D + timedelta(days=19))
    )
    day = D + timedelta(days=20)
    rows = [{"trade_date": day, "symbol": s, "close": 10.0} for s in ("UP", "DOWN")]
    rows.append({"trade_date": D + timedelta(days=19), "symbol": "SHORT", "close": 10.0})
    out = signals_daily(features(*rows), pl.concat([z, z_short])).collect()
    got = {r["symbol"]: (r["pcr_oi_z"], r["score_pcr"]) for r in out.to_dicts()}
    s = math.sqrt(5 / 19)
    assert got["UP"] == (pytest.approx(1.0 / s), pytest.approx(-(1.0 / s) / 2 * 15))  # -14.62: puts pile up
    assert got["DOWN"] == (pytest.approx(-0.25 / s), pytest.approx((0.25 / s) / 2 * 15))
    assert got["SHORT"] == (None, 0.0)  # 19 prior sessions: NULL z, 0 points
    clipped = signals(
        {"symbol": "BIG", "close": 1.0}, {"symbol": "NEG", "close": 1.0}, z=[("BIG", 3.0), ("NEG", -2.5)]
    )
    assert (clipped["BIG"]["score_pcr"], clipped["NEG"]["score_pcr"]) == (-15.0, 15.0)


# --- bias score and bias --------------------------------------------------------------------------


def test_bias_thresholds():
    out = signals(
        {"symbol": "P20", "close": 100.0, "sma_30": 90.0, "sma_50": 90.0},  # +10 +10
        {"symbol": "M20", "close": 100.0, "sma_30": 110.0, "sma_50": 110.0},  # -10 -10
        {"symbol": "P19", "close": 100.0, "sma_30": 90.0, "rsi_14": 62.0},  # +10 + 9
        {"symbol": "M19", "close": 100.0, "sma_30": 110.0, "rsi_14": 38.0},  # -10 - 9
    )
    assert {s: (r["bias_score"], r["bias"]) for s, r in out.items()} == {
        "P20": (20, "bullish"),
        "M20": (-20, "bearish"),
        "P19": (19, "neutral"),
        "M19": (-19, "neutral"),
    }
    custom = signals(
        {"symbol": "P20", "close": 100.0, "sma_30": 90.0, "sma_50": 90.0},
        {"symbol": "P19", "close": 100.0, "sma_30": 90.0, "rsi_14": 62.0},
        bullish_at=25.0,
        bearish_at=-5.0,
    )
    assert (custom["P20"]["bias"], custom["P19"]["bias"]) == ("neutral", "neutral")
    low = signals({"symbol": "P19", "close": 100.0, "sma_30": 90.0, "rsi_14": 62.0}, bullish_at=19.0)
    assert low["P19"]["bias"] == "bullish"


def test_bias_score_is_the_rounded_clipped_sum_of_its_components():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(60):
        close = float(rng.uniform(90, 110))
        rows.append(
            {
                "symbol": f"S{i:02d}",
                "close": close,
                "sma_30": float(rng.uniform(90, 110)),
                "sma_50": None if i % 3 == 0 else float(rng.uniform(90, 110)),
                "sma_200": float(rng.uniform(90, 110)),
                "rsi_14": float(rng.uniform(0, 100)),
                "bb_lower": close - float(rng.uniform(1, 20)),
                "bb_upper": close + float(rng.uniform(-5, 20)),
                "block_buy_notional": float(rng.uniform(0, 5e6)),
                "block_sell_notional": float(rng.uniform(0, 5e6)),
                "gamma_flip": None if i % 4 == 0 else float(rng.uniform(90, 110)),
            }
        )
    extra = {"block_buy_notional": pl.Float64, "block_sell_notional": pl.Float64, "gamma_flip": pl.Float64}
    z = [(f"S{i:02d}", float(rng.normal(0, 2))) for i in range(0, 60, 2)]
    out = signals(*rows, z=z, extra=extra)
    for symbol, r in out.items():
        total = sum(r[c] for c in SCORE_COLUMNS)
        assert r["bias_score"] == max(-100, min(100, round(total))), symbol
        assert all(-w <= r[c] <= w for c, w in zip(SCORE_COLUMNS, (35, 15, 10, 15, 10, 10), strict=True))
    assert len({r["bias"] for r in out.values()}) == 3  # the sample reaches all three biases


def test_bias_score_clips_at_100_with_heavy_weights():
    out = signals(
        {"symbol": "UP", "close": 100.0, "sma_200": 90.0, "rsi_14": 80.0},
        {"symbol": "DN", "close": 100.0, "sma_200": 110.0, "rsi_14": 20.0},
        weights={"trend_sma_200": 95.0, "rsi": 30.0},
    )
    assert (out["UP"]["score_trend"], out["UP"]["score_rsi"], out["UP"]["bias_score"]) == (95.0, 30.0, 100)
    assert (out["DN"]["score_trend"], out["DN"]["score_rsi"], out["DN"]["bias_score"]) == (-95.0, -30.0, -100)


# --- levels and text ----------------------------------------------------------------------------------


NOTE = {
    "symbol": "IWM",
    "close": 249.80,
    "change_pct": -0.6443,
    "low": 249.35,
    "high": 252.0,
    "bb_upper": 256.96,
    "bb_middle": 250.94,
    "bb_lower": 244.92,
    "r1": 252.08,
    "s1": 249.73,
    "r2": 254.0,
    "s2": 247.0,
    "call_wall": 255.0,
    "put_wall": 240.0,
    "sma_30": 246.33,
    "sma_50": 248.0,
    "sma_200": 224.02,
    "rsi_14": 45.0,
    "pcr_oi": 2.18,
}


def test_support_and_resistance_are_the_nearest_levels_around_close():
    out = signals(
        NOTE,
        {
            "symbol": "A",
            "close": 100.0,
            "s1": 99.0,
            "sma_30": 97.0,
            "sma_50": 103.0,
            "bb_lower": 95.0,
            "put_wall": 98.0,
            "r1": 101.5,
            "bb_upper": 105.0,
            "call_wall": 102.0,
        },
        {"symbol": "EQ", "close": 100.0, "s1": 100.0, "put_wall": 96.0, "r1": 100.0, "call_wall": 104.0},
        {"symbol": "ALLUP", "close": 100.0, "s1": 101.0, "bb_lower": 102.0, "r1": 103.0},
        {"symbol": "NONE", "close": 100.0},
    )
    levels = {s: (r["support"], r["resistance"]) for s, r in out.items()}
    assert levels == {
        "IWM": (249.73, 252.08),  # S1 just below 249.80; R1 below the upper band and the call wall
        "A": (99.0, 101.5),  # SMA 50 (103) is above: it can only be resistance
        "EQ": (96.0, 104.0),  # a level AT the close is neither
        "ALLUP": (None, 103.0),  # S1 and the lower band above the close are not resistance candidates
        "NONE": (None, None),
    }


def test_breakout_and_breakdown_levels():
    out = signals(
        {"symbol": "BELOW", "close": 99.0, "bb_middle": 100.0, "r1": 101.0, "s1": 98.0},
        {"symbol": "ABOVE", "close": 101.5, "bb_middle": 100.0, "r1": 102.0, "s1": 101.0},
        {"symbol": "AT", "close": 100.0, "bb_middle": 100.0, "r1": 102.0, "s1": 98.0},
    )
    assert {s: (r["breakout_level"], r["breakdown_level"]) for s, r in out.items()} == {
        "BELOW": (100.0, 98.0),
        "ABOVE": (102.0, 100.0),
        "AT": (102.0, 98.0),
    }


def test_note_row_text():
    r = signals(NOTE)["IWM"]
    # trend +10 +10 +15, RSI (45-50)/20*15 = -3.75, %B (249.8-244.92)/12.04 = 0.4053 -> -1.894
    assert (r["score_trend"], r["score_rsi"]) == (35.0, -3.75)
    assert r["score_percent_b"] == pytest.approx(((249.8 - 244.92) / (256.96 - 244.92) - 0.5) * 20)
    assert (r["bias_score"], r["bias"]) == (29, "bullish")
    assert r["bull_case"] == "IWM: a move above 250.94 opens 255.00 while support at 249.73 holds."
    assert (
        r["bear_case"]
        == "IWM: a break below 249.73 exposes 240.00; the 200-day MA at 224.02 is the deeper risk line."
    )
    assert r["summary"] == (
        "IWM closed at 249.80 (-0.64%), bias bullish (+29): trend +35, RSI -4, %B -2, "
        "put/call 0, flow 0, gamma 0."
    )
    assert r["pcr_oi"] == 2.18


def test_scenario_targets_fall_back_to_band_then_second_pivot():
    no_wall = signals({**NOTE, "call_wall": None, "put_wall": None})["IWM"]
    assert no_wall["bull_case"] == "IWM: a move above 250.94 opens 256.96 while support at 249.73 holds."
    assert no_wall["bear_case"].startswith("IWM: a break below 249.73 exposes 244.92;")
    bare = signals(
        {
            **NOTE,
            "call_wall": None,
            "put_wall": None,
            "bb_upper": None,
            "bb_lower": None,
            "sma_200": None,
            "sma_30": None,
            "sma_50": None,
            "s1": 251.0,
        }
    )["IWM"]
    # close below the middle band: breakout at the band; breakdown at S1 251 (above close); no support.
    assert bare["bull_case"] == "IWM: a move above 250.94 opens 254.00 while support at n/a holds."
    assert (
        bare["bear_case"]
        == "IWM: a break below 251.00 exposes 247.00; the 200-day MA at n/a is the deeper risk line."
    )


# --- fmt_fixed / fmt_signed / fmt_value ----------------------------------------------------------------


def _fmt(values: list[float | None], expr) -> list[str | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Float64})
    return frame.select(expr(pl.col("v")).alias("t"))["t"].to_list()


def test_fmt_fixed():
    values = [
        249.8,
        -0.6443,
        0.005,
        -0.005,
        0.004,
        1.005,
        0.125,
        0.0,
        -0.0,
        -0.001,
        None,
        1234567.891,
        7.0,
        0.1,
    ]
    assert _fmt(values, fmt_fixed) == [
        "249.80",
        "-0.64",
        "0.01",
        "-0.01",
        "0.00",
        "1.00",
        "0.13",
        "0.00",
        "0.00",
        "0.00",
        None,
        "1234567.89",
        "7.00",
        "0.10",
    ]
    # 1.005 is 1.00499999... in binary: it rounds down, as printf does.
    assert f"{1.005:.2f}" == "1.00" and f"{0.005:.2f}" == "0.01"


def test_fmt_fixed_other_precisions():
    values = [249.8, 2.5, -2.5, 0.4, -0.4, 0.5, None, 3.14159]
    assert _fmt(values, lambda e: fmt_fixed(e, 0)) == ["250", "3", "-3", "0", "0", "1", None, "3"]
    assert _fmt(values, lambda e: fmt_fixed(e, 3)) == [
        "249.800",
        "2.500",
        "-2.500",
        "0.400",
        "-0.400",
        "0.500",
        None,
        "3.142",
    ]
    assert _fmt([0.05, 1.25], lambda e: fmt_fixed(e, 1)) == ["0.1", "1.3"]


def test_fmt_signed():
    values = [0.42, -0.6443, 0.0, None, 12.0, -3.75]
    assert _fmt(values, fmt_signed) == ["+0.42", "-0.64", "0.00", None, "+12.00", "-3.75"]
    assert _fmt(values, lambda e: fmt_signed(e, 0)) == ["+0", "-1", "0", None, "+12", "-4"]


def test_fmt_value_by_dtype():
    frame = pl.DataFrame({"f": [250.935], "i": [10_000], "d": [date(2026, 1, 2)], "s": ["IWM"]})
    out = frame.select(*[fmt_value(c, frame.schema[c]).alias(c) for c in frame.columns]).row(0)
    assert out == ("250.94", "10000", "2026-01-02", "IWM")

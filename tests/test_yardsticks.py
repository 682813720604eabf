"""The per-expiration yardsticks (transforms/yardsticks.py) against hand values."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from tests.builders import silver_chain
from transforms.yardsticks import expiry_yardsticks

D = date(2026, 3, 2)
NEAR, FAR = date(2026, 3, 20), date(2026, 4, 17)


def chain(legs: list[tuple], spot: float = 100.0) -> pl.LazyFrame:
    """legs: (expiration, option_type, strike, mid, iv, delta)."""
    return silver_chain(
        [
            {
                "expiration": e,
                "strike": k,
                "option_type": t,
                "mid": mid,
                "implied_volatility": iv,
                "delta": delta,
            }
            for e, t, k, mid, iv, delta in legs
        ],
        columns=[
            "trade_date",
            "underlying",
            "expiration",
            "strike",
            "option_type",
            "mid",
            "implied_volatility",
            "delta",
            "underlying_price",
        ],
        trade_date=D,
        underlying="XYZ",
        underlying_price=spot,
    )


def forwards(**by_expiry: float) -> pl.LazyFrame:
    days = {"near": NEAR, "far": FAR}
    return pl.DataFrame(
        [
            {"trade_date": D, "underlying": "XYZ", "expiration": days[k], "forward": f}
            for k, f in by_expiry.items()
        ],
        schema={"trade_date": pl.Date, "underlying": pl.String, "expiration": pl.Date, "forward": pl.Float64},
    ).lazy()


# Straddles on NEAR: 95 -> 7.0 + 1.5 = 8.5, 100 -> 3.5 + 2.5 = 6.0, 105 -> 1.2 + 5.4 = 6.6.
STRADDLE_LEGS = [
    (NEAR, "C", 95.0, 7.0, 0.22, 0.80),
    (NEAR, "P", 95.0, 1.5, 0.26, -0.20),
    (NEAR, "C", 100.0, 3.5, 0.20, 0.52),
    (NEAR, "P", 100.0, 2.5, 0.22, -0.48),
    (NEAR, "C", 105.0, 1.2, 0.18, 0.24),
    (NEAR, "P", 105.0, 5.4, 0.20, -0.76),
    (NEAR, "C", 110.0, 0.3, 0.17, 0.08),  # no put at 110: no straddle there
]


def one(frame: pl.LazyFrame, expiration: date) -> dict:
    rows = frame.collect().filter(pl.col("expiration") == expiration).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_expected_move_is_the_straddle_at_the_forward_interpolated_in_strike():
    got = one(expiry_yardsticks(chain(STRADDLE_LEGS), forwards(near=101.0)), NEAR)
    # 6.0 at 100, 6.6 at 105: a fifth of the way, 6.12 dollars; spot 100, so 6.12% of spot.
    assert got["expected_move"] == pytest.approx(6.12)
    assert got["expected_move_pct"] == pytest.approx(6.12)
    # At a listed strike, that strike's straddle; the percent is of the chain's own spot (SPEC 3: the
    # bars' close given beside it is only the fallback for a chain without one).
    spot = pl.LazyFrame({"trade_date": [D], "underlying": ["XYZ"], "spot": [102.0]})
    got = one(expiry_yardsticks(chain(STRADDLE_LEGS), forwards(near=95.0), spot=spot), NEAR)
    assert (got["expected_move"], got["expected_move_pct"]) == (pytest.approx(8.5), pytest.approx(8.5))
    got = one(expiry_yardsticks(chain(STRADDLE_LEGS, spot=None), forwards(near=95.0), spot=spot), NEAR)
    assert got["expected_move_pct"] == pytest.approx(8.5 / 102 * 100)
    # Beyond the strikes quoted on both sides (110 has no put): no expected move.
    assert one(expiry_yardsticks(chain(STRADDLE_LEGS), forwards(near=107.0)), NEAR)["expected_move"] is None


def test_risk_reversal_and_butterfly_per_expiration():
    legs = [
        # NEAR: calls 0.52 / 0.30 / 0.22 delta, puts -0.48 / -0.27 / -0.15.
        (NEAR, "C", 100.0, 3.5, 0.20, 0.52),
        (NEAR, "P", 100.0, 2.5, 0.22, -0.48),
        (NEAR, "C", 105.0, 1.6, 0.18, 0.30),
        (NEAR, "P", 95.0, 1.1, 0.25, -0.27),
        (NEAR, "C", 110.0, 0.6, 0.19, 0.22),
        (NEAR, "P", 90.0, 0.4, 0.28, -0.15),
        # FAR: the 0.25 call sits between two equally near deltas (0.20 and 0.30): the lower strike wins.
        (FAR, "C", 100.0, 5.0, 0.24, 0.53),
        (FAR, "P", 100.0, 4.0, 0.26, -0.47),
        (FAR, "C", 106.0, 2.2, 0.23, 0.30),
        (FAR, "C", 112.0, 1.1, 0.21, 0.20),
        (FAR, "P", 94.0, 1.9, 0.30, -0.25),
        (FAR, "P", 90.0, 1.0, 0.33, -0.17),
    ]
    frame = expiry_yardsticks(chain(legs), forwards(near=100.0, far=102.0))
    near, far = one(frame, NEAR), one(frame, FAR)
    # NEAR: call 0.22 (0.03 off) -> IV 0.19; put -0.27 (0.02 off) -> 0.25; ATM IV at 100 = (0.20 + 0.22) / 2.
    assert near["rr_25d"] == pytest.approx(0.19 - 0.25)
    assert near["bf_25d"] == pytest.approx((0.19 + 0.25) / 2 - 0.21)
    # FAR: call 106 (IV 0.23); put -0.25 exactly (0.30). ATM IV at the forward 102: strike IVs 0.25 at 100
    # and 0.23 at 106 (calls only there), a third of the way: 0.25 - 0.02 / 3.
    assert far["rr_25d"] == pytest.approx(0.23 - 0.30)
    assert far["bf_25d"] == pytest.approx((0.23 + 0.30) / 2 - (0.25 - 0.02 / 3))
    # Straddles: NEAR at 100 only (the forward), FAR at 100 only (below its forward 102): none above it.
    assert math.isclose(near["expected_move"], 6.0) and far["expected_move"] is None

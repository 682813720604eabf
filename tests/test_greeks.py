"""Derived IV and greeks, dealer exposure, the gamma flip, ATM IV, risk reversal and IV rank against
hand-computed values (and brute force where the hand value is a formula)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import CHAIN_MODEL_COLUMNS, SILVER_CHAIN_SCHEMA, osi, silver_chain
from transforms import greeks
from transforms.black_scholes import bs_delta, bs_gamma, bs_price
from transforms.greeks import (
    atm_iv_30,
    atm_iv_by_expiry,
    dealer_exposure,
    derive_iv_and_greeks,
    expiry_exposure,
    gamma_flip,
    iv_rank_percentile,
    rr_25d,
    session_greeks,
)

D0 = date(2025, 6, 2)
# The silver chain's columns up to greeks_derived, and its source file.
SCHEMA = {
    c: SILVER_CHAIN_SCHEMA[c]
    for c in [*CHAIN_MODEL_COLUMNS, "spot_derived", "iv_derived", "greeks_derived", "_source_file"]
}


def day(dte: int) -> date:
    return D0 + timedelta(days=dte)


def chain(legs: list[dict], underlying="XYZ", trade_date=D0, spot=100.0) -> pl.LazyFrame:
    """Silver chain rows. Each leg: kind, dte, strike and any of oi, iv, delta, gamma, mid, spot."""
    return silver_chain(
        [
            {
                "underlying": leg.get("underlying", underlying),
                "option_symbol": osi(
                    trade_date + timedelta(days=leg["dte"]), leg["kind"], leg["strike"], underlying
                ),
                "expiration": trade_date + timedelta(days=leg["dte"]),
                "strike": float(leg["strike"]),
                "option_type": leg["kind"],
                "open_interest": leg.get("oi", 100),
                **dict.fromkeys(("bid", "ask", "last", "mid"), leg.get("mid", 1.0)),
                "implied_volatility": leg.get("iv", 0.2),
                "delta": leg.get("delta", 0.5 if leg["kind"] == "C" else -0.5),
                "gamma": leg.get("gamma", 0.01),
                "underlying_price": leg.get("spot", spot),
                "dte": leg["dte"],
            }
            for leg in legs
        ],
        columns=list(SCHEMA),
        trade_date=trade_date,
        volume=10,
        spot_derived=False,
        iv_derived=False,
        greeks_derived=False,
        _source_file="f.csv",
    )


def spot_frame(spot: float, underlying="XYZ", trade_date=D0) -> pl.LazyFrame:
    return pl.LazyFrame({"trade_date": [trade_date], "underlying": [underlying], "spot": [spot]})


def one_row(frame: pl.LazyFrame, **keys) -> dict:
    rows = frame.collect().filter(**keys).to_dicts() if keys else frame.collect().to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- dealer exposure -------------------------------------------------------------------------------------

# Spot 100 (the chain's; the bars' close of 99 is only a fallback), E1 in 7 days, E2 in 35, so per contract
# GEX = gamma * OI * 100 * 100^2 * 0.01 = gamma * OI * 10,000 and DEX = delta * OI * 10,000:
#   C E1  95  OI 100  gamma .02  delta  .80   GEX +20,000   DEX   800,000
#   C E1 100  OI 200  gamma .05  delta  .50   GEX +100,000  DEX 1,000,000
#   C E2 105  OI 300  gamma .03  delta  .30   GEX +90,000   DEX   900,000
#   C E2 100  OI 100  gamma .01  delta  .55   GEX +10,000   DEX   550,000
#   P E1  95  OI 400  gamma .02  delta -.20   GEX -80,000   DEX  -800,000
#   P E2 100  OI 100  gamma .04  delta -.45   GEX -40,000   DEX  -450,000
#   P E2  95  OI 100  gamma .01  delta -.25   GEX -10,000   DEX  -250,000
# net GEX = 220,000 - 130,000 = 90,000; net DEX = 3,250,000 - 1,500,000 = 1,750,000.
# Call GEX by strike: 95: 20k, 100: 110k, 105: 90k -> call wall 100. Put |GEX|: 95: 90k, 100: 40k -> 95.
# The contract expiring today (huge gamma at 110) counts nowhere.
EXPOSURE_LEGS = [
    {"kind": "C", "dte": 7, "strike": 95, "oi": 100, "gamma": 0.02, "delta": 0.80},
    {"kind": "C", "dte": 7, "strike": 100, "oi": 200, "gamma": 0.05, "delta": 0.50},
    {"kind": "C", "dte": 35, "strike": 105, "oi": 300, "gamma": 0.03, "delta": 0.30},
    {"kind": "C", "dte": 35, "strike": 100, "oi": 100, "gamma": 0.01, "delta": 0.55},
    {"kind": "P", "dte": 7, "strike": 95, "oi": 400, "gamma": 0.02, "delta": -0.20},
    {"kind": "P", "dte": 35, "strike": 100, "oi": 100, "gamma": 0.04, "delta": -0.45},
    {"kind": "P", "dte": 35, "strike": 95, "oi": 100, "gamma": 0.01, "delta": -0.25},
    {"kind": "C", "dte": 0, "strike": 110, "oi": 9_999, "gamma": 0.9, "delta": 0.5},
]


def test_dealer_exposure_hand_values():
    row = one_row(dealer_exposure(chain(EXPOSURE_LEGS, spot=100.0), spot_frame(99.0)))
    assert row["net_gex"] == pytest.approx(90_000.0, rel=1e-12)
    assert row["net_dex"] == pytest.approx(1_750_000.0, rel=1e-12)
    assert (row["call_gex_wall"], row["put_gex_wall"]) == (100.0, 95.0)


def test_dealer_exposure_uses_the_chain_median_spot_without_a_spot_frame():
    row = one_row(dealer_exposure(chain(EXPOSURE_LEGS, spot=99.0)))
    assert row["net_gex"] == pytest.approx(90_000.0 * 0.99**2, rel=1e-12)
    assert row["net_dex"] == pytest.approx(1_750_000.0 * 0.99, rel=1e-12)


def test_dealer_exposure_takes_the_bars_close_where_the_chain_has_no_spot():
    row = one_row(dealer_exposure(chain(EXPOSURE_LEGS, spot=None), spot_frame(100.0)))
    assert row["net_gex"] == pytest.approx(90_000.0, rel=1e-12)
    assert row["net_dex"] == pytest.approx(1_750_000.0, rel=1e-12)


def test_gex_walls_tie_to_the_strike_nearer_spot_and_null_without_puts():
    # Calls at 95 and 105 carry the same GEX; spot 101 is nearer 105.
    legs = [{"kind": "C", "dte": 7, "strike": k, "oi": 100, "gamma": 0.02} for k in (95, 105)]
    row = one_row(dealer_exposure(chain(legs, spot=101.0)))
    assert row["call_gex_wall"] == 105.0 and row["put_gex_wall"] is None


def test_expiry_exposure_per_expiration():
    frame = expiry_exposure(chain(EXPOSURE_LEGS, spot=100.0), spot_frame(99.0)).collect()
    assert frame["expiration"].to_list() == [day(7), day(35)]
    # E1: 20k + 100k - 80k; E2: 90k + 10k - 40k - 10k
    assert frame["net_gex"].to_list() == pytest.approx([40_000.0, 50_000.0], rel=1e-12)
    assert frame["net_dex"].to_list() == pytest.approx([1_000_000.0, 750_000.0], rel=1e-12)
    # All IVs 0.2 -> ATM IV 0.2 on both (spot 100 is a listed strike on both).
    assert frame["atm_iv"].to_list() == pytest.approx([0.2, 0.2], rel=1e-12)


# --- gamma flip ----------------------------------------------------------------------------------------

FLIP_T = 73 / 365  # 0.2 years


def _pair_profile(s: float, oi: float = 1000.0, vol: float = 0.2) -> float:
    """Net GEX of a 110 call and a 90 put (same OI, IV 20%, 73 days, r = 0) at spot s, from the formula
    gamma = phi(d1) / (s vol sqrt t): OI * 100 * s^2 * 0.01 * (gamma_call - gamma_put)."""
    vst = vol * math.sqrt(FLIP_T)

    def phi(k: float) -> float:
        d1 = (math.log(s / k) + 0.5 * vol * vol * FLIP_T) / vst
        return math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)

    return oi * s * s * (phi(110.0) - phi(90.0)) / (s * vst)


PAIR = [
    {"kind": "C", "dte": 73, "strike": 110, "oi": 1000, "iv": 0.2},
    {"kind": "P", "dte": 73, "strike": 90, "oi": 1000, "iv": 0.2},
]


def test_gamma_flip_of_a_call_and_put_pair_by_hand():
    # Equal OI and IV: the gammas match where d1(110) = -d1(90), i.e. ln(S^2 / 9900) = -2 * v^2/2 * t:
    # S = sqrt(9900) * exp(-0.02 * 0.2) = 99.1015... It lies between grid levels 99.0 and 99.5.
    exact = math.sqrt(9900.0) * math.exp(-0.004)
    assert 99.0 < exact < 99.5
    lo, hi = _pair_profile(99.0), _pair_profile(99.5)
    assert lo < 0 < hi
    interpolated = 99.0 + 0.5 * lo / (lo - hi)
    flip = one_row(gamma_flip(chain(PAIR), rate=0.0))["gamma_flip"]
    assert flip == pytest.approx(interpolated, rel=1e-10)
    assert flip == pytest.approx(exact, abs=0.01)
    fine = one_row(gamma_flip(chain(PAIR), rate=0.0, grid_points=4001))["gamma_flip"]
    assert fine == pytest.approx(exact, abs=1e-4)


def test_gamma_flip_is_null_without_a_sign_change_or_usable_contracts():
    calls_only = [{"kind": "C", "dte": 30, "strike": k, "oi": 500, "iv": 0.3} for k in (90, 100, 110)]
    no_iv = [{"kind": "P", "dte": 30, "strike": 100, "oi": 500, "iv": None}]
    expiring = [{"kind": "P", "dte": 0, "strike": 100, "oi": 500}, {"kind": "C", "dte": 0, "strike": 90}]
    chains = pl.concat([chain(calls_only, "CALLS"), chain(no_iv, "NOIV"), chain(expiring, "TODAY")])
    frame = gamma_flip(chains, rate=0.04).collect()
    assert frame["underlying"].to_list() == ["CALLS", "NOIV", "TODAY"]
    assert frame["gamma_flip"].to_list() == [None, None, None]


def test_nearest_crossing_rules():
    levels = np.tile(np.arange(90.0, 111.0, 5.0), (7, 1))  # 90 95 100 105 110, spot 100
    profile = np.array(
        [
            [-1.0, 1.0, 1.0, 3.0, -1.0],  # crossings at 92.5 and 108.75: 92.5 is nearer
            [-2.0, -2.0, -1.0, 3.0, 3.0],  # one crossing at 101.25
            [1.0, 0.0, 1.0, 1.0, 1.0],  # touches 0 at 95 without changing sign: no crossing
            [1.0, 2.0, 3.0, 2.0, 1.0],  # no crossing
            [1.0, -1.0, -1.0, -1.0, 1.0],  # 92.5 and 107.5 equally near: the lower one
            [3.0, 0.0, -1.0, -1.0, -1.0],  # through an exact 0: between 90 and 100, 3/4 of the way
            [5.0, 1.0, 1e-12, -1e-12, 0.0],  # a positive profile decaying into dust: no crossing
        ]
    )
    flips = greeks._nearest_crossing(profile, levels, np.full(7, 100.0))
    np.testing.assert_allclose(flips[[0, 1, 4, 5]], [92.5, 101.25, 92.5, 97.5], rtol=0, atol=1e-12)
    assert np.isnan(flips[[2, 3, 6]]).all()


def _brute_force_flip(legs, spot, rate, grid_points=greeks.FLIP_GRID_POINTS):
    levels = spot * np.linspace(0.8, 1.2, grid_points)
    profile = np.zeros(grid_points)
    for leg in legs:
        if leg["dte"] <= 0:
            continue
        sign = 1.0 if leg["kind"] == "C" else -1.0
        gamma = bs_gamma(levels, leg["strike"], leg["dte"] / 365, rate, leg["iv"])
        profile += sign * leg["oi"] * 100 * levels**2 * 0.01 * gamma
    flip = greeks._nearest_crossing(profile[None, :], levels[None, :], np.array([spot]))[0]
    return None if np.isnan(flip) else flip


leg_strategy = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["C", "P"]),
        "dte": st.integers(0, 400),
        "strike": st.sampled_from([80.0, 90.0, 95.0, 100.0, 105.0, 110.0, 125.0]),
        "oi": st.integers(1, 5000),
        "iv": st.floats(0.05, 1.5),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sessions=st.lists(st.lists(leg_strategy, min_size=1, max_size=6), min_size=1, max_size=4),
    block=st.integers(1, 5),
    reversed_rows=st.booleans(),
)
def test_gamma_flip_matches_brute_force_across_blocks(sessions, block, reversed_rows, monkeypatch):
    # Tiny blocks make sessions straddle block boundaries; reversed, the rows do not come in session order.
    monkeypatch.setattr(greeks, "_FLIP_BLOCK", block)
    chains = pl.concat([chain(legs, underlying=f"U{i}", spot=100.0 + i) for i, legs in enumerate(sessions)])
    if reversed_rows:
        chains = chains.reverse()
    frame = gamma_flip(chains, rate=0.03).collect()
    assert frame["underlying"].to_list() == [f"U{i}" for i in range(len(sessions))]
    for i, legs in enumerate(sessions):
        expected = _brute_force_flip(legs, 100.0 + i, 0.03)
        got = frame["gamma_flip"][i]
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, rel=1e-9)


# --- IV and greeks derivation -------------------------------------------------------------------------


def test_iv_inversion_on_the_parity_forward_recovers_a_smile_with_dividends():
    # A market with a 2% dividend yield the vendor does not state, an IV smile per expiration (one IV per
    # strike, as put-call parity implies), and no IV or greeks given: the forward comes out of put-call
    # parity, and Black-76 on it recovers every IV and the greeks with respect to spot.
    spot, rate, q = 100.0, 0.04, 0.02
    strikes = 100.0 * np.linspace(0.7, 1.3, 13)
    dtes = [2, 7, 30, 91, 365, 730]
    legs = []
    for dte in dtes:
        t = dte / 365
        forward = spot * math.exp((rate - q) * t)
        for k in strikes:
            vol = 0.2 + 0.4 * math.log(k / forward) ** 2
            for kind in ("C", "P"):
                legs.append(
                    {
                        "kind": kind,
                        "dte": dte,
                        "strike": float(k),
                        "iv": None,
                        "delta": None,
                        "gamma": None,
                        "mid": float(bs_price(spot, k, t, rate, vol, kind == "C", q)),
                        "true_iv": vol,
                    }
                )
    frame = derive_iv_and_greeks(chain(legs, spot=spot), rate).collect()
    assert frame.columns == [*SCHEMA, "forward", "forward_source", "iv_status"]
    forwards = expiry_exposure(chain(legs, spot=spot), rate=rate).collect()
    np.testing.assert_allclose(
        forwards["forward"].to_numpy(), [spot * math.exp((rate - q) * d / 365) for d in dtes], rtol=1e-12
    )
    assert set(forwards["forward_source"]) == {"parity"}
    iv = frame["implied_volatility"].to_numpy()
    is_call = (frame["option_type"] == "C").to_numpy()
    t = frame["dte"].to_numpy() / 365
    strike = frame["strike"].to_numpy()
    true_iv = np.array([leg["true_iv"] for leg in legs])
    derived = frame["iv_derived"].to_numpy()
    np.testing.assert_array_equal(derived, ~np.isnan(iv))
    np.testing.assert_array_equal(frame["iv_status"].to_numpy()[derived], "derived")
    # Where the out-of-the-money price pins the volatility down (a cent per vol point), IV matches, and
    # both contracts of the strike get it (the in-the-money one too).
    fwd = spot * np.exp((rate - q) * t)
    otm_call = strike >= fwd
    vega_ok = (
        bs_price(spot, strike, t, rate, true_iv + 0.01, otm_call, q)
        - bs_price(spot, strike, t, rate, true_iv, otm_call, q)
        >= 0.01
    )
    assert vega_ok.sum() > 60 and (derived[vega_ok]).all()
    np.testing.assert_allclose(iv[vega_ok], true_iv[vega_ok], rtol=1e-6)
    # Greeks with respect to spot, from the same model (q implied by the forward).
    assert (frame["greeks_derived"].to_numpy() == derived).all()
    np.testing.assert_allclose(
        frame["delta"].to_numpy()[vega_ok],
        bs_delta(spot, strike, t, rate, true_iv, is_call, q)[vega_ok],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        frame["gamma"].to_numpy()[vega_ok],
        bs_gamma(spot, strike, t, rate, true_iv, True, q)[vega_ok],
        rtol=1e-5,
    )


def test_vendor_iv_of_zero_is_missing_and_the_in_the_money_side_takes_the_strikes_iv():
    spot, rate = 100.0, 0.04
    t = 30 / 365
    put_90 = float(bs_price(spot, 90, t, rate, 0.3, False))
    call_90 = float(bs_price(spot, 90, t, rate, 0.3, True))
    legs = [
        # A vendor IV of 0 is "not computed": derived from the strike's out-of-the-money put.
        {"kind": "C", "dte": 30, "strike": 90, "iv": 0.0, "delta": None, "gamma": None, "mid": call_90},
        {
            "kind": "P",
            "dte": 30,
            "strike": 90,
            "iv": float("nan"),
            "delta": None,
            "gamma": None,
            "mid": put_90,
        },
        # An out-of-the-money put without a bid: nothing to invert at 80 but the call's own price.
        {"kind": "P", "dte": 30, "strike": 80, "iv": -1.0, "delta": None, "gamma": None, "mid": 0.0},
        {
            "kind": "C",
            "dte": 30,
            "strike": 80,
            "iv": None,
            "delta": None,
            "gamma": None,
            "mid": float(bs_price(spot, 80, t, rate, 0.4, True)),
        },
    ]
    rows = derive_iv_and_greeks(chain(legs, spot=spot), rate).collect().to_dicts()
    assert [r["iv_status"] for r in rows] == ["derived", "derived", "no_bid", "derived_itm"]
    assert rows[0]["implied_volatility"] == pytest.approx(0.3, rel=1e-7)
    assert rows[1]["implied_volatility"] == pytest.approx(0.3, rel=1e-7)
    assert rows[2]["implied_volatility"] is None and rows[2]["gamma"] is None
    assert rows[3]["implied_volatility"] == pytest.approx(0.4, rel=1e-6)


def test_given_values_are_kept_and_unsolvable_rows_stay_null():
    spot, rate = 100.0, 0.04
    legs = [
        # complete: untouched
        {"kind": "C", "dte": 30, "strike": 100, "iv": 0.25, "delta": 0.55, "gamma": 0.03, "mid": 3.0},
        # IV given, greeks missing: greeks from the given IV
        {"kind": "P", "dte": 30, "strike": 95, "iv": 0.3, "delta": None, "gamma": None, "mid": 1.5},
        # only gamma missing: delta kept as quoted
        {"kind": "C", "dte": 30, "strike": 105, "iv": 0.2, "delta": 0.31, "gamma": None, "mid": 1.0},
        # a call quoted below intrinsic (spot 100, strike 80): no IV, so no greeks either
        {"kind": "C", "dte": 30, "strike": 80, "iv": None, "delta": None, "gamma": None, "mid": 19.0},
        # a zero mid: no IV
        {"kind": "P", "dte": 30, "strike": 70, "iv": None, "delta": None, "gamma": None, "mid": 0.0},
        # expiring today: nothing derived
        {"kind": "C", "dte": 0, "strike": 100, "iv": None, "delta": None, "gamma": None, "mid": 0.5},
    ]
    rows = derive_iv_and_greeks(chain(legs, spot=spot), rate).collect().to_dicts()
    assert [
        (r["implied_volatility"], r["delta"], r["gamma"], r["iv_derived"], r["greeks_derived"])
        for r in (rows[0], rows[3], rows[4], rows[5])
    ] == [
        (0.25, 0.55, 0.03, False, False),
        (None, None, None, False, False),
        (None, None, None, False, False),
        (None, None, None, False, False),
    ]
    t = 30 / 365
    assert rows[1]["implied_volatility"] == 0.3 and not rows[1]["iv_derived"] and rows[1]["greeks_derived"]
    assert rows[1]["delta"] == pytest.approx(float(bs_delta(spot, 95, t, rate, 0.3, False)), rel=1e-12)
    assert rows[1]["gamma"] == pytest.approx(float(bs_gamma(spot, 95, t, rate, 0.3)), rel=1e-12)
    assert rows[2]["delta"] == 0.31 and rows[2]["greeks_derived"]
    assert [r["iv_status"] for r in rows] == [
        "vendor",
        "vendor",
        "vendor",
        "below_intrinsic",
        "no_bid",
        "expired",
    ]
    assert rows[2]["gamma"] == pytest.approx(float(bs_gamma(spot, 105, t, rate, 0.2)), rel=1e-12)


def test_derivation_adds_missing_flag_columns_after_the_others():
    legs = [{"kind": "C", "dte": 30, "strike": 100, "iv": None, "delta": None, "gamma": None, "mid": 2.5}]
    bare = chain(legs).drop("iv_derived", "greeks_derived")
    frame = derive_iv_and_greeks(bare, 0.04).collect()
    assert frame.columns == [c for c in SCHEMA if c not in ("iv_derived", "greeks_derived")] + [
        "iv_derived",
        "greeks_derived",
        "forward",
        "forward_source",
        "iv_status",
    ]
    assert frame["iv_derived"].to_list() == [True] and frame["greeks_derived"].to_list() == [True]


# --- ATM IV -------------------------------------------------------------------------------------------

# Spot 101 between strikes 100 and 102 (halfway). Strike IV = mean of call and put IV:
#   20 days: 100: (0.20 + 0.22)/2 = 0.21, 102: (0.18 + 0.20)/2 = 0.19 -> ATM 0.20
#   44 days: 100: (0.25 + 0.27)/2 = 0.26, 102: (0.23 + 0.25)/2 = 0.24 -> ATM 0.25
# 30 days in total variance (day units): 0.2^2*20 = 0.8, 0.25^2*44 = 2.75,
#   0.8 + (2.75 - 0.8) * (30 - 20) / (44 - 20) = 1.6125 -> sqrt(1.6125 / 30) = sqrt(0.05375)
ATM_IVS = {
    20: {100: (0.20, 0.22), 102: (0.18, 0.20), 98: (0.5, 0.5)},
    44: {100: (0.25, 0.27), 102: (0.23, 0.25), 104: (0.9, 0.9)},
}
ATM_LEGS = [
    {"kind": kind, "dte": dte, "strike": k, "iv": ivs[0] if kind == "C" else ivs[1]}
    for dte, by_strike in ATM_IVS.items()
    for k, ivs in by_strike.items()
    for kind in ("C", "P")
]


def test_atm_iv_by_expiry_interpolates_between_the_bracketing_strikes():
    frame = atm_iv_by_expiry(chain(ATM_LEGS, spot=101.0)).collect()
    assert frame["dte"].to_list() == [20, 44]
    assert frame["atm_iv"].to_list() == pytest.approx([0.20, 0.25], rel=1e-12)
    # At a listed strike the strike's own IV; a quarter of the way from 100 to 102 a quarter of the gap.
    assert atm_iv_by_expiry(chain(ATM_LEGS, spot=102.0)).collect()["atm_iv"].to_list() == pytest.approx(
        [0.19, 0.24], rel=1e-12
    )
    assert atm_iv_by_expiry(chain(ATM_LEGS, spot=100.5)).collect()["atm_iv"].to_list() == pytest.approx(
        [0.205, 0.255], rel=1e-12
    )


def test_atm_iv_uses_the_side_quoted_and_is_null_outside_the_strikes():
    legs = [
        {"kind": "C", "dte": 20, "strike": 100, "iv": 0.3},
        {"kind": "P", "dte": 20, "strike": 100, "iv": None},
        {"kind": "C", "dte": 20, "strike": 110, "iv": 0.2},
        {"kind": "P", "dte": 20, "strike": 110, "iv": 0.4},
    ]
    assert one_row(atm_iv_by_expiry(chain(legs, spot=105.0)))["atm_iv"] == pytest.approx(0.3, rel=1e-12)
    assert one_row(atm_iv_by_expiry(chain(legs, spot=111.0)))["atm_iv"] is None


def test_atm_iv_30_in_total_variance():
    row = one_row(atm_iv_30(atm_iv_by_expiry(chain(ATM_LEGS, spot=101.0))))
    assert row["atm_iv_30"] == pytest.approx(math.sqrt(0.05375), rel=1e-12)


def expiry_ivs(pairs) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "trade_date": [D0] * len(pairs),
            "underlying": ["XYZ"] * len(pairs),
            "expiration": [day(d) for d, _ in pairs],
            "dte": [d for d, _ in pairs],
            "atm_iv": [v for _, v in pairs],
        },
        schema_overrides={"dte": pl.Int64, "atm_iv": pl.Float64},
    )


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(7, 0.3), (14, 0.25)], 0.25),  # all before 30 days: flat from the latest
        ([(45, 0.22), (90, 0.3)], 0.22),  # all after: flat from the earliest
        ([(9, 0.4), (30, 0.21), (60, 0.5)], 0.21),  # 30 days listed
        # 20 days has no ATM IV: 10 and 40 bracket 30, two thirds of the way: 0.9 + (1.6 - 0.9) * 2/3
        ([(10, 0.3), (20, None), (40, 0.2)], math.sqrt((0.09 * 10 + (0.04 * 40 - 0.09 * 10) * 2 / 3) / 30)),
    ],
)
def test_atm_iv_30_edges(pairs, expected):
    assert one_row(atm_iv_30(expiry_ivs(pairs)))["atm_iv_30"] == pytest.approx(expected, rel=1e-12)


# --- 25-delta risk reversal ------------------------------------------------------------------------------


def test_rr_25d_picks_the_contracts_nearest_25_delta_on_the_expiry_nearest_30_days():
    decoys = [{"kind": "C", "dte": d, "strike": 110, "delta": 0.25, "iv": 0.9} for d in (9, 60)] + [
        {"kind": "P", "dte": d, "strike": 90, "delta": -0.25, "iv": 0.01} for d in (9, 60)
    ]
    on_28 = [
        {"kind": "C", "dte": 28, "strike": 102, "delta": 0.40, "iv": 0.20},
        {"kind": "C", "dte": 28, "strike": 106, "delta": 0.27, "iv": 0.19},  # nearest +0.25
        {"kind": "C", "dte": 28, "strike": 108, "delta": 0.22, "iv": 0.185},
        {"kind": "P", "dte": 28, "strike": 98, "delta": -0.35, "iv": 0.24},
        {"kind": "P", "dte": 28, "strike": 94, "delta": -0.24, "iv": 0.26},  # nearest -0.25
        {"kind": "P", "dte": 28, "strike": 90, "delta": -0.15, "iv": 0.29},
        {"kind": "C", "dte": 28, "strike": 104, "delta": None, "iv": 0.5},
    ]
    expired = [{"kind": "C", "dte": 0, "strike": 100, "delta": 0.25, "iv": 2.0}]
    row = one_row(rr_25d(chain(decoys + on_28 + expired)))
    assert row["rr_25d"] == pytest.approx(0.19 - 0.26, rel=1e-12)


def test_rr_25d_ties_and_one_sided_expirations():
    legs = [
        # 30 days has calls only, so it cannot give a risk reversal
        {"kind": "C", "dte": 30, "strike": 105, "delta": 0.25, "iv": 0.9},
        # 25 and 35 days are equally near 30: the earlier wins
        {"kind": "C", "dte": 25, "strike": 105, "delta": 0.25, "iv": 0.20},
        {"kind": "P", "dte": 25, "strike": 95, "delta": -0.25, "iv": 0.25},
        {"kind": "C", "dte": 35, "strike": 105, "delta": 0.25, "iv": 0.5},
        {"kind": "P", "dte": 35, "strike": 95, "delta": -0.25, "iv": 0.1},
        # equally near -0.25: the lower strike
        {"kind": "P", "dte": 25, "strike": 93, "delta": -0.20, "iv": 0.27},
        {"kind": "P", "dte": 25, "strike": 97, "delta": -0.30, "iv": 0.23},
    ]
    assert one_row(rr_25d(chain(legs)))["rr_25d"] == pytest.approx(0.20 - 0.25, rel=1e-12)
    tied = [leg for leg in legs if leg.get("strike") != 95]
    assert one_row(rr_25d(chain(tied)))["rr_25d"] == pytest.approx(0.20 - 0.27, rel=1e-12)


# --- IV rank and percentile -------------------------------------------------------------------------------


def history(values, underlying="XYZ", start=D0) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "trade_date": [start + timedelta(days=i) for i in range(len(values))],
            "underlying": [underlying] * len(values),
            "atm_iv_30": values,
        },
        schema_overrides={"atm_iv_30": pl.Float64},
    )


def test_iv_rank_and_percentile_hand_values_and_the_20_session_rule():
    values = [0.20 + 0.01 * i for i in range(19)] + [0.25, 0.30]  # 0.20 .. 0.38, then 0.25, 0.30
    frame = iv_rank_percentile(history(values)).collect()
    assert frame["iv_rank_252"][:19].is_null().all() and frame["iv_percentile_252"][:19].is_null().all()
    # Session 20: x = 0.25 in [0.20, 0.38]; earlier sessions below it: 0.20 .. 0.24 = 5 of 19.
    assert frame["iv_rank_252"][19] == pytest.approx(0.05 / 0.18, rel=1e-9)
    assert frame["iv_percentile_252"][19] == pytest.approx(5 / 19, rel=1e-12)
    # Session 21: x = 0.30; below it: 0.20 .. 0.29 (10) and the 0.25 just before = 11 of 20.
    assert frame["iv_rank_252"][20] == pytest.approx(0.10 / 0.18, rel=1e-9)
    assert frame["iv_percentile_252"][20] == pytest.approx(11 / 20, rel=1e-12)


def test_iv_rank_window_is_252_sessions_and_skips_null_sessions():
    # Session 0 is an extreme 0.50; sessions 1.. rise from 0.2001 by 0.0001. Session 251 still sees
    # session 0 in its 252-session window, session 252 no longer does.
    values = [0.50] + [0.20 + 0.0001 * i for i in range(1, 260)]
    frame = iv_rank_percentile(history(values)).collect()
    x251 = 0.20 + 0.0251
    assert frame["iv_rank_252"][251] == pytest.approx((x251 - 0.2001) / (0.50 - 0.2001), rel=1e-9)
    assert frame["iv_percentile_252"][251] == pytest.approx(250 / 251, rel=1e-12)
    assert frame["iv_rank_252"][252] == pytest.approx(1.0, rel=1e-12)
    assert frame["iv_percentile_252"][252] == pytest.approx(1.0, rel=1e-12)
    # A NULL session is neither ranked nor counted: 19 values and a NULL are still too few.
    gappy = [0.2 + 0.01 * i for i in range(10)] + [None] + [0.3 + 0.01 * i for i in range(9)] + [0.25]
    frame = iv_rank_percentile(history(gappy)).collect()
    assert frame["iv_rank_252"][:20].is_null().all()
    # The 21st row is the 20th value: below 0.25 are 0.20 .. 0.24 = 5 of 19 earlier values.
    assert frame["iv_percentile_252"][20] == pytest.approx(5 / 19, rel=1e-12)


def test_iv_rank_has_no_lookahead_and_keeps_underlyings_apart():
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0.1, 0.6, 40).tolist(), rng.uniform(0.3, 0.9, 40).tolist()
    # Sorted by a total order: with trade_date alone the two underlyings of a date come in either order.
    both = pl.concat([history(a, "AAA"), history(b, "BBB")]).sort("trade_date", "underlying")
    full = iv_rank_percentile(both).collect()
    cut = D0 + timedelta(days=29)
    early = iv_rank_percentile(both.filter(pl.col("trade_date") <= cut)).collect()
    assert early.equals(full.filter(pl.col("trade_date") <= cut))
    alone = iv_rank_percentile(history(b, "BBB")).collect()
    assert alone.equals(full.filter(pl.col("underlying") == "BBB"))


# --- all together -------------------------------------------------------------------------------------


def test_session_greeks_joins_the_session_measures():
    chains = pl.concat([chain(PAIR, "PAIR"), chain(EXPOSURE_LEGS, "EXPO", spot=100.0)])
    frame = session_greeks(chains, rate=0.0).collect()
    assert frame.columns == [
        "trade_date",
        "underlying",
        "net_gex",
        "net_dex",
        "call_gex_wall",
        "put_gex_wall",
        "gamma_flip",
        "atm_iv_30",
        "rr_25d",
    ]
    expo = frame.row(by_predicate=pl.col("underlying") == "EXPO", named=True)
    assert expo["net_gex"] == pytest.approx(90_000.0) and expo["atm_iv_30"] == pytest.approx(0.2)
    pair = frame.row(by_predicate=pl.col("underlying") == "PAIR", named=True)
    assert pair["gamma_flip"] == pytest.approx(math.sqrt(9900.0) * math.exp(-0.004), abs=0.01)


def test_empty_chains_and_sessions_without_spot():
    empty = chain(PAIR).filter(pl.lit(False))
    assert session_greeks(empty, rate=0.04).collect().height == 0
    assert derive_iv_and_greeks(empty, 0.04).collect().columns == [
        *SCHEMA,
        "forward",
        "forward_source",
        "iv_status",
    ]
    assert expiry_exposure(empty).collect().height == 0
    no_spot = chain(PAIR, "NOSPOT", spot=None)
    row = one_row(session_greeks(pl.concat([no_spot, chain(PAIR)]), rate=0.0), underlying="NOSPOT")
    assert row["gamma_flip"] is None and row["net_gex"] is None and row["atm_iv_30"] is None

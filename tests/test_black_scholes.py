"""Black-Scholes pricing, greeks and implied-volatility inversion against textbook values and identities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.black_scholes import IV_UPPER, bs_delta, bs_gamma, bs_price, bs_vega, implied_vol


def test_textbook_at_the_money_call_and_put():
    # S=100, K=100, T=1, r=5%, sigma=20%: d1 = 0.35, d2 = 0.15 (Hull; every BS calculator).
    assert bs_price(100.0, 100.0, 1.0, 0.05, 0.2, True) == pytest.approx(10.4506, abs=5e-5)
    assert bs_price(100.0, 100.0, 1.0, 0.05, 0.2, False) == pytest.approx(5.5735, abs=5e-5)
    # N(0.35) = 0.636831; phi(0.35) = 0.375240
    assert bs_delta(100.0, 100.0, 1.0, 0.05, 0.2, True) == pytest.approx(0.636831, abs=1e-6)
    assert bs_delta(100.0, 100.0, 1.0, 0.05, 0.2, False) == pytest.approx(0.636831 - 1.0, abs=1e-6)
    assert bs_gamma(100.0, 100.0, 1.0, 0.05, 0.2) == pytest.approx(0.375240 / (100 * 0.2), abs=1e-6)
    assert bs_vega(100.0, 100.0, 1.0, 0.05, 0.2) == pytest.approx(37.5240, abs=1e-4)


def test_hull_examples():
    # Hull, Options Futures and Other Derivatives, example 15.6: S=42, K=40, r=10%, sigma=20%, T=0.5.
    assert bs_price(42.0, 40.0, 0.5, 0.10, 0.2, "C") == pytest.approx(4.76, abs=5e-3)
    assert bs_price(42.0, 40.0, 0.5, 0.10, 0.2, "P") == pytest.approx(0.81, abs=5e-3)
    # Hull example 17.1 (index option with dividend yield): S=930, K=900, r=8%, q=3%, sigma=20%, T=2/12.
    assert bs_price(930.0, 900.0, 2 / 12, 0.08, 0.2, True, q=0.03) == pytest.approx(51.83, abs=5e-3)


def test_vectorised_over_arrays_and_type_spellings():
    strikes = np.array([90.0, 100.0, 110.0])
    as_bool = bs_price(100.0, strikes, 0.5, 0.03, 0.25, np.array([True, False, True]))
    as_text = bs_price(100.0, strikes, 0.5, 0.03, 0.25, np.array(["C", "P", "c"]))
    one_by_one = [
        bs_price(100.0, k, 0.5, 0.03, 0.25, c) for k, c in zip(strikes, [True, False, True], strict=False)
    ]
    np.testing.assert_allclose(as_bool, one_by_one, rtol=0, atol=1e-12)
    np.testing.assert_allclose(as_text, as_bool, rtol=0, atol=0)


@pytest.mark.parametrize("q", [0.0, 0.02])
def test_put_call_parity(q):
    spot, rate = 250.0, 0.04
    strikes = np.linspace(150, 350, 41)
    t = np.array([[2 / 365], [30 / 365], [0.5], [2.0]])
    vol = np.array([[0.1], [0.35], [0.8], [0.2]])
    call = bs_price(spot, strikes, t, rate, vol, True, q)
    put = bs_price(spot, strikes, t, rate, vol, False, q)
    parity = spot * np.exp(-q * t) - strikes * np.exp(-rate * t)
    np.testing.assert_allclose(call - put, parity, rtol=0, atol=1e-9)
    # Delta parity: call delta - put delta = e^{-qT}
    dc = bs_delta(spot, strikes, t, rate, vol, True, q)
    dp = bs_delta(spot, strikes, t, rate, vol, False, q)
    np.testing.assert_allclose(dc - dp, np.broadcast_to(np.exp(-q * t), dc.shape), rtol=0, atol=1e-12)


def test_greeks_match_finite_differences():
    spot, strikes, t, rate, vol = 100.0, np.array([80.0, 100.0, 125.0]), 0.75, 0.03, 0.3
    h = 1e-3
    for is_call in (True, False):
        up = bs_price(spot + h, strikes, t, rate, vol, is_call)
        down = bs_price(spot - h, strikes, t, rate, vol, is_call)
        mid = bs_price(spot, strikes, t, rate, vol, is_call)
        np.testing.assert_allclose(
            bs_delta(spot, strikes, t, rate, vol, is_call), (up - down) / (2 * h), atol=1e-7
        )
        np.testing.assert_allclose(
            bs_gamma(spot, strikes, t, rate, vol), (up - 2 * mid + down) / h**2, atol=1e-4
        )
        v_up = bs_price(spot, strikes, t, rate, vol + h, is_call)
        v_down = bs_price(spot, strikes, t, rate, vol - h, is_call)
        np.testing.assert_allclose(bs_vega(spot, strikes, t, rate, vol), (v_up - v_down) / (2 * h), rtol=1e-5)


def test_expired_and_zero_vol_contracts_are_intrinsic():
    strikes = np.array([90.0, 110.0, 90.0, 110.0])
    calls = np.array([True, True, False, False])
    np.testing.assert_array_equal(bs_price(100.0, strikes, 0.0, 0.05, 0.2, calls), [10.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(bs_price(100.0, strikes, -0.01, 0.05, 0.2, calls), [10.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(bs_delta(100.0, strikes, 0.0, 0.05, 0.2, calls), [1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(bs_gamma(100.0, strikes, 0.0, 0.05, 0.2), [0.0] * 4)
    np.testing.assert_array_equal(bs_vega(100.0, strikes, 0.0, 0.05, 0.2), [0.0] * 4)
    # Zero vol before expiry: the discounted forward payoff, 100 - 110 e^{-0.05} = -4.6353 -> put 4.6353.
    zero_vol = bs_price(100.0, 110.0, 1.0, 0.05, 0.0, [True, False])
    np.testing.assert_allclose(zero_vol, [0.0, 110 * np.exp(-0.05) - 100.0], atol=1e-12)
    np.testing.assert_array_equal(bs_delta(100.0, 110.0, 1.0, 0.05, 0.0, [True, False]), [0.0, -1.0])


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("vol", [0.08, 0.25, 0.6, 1.5])
def test_implied_vol_round_trips_prices(is_call, vol):
    spot, rate = 100.0, 0.04
    strikes = spot / np.linspace(0.7, 1.3, 25)  # moneyness S/K from 0.7 to 1.3
    t = np.array([2, 7, 30, 91, 182, 365, 730])[:, None] / 365.0
    price = bs_price(spot, strikes, t, rate, vol, is_call)
    iv = implied_vol(price, spot, strikes, t, rate, is_call)
    assert not np.isnan(iv).any()
    np.testing.assert_allclose(bs_price(spot, strikes, t, rate, iv, is_call), price, rtol=0, atol=1e-6)
    # Where the price carries information about vol (vega not vanishing), the vol itself comes back.
    informative = bs_vega(spot, strikes, t, rate, vol) > 1e-3
    np.testing.assert_allclose(np.broadcast_to(iv, informative.shape)[informative], vol, atol=1e-6)


def test_implied_vol_textbook_and_dividends():
    assert implied_vol(10.4506, 100.0, 100.0, 1.0, 0.05, True) == pytest.approx(0.2, abs=1e-5)
    price = bs_price(930.0, 900.0, 2 / 12, 0.08, 0.2, True, q=0.03)
    assert implied_vol(price, 930.0, 900.0, 2 / 12, 0.08, "C", q=0.03) == pytest.approx(0.2, abs=1e-9)


def test_implied_vol_is_nan_outside_the_no_arbitrage_band():
    spot, strike, t, rate = 100.0, 80.0, 0.5, 0.05
    floor = spot - strike * np.exp(-rate * t)  # discounted intrinsic of the call
    ceiling = bs_price(spot, strike, t, rate, IV_UPPER, True)
    prices = np.array([floor - 0.01, floor + 0.5, ceiling + 0.01, np.nan, -1.0])
    iv = implied_vol(prices, spot, strike, t, rate, True)
    assert np.isnan(iv[[0, 2, 3, 4]]).all()
    assert 0 < iv[1] < 1
    # Expired contracts have no volatility to imply.
    assert np.isnan(implied_vol(5.0, 100.0, 95.0, 0.0, 0.05, True))


@settings(max_examples=60, deadline=None)
@given(
    moneyness=st.floats(0.7, 1.3),
    days=st.integers(2, 730),
    vol=st.floats(0.05, 2.0),
    rate=st.floats(0.0, 0.08),
    is_call=st.booleans(),
)
def test_implied_vol_inverts_price_property(moneyness, days, vol, rate, is_call):
    spot, t = 100.0, days / 365.0
    strike = spot / moneyness
    price = bs_price(spot, strike, t, rate, vol, is_call)
    iv = implied_vol(price, spot, strike, t, rate, is_call)
    assert abs(bs_price(spot, strike, t, rate, iv, is_call) - price) < 1e-6

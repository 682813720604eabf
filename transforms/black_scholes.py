"""Vectorised Black-Scholes-Merton pricing, greeks and implied volatility.

Everything works elementwise on numpy arrays (scalars broadcast), so a whole option chain is priced in
one call. Conventions:

- ``t_years`` is the year fraction to expiration, ``rate`` the continuously compounded risk-free rate and
  ``q`` the continuous dividend yield (0 by default: the synthetic demo market pays none).
- ``is_call`` is a boolean array, or option types spelled ``'C'``/``'P'``.
- ``bs_vega`` is per 1.00 of volatility (divide by 100 for "per vol point").
- Expired or zero-volatility options (``t_years <= 0`` or ``iv <= 0``) are worth their intrinsic value
  on the forward (plain intrinsic at expiry): delta is 0 or +-1 and gamma and vega are 0, instead of the
  NaN a literal formula would give.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

IV_LOWER = 1e-4
IV_UPPER = 5.0
_SQRT_2PI = np.sqrt(2.0 * np.pi)

__all__ = ["IV_LOWER", "IV_UPPER", "bs_delta", "bs_gamma", "bs_price", "bs_vega", "implied_vol"]


def _call_mask(is_call: ArrayLike) -> NDArray[np.bool_]:
    flags = np.asarray(is_call)
    if flags.dtype.kind in "USO":
        return np.char.upper(flags.astype(str)) == "C"
    return flags.astype(bool)


def _inputs(spot, strike, t_years, rate, iv, is_call, q):
    s, k, t, r, v, qq, call = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, t_years, rate, iv, q)), _call_mask(is_call)
    )
    return s, k, t, r, v, call, qq


def _norm_pdf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _d1_d2(s, k, t, r, v, q, live):
    # Dead contracts get dummy inputs so the log/sqrt never warn; their results are overwritten.
    t_safe = np.where(live, t, 1.0)
    v_safe = np.where(live, v, 1.0)
    k_safe = np.where(live, k, 1.0)
    s_safe = np.where(live, s, 1.0)
    vol_sqrt_t = v_safe * np.sqrt(t_safe)
    d1 = (np.log(s_safe / k_safe) + (r - q + 0.5 * v_safe * v_safe) * t_safe) / vol_sqrt_t
    return d1, d1 - vol_sqrt_t, t_safe, vol_sqrt_t


def _live(s, k, t, v):
    return (t > 0) & (v > 0) & (s > 0) & (k > 0)


def _forward_itm(s, k, t, r, q, call):
    # Zero-vol limit: the option is in the money iff the discounted forward beats the discounted strike.
    t0 = np.maximum(t, 0.0)
    fwd_gap = s * np.exp(-q * t0) - k * np.exp(-r * t0)
    return np.where(call, fwd_gap > 0, fwd_gap < 0), fwd_gap


def bs_price(spot, strike, t_years, rate, iv, is_call, q=0.0) -> NDArray[np.float64]:
    """Black-Scholes-Merton premium; intrinsic (on the forward) when expired or at zero volatility."""
    s, k, t, r, v, call, qq = _inputs(spot, strike, t_years, rate, iv, is_call, q)
    live = _live(s, k, t, v)
    d1, d2, t_safe, _ = _d1_d2(s, k, t, r, v, qq, live)
    disc_s = s * np.exp(-qq * t_safe)
    disc_k = k * np.exp(-r * t_safe)
    # Puts use N(-d) directly rather than 1 - N(d), which loses every digit for deep out-of-the-money puts.
    sign = np.where(call, 1.0, -1.0)
    live_px = sign * (disc_s * ndtr(sign * d1) - disc_k * ndtr(sign * d2))
    _, fwd_gap = _forward_itm(s, k, t, r, qq, call)
    intrinsic = np.maximum(sign * fwd_gap, 0.0)
    return np.where(live, live_px, intrinsic)


def bs_delta(spot, strike, t_years, rate, iv, is_call, q=0.0) -> NDArray[np.float64]:
    """dPrice/dSpot; 0 or +-1 (times the dividend discount) when expired or at zero volatility."""
    s, k, t, r, v, call, qq = _inputs(spot, strike, t_years, rate, iv, is_call, q)
    live = _live(s, k, t, v)
    d1, _, t_safe, _ = _d1_d2(s, k, t, r, v, qq, live)
    div_disc = np.exp(-qq * t_safe)
    live_delta = np.where(call, div_disc * ndtr(d1), div_disc * (ndtr(d1) - 1.0))
    itm, _ = _forward_itm(s, k, t, r, qq, call)
    dead_delta = np.where(itm, np.where(call, 1.0, -1.0) * np.exp(-qq * np.maximum(t, 0.0)), 0.0)
    return np.where(live, live_delta, dead_delta)


def bs_gamma(spot, strike, t_years, rate, iv, is_call=True, q=0.0) -> NDArray[np.float64]:
    """d2Price/dSpot2 (same for calls and puts); 0 when expired or at zero volatility."""
    s, k, t, r, v, _, qq = _inputs(spot, strike, t_years, rate, iv, is_call, q)
    live = _live(s, k, t, v)
    d1, _, t_safe, vol_sqrt_t = _d1_d2(s, k, t, r, v, qq, live)
    s_safe = np.where(live, s, 1.0)
    gamma = np.exp(-qq * t_safe) * _norm_pdf(d1) / (s_safe * vol_sqrt_t)
    return np.where(live, gamma, 0.0)


def bs_vega(spot, strike, t_years, rate, iv, is_call=True, q=0.0) -> NDArray[np.float64]:
    """dPrice/dVol per 1.00 of volatility (same for calls and puts); 0 when expired or at zero volatility."""
    s, k, t, r, v, _, qq = _inputs(spot, strike, t_years, rate, iv, is_call, q)
    live = _live(s, k, t, v)
    d1, _, t_safe, _ = _d1_d2(s, k, t, r, v, qq, live)
    vega = s * np.exp(-qq * t_safe) * _norm_pdf(d1) * np.sqrt(t_safe)
    return np.where(live, vega, 0.0)


def implied_vol(
    price,
    spot,
    strike,
    t,
    rate,
    is_call,
    q=0.0,
    *,
    iterations: int = 100,
    price_tol: float = 1e-12,
) -> NDArray[np.float64]:
    """Volatility at which ``bs_price`` reproduces ``price``, elementwise.

    Safeguarded Newton: every step keeps a bracket ``[IV_LOWER, IV_UPPER]`` on which the price is
    monotone, and falls back to bisection whenever the Newton step leaves it (deep out-of-the-money
    contracts have almost no vega, where plain Newton diverges). A fixed iteration budget keeps the
    cost predictable; iteration stops early once every element has converged.

    NaN where no volatility in the bracket fits: the price is below the arbitrage floor (discounted
    intrinsic), above the price at ``IV_UPPER``, or the inputs are non-finite or expired.
    """
    # Broadcast the price together with the contract terms (the price array may be the widest).
    px, s, k, tt, r, qq, call = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (price, spot, strike, t, rate, q)), _call_mask(is_call)
    )

    floor = np.maximum(np.where(call, 1.0, -1.0) * _forward_itm(s, k, tt, r, qq, call)[1], 0.0)
    ceiling = bs_price(s, k, tt, r, IV_UPPER, call, qq)
    tol = 1e-9 * np.maximum(1.0, np.abs(px))
    finite = np.isfinite(px) & np.isfinite(s) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r)
    solvable = finite & (tt > 0) & (s > 0) & (k > 0) & (px >= floor - tol) & (px <= ceiling + tol)

    out = np.full(px.shape, np.nan)
    # Iterate only on the still-unconverged contracts: most converge in a few Newton steps, and the
    # flat-vega tail that needs bisection is small.
    idx = np.flatnonzero(solvable)
    px_a, s_a, k_a, t_a, r_a, q_a, call_a = (a.ravel()[idx] for a in (px, s, k, tt, r, qq, call))
    lo = np.full(idx.size, IV_LOWER)
    hi = np.full(idx.size, IV_UPPER)
    # Brenner-Subrahmanyam at-the-money approximation, clamped to a sane start.
    sigma = np.clip(np.sqrt(2.0 * np.pi / t_a) * np.abs(px_a) / s_a, 0.05, 1.0)
    flat_out = out.reshape(-1)
    for _ in range(iterations):
        diff = bs_price(s_a, k_a, t_a, r_a, sigma, call_a, q_a) - px_a
        done = (np.abs(diff) <= price_tol * np.maximum(1.0, np.abs(px_a))) | (hi - lo <= 1e-14)
        flat_out[idx[done]] = sigma[done]
        keep = ~done
        if not keep.any():
            return out
        idx, px_a, s_a, k_a, t_a, r_a, q_a, call_a, lo, hi, sigma, diff = (
            a[keep] for a in (idx, px_a, s_a, k_a, t_a, r_a, q_a, call_a, lo, hi, sigma, diff)
        )
        too_high = diff > 0
        hi = np.where(too_high, sigma, hi)
        lo = np.where(too_high, lo, sigma)
        vega = bs_vega(s_a, k_a, t_a, r_a, sigma, call_a, q_a)
        with np.errstate(all="ignore"):
            newton = sigma - diff / vega
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        sigma = np.where(inside, newton, 0.5 * (lo + hi))
    # Whatever is left after the budget is already bracketed to within the last step: keep the estimate.
    flat_out[idx] = sigma
    return out

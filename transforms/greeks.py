"""Greeks-based positioning from silver option chains: derived IV and greeks, dealer gamma and delta
exposure, the gamma flip, ATM implied volatility, the 25-delta risk reversal and IV rank.

Conventions (SPEC section 4):
- Only contracts expiring after trade_date count (``live_contracts``); t = dte / 365 years, no
  dividend yield.
- GEX of a contract = gamma * OI * 100 * spot^2 * 0.01 (dollars per 1% move), calls +, puts - ("dealers
  long calls, short puts"); DEX = delta * OI * 100 * spot with delta as quoted (puts negative).
- Spot per session is ``positioning.session_spot``: the given (trade_date, underlying, spot) frame where
  it has a value, else the chain's median underlying_price.

Black-Scholes maths runs in numpy (transforms.black_scholes) on whole columns through ``map_batches``;
the gamma-flip grid (every contract at every hypothetical spot level) runs in cache-sized numpy blocks
inside one ``LazyFrame.map_batches``. Nothing loops over rows or symbols in Python.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import pairwise

import numpy as np
import polars as pl

from transforms.black_scholes import IV_LOWER, IV_UPPER, bs_delta, bs_gamma, implied_vol
from transforms.forwards import FORWARD_COLUMNS, expiry_forwards, implied_forwards, with_forwards
from transforms.positioning import EXPIRY, SESSION, _strongest_strike, live_contracts, session_spot
from transforms.silver import computed_iv

CONTRACT_MULTIPLIER = 100.0
_FIXED_POINT, _FROM_FIXED_POINT = 1e8, 1e-8
GEX_MOVE = 0.01  # GEX is dollars per 1% move of the underlying
YEARS_PER_DAY = 1.0 / 365.0
TARGET_DTE = 30
RR_DELTA = 0.25
RANK_SESSIONS = 252
RANK_MIN_SESSIONS = 20
FLIP_RANGE = (0.8, 1.2)
FLIP_GRID_POINTS = 81  # 0.5% steps over [0.8, 1.2] * spot
# Contracts per numpy block of the flip grid: a block times 81 levels stays inside the L2 cache instead
# of streaming one big array through memory.
_FLIP_BLOCK = 1024
_FLIP_THREADS = 8  # at most this many threads
# exp(-d^2 / 2) is exactly 0.0 in float64 beyond |d| ~ 38.6: contracts that far from the money at every
# grid level add exactly nothing, so dropping them changes no bit of the profile.
_FLIP_DEAD_D1 = 40.0
# Net GEX within 1e-9 of a session's largest |net GEX| on the grid is numerical dust (underflowing
# tails of far-away contracts): it gives no sign, so it can neither make nor place a crossing.
_FLIP_NOISE = 1e-9
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_TARGET_DTE = 1.0 / TARGET_DTE

_IS_CALL = pl.col("option_type") == "C"
_IS_PUT = pl.col("option_type") == "P"
_SIDE_SIGN = pl.when(_IS_CALL).then(1.0).when(_IS_PUT).then(-1.0)
_IV = pl.col("implied_volatility")

__all__ = [
    "atm_iv_30",
    "atm_iv_by_expiry",
    "dealer_exposure",
    "derive_iv_and_greeks",
    "expiry_exposure",
    "gamma_flip",
    "iv_rank_percentile",
    "rr_25d",
    "session_greeks",
]


def _dte() -> pl.Expr:
    return pl.coalesce(pl.col("dte"), (pl.col("expiration") - pl.col("trade_date")).dt.total_days()).cast(
        pl.Float64
    )


def _years() -> pl.Expr:
    return _dte() * YEARS_PER_DAY


# --- IV and greeks derivation ------------------------------------------------------------------------


def _fields(batch: pl.Series, *names: str) -> list[np.ndarray]:
    return [batch.struct.field(name).to_numpy() for name in names]


# iv_status of a contract (SPEC 3): where its IV came from, or why no volatility reproduces its price.
IV_STATUSES = (
    "vendor",  # the vendor's IV (a 0, negative or non-finite one is "not computed", i.e. missing)
    "derived",  # Black-76 on the implied forward, from the out-of-the-money side of its strike
    "derived_itm",  # from its own in-the-money price: the strike's out-of-the-money side has no bid
    "no_bid",  # neither side of the strike has a bid to invert
    "below_intrinsic",  # the price is at or under the discounted intrinsic value on the forward
    "above_cap",  # the price needs a volatility above the search cap
    "no_spot",  # no spot for the session, so no forward
    "expired",  # expires on the quote date: no time value left to invert
)
_SOLVED, _BELOW, _ABOVE = 0, 1, 2


def _solve_iv(batch: pl.Series, rate: float) -> pl.Series:
    """Black-76 IV (as Black-Scholes-Merton with the dividend yield q the forward implies) from the
    price field where it is set, and a code: solved, below intrinsic, above the cap (NULL where no price)."""
    price, spot, strike, t, q, call = _fields(batch, "price", "spot", "strike", "t", "q", "is_call")
    iv = np.full(len(batch), np.nan)
    code = np.full(len(batch), -1, dtype=np.int8)
    rows = np.flatnonzero(np.isfinite(price) & (price > 0) & np.isfinite(q))
    if rows.size:
        call_rows = call[rows].astype(bool)
        solved = implied_vol(price[rows], spot[rows], strike[rows], t[rows], rate, call_rows, q[rows])
        # A solution pinned to the search bracket is no solution (price at the arbitrage floor or beyond
        # the cap), so it stays NULL rather than becoming a fake 0.01% or 500% volatility.
        ok = (solved > IV_LOWER * 1.001) & (solved < IV_UPPER * 0.999)
        iv[rows] = np.where(ok, solved, np.nan)
        floor = np.maximum(
            np.where(call_rows, 1.0, -1.0)
            * (spot[rows] * np.exp(-q[rows] * t[rows]) - strike[rows] * np.exp(-rate * t[rows])),
            0.0,
        )
        # Unsolved (NaN) or pinned low: the price leaves no time value; pinned high: beyond the cap.
        low = (price[rows] <= floor * (1.0 + 1e-9) + 1e-12) | (~ok & (solved <= IV_LOWER * 1.001))
        code[rows] = np.where(ok, _SOLVED, np.where(low, _BELOW, _ABOVE))
    return pl.DataFrame(
        [
            pl.Series("iv", iv, nan_to_null=True),
            pl.Series("code", np.where(code < 0, np.nan, code), nan_to_null=True).cast(pl.Int8),
        ]
    ).to_struct(batch.name)


def _delta_gamma(batch: pl.Series, rate: float) -> pl.Series:
    spot, strike, t, q, iv, call = _fields(batch, "spot", "strike", "t", "q", "iv", "is_call")
    delta = np.full(len(batch), np.nan)
    gamma = np.full(len(batch), np.nan)
    rows = np.flatnonzero(
        np.isfinite(iv) & np.isfinite(spot) & np.isfinite(strike) & np.isfinite(t) & np.isfinite(q)
    )
    if rows.size:
        args = (spot[rows], strike[rows], t[rows], rate, iv[rows], call[rows].astype(bool), q[rows])
        delta[rows] = bs_delta(*args)
        gamma[rows] = bs_gamma(*args)
    return pl.DataFrame(
        [pl.Series("delta", delta, nan_to_null=True), pl.Series("gamma", gamma, nan_to_null=True)]
    ).to_struct(batch.name)


def implied_dividend_yield(rate: float) -> pl.Expr:
    """q such that S e^((r - q) T) = F: Black-76 on the forward is Black-Scholes-Merton with this q, so
    price, delta and gamma with respect to spot (the forward moving one for one with it) come from the
    same formulas. Needs columns spot, forward and expiration/trade_date (or dte)."""
    t = _years()
    return pl.when((t > 0) & (pl.col("spot") > 0) & (pl.col("forward") > 0)).then(
        rate - (pl.col("forward") / pl.col("spot")).log() / t
    )


def derive_iv_and_greeks(chains: pl.LazyFrame | pl.DataFrame, rate: float) -> pl.LazyFrame:
    """Each contract's forward, and missing implied_volatility, delta and gamma from Black-76 on it
    (SPEC 3 "Implied volatility and greeks").

    Spot is positioning.session_spot (one per underlying and session), the forward and forward_source
    forwards.implied_forwards (put-call parity, else spot grown at `rate`), t = dte/365. A vendor IV of
    0, negative or non-finite means "not computed" and is treated as missing.
    IV: per strike and series, the out-of-the-money side relative to the forward (calls at or above it,
    puts below) is inverted from its mid and its IV given to both contracts; when that side has no bid,
    a contract's own mid is inverted. iv_derived marks the rows that got one, and iv_status
    (IV_STATUSES) says where each row's IV came from or why it has none.
    Greeks: where delta or gamma is NULL and an IV is known, the missing one(s) are computed with respect
    to spot (the forward moving one for one with it); greeks_derived is set. Given values are never
    overwritten. Same columns out, in the same order; iv_derived, greeks_derived, forward,
    forward_source and iv_status are added at the end when absent.

    The derivation runs on the rows that need it only and is scattered back: a nightly chain has IV
    and greeks on nearly every row, and joining results back onto every row would cost more than it.
    """
    frame = chains.collect() if isinstance(chains, pl.LazyFrame) else chains
    names = frame.columns
    defaults = {
        "iv_derived": pl.lit(False),
        "greeks_derived": pl.lit(False),
        "forward": pl.lit(None, pl.Float64),
        "forward_source": pl.lit(None, pl.String),
        "iv_status": pl.lit(None, pl.String),
    }
    added = [c for c in defaults if c not in names]
    frame = frame.with_columns(*[defaults[c].alias(c) for c in added]).with_columns(
        computed_iv().alias("implied_volatility")
    )
    forwards = implied_forwards(frame.lazy(), session_spot(frame.lazy()), rate)
    # Only the keys are joined and the three new columns added beside the others: a join of the whole
    # chain would copy every column of it.
    per_row = frame.select(EXPIRY).join(forwards.collect(), on=EXPIRY, how="left", maintain_order="left")
    frame = frame.with_columns(per_row.get_column(c) for c in ("spot", *FORWARD_COLUMNS))
    t, strike = _years(), pl.col("strike").cast(pl.Float64)
    usable = (t > 0) & (strike > 0)
    needs_iv = _IV.is_null() & usable
    needs_greeks = (pl.col("delta").is_null() | pl.col("gamma").is_null()) & usable
    statuses = (
        pl.when(_IV.is_not_null())
        .then(pl.coalesce("iv_status", pl.lit("vendor")))
        .otherwise(pl.when(t <= 0).then(pl.lit("expired")).otherwise(pl.lit("no_spot")))
    )
    frame = frame.with_columns(statuses.alias("iv_status"))
    work = (
        frame.lazy()
        .with_row_index("_row")
        .filter(needs_iv | needs_greeks)
        .with_columns(
            q=implied_dividend_yield(rate),
            _otm_type=pl.when(strike >= pl.col("forward")).then(pl.lit("C")).otherwise(pl.lit("P")),
        )
        .collect()
    )
    if work.height:
        frame = _scatter(frame, _derive_rows(work, frame, rate))
    return frame.drop("spot").select(*names, *added).lazy()


def _derive_rows(work: pl.DataFrame, chain: pl.DataFrame, rate: float) -> pl.DataFrame:
    """IV, delta, gamma and iv_status for the rows of derive_iv_and_greeks that miss one (`_row` kept).
    `chain`: the whole chain, where each row's out-of-the-money partner is looked up."""
    # The partner at the strike: the same OSI symbol with the other type letter (same series and strike).
    symbol = pl.col("option_symbol")
    partner_symbol = pl.concat_str(symbol.str.slice(0, 12), pl.col("_otm_type"), symbol.str.slice(13))
    work = work.with_columns(
        _partner=pl.when(_IV.is_null() & (pl.col("option_type") != pl.col("_otm_type"))).then(partner_symbol)
    )
    wanted = work.select("trade_date", pl.col("_partner").alias("option_symbol")).drop_nulls().unique()
    partners = (
        chain.lazy()
        .select("trade_date", "option_symbol", "bid", "mid")
        .join(wanted.lazy(), on=["trade_date", "option_symbol"], how="semi")
        .unique(["trade_date", "option_symbol"], keep="first")
        .select(
            "trade_date",
            pl.col("option_symbol").alias("_partner"),
            _partner_mid=pl.when((pl.col("bid") > 0) & (pl.col("mid") > 0)).then(pl.col("mid")),
        )
    )
    t, strike = _years(), pl.col("strike").cast(pl.Float64)
    needs_iv = _IV.is_null()
    otm_call = pl.col("_otm_type") == "C"
    own_mid = pl.when((pl.col("bid") > 0) & (pl.col("mid") > 0)).then(pl.col("mid"))
    otm_mid = pl.when(pl.col("_partner").is_null()).then(own_mid).otherwise(pl.col("_partner_mid"))
    from_otm = needs_iv & otm_mid.is_not_null()
    solved = pl.struct(
        price=pl.when(from_otm).then(otm_mid).when(needs_iv).then(own_mid),
        spot="spot",
        strike=strike,
        t=t,
        q="q",
        is_call=pl.when(from_otm).then(otm_call).otherwise(_IS_CALL).fill_null(False),
    ).map_batches(
        partial(_solve_iv, rate=rate),
        return_dtype=pl.Struct({"iv": pl.Float64, "code": pl.Int8}),
        is_elementwise=True,
    )
    code = pl.col("_solved").struct.field("code")
    status = (
        pl.when(~needs_iv)
        .then(pl.col("iv_status"))
        .when(pl.col("q").is_null())
        .then(pl.lit("no_spot"))
        .when(code == _SOLVED)
        .then(pl.when(from_otm).then(pl.lit("derived")).otherwise(pl.lit("derived_itm")))
        .when(code == _BELOW)
        .then(pl.lit("below_intrinsic"))
        .when(code == _ABOVE)
        .then(pl.lit("above_cap"))
        .otherwise(pl.lit("no_bid"))
    )
    greeks = pl.struct(
        spot="spot",
        strike=strike,
        t=t,
        q="q",
        is_call=_IS_CALL.fill_null(False),
        iv=pl.when(pl.col("delta").is_null() | pl.col("gamma").is_null()).then(_IV),
    ).map_batches(
        partial(_delta_gamma, rate=rate),
        return_dtype=pl.Struct({"delta": pl.Float64, "gamma": pl.Float64}),
        is_elementwise=True,
    )
    return (
        work.lazy()
        .join(partners, on=["trade_date", "_partner"], how="left")
        .with_columns(_solved=solved)
        .with_columns(
            status.alias("iv_status"),
            (
                pl.col("iv_derived").fill_null(False)
                | (needs_iv & pl.col("_solved").struct.field("iv").is_not_null())
            ),
            pl.coalesce(_IV, pl.col("_solved").struct.field("iv")).alias("implied_volatility"),
        )
        .with_columns(_greeks=greeks)
        .select(
            "_row",
            "implied_volatility",
            "iv_derived",
            "iv_status",
            pl.coalesce("delta", pl.col("_greeks").struct.field("delta")).alias("delta"),
            pl.coalesce("gamma", pl.col("_greeks").struct.field("gamma")).alias("gamma"),
            (
                pl.col("greeks_derived").fill_null(False)
                | (pl.col("delta").is_null() & pl.col("_greeks").struct.field("delta").is_not_null())
                | (pl.col("gamma").is_null() & pl.col("_greeks").struct.field("gamma").is_not_null())
            ).alias("greeks_derived"),
        )
        .collect()
    )


def _scatter(frame: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the columns of `rows` written at the positions in its `_row` column."""
    at = rows.get_column("_row")
    return frame.with_columns(
        frame.get_column(c).scatter(at, rows.get_column(c).cast(frame.schema[c]))
        for c in rows.columns
        if c != "_row"
    )


# --- dealer exposure ---------------------------------------------------------------------------------


def _exposure_units(live: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Per `keys`: gamma * OI summed over calls (call_gamma_oi) and puts (put_gamma_oi), delta * OI
    (delta_oi), and how many contracts have each (gamma_n, delta_n). Spot enters only afterwards, on the
    aggregated rows, so the big contract frame is never joined to it.

    The fixed-point values are made per contract before grouping: the group_by then only sums plain
    integer columns, its fast path, instead of evaluating filters and casts group by group."""
    oi = pl.col("open_interest").cast(pl.Float64)
    gamma_oi, delta_oi = pl.col("gamma") * oi, pl.col("delta") * oi
    return (
        live.select(
            *keys,
            call_gamma_oi=_fixed_point(pl.when(_IS_CALL).then(gamma_oi)),
            put_gamma_oi=_fixed_point(pl.when(_IS_PUT).then(gamma_oi)),
            gamma_n=pl.when(_SIDE_SIGN.is_not_null()).then(gamma_oi),
            delta_oi=_fixed_point(delta_oi),
        )
        .group_by(keys)
        .agg(
            _from_fixed_point(pl.col("call_gamma_oi").sum()),
            _from_fixed_point(pl.col("put_gamma_oi").sum()),
            pl.col("gamma_n").count(),
            _from_fixed_point(pl.col("delta_oi").sum()),
            pl.col("delta_oi").count().alias("delta_n"),
        )
    )


def _fixed_point(values: pl.Expr) -> pl.Expr:
    return (values * _FIXED_POINT).round(0).cast(pl.Int64)


def _from_fixed_point(total: pl.Expr) -> pl.Expr:
    return total * _FROM_FIXED_POINT


def _stable_sum(values: pl.Expr) -> pl.Expr:
    """A sum that does not depend on row order, chunking or threads: a backfill (many days in one
    frame), a nightly (one day) and a sharded run must give bit-identical tables, and float sums do
    not (SIMD kernels split the same values differently). Each value is fixed to 1e-8 and summed
    as an exact Int64; per-contract gamma*OI and delta*OI stay far below Int64's range."""
    return _from_fixed_point(_fixed_point(values).sum())


def _dollar_exposure() -> list[pl.Expr]:
    """net_gex, net_dex and the call and put GEX (put_gex as a magnitude) from _exposure_units and spot;
    NULL (not 0) where no contract has the greek."""
    s = pl.col("spot")
    per_gamma_oi = CONTRACT_MULTIPLIER * GEX_MOVE * s * s
    has_gamma, has_delta = pl.col("gamma_n") > 0, pl.col("delta_n") > 0
    return [
        pl.when(has_gamma)
        .then((pl.col("call_gamma_oi") - pl.col("put_gamma_oi")) * per_gamma_oi)
        .alias("net_gex"),
        pl.when(has_delta).then(pl.col("delta_oi") * CONTRACT_MULTIPLIER * s).alias("net_dex"),
        (pl.col("call_gamma_oi") * per_gamma_oi).alias("call_gex"),
        (pl.col("put_gamma_oi") * per_gamma_oi).alias("put_gex"),
    ]


def dealer_exposure(chains: pl.LazyFrame, spot: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Per (trade_date, underlying): net_gex, net_dex, call_gex_wall, put_gex_wall.

    Walls: the strike with the largest call GEX summed over the live expirations, and the strike with
    the largest put GEX in absolute value (ties: nearer spot, then the lower strike; NULL when no strike
    has any GEX on that side). spot: optional (trade_date, underlying, spot)."""
    return _dealer_exposure(live_contracts(chains), session_spot(chains, spot))


def _dealer_exposure(live: pl.LazyFrame, spots: pl.LazyFrame) -> pl.LazyFrame:
    """dealer_exposure from the live contracts and the session spots."""
    units = ["call_gamma_oi", "put_gamma_oi", "gamma_n", "delta_oi", "delta_n"]
    strikes = (
        _exposure_units(live, [*SESSION, "strike"])
        .join(spots, on=SESSION, how="left")
        .with_columns(_dollar_exposure())
    )
    totals = (
        strikes.group_by(SESSION)
        .agg(*[_stable_sum(pl.col(u)).alias(u) for u in units], pl.col("spot").first())
        .select(*SESSION, *_dollar_exposure()[:2])
    )
    call_wall = _strongest_strike(strikes, "call_gex", "call_gex_wall").drop("call_gex_wall_oi")
    put_wall = _strongest_strike(strikes, "put_gex", "put_gex_wall").drop("put_gex_wall_oi")
    return (
        totals.join(call_wall, on=SESSION, how="left")
        .join(put_wall, on=SESSION, how="left")
        .select(*SESSION, "net_gex", "net_dex", "call_gex_wall", "put_gex_wall")
        .sort(SESSION)
    )


# --- gamma flip ---------------------------------------------------------------------------------------


def _flip_grid(grid_points: int) -> np.ndarray:
    """Hypothetical spot levels as multiples of spot, evenly spaced over FLIP_RANGE."""
    return np.linspace(FLIP_RANGE[0], FLIP_RANGE[1], grid_points)


def _gex_profiles(
    session: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray, multiples: np.ndarray, sessions: int
) -> np.ndarray:
    """Net GEX per session (rows) at spot * multiples (columns), up to the session's spot factor.

    At a hypothetical spot S = spot * m, a contract's GEX is sign * OI * S^2 * gamma(S) (times 100 * 0.01)
    = sign * OI * S * phi(d1) / (iv * sqrt t), and d1 = a + b * ln(m) with a = d1 at spot and
    b = 1 / (iv sqrt t). So the profile is m * sum_i w_i exp(-(a_i + b_i ln m)^2 / 2), w_i = sign * OI /
    (iv sqrt(2 pi t)), scaled by spot. `session` holds sorted ids 0..sessions-1, one per contract.

    The contracts are split at session boundaries into one part per polars thread; numpy releases the GIL
    inside its loops, so the parts run in parallel threads, each writing only its own sessions' rows."""
    log_m = np.log(multiples)
    profile = np.zeros((sessions, multiples.size))
    if session.size == 0:
        return profile

    # A session's contracts are summed in chunks of _FLIP_BLOCK counted from its own first contract, and
    # the chunk sums added in order: the result depends only on the session's contracts, not on where
    # they sit in the frame (a shard or a backfill batch holds other sessions before them).
    position = np.arange(session.size)
    session_first = np.maximum.accumulate(np.where(np.r_[True, session[1:] != session[:-1]], position, 0))
    chunk_starts = np.flatnonzero((position - session_first) % _FLIP_BLOCK == 0)

    def accumulate(part: slice) -> None:
        # Levels by contracts, so every step runs along contiguous rows of the block (a contract's
        # terms broadcast down a column), and the block buffer is allocated once per part. A block
        # holds the chunks that start in one _FLIP_BLOCK window of the part, so it spans less than
        # two windows and never two chunks of one session.
        buffer = np.empty(log_m.size * 2 * _FLIP_BLOCK)
        starts = chunk_starts[(chunk_starts >= part.start) & (chunk_starts < part.stop)]
        window = (starts - part.start) // _FLIP_BLOCK
        block_starts = starts[np.r_[True, window[1:] != window[:-1]]]
        for lo, hi in pairwise([*block_starts.tolist(), part.stop]):
            block = slice(lo, hi)
            d1 = buffer[: log_m.size * (hi - lo)].reshape(
                log_m.size, hi - lo
            )  # contiguous: ufuncs' fast path
            np.multiply(log_m[:, None], b[block], out=d1)
            d1 += a[block]
            np.square(d1, out=d1)
            d1 *= -0.5
            np.exp(d1, out=d1)
            d1 *= w[block]
            firsts = starts[np.searchsorted(starts, lo) : np.searchsorted(starts, hi)] - lo
            profile[session[block][firsts]] += np.add.reduceat(d1, firsts, axis=1).T  # distinct sessions

    workers = max(1, min(pl.thread_pool_size(), _FLIP_THREADS))  # polars' budget (POLARS_MAX_THREADS)
    # Cut points moved back to the first contract of their session, so no session spans two parts.
    cuts = np.searchsorted(session, session[np.linspace(0, session.size, workers + 1)[1:-1].astype(np.int64)])
    bounds = np.unique(np.r_[0, cuts, session.size])
    parts = [slice(int(lo), int(hi)) for lo, hi in pairwise(bounds)]
    if len(parts) == 1:
        accumulate(parts[0])
    else:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(accumulate, parts))
    return profile * multiples


def _nearest_crossing(profile: np.ndarray, levels: np.ndarray, spot: np.ndarray) -> np.ndarray:
    """Per row, the zero crossing of the profile nearest to spot; NaN when the profile never changes sign.

    Values within _FLIP_NOISE of the row's largest magnitude (tails that underflow towards 0.0) have no
    sign. A crossing lies between two consecutive signed levels of opposite sign, linearly interpolated
    between them (adjacent levels, unless unsigned ones lie between). Ties go to the lower level."""
    magnitude = np.abs(profile)
    signed = magnitude > _FLIP_NOISE * magnitude.max(axis=1, keepdims=True)
    sign = np.where(signed, np.sign(profile), 0.0)
    columns = np.arange(profile.shape[1])
    # For each level k >= 1, the last signed level before it.
    previous = np.maximum.accumulate(np.where(signed, columns, -1), axis=1)[:, :-1]
    before = np.maximum(previous, 0)
    p0, p1 = np.take_along_axis(profile, before, axis=1), profile[:, 1:]
    s0, s1 = np.take_along_axis(levels, before, axis=1), levels[:, 1:]
    crosses = (previous >= 0) & (np.take_along_axis(sign, before, axis=1) * sign[:, 1:] < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = s0 + (s1 - s0) * np.where(crosses, p0 / (p0 - p1), np.nan)
    distance = np.where(crosses, np.abs(level - spot[:, None]), np.inf)
    nearest = np.argmin(distance, axis=1)
    rows = np.arange(profile.shape[0])
    return np.where(np.isfinite(distance[rows, nearest]), level[rows, nearest], np.nan)


def _flip_batch(frame: pl.DataFrame, grid_points: int) -> pl.DataFrame:
    """frame: contracts with their session id, the session's spot and the terms a, b, w of _gex_profiles.
    One row per session id that has contracts."""
    multiples = _flip_grid(grid_points)
    session, spot, a, b, w = (frame.get_column(c).to_numpy() for c in ("session", "spot", "a", "b", "w"))
    if np.any(session[1:] < session[:-1]):  # a chain not grouped by underlying
        order = np.argsort(session, kind="stable")
        session, spot, a, b, w = session[order], spot[order], a[order], b[order], w[order]
    starts = np.r_[True, session[1:] != session[:-1]] if session.size else np.zeros(0, dtype=bool)
    firsts = np.flatnonzero(starts)
    spot = spot[firsts]
    profile = _gex_profiles(np.cumsum(starts) - 1, a, b, w, multiples, firsts.size)
    flips = _nearest_crossing(profile, spot[:, None] * multiples, spot)
    return pl.DataFrame(
        [
            pl.Series("session", session[firsts], dtype=pl.get_index_type()),
            pl.Series("gamma_flip", flips, dtype=pl.Float64, nan_to_null=True),
        ]
    )


def gamma_flip(
    chains: pl.LazyFrame,
    spot: pl.LazyFrame | None = None,
    rate: float = 0.0,
    grid_points: int = FLIP_GRID_POINTS,
) -> pl.LazyFrame:
    """Per (trade_date, underlying): gamma_flip, the spot level in [0.8, 1.2] * spot where net GEX,
    recomputed by Black-76 on the implied forward (which moves with spot) from each live contract's own
    IV at that level (gamma(S) * OI * 100 *
    S^2 * 0.01, calls +, puts -), crosses zero: the crossing nearest to spot on an evenly spaced grid of
    `grid_points` levels, linearly interpolated between them; NULL if the profile never changes sign.
    Contracts without IV, OI or spot add nothing."""
    spots = session_spot(chains, spot)
    return _gamma_flip(with_forwards(live_contracts(chains), rate, spots), spots, rate, grid_points)


def _gamma_flip(live: pl.LazyFrame, spots: pl.LazyFrame, rate: float, grid_points: int) -> pl.LazyFrame:
    """gamma_flip from the live contracts (with their forward: forwards.with_forwards) and session spots."""
    # Sorted before numbering, so the ids are the same however often the plan evaluates this frame.
    sessions = spots.sort(SESSION).with_row_index("session")
    t = _years()
    vol_sqrt_t = _IV * t.sqrt()
    f, k = pl.col("forward"), pl.col("strike").cast(pl.Float64)
    log_lo, log_hi = math.log(FLIP_RANGE[0]), math.log(FLIP_RANGE[1])
    d1_lo = pl.col("a") + pl.col("b") * log_lo
    d1_hi = pl.col("a") + pl.col("b") * log_hi  # d1 rises with S: these bound it over the grid
    contracts = (
        live.filter(
            (_IV > 0)
            & (pl.col("open_interest") > 0)
            & (t > 0)
            & (pl.col("strike") > 0)
            & _SIDE_SIGN.is_not_null()
        )
        # In chain order: a chain grouped by underlying (as silver stores it) needs no sort in _flip_batch.
        .join(sessions.filter(pl.col("spot") > 0), on=SESSION, how="inner", maintain_order="left")
        .filter(f > 0)
        # Black-76 on the forward, which moves one for one with spot: at S = spot * m the forward is
        # forward * m, so d1 = a + b ln m, and gamma carries the discount e^(-rT) F / S (= e^(-qT)).
        .select(
            "session",
            "spot",
            a=((f / k).log() + 0.5 * _IV * _IV * t) / vol_sqrt_t,
            b=1.0 / vol_sqrt_t,
            w=_SIDE_SIGN
            * pl.col("open_interest").cast(pl.Float64)
            * (CONTRACT_MULTIPLIER * GEX_MOVE * _INV_SQRT_2PI)
            / vol_sqrt_t
            * (-rate * t).exp()
            * f
            / pl.col("spot"),
        )
        .filter((d1_lo <= _FLIP_DEAD_D1) & (d1_hi >= -_FLIP_DEAD_D1))
    )
    flips = contracts.map_batches(
        partial(_flip_batch, grid_points=grid_points),
        schema={"session": pl.get_index_type(), "gamma_flip": pl.Float64()},
    )
    # Sessions without a usable contract (or spot) have no flip row: a NULL flip, as a flat profile.
    return sessions.join(flips, on="session", how="left").select(*SESSION, "gamma_flip").sort(SESSION)


# --- implied volatility levels -----------------------------------------------------------------------


def atm_iv_by_expiry(chains: pl.LazyFrame, spot: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Per (trade_date, underlying, expiration) after trade_date: dte and atm_iv.

    A strike's IV is the mean of its call and put IV (either one when only one is quoted); atm_iv
    interpolates linearly in strike between the nearest quoted strikes at or below and at or above
    spot (the strike's own IV when spot is a strike). NULL when spot is outside the quoted strikes."""
    return _atm_iv_by_expiry(live_contracts(chains), session_spot(chains, spot))


def _atm_iv_by_expiry(live: pl.LazyFrame, spots: pl.LazyFrame) -> pl.LazyFrame:
    """atm_iv_by_expiry from the live contracts and the session spots."""
    strike, spot_level = pl.col("strike"), pl.col("spot")
    k_lo, k_hi = pl.col("k_lo"), pl.col("k_hi")
    quoted = (
        live.filter(_IV > 0)
        .select(*EXPIRY, "strike", _IV.cast(pl.Float64))
        .join(spots, on=SESSION, how="inner")
        .with_columns(
            k_lo=pl.when(strike <= spot_level).then(strike).max().over(EXPIRY),
            k_hi=pl.when(strike >= spot_level).then(strike).min().over(EXPIRY),
        )
    )
    brackets = (
        quoted.filter((strike == k_lo) | (strike == k_hi))
        .group_by(EXPIRY)
        .agg(
            pl.col("spot", "k_lo", "k_hi").first(),
            pl.when(strike == k_lo).then(_IV).mean().alias("iv_lo"),
            pl.when(strike == k_hi).then(_IV).mean().alias("iv_hi"),
        )
    )
    weight = (spot_level - k_lo) / (k_hi - k_lo)
    return brackets.select(
        *EXPIRY,
        dte=(pl.col("expiration") - pl.col("trade_date")).dt.total_days().cast(pl.Int64),
        atm_iv=pl.when(k_lo == k_hi)
        .then(pl.col("iv_lo"))
        .otherwise(pl.col("iv_lo") + (pl.col("iv_hi") - pl.col("iv_lo")) * weight),
    ).sort(EXPIRY)


def atm_iv_30(expiry_iv: pl.LazyFrame) -> pl.LazyFrame:
    """Per (trade_date, underlying): atm_iv_30, the constant-maturity 30-day ATM IV.

    Interpolated in total variance (iv^2 * t) between the expirations with dte nearest below and above
    30 (the one expiring in exactly 30 days alone if listed); flat (that expiration's IV) when every
    expiration is on one side of 30 days. expiry_iv: (trade_date, underlying, expiration, dte, atm_iv)
    as from atm_iv_by_expiry; expirations without atm_iv are skipped."""
    dte, iv = pl.col("dte"), pl.col("atm_iv")
    near, far = dte <= TARGET_DTE, dte >= TARGET_DTE
    brackets = (
        expiry_iv.filter((dte > 0) & iv.is_not_null())
        .group_by(SESSION)
        .agg(
            dte.filter(near).max().alias("d_near"),
            iv.filter(near).sort_by(dte.filter(near)).last().alias("iv_near"),
            dte.filter(far).min().alias("d_far"),
            iv.filter(far).sort_by(dte.filter(far)).first().alias("iv_far"),
        )
    )
    d_near, d_far = pl.col("d_near").cast(pl.Float64), pl.col("d_far").cast(pl.Float64)
    var_near = pl.col("iv_near") * pl.col("iv_near") * d_near  # total variance in day units:
    var_far = pl.col("iv_far") * pl.col("iv_far") * d_far  # the 1/365 cancels in the square root
    var_30 = var_near + (var_far - var_near) * (TARGET_DTE - d_near) / (d_far - d_near)
    return brackets.select(
        *SESSION,
        atm_iv_30=pl.when(pl.col("d_near").is_null())
        .then(pl.col("iv_far"))
        .when(pl.col("d_far").is_null() | (pl.col("d_near") == pl.col("d_far")))
        .then(pl.col("iv_near"))
        .otherwise((var_30 * _INV_TARGET_DTE).sqrt()),
    ).sort(SESSION)


def rr_25d(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Per (trade_date, underlying): rr_25d, the IV of the call with delta nearest +0.25 minus the IV of
    the put with delta nearest -0.25, on the live expiration nearest 30 days that has both calls and
    puts with delta and IV (ties: the earlier expiration; between contracts, the lower strike)."""
    quoted = live_contracts(chains).filter(_IV.is_not_null() & pl.col("delta").is_not_null())
    expiry = (
        quoted.group_by(EXPIRY)
        .agg(_IS_CALL.any().alias("has_call"), _IS_PUT.any().alias("has_put"))
        .filter(pl.col("has_call") & pl.col("has_put"))
        .with_columns(
            off_target=((pl.col("expiration") - pl.col("trade_date")).dt.total_days() - TARGET_DTE).abs()
        )
        .group_by(SESSION)
        .agg(pl.col("expiration").sort_by("off_target", "expiration").first())
    )

    def nearest_iv(side: pl.Expr, target: float) -> pl.Expr:
        distance = (pl.col("delta") - target).abs()
        return _IV.filter(side).sort_by(distance.filter(side), pl.col("strike").filter(side)).first()

    return (
        quoted.join(expiry, on=EXPIRY, how="inner")
        .group_by(SESSION)
        .agg(
            (nearest_iv(_IS_CALL, RR_DELTA) - nearest_iv(_IS_PUT, -RR_DELTA)).cast(pl.Float64).alias("rr_25d")
        )
        .sort(SESSION)
    )


def iv_rank_percentile(history: pl.LazyFrame) -> pl.LazyFrame:
    """`history` (trade_date, underlying, atm_iv_30, ...; one row per underlying and session) with
    iv_rank_252 and iv_percentile_252 added.

    Over each underlying's last 252 sessions in `history` up to and including the row (never later):
    iv_rank_252 = (x - min) / (max - min) (NULL when max = min); iv_percentile_252 = the share of the
    earlier sessions in that window whose atm_iv_30 is below x. Both in [0, 1]; NULL when x is NULL or
    the window holds fewer than 20 sessions with a value."""
    x = pl.col("atm_iv_30")

    def trailing(expr: pl.Expr) -> pl.Expr:
        return expr.over("underlying", order_by="trade_date")

    lowest = trailing(x.rolling_min(RANK_SESSIONS, min_samples=1))
    highest = trailing(x.rolling_max(RANK_SESSIONS, min_samples=1))
    count = trailing(x.is_not_null().cast(pl.Int64).rolling_sum(RANK_SESSIONS, min_samples=1))
    # rank "min" = 1 + the number of window values strictly below x (NULLs are not ranked).
    below = trailing(x.rolling_rank(RANK_SESSIONS, method="min", min_samples=1)).cast(pl.Float64) - 1.0
    enough = x.is_not_null() & (count >= RANK_MIN_SESSIONS)
    return history.with_columns(
        iv_rank_252=pl.when(enough & (highest > lowest)).then((x - lowest) / (highest - lowest)),
        iv_percentile_252=pl.when(enough).then(below / (count - 1).cast(pl.Float64)),
    )


# --- per expiry and per session -----------------------------------------------------------------------


def expiry_exposure(
    chains: pl.LazyFrame, spot: pl.LazyFrame | None = None, rate: float = 0.0
) -> pl.LazyFrame:
    """Per (trade_date, underlying, expiration) after trade_date: net_gex, net_dex (at the session spot),
    atm_iv, and the implied forward with its source (forwards.implied_forwards), for expiry_levels."""
    # Cached: every part needs the spots, and the optimizer does not merge their differently pruned copies.
    live, spots = live_contracts(chains), session_spot(chains, spot).cache()
    exposure = (
        _exposure_units(live, EXPIRY).join(spots, on=SESSION, how="left").with_columns(_dollar_exposure()[:2])
    )
    forwards = expiry_forwards(live, rate, spots)
    return (
        exposure.join(_atm_iv_by_expiry(live, spots).select(*EXPIRY, "atm_iv"), on=EXPIRY, how="left")
        .join(forwards, on=EXPIRY, how="left")
        .select(*EXPIRY, "net_gex", "net_dex", "atm_iv", *FORWARD_COLUMNS)
        .sort(EXPIRY)
    )


def session_greeks(chains: pl.LazyFrame, spot: pl.LazyFrame | None = None, rate: float = 0.0) -> pl.LazyFrame:
    """Per (trade_date, underlying): net_gex, net_dex, call_gex_wall, put_gex_wall, gamma_flip,
    atm_iv_30 and rr_25d, for positioning_daily (iv_rank_252 / iv_percentile_252 need the history of
    atm_iv_30: iv_rank_percentile)."""
    # Cached: every part needs the spots, and the optimizer does not merge their differently pruned copies.
    live, spots = live_contracts(chains), session_spot(chains, spot).cache()
    return (
        _dealer_exposure(live, spots)
        .join(
            _gamma_flip(with_forwards(live, rate, spots), spots, rate, FLIP_GRID_POINTS),
            on=SESSION,
            how="full",
            coalesce=True,
        )
        .join(atm_iv_30(_atm_iv_by_expiry(live, spots)), on=SESSION, how="left")
        .join(rr_25d(chains), on=SESSION, how="left")
        .select(
            *SESSION,
            "net_gex",
            "net_dex",
            "call_gex_wall",
            "put_gex_wall",
            "gamma_flip",
            "atm_iv_30",
            "rr_25d",
        )
        .sort(SESSION)
    )

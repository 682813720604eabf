"""The options market's own yardsticks per expiration, for sizing targets and stops (expiry_levels, rules).

Per (trade_date, underlying, expiration) after trade_date, taken at that expiration's forward F:
  expected_move      the ATM straddle's mid at F, in dollars: call mid + put mid per strike (both sides
                     quoted), interpolated linearly in strike between the listed strikes nearest at or
                     below and at or above F (the strike's own straddle when F is a strike). NULL when F
                     is outside the strikes quoted on both sides near the money
                     (forwards.near_the_money).
  expected_move_pct  expected_move as a percent of spot (6.12 means 6.12%, as change_pct).
  rr_25d             the 25-delta risk reversal: the IV of the call with delta nearest +0.25 minus the IV
                     of the put with delta nearest -0.25 (ties: the lower strike). Negative: puts richer.
  bf_25d             the 25-delta butterfly: the mean of those two IVs minus the ATM IV at F (a strike's
                     IV is the mean of its call and put IV; interpolated in strike as the straddle).
                     Positive: the wings are richer than the money (the smile).
IVs are fractions (0.25 = 25%), as implied_volatility. The forward frame is the caller's: the pipeline
decides how F is estimated, in one place.
"""

from __future__ import annotations

import polars as pl

from transforms.forwards import near_the_money
from transforms.positioning import EXPIRY, SESSION, live_contracts, session_spot

YARDSTICK_COLUMNS: dict[str, pl.DataType] = {
    "expected_move": pl.Float64(),
    "expected_move_pct": pl.Float64(),
    "rr_25d": pl.Float64(),
    "bf_25d": pl.Float64(),
}
WING_DELTA = 0.25

_IS_CALL = pl.col("option_type") == "C"
_IS_PUT = pl.col("option_type") == "P"
_IV = pl.col("implied_volatility")


def _at_forward(per_strike: pl.LazyFrame, value: str) -> pl.LazyFrame:
    """`value` at the forward, per expiration: linear in strike between the strikes bracketing it.
    per_strike: EXPIRY, strike, forward and `value` (non-null), one row per strike."""
    strike, forward = pl.col("strike"), pl.col("forward")
    k_lo, k_hi = pl.col("k_lo"), pl.col("k_hi")
    brackets = (
        per_strike.with_columns(
            k_lo=pl.when(strike <= forward).then(strike).max().over(EXPIRY),
            k_hi=pl.when(strike >= forward).then(strike).min().over(EXPIRY),
        )
        .filter((strike == k_lo) | (strike == k_hi))
        .group_by(EXPIRY)
        .agg(
            pl.col("forward", "k_lo", "k_hi").first(),
            pl.col(value).filter(strike == k_lo).first().alias("_lo"),
            pl.col(value).filter(strike == k_hi).first().alias("_hi"),
        )
    )
    low, high = pl.col("_lo"), pl.col("_hi")
    return brackets.select(
        *EXPIRY,
        pl.when(k_lo == k_hi)
        .then(low)
        .otherwise(low + (high - low) * (forward - k_lo) / (k_hi - k_lo))
        .alias(value),
    )


def expiry_yardsticks(
    chains: pl.LazyFrame, forwards: pl.LazyFrame, spot: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """YARDSTICK_COLUMNS per (trade_date, underlying, expiration) with a forward.

    chains: silver chains (trade_date, underlying, expiration, strike, option_type, mid,
    implied_volatility, delta, underlying_price). forwards: trade_date, underlying, expiration, forward.
    spot: (trade_date, underlying, spot), the bars' close where the chain has no spot (session_spot).
    """
    live = (
        live_contracts(chains)
        .select(
            *EXPIRY,
            pl.col("strike").cast(pl.Float64),
            "option_type",
            pl.col("mid").cast(pl.Float64),
            _IV.cast(pl.Float64),
            pl.col("delta").cast(pl.Float64),
        )
        .cache()
    )
    fwd = forwards.select(*EXPIRY, pl.col("forward").cast(pl.Float64))
    # Two roots (SPX and SPXW) can list one strike and expiration: their quotes are averaged. The sides
    # are split before grouping, so the group_by only takes plain means (its fast path).
    # Only strikes near the money can bracket the forward (forwards.near_the_money).
    per_strike = (
        live_contracts(chains)
        .filter(near_the_money())
        .select(
            *EXPIRY,
            pl.col("strike").cast(pl.Float64),
            "option_type",
            pl.col("mid").cast(pl.Float64),
            _IV.cast(pl.Float64),
        )
        .select(
            *EXPIRY,
            "strike",
            call_mid=pl.when(_IS_CALL).then(pl.col("mid")),
            put_mid=pl.when(_IS_PUT).then(pl.col("mid")),
            strike_iv=pl.when(_IV > 0).then(_IV),
        )
        .group_by(*EXPIRY, "strike")
        .agg(pl.col("call_mid", "put_mid", "strike_iv").mean())
        .join(fwd, on=EXPIRY, how="inner")
        .with_columns((pl.col("call_mid") + pl.col("put_mid")).alias("straddle"))
    )
    straddle = _at_forward(per_strike.filter(pl.col("straddle").is_not_null()), "straddle")
    atm_iv = _at_forward(per_strike.filter(pl.col("strike_iv").is_not_null()), "strike_iv")

    quoted = live.filter((_IV > 0) & pl.col("delta").is_not_null())

    def nearest_iv(side: pl.Expr, target: float, name: str) -> pl.LazyFrame:
        # The contracts at the smallest distance (a window minimum), then the lowest strike among them.
        distance = (pl.col("delta") - target).abs()
        return (
            quoted.filter(side)
            .with_columns(_distance=distance)
            .filter(pl.col("_distance") == pl.col("_distance").min().over(EXPIRY))
            .group_by(EXPIRY)
            .agg(_IV.sort_by("strike").first().alias(name))
        )

    wings = nearest_iv(_IS_CALL, WING_DELTA, "call_iv").join(
        nearest_iv(_IS_PUT, -WING_DELTA, "put_iv"), on=EXPIRY, how="full", coalesce=True
    )
    spots = session_spot(chains, spot)
    move = pl.col("straddle")
    return (
        fwd.join(straddle, on=EXPIRY, how="left")
        .join(atm_iv, on=EXPIRY, how="left")
        .join(wings, on=EXPIRY, how="left")
        .join(spots, on=SESSION, how="left")
        .select(
            *EXPIRY,
            move.alias("expected_move"),
            pl.when(pl.col("spot") > 0).then(move / pl.col("spot") * 100.0).alias("expected_move_pct"),
            (pl.col("call_iv") - pl.col("put_iv")).alias("rr_25d"),
            ((pl.col("call_iv") + pl.col("put_iv")) / 2.0 - pl.col("strike_iv")).alias("bf_25d"),
        )
        .sort(EXPIRY)
    )

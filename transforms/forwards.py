"""Implied forwards per underlying, expiration and session, from put-call parity (SPEC 3 "Forward").

As in the CBOE VIX method: among the strikes where a call and a put of the same series (OSI root) are
both quoted with a bid, the one where |C - P| (mids) is smallest gives F = K + e^(rT) (C - P); T is in
years of calendar days. Ties go to the lower strike. An expiration without such a pair takes
F = S e^(rT) (``forward_source`` = spot). Dividends and borrow are then what the market implies, and
Black-76 on F prices European options exactly; for American ones the out-of-the-money side that the
inversion uses carries almost no early-exercise premium.

Silver chains carry each contract's ``forward`` and ``forward_source`` (computed once, where IV is
derived); gold reads them from there (``with_forwards`` computes them for frames without them).
"""

from __future__ import annotations

import polars as pl

from transforms.positioning import EXPIRY, SESSION, live_contracts, session_spot

YEARS_PER_DAY = 1.0 / 365.0
_BAND_BASE, _BAND_PER_SQRT_YEAR = 0.05, 0.15
FORWARD_COLUMNS = ["forward", "forward_source"]

__all__ = [
    "FORWARD_COLUMNS",
    "expiry_forwards",
    "implied_forwards",
    "near_the_money",
    "osi_root",
    "parity_pairs",
    "with_forwards",
    "years_to_expiry",
]


def years_to_expiry() -> pl.Expr:
    """T in years of calendar days, from expiration and trade_date."""
    return (pl.col("expiration") - pl.col("trade_date")).dt.total_days().cast(pl.Float64) * YEARS_PER_DAY


def osi_root(symbol: str = "option_symbol") -> pl.Expr:
    """The series' root from a 21-char OSI symbol: SPX (AM-settled) and SPXW (PM) are different series."""
    return pl.col(symbol).str.slice(0, 6)


def near_the_money() -> pl.Expr:
    """Strikes within |ln(K / S)| <= 0.05 + 0.15 sqrt(T) of the row's underlying_price: F / S =
    e^((r - q) T) stays inside that band for any carry within +-15% a year over three years, so the
    strikes around the forward are in it; the far wings (half of a full chain) are not. A row without
    an underlying_price is kept (nothing to judge it by)."""
    moneyness = (pl.col("strike").cast(pl.Float64) / pl.col("underlying_price").cast(pl.Float64)).log().abs()
    return (moneyness <= _BAND_BASE + _BAND_PER_SQRT_YEAR * years_to_expiry().sqrt()).fill_null(True)


def parity_pairs(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Per live (trade_date, underlying, expiration), root and strike near_the_money: the mids of the
    call (call_mid) and the put (put_mid) where that side has a bid, else NULL. The strike where C - P
    is smallest sits at the forward, so the wings are not paired."""
    has_bid = (pl.col("bid") > 0) & pl.col("mid").is_finite()
    mid = pl.col("mid").cast(pl.Float64)
    # The sides are split before grouping: the group_by then only takes plain maxima, its fast path.
    return (
        live_contracts(chains)
        .filter(has_bid & near_the_money())
        .select(
            *EXPIRY,
            osi_root().alias("root"),
            "strike",
            call_mid=pl.when(pl.col("option_type") == "C").then(mid),
            put_mid=pl.when(pl.col("option_type") == "P").then(mid),
        )
        .group_by([*EXPIRY, "root", "strike"])
        .agg(pl.col("call_mid", "put_mid").max())
    )


def implied_forwards(chains: pl.LazyFrame, spots: pl.LazyFrame, rate: float) -> pl.LazyFrame:
    """One row per live (trade_date, underlying, expiration) of `chains`: spot, forward, forward_source.

    spots: (trade_date, underlying, spot) as from positioning.session_spot. A parity forward that is not
    a positive finite number (a crossed quote pair) is not used: the expiration falls back to spot.
    """
    growth = (pl.lit(rate) * years_to_expiry()).exp()
    gap = (pl.col("call_mid") - pl.col("put_mid")).abs()
    parity = (
        parity_pairs(chains)
        .group_by(EXPIRY)
        .agg(pl.col("strike", "call_mid", "put_mid").sort_by(gap, pl.col("strike"), nulls_last=True).first())
        .select(*EXPIRY, _parity=pl.col("strike") + growth * (pl.col("call_mid") - pl.col("put_mid")))
    )
    parity_ok = pl.col("_parity").is_finite() & (pl.col("_parity") > 0)
    return (
        live_contracts(chains)
        .select(EXPIRY)
        .unique()
        .join(parity, on=EXPIRY, how="left")
        .join(spots.select(*SESSION, pl.col("spot").cast(pl.Float64)), on=SESSION, how="left")
        .select(
            *EXPIRY,
            "spot",
            forward=pl.when(parity_ok).then(pl.col("_parity")).otherwise(pl.col("spot") * growth),
            forward_source=pl.when(parity_ok)
            .then(pl.lit("parity"))
            .when(pl.col("spot").is_not_null())
            .then(pl.lit("spot")),
        )
        .sort(EXPIRY)
    )


def with_forwards(chains: pl.LazyFrame, rate: float, spots: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """`chains` with each contract's forward and forward_source: kept where the frame has them (silver
    chains do), computed by implied_forwards otherwise."""
    if set(FORWARD_COLUMNS) <= set(chains.collect_schema().names()):
        return chains
    if spots is None:
        spots = session_spot(chains)
    forwards = implied_forwards(chains, spots, rate).select(*EXPIRY, *FORWARD_COLUMNS)
    return chains.join(forwards, on=EXPIRY, how="left", maintain_order="left")


def expiry_forwards(chains: pl.LazyFrame, rate: float, spots: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Per live (trade_date, underlying, expiration): forward and forward_source, as the contracts of
    `chains` carry them (with_forwards)."""
    live = live_contracts(chains)
    return with_forwards(live, rate, spots).group_by(EXPIRY).agg(pl.col(FORWARD_COLUMNS).first())

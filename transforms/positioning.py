"""Open-interest positioning per underlying and session, from silver option chains.

Totals and put/call ratios, OI walls, max pain, OI change against the previous session, the term
structure per expiration, and the top strikes per side.

Only contracts expiring after the quote date count: a contract expiring on the quote date settles that
evening, so its open interest says nothing about where positions sit for the sessions ahead.

Every function accepts chains holding many sessions and many underlyings (a backfill computes all its
dates in one pass); everything is grouped by (trade_date, underlying), so a session's rows depend only
on that session's chain and, for the OI changes, on the sessions before it (no lookahead).
"""

from __future__ import annotations

import polars as pl

SESSION = ["trade_date", "underlying"]
EXPIRY = [*SESSION, "expiration"]

POSITIONING_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "spot": pl.Float64(),
    "spot_source": pl.String(),
    "contracts": pl.Int64(),
    "call_oi": pl.Int64(),
    "put_oi": pl.Int64(),
    "call_volume": pl.Int64(),
    "put_volume": pl.Int64(),
    "pcr_oi": pl.Float64(),
    "pcr_volume": pl.Float64(),
    "call_wall": pl.Float64(),
    "call_wall_oi": pl.Int64(),
    "put_wall": pl.Float64(),
    "put_wall_oi": pl.Int64(),
    "next_call_wall": pl.Float64(),
    "next_call_wall_oi": pl.Int64(),
    "next_put_wall": pl.Float64(),
    "next_put_wall_oi": pl.Int64(),
    "max_pain": pl.Float64(),
    "max_pain_expiration": pl.Date(),
    "call_oi_change": pl.Int64(),
    "put_oi_change": pl.Int64(),
    "gamma_coverage": pl.Float64(),
}
EXPIRY_LEVELS_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "expiration": pl.Date(),
    "dte": pl.Int64(),
    "contracts": pl.Int64(),
    "call_contracts": pl.Int64(),
    "put_contracts": pl.Int64(),
    "call_oi": pl.Int64(),
    "put_oi": pl.Int64(),
    "pcr_oi": pl.Float64(),
    "call_volume": pl.Int64(),
    "put_volume": pl.Int64(),
    "max_pain": pl.Float64(),
}
STRIKE_LEVELS_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "side": pl.String(),
    "rank": pl.Int64(),
    "strike": pl.Float64(),
    "open_interest": pl.Int64(),
    "volume": pl.Int64(),
    "oi_change": pl.Int64(),
}
POSITIONING_COLUMNS = list(POSITIONING_SCHEMA)
EXPIRY_LEVELS_COLUMNS = list(EXPIRY_LEVELS_SCHEMA)
STRIKE_LEVELS_COLUMNS = list(STRIKE_LEVELS_SCHEMA)

# OSI strikes carry three decimals, so strikes in thousandths are exact integers and the max-pain sums
# become exact integer arithmetic: float noise can never decide a tie between two strikes.
_STRIKE_MILLI = (pl.col("strike") * 1000).round().cast(pl.Int64)
# Rounded so that spot - 245.1 and 255.1 - spot, equal on paper, also compare equal in floats.
_SPOT_DISTANCE = (pl.col("strike") - pl.col("spot")).abs().round(6).fill_null(0.0)
_IS_CALL = pl.col("option_type") == "C"
_IS_PUT = pl.col("option_type") == "P"


# --- building blocks ------------------------------------------------------------------------------


def live_contracts(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Contracts still open after the session: expiration strictly after trade_date."""
    return chains.filter(pl.col("expiration") > pl.col("trade_date"))


def session_spot(chains: pl.LazyFrame, spot: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """One spot per (trade_date, underlying), used by every calculation (SPEC 3 "Spot"): spot and
    spot_source.

    The chain's own underlying_price where the vendor gave one (quotes and spot taken together; the
    median, robust to a few stale rows), else the bars' close: the `spot` frame (trade_date, underlying,
    spot) where given, else the rows silver filled from the bars (``spot_derived``).
    """
    names = chains.collect_schema().names()
    price = pl.col("underlying_price").cast(pl.Float64)
    filled = pl.col("spot_derived").fill_null(False) if "spot_derived" in names else pl.lit(False)
    # The sides are split before grouping, so the group_by only takes plain medians (its fast path).
    sessions = (
        chains.select(
            *SESSION, _chain_spot=pl.when(~filled).then(price), _bars_spot=pl.when(filled).then(price)
        )
        .group_by(SESSION)
        .agg(pl.col("_chain_spot", "_bars_spot").median())
    )
    bars = pl.col("_bars_spot")
    if spot is not None:
        given = spot.select(
            pl.col("trade_date").cast(pl.Date),
            pl.col("underlying"),
            pl.col("spot").cast(pl.Float64).alias("_given_spot"),
        ).unique(SESSION, keep="last", maintain_order=True)
        sessions = sessions.join(given, on=SESSION, how="left")
        bars = pl.coalesce("_given_spot", "_bars_spot")
    return sessions.select(
        *SESSION,
        pl.coalesce("_chain_spot", bars).alias("spot"),
        pl.when(pl.col("_chain_spot").is_not_null())
        .then(pl.lit("chain"))
        .when(bars.is_not_null())
        .then(pl.lit("bars"))
        .alias("spot_source"),
    )


def _side_totals() -> list[pl.Expr]:
    """Call and put open interest and volume, for use inside a group_by."""
    oi, volume = pl.col("open_interest").cast(pl.Int64), pl.col("volume").cast(pl.Int64)
    return [
        _side_sum(oi, _IS_CALL).alias("call_oi"),
        _side_sum(oi, _IS_PUT).alias("put_oi"),
        _side_sum(volume, _IS_CALL).alias("call_volume"),
        _side_sum(volume, _IS_PUT).alias("put_volume"),
    ]


def _side_sum(value: pl.Expr, side: pl.Expr) -> pl.Expr:
    # when/then/otherwise(0) aggregates about twice as fast as value.filter(side) over many small groups.
    return pl.when(side).then(value).otherwise(0).sum()


def _put_call_ratio(puts: str, calls: str) -> pl.Expr:
    """puts / calls, NULL rather than inf or NaN when there are no calls."""
    return pl.when(pl.col(calls) > 0).then(pl.col(puts) / pl.col(calls)).otherwise(None).cast(pl.Float64)


def _conform(frame: pl.LazyFrame, schema: dict[str, pl.DataType], order: list[str]) -> pl.LazyFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).sort(order)


def strike_open_interest(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Per trade_date, underlying and strike: call_oi, put_oi, call_volume, put_volume summed over the
    expirations after trade_date."""
    return live_contracts(chains).group_by([*SESSION, "strike"]).agg(_side_totals())


def with_strike_open_interest(chains: pl.LazyFrame) -> pl.LazyFrame:
    """`chains` with strike_call_oi and strike_put_oi on every contract: its strike's call and put open
    interest over the expirations after trade_date (strike_open_interest), as a rule's contract row
    reads them. NULL on a strike that only contracts expiring on trade_date list."""
    totals = strike_open_interest(chains).select(
        *SESSION,
        "strike",
        pl.col("call_oi").alias("strike_call_oi"),
        pl.col("put_oi").alias("strike_put_oi"),
    )
    return chains.drop("strike_call_oi", "strike_put_oi", strict=False).join(
        totals, on=[*SESSION, "strike"], how="left", maintain_order="left"
    )


def _strongest_strike(strikes: pl.LazyFrame, oi: str, wall: str) -> pl.LazyFrame:
    """Per session, the strike with the most `oi` (wall) and that OI (wall_oi). Ties go to the strike
    nearer spot, then the lower one. Strikes without OI on that side are no wall at all, so a session
    with none gets no row (NULL after the caller's left join). `strikes` needs strike, spot and `oi`."""
    return (
        strikes.filter(pl.col(oi) > 0)
        .with_columns(spot_distance=_SPOT_DISTANCE)
        .group_by(SESSION)
        .agg(
            pl.col("strike")
            .sort_by([oi, "spot_distance", "strike"], descending=[True, False, False])
            .first()
            .alias(wall),
            pl.col(oi).max().alias(f"{wall}_oi"),
        )
    )


def _walls(strikes: pl.LazyFrame) -> pl.LazyFrame:
    """call_wall and put_wall, then the next walls: the strongest call strike above the call wall (the
    next resistance a breakout runs into) and the strongest put strike below the put wall."""
    call_wall = _strongest_strike(strikes, "call_oi", "call_wall")
    put_wall = _strongest_strike(strikes, "put_oi", "put_wall")
    above_call_wall = strikes.join(call_wall, on=SESSION).filter(pl.col("strike") > pl.col("call_wall"))
    below_put_wall = strikes.join(put_wall, on=SESSION).filter(pl.col("strike") < pl.col("put_wall"))
    return (
        call_wall.join(put_wall, on=SESSION, how="full", coalesce=True)
        .join(_strongest_strike(above_call_wall, "call_oi", "next_call_wall"), on=SESSION, how="left")
        .join(_strongest_strike(below_put_wall, "put_oi", "next_put_wall"), on=SESSION, how="left")
    )


def max_pain_by_expiration(live: pl.LazyFrame, spot: pl.LazyFrame) -> pl.LazyFrame:
    """Per (trade_date, underlying, expiration): the listed strike S minimising the payout to holders,
    sum_calls OI*max(0, S-K) + sum_puts OI*max(0, K-S); ties go nearer spot, then lower.

    Every kink of the pain is at a listed strike, and from one listed strike to the next it changes by
    the gap times (OI of all contracts at or below the first) - (the expiration's put OI). OI is never
    negative, so the pain falls while that running OI is below the put OI, stays flat while it equals
    it and rises after: the least-pain strikes are exactly those with OI strictly below S <= put OI <=
    OI at or below S. So one running sum in strike order decides, in exact integers, what evaluating
    the pain at every strike (four running sums) or every S against every K (quadratic) would.
    Strikes are ordered in thousandths, so two that differ only by float noise are one strike.
    `live` holds contracts after trade_date only; `spot` is (trade_date, underlying, spot)."""
    oi = pl.col("open_interest").cast(pl.Int64).fill_null(0)
    at_or_below = oi.cum_sum().over(EXPIRY, order_by=_STRIKE_MILLI)
    put_oi = pl.when(_IS_PUT).then(oi).otherwise(0).sum().over(EXPIRY)
    strike, least = pl.col("strike_milli"), pl.col("least_pain")
    # Per contract in running order, the OI before it <= put OI <= the OI up to it: at least one contract
    # of every least-pain strike passes, maybe not all of them, and those strikes form one run, so the
    # candidates are every contract from the lowest to the highest strike found.
    least_pain_range = strike.is_between(
        pl.when(least).then(strike).min().over(EXPIRY), pl.when(least).then(strike).max().over(EXPIRY)
    )
    return (
        live.select(
            *EXPIRY,
            "strike",
            strike_milli=_STRIKE_MILLI,
            least_pain=(at_or_below - oi <= put_oi) & (put_oi <= at_or_below),
        )
        # Only the least-pain strikes need spot for the tie rule; filtering first keeps the join small.
        .filter(least_pain_range)
        .join(spot, on=SESSION, how="left")
        .with_columns(spot_distance=_SPOT_DISTANCE)
        .group_by(EXPIRY)
        .agg(pl.col("strike").sort_by(["spot_distance", "strike"]).first().alias("max_pain"))
    )


def _with_oi_change(
    totals: pl.LazyFrame, previous: pl.LazyFrame | None, prior_dates: pl.LazyFrame | None
) -> pl.LazyFrame:
    """call_oi_change and put_oi_change against the previous session (prior_dates), found among
    `previous` (positioning rows from the lake) and the earlier sessions in `totals`; NULL where the
    underlying has no row on that session."""
    current = totals.select(*SESSION, "call_oi", "put_oi")
    history = current
    if previous is not None:
        earlier = previous.select(
            pl.col("trade_date").cast(pl.Date),
            pl.col("underlying"),
            pl.col("call_oi").cast(pl.Int64),
            pl.col("put_oi").cast(pl.Int64),
        ).unique(SESSION, keep="last", maintain_order=True)
        # A session recomputed from chains replaces the stored row for the same date.
        history = pl.concat([earlier.join(current, on=SESSION, how="anti"), current])
    if prior_dates is None:
        prior_dates = previous_sessions(history.select("trade_date"))
    prior = history.select(
        "underlying",
        pl.col("trade_date").alias("prior_date"),
        pl.col("call_oi", "put_oi").name.prefix("prior_"),
    )
    return (
        totals.join(prior_dates, on="trade_date", how="left")
        .join(prior, on=["underlying", "prior_date"], how="left")
        .with_columns(
            call_oi_change=pl.col("call_oi") - pl.col("prior_call_oi"),
            put_oi_change=pl.col("put_oi") - pl.col("prior_put_oi"),
        )
    )


def previous_sessions(dates: pl.LazyFrame) -> pl.LazyFrame:
    """(trade_date, prior_date) for every distinct trade_date of `dates`: the session before it among
    them. OI changes compare with that session, not with an underlying's own last one: an underlying
    missing from a day's chain has no change the day after (a nightly, which reads only the previous
    session, and a backfill over both days then agree)."""
    return (
        dates.select(pl.col("trade_date").cast(pl.Date))
        .unique()
        .sort("trade_date")
        .with_columns(prior_date=pl.col("trade_date").shift(1))
    )


# --- gold tables --------------------------------------------------------------------------------------


def positioning_daily(
    chains: pl.LazyFrame,
    spot: pl.LazyFrame | None = None,
    previous: pl.LazyFrame | None = None,
    prior_dates: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per (trade_date, underlying) with contracts expiring after trade_date (POSITIONING_COLUMNS).

    spot: optional (trade_date, underlying, spot), the bars' close where the chain has no spot of its own.
    previous: optional positioning rows (trade_date, underlying, call_oi, put_oi) of earlier sessions,
    for the OI changes: against the previous session, NULL where the underlying has no row there.
    prior_dates: optional (trade_date, prior_date), the lake's previous chain session of each date;
    by default previous_sessions() of the dates in `chains` and `previous`."""
    live = live_contracts(chains)
    # Cached: spots and strikes feed several branches (the walls alone read strikes four times), and
    # the optimizer does not see through the differently pruned copies of them.
    spots = session_spot(chains, spot).cache()
    strikes = (
        live.group_by([*SESSION, "strike"])
        .agg(
            pl.len().alias("contracts"),
            *_side_totals(),
            _side_sum(pl.col("open_interest").cast(pl.Int64), pl.col("gamma").is_not_null()).alias(
                "_gamma_oi"
            ),
        )
        .join(spots, on=SESSION, how="left")
        .cache()
    )
    # The session totals add up the strike totals (exact integers) rather than grouping every contract again.
    totals = strikes.group_by(SESSION).agg(
        pl.col("contracts", "call_oi", "put_oi", "call_volume", "put_volume", "_gamma_oi").sum()
    )
    # The share of open interest whose gamma is known: GEX, DEX and the flip leave the rest out.
    all_oi = pl.col("call_oi") + pl.col("put_oi")
    coverage = pl.when(all_oi > 0).then(pl.col("_gamma_oi").cast(pl.Float64) / all_oi.cast(pl.Float64))
    nearest_expiry = live.filter(pl.col("expiration") == pl.col("expiration").min().over(SESSION))
    max_pain = max_pain_by_expiration(nearest_expiry, spots).rename({"expiration": "max_pain_expiration"})
    return _conform(
        _with_oi_change(totals, previous, prior_dates)
        .join(spots, on=SESSION, how="left")
        .with_columns(
            pcr_oi=_put_call_ratio("put_oi", "call_oi"),
            pcr_volume=_put_call_ratio("put_volume", "call_volume"),
            gamma_coverage=coverage,
        )
        .join(_walls(strikes), on=SESSION, how="left")
        .join(max_pain, on=SESSION, how="left"),
        POSITIONING_SCHEMA,
        SESSION,
    )


def expiry_levels(chains: pl.LazyFrame, spot: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """One row per (trade_date, underlying, expiration) after trade_date: the term structure of OI,
    volume and max pain (EXPIRY_LEVELS_COLUMNS)."""
    live = live_contracts(chains)
    per_expiry = (
        live.group_by(EXPIRY)
        .agg(
            pl.len().alias("contracts"),
            _IS_CALL.sum().cast(pl.Int64).alias("call_contracts"),
            _IS_PUT.sum().cast(pl.Int64).alias("put_contracts"),
            *_side_totals(),
        )
        .with_columns(
            dte=(pl.col("expiration") - pl.col("trade_date")).dt.total_days(),
            pcr_oi=_put_call_ratio("put_oi", "call_oi"),
        )
    )
    max_pain = max_pain_by_expiration(live, session_spot(chains, spot))
    return _conform(
        per_expiry.join(max_pain, on=EXPIRY, how="left"), EXPIRY_LEVELS_SCHEMA, [*SESSION, "expiration"]
    )


def _strike_side_oi(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Long form per (trade_date, underlying, side, strike): OI and volume over expirations after
    trade_date. Only sides actually listed at a strike get a row."""
    return (
        live_contracts(chains)
        .with_columns(side=pl.when(_IS_CALL).then(pl.lit("call")).when(_IS_PUT).then(pl.lit("put")))
        .group_by([*SESSION, "side", "strike"])
        .agg(
            pl.col("open_interest").cast(pl.Int64).sum().alias("open_interest"),
            pl.col("volume").cast(pl.Int64).sum().alias("volume"),
        )
    )


def strike_levels(
    chains: pl.LazyFrame,
    previous_chains: pl.LazyFrame | None = None,
    top_n: int = 5,
    spot: pl.LazyFrame | None = None,
    prior_dates: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The top_n strikes by OI per (trade_date, underlying, side) (STRIKE_LEVELS_COLUMNS).

    Rank 1 is the most OI; ties go to the strike nearer spot, then the lower one; strikes with no OI on
    that side are not ranked. oi_change compares with the previous session (prior_dates, as in
    positioning_daily) found in previous_chains or chains: that session's OI at the same strike and side
    over its own contracts after its own date, 0 where the strike had none; NULL when the underlying
    has no chain on that session (or there is none)."""
    columns = ["trade_date", "underlying", "expiration", "strike", "option_type", "open_interest", "volume"]
    current = chains.select(columns)
    # The history of OI per strike and of sessions, built from parts that never share a session: each
    # part is aggregated on its own and the current one, also needed for the ranking, only once.
    current_oi, current_sessions = _strike_side_oi(current), current.select(SESSION).unique()
    history_oi, history_sessions = current_oi, current_sessions
    if previous_chains is not None:
        earlier = previous_chains.select(columns).with_columns(
            pl.col("trade_date", "expiration").cast(pl.Date)
        )

        def replaced(frame: pl.LazyFrame) -> pl.LazyFrame:
            # A session present in chains replaces the stored one of the same date. Applied to the
            # aggregates (keyed by session) rather than to every contract of the earlier chain.
            return frame.join(current_sessions, on=SESSION, how="anti")

        history_oi = pl.concat([replaced(_strike_side_oi(earlier)), current_oi])
        history_sessions = pl.concat([replaced(earlier.select(SESSION).unique()), current_sessions])

    side_strikes = [*SESSION, "side"]
    ranked = (
        current_oi.filter(pl.col("open_interest") > 0)
        .join(session_spot(chains, spot), on=SESSION, how="left")
        .with_columns(spot_distance=_SPOT_DISTANCE)
        .with_columns(
            rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(
                side_strikes, order_by=[-pl.col("open_interest"), "spot_distance", "strike"]
            )
        )
        .filter(pl.col("rank") <= top_n)
    )
    prior_oi = history_oi.select(
        "underlying",
        pl.col("trade_date").alias("prior_date"),
        "side",
        "strike",
        pl.col("open_interest").alias("prior_oi"),
    )
    if prior_dates is None:
        prior_dates = previous_sessions(history_sessions)
    listed_before = history_sessions.select(
        "underlying", pl.col("trade_date").alias("prior_date"), pl.lit(True).alias("prior_listed")
    )
    with_change = (
        ranked.join(prior_dates, on="trade_date", how="left")
        .join(listed_before, on=["underlying", "prior_date"], how="left")
        .join(prior_oi, on=["underlying", "prior_date", "side", "strike"], how="left")
        .with_columns(
            oi_change=pl.when(pl.col("prior_listed")).then(
                pl.col("open_interest") - pl.col("prior_oi").fill_null(0)
            )
        )
    )
    return _conform(with_change, STRIKE_LEVELS_SCHEMA, [*side_strikes, "rank"])

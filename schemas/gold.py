"""Gold models: the published tables (SPEC section 4). A failure here is a bug in a transform, not bad
input, so validate_gold raises instead of quarantining.

Every published column is declared, typed, described (with its unit) and checked here; GOLD lists the
tables, from which the pipeline and the warehouse take theirs (a new gold table is its model and one
GOLD entry, its transform, and its build step).
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass
from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.checks import OSI_RULE, SYMBOL_RULE, le_tol, osi21_ok, reason, rows, symbol_ok
from schemas.quarantine import REASON, describe_structural, is_row_failure, row_reasons, run_lazy_validation
from transforms.errors import ChainsignalsError


class GoldValidationError(ChainsignalsError):
    """A gold table (`dataset`) broke its contract; the message is one line naming it and the failed checks."""


def _ordered(*columns: str) -> pl.Expr:
    """columns[0] <= columns[1] <= ...; Kleene logic, so a NULL level (short history) fails nothing."""
    return pl.all_horizontal(le_tol(lo, hi) for lo, hi in itertools.pairwise(columns))


def _dte_matches() -> pl.Expr:
    return pl.col("dte") == (pl.col("expiration") - pl.col("trade_date")).dt.total_days()


class GoldModel(pa.DataFrameModel):
    """The columns, checks and settings every gold table shares: the session and the instrument, named
    alike in every table so they join with USING (trade_date, symbol)."""

    trade_date: pl.Date = pa.Field(description="The session the row describes (exchange date)")
    symbol: str = pa.Field(
        description="The instrument: the stock, ETF or index ticker (an option's underlying)"
    )

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

    class Config:
        # Every published column is declared: an undeclared one fails, so nothing reaches gold unchecked.
        strict = True
        coerce = False


class TechnicalsDaily(GoldModel):
    """One row per symbol and session, from the bars up to and including that session. Indicators are
    NULL while the window lacks history."""

    open: pl.Float64 = pa.Field(gt=0, description="Session open (dollars)")
    high: pl.Float64 = pa.Field(gt=0, description="Session high (dollars)")
    low: pl.Float64 = pa.Field(gt=0, description="Session low (dollars)")
    close: pl.Float64 = pa.Field(gt=0, description="Session close (dollars)")
    volume: pl.Int64 = pa.Field(ge=0, description="Shares traded in the session (shares)")
    prev_close: pl.Float64 = pa.Field(gt=0, nullable=True, description="Previous session's close (dollars)")
    change_pct: pl.Float64 = pa.Field(
        nullable=True, description="Close vs the previous close (percent: -0.64 means -0.64%)"
    )
    sma_20: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Simple moving average of 20 closes (dollars)"
    )
    sma_30: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Simple moving average of 30 closes (dollars)"
    )
    sma_50: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Simple moving average of 50 closes (dollars)"
    )
    sma_200: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Simple moving average of 200 closes (dollars)"
    )
    ema_20: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Exponential moving average of 20 closes, as TA-Lib (dollars)"
    )
    bb_upper: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Upper Bollinger band: sma_20 + 2 population std (dollars)"
    )
    bb_middle: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Middle Bollinger band: sma_20 (dollars)"
    )
    # The lower band can go negative on a violent low-priced name: middle - 2 std.
    bb_lower: pl.Float64 = pa.Field(
        nullable=True, description="Lower Bollinger band: sma_20 - 2 population std (dollars)"
    )
    atr_14: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Average true range, Wilder, 14 sessions (dollars)"
    )
    rsi_14: pl.Float64 = pa.Field(
        ge=0, le=100, nullable=True, description="Relative strength index, Wilder, 14 sessions (0-100 points)"
    )
    rv_20: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Realised volatility: annualised std of 20 log returns (fraction)"
    )
    high_52w: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Highest high of the last 252 sessions, this one included (dollars)"
    )
    low_52w: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Lowest low of the last 252 sessions, this one included (dollars)"
    )
    beta_252: pl.Float64 = pa.Field(
        nullable=True,
        description="Beta vs the configured benchmark over 252 sessions of daily returns (ratio)",
    )
    volume_ratio_20: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Volume over its 20-session average (ratio)"
    )
    pivot_point: pl.Float64 = pa.Field(
        nullable=True, description="Floor pivot for the next session: (high + low + close) / 3 (dollars)"
    )
    r1: pl.Float64 = pa.Field(nullable=True, description="First pivot resistance: 2P - low (dollars)")
    s1: pl.Float64 = pa.Field(nullable=True, description="First pivot support: 2P - high (dollars)")
    r2: pl.Float64 = pa.Field(
        nullable=True, description="Second pivot resistance: P + (high - low) (dollars)"
    )
    s2: pl.Float64 = pa.Field(nullable=True, description="Second pivot support: P - (high - low) (dollars)")
    r3: pl.Float64 = pa.Field(
        nullable=True, description="Third pivot resistance: high + 2(P - low) (dollars)"
    )
    s3: pl.Float64 = pa.Field(nullable=True, description="Third pivot support: low - 2(high - P) (dollars)")

    @pa.check("high", error=reason("high_ge_low", "high", "low"))
    def _high_ge_low(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("high") >= pl.col("low"))

    @pa.check("bb_middle", error=reason("bands_ordered", "bb_lower", "bb_middle", "bb_upper"))
    def _bands_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _ordered("bb_lower", "bb_middle", "bb_upper"))

    # The 52-week range includes this session, so it must contain this session's bar.
    @pa.check("high_52w", error=reason("range_52w_contains_bar", "low_52w", "low", "high", "high_52w"))
    def _range_52w(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _ordered("low_52w", "low", "high", "high_52w"))

    # With L <= P <= H the floor pivots are always in this order.
    @pa.check(
        "pivot_point", error=reason("pivots_ordered", "s3", "s2", "s1", "pivot_point", "r1", "r2", "r3")
    )
    def _pivots_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _ordered("s3", "s2", "s1", "pivot_point", "r1", "r2", "r3"))

    class Config:
        name = "technicals_daily"


class PositioningDaily(GoldModel):
    """One row per underlying and session, over its contracts expiring after trade_date."""

    spot: pl.Float64 = pa.Field(
        gt=0, description="The session's one spot, used by every calculation (dollars)"
    )
    # chain: the vendor's underlying_price; bars: the session's close (SPEC 3 "Spot").
    spot_source: str = pa.Field(
        isin=["chain", "bars"], description="Where spot comes from: chain (the vendor's) or bars (the close)"
    )
    contracts: pl.Int64 = pa.Field(ge=0, description="Contracts listed after trade_date (contracts)")
    call_oi: pl.Int64 = pa.Field(ge=0, description="Call open interest, all expirations (contracts)")
    put_oi: pl.Int64 = pa.Field(ge=0, description="Put open interest, all expirations (contracts)")
    call_volume: pl.Int64 = pa.Field(ge=0, description="Call volume traded in the session (contracts)")
    put_volume: pl.Int64 = pa.Field(ge=0, description="Put volume traded in the session (contracts)")
    pcr_oi: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Put/call open-interest ratio, NULL without call OI (ratio)"
    )
    pcr_volume: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Put/call volume ratio, NULL without call volume (ratio)"
    )
    call_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike with the most call OI over all expirations (dollars)"
    )
    call_wall_oi: pl.Int64 = pa.Field(ge=0, nullable=True, description="Call OI at call_wall (contracts)")
    put_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike with the most put OI over all expirations (dollars)"
    )
    put_wall_oi: pl.Int64 = pa.Field(ge=0, nullable=True, description="Put OI at put_wall (contracts)")
    next_call_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike above call_wall with the most call OI (dollars)"
    )
    next_call_wall_oi: pl.Int64 = pa.Field(
        ge=0, nullable=True, description="Call OI at next_call_wall (contracts)"
    )
    next_put_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike below put_wall with the most put OI (dollars)"
    )
    next_put_wall_oi: pl.Int64 = pa.Field(
        ge=0, nullable=True, description="Put OI at next_put_wall (contracts)"
    )
    max_pain: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Max-pain strike of the nearest expiration (dollars)"
    )
    max_pain_expiration: pl.Date = pa.Field(
        nullable=True, description="The expiration max_pain is computed on"
    )
    call_oi_change: pl.Int64 = pa.Field(
        nullable=True, description="Call OI vs the previous session in the lake (contracts)"
    )
    put_oi_change: pl.Int64 = pa.Field(
        nullable=True, description="Put OI vs the previous session in the lake (contracts)"
    )
    # The share of open interest whose gamma is known: GEX and the flip leave the rest out.
    gamma_coverage: pl.Float64 = pa.Field(
        ge=0, le=1, nullable=True, description="Share of open interest whose gamma is known (fraction)"
    )
    net_gex: pl.Float64 = pa.Field(
        nullable=True,
        description="Net dealer gamma exposure, calls + puts -: gamma*OI*100*spot^2*0.01 (dollars per 1% move)",
    )
    net_dex: pl.Float64 = pa.Field(
        nullable=True, description="Net delta exposure: delta*OI*100*spot (dollars)"
    )
    call_gex_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike with the largest call GEX (dollars)"
    )
    put_gex_wall: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Strike with the largest put GEX in absolute value (dollars)"
    )
    gamma_flip: pl.Float64 = pa.Field(
        gt=0,
        nullable=True,
        description="Spot level in [0.8, 1.2] x spot where net GEX crosses zero, nearest to spot (dollars)",
    )
    atm_iv_30: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Constant-maturity 30-day at-the-money implied volatility (fraction)"
    )
    rr_25d: pl.Float64 = pa.Field(
        nullable=True, description="25-delta risk reversal nearest 30 days: call IV - put IV (fraction)"
    )
    iv_rank_252: pl.Float64 = pa.Field(
        ge=0, le=1, nullable=True, description="IV rank of atm_iv_30 over up to 252 sessions (fraction)"
    )
    iv_percentile_252: pl.Float64 = pa.Field(
        ge=0,
        le=1,
        nullable=True,
        description="Share of up to 252 earlier sessions whose atm_iv_30 was lower (fraction)",
    )

    @pa.check(
        "max_pain_expiration",
        error=reason("expiration_after_trade_date", "max_pain_expiration", "trade_date"),
    )
    def _max_pain_expiration(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("max_pain_expiration") > pl.col("trade_date"))

    @pa.check(
        "next_call_wall",
        error=reason("walls_ordered", "next_put_wall", "put_wall", "call_wall", "next_call_wall"),
    )
    def _walls_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(
            data,
            (pl.col("next_call_wall") > pl.col("call_wall")) & (pl.col("next_put_wall") < pl.col("put_wall")),
        )

    # The flip is searched on a grid of [0.8, 1.2] x spot (SPEC 4).
    @pa.check("gamma_flip", error=reason("flip_within_20pct_of_spot", "gamma_flip", "spot"))
    def _flip_near_spot(cls, data: PolarsData) -> pl.LazyFrame:
        flip, spot = pl.col("gamma_flip"), pl.col("spot")
        return rows(data, (flip >= 0.8 * spot * (1 - 1e-9)) & (flip <= 1.2 * spot * (1 + 1e-9)))

    class Config:
        name = "positioning_daily"


class StrikeLevels(GoldModel):
    """The top N strikes by open interest per underlying, side and session."""

    side: str = pa.Field(description="call or put")
    rank: pl.Int64 = pa.Field(ge=1, description="1 = the most open interest on this side")
    strike: pl.Float64 = pa.Field(gt=0, description="Strike (dollars)")
    open_interest: pl.Int64 = pa.Field(
        ge=0, description="Open interest at the strike, all expirations (contracts)"
    )
    volume: pl.Int64 = pa.Field(ge=0, description="Volume at the strike, all expirations (contracts)")
    oi_change: pl.Int64 = pa.Field(
        nullable=True, description="Open interest vs the previous session in the lake (contracts)"
    )

    @pa.check("side", error="isin(call,put)")
    def _side(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("side").is_in(["call", "put"]))

    class Config:
        name = "strike_levels"


class ExpiryLevels(GoldModel):
    """Per underlying, session and expiration: the term structure and per-expiry max pain."""

    expiration: pl.Date = pa.Field(description="Expiration date")
    dte: pl.Int64 = pa.Field(ge=0, description="Calendar days from trade_date to expiration (days)")
    contracts: pl.Int64 = pa.Field(ge=0, description="Contracts listed for the expiration (contracts)")
    call_contracts: pl.Int64 = pa.Field(ge=0, description="Calls listed for the expiration (contracts)")
    put_contracts: pl.Int64 = pa.Field(ge=0, description="Puts listed for the expiration (contracts)")
    call_oi: pl.Int64 = pa.Field(ge=0, description="Call open interest (contracts)")
    put_oi: pl.Int64 = pa.Field(ge=0, description="Put open interest (contracts)")
    pcr_oi: pl.Float64 = pa.Field(ge=0, nullable=True, description="Put/call open-interest ratio (ratio)")
    call_volume: pl.Int64 = pa.Field(ge=0, description="Call volume (contracts)")
    put_volume: pl.Int64 = pa.Field(ge=0, description="Put volume (contracts)")
    max_pain: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Max-pain strike of the expiration (dollars)"
    )
    net_gex: pl.Float64 = pa.Field(
        nullable=True, description="Net dealer gamma exposure of the expiration (dollars per 1% move)"
    )
    net_dex: pl.Float64 = pa.Field(
        nullable=True, description="Net delta exposure of the expiration (dollars)"
    )
    atm_iv: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="At-the-money implied volatility of the expiration (fraction)"
    )
    # The implied forward (SPEC 3): put-call parity, or spot grown at the risk-free rate.
    forward: pl.Float64 = pa.Field(gt=0, nullable=True, description="Implied forward price (dollars)")
    forward_source: str = pa.Field(
        isin=["parity", "spot"],
        nullable=True,
        description="parity (put-call parity) or spot (spot grown at the rate)",
    )
    # The yardsticks (transforms/yardsticks.py): NULL where the chain cannot give them.
    expected_move: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="At-the-forward straddle price: the expected move (dollars)"
    )
    expected_move_pct: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="expected_move over spot (percent)"
    )
    rr_25d: pl.Float64 = pa.Field(
        nullable=True, description="25-delta risk reversal: call IV - put IV (fraction)"
    )
    bf_25d: pl.Float64 = pa.Field(
        nullable=True, description="25-delta butterfly: mean wing IV - at-the-forward IV (fraction)"
    )

    @pa.check("expiration", error=reason("expiration_ge_trade_date", "expiration", "trade_date"))
    def _not_expired(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("expiration") >= pl.col("trade_date"))

    @pa.check("dte", error=reason("dte_matches_expiration", "dte", "expiration", "trade_date"))
    def _dte(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _dte_matches())

    class Config:
        name = "expiry_levels"


class Blocks(GoldModel):
    """Block prints: notional (price*size*100) or size over the configured thresholds, quote-rule side."""

    ts: Annotated[pl.Datetime, "us", "UTC"] = pa.Field(description="Print time (UTC)")
    option_symbol: str = pa.Field(description="Contract, 21-char OSI")
    expiration: pl.Date = pa.Field(description="Contract expiration")
    strike: pl.Float64 = pa.Field(gt=0, description="Contract strike (dollars)")
    option_type: str = pa.Field(isin=["C", "P"], description="C (call) or P (put)")
    size: pl.Int64 = pa.Field(gt=0, description="Print size (contracts)")
    price: pl.Float64 = pa.Field(gt=0, description="Print price per share (dollars)")
    notional: pl.Float64 = pa.Field(gt=0, description="price * size * 100 (dollars)")
    side: str = pa.Field(isin=["buy", "sell", "unknown"], description="Quote-rule side: buy, sell or unknown")

    @pa.check("option_symbol", error=OSI_RULE)
    def _option_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, osi21_ok("option_symbol"))

    class Config:
        name = "blocks"


class FlowDaily(GoldModel):
    """Per underlying and session: block counts and notionals by side, the largest block, unusual contracts."""

    block_count: pl.Int64 = pa.Field(ge=0, description="Block prints (prints)")
    buy_block_count: pl.Int64 = pa.Field(ge=0, description="Block prints on the buy side (prints)")
    sell_block_count: pl.Int64 = pa.Field(ge=0, description="Block prints on the sell side (prints)")
    block_buy_notional: pl.Float64 = pa.Field(ge=0, description="Notional of buy blocks (dollars)")
    block_sell_notional: pl.Float64 = pa.Field(ge=0, description="Notional of sell blocks (dollars)")
    block_notional: pl.Float64 = pa.Field(ge=0, description="Notional of all blocks (dollars)")
    largest_block_symbol: str = pa.Field(
        nullable=True, description="Contract of the largest block, 21-char OSI"
    )
    largest_block_notional: pl.Float64 = pa.Field(
        nullable=True, gt=0, description="Notional of the largest block (dollars)"
    )
    largest_block_side: str = pa.Field(
        nullable=True, isin=["buy", "sell", "unknown"], description="Side of the largest block"
    )
    unusual_contracts: pl.Int64 = pa.Field(
        nullable=True,
        ge=0,
        description="Contracts with volume > 500, OI > 100, last > 0.10 and volume/OI >= 1.25 (contracts)",
    )

    @pa.check(
        "block_count",
        error=reason("sides_within_total", "buy_block_count", "sell_block_count", "block_count"),
    )
    def _sides(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("buy_block_count") + pl.col("sell_block_count") <= pl.col("block_count"))

    class Config:
        name = "flow_daily"


class SignalsDaily(GoldModel):
    """One row per symbol and session: the bias, its score and the levels behind the scenarios."""

    close: pl.Float64 = pa.Field(gt=0, description="Session close (dollars)")
    change_pct: pl.Float64 = pa.Field(nullable=True, description="Close vs the previous close (percent)")
    bias_score: pl.Int64 = pa.Field(
        ge=-100, le=100, description="Sum of the score_ components (-100..100 points)"
    )
    bias: str = pa.Field(description="bullish, bearish or neutral, from bias_score")
    score_trend: pl.Float64 = pa.Field(description="Trend component: close vs SMA 30/50/200 (points)")
    score_rsi: pl.Float64 = pa.Field(description="RSI component (points)")
    score_percent_b: pl.Float64 = pa.Field(description="Bollinger %B component (points)")
    score_pcr: pl.Float64 = pa.Field(description="Put/call OI vs its own history component (points)")
    score_flow: pl.Float64 = pa.Field(description="Block-flow direction component (points)")
    score_gamma: pl.Float64 = pa.Field(description="Spot vs gamma flip component (points)")
    percent_b: pl.Float64 = pa.Field(
        nullable=True,
        description="Bollinger %B: (close - lower) / (upper - lower) (fraction, 1 = upper band)",
    )
    pcr_oi: pl.Float64 = pa.Field(ge=0, nullable=True, description="Put/call open-interest ratio (ratio)")
    pcr_oi_z: pl.Float64 = pa.Field(
        nullable=True, description="z-score of pcr_oi vs its own recent sessions (standard deviations)"
    )
    support: pl.Float64 = pa.Field(nullable=True, description="Nearest support below close (dollars)")
    resistance: pl.Float64 = pa.Field(nullable=True, description="Nearest resistance above close (dollars)")
    breakout_level: pl.Float64 = pa.Field(nullable=True, description="Level whose break is bullish (dollars)")
    breakdown_level: pl.Float64 = pa.Field(
        nullable=True, description="Level whose break is bearish (dollars)"
    )
    bull_case: str = pa.Field(nullable=True, description="One-sentence bullish scenario with its levels")
    bear_case: str = pa.Field(nullable=True, description="One-sentence bearish scenario with its levels")
    summary: str = pa.Field(description="One-line summary of the session")

    @pa.check("bias", error="isin(bullish,bearish,neutral)")
    def _bias(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("bias").is_in(["bullish", "bearish", "neutral"]))

    # The score is documented as the sum of its visible components; a drift between them is a bug.
    @pa.check("bias_score", error=reason("score_is_sum_of_components", "bias_score"))
    def _score_sum(cls, data: PolarsData) -> pl.LazyFrame:
        components = ("score_trend", "score_rsi", "score_percent_b", "score_pcr", "score_flow", "score_gamma")
        total = pl.sum_horizontal(components).round(0).clip(-100, 100)
        return rows(data, pl.col("bias_score") == total)

    @pa.check("support", error=reason("support_below_close", "support", "close"))
    def _support(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("support") < pl.col("close"))

    @pa.check("resistance", error=reason("resistance_above_close", "resistance", "close"))
    def _resistance(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("resistance") > pl.col("close"))

    class Config:
        name = "signals_daily"


class TradeIdeas(GoldModel):
    """One row per idea; option ideas name a 21-char OSI contract of that day's chain, stock ideas none."""

    idea_id: str = pa.Field(unique=True, description="Stable hash of date, symbol, rule and instrument")
    rule: str = pa.Field(description="The rule that produced the idea (chainsignals.toml)")
    direction: str = pa.Field(description="bullish or bearish")
    instrument: str = pa.Field(description="stock, call or put")
    option_symbol: str = pa.Field(nullable=True, description="Contract, 21-char OSI; NULL for stock")
    expiration: pl.Date = pa.Field(nullable=True, description="Contract expiration; NULL for stock")
    strike: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Contract strike (dollars); NULL for stock"
    )
    dte: pl.Int64 = pa.Field(
        ge=0, nullable=True, description="Calendar days to expiration (days); NULL for stock"
    )
    entry_premium: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="Contract mid at entry (dollars per share)"
    )
    contract_open_interest: pl.Int64 = pa.Field(
        ge=0, nullable=True, description="Contract open interest on trade_date (contracts)"
    )
    underlying_close: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="The symbol's close on trade_date (dollars)"
    )
    trigger_level: pl.Float64 = pa.Field(description="Underlying level that triggers the idea (dollars)")
    trigger_direction: str = pa.Field(description="above or below: how trigger_level must be crossed")
    target: pl.Float64 = pa.Field(description="Underlying target level (dollars)")
    stop: pl.Float64 = pa.Field(description="Underlying stop level (dollars)")
    risk_reward: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="|target - trigger| / |trigger - stop| (ratio)"
    )
    rationale: str = pa.Field(description="Why, in one sentence with the levels")

    @pa.check("direction", error="isin(bullish,bearish)")
    def _direction(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("direction").is_in(["bullish", "bearish"]))

    @pa.check("instrument", error="isin(stock,call,put)")
    def _instrument(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("instrument").is_in(["stock", "call", "put"]))

    @pa.check("trigger_direction", error="isin(above,below)")
    def _trigger_direction(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("trigger_direction").is_in(["above", "below"]))

    @pa.check("option_symbol", error=OSI_RULE)
    def _option_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, osi21_ok("option_symbol"))

    @pa.check("instrument", error=reason("contract_iff_option", "instrument", "option_symbol"))
    def _contract_iff_option(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, (pl.col("instrument") == "stock") == pl.col("option_symbol").is_null())

    # A bullish idea risks down to its stop and aims up at its target; a bearish one the mirror.
    @pa.check("trigger_level", error=reason("levels_ordered", "stop", "trigger_level", "target", "direction"))
    def _levels_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        stop, trigger, target = pl.col("stop"), pl.col("trigger_level"), pl.col("target")
        bullish = (stop < trigger) & (trigger < target)
        bearish = (stop > trigger) & (trigger > target)
        return rows(data, pl.when(pl.col("direction") == "bullish").then(bullish).otherwise(bearish))

    @pa.check("expiration", error=reason("expires_after_trade_date", "expiration", "trade_date"))
    def _expires_after_trade_date(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("expiration") > pl.col("trade_date"))

    class Config:
        name = "trade_ideas"


class IdeaOutcomes(GoldModel):
    """One row per idea and run: how the idea stood as of trade_date (the run's session). Each run adds a
    snapshot; the view latest_idea_outcomes holds each idea's latest one, its current outcome."""

    trade_date: pl.Date = pa.Field(description="As of this session (data dated on or before it)")
    idea_id: str = pa.Field(unique=True, description="trade_ideas.idea_id")
    idea_date: pl.Date = pa.Field(description="The idea's own session (trade_ideas.trade_date)")
    rule: str = pa.Field(description="The rule that produced the idea")
    direction: str = pa.Field(description="bullish or bearish")
    instrument: str = pa.Field(description="stock, call or put")
    option_symbol: str = pa.Field(nullable=True, description="Contract, 21-char OSI; NULL for stock")
    status: str = pa.Field(description="pending, not_triggered, open, target_hit, stop_hit or expired")
    triggered_on: pl.Date = pa.Field(nullable=True, description="Session the trigger level was crossed")
    entry_price: pl.Float64 = pa.Field(
        gt=0, nullable=True, description="Underlying entry: the trigger level, or the open on a gap (dollars)"
    )
    closed_on: pl.Date = pa.Field(nullable=True, description="Session of the target, stop or last close")
    exit_price: pl.Float64 = pa.Field(
        gt=0,
        nullable=True,
        description="Underlying exit: target or stop (the open on a gap), or the last close (dollars)",
    )
    r_multiple: pl.Float64 = pa.Field(
        nullable=True, description="(exit - entry) / (entry - stop), mirrored for bearish ideas (R)"
    )
    sessions_walked: pl.Int64 = pa.Field(ge=0, description="Sessions after idea_date looked at (sessions)")
    option_exit_mid: pl.Float64 = pa.Field(
        ge=0, nullable=True, description="The contract's mid on closed_on, from the chain (dollars per share)"
    )
    option_mid_source: str = pa.Field(
        nullable=True, description="chain or missing, for option ideas with an exit; else NULL"
    )
    option_r_multiple: pl.Float64 = pa.Field(
        nullable=True, description="(option_exit_mid - entry_premium) / entry_premium (R)"
    )

    @pa.check("status", error="isin(pending,not_triggered,open,target_hit,stop_hit,expired)")
    def _status(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(
            data,
            pl.col("status").is_in(["pending", "not_triggered", "open", "target_hit", "stop_hit", "expired"]),
        )

    @pa.check("option_mid_source", error="isin(chain,missing)")
    def _mid_source(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("option_mid_source").is_in(["chain", "missing"]))

    # The walk only sees sessions after the idea's date and up to the run's session.
    @pa.check("idea_date", error=reason("idea_before_as_of", "idea_date", "trade_date"))
    def _idea_before_as_of(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("idea_date") < pl.col("trade_date"))

    @pa.check(
        "triggered_on", error=reason("dates_ordered", "idea_date", "triggered_on", "closed_on", "trade_date")
    )
    def _dates_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        idea, triggered, closed, as_of = (
            pl.col(c) for c in ("idea_date", "triggered_on", "closed_on", "trade_date")
        )
        return rows(
            data,
            ((triggered > idea) & (triggered <= as_of)).fill_null(True)
            & ((closed > idea) & (closed <= as_of)).fill_null(True)
            & (closed >= triggered).fill_null(True),
        )

    # Triggered statuses carry an entry; closed ones an exit and a closing session; live ones neither.
    @pa.check(
        "status",
        error=reason("status_fields", "status", "triggered_on", "entry_price", "closed_on", "exit_price"),
    )
    def _status_fields(cls, data: PolarsData) -> pl.LazyFrame:
        status = pl.col("status")
        triggered = status.is_in(["open", "target_hit", "stop_hit", "expired"])
        with_exit = status.is_in(["target_hit", "stop_hit", "expired"])
        live = status.is_in(["pending", "open"])
        return rows(
            data,
            (pl.col("triggered_on").is_not_null() == triggered)
            & (pl.col("entry_price").is_not_null() == triggered)
            & (pl.col("exit_price").is_not_null() == with_exit)
            & (~with_exit | pl.col("closed_on").is_not_null())
            & (~live | pl.col("closed_on").is_null()),
        )

    @pa.check(
        "option_mid_source",
        error=reason("mid_source_iff_option_exit", "option_mid_source", "instrument", "status"),
    )
    def _mid_source_iff_option_exit(cls, data: PolarsData) -> pl.LazyFrame:
        priced = (pl.col("instrument") != "stock") & pl.col("status").is_in(
            ["target_hit", "stop_hit", "expired"]
        )
        return rows(data, pl.col("option_mid_source").is_not_null() == priced)

    class Config:
        name = "idea_outcomes"


# ------------------------------------------------------------------------------------------ registry
_DUCKDB_TYPES = {
    pl.Date: "DATE",
    pl.String: "VARCHAR",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.Boolean: "BOOLEAN",
}


def duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    return _DUCKDB_TYPES[dtype.base_type()]


def quoted(identifier: str) -> str:
    """A column name as a DuckDB identifier (some, such as rank, are SQL words)."""
    return f'"{identifier}"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class GoldTable:
    """One gold table, declared once: the pipeline's table list, key sorts, validation and the
    warehouse's DDL and comments are all derived from it."""

    model: type[GoldModel]
    # Rows are written sorted by the key, so a file's rows never depend on join or thread order.
    key: tuple[str, ...]
    # The transform computing it (module.function); flows/stages/gold.py build_gold calls it.
    producer: str
    # The key as the warehouse table's PRIMARY KEY. Only where the key identifies a row and the table
    # has a few rows per symbol and session: DuckDB's index on the per-expiry and per-strike tables
    # would cost the nightly's load more than the rest of it and grow the file several times over.
    primary_key: bool = True

    @property
    def name(self) -> str:
        return self.model.to_schema().name

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """The table's columns and polars types, in the model's order."""
        return {name: column.dtype.type for name, column in self.model.to_schema().columns.items()}

    @property
    def description(self) -> str:
        return " ".join(inspect.getdoc(self.model).split())

    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS with every column's type, NOT NULL where the model refuses NULL,
        and the key as PRIMARY KEY where declared."""
        columns = self.model.to_schema().columns
        lines = [
            f"    {quoted(name)} {duckdb_type(column.dtype.type)}{'' if column.nullable else ' NOT NULL'}"
            for name, column in columns.items()
        ]
        if self.primary_key:
            lines.append(f"    PRIMARY KEY ({', '.join(quoted(c) for c in self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(lines) + "\n)"

    def comments(self, present: set[str] | None = None) -> list[str]:
        """COMMENT ON statements for the table and each of its columns (those `present` when given), from
        the model's descriptions."""
        statements = [f"COMMENT ON TABLE {self.name} IS {sql_literal(self.description)}"]
        for name, column in self.model.to_schema().columns.items():
            if present is not None and name not in present:
                continue
            statements.append(
                f"COMMENT ON COLUMN {self.name}.{quoted(name)} IS {sql_literal(column.description)}"
            )
        return statements


GOLD: tuple[GoldTable, ...] = (
    GoldTable(TechnicalsDaily, ("trade_date", "symbol"), "transforms.technicals.technicals_daily"),
    GoldTable(PositioningDaily, ("trade_date", "symbol"), "transforms.positioning.positioning_daily"),
    GoldTable(
        ExpiryLevels,
        ("trade_date", "symbol", "expiration"),
        "transforms.positioning.expiry_levels",
        primary_key=False,
    ),
    GoldTable(
        StrikeLevels,
        ("trade_date", "symbol", "side", "rank"),
        "transforms.positioning.strike_levels",
        primary_key=False,
    ),
    # Two prints alike in every column are both real: no key identifies a block.
    GoldTable(
        Blocks,
        ("trade_date", "symbol", "ts", "option_symbol", "size", "price"),
        "transforms.order_flow.blocks",
        primary_key=False,
    ),
    GoldTable(FlowDaily, ("trade_date", "symbol"), "transforms.order_flow.flow_daily"),
    GoldTable(SignalsDaily, ("trade_date", "symbol"), "transforms.signals.signals_daily"),
    GoldTable(TradeIdeas, ("trade_date", "symbol", "rule", "idea_id"), "transforms.ideas.trade_ideas"),
    GoldTable(IdeaOutcomes, ("trade_date", "idea_id"), "transforms.outcomes.outcomes_for_run"),
)
GOLD_BY_NAME: dict[str, GoldTable] = {table.name: table for table in GOLD}
GOLD_TABLES: tuple[str, ...] = tuple(GOLD_BY_NAME)


def validate_gold(df: pl.DataFrame | pl.LazyFrame, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """Return ``df`` (collected) if it meets ``model``, else raise GoldValidationError with a summary."""
    # Collect once: pandera would otherwise re-run a lazy plan for every check.
    frame = df.collect() if isinstance(df, pl.LazyFrame) else df
    table = model.to_schema().name
    # Nothing non-finite is published: an inf or NaN here is a transform's bug (silver quarantines them).
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    if floats and frame.height:
        counts = frame.select((~pl.col(c).is_finite()).sum().alias(c) for c in floats).row(0, named=True)
        bad = [f"non_finite:{c} ({n} rows)" for c, n in counts.items() if n]
        if bad:
            raise GoldValidationError(f"{table}: {'; '.join(bad)}", dataset=table)
    errors, failure_cases = run_lazy_validation(frame, model)
    if not errors:
        return frame
    structural = [e for e in errors if not is_row_failure(e)]
    if structural:
        raise GoldValidationError(f"{table}: {describe_structural(structural)}", dataset=table)
    failures = row_reasons(failure_cases)
    summary = (
        failures.group_by(REASON, maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            pl.col("failure_case").first().cast(pl.String).fill_null("null").alias("example"),
        )
        .select(pl.format("{} ({} rows, e.g. {})", REASON, "rows", "example"))
        .to_series()
        .to_list()
    )
    bad_rows = failures.get_column(failures.columns[0]).n_unique()
    raise GoldValidationError(
        f"{table}: {bad_rows} of {len(frame)} rows failed: {'; '.join(summary)}", dataset=table
    )


__all__ = [
    "GOLD",
    "GOLD_BY_NAME",
    "GOLD_TABLES",
    "Blocks",
    "ExpiryLevels",
    "FlowDaily",
    "GoldModel",
    "GoldTable",
    "GoldValidationError",
    "IdeaOutcomes",
    "PositioningDaily",
    "SignalsDaily",
    "StrikeLevels",
    "TechnicalsDaily",
    "TradeIdeas",
    "validate_gold",
]

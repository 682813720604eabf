"""Gold models: the published tables (SPEC section 4). A failure here is a bug in a transform, not bad
input, so validate_gold raises instead of quarantining.

``strict=False``: the contract columns are the minimum, more columns are welcome.
"""

from __future__ import annotations

import itertools
from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.quarantine import REASON, describe_structural, is_row_failure, row_reasons, run_lazy_validation
from schemas.rules import OSI_RULE, SYMBOL_RULE, le_tol, osi21_ok, reason, rows, symbol_ok
from transforms.errors import ChainsignalsError


class GoldValidationError(ChainsignalsError):
    """A gold table (`dataset`) broke its contract; the message is one line naming it and the failed checks."""


def _ordered(*columns: str) -> pl.Expr:
    """columns[0] <= columns[1] <= ...; Kleene logic, so a NULL level (short history) fails nothing."""
    return pl.all_horizontal(le_tol(lo, hi) for lo, hi in itertools.pairwise(columns))


def _dte_matches() -> pl.Expr:
    return pl.col("dte") == (pl.col("expiration") - pl.col("trade_date")).dt.total_days()


class TechnicalsDaily(pa.DataFrameModel):
    """One row per symbol and session. Indicators are NULL while the window lacks history."""

    trade_date: pl.Date
    symbol: str
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Int64 = pa.Field(ge=0)
    prev_close: pl.Float64 = pa.Field(gt=0, nullable=True)
    change_pct: pl.Float64 = pa.Field(nullable=True)
    sma_20: pl.Float64 = pa.Field(gt=0, nullable=True)
    sma_30: pl.Float64 = pa.Field(gt=0, nullable=True)
    sma_50: pl.Float64 = pa.Field(gt=0, nullable=True)
    sma_200: pl.Float64 = pa.Field(gt=0, nullable=True)
    ema_20: pl.Float64 = pa.Field(gt=0, nullable=True)
    bb_upper: pl.Float64 = pa.Field(gt=0, nullable=True)
    bb_middle: pl.Float64 = pa.Field(gt=0, nullable=True)
    # The lower band can go negative on a violent low-priced name: middle - 2 std.
    bb_lower: pl.Float64 = pa.Field(nullable=True)
    atr_14: pl.Float64 = pa.Field(ge=0, nullable=True)
    rsi_14: pl.Float64 = pa.Field(ge=0, le=100, nullable=True)
    rv_20: pl.Float64 = pa.Field(ge=0, nullable=True)
    high_52w: pl.Float64 = pa.Field(gt=0, nullable=True)
    low_52w: pl.Float64 = pa.Field(gt=0, nullable=True)
    beta_252: pl.Float64 = pa.Field(nullable=True)
    volume_ratio_20: pl.Float64 = pa.Field(ge=0, nullable=True)
    pivot_point: pl.Float64 = pa.Field(nullable=True)
    r1: pl.Float64 = pa.Field(nullable=True)
    s1: pl.Float64 = pa.Field(nullable=True)
    r2: pl.Float64 = pa.Field(nullable=True)
    s2: pl.Float64 = pa.Field(nullable=True)
    r3: pl.Float64 = pa.Field(nullable=True)
    s3: pl.Float64 = pa.Field(nullable=True)

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

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
        strict = False
        coerce = False


class PositioningDaily(pa.DataFrameModel):
    """One row per underlying and session, over contracts expiring after trade_date."""

    trade_date: pl.Date
    underlying: str
    spot: pl.Float64 = pa.Field(gt=0)
    # chain: the vendor's underlying_price; bars: the session's close (SPEC 3 "Spot").
    spot_source: str = pa.Field(isin=["chain", "bars"])
    contracts: pl.Int64 = pa.Field(ge=0)
    call_oi: pl.Int64 = pa.Field(ge=0)
    put_oi: pl.Int64 = pa.Field(ge=0)
    call_volume: pl.Int64 = pa.Field(ge=0)
    put_volume: pl.Int64 = pa.Field(ge=0)
    pcr_oi: pl.Float64 = pa.Field(ge=0, nullable=True)
    pcr_volume: pl.Float64 = pa.Field(ge=0, nullable=True)
    call_wall: pl.Float64 = pa.Field(gt=0, nullable=True)
    call_wall_oi: pl.Int64 = pa.Field(ge=0, nullable=True)
    put_wall: pl.Float64 = pa.Field(gt=0, nullable=True)
    put_wall_oi: pl.Int64 = pa.Field(ge=0, nullable=True)
    max_pain: pl.Float64 = pa.Field(gt=0, nullable=True)
    max_pain_expiration: pl.Date = pa.Field(nullable=True)
    call_oi_change: pl.Int64 = pa.Field(nullable=True)
    put_oi_change: pl.Int64 = pa.Field(nullable=True)
    # The share of open interest whose gamma is known: GEX and the flip leave the rest out.
    gamma_coverage: pl.Float64 = pa.Field(ge=0, le=1, nullable=True)

    @pa.check("underlying", error=SYMBOL_RULE)
    def _underlying(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("underlying"))

    @pa.check(
        "max_pain_expiration",
        error=reason("expiration_after_trade_date", "max_pain_expiration", "trade_date"),
    )
    def _max_pain_expiration(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("max_pain_expiration") > pl.col("trade_date"))

    class Config:
        name = "positioning_daily"
        strict = False
        coerce = False


class StrikeLevels(pa.DataFrameModel):
    """Top N strikes by open interest per underlying, side and session."""

    trade_date: pl.Date
    underlying: str
    side: str
    rank: pl.Int64 = pa.Field(ge=1)
    strike: pl.Float64 = pa.Field(gt=0)
    open_interest: pl.Int64 = pa.Field(ge=0)
    volume: pl.Int64 = pa.Field(ge=0)
    oi_change: pl.Int64 = pa.Field(nullable=True)

    @pa.check("underlying", error=SYMBOL_RULE)
    def _underlying(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("underlying"))

    @pa.check("side", error="isin(call,put)")
    def _side(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("side").is_in(["call", "put"]))

    class Config:
        name = "strike_levels"
        strict = False
        coerce = False


class ExpiryLevels(pa.DataFrameModel):
    """Per underlying, session and expiration: the term structure and per-expiry max pain."""

    trade_date: pl.Date
    underlying: str
    expiration: pl.Date
    dte: pl.Int64 = pa.Field(ge=0)
    contracts: pl.Int64 = pa.Field(ge=0)
    call_oi: pl.Int64 = pa.Field(ge=0)
    put_oi: pl.Int64 = pa.Field(ge=0)
    pcr_oi: pl.Float64 = pa.Field(ge=0, nullable=True)
    call_volume: pl.Int64 = pa.Field(ge=0)
    put_volume: pl.Int64 = pa.Field(ge=0)
    max_pain: pl.Float64 = pa.Field(gt=0, nullable=True)
    # The implied forward (SPEC 3): put-call parity, or spot grown at the risk-free rate.
    forward: pl.Float64 = pa.Field(gt=0, nullable=True)
    forward_source: str = pa.Field(isin=["parity", "spot"], nullable=True)
    # The yardsticks (transforms/yardsticks.py): straddle at the forward in dollars and percent of spot,
    # 25-delta risk reversal and butterfly in IV units. NULL where the chain cannot give them.
    expected_move: pl.Float64 = pa.Field(ge=0, nullable=True)
    expected_move_pct: pl.Float64 = pa.Field(ge=0, nullable=True)
    rr_25d: pl.Float64 = pa.Field(nullable=True)
    bf_25d: pl.Float64 = pa.Field(nullable=True)

    @pa.check("underlying", error=SYMBOL_RULE)
    def _underlying(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("underlying"))

    @pa.check("expiration", error=reason("expiration_ge_trade_date", "expiration", "trade_date"))
    def _not_expired(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("expiration") >= pl.col("trade_date"))

    @pa.check("dte", error=reason("dte_matches_expiration", "dte", "expiration", "trade_date"))
    def _dte(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, _dte_matches())

    class Config:
        name = "expiry_levels"
        strict = False
        coerce = False


class Blocks(pa.DataFrameModel):
    """Block prints: notional (price*size*100) or size over the configured thresholds, quote-rule side."""

    trade_date: pl.Date
    underlying: str
    ts: Annotated[pl.Datetime, "us", "UTC"]
    option_symbol: str
    expiration: pl.Date
    strike: pl.Float64 = pa.Field(gt=0)
    option_type: str = pa.Field(isin=["C", "P"])
    size: pl.Int64 = pa.Field(gt=0)
    price: pl.Float64 = pa.Field(gt=0)
    notional: pl.Float64 = pa.Field(gt=0)
    side: str = pa.Field(isin=["buy", "sell", "unknown"])

    @pa.check("option_symbol", error=OSI_RULE)
    def _option_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, osi21_ok("option_symbol"))

    class Config:
        name = "blocks"
        strict = False
        coerce = False


class FlowDaily(pa.DataFrameModel):
    """Per underlying and session: block counts and notionals by side, the largest block, unusual contracts."""

    trade_date: pl.Date
    underlying: str
    block_count: pl.Int64 = pa.Field(ge=0)
    buy_block_count: pl.Int64 = pa.Field(ge=0)
    sell_block_count: pl.Int64 = pa.Field(ge=0)
    block_buy_notional: pl.Float64 = pa.Field(ge=0)
    block_sell_notional: pl.Float64 = pa.Field(ge=0)
    block_notional: pl.Float64 = pa.Field(ge=0)
    largest_block_symbol: str = pa.Field(nullable=True)
    largest_block_notional: pl.Float64 = pa.Field(nullable=True, gt=0)
    largest_block_side: str = pa.Field(nullable=True, isin=["buy", "sell", "unknown"])
    unusual_contracts: pl.Int64 = pa.Field(nullable=True, ge=0)

    @pa.check("block_count", error=reason("sides_within_total", "buy_block_count", "sell_block_count",
                                          "block_count"))
    def _sides(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("buy_block_count") + pl.col("sell_block_count") <= pl.col("block_count"))

    class Config:
        name = "flow_daily"
        strict = False
        coerce = False


class SignalsDaily(pa.DataFrameModel):
    """One row per symbol and session: the bias, its score and the levels behind the scenarios."""

    trade_date: pl.Date
    symbol: str
    close: pl.Float64 = pa.Field(gt=0)
    bias_score: pl.Int64 = pa.Field(ge=-100, le=100)
    score_trend: pl.Float64
    score_rsi: pl.Float64
    score_percent_b: pl.Float64
    score_pcr: pl.Float64
    score_flow: pl.Float64
    score_gamma: pl.Float64
    bias: str
    support: pl.Float64 = pa.Field(nullable=True)
    resistance: pl.Float64 = pa.Field(nullable=True)
    breakout_level: pl.Float64 = pa.Field(nullable=True)
    breakdown_level: pl.Float64 = pa.Field(nullable=True)
    bull_case: str = pa.Field(nullable=True)
    bear_case: str = pa.Field(nullable=True)
    summary: str

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

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
        strict = False
        coerce = False


class TradeIdeas(pa.DataFrameModel):
    """One row per idea; option ideas name a 21-char OSI contract, stock ideas have none."""

    trade_date: pl.Date
    symbol: str
    idea_id: str = pa.Field(unique=True)
    rule: str
    direction: str
    instrument: str
    option_symbol: str = pa.Field(nullable=True)
    expiration: pl.Date = pa.Field(nullable=True)
    strike: pl.Float64 = pa.Field(gt=0, nullable=True)
    entry_premium: pl.Float64 = pa.Field(ge=0, nullable=True)
    trigger_level: pl.Float64
    trigger_direction: str
    target: pl.Float64
    stop: pl.Float64
    risk_reward: pl.Float64 = pa.Field(ge=0, nullable=True)
    rationale: str

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

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
        strict = False
        coerce = False


class IdeaOutcomes(pa.DataFrameModel):
    """One row per idea and run: how the idea stood at `trade_date` (the run's as_of session).

    The partition date is the as_of session; the idea's own date is `idea_date`. The latest row per
    idea_id is its current outcome (the views of sql/ read it so).
    """

    trade_date: pl.Date
    idea_id: str = pa.Field(unique=True)
    idea_date: pl.Date
    symbol: str
    rule: str
    direction: str
    instrument: str
    option_symbol: str = pa.Field(nullable=True)
    status: str
    triggered_on: pl.Date = pa.Field(nullable=True)
    entry_price: pl.Float64 = pa.Field(gt=0, nullable=True)
    closed_on: pl.Date = pa.Field(nullable=True)
    exit_price: pl.Float64 = pa.Field(gt=0, nullable=True)
    r_multiple: pl.Float64 = pa.Field(nullable=True)
    sessions_walked: pl.Int64 = pa.Field(ge=0)
    option_exit_mid: pl.Float64 = pa.Field(ge=0, nullable=True)
    option_mid_source: str = pa.Field(nullable=True)
    option_r_multiple: pl.Float64 = pa.Field(nullable=True)

    @pa.check("symbol", error=SYMBOL_RULE)
    def _symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, symbol_ok("symbol"))

    @pa.check("status", error="isin(pending,not_triggered,open,target_hit,stop_hit,expired)")
    def _status(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("status").is_in(
            ["pending", "not_triggered", "open", "target_hit", "stop_hit", "expired"]))

    @pa.check("option_mid_source", error="isin(chain,missing)")
    def _mid_source(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("option_mid_source").is_in(["chain", "missing"]))

    # The walk only sees sessions after the idea's date and up to the run's session.
    @pa.check("idea_date", error=reason("idea_before_as_of", "idea_date", "trade_date"))
    def _idea_before_as_of(cls, data: PolarsData) -> pl.LazyFrame:
        return rows(data, pl.col("idea_date") < pl.col("trade_date"))

    @pa.check("triggered_on", error=reason("dates_ordered", "idea_date", "triggered_on", "closed_on", "trade_date"))
    def _dates_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        idea, triggered, closed, as_of = (pl.col(c) for c in ("idea_date", "triggered_on", "closed_on", "trade_date"))
        return rows(data, ((triggered > idea) & (triggered <= as_of)).fill_null(True)
                    & ((closed > idea) & (closed <= as_of)).fill_null(True)
                    & (closed >= triggered).fill_null(True))

    # Triggered statuses carry an entry; closed ones an exit and a closing session; live ones neither.
    @pa.check("status", error=reason("status_fields", "status", "triggered_on", "entry_price", "closed_on",
                                      "exit_price"))
    def _status_fields(cls, data: PolarsData) -> pl.LazyFrame:
        status = pl.col("status")
        triggered = status.is_in(["open", "target_hit", "stop_hit", "expired"])
        with_exit = status.is_in(["target_hit", "stop_hit", "expired"])
        live = status.is_in(["pending", "open"])
        return rows(data, (pl.col("triggered_on").is_not_null() == triggered)
                    & (pl.col("entry_price").is_not_null() == triggered)
                    & (pl.col("exit_price").is_not_null() == with_exit)
                    & (~with_exit | pl.col("closed_on").is_not_null())
                    & (~live | pl.col("closed_on").is_null()))

    @pa.check("option_mid_source", error=reason("mid_source_iff_option_exit", "option_mid_source", "instrument",
                                                 "status"))
    def _mid_source_iff_option_exit(cls, data: PolarsData) -> pl.LazyFrame:
        priced = (pl.col("instrument") != "stock") & pl.col("status").is_in(["target_hit", "stop_hit", "expired"])
        return rows(data, pl.col("option_mid_source").is_not_null() == priced)

    class Config:
        name = "idea_outcomes"
        strict = False
        coerce = False


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
        .agg(pl.len().alias("rows"), pl.col("failure_case").first().cast(pl.String).fill_null("null").alias("example"))
        .select(pl.format("{} ({} rows, e.g. {})", REASON, "rows", "example"))
        .to_series()
        .to_list()
    )
    bad_rows = failures.get_column(failures.columns[0]).n_unique()
    raise GoldValidationError(f"{table}: {bad_rows} of {len(frame)} rows failed: {'; '.join(summary)}",
                              dataset=table)


__all__ = [
    "ExpiryLevels",
    "GoldValidationError",
    "IdeaOutcomes",
    "PositioningDaily",
    "SignalsDaily",
    "StrikeLevels",
    "TechnicalsDaily",
    "TradeIdeas",
    "validate_gold",
]

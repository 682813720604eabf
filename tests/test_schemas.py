"""Silver quarantine (split_valid, split_duplicates) and the gold contracts (validate_gold)."""

from __future__ import annotations

import importlib
import itertools
import re
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.gold import (
    GOLD,
    GOLD_BY_NAME,
    GOLD_TABLES,
    ExpiryLevels,
    GoldValidationError,
    PositioningDaily,
    SignalsDaily,
    StrikeLevels,
    TechnicalsDaily,
    TradeIdeas,
    validate_gold,
)
from schemas.quarantine import REASON, SYMBOL_PATTERN, StructuralError, split_duplicates, split_valid
from schemas.silver import Bars, Chains, Trades
from tests.builders import (
    BARS_SCHEMA,
    CHAINS_SCHEMA,
    EXPIRY,
    HOSTILE,
    QUOTE,
    TRADES_SCHEMA,
    bar,
    chain_row,
    osi,
    trade,
)

# --- a bad row among good ones (the rows of tests/builders.py, overridden per case) -----------------------


def frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema)


def only_rejection(rows: list[dict], schema: dict, model, bad: dict) -> str:
    """Two good rows around one bad one: the good ones survive untouched, the bad one carries the reason."""
    good = [rows[0], rows[1]]
    df = frame([good[0], bad, good[1]], schema)
    valid, rejected = split_valid(df, model, "test")
    assert_frame_equal(valid, frame(good, schema))
    assert rejected.columns == [*df.columns, REASON]
    assert rejected.height == 1
    assert_frame_equal(rejected.drop(REASON), frame([bad], schema))
    return rejected[REASON].item()


# --- chains ---------------------------------------------------------------------------------------------

GOOD_CHAINS = [chain_row(), chain_row(strike=255.0, option_type="P", option_symbol=osi(EXPIRY, "P", 255.0))]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (chain_row(open_interest=-1), "greater_than_or_equal_to(0):open_interest"),
        (chain_row(volume=-5), "greater_than_or_equal_to(0):volume"),
        (chain_row(bid=1.3), "bid_le_ask:bid,ask"),
        (chain_row(bid=-0.05, mid=0.6), "greater_than_or_equal_to(0):bid"),
        (chain_row(strike=0.0), "greater_than(0):strike"),
        (chain_row(underlying="../etc"), "symbol_pattern:underlying"),
        (chain_row(underlying="iwm"), "symbol_pattern:underlying"),
        (chain_row(option_symbol=None), "not_nullable:option_symbol"),
        (chain_row(option_symbol="IWM 251231C2"), "osi_symbol:option_symbol"),
        (chain_row(trade_date=None), "not_nullable:trade_date"),
        (chain_row(underlying_price=None), "not_nullable:underlying_price"),
        (chain_row(delta=1.5), "in_unit_range:delta"),
        (chain_row(dte=14), "dte_matches_expiration:dte,expiration,trade_date"),
        # The right shape, but month 13: no such contract.
        (
            chain_row(option_symbol="IWM   251340C00250000"),
            "osi_matches_contract:option_symbol,expiration,option_type,strike",
        ),
        (
            chain_row(option_type="X"),
            "osi_matches_contract:option_symbol,expiration,option_type,strike; isin(C,P):option_type",
        ),
        (
            chain_row(expiration=date(2025, 1, 1), dte=-1),
            "expiration_ge_trade_date:expiration,trade_date",
        ),
        (
            # Several failures are all named, in schema column order.
            chain_row(open_interest=-1, bid=2.0, underlying="IWM'; DROP TABLE x;--"),
            "symbol_pattern:underlying; greater_than_or_equal_to(0):open_interest; bid_le_ask:bid,ask",
        ),
    ],
)
def test_chain_bad_row_is_quarantined_with_its_reason(bad, reason):
    assert only_rejection(GOOD_CHAINS, CHAINS_SCHEMA, Chains, bad) == reason


def test_expiring_on_the_quote_date_is_a_live_contract():
    zero_dte = chain_row(expiration=QUOTE, dte=0)
    valid, rejected = split_valid(frame([zero_dte], CHAINS_SCHEMA), Chains, "chains")
    assert (valid.height, rejected.height) == (1, 0)


def test_nullable_greeks_and_extra_columns_pass():
    row = chain_row(implied_volatility=None, delta=None, gamma=None, last=None)
    df = frame([row], CHAINS_SCHEMA).with_columns(pl.lit(True).alias("iv_derived"))
    valid, rejected = split_valid(df, Chains, "chains")
    assert_frame_equal(valid, df)
    assert rejected.height == 0
    assert rejected.columns == [*df.columns, REASON]
    assert rejected.schema[REASON] == pl.Utf8


@pytest.mark.parametrize("symbol", HOSTILE)
def test_hostile_symbols_never_pass(symbol):
    bad = chain_row(underlying=symbol)
    assert only_rejection(GOOD_CHAINS, CHAINS_SCHEMA, Chains, bad) == "symbol_pattern:underlying"


def test_symbol_pattern_is_the_documented_one():
    assert SYMBOL_PATTERN == r"^[A-Z][A-Z0-9.\-]{0,9}$"
    valid, _ = split_valid(
        frame([bar(symbol=s) for s in ["BRK.B", "BF-B", "X", "ABCDEFGHIJ"]], BARS_SCHEMA), Bars, "bars"
    )
    assert valid["symbol"].to_list() == ["BRK.B", "BF-B", "X", "ABCDEFGHIJ"]


# --- bars -----------------------------------------------------------------------------------------------

GOOD_BARS = [bar(), bar(symbol="SPY", open=600.0, high=601.0, low=598.0, close=599.0, adj_close=None)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            # With high < low no open or close can lie inside the bar either: all three are named.
            bar(high=248.0, open=248.5, close=248.5),
            "open_in_range:open,low,high; high_ge_low:high,low; close_in_range:close,low,high",
        ),
        (bar(open=253.0), "open_in_range:open,low,high"),
        (bar(close=248.0), "close_in_range:close,low,high"),
        (bar(open=0.0, low=0.0), "greater_than(0):open; greater_than(0):low"),
        (bar(close=-1.0, low=-2.0), "greater_than(0):low; greater_than(0):close"),
        (bar(volume=-1), "greater_than_or_equal_to(0):volume"),
        (bar(adj_close=0.0), "greater_than(0):adj_close"),
        (bar(symbol=None), "not_nullable:symbol"),
        (bar(symbol="../etc"), "symbol_pattern:symbol"),
        (bar(high=float("nan")), "not_nullable:high"),
    ],
)
def test_bar_bad_row_is_quarantined_with_its_reason(bad, reason):
    assert only_rejection(GOOD_BARS, BARS_SCHEMA, Bars, bad) == reason


# --- trades ---------------------------------------------------------------------------------------------

GOOD_TRADES = [trade(), trade(bid=None, ask=None, exchange=None)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (trade(price=0.0), "greater_than(0):price"),
        (trade(size=0), "greater_than(0):size"),
        (trade(size=-10), "greater_than(0):size"),
        (trade(bid=1.5), "bid_le_ask:bid,ask"),
        (trade(bid=-1.0), "greater_than_or_equal_to(0):bid"),
        (trade(option_type="call"), "isin(C,P):option_type"),
        (trade(option_symbol="garbage"), "osi_symbol:option_symbol"),
        (trade(underlying="IWM;"), "symbol_pattern:underlying"),
        (trade(ts=None), "not_nullable:ts"),
        (trade(expiration=date(2024, 12, 31)), "expiration_ge_trade_date:expiration,trade_date"),
    ],
)
def test_trade_bad_row_is_quarantined_with_its_reason(bad, reason):
    assert only_rejection(GOOD_TRADES, TRADES_SCHEMA, Trades, bad) == reason


# --- structural failures --------------------------------------------------------------------------------


def test_missing_column_raises_naming_dataset_and_column():
    df = frame(GOOD_CHAINS, CHAINS_SCHEMA).drop("ask")
    with pytest.raises(StructuralError) as info:
        split_valid(df, Chains, "chains (landing/chains/2025-01-02.csv)")
    message = str(info.value)
    assert message == "chains (landing/chains/2025-01-02.csv): missing column 'ask'"
    assert "\n" not in message


def test_wrong_dtype_raises_naming_dataset_and_column():
    df = frame(GOOD_CHAINS, CHAINS_SCHEMA).with_columns(pl.col("open_interest").cast(pl.Int32))
    with pytest.raises(
        StructuralError, match=r"^chains: column 'open_interest' has dtype Int32, expected Int64$"
    ):
        split_valid(df, Chains, "chains")


def test_several_structural_problems_are_reported_on_one_line():
    df = frame(GOOD_BARS, BARS_SCHEMA).drop("volume").with_columns(pl.col("close").cast(pl.Utf8))
    with pytest.raises(StructuralError) as info:
        split_valid(df, Bars, "bars")
    assert (
        str(info.value) == "bars: missing column 'volume'; column 'close' has dtype String, expected Float64"
    )


def test_naive_timestamps_are_a_structural_error():
    df = frame(GOOD_TRADES, TRADES_SCHEMA).with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(StructuralError, match=r"^trades: column 'ts' has dtype"):
        split_valid(df, Trades, "trades")


def test_validation_cannot_be_switched_off_by_the_environment():
    from pandera.config import config_context

    df = frame([GOOD_BARS[0], bar(high=1.0)], BARS_SCHEMA)
    with config_context(validation_enabled=False):
        _, rejected = split_valid(df, Bars, "bars")
    assert rejected.height == 1


# --- duplicates -----------------------------------------------------------------------------------------


def dup_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": ["IWM", "IWM", "SPY", "IWM", "SPY", "QQQ"],
            "_source_file": ["b.csv", "c.csv", "a.csv", "a.csv", "a.csv", None],
            "_source_row": [1, 7, 2, 9, 3, 1],
            "close": [1.0, 3.0, 5.0, 2.0, 6.0, 7.0],
        }
    )


def test_duplicates_keep_the_last_by_order_by_whatever_the_input_order():
    df = dup_frame()
    results = []
    for order in itertools.permutations(range(df.height)):
        kept, dropped = split_duplicates(df[list(order)], ["symbol"], ["_source_file", "_source_row"])
        results.append((kept.sort("symbol"), dropped.sort("symbol", "close")))
    kept, dropped = results[0]
    assert kept.sort("symbol").rows() == [
        ("IWM", "c.csv", 7, 3.0),
        ("QQQ", None, 1, 7.0),
        ("SPY", "a.csv", 3, 6.0),
    ]
    assert dropped.rows() == [
        ("IWM", "b.csv", 1, 1.0, "duplicate:symbol"),
        ("IWM", "a.csv", 9, 2.0, "duplicate:symbol"),
        ("SPY", "a.csv", 2, 5.0, "duplicate:symbol"),
    ]
    for other_kept, other_dropped in results[1:]:
        assert_frame_equal(other_kept, kept)
        assert_frame_equal(other_dropped, dropped)


def test_duplicate_ties_are_broken_by_the_other_columns_and_nulls_sort_first():
    df = pl.DataFrame(
        {"k": ["a", "a", "a", "b", "b"], "v": [1, 1, 1, None, 0], "x": [2.0, 9.0, 5.0, 1.0, 1.0]}
    )
    for order in itertools.permutations(range(df.height)):
        kept, dropped = split_duplicates(df[list(order)], ["k"], ["v"])
        assert kept.sort("k").rows() == [("a", 1, 9.0), ("b", 0, 1.0)]
        assert dropped.height == 3
        assert dropped[REASON].unique().to_list() == ["duplicate:k"]


def test_duplicates_keep_input_order_and_multi_column_keys():
    df = pl.DataFrame({"d": [1, 1, 2, 1], "s": ["x", "y", "x", "x"], "n": [1, 2, 3, 4]})
    kept, dropped = split_duplicates(df, ["d", "s"], ["n"])
    assert kept.rows() == [(1, "y", 2), (2, "x", 3), (1, "x", 4)]
    assert dropped.rows() == [(1, "x", 1, "duplicate:d,s")]


def test_a_key_hash_collision_does_not_make_distinct_keys_duplicates(monkeypatch):
    df = pl.DataFrame({"d": [1, 1, 2, 1], "s": ["x", "y", "x", "x"], "n": [1, 2, 3, 4]})
    monkeypatch.setattr(
        pl.Expr, "hash", lambda self, *args, **kwargs: pl.repeat(7, pl.len(), dtype=pl.UInt64)
    )  # all collide
    kept, dropped = split_duplicates(df, ["d", "s"], ["n"])
    assert kept.rows() == [(1, "y", 2), (2, "x", 3), (1, "x", 4)]
    assert dropped.rows() == [(1, "x", 1, "duplicate:d,s")]
    kept, dropped = split_duplicates(df.filter(pl.col("n") > 1), ["d", "s"], ["n"])
    assert kept.height == 3 and dropped.is_empty()


# --- gold -----------------------------------------------------------------------------------------------


def technicals(**changes) -> pl.DataFrame:
    row = {"trade_date": QUOTE, "symbol": "IWM", "open": 250.0, "high": 252.0, "low": 249.0, "close": 251.0,
           "volume": 1_000_000, "prev_close": 251.42, "change_pct": -0.17, "sma_20": 250.0, "sma_30": 246.33,
           "sma_50": 240.0, "sma_200": 224.02, "ema_20": 250.1, "bb_upper": 256.96, "bb_middle": 250.94,
           "bb_lower": 244.92, "atr_14": 3.1, "rsi_14": 55.0, "rv_20": 0.18, "high_52w": 260.0,
           "low_52w": 190.0, "beta_252": 1.2, "volume_ratio_20": 0.9} | changes  # fmt: skip
    h, lo, c = row["high"], row["low"], row["close"]
    p = (h + lo + c) / 3
    pivots = {"pivot_point": p, "r1": 2 * p - lo, "s1": 2 * p - h, "r2": p + (h - lo), "s2": p - (h - lo),
              "r3": h + 2 * (p - lo), "s3": lo - 2 * (h - p)}  # fmt: skip
    row = pivots | row
    schema = {c: pl.Float64 for c in row} | {"trade_date": pl.Date, "symbol": pl.Utf8, "volume": pl.Int64}
    return pl.DataFrame([row], schema=schema)


def test_gold_technicals_good_row_and_short_history_pass():
    nulls = {
        c: None
        for c in ["prev_close", "change_pct", "sma_200", "bb_upper", "bb_middle", "bb_lower", "rsi_14"]
    }
    df = pl.concat([technicals(), technicals(symbol="SPY", **nulls)])
    assert_frame_equal(validate_gold(df, TechnicalsDaily), df)
    assert_frame_equal(validate_gold(df.lazy(), TechnicalsDaily), df)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"rsi_14": 120.0},
            "technicals_daily: 1 of 1 rows failed: less_than_or_equal_to(100):rsi_14 (1 rows, e.g. 120.0)",
        ),
        ({"rsi_14": -1.0}, "greater_than_or_equal_to(0):rsi_14"),
        ({"bb_lower": 251.0}, "bands_ordered:bb_lower,bb_middle,bb_upper"),
        ({"bb_upper": 250.0}, "bands_ordered:bb_lower,bb_middle,bb_upper"),
        ({"high_52w": 251.0}, "range_52w_contains_bar:low_52w,low,high,high_52w"),
        ({"atr_14": -0.1}, "greater_than_or_equal_to(0):atr_14"),
        ({"symbol": "../x"}, "symbol_pattern:symbol"),
    ],
)  # fmt: skip
def test_gold_technicals_bad_row_raises_one_line(changes, message):
    with pytest.raises(GoldValidationError) as info:
        validate_gold(technicals(**changes), TechnicalsDaily)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_gold_pivots_out_of_order_are_caught():
    df = technicals().with_columns(pl.col("r1").alias("r2"), pl.col("r2").alias("r1"))
    with pytest.raises(GoldValidationError, match="pivots_ordered:s3,s2,s1,pivot_point,r1,r2,r3"):
        validate_gold(df, TechnicalsDaily)


def test_gold_missing_column_and_wrong_dtype_raise():
    with pytest.raises(GoldValidationError, match=r"^technicals_daily: missing column 'rsi_14'$"):
        validate_gold(technicals().drop("rsi_14"), TechnicalsDaily)
    with pytest.raises(GoldValidationError, match=r"column 'volume' has dtype Float64, expected Int64"):
        validate_gold(technicals().with_columns(pl.col("volume").cast(pl.Float64)), TechnicalsDaily)


def positioning(**changes) -> pl.DataFrame:
    row = {"trade_date": QUOTE, "symbol": "IWM", "spot": 249.8, "contracts": 40, "call_oi": 20_000,
           "put_oi": 43_600, "call_volume": 100, "put_volume": 0, "pcr_oi": 2.18, "pcr_volume": 0.0,
           "call_wall": 255.0, "call_wall_oi": 10_000, "put_wall": 240.0, "put_wall_oi": 7_739,
           "max_pain": 250.0, "max_pain_expiration": EXPIRY, "call_oi_change": -50,
           "put_oi_change": None, "spot_source": "chain", "gamma_coverage": 0.97, "next_call_wall": 266.0,
           "next_call_wall_oi": 8_401, "next_put_wall": 235.0, "next_put_wall_oi": 7_321, "net_gex": 1.5e9,
           "net_dex": -2.0e8, "call_gex_wall": 255.0, "put_gex_wall": 240.0, "gamma_flip": 246.1,
           "atm_iv_30": 0.21, "rr_25d": -0.04, "iv_rank_252": 0.35, "iv_percentile_252": 0.4} | changes  # fmt: skip
    money = [
        "spot",
        "pcr_oi",
        "pcr_volume",
        "call_wall",
        "put_wall",
        "max_pain",
        "gamma_coverage",
        "next_call_wall",
        "next_put_wall",
        "net_gex",
        "net_dex",
        "call_gex_wall",
        "put_gex_wall",
        "gamma_flip",
        "atm_iv_30",
        "rr_25d",
        "iv_rank_252",
        "iv_percentile_252",
    ]
    dates = ["trade_date", "max_pain_expiration"]
    schema = {c: pl.Int64 for c in row} | dict.fromkeys(money, pl.Float64) | dict.fromkeys(dates, pl.Date)
    schema["symbol"] = schema["spot_source"] = pl.Utf8
    return pl.DataFrame([row], schema=schema)


def test_gold_positioning():
    validate_gold(positioning(pcr_volume=None, call_wall=None, call_wall_oi=None), PositioningDaily)
    with pytest.raises(GoldValidationError, match=r"greater_than_or_equal_to\(0\):pcr_oi"):
        validate_gold(positioning(pcr_oi=-1.0), PositioningDaily)
    with pytest.raises(
        GoldValidationError, match="expiration_after_trade_date:max_pain_expiration,trade_date"
    ):
        validate_gold(positioning(max_pain_expiration=QUOTE), PositioningDaily)
    with pytest.raises(
        GoldValidationError,
        match=r"isin\(\['chain', 'bars'\]\):spot_source .*less_than_or_equal_to\(1\):gamma_coverage",
    ):
        validate_gold(positioning(spot_source="close", gamma_coverage=1.5), PositioningDaily)


def test_gold_strike_and_expiry_levels():
    strikes = pl.DataFrame(
        {"trade_date": [QUOTE] * 2, "symbol": ["IWM"] * 2, "side": ["call", "put"], "rank": [1, 1],
         "strike": [255.0, 240.0], "open_interest": [10_000, 7_739], "volume": [5, 0],
         "oi_change": [None, -3]},
        schema_overrides={"oi_change": pl.Int64},
    )  # fmt: skip
    validate_gold(strikes, StrikeLevels)
    with pytest.raises(
        GoldValidationError, match=r"isin\(call,put\):side .*greater_than_or_equal_to\(1\):rank"
    ):
        validate_gold(strikes.with_columns(side=pl.lit("both"), rank=pl.lit(0, pl.Int64)), StrikeLevels)
    expiries = pl.DataFrame(
        {"trade_date": [QUOTE], "symbol": ["IWM"], "expiration": [EXPIRY], "dte": [15], "contracts": [40],
         "call_contracts": [20], "put_contracts": [20], "call_oi": [20_000], "put_oi": [43_600], "pcr_oi": [2.18], "call_volume": [100], "put_volume": [0],
         "max_pain": [250.0], "net_gex": [4.0e8], "net_dex": [-1.0e7], "atm_iv": [0.2], "forward": [250.4], "forward_source": ["parity"], "expected_move": [6.12],
         "expected_move_pct": [2.45], "rr_25d": [-0.06], "bf_25d": [0.01]}
    )  # fmt: skip
    validate_gold(expiries, ExpiryLevels)
    with pytest.raises(
        GoldValidationError, match=r"greater_than\(0\):forward .*isin\(\['parity', 'spot'\]\):forward_source"
    ):
        validate_gold(
            expiries.with_columns(forward=pl.lit(-1.0), forward_source=pl.lit("guess")), ExpiryLevels
        )
    with pytest.raises(GoldValidationError, match="dte_matches_expiration:dte,expiration,trade_date"):
        validate_gold(expiries.with_columns(dte=pl.lit(14, pl.Int64)), ExpiryLevels)
    with pytest.raises(GoldValidationError, match="expected_move"):
        validate_gold(expiries.with_columns(expected_move=pl.lit(-1.0)), ExpiryLevels)


def test_gold_signals_and_ideas():
    signals = pl.DataFrame(
        {"trade_date": [QUOTE], "symbol": ["IWM"], "close": [249.80], "change_pct": [-0.64], "bias_score": [35],
         "bias": ["bullish"], "percent_b": [0.41], "pcr_oi": [2.18], "pcr_oi_z": [1.2],
         "score_trend": [35.0], "score_rsi": [2.4], "score_percent_b": [-2.0], "score_pcr": [0.0],
         "score_flow": [0.0], "score_gamma": [0.0],
         "support": [249.73], "resistance": [252.08], "breakout_level": [250.94],
         "breakdown_level": [249.73], "bull_case": ["up"],
         "bear_case": ["down"], "summary": ["IWM 249.80"]}
    )  # fmt: skip
    validate_gold(signals, SignalsDaily)
    with pytest.raises(GoldValidationError) as info:
        validate_gold(signals.with_columns(bias_score=pl.lit(101, pl.Int64), bias=pl.lit("up")), SignalsDaily)
    for expected in (
        "less_than_or_equal_to(100):bias_score (1 rows, e.g. 101)",
        "isin(bullish,bearish,neutral):bias",
        "score_is_sum_of_components:bias_score",
    ):
        assert expected in str(info.value)
    with pytest.raises(GoldValidationError, match=r"support_below_close:support,close"):
        validate_gold(signals.with_columns(support=pl.lit(250.0)), SignalsDaily)
    with pytest.raises(GoldValidationError, match=r"score_is_sum_of_components:bias_score"):
        validate_gold(signals.with_columns(score_rsi=pl.lit(9.0)), SignalsDaily)
    ideas = pl.DataFrame(
        {"trade_date": [QUOTE] * 2, "symbol": ["IWM"] * 2, "idea_id": ["a", "b"],
         "rule": ["call_breakout", "stock_entry"], "direction": ["bullish"] * 2,
         "instrument": ["call", "stock"], "option_symbol": [osi(EXPIRY, "C", 255.0), None],
         "expiration": [EXPIRY, None], "strike": [255.0, None], "dte": [15, None], "entry_premium": [1.2, None],
         "contract_open_interest": [10_000, None], "underlying_close": [249.8, 249.8],
         "trigger_level": [250.94, 249.73], "trigger_direction": ["above", "below"],
         "target": [266.0, 256.96],
         "stop": [249.35, 248.0], "risk_reward": [9.0, 4.2], "rationale": ["x", "y"]},
    )  # fmt: skip
    validate_gold(ideas, TradeIdeas)
    bad = ideas.with_columns(
        idea_id=pl.lit("a"), option_symbol=pl.lit(osi(EXPIRY, "C", 255.0)), stop=pl.lit(300.0)
    )
    with pytest.raises(GoldValidationError) as info:
        validate_gold(bad, TradeIdeas)
    assert str(info.value).startswith("trade_ideas: 2 of 2 rows failed: ")
    assert "field_uniqueness:idea_id (2 rows" in str(info.value)
    assert "contract_iff_option:instrument,option_symbol (1 rows" in str(info.value)
    assert "levels_ordered:stop,trigger_level,target,direction (2 rows" in str(info.value)


# --- one declaration per gold table ------------------------------------------------------------------


def test_gold_data_and_model_disagreeing_fails_naming_the_column():
    good = positioning()
    assert_frame_equal(validate_gold(good, PositioningDaily), good)
    with pytest.raises(GoldValidationError, match=r"^positioning_daily: .*'undeclared'"):
        validate_gold(good.with_columns(undeclared=pl.lit(1.0)), PositioningDaily)
    with pytest.raises(GoldValidationError, match=r"^positioning_daily: missing column 'gamma_flip'$"):
        validate_gold(good.drop("gamma_flip"), PositioningDaily)
    with pytest.raises(
        GoldValidationError, match=r"column 'next_call_wall_oi' has dtype Float64, expected Int64"
    ):
        validate_gold(good.with_columns(pl.col("next_call_wall_oi").cast(pl.Float64)), PositioningDaily)
    # The instrument is `symbol` in gold: the silver name is refused.
    with pytest.raises(GoldValidationError, match="missing column 'symbol'"):
        validate_gold(good.rename({"symbol": "underlying"}), PositioningDaily)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gamma_flip": 0.79 * 249.8}, "flip_within_20pct_of_spot:gamma_flip,spot"),
        ({"gamma_flip": 1.21 * 249.8}, "flip_within_20pct_of_spot:gamma_flip,spot"),
        ({"atm_iv_30": -0.2}, "greater_than(0):atm_iv_30"),
        ({"atm_iv_30": 0.0}, "greater_than(0):atm_iv_30"),
        ({"iv_rank_252": 1.5}, "less_than_or_equal_to(1):iv_rank_252"),
        ({"iv_percentile_252": -0.1}, "greater_than_or_equal_to(0):iv_percentile_252"),
        ({"next_call_wall": 250.0}, "walls_ordered:next_put_wall,put_wall,call_wall,next_call_wall"),
        ({"next_put_wall": 245.0}, "walls_ordered:next_put_wall,put_wall,call_wall,next_call_wall"),
        ({"next_put_wall_oi": -1}, "greater_than_or_equal_to(0):next_put_wall_oi"),
        ({"call_gex_wall": 0.0}, "greater_than(0):call_gex_wall"),
    ],
)  # fmt: skip
def test_gold_positioning_ranges_of_the_spec(changes, message):
    with pytest.raises(GoldValidationError, match=re.escape(message)):
        validate_gold(positioning(**changes), PositioningDaily)


def test_gold_flip_at_the_edges_of_its_range_passes():
    validate_gold(positioning(gamma_flip=0.8 * 249.8), PositioningDaily)
    validate_gold(
        positioning(gamma_flip=1.2 * 249.8, iv_rank_252=1.0, iv_percentile_252=0.0), PositioningDaily
    )


def test_every_gold_table_is_declared_once_with_its_transform_schema():
    """The registry lists each table once; a transform's published columns and types are its model's."""
    from flows.stages.gold import GOLD_RENAMES
    from transforms.ideas import TRADE_IDEA_SCHEMA
    from transforms.order_flow import BLOCKS_SCHEMA, FLOW_DAILY_SCHEMA
    from transforms.outcomes import IDEA_OUTCOME_SCHEMA
    from transforms.positioning import EXPIRY_LEVELS_SCHEMA, POSITIONING_SCHEMA, STRIKE_LEVELS_SCHEMA
    from transforms.signals import SIGNAL_COLUMNS
    from transforms.technicals import technicals_columns
    from transforms.yardsticks import YARDSTICK_COLUMNS

    assert [t.name for t in GOLD] == list(GOLD_TABLES) and len(set(GOLD_TABLES)) == 9
    for table in GOLD:
        module, function = table.producer.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function)), table.producer
        assert set(table.key) <= set(table.schema) and table.key[0] == "trade_date"

    def published(schema: dict) -> dict:
        return {GOLD_RENAMES.get(c, c): t for c, t in schema.items()}

    exact = {
        "strike_levels": STRIKE_LEVELS_SCHEMA,
        "blocks": BLOCKS_SCHEMA,
        "flow_daily": FLOW_DAILY_SCHEMA,
        "trade_ideas": TRADE_IDEA_SCHEMA,
        "idea_outcomes": IDEA_OUTCOME_SCHEMA,
    }
    for name, schema in exact.items():
        assert published(schema) == GOLD_BY_NAME[name].schema, name
    assert technicals_columns() == list(GOLD_BY_NAME["technicals_daily"].schema)
    assert list(GOLD_BY_NAME["signals_daily"].schema) == SIGNAL_COLUMNS
    # Built by joins of several transforms: each part's columns and types are in the model, and together
    # they are all of it.
    greeks = {
        c: pl.Float64()
        for c in (
            "net_gex",
            "net_dex",
            "call_gex_wall",
            "put_gex_wall",
            "gamma_flip",
            "atm_iv_30",
            "rr_25d",
            "iv_rank_252",
            "iv_percentile_252",
        )
    }
    assert published(POSITIONING_SCHEMA) | greeks == GOLD_BY_NAME["positioning_daily"].schema
    exposure = {
        "net_gex": pl.Float64(),
        "net_dex": pl.Float64(),
        "atm_iv": pl.Float64(),
        "forward": pl.Float64(),
        "forward_source": pl.String(),
    }
    assert (
        published(EXPIRY_LEVELS_SCHEMA) | exposure | YARDSTICK_COLUMNS == GOLD_BY_NAME["expiry_levels"].schema
    )


def test_every_gold_column_is_described_with_a_unit_where_it_has_one():
    for table in GOLD:
        assert table.description, table.name
        for name, column in table.model.to_schema().columns.items():
            assert column.description, f"{table.name}.{name}"
            dtype = column.dtype.type
            if dtype in (pl.Float64, pl.Int64) and name not in ("rank", "bias_score"):
                assert re.search(
                    r"\((dollars|fraction|percent|ratio|contracts|shares|days|sessions|prints|points|"
                    r"R|standard deviations|dollars per 1% move|dollars per share|0-100 points|"
                    r"-100\.\.100 points)[),:]",
                    column.description,
                ), f"{table.name}.{name}"
            if name.endswith("_pct"):
                assert "(percent" in column.description, f"{table.name}.{name}"

"""Blocks, the quote rule and daily flow (transforms/order_flow.py), and the SPEC 1 note's prints."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from flows.sources.files import conform
from tests import builders
from tests.spec_note import NOTE_DATE, note_chain
from transforms.order_flow import (
    BLOCKS_COLUMNS,
    BLOCKS_SCHEMA,
    FLOW_DAILY_SCHEMA,
    UNUSUAL_SCHEMA,
    blocks,
    classify_side,
    flow_daily,
    unusual_contracts,
)
from transforms.trades import EXPIRED_CONTRACT, TRADE_SCHEMA, silver_trades, unknown_or_expired

D1, D2 = date(2025, 12, 29), date(2025, 12, 30)


def sides(cases: list[tuple]) -> list[str]:
    frame = pl.DataFrame(
        cases, schema={"price": pl.Float64, "bid": pl.Float64, "ask": pl.Float64}, orient="row"
    )
    return frame.select(classify_side("price", "bid", "ask")).to_series().to_list()


# --- the quote rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "bid", "ask", "side"),
    [
        (4.10, 4.00, 4.10, "buy"),  # at the ask
        (4.15, 4.00, 4.10, "buy"),  # above the ask
        (4.00, 4.00, 4.10, "sell"),  # at the bid
        (3.95, 4.00, 4.10, "sell"),  # below the bid
        (4.06, 4.00, 4.10, "buy"),  # inside, above the mid
        (4.04, 4.00, 4.10, "sell"),  # inside, below the mid
        (4.05, 4.00, 4.10, "unknown"),  # at the mid
        (0.15, 0.10, 0.20, "unknown"),  # at the mid, where 0.10 + 0.20 != 0.30 in floats
        (0.30, 0.10, 0.50, "unknown"),
        (0.025, 0.00, 0.05, "unknown"),  # zero bid: the mid is half the ask
        (0.02, 0.00, 0.05, "sell"),
        (0.05, 0.00, 0.05, "buy"),
        (1.00, 1.00, 1.00, "buy"),  # locked quote: at the ask is checked first
        (0.99, 1.00, 1.00, "sell"),
        (4.10, None, 4.10, "unknown"),  # a missing quote: unknown, whatever the price
        (4.00, 4.00, None, "unknown"),
        (4.05, None, None, "unknown"),
    ],
)
def test_quote_rule(price, bid, ask, side):
    assert sides([(price, bid, ask)]) == [side]


def test_quote_rule_takes_expressions_and_names_its_output_side():
    frame = pl.DataFrame({"p": [4.10], "b": [4.00], "a": [4.10]})
    out = frame.select(classify_side(pl.col("p"), pl.col("b"), pl.col("a")))
    assert out.columns == ["side"] and out["side"].to_list() == ["buy"]


# --- blocks ----------------------------------------------------------------------------------------------


def silver_prints(rows: list[dict]) -> pl.LazyFrame:
    """Silver prints on D1 (tests/builders.py)."""
    return builders.silver_prints(rows, trade_date=D1)


def at(hour: int, minute: int = 0, day: date = D1) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


IWM_255C = "IWM   260116C00255000"
IWM_250P = "IWM   260116P00250000"
IWM_240P = "IWM   260116P00240000"
SPY_600C = "SPY   260116C00600000"
SPY_590P = "SPY   260116P00590000"
QQQ_500C = "QQQ   260116C00500000"
AAPL_270C = "AAPL  260116C00270000"


@pytest.mark.parametrize(
    ("price", "size", "is_block"),
    [
        (12.50, 800, True),  # notional exactly $1,000,000
        (12.49, 800, False),  # $999,200
        (0.05, 1000, True),  # exactly 1,000 contracts, $5,000
        (0.05, 999, False),
        (4.10, 2500, True),
        (10.00, 1000, True),  # both at once
    ],
)
def test_block_thresholds_are_inclusive(price, size, is_block):
    trades = silver_prints([{"ts": at(15), "option_symbol": IWM_255C, "price": price, "size": size}])
    assert blocks(trades).collect().height == int(is_block)


def test_thresholds_are_configurable():
    trades = silver_prints(
        [{"ts": at(15), "option_symbol": IWM_255C, "price": 2.00, "size": 500}]
    )  # $100,000
    assert blocks(trades).collect().height == 0
    assert blocks(trades, notional_threshold=100_000).collect().height == 1
    assert blocks(trades, size_threshold=500).collect().height == 1


def test_notional_is_rounded_to_cents():
    # price * (size * 100): 0.29 * 100,000 is 28999.999999999996 in floats (and 4.10 * 250,000 is 1024999.99...).
    trades = silver_prints([{"ts": at(15), "option_symbol": IWM_255C, "price": 0.29, "size": 1000}])
    assert blocks(trades).collect()["notional"].to_list() == [29_000.0]


def test_blocks_columns_types_order_and_side():
    trades = silver_prints(
        [
            {"ts": at(16), "option_symbol": SPY_600C, "price": 25.0, "size": 500, "bid": 25.0, "ask": 25.2},
            {"ts": at(15), "option_symbol": IWM_255C, "price": 4.10, "size": 2500, "bid": 4.00, "ask": 4.10},
            {"ts": at(14), "option_symbol": IWM_250P, "price": 2.05, "size": 1000, "bid": 2.00, "ask": 2.10},
            {"ts": at(14), "option_symbol": IWM_240P, "price": 1.00, "size": 10, "bid": 0.95, "ask": 1.05},
        ]
    )
    out = blocks(trades).collect()
    assert out.columns == BLOCKS_COLUMNS and dict(out.schema) == BLOCKS_SCHEMA
    assert out.select("underlying", "option_symbol", "size", "price", "notional", "side").rows() == [
        ("IWM", IWM_250P, 1000, 2.05, 205_000.0, "unknown"),
        ("IWM", IWM_255C, 2500, 4.10, 1_025_000.0, "buy"),
        ("SPY", SPY_600C, 500, 25.0, 1_250_000.0, "sell"),
    ]
    assert out.row(1, named=True) == {
        "trade_date": D1,
        "underlying": "IWM",
        "ts": at(15),
        "option_symbol": IWM_255C,
        "expiration": date(2026, 1, 16),
        "strike": 255.0,
        "option_type": "C",
        "size": 2500,
        "price": 4.10,
        "notional": 1_025_000.0,
        "side": "buy",
    }


def test_no_prints_means_empty_typed_blocks():
    empty = pl.LazyFrame(schema=TRADE_SCHEMA)
    out = blocks(empty).collect()
    assert out.height == 0 and dict(out.schema) == BLOCKS_SCHEMA


# --- unusual contracts and flow_daily ----------------------------------------------------------------------


def chain_rows(rows: list[tuple]) -> pl.LazyFrame:
    """(trade_date, underlying, option_type, strike, volume, open_interest, last) -> silver-like chain rows."""
    names = ["trade_date", "underlying", "option_type", "strike", "volume", "open_interest", "last"]
    return builders.silver_chain(
        [dict(zip(names, row, strict=True)) for row in rows],
        columns=[*names, "expiration", "option_symbol"],
        expiration=date(2026, 1, 16),
    )


CHAINS = chain_rows(
    [
        (D1, "IWM", "C", 255.0, 600, 480, 0.50),  # volume/OI exactly 1.25: unusual
        (D1, "IWM", "C", 256.0, 600, 481, 0.50),  # 1.247
        (D1, "IWM", "C", 257.0, 500, 101, 1.00),  # volume not above 500
        (D1, "IWM", "C", 258.0, 501, 100, 1.00),  # OI not above 100
        (D1, "IWM", "P", 250.0, 2000, 200, 0.10),  # last not above 0.10
        (D1, "IWM", "P", 240.0, 2000, 200, 0.11),  # unusual
        (D1, "IWM", "P", 235.0, 2000, 200, None),  # no last: not unusual
        (D1, "SPY", "C", 600.0, 5000, 1000, 3.00),  # unusual
        (D1, "SPY", "P", 590.0, 10, 1000, 3.00),
        (D1, "QQQ", "C", 500.0, 10, 1000, 3.00),
        (D2, "IWM", "C", 255.0, 6000, 480, 0.50),  # unusual, but D2 has no prints
    ]
)


def test_unusual_contracts_are_the_chain_rows_passing_all_four_tests():
    out = unusual_contracts(CHAINS).collect()
    assert dict(out.schema) == UNUSUAL_SCHEMA
    assert out.select("trade_date", "option_symbol", "volume_oi_ratio").rows() == [
        (D1, IWM_255C, 1.25),
        (D1, IWM_240P, 10.0),
        (D1, SPY_600C, 5.0),
        (D2, IWM_255C, 12.5),
    ]


FLOW_PRINTS = [
    {"ts": at(15), "option_symbol": IWM_255C, "price": 4.10, "size": 2500, "bid": 4.00, "ask": 4.10},  # buy
    {
        "ts": at(15, 5),
        "option_symbol": IWM_250P,
        "price": 1.00,
        "size": 2000,
        "bid": 1.00,
        "ask": 1.10,
    },  # sell
    {
        "ts": at(15, 10),
        "option_symbol": IWM_240P,
        "price": 2.05,
        "size": 1000,
        "bid": 2.00,
        "ask": 2.10,
    },  # mid
    {
        "ts": at(15, 15),
        "option_symbol": IWM_240P,
        "price": 2.10,
        "size": 10,
        "bid": 2.00,
        "ask": 2.10,
    },  # small
    {
        "ts": at(15),
        "option_symbol": SPY_590P,
        "price": 25.00,
        "size": 500,
        "bid": 25.00,
        "ask": 25.20,
    },  # sell
    {
        "ts": at(14),
        "option_symbol": SPY_600C,
        "price": 25.00,
        "size": 500,
        "bid": 24.80,
        "ask": 25.00,
    },  # buy, tie
    {
        "ts": at(15),
        "option_symbol": QQQ_500C,
        "price": 3.00,
        "size": 5,
        "bid": 2.90,
        "ask": 3.10,
    },  # small only
    {"ts": at(15), "option_symbol": AAPL_270C, "price": 5.00, "size": 3000},  # no quote, no AAPL chain
]


def test_flow_daily_aggregates_per_underlying():
    trades = silver_prints(FLOW_PRINTS)
    out = flow_daily(blocks(trades), CHAINS, trades).collect()
    assert dict(out.schema) == FLOW_DAILY_SCHEMA
    rows = {r["underlying"]: r for r in out.iter_rows(named=True)}
    assert list(rows) == ["AAPL", "IWM", "QQQ", "SPY"] and set(out["trade_date"]) == {D1}  # no D2: no prints
    assert rows["IWM"] == {
        "trade_date": D1,
        "underlying": "IWM",
        "block_count": 3,
        "buy_block_count": 1,
        "sell_block_count": 1,
        "block_buy_notional": 1_025_000.0,
        "block_sell_notional": 200_000.0,
        "block_notional": 1_430_000.0,
        "largest_block_symbol": IWM_255C,
        "largest_block_notional": 1_025_000.0,
        "largest_block_side": "buy",
        "unusual_contracts": 2,
    }
    # Two blocks of $1,250,000: the earlier print is the largest.
    assert rows["SPY"] == {
        "trade_date": D1,
        "underlying": "SPY",
        "block_count": 2,
        "buy_block_count": 1,
        "sell_block_count": 1,
        "block_buy_notional": 1_250_000.0,
        "block_sell_notional": 1_250_000.0,
        "block_notional": 2_500_000.0,
        "largest_block_symbol": SPY_600C,
        "largest_block_notional": 1_250_000.0,
        "largest_block_side": "buy",
        "unusual_contracts": 1,
    }
    # A chain and prints but no block: zeros.
    assert rows["QQQ"] == {
        "trade_date": D1,
        "underlying": "QQQ",
        "block_count": 0,
        "buy_block_count": 0,
        "sell_block_count": 0,
        "block_buy_notional": 0.0,
        "block_sell_notional": 0.0,
        "block_notional": 0.0,
        "largest_block_symbol": None,
        "largest_block_notional": None,
        "largest_block_side": None,
        "unusual_contracts": 0,
    }
    # A block without a chain that day: unusual_contracts is unknown, not 0.
    assert rows["AAPL"]["block_count"] == 1 and rows["AAPL"]["largest_block_side"] == "unknown"
    assert rows["AAPL"]["block_notional"] == 1_500_000.0 and rows["AAPL"]["unusual_contracts"] is None


def test_flow_daily_sessions_default_to_those_with_blocks():
    only_small = silver_prints([FLOW_PRINTS[6] | {"trade_date": D2, "ts": at(15, day=D2)}])
    with_blocks = silver_prints(FLOW_PRINTS)
    trades = pl.concat([with_blocks, only_small])
    # Without `trades`, D2 (prints, no block) is invisible; with it, D2 gets its zero rows.
    assert flow_daily(blocks(trades), CHAINS).collect()["trade_date"].unique().to_list() == [D1]
    on_d2 = flow_daily(blocks(trades), CHAINS, trades).collect().filter(pl.col("trade_date") == D2)
    assert on_d2.select("underlying", "block_count", "unusual_contracts").rows() == [("IWM", 0, 1)]


def test_no_prints_at_all_means_empty_typed_flow():
    empty_trades = pl.LazyFrame(schema=TRADE_SCHEMA)
    out = flow_daily(blocks(empty_trades), CHAINS, empty_trades).collect()
    assert out.height == 0 and dict(out.schema) == FLOW_DAILY_SCHEMA
    out = flow_daily(blocks(empty_trades), CHAINS).collect()
    assert out.height == 0 and dict(out.schema) == FLOW_DAILY_SCHEMA


# --- the SPEC 1 note ---------------------------------------------------------------------------------------


def note_silver_chain() -> pl.LazyFrame:
    note = note_chain().rename({"quote_date": "trade_date"})
    return builders.silver_chain(note.to_dicts(), columns=[*note.columns, "option_symbol"])


def test_spec_note_prints_one_block_buy_and_the_stale_symbol_is_expired():
    landing = pl.DataFrame(
        {
            "ts": ["2025-12-29T10:31:07-05:00", "2025-12-29T11:02:00-05:00", "2025-12-29T14:45:00-05:00"],
            "option_symbol": ["IWM260116C00255000", "IWM   260102P00245000", "IWM20250919C220"],
            "price": ["4.10", "1.25", "29.80"],
            "size": ["2500", "12", "43000"],
            "bid": ["4.00", "1.20", "29.70"],
            "ask": ["4.10", "1.30", "29.90"],
            "exchange": ["CBOE", "PHLX", "ISE"],
        }
    )
    bronze, _ = conform(
        landing,
        "trades",
        Path("trades_2025-12-29.csv"),
        "trades_2025-12-29.csv",
        datetime(2025, 12, 30, tzinfo=UTC),
    )
    trades = silver_trades(bronze.lazy())
    chains = note_silver_chain()

    flagged = unknown_or_expired(trades, chains).collect()
    assert flagged.select("option_symbol", "trade_date", "expiration", "_reason").rows() == [
        ("IWM   250919C00220000", NOTE_DATE, date(2025, 9, 19), EXPIRED_CONTRACT)
    ]
    assert EXPIRED_CONTRACT == "expired_contract:expiration,trade_date"

    clean = trades.join(
        flagged.lazy().select("_source_file", "_source_row"), on=["_source_file", "_source_row"], how="anti"
    )
    found = blocks(clean).collect()
    assert found.select(
        "trade_date",
        "underlying",
        "option_symbol",
        "expiration",
        "strike",
        "option_type",
        "size",
        "price",
        "notional",
        "side",
    ).rows() == [
        (
            NOTE_DATE,
            "IWM",
            "IWM   260116C00255000",
            date(2026, 1, 16),
            255.0,
            "C",
            2500,
            4.10,
            1_025_000.0,
            "buy",
        )
    ]
    # Left in, the stale print would have been a $128M "block buy" -- the note's contradiction.
    assert blocks(trades).filter(pl.col("option_symbol") == "IWM   250919C00220000").collect()[
        "notional"
    ].to_list() == [128_140_000.0]

    flow = flow_daily(found.lazy(), chains, clean).collect()
    assert flow.rows(named=True) == [
        {
            "trade_date": NOTE_DATE,
            "underlying": "IWM",
            "block_count": 1,
            "buy_block_count": 1,
            "sell_block_count": 0,
            "block_buy_notional": 1_025_000.0,
            "block_sell_notional": 0.0,
            "block_notional": 1_025_000.0,
            "largest_block_symbol": "IWM   260116C00255000",
            "largest_block_notional": 1_025_000.0,
            "largest_block_side": "buy",
            "unusual_contracts": 0,
        }
    ]

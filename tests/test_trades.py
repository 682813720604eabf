"""Trade prints bronze -> silver (transforms/trades.py): OSI parts, underlying, New York session date."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.quarantine import split_valid
from schemas.silver import Trades
from tests.builders import bronze_prints, print_row, silver_chain
from transforms.osi import format_osi, is_canonical_osi, parse_fixed_osi, parse_osi
from transforms.silver import LINEAGE_COLUMNS
from transforms.trades import (
    EXPIRED_CONTRACT,
    TRADE_COLUMNS,
    TRADE_SCHEMA,
    UNKNOWN_CONTRACT,
    _given,
    _given_symbol,
    session_date,
    silver_trades,
    unknown_or_expired,
)


def test_every_spelling_becomes_the_21_char_symbol_with_its_contract():
    spellings = ["IWM   260116C00255000", "IWM260116C00255000", "O:IWM260116C00255000", "IWM20260116C255"]
    out = silver_trades(bronze_prints([print_row(s) for s in spellings]).lazy()).collect()
    assert out.columns == [*TRADE_COLUMNS, *LINEAGE_COLUMNS]
    assert {c: out.schema[c] for c in TRADE_COLUMNS} == TRADE_SCHEMA
    assert out.select(
        "option_symbol", "underlying", "expiration", "strike", "option_type"
    ).unique().rows() == [("IWM   260116C00255000", "IWM", date(2026, 1, 16), 255.0, "C")]
    assert out["trade_date"].to_list() == [date(2025, 12, 29)] * 4
    assert out["_source_row"].to_list() == [0, 1, 2, 3]


def test_trade_date_is_the_new_york_date_of_the_utc_timestamp():
    stamps = [
        "2025-12-29T14:30:00Z",  # 09:30 New York
        "2025-12-30T00:30:00Z",  # 19:30 New York on the 29th
        "2025-12-30T04:59:59Z",  # 23:59:59 New York on the 29th
        "2025-12-30T05:00:00Z",  # midnight New York: the 30th
        "2025-07-01T03:59:59Z",  # summer time (UTC-4): 23:59:59 on June 30th
        "2025-12-29 16:15:00",
    ]  # naive = exchange time
    out = silver_trades(
        bronze_prints([print_row("IWM260116C00255000", ts=t) for t in stamps]).lazy()
    ).collect()
    assert out["trade_date"].to_list() == [
        date(2025, 12, 29),
        date(2025, 12, 29),
        date(2025, 12, 29),
        date(2025, 12, 30),
        date(2025, 6, 30),
        date(2025, 12, 29),
    ]


def test_underlying_from_the_row_else_the_root():
    rows = [
        print_row("SPXW  260116C05000000", underlying="spx"),  # the row's own, upper-cased
        print_row("SPXW  260116C05000000"),  # no underlying: the root
        print_row("IWM1  260116C00255000", underlying=" "),  # blank counts as missing
        print_row("IWM1  260116C00255000", underlying="IWM"),
    ]  # adjusted root, digits in it
    out = silver_trades(bronze_prints(rows).lazy()).collect()
    assert out["underlying"].to_list() == ["SPX", "SPXW", "IWM1", "IWM"]
    assert out["option_symbol"].to_list() == ["SPXW  260116C05000000"] * 2 + ["IWM1  260116C00255000"] * 2


def test_unparsable_symbol_keeps_its_raw_text_and_is_quarantined():
    rows = [print_row("IWM260116C00255000"), print_row("IWM 2026-01-16 255 C"), print_row("IWM20250919C220")]
    out = silver_trades(bronze_prints(rows).lazy()).collect()
    assert out["option_symbol"].to_list() == [
        "IWM   260116C00255000",
        "IWM 2026-01-16 255 C",
        "IWM   250919C00220000",
    ]
    assert out.row(1, named=True)["expiration"] is None and out.row(1, named=True)["strike"] is None
    valid, rejected = split_valid(out, Trades, "trades")
    assert valid["option_symbol"].to_list() == ["IWM   260116C00255000"]
    reasons = dict(zip(rejected["option_symbol"], rejected["_reason"], strict=True))
    assert "osi_symbol:option_symbol" in reasons["IWM 2026-01-16 255 C"]
    assert "not_nullable:expiration" in reasons["IWM 2026-01-16 255 C"]
    assert reasons["IWM   250919C00220000"] == "expiration_ge_trade_date:expiration,trade_date"


def test_incoming_trade_date_is_replaced_by_the_session_of_ts():
    bronze = bronze_prints([print_row("IWM260116C00255000", ts="2025-12-30T00:30:00Z")]).with_columns(
        pl.lit(date(2025, 12, 30)).alias("trade_date")
    )
    assert silver_trades(bronze.lazy()).collect()["trade_date"].to_list() == [date(2025, 12, 29)]


# --- prints against the chain ---------------------------------------------------------------------------


def chain(day: date, contracts: list[tuple[str, date, str, float]]) -> pl.LazyFrame:
    return silver_chain(
        [{"underlying": u, "expiration": e, "option_type": t, "strike": k} for u, e, t, k in contracts],
        columns=["underlying", "expiration", "option_type", "strike", "trade_date", "option_symbol"],
        trade_date=day,
    )


def test_unknown_and_expired_contracts_are_flagged_with_reasons():
    d1, d2 = date(2025, 12, 29), date(2025, 12, 30)
    listed = chain(d1, [("IWM", date(2026, 1, 16), "C", 255.0), ("IWM", date(2025, 12, 29), "P", 240.0)])
    rows = [
        print_row("IWM260116C00255000"),  # listed
        print_row("IWM251229P00240000"),  # 0DTE, listed: live
        print_row("IWM260116C00256000"),  # not in the chain
        print_row("IWM260116P00255000"),  # the put of a listed call: not in the chain
        print_row("IWM20250919C220"),  # expired before the session (the SPEC 1 note's stale print)
        print_row("IWM260116C00999000", ts="2025-12-30T15:00:00Z"),  # a session without a chain: not judged
        print_row("IWM251226C00250000", ts="2025-12-30T15:00:00Z"),  # ... but expiry is still judged
    ]
    trades = silver_trades(bronze_prints(rows).lazy())
    flagged = unknown_or_expired(trades, listed).collect()
    assert flagged.select("option_symbol", "trade_date", "_reason").rows() == [
        ("IWM   260116C00256000", d1, UNKNOWN_CONTRACT),
        ("IWM   260116P00255000", d1, UNKNOWN_CONTRACT),
        ("IWM   250919C00220000", d1, EXPIRED_CONTRACT),
        ("IWM   251226C00250000", d2, EXPIRED_CONTRACT),
    ]
    assert flagged.columns == [*TRADE_COLUMNS, *LINEAGE_COLUMNS, "_reason"]
    assert UNKNOWN_CONTRACT == "unknown_contract:option_symbol"
    assert EXPIRED_CONTRACT == "expired_contract:expiration,trade_date"


def test_a_chain_on_another_day_does_not_list_a_contract():
    listed = chain(date(2025, 12, 26), [("IWM", date(2026, 1, 16), "C", 255.0)]).pipe(
        lambda lf: pl.concat([lf, chain(date(2025, 12, 29), [("SPY", date(2026, 1, 16), "C", 600.0)])])
    )
    trades = silver_trades(bronze_prints([print_row("IWM260116C00255000")]).lazy())
    flagged = unknown_or_expired(trades, listed).collect()
    assert flagged["_reason"].to_list() == [UNKNOWN_CONTRACT]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(max_size=8), st.from_regex(r"[A-Za-z0-9. \-]{0,8}", fullmatch=True)),
        min_size=1,
        max_size=40,
    )
)
@example(["SPX", " spx", "", " ", "BRK.B", "BRK-B", "\u00e9", "ABC\t", None])
def test_the_clean_symbol_fast_path_equals_trim_and_upper_case(texts):
    frame = pl.DataFrame({"u": texts}, schema={"u": pl.Utf8})
    out = frame.select(_given(pl.col("u")).alias("slow"), _given_symbol(pl.col("u")).alias("fast"))
    assert out["fast"].to_list() == out["slow"].to_list()


def reference_silver_trades(bronze_trades: pl.LazyFrame) -> pl.LazyFrame:
    """silver_trades as it was before the plain-column parse (the struct per print), frozen for comparison."""
    part = pl.col("__osi").struct.field
    osi = format_osi(part("root"), part("expiration"), part("option_type"), part("strike"))
    canonical = is_canonical_osi(pl.col("option_symbol"))
    parsed = pl.concat(
        [
            bronze_trades.filter(canonical).with_columns(
                parse_fixed_osi(pl.col("option_symbol")).alias("__osi")
            ),
            bronze_trades.filter(~canonical)
            .with_columns(parse_osi(pl.col("option_symbol")).alias("__osi"))
            .with_columns(pl.coalesce(osi, pl.col("option_symbol")).alias("option_symbol")),
        ]
    )
    return parsed.with_columns(
        session_date(pl.col("ts")).alias("trade_date"),
        pl.coalesce(_given(pl.col("underlying")), part("root")).alias("underlying"),
        part("expiration").alias("expiration"),
        part("strike").alias("strike"),
        part("option_type").alias("option_type"),
    ).select(*[pl.col(c).cast(t) for c, t in TRADE_SCHEMA.items()], *LINEAGE_COLUMNS)


contract = st.tuples(
    st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.sampled_from("CP"),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
)
spelled = st.one_of(
    contract.map(lambda c: f"{c[0]:<6}{c[1]}{c[2]}{c[3]}"),  # padded
    contract.map(lambda c: f"{c[0]}{c[1]}{c[2]}{c[3]}"),  # compact
    contract.map(lambda c: f"O:{c[0]}{c[1]}{c[2]}{c[3]}"),  # Polygon
    contract.map(lambda c: f"{c[0]}20{c[1]}{c[2]}{int(c[3]) // 1000}"),  # press
    contract.map(lambda c: f" {c[0].lower()}{c[1]}{c[2]}{c[3]} "),  # forgiven case and blanks
    st.text(alphabet="O:IWM0123456789CP. ", max_size=24),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(spelled, st.one_of(st.none(), st.sampled_from(["IWM", " spx ", "", "BRK.B"]))),
        min_size=1,
        max_size=30,
    )
)
def test_silver_trades_equals_the_struct_reference(prints):
    rows = [
        print_row(symbol, **({} if underlying is None else {"underlying": underlying}))
        for symbol, underlying in prints
    ]
    bronze = bronze_prints(rows).lazy()
    # Row order is not part of it: silver sorts the partition (the reference puts padded symbols first).
    assert (
        silver_trades(bronze)
        .collect()
        .sort("_source_row")
        .equals(reference_silver_trades(bronze).collect().sort("_source_row"))
    )


fixed_spelling = st.one_of(
    contract.map(lambda c: f"{c[0]:<6}{c[1]}{c[2]}{c[3]}"),  # padded
    contract.map(lambda c: f"{c[0]}{c[1]}{c[2]}{c[3]}"),  # compact
    contract.map(lambda c: f"O:{c[0]}{c[1]}{c[2]}{c[3]}"),  # Polygon
)


@settings(max_examples=150, deadline=None)
@given(st.lists(fixed_spelling, min_size=1, max_size=30))
def test_a_file_of_offset_spellings_takes_one_pass_with_the_same_rows_in_place(symbols):
    """Only padded, compact and Polygon symbols (impossible dates included): the one-pass path, whose
    rows keep their order, gives the reference's rows."""
    bronze = bronze_prints([print_row(symbol) for symbol in symbols]).lazy()
    silver = silver_trades(bronze).collect()
    assert silver["_source_row"].to_list() == list(range(len(symbols)))
    assert silver.equals(reference_silver_trades(bronze).collect().sort("_source_row"))

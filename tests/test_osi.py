"""OSI symbols: every spelling parses to the same contract and normalises to the same 21-char form."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transforms.osi import (
    format_osi,
    is_canonical_osi,
    is_fixed_osi,
    normalize_osi,
    osi_part_names,
    parse_fixed_osi,
    parse_osi,
    parse_osi_pattern,
    with_fixed_osi_parts,
)

PARTS = ["root", "expiration", "option_type", "strike"]


def parsed(symbols: list[str | None]) -> list[dict]:
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8})
    return frame.select(parse_osi(pl.col("symbol")).alias("p")).unnest("p").to_dicts()


def normalized(symbols: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8})
    return frame.select(normalize_osi(pl.col("symbol"))).to_series().to_list()


def formatted(contracts: list[tuple[str, date, str, float]]) -> list[str | None]:
    frame = pl.DataFrame(contracts, schema=PARTS, orient="row")
    return (
        frame.select(
            format_osi(pl.col("root"), pl.col("expiration"), pl.col("option_type"), pl.col("strike"))
        )
        .to_series()
        .to_list()
    )


IWM_255C = {"root": "IWM", "expiration": date(2025, 12, 31), "option_type": "C", "strike": 255.0}
NULL_PARTS = dict.fromkeys(PARTS)


@pytest.mark.parametrize(
    "symbol",
    [
        "IWM   251231C00255000",  # padded, 21 chars
        "IWM251231C00255000",  # compact
        "O:IWM251231C00255000",  # Polygon
        "IWM20251231C255",  # press, 4-digit year
        "IWM20251231C255.0",
        "IWM20251231C0255",
        " iwm251231c00255000 ",  # case and surrounding blanks are forgiven
    ],
)
def test_every_spelling_of_one_contract(symbol):
    assert parsed([symbol]) == [IWM_255C]
    assert normalized([symbol]) == ["IWM   251231C00255000"]


def test_fractional_strikes_and_puts():
    assert parsed(["IWM20250919P220.5", "SPY   260116P00512125"]) == [
        {"root": "IWM", "expiration": date(2025, 9, 19), "option_type": "P", "strike": 220.5},
        {"root": "SPY", "expiration": date(2026, 1, 16), "option_type": "P", "strike": 512.125},
    ]
    assert normalized(["IWM20250919C220.5"]) == ["IWM   250919C00220500"]


def test_roots_with_digits_are_read_from_the_right():
    # The tail has a fixed shape (6 or 8 digits, C|P, strike), so whatever precedes it is the root.
    assert parsed(["IWM1251231C00255000", "BRKB1 250117P00450000", "IWM120251231C255"]) == [
        {**IWM_255C, "root": "IWM1"},
        {"root": "BRKB1", "expiration": date(2025, 1, 17), "option_type": "P", "strike": 450.0},
        {**IWM_255C, "root": "IWM1"},
    ]
    # An 8-digit strike is OSI's, never a press strike: this is root IWM20 expiring 2025-09-19.
    assert normalized(["IWM20250919C00220000"]) == ["IWM20 250919C00220000"]


def test_short_roots_and_the_extremes_of_the_strike_field():
    assert normalized(["F251231C00000500", "ABCDEF991231P99999999"]) == [
        "F     251231C00000500",
        "ABCDEF991231P99999999",
    ]
    assert parsed(["ABCDEF991231P99999999"])[0]["strike"] == 99999.999


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "IWM",
        "../etc/passwd",
        "IWM'; DROP TABLE x;--",
        "IWM   251231X00255000",  # not C or P
        "IWM251231C0025500",  # 7-digit strike
        "IWM251340C00255000",  # month 13
        "IWM250230C00255000",  # February 30th
        "1WM251231C00255000",  # root must start with a letter
        "ABCDEFG251231C00255000",  # root longer than 6
        "IWM20251231C123456",  # press strike with 6 integer digits
        "IWM20251231C1.2345",  # finer than OSI's 0.001
        "IWM٢٥١٢٣١C00255000",  # non-ASCII digits
        "X:IWM251231C00255000",
    ],
)
def test_garbage_gives_nulls_not_errors(garbage):
    assert parsed([garbage]) == [NULL_PARTS]
    assert normalized([garbage]) == [None]


def test_format_known_values_and_unrepresentable_parts():
    assert formatted(
        [
            ("IWM", date(2025, 12, 31), "C", 255.0),
            ("BRKB1", date(2025, 1, 17), "P", 0.5),
            ("spy", date(2026, 1, 16), "p", 512.125),  # case forgiven, as in parsing
            ("IWM", date(2025, 12, 31), "C", 255.0004),  # rounded to OSI's 0.001
            ("IWM", date(2025, 12, 31), "X", 255.0),
            ("TOOLONG", date(2025, 12, 31), "C", 255.0),
            ("IWM", date(2025, 12, 31), "C", 100_000.0),
            ("IWM", date(2025, 12, 31), "C", -1.0),
            ("IWM", date(2125, 12, 31), "C", 255.0),  # YY cannot hold another century
            ("IWM", None, "C", 255.0),
        ]
    ) == [
        "IWM   251231C00255000",
        "BRKB1 250117P00000500",
        "SPY   260116P00512125",
        "IWM   251231C00255000",
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def test_works_lazily_and_keeps_the_symbol_column_name_when_parsing():
    frame = pl.LazyFrame({"option_symbol": ["O:IWM251231C00255000"]})
    out = frame.with_columns(parse_osi(pl.col("option_symbol"))).collect()
    assert out.schema["option_symbol"] == pl.Struct(
        {"root": pl.Utf8, "expiration": pl.Date, "option_type": pl.Utf8, "strike": pl.Float64}
    )


# --- properties ---------------------------------------------------------------------------------------

roots = st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True)
expirations = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
option_types = st.sampled_from(["C", "P"])
strike_millis = st.integers(min_value=0, max_value=99_999_999)
contracts = st.tuples(roots, expirations, option_types, strike_millis)


def press(root: str, expiration: date, option_type: str, millis: int) -> str:
    strike = f"{millis // 1000}.{millis % 1000:03d}".rstrip("0").rstrip(".")
    return f"{root}{expiration:%Y%m%d}{option_type}{strike}"


@settings(max_examples=60, deadline=None)
@given(st.lists(contracts, min_size=1, max_size=40))
def test_format_then_parse_round_trips(batch):
    symbols = formatted([(r, e, t, m / 1000) for r, e, t, m in batch])
    assert all(len(s) == 21 for s in symbols)
    assert parsed(symbols) == [
        {"root": r, "expiration": e, "option_type": t, "strike": m / 1000} for r, e, t, m in batch
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(contracts, min_size=1, max_size=40))
def test_every_spelling_normalises_to_the_same_symbol(batch):
    padded = formatted([(r, e, t, m / 1000) for r, e, t, m in batch])
    compact = [s[:6].rstrip() + s[6:] for s in padded]
    polygon = ["O:" + s for s in compact]
    press_form = [press(*c) for c in batch]
    for spelling in (padded, compact, polygon, press_form):
        assert normalized(spelling) == padded


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.from_regex(r"[A-Z0-9 :.]{0,24}", fullmatch=True))))
def test_arbitrary_text_never_raises_and_what_parses_is_a_fixed_point(texts):
    out = normalized(texts)
    assert len(out) == len(texts)
    good = [s for s in out if s is not None]
    assert all(len(s) == 21 for s in good)
    assert normalized(good) == good


# 21-char symbols, valid or not: roots of 1-6 chars (digits after the first letter), any six digits for
# the date (so impossible dates like 251340 occur), C or P, any eight digits; plus near misses.
canonical_shaped = st.builds(
    lambda root, yymmdd, kind, strike: f"{root:<6}{yymmdd}{kind}{strike}",
    st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
    st.one_of(
        st.from_regex(r"[0-9]{6}", fullmatch=True),
        st.dates(date(2000, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%y%m%d")),
    ),
    st.sampled_from("CP"),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
)
near_misses = st.one_of(
    canonical_shaped.map(lambda s: s.lower()),
    canonical_shaped.map(lambda s: " " + s[:-1]),
    canonical_shaped.map(lambda s: s[:12] + "X" + s[13:]),
    canonical_shaped.map(lambda s: s + "0"),
    canonical_shaped.map(lambda s: "O:" + s.replace(" ", "")),
    st.text(max_size=25),
    st.none(),
    # compact, Polygon with the padding kept, and strings made of OSI's own characters
    canonical_shaped.map(lambda s: s.replace(" ", "")),
    canonical_shaped.map(lambda s: "O:" + s),
    st.text(alphabet="O:IWM0123456789CP. ", max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(canonical_shaped, near_misses), min_size=1, max_size=40))
@example(["00000000011", "IWM   26010XC00255000"])  # not canonical: the offset parser gives nulls, no error
def test_the_offset_parser_equals_the_regex_on_every_canonical_symbol(symbols):
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8})
    out = frame.with_columns(
        is_canonical_osi(pl.col("symbol")).alias("canonical"),
        is_fixed_osi(pl.col("symbol")).alias("fixed"),
        parse_osi_pattern(pl.col("symbol")).alias("regex"),
        parse_fixed_osi(pl.col("symbol")).alias("offsets"),
        parse_osi(pl.col("symbol")).alias("dispatched"),
        normalize_osi(pl.col("symbol")).alias("normalized"),
    )
    for row in out.iter_rows(named=True):
        assert row["dispatched"] == row["regex"], row  # parse_osi picks the offsets only where they agree
        if row["fixed"]:
            assert row["offsets"] == row["regex"], row
        assert row["fixed"] or not row["canonical"], row
        shaped = (
            row["symbol"] is not None
            and len(row["symbol"]) == 21
            and row["symbol"] == row["symbol"].strip()
            and row["symbol"][:1].isalpha()
            and row["symbol"][:1].isupper()
        )
        if not row["canonical"]:
            assert not (shaped and row["normalized"] == row["symbol"]), row  # nothing canonical is missed
            continue
        assert row["offsets"] == row["regex"], row
        # The 21-char form normalises to itself, or to null for an impossible date (raw text kept).
        assert row["normalized"] in (row["symbol"], None), row
        assert (row["normalized"] is None) == (row["regex"]["expiration"] is None), row


def test_canonical_fast_path_known_values():
    symbols = [
        "IWM   260102C00255000",
        "BRKB1 251219P00412500",
        "IWM   251340C00255000",
        "IWM260102C00255000",
        "iwm   260102C00255000",
        None,
    ]
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8})
    assert frame.select(is_canonical_osi(pl.col("symbol"))).to_series().to_list() == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    offsets = frame.head(3).select(parse_fixed_osi(pl.col("symbol")).alias("p")).unnest("p").to_dicts()
    assert offsets == [
        {"root": "IWM", "expiration": date(2026, 1, 2), "option_type": "C", "strike": 255.0},
        {"root": "BRKB1", "expiration": date(2025, 12, 19), "option_type": "P", "strike": 412.5},
        {"root": None, "expiration": None, "option_type": None, "strike": None},
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(canonical_shaped, near_misses), min_size=1, max_size=40))
@example(["IWM   251340C00255000", "O:IWM251231C00255500", "IWM251231P99999999"])
def test_plain_offset_columns_equal_the_offset_struct_on_every_fixed_symbol(symbols):
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8}).filter(
        is_fixed_osi(pl.col("symbol"))
    )
    names = osi_part_names("p_")
    columns = with_fixed_osi_parts(frame.lazy(), "symbol", "p_").collect()
    assert columns.columns == ["symbol", *names.values()]  # no scratch column left behind
    struct = frame.select(parse_fixed_osi(pl.col("symbol")).alias("p")).unnest("p")
    assert columns.select(pl.col(c).alias(n) for n, c in names.items()).equals(struct)


def test_plain_offset_columns_known_values():
    frame = pl.LazyFrame(
        {"symbol": ["IWM   260102C00255000", "O:BRKB1251219P00412500", "IWM251340C00255000"]}
    )
    out = with_fixed_osi_parts(frame, "symbol", "osi_").collect()
    assert out.drop("symbol").rows() == [
        ("IWM", date(2026, 1, 2), "C", 255.0),
        ("BRKB1", date(2025, 12, 19), "P", 412.5),
        (None, None, None, None),  # impossible date: every field null, as parse_osi gives
    ]
    assert out.columns == ["symbol", "osi_root", "osi_expiration", "osi_option_type", "osi_strike"]

"""Landing files -> bronze (flows/sources/files.py): explicit text parsing, lineage, and file-level failures."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from flows.sources.files import FIELDS, SourceError, bronze_schema, conform, read_text_frame

INGESTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PATH = Path("/landing/bars/2025-12-29.csv")
BAR = {
    "date": "2025-12-29",
    "symbol": "IWM",
    "open": "250",
    "high": "252",
    "low": "249.35",
    "close": "249.8",
    "volume": "1000",
}
CHAIN = {
    "quote_date": "2025-12-29",
    "underlying": "IWM",
    "expiration": "2026-01-02",
    "strike": "255",
    "option_type": "C",
    "open_interest": "10000",
    "volume": "12",
    "bid": "1.0",
    "ask": "1.2",
}
TRADE = {
    "ts": "2025-12-29T15:30:00Z",
    "option_symbol": "IWM   260102C00255000",
    "price": "1.10",
    "size": "10",
}
BASE = {"bars": BAR, "chains": CHAIN, "trades": TRADE}


def text_frame(dataset: str, **columns: list[str | None]) -> pl.DataFrame:
    """A landing frame (all text) of len(columns' lists) rows: the base row with `columns` overriding."""
    n = max((len(v) for v in columns.values()), default=1)
    data = {k: [v] * n for k, v in BASE[dataset].items()} | columns
    return pl.DataFrame(data, schema={k: pl.String for k in data})


def bronze(dataset: str, path: Path = PATH, **columns) -> pl.DataFrame:
    out, fmt = conform(text_frame(dataset, **columns), dataset, path, path.name, INGESTED)
    assert fmt == f"canonical-{dataset}"
    assert dict(out.schema) == bronze_schema(dataset)
    return out


def parsed(dataset: str, column: str, values: list[str | None]) -> list[tuple]:
    """(typed value, _parse_errors) per value of one landing column."""
    out = bronze(dataset, **{column: values})
    name = FIELDS[dataset][column].name
    return list(zip(out[name].to_list(), out["_parse_errors"].to_list(), strict=True))


# --- numbers --------------------------------------------------------------------------------------------


def test_floats_parse_exactly_including_the_gamma_trap():
    # The SPEC's trap: a column whose first values are integers ("0") and later ones tiny floats.
    got = parsed(
        "chains", "gamma", ["0", "0", "0.000001", "1e-6", "1E-06", " 0.5 ", "-0.25", "+3", ".5", "", None]
    )
    assert got == [
        (0.0, None),
        (0.0, None),
        (1e-6, None),
        (1e-6, None),
        (1e-6, None),
        (0.5, None),
        (-0.25, None),
        (3.0, None),
        (0.5, None),
        (None, None),
        (None, None),
    ]


def test_unparsable_float_is_null_and_named():
    got = parsed("bars", "close", ["249.8", "abc", "1,5", "249.8.1", "$250"])
    assert got == [(249.8, None), (None, "close"), (None, "close"), (None, "close"), (None, "close")]


def test_ints_parse_from_integer_text_and_integral_floats_only():
    got = parsed(
        "bars", "volume", ["1000", "1e3", "1000.0", " 7 ", "-3", "5.5", "abc", "99999999999999999999999"]
    )
    assert got == [
        (1000, None),
        (1000, None),
        (1000, None),
        (7, None),
        (-3, None),
        (None, "volume"),
        (None, "volume"),
        (None, "volume"),
    ]


def test_several_bad_columns_are_all_named_in_file_order():
    out = bronze(
        "chains", strike=["255", "x"], open_interest=["5", "5.5"], bid=["1", "?"], ask=["1.2", "1.2"]
    )
    assert out["_parse_errors"].to_list() == [None, "strike,open_interest,bid"]
    assert out.row(1, named=True)["strike"] is None and out.row(1, named=True)["ask"] == 1.2


# --- dates, timestamps, option types, symbols -----------------------------------------------------------


def test_dates_in_iso_us_and_compact_forms():
    got = parsed(
        "bars",
        "date",
        [
            "2025-12-29",
            "12/29/2025",
            "20251229",
            "2025-12-29T00:00:00",
            "1/2/2026",
            "2025-13-01",
            "29/12/2025",
            "yesterday",
        ],
    )
    dec29 = date(2025, 12, 29)
    assert got == [
        (dec29, None),
        (dec29, None),
        (dec29, None),
        (dec29, None),
        (date(2026, 1, 2), None),
        (None, "date"),
        (None, "date"),
        (None, "date"),
    ]


def test_expiration_is_a_date_too():
    out = bronze("chains", expiration=["20260102", "01/16/2026"])
    assert out["expiration"].to_list() == [date(2026, 1, 2), date(2026, 1, 16)]
    assert out["trade_date"].to_list() == [date(2025, 12, 29)] * 2  # quote_date -> trade_date


def test_timestamps_with_offsets_z_and_naive_new_york():
    utc = datetime(2025, 12, 29, 15, 30, tzinfo=UTC)
    values = [
        "2025-12-29T15:30:00Z",
        "2025-12-29T10:30:00-05:00",
        "2025-12-29 16:30:00+0100",
        "2025-12-29 15:30:00+00:00",
        "2025-12-29T15:30:00.5Z",
        "2025-12-29 10:30:00",  # naive: New York, EST in December
        "2025-12-29T10:30:00",
        "2025-12-29 10:30:00.123456",
        "2025-07-01 10:30:00",  # naive in July: EDT
        "2025-11-02 01:30:00",  # the repeated hour: the first (EDT) one
        "2025-03-09 02:30:00",  # the skipped hour does not exist
        "not a time",
    ]
    got = parsed("trades", "ts", values)
    assert got == [
        (utc, None),
        (utc, None),
        (utc, None),
        (utc, None),
        (datetime(2025, 12, 29, 15, 30, 0, 500_000, tzinfo=UTC), None),
        (utc, None),
        (utc, None),
        (datetime(2025, 12, 29, 15, 30, 0, 123_456, tzinfo=UTC), None),
        (datetime(2025, 7, 1, 14, 30, tzinfo=UTC), None),
        (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), None),
        (None, "ts"),
        (None, "ts"),
    ]


def test_option_types_normalise_to_c_and_p():
    got = parsed("chains", "option_type", ["call", "c", "PUT", " p ", "Call", "Put", "x"])
    # An unknown type is kept (upper-cased) for validation to quarantine as isin(C,P).
    assert [v for v, _ in got] == ["C", "C", "P", "P", "C", "P", "X"]
    assert {e for _, e in got} == {None}


def test_symbols_are_upper_cased_and_trimmed():
    assert [v for v, _ in parsed("bars", "symbol", [" iwm ", "Spy", "brk.b\t"])] == ["IWM", "SPY", "BRK.B"]
    out = bronze("chains", underlying=[" qqq"])
    assert out["underlying"].to_list() == ["QQQ"]
    out = bronze("trades", option_symbol=["  IWM   260102C00255000 "])
    assert out["option_symbol"].to_list() == ["IWM   260102C00255000"]  # text: trimmed, case kept


# --- lineage and optional columns ----------------------------------------------------------------------


def test_lineage_and_absent_optional_columns():
    out = bronze("chains", strike=["255", "260", "265"])
    assert out["_source_file"].to_list() == [PATH.name] * 3
    assert out["_source_row"].to_list() == [0, 1, 2]
    assert out["_ingested_at"].to_list() == [INGESTED] * 3
    assert out["_parse_errors"].to_list() == [None] * 3
    # Optional columns absent from the file are NULL, not errors (greeks are derived later).
    for column in ("last", "implied_volatility", "delta", "gamma", "underlying_price", "option_symbol"):
        assert out[column].to_list() == [None] * 3, column
    assert out["strike"].to_list() == [255.0, 260.0, 265.0]


def test_extra_columns_are_ignored():
    out, _ = conform(text_frame("bars", vendor_note=["x"]), "bars", PATH, PATH.name, INGESTED)
    assert "vendor_note" not in out.columns and out["close"].to_list() == [249.8]


# --- file-level failures ---------------------------------------------------------------------------------


def test_missing_required_columns_fail_naming_file_and_columns():
    frame = text_frame("bars").drop("close", "volume")
    with pytest.raises(SourceError) as err:
        conform(frame, "bars", PATH, PATH.name, INGESTED)
    message = str(err.value)
    assert message.startswith(str(PATH)) and "close, volume" in message and "\n" not in message
    with pytest.raises(SourceError, match=r"chains\.csv: missing required column\(s\) option_type"):
        conform(
            text_frame("chains").drop("option_type"), "chains", Path("chains.csv"), "chains.csv", INGESTED
        )


def test_a_column_without_any_readable_value_fails_the_file():
    with pytest.raises(SourceError) as err:
        bronze("bars", close=["abc", "n/a", ""])
    message = str(err.value)
    assert str(PATH) in message and "'close'" in message and "float" in message and "'abc'" in message
    with pytest.raises(SourceError, match="'volume'"):
        bronze("bars", volume=["5.5", "6.5"])
    with pytest.raises(SourceError, match="'ts'"):
        bronze("trades", ts=["noon", "later"])
    # One good value is enough: the rest are row errors for quarantine.
    assert bronze("bars", close=["abc", "1.5"])["_parse_errors"].to_list() == ["close", None]


def test_read_text_frame_csv_gz_and_header_cleanup(tmp_path):
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(
        gzip.compress(
            b" Date ,SYMBOL,Open,High,Low, Close,Volume\n2025-12-29,iwm,1,2,0.5,1.5,0\n"
            b"2025-12-30,iwm,1,2,0.5,0.000001,1000\n"
        )
    )
    frame = read_text_frame(path)
    assert frame.columns == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert frame.schema == pl.Schema({c: pl.String for c in frame.columns})
    assert frame["close"].to_list() == ["1.5", "0.000001"]
    out, _ = conform(frame, "bars", path, path.name, INGESTED)
    assert out.select("trade_date", "symbol", "close", "volume").rows() == [
        (date(2025, 12, 29), "IWM", 1.5, 0),
        (date(2025, 12, 30), "IWM", 1e-6, 1000),
    ]


def test_read_text_frame_parquet_typed_columns_become_text(tmp_path):
    path = tmp_path / "trades.parquet"
    pl.DataFrame(
        {
            " TS": [datetime(2025, 12, 29, 15, 30, tzinfo=UTC)],
            "Option_Symbol": ["IWM   260102C00255000"],
            "price": [1.1],
            "size": [10],
            "gamma": [1e-6],
        }
    ).write_parquet(path)
    frame = read_text_frame(path)
    assert frame.columns == ["ts", "option_symbol", "price", "size", "gamma"]
    assert set(frame.schema.values()) == {pl.String}
    out, _ = conform(frame, "trades", path, path.name, INGESTED)
    row = out.row(0, named=True)
    assert (row["ts"], row["price"], row["size"], row["_parse_errors"]) == (
        datetime(2025, 12, 29, 15, 30, tzinfo=UTC),
        1.1,
        10,
        None,
    )
    assert float(frame["gamma"].item()) == 1e-6


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.parquet", b"this is not a parquet file"),
        ("empty.parquet", b""),
        ("truncated.parquet", b"PAR1\x00\x00PAR1"),
        ("empty.csv", b""),
        ("ragged.csv", b"date,symbol\n2025-12-29,IWM,extra,fields\n"),
    ],
)
def test_unreadable_files_fail_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        read_text_frame(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unreadable") and "\n" not in message


# --- properties --------------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_any_float_written_with_repr_round_trips(values):
    """Bit-exact, subnormals and -0.0 included. (What 'nan'/'inf' text should become is left open.)"""
    got = parsed("chains", "gamma", [repr(v) for v in values])
    for value, (back, error) in zip(values, got, strict=True):
        assert error is None
        assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=-(2**53), max_value=2**53), min_size=1, max_size=20))
def test_any_integer_round_trips(values):
    got = parsed("chains", "open_interest", [str(v) for v in values])
    assert got == [(v, None) for v in values]


def _blank(ch: str) -> bool:
    """Unicode White_Space, as polars strips it (Python's isspace() also counts \\x1c-\\x1f)."""
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


TEXT = st.one_of(
    st.text(max_size=30), st.none(), st.sampled_from(["1e3", "-0", "NaN", "12/31/2025", "C", " p "])
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: TEXT for c in FIELDS["chains"]}), min_size=1, max_size=5))
def test_arbitrary_text_never_raises_only_nulls_and_parse_errors(rows):
    """A good first row keeps every column readable; each arbitrary value either parses or is named."""
    good = {c: CHAIN.get(c, "0.5") for c in FIELDS["chains"]} | {"option_symbol": "IWM   260102C00255000"}
    frame = pl.DataFrame([good, *rows], schema={c: pl.String for c in FIELDS["chains"]})
    out, _ = conform(frame, "chains", PATH, PATH.name, INGESTED)
    assert out.height == len(rows) + 1
    assert out["_parse_errors"][0] is None
    for raw, typed, errors in zip(
        frame.to_dicts(), out.to_dicts(), out["_parse_errors"].to_list(), strict=True
    ):
        named = set(errors.split(",")) if errors else set()
        for column, field in FIELDS["chains"].items():
            given_text = raw[column] is not None and not all(_blank(ch) for ch in raw[column])
            failed = given_text and typed[field.name] is None
            assert (column in named) == failed, (column, raw[column], typed[field.name])


# --- the fast path equals the per-value rules (differential) ------------------------------------------------
# `conform` reads clean columns with cheaper expressions and re-reads only the rows they leave null with the
# full rules. These tests pin it to a frozen copy of the rules and of the straightforward conform they
# replaced: same typed values, same `_parse_errors`, same file-level failures, on deliberately messy columns.


def _parse_reference(kind: str, raw: pl.Expr) -> pl.Expr:
    text = raw.str.strip_chars()
    if kind == "float":
        return text.cast(pl.Float64, strict=False)
    if kind == "int":
        number = text.cast(pl.Float64, strict=False)
        return pl.when(number == number.round(0)).then(number).cast(pl.Int64, strict=False)
    if kind == "date":
        return pl.coalesce(
            text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
            text.str.to_date("%m/%d/%Y", strict=False),
            text.str.to_date("%Y%m%d", strict=False),
        )
    if kind == "datetime":
        with_zone = text.str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d):?(\d\d)$", "$1$2")

        def zoned(fmt: str) -> pl.Expr:
            return with_zone.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")

        def naive(fmt: str) -> pl.Expr:
            return (
                text.str.to_datetime(fmt, strict=False, time_unit="us")
                .dt.replace_time_zone("America/New_York", ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )

        return pl.coalesce(
            zoned("%Y-%m-%dT%H:%M:%S%.f%z"),
            zoned("%Y-%m-%d %H:%M:%S%.f%z"),
            naive("%Y-%m-%d %H:%M:%S%.f"),
            naive("%Y-%m-%dT%H:%M:%S%.f"),
        )
    if kind == "symbol":
        return text.str.to_uppercase()
    if kind == "option_type":
        upper = text.str.to_uppercase()
        return (
            pl.when(upper.is_in(["C", "CALL"]))
            .then(pl.lit("C"))
            .when(upper.is_in(["P", "PUT"]))
            .then(pl.lit("P"))
            .otherwise(upper)
        )
    return text


def _conform_reference(frame: pl.DataFrame, dataset: str, path: Path) -> pl.DataFrame:
    """The canonical-format conform before the fast path, value by value with `_parse_reference`."""
    from flows.sources.files import KIND_DTYPES
    from transforms.trades import session_date

    fields = FIELDS[dataset]
    raw_cols = {c: (pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.String)) for c in fields}
    typed = (
        frame.lazy()
        .select(
            *[
                _parse_reference(f.kind, raw_cols[c].cast(pl.String)).cast(KIND_DTYPES[f.kind]).alias(f.name)
                for c, f in fields.items()
            ],
            *[
                (raw_cols[c].cast(pl.String).str.strip_chars().str.len_chars().fill_null(0) > 0).alias(
                    f"__given_{c}"
                )
                for c in fields
            ],
        )
        .collect()
    )
    failed = {c: (pl.col(f"__given_{c}") & pl.col(f.name).is_null()) for c, f in fields.items()}
    counts = typed.select(
        *[e.sum().alias(c) for c, e in failed.items()],
        *[pl.col(f"__given_{c}").sum().alias(f"n_{c}") for c in fields],
    ).row(0, named=True)
    for column, field in fields.items():
        given, bad = counts[f"n_{column}"], counts[column]
        if given and bad == given and len(typed) > 1:
            sample = (
                frame.get_column(column).drop_nulls().head(1).to_list() if column in frame.columns else []
            )
            raise SourceError(
                f"{path}: column {column!r} has no value readable as {field.kind} (e.g. {sample[0]!r})"
                if sample
                else f"{path}: column {column!r} is unreadable"
            )
    parse_errors = pl.concat_list([pl.when(e).then(pl.lit(c)) for c, e in failed.items()]).list.drop_nulls()
    if dataset == "trades":
        typed = typed.with_columns(session_date(pl.col("ts")).alias("trade_date"))
    out = typed.with_columns(
        pl.when(parse_errors.list.len() > 0).then(parse_errors.list.join(",")).alias("_parse_errors"),
        pl.lit(path.name).alias("_source_file"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_source_row"),
        pl.lit(INGESTED).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )
    return out.select(list(bronze_schema(dataset)))


def assert_same_as_reference(frame: pl.DataFrame, dataset: str) -> None:
    try:
        expected = _conform_reference(frame, dataset, PATH)
    except SourceError as err:
        with pytest.raises(SourceError) as got:
            conform(frame, dataset, PATH, PATH.name, INGESTED)
        assert str(got.value) == str(err)  # noqa: PT017 - the reference's own error is the expected one
        return
    out, _ = conform(frame, dataset, PATH, PATH.name, INGESTED)
    assert_frame_equal(out, expected)


BLANKS = st.sampled_from(["", " ", "\t", "  ", "\u00a0", "\n"])
JUNK = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "abc",
            "n/a",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "1,5",
            "$5",
            "٣",
            "0x10",
            "1_000",
            "+-1",
            "5.",
            ".5",
            "-0",
            "1e3",
        ]
    ),
)


def _padded(draw, value: str) -> str:
    """Sometimes surrounded by whitespace (trimmed by the rules; a trap for a reader that does not)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(BLANKS) + value + draw(BLANKS)
    return value


@st.composite
def float_text(draw, style: int) -> str:
    value = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    text = [repr(value), f"{value:.6f}", f"{value:e}", str(int(value)) if abs(value) < 1e15 else "7"][
        style % 4
    ]
    return _padded(draw, text)


@st.composite
def int_text(draw, style: int) -> str:
    value = draw(
        st.one_of(
            st.integers(-(2**53), 2**53),
            st.integers(-(2**70), 2**70),
            st.sampled_from([2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), 2**63, 0]),
        )
    )
    text = [str(value), f"{value}.0", f"{value}.5", f"+{value}" if value >= 0 else str(value)][style % 4]
    return _padded(draw, text)


@st.composite
def date_text(draw, style: int) -> str:
    day = draw(st.dates(min_value=date(1000, 1, 1), max_value=date(2999, 12, 31)))
    forms = [
        day.isoformat(),
        f"{day:%m/%d/%Y}",
        f"{day:%Y%m%d}",
        f"{day.isoformat()}T00:00:00",
        f"{day.month}/{day.day}/{day.year}",
        f"{day.year}-{day.month}-{day.day}",
        f"{day.isoformat()} 16:00",
        f"{day.year}-02-30",
        f"{day.year}-13-01",
        f"{day:%d/%m/%Y}",
    ]
    return _padded(draw, forms[style % len(forms)] if draw(st.booleans()) else draw(st.sampled_from(forms)))


# Naive New York times around both 2025 DST changes (the gap 02:00-03:00 on 9 March, the repeat 01:00-02:00
# on 2 November), then instants anywhere.
DST_EDGES = [
    datetime(2025, 3, 9, 1, 59, 59),
    datetime(2025, 3, 9, 2, 0),
    datetime(2025, 3, 9, 2, 30),
    datetime(2025, 3, 9, 3, 0),
    datetime(2025, 11, 2, 0, 59, 59),
    datetime(2025, 11, 2, 1, 0),
    datetime(2025, 11, 2, 1, 30, 0, 250_000),
    datetime(2025, 11, 2, 2, 0),
]
ZONES = [
    "",
    "Z",
    "+00:00",
    "-05:00",
    "+0000",
    "-0500",
    "-04:00",
    "+05:30",
    "+0530",
    "-00:00",
    "+23:59",
    "-2359",
    "+24:00",
    "+2400",
    "+05:60",
    "+0560",
    "-9900",
    "z",
    "-05",
    "+5:00",
    " -05:00",
    "UTC",
]


@st.composite
def timestamp_text(draw, style: int) -> str:
    when = draw(
        st.one_of(
            st.sampled_from(DST_EDGES),
            st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(2999, 12, 31)),
        )
    )
    sep = "T "[style % 2] if draw(st.booleans()) else draw(st.sampled_from(["T", " ", "t", "  ", ""]))
    digits = (style // 2) % 8 if draw(st.booleans()) else draw(st.integers(0, 10))
    zone = ZONES[(style // 16) % len(ZONES)] if draw(st.booleans()) else draw(st.sampled_from(ZONES))
    fraction = f"{when.microsecond:06d}{draw(st.integers(0, 9999)):04d}"[:digits]
    clock = f"{when:%H:%M:%S}"
    clock = draw(
        st.sampled_from([clock, clock, clock, "23:59:60", "24:00:00", f"{when:%H:%M}", f"{when.hour}:30:00"])
    )
    text = f"{when:%Y-%m-%d}{sep}{clock}" + (f".{fraction}" if digits else "") + zone
    return _padded(draw, text)


@st.composite
def option_type_text(draw, style: int) -> str:
    return _padded(
        draw, draw(st.sampled_from(["C", "P", "c", "p", "call", "Put", "CALL", "PUT", "x", "Calls"]))
    )


@st.composite
def symbol_text(draw, style: int) -> str:
    return _padded(draw, draw(st.sampled_from(["IWM", "spy", "Brk.b", "IWM   260102C00255000", "ß", "ﬁ"])))


VALUES = {
    "float": float_text,
    "int": int_text,
    "date": date_text,
    "datetime": timestamp_text,
    "option_type": option_type_text,
    "symbol": symbol_text,
    "text": symbol_text,
}


@st.composite
def messy_column(draw, kind: str, n: int) -> list[str | None]:
    """n values of a column: mostly one style (as a file would be), mixed with other styles, blanks and junk."""
    style = draw(st.integers(0, 999))
    values = []
    for _ in range(n):
        pick = draw(st.integers(0, 9))
        if pick < 6:
            values.append(draw(VALUES[kind](style)))
        elif pick < 8:
            values.append(draw(VALUES[kind](draw(st.integers(0, 999)))))
        else:
            values.append(draw(st.one_of(st.none(), BLANKS, JUNK)))
    return values


@st.composite
def messy_frame(draw, dataset: str) -> pl.DataFrame:
    n = draw(st.integers(0, 25))
    fields = FIELDS[dataset]
    optional = [c for c, f in fields.items() if not f.required]
    present = (
        [c for c, f in fields.items() if f.required or draw(st.booleans())] if optional else list(fields)
    )
    data = {c: draw(messy_column(fields[c].kind, n)) for c in present}
    return pl.DataFrame(data, schema={c: pl.String for c in data})


@pytest.mark.parametrize("dataset", ["bars", "chains", "trades"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_conform_equals_the_per_value_rules_on_messy_columns(dataset, data):
    assert_same_as_reference(data.draw(messy_frame(dataset)), dataset)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_timestamp_fast_path_equals_the_rules(data):
    """One style throughout (the fast path's case) with a few stragglers in other forms."""
    ts = data.draw(messy_column("datetime", data.draw(st.integers(2, 30))))
    frame = text_frame("trades", ts=ts)
    assert_same_as_reference(frame, "trades")


@pytest.mark.parametrize(
    "values",
    [
        # Leading blank before an ISO date: a reader that slices before trimming reads 2025-12-02.
        {"date": [" 2025-12-29", "2025-12-29", "\t2025-12-29 "]},
        # Past 2^53 the rules read ints through a float (rounding): kept as they were.
        {"volume": ["9007199254740993", "-9007199254740993", "9223372036854775807", "5.0", "5.5", " 6 "]},
        {"close": [" 1.5", "1.5\n", "\u00a01.5", "1e3", "NaN", "-0"]},
    ],
)
def test_conform_equals_the_rules_on_known_traps(values):
    assert_same_as_reference(text_frame("bars", **values), "bars")


@pytest.mark.parametrize(
    "ts",
    [
        ["2025-12-29T23:59:60Z", "2025-12-29T10:30:00Z"],  # a leap second rolls over in the rules
        ["2025-12-29T24:00:00-05:00", "2025-12-29T10:30:00-05:00"],
        ["2025-12-29T10:30:00.1234567-05:00", "2025-12-29T10:30:00.123456-05:00"],
        ["1969-12-31T23:59:59.9999995Z", "1969-12-31T23:59:59.999999Z"],
        ["2025-03-09 02:30:00", "2025-03-09 03:30:00", "2025-11-02 01:30:00", "2025-11-02T01:30:00.5"],
        ["2025-12-29T10:30:00+05:60", "2025-12-29T10:30:00+24:00", "2025-12-29T10:30:00+23:59"],
        ["2025-02-30T10:30:00Z", "2024-02-29T10:30:00Z", " 2025-12-29T10:30:00Z", "2025-12-29T10:30:00z"],
        [
            "2025-12-29 10:30:00+0100",
            "2025-12-29T10:30:00+01:00",
            "2025-12-29T10:30:00Z",
            "2025-12-29 10:30:00",
        ],
    ],
)
def test_timestamp_traps_equal_the_rules(ts):
    assert_same_as_reference(text_frame("trades", ts=ts), "trades")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.datetimes(min_value=datetime(1880, 1, 1), max_value=datetime(2100, 1, 1)),
    st.lists(st.integers(0, 40 * 3600 * 10**6), min_size=2, max_size=25),
    st.sampled_from(["Z", "-05:00", "+0000", "-0400", ""]),
)
def test_session_dates_of_clustered_prints_equal_the_rules(start, offsets_us, zone):
    """A day's prints (within a day or so of each other, possibly across a DST change or local midnight)."""
    ts = [f"{start + timedelta(microseconds=us):%Y-%m-%dT%H:%M:%S.%f}{zone}" for us in offsets_us]
    assert_same_as_reference(text_frame("trades", ts=ts), "trades")


def test_session_dates_around_new_york_midnight_and_dst_changes():
    ts = [
        "2025-03-09T04:59:59.999999Z",
        "2025-03-09T05:00:00Z",
        "2025-03-09T06:59:59Z",
        "2025-03-09T07:00:00Z",
        "2025-03-10T03:59:59Z",
        "2025-03-10T04:00:00Z",
        "2025-11-02T03:59:59Z",
        "2025-11-02T04:00:00Z",
        "2025-11-02T05:59:59.999999Z",
        "2025-11-02T06:00:00Z",
        "2025-11-03T04:59:59Z",
        "2025-11-03T05:00:00Z",
    ]
    out = bronze("trades", ts=ts)
    assert out["trade_date"].to_list() == [
        date(2025, 3, 8),
        date(2025, 3, 9),
        date(2025, 3, 9),
        date(2025, 3, 9),
        date(2025, 3, 9),
        date(2025, 3, 10),
        date(2025, 11, 1),
        date(2025, 11, 2),
        date(2025, 11, 2),
        date(2025, 11, 2),
        date(2025, 11, 2),
        date(2025, 11, 3),
    ]
    assert_same_as_reference(text_frame("trades", ts=ts), "trades")
    for one in ts:  # a file of one print: a single offset
        assert_same_as_reference(text_frame("trades", ts=[one, one]), "trades")


def test_read_text_frame_reads_invalid_utf8_lossily(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_bytes(
        b"\xef\xbb\xbfdate,symbol,open,high,low,close,volume\n"
        b'2025-12-29,I\xffWM,1,2,0.5,1.5,0\n2025-12-30,"iwm\xfe",1,2,0.5,1.5,0\n'
    )
    frame = read_text_frame(path)
    assert frame.columns[0] == "date"
    assert frame["symbol"].to_list() == ["I\ufffdWM", "iwm\ufffd"]

"""Landing files -> bronze (flows/sources.py): explicit text parsing, lineage, and file-level failures."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.sources import FIELDS, SourceError, bronze_schema, conform, read_text_frame

INGESTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PATH = Path("/landing/bars/2025-12-29.csv")
BAR = {"date": "2025-12-29", "symbol": "IWM", "open": "250", "high": "252", "low": "249.35", "close": "249.8",
       "volume": "1000"}
CHAIN = {"quote_date": "2025-12-29", "underlying": "IWM", "expiration": "2026-01-02", "strike": "255",
         "option_type": "C", "open_interest": "10000", "volume": "12", "bid": "1.0", "ask": "1.2"}
TRADE = {"ts": "2025-12-29T15:30:00Z", "option_symbol": "IWM   260102C00255000", "price": "1.10", "size": "10"}
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
    got = parsed("chains", "gamma", ["0", "0", "0.000001", "1e-6", "1E-06", " 0.5 ", "-0.25", "+3", ".5", "", None])
    assert got == [(0.0, None), (0.0, None), (1e-6, None), (1e-6, None), (1e-6, None), (0.5, None),
                   (-0.25, None), (3.0, None), (0.5, None), (None, None), (None, None)]


def test_unparsable_float_is_null_and_named():
    got = parsed("bars", "close", ["249.8", "abc", "1,5", "249.8.1", "$250"])
    assert got == [(249.8, None), (None, "close"), (None, "close"), (None, "close"), (None, "close")]


def test_ints_parse_from_integer_text_and_integral_floats_only():
    got = parsed("bars", "volume", ["1000", "1e3", "1000.0", " 7 ", "-3", "5.5", "abc", "99999999999999999999999"])
    assert got == [(1000, None), (1000, None), (1000, None), (7, None), (-3, None), (None, "volume"),
                   (None, "volume"), (None, "volume")]


def test_several_bad_columns_are_all_named_in_file_order():
    out = bronze("chains", strike=["255", "x"], open_interest=["5", "5.5"], bid=["1", "?"], ask=["1.2", "1.2"])
    assert out["_parse_errors"].to_list() == [None, "strike,open_interest,bid"]
    assert out.row(1, named=True)["strike"] is None and out.row(1, named=True)["ask"] == 1.2


# --- dates, timestamps, option types, symbols -----------------------------------------------------------


def test_dates_in_iso_us_and_compact_forms():
    got = parsed("bars", "date", ["2025-12-29", "12/29/2025", "20251229", "2025-12-29T00:00:00", "1/2/2026",
                                  "2025-13-01", "29/12/2025", "yesterday"])
    dec29 = date(2025, 12, 29)
    assert got == [(dec29, None), (dec29, None), (dec29, None), (dec29, None), (date(2026, 1, 2), None),
                   (None, "date"), (None, "date"), (None, "date")]


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
        (utc, None), (utc, None), (utc, None), (utc, None),
        (datetime(2025, 12, 29, 15, 30, 0, 500_000, tzinfo=UTC), None),
        (utc, None), (utc, None),
        (datetime(2025, 12, 29, 15, 30, 0, 123_456, tzinfo=UTC), None),
        (datetime(2025, 7, 1, 14, 30, tzinfo=UTC), None),
        (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), None),
        (None, "ts"), (None, "ts"),
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
        conform(text_frame("chains").drop("option_type"), "chains", Path("chains.csv"), "chains.csv", INGESTED)


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
    path.write_bytes(gzip.compress(b" Date ,SYMBOL,Open,High,Low, Close,Volume\n2025-12-29,iwm,1,2,0.5,1.5,0\n"
                                   b"2025-12-30,iwm,1,2,0.5,0.000001,1000\n"))
    frame = read_text_frame(path)
    assert frame.columns == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert frame.schema == pl.Schema({c: pl.String for c in frame.columns})
    assert frame["close"].to_list() == ["1.5", "0.000001"]
    out, _ = conform(frame, "bars", path, path.name, INGESTED)
    assert out.select("trade_date", "symbol", "close", "volume").rows() == [
        (date(2025, 12, 29), "IWM", 1.5, 0), (date(2025, 12, 30), "IWM", 1e-6, 1000)]


def test_read_text_frame_parquet_typed_columns_become_text(tmp_path):
    path = tmp_path / "trades.parquet"
    pl.DataFrame({
        " TS": [datetime(2025, 12, 29, 15, 30, tzinfo=UTC)], "Option_Symbol": ["IWM   260102C00255000"],
        "price": [1.1], "size": [10], "gamma": [1e-6],
    }).write_parquet(path)
    frame = read_text_frame(path)
    assert frame.columns == ["ts", "option_symbol", "price", "size", "gamma"]
    assert set(frame.schema.values()) == {pl.String}
    out, _ = conform(frame, "trades", path, path.name, INGESTED)
    row = out.row(0, named=True)
    assert (row["ts"], row["price"], row["size"], row["_parse_errors"]) == (
        datetime(2025, 12, 29, 15, 30, tzinfo=UTC), 1.1, 10, None)
    assert float(frame["gamma"].item()) == 1e-6


@pytest.mark.parametrize(("name", "content"), [
    ("garbage.parquet", b"this is not a parquet file"),
    ("empty.parquet", b""),
    ("truncated.parquet", b"PAR1\x00\x00PAR1"),
    ("empty.csv", b""),
    ("ragged.csv", b"date,symbol\n2025-12-29,IWM,extra,fields\n"),
])
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


TEXT = st.one_of(st.text(max_size=30), st.none(), st.sampled_from(["1e3", "-0", "NaN", "12/31/2025", "C", " p "]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: TEXT for c in FIELDS["chains"]}), min_size=1, max_size=5))
def test_arbitrary_text_never_raises_only_nulls_and_parse_errors(rows):
    """A good first row keeps every column readable; each arbitrary value either parses or is named."""
    good = {c: CHAIN.get(c, "0.5") for c in FIELDS["chains"]} | {"option_symbol": "IWM   260102C00255000"}
    frame = pl.DataFrame([good, *rows], schema={c: pl.String for c in FIELDS["chains"]})
    out, _ = conform(frame, "chains", PATH, PATH.name, INGESTED)
    assert out.height == len(rows) + 1
    assert out["_parse_errors"][0] is None
    for raw, typed, errors in zip(frame.to_dicts(), out.to_dicts(), out["_parse_errors"].to_list(), strict=True):
        named = set(errors.split(",")) if errors else set()
        for column, field in FIELDS["chains"].items():
            given_text = raw[column] is not None and not all(_blank(ch) for ch in raw[column])
            failed = given_text and typed[field.name] is None
            assert (column in named) == failed, (column, raw[column], typed[field.name])

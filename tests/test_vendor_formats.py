"""Vendor formats by declaration (flows/sources/vendors/): the CBOE delayed-quote table and Yahoo's daily download,
detected from the header, with real rows from ../shared/realdata/ (CI has it beside the clone)."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from flows.sources.files import ADAPTERS, FIELDS, SourceError, conform, detect_format, read_text_frame
from flows.sources.vendors import CBOE_DATASHOP, CBOE_DELAYED, VENDOR_FORMATS, YAHOO_DAILY, YFINANCE
from flows.sources.vendors.format import file_symbol

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
INGESTED = datetime(2019, 5, 29, 1, 0, tzinfo=UTC)
QUOTEDATA_HEADER = (
    "underlying,underlying_last,exchange,optionroot,type,expiration,quotedate,strike,last,net,bid,"
    "ask,volume,openinterest,impliedvol,delta,gamma"
)
# Real rows of SPX_20190528.csv.gz: a quoted put, a traded call CBOE gave no IV (but a delta and gamma),
# an untraded call (last 0.0) without IV, and a call whose gamma rounds to 0.
QUOTEDATA_ROWS = [
    (
        "SPX,2814.1,CBOE,SPXW190531P02600000,put,05/31/2019,05/28/2019,2600.0,0.15,-0.15,0.15,0.2,790,21538,0.3518,"
        "-0.0067,0.0002"
    ),
    (
        "SPX,2814.1,CBOE,SPXW190528C02750000,call,05/28/2019,05/28/2019,2750.0,64.0,-14.9,61.3,66.5,12,11,0.0,0.9875,"
        "0.0011"
    ),
    "SPX,2814.1,CBOE,SPXW190529C02350000,call,05/29/2019,05/28/2019,2350.0,0.0,0.0,461.8,466.6,0,1,0.0,0.9983,0.0",
]


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def bronze_of(path: Path, dataset: str, fmt: str | None = None) -> tuple[pl.DataFrame, str]:
    return conform(read_text_frame(path), dataset, path, path.name, INGESTED, fmt)


def test_every_vendor_format_is_registered_in_detection_order_before_the_canonical_columns():
    assert ADAPTERS == VENDOR_FORMATS == [CBOE_DATASHOP, YFINANCE, CBOE_DELAYED, YAHOO_DAILY]
    for fmt in VENDOR_FORMATS:
        assert set(fmt.columns) <= set(FIELDS[fmt.dataset]), fmt.name
    assert detect_format("chains", set(FIELDS["chains"]), Path("x.csv")).name == "canonical-chains"
    assert detect_format("bars", set(FIELDS["bars"]), Path("x.csv")).name == "canonical-bars"


@pytest.mark.parametrize("gz", [False, True])
def test_cboe_delayed_quotes_are_detected_by_header_and_conformed(tmp_path, gz):
    path = write(
        tmp_path / "chains" / ("SPX_20190528.csv" + (".gz" if gz else "")),
        [QUOTEDATA_HEADER, *QUOTEDATA_ROWS],
        gz,
    )
    bronze, fmt = bronze_of(path, "chains")
    assert fmt == "cboe-delayed-chains"
    assert bronze["_parse_errors"].null_count() == 3
    rows = bronze.to_dicts()
    assert [
        (r["trade_date"], r["underlying"], r["expiration"], r["option_type"], r["strike"], r["option_symbol"])
        for r in rows
    ] == [
        (date(2019, 5, 28), "SPX", date(2019, 5, 31), "P", 2600.0, "SPXW  190531P02600000"),
        (date(2019, 5, 28), "SPX", date(2019, 5, 28), "C", 2750.0, "SPXW  190528C02750000"),
        (date(2019, 5, 28), "SPX", date(2019, 5, 29), "C", 2350.0, "SPXW  190529C02350000"),
    ]
    assert [
        (r["open_interest"], r["volume"], r["bid"], r["ask"], r["last"], r["underlying_price"]) for r in rows
    ] == [
        (21538, 790, 0.15, 0.2, 0.15, 2814.1),
        (11, 12, 61.3, 66.5, 64.0, 2814.1),
        (1, 0, 461.8, 466.6, None, 2814.1),
    ]
    # impliedvol 0.0 is CBOE's "not computed": the IV is empty, CBOE's delta and gamma stay (SOURCES.md).
    assert [(r["implied_volatility"], r["delta"], r["gamma"]) for r in rows] == [
        (0.3518, -0.0067, 0.0002),
        (None, 0.9875, 0.0011),
        (None, 0.9983, 0.0),
    ]


def test_a_whole_real_cboe_delayed_file_reads_without_a_parse_error():
    path = REALDATA / "spx_chains_2019" / "SPX_20190528.csv.gz"
    bronze, fmt = bronze_of(path, "chains")
    raw = pl.read_csv(path, infer_schema=False)
    assert fmt == "cboe-delayed-chains" and bronze.height == raw.height == 13_856
    assert bronze["_parse_errors"].null_count() == bronze.height
    assert bronze["option_symbol"].str.len_chars().eq(21).all()
    assert (
        bronze["implied_volatility"].is_null().sum()
        == raw.filter(pl.col("impliedvol").cast(pl.Float64) <= 0).height
    )
    assert bronze["open_interest"].sum() == raw["openinterest"].cast(pl.Int64).sum()


def test_cboe_delayed_not_computed_iv_and_words_are_data():
    assert CBOE_DELAYED.values == {"option_type": {"call": "C", "put": "P"}}
    text = pl.DataFrame(
        {c: [v] * 4 for c, v in zip(QUOTEDATA_HEADER.split(","), QUOTEDATA_ROWS[0].split(","), strict=True)}
    )
    text = text.with_columns(
        pl.Series("impliedvol", ["-0.2", "inf", "nan", "x"]), pl.Series("type", ["CALL", "Put", "c", "?"])
    )
    rows = CBOE_DELAYED.conform(text.lazy()).collect().to_dicts()
    assert [r["implied_volatility"] for r in rows] == [None, None, None, "x"]  # unreadable text passes on
    assert [r["delta"] for r in rows] == ["-0.0067"] * 4
    assert [r["option_type"] for r in rows] == ["C", "P", "c", "?"]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("SPX.csv", "SPX"),
        ("SPX_daily.csv", "SPX"),
        ("^SPX.csv", "SPX"),
        ("spx_daily_2019.csv.gz", "SPX"),
        ("^gspc.csv", "GSPC"),
        ("BRK.B.csv", "BRK"),
    ],
)
def test_yahoo_daily_symbol_is_the_file_names_part_before_the_first_underscore_or_dot(tmp_path, name, symbol):
    assert file_symbol(Path(name)) == symbol
    lines = (REALDATA / "GSPC_daily_2016-01_2019-07.csv").read_text().splitlines()[:3]
    path = write(tmp_path / "bars" / name, lines, gz=name.endswith(".gz"))
    bronze, fmt = bronze_of(path, "bars")
    assert fmt == "yahoo-bars"
    assert bronze.select("trade_date", "symbol", "open", "close", "volume", "adj_close").rows() == [
        (date(2016, 1, 4), symbol, 2038.199951171875, 2012.6600341796875, 4304880000, 2012.6600341796875),
        (date(2016, 1, 5), symbol, 2013.780029296875, 2016.7099609375, 3706620000, 2016.7099609375),
    ]


def test_a_bars_file_with_a_symbol_column_is_canonical_and_format_overrides_detection(tmp_path):
    path = write(
        tmp_path / "bars" / "SPY.csv",
        ["Date,Symbol,Open,High,Low,Close,Volume", "2019-05-28,IWM,1,2,0.5,1.5,10"],
    )
    bronze, fmt = bronze_of(path, "bars")
    assert fmt == "canonical-bars" and bronze["symbol"].to_list() == ["IWM"]
    bronze, fmt = bronze_of(path, "bars", "yahoo")
    assert fmt == "yahoo-bars" and bronze["symbol"].to_list() == ["SPY"]
    with pytest.raises(
        SourceError, match=r"unknown format 'quotedata' for bars \(known: yahoo-bars, canonical-bars\)"
    ):
        bronze_of(path, "bars", "quotedata")


def test_the_real_files_copied_as_they_are_are_detected(tmp_path):
    chain = tmp_path / "chains" / "SPX_20190527.csv.gz"
    chain.parent.mkdir()
    shutil.copy(REALDATA / "spx_chains_2019" / "SPX_20190527.csv.gz", chain)
    assert detect_format("chains", set(read_text_frame(chain).columns), chain) is CBOE_DELAYED
    bars = REALDATA / "GSPC_daily_2016-01_2019-07.csv"
    assert detect_format("bars", set(read_text_frame(bars).columns), bars) is YAHOO_DAILY


def test_an_iv_of_zero_negative_or_non_finite_is_missing_in_every_format_canonical_included(tmp_path):
    from transforms.silver import silver_chains

    ivs = ["0", "0.0", "-0.25", "NaN", "inf", "0.2", ""]
    canonical = pl.DataFrame(
        {
            "quote_date": "2019-05-28",
            "underlying": "SPX",
            "expiration": "2019-05-31",
            "strike": "2600",
            "option_type": "P",
            "open_interest": "21538",
            "volume": "790",
            "bid": "0.15",
            "ask": "0.2",
            "implied_volatility": ivs,
            "delta": "-0.0067",
            "gamma": "0.0002",
            "underlying_price": "2814.1",
        }
    )
    path = tmp_path / "chains" / "canonical.csv"
    path.parent.mkdir()
    canonical.write_csv(path)
    quotedata = write(
        tmp_path / "chains" / "quotedata.csv",
        [QUOTEDATA_HEADER] + [QUOTEDATA_ROWS[0].replace(",0.3518,", f",{iv},") for iv in ivs],
    )
    closes = pl.LazyFrame({"trade_date": [date(2019, 5, 28)], "symbol": ["SPX"], "close": [2802.39]})
    for file, expected_format in ((path, "canonical-chains"), (quotedata, "cboe-delayed-chains")):
        bronze, fmt = bronze_of(file, "chains")
        assert fmt == expected_format
        silver = silver_chains(bronze.lazy(), closes).collect()
        assert silver["implied_volatility"].to_list() == [None, None, None, None, None, 0.2, None], fmt
        assert silver["delta"].to_list() == [-0.0067] * len(ivs) and silver["gamma"].to_list() == [
            0.0002
        ] * len(ivs)
        assert not silver["iv_derived"].any()

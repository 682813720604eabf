"""Vendor chain formats (flows/sources/named_formats.py) and the live yfinance source (flows/sources/yfinance_live.py).

The round trip: one small canonical chain is written as a canonical file, a CBOE DataShop EOD Summary
file and a saved yfinance option_chain() file; read back through the real reader, conform and
silver_chains, all three give the same silver rows.
"""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from flows.sources import files as sources
from flows.sources.files import FIELDS, conform, detect_format, read_text_frame
from flows.sources.named_formats import CBOE_EOD, VENDOR_ADAPTERS, YFINANCE
from flows.sources.yfinance_live import MissingExtraError, fetch_chain, land_chains
from schemas.quarantine import split_valid
from schemas.silver import Chains
from transforms.osi import format_osi
from transforms.silver import silver_chains

DATA = Path(__file__).parent / "data"
INGESTED = datetime(2025, 12, 30, 1, 0, tzinfo=UTC)
DAY = date(2025, 12, 29)
SPOT = {"IWM": 249.80, "SPX": 6905.74}

CBOE_HEADER = [
    "underlying_symbol",
    "quote_date",
    "root",
    "expiration",
    "strike",
    "option_type",
    "open",
    "high",
    "low",
    "close",
    "trade_volume",
    "bid_size_1545",
    "bid_1545",
    "ask_size_1545",
    "ask_1545",
    "underlying_bid_1545",
    "underlying_ask_1545",
    "implied_underlying_price_1545",
    "active_underlying_price_1545",
    "implied_volatility_1545",
    "delta_1545",
    "gamma_1545",
    "theta_1545",
    "vega_1545",
    "rho_1545",
    "bid_size_eod",
    "bid_eod",
    "ask_size_eod",
    "ask_eod",
    "underlying_bid_eod",
    "underlying_ask_eod",
    "vwap",
    "open_interest",
    "delivery_code",
]
YFINANCE_HEADER = [
    "contractSymbol",
    "lastTradeDate",
    "strike",
    "lastPrice",
    "bid",
    "ask",
    "change",
    "percentChange",
    "volume",
    "openInterest",
    "impliedVolatility",
    "inTheMoney",
    "contractSize",
    "currency",
]


@pytest.fixture(autouse=True)
def vendor_adapters(monkeypatch):
    """Detection over the two vendor formats this module tests, whatever else flows.sources.files.ADAPTERS lists."""
    monkeypatch.setattr(sources, "ADAPTERS", list(VENDOR_ADAPTERS))


def canonical_chain() -> pl.DataFrame:
    """IWM and SPX (weekly root SPXW, underlying SPX) plus an adjusted IWM1 contract; typed canonical columns."""
    rows = [
        # root, underlying, expiration, type, strike, oi, volume, bid, ask, last, iv, delta, gamma
        ("IWM", "IWM", date(2026, 1, 2), "C", 250.0, 6043, 4870, 1.60, 1.66, 1.62, 0.17602, 0.4512, 0.0712),
        ("IWM", "IWM", date(2026, 1, 2), "P", 250.0, 5120, 2210, 1.85, 1.92, 1.88, 0.18855, -0.5488, 0.0699),
        ("IWM", "IWM", date(2026, 1, 16), "C", 255.0, 4000, 3105, 2.00, 2.05, 2.02, 0.17855, 0.3021, 0.0301),
        (
            "IWM",
            "IWM",
            date(2026, 1, 16),
            "P",
            232.5,
            0,
            0,
            0.00,
            0.05,
            None,
            None,
            None,
            None,
        ),  # untraded, no IV
        (
            "IWM1",
            "IWM",
            date(2026, 1, 16),
            "C",
            123.45,
            12,
            3,
            120.5,
            127.0,
            126.1,
            0.9,
            0.99,
            0.0001,
        ),  # adjusted
        (
            "SPXW",
            "SPX",
            date(2025, 12, 31),
            "C",
            6900.0,
            1804,
            9120,
            21.3,
            21.9,
            21.6,
            0.1102,
            0.5523,
            0.0061,
        ),
        ("SPXW", "SPX", date(2025, 12, 31), "P", 6875.0, 2510, 7001, 9.4, 9.8, 9.6, 0.1185, -0.3102, 0.0049),
    ]
    schema = {
        "root": pl.String,
        "underlying": pl.String,
        "expiration": pl.Date,
        "option_type": pl.String,
        "strike": pl.Float64,
        "open_interest": pl.Int64,
        "volume": pl.Int64,
        "bid": pl.Float64,
        "ask": pl.Float64,
        "last": pl.Float64,
        "implied_volatility": pl.Float64,
        "delta": pl.Float64,
        "gamma": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.lit(DAY).alias("quote_date"),
        pl.col("underlying").replace_strict(SPOT, return_dtype=pl.Float64).alias("underlying_price"),
        format_osi(pl.col("root"), pl.col("expiration"), pl.col("option_type"), pl.col("strike")).alias(
            "option_symbol"
        ),
    )


def as_canonical_file(chain: pl.DataFrame) -> pl.DataFrame:
    return chain.select(list(FIELDS["chains"]))


def as_cboe_file(chain: pl.DataFrame) -> pl.DataFrame:
    """The chain as CBOE writes it: 0 for no close and for an IV it could not compute, ^ on index symbols."""
    spot = pl.col("underlying_price")
    no_iv = pl.col("implied_volatility").is_null()
    columns = {
        "underlying_symbol": pl.when(pl.col("underlying") == "SPX")
        .then(pl.lit("^SPX"))
        .otherwise("underlying"),
        "quote_date": pl.col("quote_date").dt.strftime("%Y-%m-%d"),
        "root": pl.col("root"),
        "expiration": pl.col("expiration").dt.strftime("%Y-%m-%d"),
        "strike": pl.col("strike"),
        "option_type": pl.col("option_type"),
        "open": pl.col("last").fill_null(0.0),
        "high": pl.col("last").fill_null(0.0),
        "low": pl.col("last").fill_null(0.0),
        "close": pl.col("last").fill_null(0.0),
        "trade_volume": pl.col("volume"),
        "bid_size_1545": pl.lit(10),
        "bid_1545": pl.col("bid"),
        "ask_size_1545": pl.lit(12),
        "ask_1545": pl.col("ask"),
        "underlying_bid_1545": spot - 0.01,
        "underlying_ask_1545": spot + 0.01,
        "implied_underlying_price_1545": spot + 0.03,
        "active_underlying_price_1545": spot,
        "implied_volatility_1545": pl.col("implied_volatility").fill_null(0.0),
        "delta_1545": pl.when(no_iv).then(0.0).otherwise(pl.col("delta")),
        "gamma_1545": pl.when(no_iv).then(0.0).otherwise(pl.col("gamma")),
        "theta_1545": pl.lit(-0.05),
        "vega_1545": pl.lit(0.12),
        "rho_1545": pl.lit(0.01),
        # End-of-day quotes differ from the 15:45 snapshot: the adapter must take the 15:45 pair.
        "bid_size_eod": pl.lit(8),
        "bid_eod": pl.col("bid") + 0.5,
        "ask_size_eod": pl.lit(9),
        "ask_eod": pl.col("ask") + 0.5,
        "underlying_bid_eod": spot + 1.0,
        "underlying_ask_eod": spot + 1.02,
        "vwap": pl.col("last").fill_null(0.0),
        "open_interest": pl.col("open_interest"),
        "delivery_code": pl.lit(""),
    }
    assert list(columns) == CBOE_HEADER
    return chain.select(**columns)


def as_yfinance_file(chain: pl.DataFrame) -> pl.DataFrame:
    """The chain as a saved option_chain() frame: compact symbols, zero volume/OI omitted (empty)."""
    traded = pl.col("last").is_not_null()
    last_trade = (
        pl.when(traded)
        .then(pl.lit("2025-12-29 20:59:41+00:00"))
        .otherwise(pl.lit("2025-12-22 15:00:00+00:00"))
    )
    columns = {
        "contractSymbol": pl.col("root") + pl.col("option_symbol").str.slice(6),
        "lastTradeDate": last_trade,
        "strike": pl.col("strike"),
        "lastPrice": pl.col("last"),
        "bid": pl.col("bid"),
        "ask": pl.col("ask"),
        "change": pl.lit(-0.1),
        "percentChange": pl.lit(-3.2),
        "volume": pl.when(pl.col("volume") > 0).then(pl.col("volume").cast(pl.Float64)),
        "openInterest": pl.when(pl.col("open_interest") > 0).then(pl.col("open_interest")),
        "impliedVolatility": pl.col("implied_volatility"),
        "inTheMoney": pl.lit(False),
        "contractSize": pl.lit("REGULAR"),
        "currency": pl.lit("USD"),
    }
    assert list(columns) == YFINANCE_HEADER
    return chain.select(**columns)


def read_back(frame: pl.DataFrame, path: Path) -> tuple[pl.DataFrame, str]:
    """Write the file, read it with the real reader (lower-cased header, all text) and conform it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return conform(read_text_frame(path), "chains", path, path.name, INGESTED)


def silver(bronze: pl.DataFrame) -> pl.DataFrame:
    closes = pl.LazyFrame({"trade_date": [DAY, DAY], "symbol": list(SPOT), "close": list(SPOT.values())})
    return silver_chains(bronze.lazy(), closes).collect().sort("option_symbol")


COMMON = [
    "trade_date",
    "underlying",
    "option_symbol",
    "expiration",
    "strike",
    "option_type",
    "open_interest",
    "volume",
    "bid",
    "ask",
    "last",
    "mid",
    "implied_volatility",
    "underlying_price",
    "dte",
]


def test_canonical_cboe_and_yfinance_files_give_the_same_silver_rows(tmp_path):
    chain = canonical_chain()
    canonical, fmt_canonical = read_back(as_canonical_file(chain), tmp_path / "chains" / "canonical.csv")
    cboe, fmt_cboe = read_back(as_cboe_file(chain), tmp_path / "chains" / "cboe_eod_summary.csv")
    yahoo, fmt_yahoo = read_back(as_yfinance_file(chain), tmp_path / "chains" / "yfinance.csv")
    assert (fmt_canonical, fmt_cboe, fmt_yahoo) == ("canonical-chains", "cboe-chains", "yfinance-chains")
    for bronze in (canonical, cboe, yahoo):
        assert bronze["_parse_errors"].null_count() == len(bronze)

    expected, from_cboe, from_yahoo = silver(canonical), silver(cboe), silver(yahoo)
    assert from_cboe.select(COMMON).equals(expected.select(COMMON))
    assert from_yahoo.select(COMMON).equals(expected.select(COMMON))
    # CBOE carries the greeks and the spot; a yfinance file has neither (spot comes from the bars).
    assert from_cboe.select("delta", "gamma").equals(expected.select("delta", "gamma"))
    assert from_yahoo["delta"].null_count() == len(from_yahoo)
    assert not from_cboe["spot_derived"].any() and from_yahoo["spot_derived"].all()

    valid, rejected = split_valid(from_cboe, Chains, "chains")
    assert rejected.is_empty() and len(valid) == len(chain)
    by_symbol = {r["option_symbol"]: r for r in expected.iter_rows(named=True)}
    assert by_symbol["SPXW  251231C06900000"]["underlying"] == "SPX"
    assert by_symbol["IWM1  260116C00123450"]["underlying"] == "IWM"
    untraded = by_symbol["IWM   260116P00232500"]
    assert (
        untraded["last"],
        untraded["implied_volatility"],
        untraded["volume"],
        untraded["open_interest"],
    ) == (None, None, 0, 0)


# --- CBOE details ----------------------------------------------------------------------------------------


def cboe_text(**overrides: list[str | None]) -> pl.DataFrame:
    chain = canonical_chain().head(1)
    frame = as_cboe_file(chain).select(pl.all().cast(pl.String))
    n = max((len(v) for v in overrides.values()), default=1)
    frame = pl.concat([frame] * n)
    return frame.with_columns(*[pl.Series(k, v, dtype=pl.String) for k, v in overrides.items()])


def cboe_canonical(frame: pl.DataFrame) -> dict:
    return CBOE_EOD.conform(frame.lazy()).collect().row(0, named=True)


def test_cboe_takes_the_1545_quote_and_falls_back_to_the_eod_pair():
    both = cboe_canonical(cboe_text())
    assert (both["bid"], both["ask"]) == ("1.6", "1.66")
    eod = cboe_canonical(cboe_text(bid_1545=[""], ask_1545=[None]))
    assert (eod["bid"], eod["ask"]) == ("2.1", "2.16")


def test_cboe_zero_close_and_zero_iv_mean_none():
    row = cboe_canonical(cboe_text(close=["0.0000"], implied_volatility_1545=["0.0000"]))
    assert (row["last"], row["implied_volatility"], row["delta"], row["gamma"]) == (None, None, None, None)
    # Text that does not parse is passed on untouched, so the row is quarantined with what came in.
    row = cboe_canonical(cboe_text(close=["n/a?"], implied_volatility_1545=["x"]))
    assert (row["last"], row["implied_volatility"], row["delta"]) == ("n/a?", "x", "0.4512")


def test_cboe_file_without_calcs_takes_spot_from_the_underlying_quote():
    calcless = cboe_text().drop(
        "implied_volatility_1545",
        "delta_1545",
        "gamma_1545",
        "theta_1545",
        "vega_1545",
        "rho_1545",
        "implied_underlying_price_1545",
        "active_underlying_price_1545",
    )
    assert detect_format("chains", set(calcless.columns), Path("x.csv")).name == "cboe-chains"
    row = cboe_canonical(calcless)
    assert float(row["underlying_price"]) == pytest.approx(249.80, abs=1e-9)
    assert (row["implied_volatility"], row["delta"], row["gamma"]) == (None, None, None)


def test_cboe_underlying_is_the_underlying_symbol_and_the_symbol_uses_the_root():
    row = cboe_canonical(
        cboe_text(underlying_symbol=["^spx"], root=["SPXW"], strike=["6900"], expiration=["2025-12-31"])
    )
    assert (row["underlying"], row["option_symbol"]) == ("SPX", "SPXW  251231C06900000")
    bad = cboe_canonical(cboe_text(expiration=["someday"]))
    assert bad["option_symbol"] is None and bad["expiration"] == "someday"


def test_detection_by_header_and_explicit_format():
    path = Path("x.csv")
    cboe_cols = {c.lower() for c in CBOE_HEADER}
    yahoo_cols = {c.lower() for c in YFINANCE_HEADER}
    assert detect_format("chains", cboe_cols, path).name == "cboe-chains"
    assert detect_format("chains", yahoo_cols, path).name == "yfinance-chains"
    assert detect_format("chains", set(FIELDS["chains"]), path).name == "canonical-chains"
    assert detect_format("chains", set(FIELDS["chains"]), path, explicit="cboe") is CBOE_EOD
    assert detect_format("chains", yahoo_cols, path, explicit="yfinance") is YFINANCE
    assert not YFINANCE.detect(yahoo_cols - {"lasttradedate"})
    assert YFINANCE.detect(yahoo_cols - {"lasttradedate"} | {"quote_date"})
    assert not CBOE_EOD.detect(cboe_cols - {"bid_1545", "bid_eod"})
    assert [a.dataset for a in VENDOR_ADAPTERS] == ["chains", "chains"]


# --- yfinance details --------------------------------------------------------------------------------------


def yahoo_text(**columns: list[str | None]) -> pl.DataFrame:
    base = {
        "contractsymbol": "IWM260116C00255000",
        "lasttradedate": "2025-12-29 20:59:58+00:00",
        "strike": "255.0",
        "lastprice": "2.02",
        "bid": "2.0",
        "ask": "2.05",
        "volume": "3105.0",
        "openinterest": "4000",
        "impliedvolatility": "0.17855",
    }
    n = max((len(v) for v in columns.values()), default=1)
    data = {k: [v] * n for k, v in base.items()} | columns
    return pl.DataFrame(data, schema={k: pl.String for k in data})


def yahoo_canonical(frame: pl.DataFrame) -> list[dict]:
    return YFINANCE.conform(frame.lazy()).collect().to_dicts()


def test_yfinance_quote_date_is_the_latest_new_york_trade_date_in_the_file():
    rows = yahoo_canonical(
        yahoo_text(lasttradedate=["2025-12-22 15:00:00+00:00", "2025-12-29 20:59:58+00:00", None, "NaT"])
    )
    assert {r["quote_date"] for r in rows} == {"2025-12-29"}
    # 01:00 UTC on the 30th is 20:00 in New York on the 29th.
    rows = yahoo_canonical(yahoo_text(lasttradedate=["2025-12-26 20:00:00+00:00", "2025-12-30T01:00:00Z"]))
    assert {r["quote_date"] for r in rows} == {"2025-12-29"}
    # A quote_date column wins.
    rows = yahoo_canonical(yahoo_text(quote_date=["2025-12-30"]))
    assert rows[0]["quote_date"] == "2025-12-30"


def test_yfinance_contract_fields_come_from_the_symbol():
    rows = yahoo_canonical(
        yahoo_text(
            contractsymbol=["IWM260116P00232500", "SPXW251231C06900000", "IWM1260116C00123450", "junk"],
            strike=["232.5", "6900", "123.45", "1"],
        )
    )
    assert [(r["underlying"], r["expiration"], r["option_type"], r["option_symbol"]) for r in rows] == [
        ("IWM", "2026-01-16", "P", "IWM260116P00232500"),
        ("SPX", "2025-12-31", "C", "SPXW251231C06900000"),
        ("IWM", "2026-01-16", "C", "IWM1260116C00123450"),
        (None, None, None, "junk"),
    ]
    given = yahoo_canonical(yahoo_text(contractsymbol=["SPXW251231C06900000"], underlying=["^SPX"]))
    assert given[0]["underlying"] == "SPX"


def test_yfinance_missing_volume_and_open_interest_are_zero():
    rows = yahoo_canonical(yahoo_text(volume=["", "NaN", "12.0"], openinterest=[None, "nan", "7"]))
    assert [(r["volume"], r["open_interest"]) for r in rows] == [("0", "0"), ("0", "0"), ("12.0", "7")]


# --- the live source, with recorded responses ----------------------------------------------------------------

Options = namedtuple("Options", ["calls", "puts", "underlying"])
# The underlying quote yfinance returns with each option_chain() (abridged); 21:00 UTC = the 16:00 close.
RECORDED_UNDERLYING = {
    "symbol": "IWM",
    "regularMarketPrice": 249.8,
    "regularMarketTime": 1767042000,
    "currency": "USD",
}


class RecordedTicker:
    """yfinance.Ticker's option interface, answered from tests/data/yfinance_<SYMBOL>_<expiration>_<side>.csv."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.requested: list[str] = []

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(sorted({p.name.split("_")[2] for p in DATA.glob(f"yfinance_{self.symbol}_*.csv")}))

    def _frame(self, expiration: str, side: str) -> pd.DataFrame:
        frame = pd.read_csv(DATA / f"yfinance_{self.symbol}_{expiration}_{side}.csv")
        frame["lastTradeDate"] = pd.to_datetime(frame["lastTradeDate"], utc=True)  # as yfinance returns it
        return frame

    def option_chain(self, expiration: str) -> Options:
        self.requested.append(expiration)
        return Options(self._frame(expiration, "calls"), self._frame(expiration, "puts"), RECORDED_UNDERLYING)


class RecordedYfinance:
    def __init__(self) -> None:
        self.tickers: dict[str, RecordedTicker] = {}

    def Ticker(self, symbol: str) -> RecordedTicker:
        return self.tickers.setdefault(symbol, RecordedTicker(symbol))


def test_fetch_chain_returns_canonical_landing_rows():
    client = RecordedYfinance()
    rows = fetch_chain("IWM", client)
    assert client.tickers["IWM"].requested == ["2026-01-02", "2026-01-16"]
    assert rows.columns == list(FIELDS["chains"]) and set(rows.schema.values()) == {pl.String}
    assert len(rows) == 12
    assert set(rows["quote_date"]) == {"2025-12-29"} and set(rows["underlying"]) == {"IWM"}
    assert set(rows["underlying_price"]) == {"249.8"}
    by_symbol = {r["option_symbol"]: r for r in rows.iter_rows(named=True)}
    assert by_symbol["IWM260116C00255000"] == {
        "quote_date": "2025-12-29",
        "underlying": "IWM",
        "expiration": "2026-01-16",
        "strike": "255.0",
        "option_type": "C",
        "open_interest": "4000",
        "volume": "3105.0",
        "bid": "2.0",
        "ask": "2.05",
        "last": "2.02",
        "implied_volatility": "0.17855",
        "delta": None,
        "gamma": None,
        "underlying_price": "249.8",
        "option_symbol": "IWM260116C00255000",
    }
    stale = by_symbol["IWM260102P00255000"]  # recorded with NaN volume and open interest
    assert (stale["volume"], stale["open_interest"]) == ("0", "0")


def test_landed_yfinance_chain_reads_back_as_valid_canonical_silver(tmp_path):
    paths = land_chains(["IWM"], tmp_path, RecordedYfinance())
    assert paths == [tmp_path / "chains" / "yfinance_IWM_2025-12-29.csv"]
    assert sorted(p.name for p in (tmp_path / "chains").iterdir()) == ["yfinance_IWM_2025-12-29.csv"]
    bronze, fmt = conform(read_text_frame(paths[0]), "chains", paths[0], paths[0].name, INGESTED)
    assert fmt == "canonical-chains" and bronze["_parse_errors"].null_count() == 12
    valid, rejected = split_valid(silver(bronze), Chains, "chains")
    assert rejected.is_empty() and len(valid) == 12
    row = valid.filter(pl.col("option_symbol") == "IWM   260116C00255000").row(0, named=True)
    assert (
        row["trade_date"],
        row["open_interest"],
        row["volume"],
        row["mid"],
        row["underlying_price"],
        row["spot_derived"],
        row["dte"],
    ) == (DAY, 4000, 3105, 2.025, 249.8, False, 18)


def test_fetch_chain_without_expirations_is_empty_and_typed():
    class NoOptions:
        options: tuple[str, ...] = ()

    class Client:
        def Ticker(self, symbol):
            return NoOptions()

    rows = fetch_chain("ZZZZ", Client())
    assert rows.is_empty() and rows.columns == list(FIELDS["chains"])


def test_missing_extra_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # what an environment without the extra looks like
    with pytest.raises(MissingExtraError, match=r"uv sync --extra yfinance"):
        fetch_chain("IWM")


@pytest.mark.e2e
def test_yfinance_is_imported_only_when_used():
    code = "import sys, flows.sources.yfinance_live, flows.sources.named_formats; print('yfinance' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "False"

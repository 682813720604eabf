"""The synthetic demo market: calendar, bars, chains, trades, determinism and the full-market day."""

import hashlib
import re
from datetime import date
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import polars as pl
import pytest

from flows.market.simulator import (
    DAYS_PER_YEAR,
    DEFAULT_END,
    DEMO_DIVIDEND_YIELD,
    DEMO_RATE,
    generate_demo_market,
    generate_full_market_day,
    synthetic_tickers,
)
from transforms.black_scholes import bs_price

OSI = re.compile(r"^(?P<root>[A-Z0-9. ]{6})(?P<yymmdd>\d{6})(?P<type>[CP])(?P<strike>\d{8})$")
SESSIONS = 40
CHAIN_SESSIONS = 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    landing = tmp_path_factory.mktemp("demo") / "landing"
    summary = generate_demo_market(landing, sessions=SESSIONS, chain_sessions=CHAIN_SESSIONS)
    return landing, summary


@pytest.fixture(scope="module")
def bars(demo):
    landing, _ = demo
    return pl.read_csv(
        landing / "bars" / "*.csv", try_parse_dates=True, schema_overrides={"volume": pl.Int64}
    )


@pytest.fixture(scope="module")
def chains(demo):
    landing, _ = demo
    folder = landing / "chains"
    frames = [pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))]
    frames += [
        pl.read_csv(p, try_parse_dates=True, schema=frames[0].schema) for p in sorted(folder.glob("*.csv.gz"))
    ]
    return pl.concat(frames)


@pytest.fixture(scope="module")
def last_chain(chains):
    return chains.filter(pl.col("quote_date") == pl.col("quote_date").max())


def _files_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.*")}


# -- calendar ----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")  # inside exchange-calendars
def test_sessions_are_the_xnys_sessions_ending_at_the_default_end(demo, bars):
    _, summary = demo
    cal = xcals.get_calendar("XNYS", start="2025-01-02", end="2025-12-31")
    expected = [d.date() for d in cal.sessions_in_range("2025-01-02", "2025-12-31")][-SESSIONS:]
    assert summary.sessions == expected
    assert summary.sessions[-1] == DEFAULT_END == date(2025, 12, 31)
    assert date(2025, 12, 25) not in summary.sessions  # Christmas
    assert date(2025, 11, 27) not in summary.sessions  # Thanksgiving
    assert all(d.weekday() < 5 for d in summary.sessions)
    assert sorted(bars["date"].unique().to_list()) == summary.sessions


def test_end_snaps_back_to_a_session(tmp_path):
    summary = generate_demo_market(
        tmp_path, end=date(2025, 12, 27), sessions=5, chain_sessions=0, trades=False
    )
    assert summary.sessions == [date(2025, 12, d) for d in (19, 22, 23, 24, 26)]


# -- bars --------------------------------------------------------------------------------------------


def test_bar_files_are_a_history_file_and_a_nightly_drop(demo):
    landing, summary = demo
    history = pl.read_csv(landing / "bars" / "bars_history.csv", try_parse_dates=True)
    nightly = pl.read_csv(landing / "bars" / "bars_2025-12-31.csv", try_parse_dates=True)
    assert history.columns == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert history["date"].max() == summary.sessions[-2]
    assert nightly["date"].unique().to_list() == [date(2025, 12, 31)]
    assert sorted(nightly["symbol"]) == sorted(["SPY", "IWM", "QQQ", "AAPL", "MSFT", "NVDA", "TSLA"])
    assert history.height + nightly.height == SESSIONS * 7 == summary.rows["bars"]


def test_bars_are_consistent(bars):
    assert bars["volume"].dtype == pl.Int64
    assert bars.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") <= 0)
        | (pl.col("volume") <= 0)
    ).is_empty()
    # Started near the profile prices (SPY ~600, NVDA ~180) and stayed in a plausible band.
    first = bars.filter(pl.col("date") == pl.col("date").min()).select("symbol", "open")
    opens = dict(first.iter_rows())
    assert opens["SPY"] == pytest.approx(600, rel=0.05)
    assert opens["NVDA"] == pytest.approx(180, rel=0.1)


def test_betas_and_volatility_clustering_over_a_long_history(tmp_path):
    summary = generate_demo_market(tmp_path, sessions=1500, chain_sessions=0, trades=False)
    assert len(summary.sessions) == 1500
    bars = pl.read_csv(tmp_path / "bars" / "*.csv", try_parse_dates=True)
    returns = (
        bars.sort("symbol", "date")
        .with_columns(ret=pl.col("close").log().diff().over("symbol"))
        .pivot(on="symbol", index="date", values="ret")
        .drop_nulls()
    )
    spy = returns["SPY"].to_numpy()
    beta = {s: np.cov(returns[s].to_numpy(), spy)[0, 1] / spy.var(ddof=1) for s in ("IWM", "NVDA", "TSLA")}
    assert beta["IWM"] == pytest.approx(1.15, abs=0.15)
    assert beta["NVDA"] == pytest.approx(1.70, abs=0.25)
    assert beta["TSLA"] == pytest.approx(2.00, abs=0.35)
    # GARCH: large moves follow large moves.
    size = np.abs(spy)
    assert np.corrcoef(size[1:], size[:-1])[0, 1] > 0.1
    assert 0.10 < spy.std() * np.sqrt(252) < 0.30


# -- chains ------------------------------------------------------------------------------------------


def test_chain_files_mix_parquet_and_csv_gz(demo):
    landing, summary = demo
    names = sorted(p.name for p in (landing / "chains").iterdir())
    assert names == ["chains_2025-12-23.parquet"] + [
        f"chains_2025-12-{d}.csv.gz" for d in ("24", "26", "29", "30", "31")
    ]
    assert summary.chain_sessions == summary.sessions[-CHAIN_SESSIONS:]


def test_chain_columns_and_basic_sanity(chains, demo):
    _, summary = demo
    assert chains.columns == [
        "quote_date", "underlying", "expiration", "strike", "option_type", "open_interest", "volume",
        "bid", "ask", "last", "implied_volatility", "delta", "gamma", "underlying_price", "option_symbol",
    ]  # fmt: skip
    assert chains.height == summary.rows["chains"]
    assert chains.filter(
        (pl.col("bid") > pl.col("ask"))
        | (pl.col("bid") < 0)
        | (pl.col("ask") < 0.01)
        | (pl.col("strike") <= 0)
        | (pl.col("expiration") < pl.col("quote_date"))
        | ~pl.col("option_type").is_in(["C", "P"])
        | (pl.col("open_interest") < 0)
        | (pl.col("volume") < 0)
    ).is_empty()
    assert chains.filter(pl.col("last").is_not_null() & (pl.col("last") > pl.col("ask"))).is_empty()
    assert chains.select(pl.struct("quote_date", "option_symbol").is_unique().all()).item()
    # ~1% of rows lack IV and greeks, so the pipeline's derivation path runs.
    missing = chains["implied_volatility"].is_null().mean()
    assert 0.003 < missing < 0.03
    assert chains.filter(pl.col("implied_volatility").is_null() != pl.col("delta").is_null()).is_empty()


def test_underlying_price_is_the_close(chains, bars):
    joined = (
        chains.select("quote_date", "underlying", "underlying_price")
        .unique()
        .join(bars, left_on=["quote_date", "underlying"], right_on=["date", "symbol"])
    )
    assert joined.height == CHAIN_SESSIONS * 7
    assert (joined["underlying_price"] == joined["close"]).all()


def test_osi_symbols_parse_back_to_the_contract(last_chain):
    for row in last_chain.sample(500, seed=1).iter_rows(named=True):
        m = OSI.match(row["option_symbol"])
        assert m, row["option_symbol"]
        assert len(row["option_symbol"]) == 21
        assert m["root"].rstrip() == row["underlying"]
        assert (
            date(2000 + int(m["yymmdd"][:2]), int(m["yymmdd"][2:4]), int(m["yymmdd"][4:]))
            == row["expiration"]
        )
        assert m["type"] == row["option_type"]
        assert int(m["strike"]) / 1000 == row["strike"]
    assert last_chain.filter(pl.col("option_symbol") == "IWM   260116C00210000").height == 1


def test_mid_is_black_scholes_at_the_quoted_iv(chains):
    quoted = chains.filter(pl.col("implied_volatility").is_not_null())
    t = (quoted["expiration"] - quoted["quote_date"]).dt.total_days().to_numpy() / DAYS_PER_YEAR
    model = bs_price(
        quoted["underlying_price"].to_numpy(),
        quoted["strike"].to_numpy(),
        t,
        DEMO_RATE,
        quoted["implied_volatility"].to_numpy(),
        quoted["option_type"].to_numpy() == "C",
        DEMO_DIVIDEND_YIELD,
    )
    mid = ((quoted["bid"] + quoted["ask"]) / 2).to_numpy()
    assert np.max(np.abs(mid - model)) <= 0.01


def test_iv_has_skew_and_sane_levels(last_chain):
    spy = last_chain.filter(
        pl.col("underlying") == "SPY", pl.col("expiration") == date(2026, 2, 20), pl.col("option_type") == "P"
    ).with_columns(moneyness=pl.col("strike") / pl.col("underlying_price"))
    atm = spy.filter((pl.col("moneyness") - 1).abs() < 0.01)["implied_volatility"].median()
    otm_put = spy.filter((pl.col("moneyness") - 0.9).abs() < 0.01)["implied_volatility"].median()
    assert 0.08 < atm < 0.6
    assert otm_put > atm * 1.1  # put skew


def test_expirations_cover_weekly_monthly_quarterly_and_leaps(last_chain):
    spy = set(last_chain.filter(pl.col("underlying") == "SPY")["expiration"].to_list())
    assert {date(2026, 1, 2), date(2026, 1, 9), date(2026, 1, 23)} <= spy  # weeklies
    assert {date(2026, 1, 16), date(2026, 2, 20), date(2026, 3, 20), date(2026, 5, 15)} <= spy  # monthlies
    assert {date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)} <= spy  # quarterlies
    assert date(2027, 1, 15) in spy  # LEAPS
    # Juneteenth 2026 falls on the June third Friday: the monthly moves to Thursday.
    assert date(2026, 6, 18) in spy and date(2026, 6, 19) not in spy
    assert all(d.weekday() < 5 for d in spy)
    assert date(2025, 12, 31) in spy  # 0DTE: quarter-end expiration on the quote date


def test_strike_grid_is_dense_near_spot_and_wider_far_out(last_chain):
    iwm = last_chain.filter(
        pl.col("underlying") == "IWM", pl.col("expiration") == date(2026, 1, 16), pl.col("option_type") == "C"
    )
    spot = iwm["underlying_price"][0]
    near = iwm.filter((pl.col("strike") / spot - 1).abs() <= 0.04)["strike"].sort()
    assert (near.diff().drop_nulls() == 1.0).all()  # $1 strikes near spot
    far = iwm.filter((pl.col("strike") / spot - 1).abs() > 0.2)["strike"]
    assert (far % 5 == 0).all()
    assert iwm["strike"].min() <= spot * 0.75 and iwm["strike"].max() >= spot * 1.25


def test_open_interest_persists_day_over_day(chains):
    days = sorted(chains["quote_date"].unique())
    prev = chains.filter(pl.col("quote_date") == days[-2]).select("option_symbol", prev_oi="open_interest")
    today = chains.filter(pl.col("quote_date") == days[-1]).select("option_symbol", "open_interest")
    both = today.join(prev, on="option_symbol")
    assert both.height > 0.9 * today.height
    assert np.corrcoef(both["open_interest"], both["prev_oi"])[0, 1] > 0.9
    assert (both["open_interest"] != both["prev_oi"]).mean() > 0.5  # it moves, it is not frozen


def test_open_interest_concentrates_on_round_strikes(last_chain):
    near = last_chain.filter(
        pl.col("underlying").is_in(["IWM", "AAPL", "NVDA"]),
        (pl.col("strike") / pl.col("underlying_price") - 1).abs() <= 0.05,
    ).with_columns(
        bucket=pl.when(pl.col("strike") % 10 == 0)
        .then(pl.lit("x10"))
        .when(pl.col("strike") % 5 == 0)
        .then(pl.lit("x5"))
        .otherwise(pl.lit("x1"))
    )
    mean_oi = dict(near.group_by("bucket").agg(pl.col("open_interest").mean()).iter_rows())
    assert mean_oi["x10"] > 1.2 * mean_oi["x5"] > 1.2 * 1.2 * mean_oi["x1"]


def test_volume_follows_open_interest_and_the_money(last_chain):
    assert np.corrcoef(last_chain["volume"], last_chain["open_interest"])[0, 1] > 0.5
    moneyness = (pl.col("strike") / pl.col("underlying_price") - 1).abs()
    near = last_chain.filter(moneyness < 0.03)
    far = last_chain.filter(moneyness > 0.2)
    assert (near["volume"] / (near["open_interest"] + 1)).mean() > 3 * (
        far["volume"] / (far["open_interest"] + 1)
    ).mean()


def test_index_puts_dominate_open_interest(last_chain):
    pc = dict(
        last_chain.filter(pl.col("underlying") == "SPY")
        .group_by("option_type")
        .agg(pl.col("open_interest").sum())
        .iter_rows()
    )
    assert pc["P"] / pc["C"] > 1.1


# -- trades ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trades(demo):
    landing, _ = demo
    return pl.concat(
        [
            pl.read_csv(p).with_columns(file=pl.lit(p.name))
            for p in sorted((landing / "trades").glob("trades_*.csv"))
        ]
    )


def test_trade_prints_are_inside_the_session_and_the_quotes(trades, demo):
    _, summary = demo
    assert trades.columns[:8] == [
        "ts",
        "option_symbol",
        "price",
        "size",
        "bid",
        "ask",
        "exchange",
        "underlying",
    ]
    assert trades.height == summary.rows["trades"]
    assert trades["ts"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}-05:00$").all()
    ts = trades.with_columns(
        local=pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z").dt.convert_time_zone("America/New_York")
    )
    clock = ts["local"].dt.hour().cast(pl.Int32) * 60 + ts["local"].dt.minute()
    assert clock.min() >= 9 * 60 + 30 and clock.max() < 16 * 60
    # 2025-12-24 closes at 13:00.
    early = ts.filter(pl.col("file") == "trades_2025-12-24.csv")["local"]
    assert early.dt.hour().max() < 13
    assert (ts["local"].dt.date().cast(pl.String) == ts["file"].str.slice(7, 10)).all()
    assert trades.filter(
        (pl.col("bid") > pl.col("ask"))
        | (pl.col("price") < pl.col("bid"))
        | (pl.col("price") > pl.col("ask"))
        | (pl.col("price") <= 0)
        | (pl.col("size") <= 0)
    ).is_empty()


def test_trade_symbols_mix_spellings_and_include_blocks(trades, chains):
    symbols = trades["option_symbol"]
    padded = symbols.str.contains(r"^[A-Z]{1,5} *\d{6}[CP]\d{8}$") & (symbols.str.len_chars() == 21)
    polygon = symbols.str.starts_with("O:")
    compact = ~padded & ~polygon & symbols.str.contains(r"^[A-Z]{1,6}\d{6}[CP]\d{8}$")
    assert padded.mean() > 0.7 and compact.mean() > 0.05 and polygon.mean() > 0.03
    assert (padded | polygon | compact).all()
    # Every print, whatever the spelling, is a contract listed in that day's chain.
    parts = symbols.str.strip_prefix("O:").str.extract_groups(r"^([A-Z]+) *(\d{6}[CP]\d{8})$")
    normalised = trades.select(
        quote_date=pl.col("file").str.slice(7, 10).str.to_date(),
        option_symbol=parts.struct.field("1").str.pad_end(6) + parts.struct.field("2"),
        underlying=pl.col("underlying"),
    )
    assert (parts.struct.field("1") == trades["underlying"]).all()
    listed = normalised.join(chains, on=["quote_date", "option_symbol"], how="semi")
    assert listed.height == trades.height
    blocks = trades.filter((pl.col("size") >= 1000) | (pl.col("price") * pl.col("size") * 100 >= 1_000_000))
    assert 0 < blocks.height < 0.02 * trades.height
    assert set(trades["exchange"].unique()) > {"CBOE", "ISE"}


# -- determinism -------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path):
    kwargs = {"sessions": 12, "symbols": ["SPY", "IWM"], "chain_sessions": 6}
    generate_demo_market(tmp_path / "a", seed=3, **kwargs)
    generate_demo_market(tmp_path / "b", seed=3, **kwargs)
    generate_demo_market(tmp_path / "c", seed=4, **kwargs)
    a, b, c = (_files_digest(tmp_path / x) for x in "abc")
    assert len(a) == 2 + 6 + 6  # bars history + nightly, 6 chain files, 6 trade files
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_unknown_symbols_get_a_profile(tmp_path):
    summary = generate_demo_market(tmp_path, sessions=5, symbols=["SPY", "ZZZ"], chain_sessions=1)
    chain = pl.read_csv(tmp_path / "chains" / "chains_2025-12-31.csv.gz")
    assert summary.symbols == ["SPY", "ZZZ"]
    assert set(chain["underlying"]) == {"SPY", "ZZZ"}


# -- full-market day ---------------------------------------------------------------------------------


def test_synthetic_tickers():
    tickers = synthetic_tickers(30, {"AAB"})
    assert tickers[:3] == ["AAA", "AAC", "AAD"]
    assert len(set(tickers)) == 30
    assert all(re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}", t) for t in synthetic_tickers(20_000))


def test_full_market_day_at_small_scale(tmp_path):
    summary = generate_full_market_day(tmp_path, underlyings=50, sessions=30, trades=5_000, seed=2)
    assert len(summary.symbols) == 50 and "SPY" in summary.symbols
    assert all(re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}", s) for s in summary.symbols)
    assert summary.chain_sessions == summary.sessions[-2:]
    assert sorted(p.name for p in (tmp_path / "chains").iterdir()) == [
        "chains_2025-12-30.csv",
        "chains_2025-12-31.csv",
    ]
    bars = pl.read_csv(tmp_path / "bars" / "*.csv")
    assert bars.height == 50 * 30 == summary.rows["bars"]
    chains = pl.read_csv(tmp_path / "chains" / "*.csv")
    assert chains.height == summary.rows["chains"]
    per_day = chains.group_by("quote_date").agg(pl.len(), pl.col("underlying").n_unique().alias("names"))
    assert (per_day["names"] == 50).all()
    # About 400 contracts per underlying per session (2 million for 5,000 names): same order here.
    assert ((per_day["len"] > 50 * 150) & (per_day["len"] < 50 * 1500)).all()
    trades = pl.read_csv(tmp_path / "trades" / "trades_2025-12-31.csv")
    assert trades.height == 5_000 == summary.rows["trades"]
    assert set(trades["underlying"]) <= set(summary.symbols)

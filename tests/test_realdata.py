"""Real vendor files end to end: ../shared/realdata/ (CI has it beside the clone) dropped into landing as
they are, run through the real `chainsignals` entry point, and every positioning figure checked against
an independent recomputation from the raw files.

58 CBOE delayed-quote SPX chains (2019-04-25 to 2019-07-22; 2019-05-27 and 2019-07-04 are stale holiday
snapshots) and Yahoo's ^GSPC daily download saved as bars/SPX.csv. The gold greeks (IV, GEX) are not
checked here: only what open interest, strikes and prices decide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests import helpers
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
CHAIN_FILES = sorted((REALDATA / "spx_chains_2019").glob("SPX_*.csv.gz"))
BARS_FILE = REALDATA / "GSPC_daily_2016-01_2019-07.csv"
START, END = date(2019, 4, 25), date(2019, 7, 22)
HOLIDAYS = [date(2019, 5, 27), date(2019, 7, 4)]  # Memorial Day, Independence Day (SOURCES.md)
GOLD = [
    "technicals_daily",
    "positioning_daily",
    "expiry_levels",
    "strike_levels",
    "blocks",
    "flow_daily",
    "signals_daily",
    "trade_ideas",
    "idea_outcomes",
]
KEYS = {
    "technicals_daily": ["symbol"],
    "positioning_daily": ["symbol"],
    "expiry_levels": ["symbol", "expiration"],
    "strike_levels": ["symbol", "side", "rank"],
    "blocks": ["ts", "option_symbol"],
    "flow_daily": ["symbol"],
    "signals_daily": ["symbol"],
    "trade_ideas": ["idea_id"],
    "idea_outcomes": ["idea_id"],
}


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return helpers.cli(*args, env=env, timeout=900)  # a backfill of the real files takes minutes


def land(landing: Path, chain_files: list[Path]) -> None:
    """The raw files as they are: chains/SPX_YYYYMMDD.csv.gz and Yahoo's download as bars/SPX.csv."""
    (landing / "chains").mkdir(parents=True, exist_ok=True)
    (landing / "bars").mkdir(parents=True, exist_ok=True)
    for path in chain_files:
        shutil.copy(path, landing / "chains" / path.name)
    if not (landing / "bars" / "SPX.csv").exists():
        shutil.copy(BARS_FILE, landing / "bars" / "SPX.csv")


def spx_config(root: Path) -> Path:
    text = (ROOT / "chainsignals.toml").read_text().replace('benchmark = "SPY"', 'benchmark = "SPX"', 1)
    assert 'benchmark = "SPX"' in text
    path = root / "chainsignals.toml"
    path.write_text(text)
    return path


def chain_file(day: date) -> Path:
    return REALDATA / "spx_chains_2019" / f"SPX_{day:%Y%m%d}.csv.gz"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory, prefect_api) -> tuple[Path, subprocess.CompletedProcess]:
    assert len(CHAIN_FILES) == 58, REALDATA
    root = tmp_path_factory.mktemp("realdata")
    land(root / "landing", CHAIN_FILES)
    env = dict(os.environ, PREFECT_API_URL=prefect_api)
    done = cli(
        "backfill",
        "--start",
        str(START),
        "--end",
        str(END),
        "--warehouse",
        str(root / "wh"),
        "--landing",
        str(root / "landing"),
        "--config",
        str(spx_config(root)),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return root, done


def gold(root: Path, table: str, days: list[date] | None = None) -> pl.DataFrame:
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        cursor = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        frame = pl.DataFrame(cursor.fetchall(), schema=names, orient="row", infer_schema_length=None)
    finally:
        con.close()
    if days is not None:
        frame = frame.filter(pl.col("trade_date").is_in(days))
    return frame.sort(["trade_date", *KEYS[table]], nulls_last=True)


# --- the truth, from the raw files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    """Every row of every chain file, typed; contracts expiring after their quote date only."""
    schema = {
        "type": pl.String,
        "expiration": pl.String,
        "quotedate": pl.String,
        "strike": pl.Float64,
        "volume": pl.Int64,
        "openinterest": pl.Int64,
        "underlying_last": pl.Float64,
    }
    frame = pl.concat([pl.read_csv(p, columns=list(schema), schema_overrides=schema) for p in CHAIN_FILES])
    return frame.select(
        pl.col("quotedate").str.to_date("%m/%d/%Y").alias("day"),
        pl.col("expiration").str.to_date("%m/%d/%Y"),
        pl.col("type"),
        pl.col("strike"),
        pl.col("openinterest").alias("oi"),
        pl.col("volume"),
        pl.col("underlying_last"),
    ).filter(pl.col("expiration") > pl.col("day"))


def sessions_of(raw: pl.DataFrame) -> list[date]:
    return sorted(set(raw.get_column("day").unique().to_list()) - set(HOLIDAYS))


def totals(raw: pl.DataFrame) -> pl.DataFrame:
    """call_oi, put_oi, call/put volume per quote date, and the changes against the previous session."""
    by_day = (
        raw.filter(~pl.col("day").is_in(HOLIDAYS))
        .group_by("day")
        .agg(
            call_oi=pl.col("oi").filter(pl.col("type") == "call").sum(),
            put_oi=pl.col("oi").filter(pl.col("type") == "put").sum(),
            call_volume=pl.col("volume").filter(pl.col("type") == "call").sum(),
            put_volume=pl.col("volume").filter(pl.col("type") == "put").sum(),
        )
        .sort("day")
    )
    return by_day.with_columns(call_oi_change=pl.col("call_oi").diff(), put_oi_change=pl.col("put_oi").diff())


def wall(rows: pl.DataFrame, spot: float) -> tuple[float, int]:
    """The strike with the most OI summed over expirations; ties nearer spot, then lower."""
    per_strike = (
        rows.group_by("strike").agg(pl.col("oi").sum()).with_columns(distance=(pl.col("strike") - spot).abs())
    )
    best = per_strike.sort(["oi", "distance", "strike"], descending=[True, False, False]).row(0, named=True)
    return best["strike"], best["oi"]


def max_pain(rows: pl.DataFrame, spot: float) -> float:
    """Brute force over the listed strikes S: sum_calls OI*max(0,S-K) + sum_puts OI*max(0,K-S)."""
    strikes = np.unique(rows.get_column("strike").to_numpy())
    k = rows.get_column("strike").to_numpy()
    oi = rows.get_column("oi").to_numpy().astype(np.int64)
    call = (rows.get_column("type") == "call").to_numpy()
    s = strikes[:, None]
    # Integer strikes times integer OI: exact in int64 (SPX strikes are whole or half points; x2 keeps ints).
    payout = np.where(
        call, np.maximum(0, np.round(2 * (s - k))), np.maximum(0, np.round(2 * (k - s)))
    ).astype(np.int64)
    pain = (payout * oi).sum(axis=1)
    least = strikes[pain == pain.min()]
    return float(min(least, key=lambda strike: (abs(strike - spot), strike)))


# --- the run ----------------------------------------------------------------------------------------------


def test_the_raw_files_as_they_are_backfill_and_the_holiday_files_warn(backfilled):
    root, done = backfilled
    assert "warning:" in done.stdout
    for day in HOLIDAYS:
        name = f"chains/SPX_{day:%Y%m%d}.csv.gz"
        assert name in done.stdout and str(day) in done.stdout, done.stdout
    runs = [json.loads(line) for line in (root / "wh" / "logs" / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["status"] == "success"
    assert [w.split(":")[0] for w in runs[-1]["warnings"]] == [
        f"chains/SPX_{d:%Y%m%d}.csv.gz" for d in HOLIDAYS
    ]


def test_holiday_rows_are_quarantined_and_never_sessions(backfilled, raw):
    root, _ = backfilled
    lake = root / "wh" / "lake"
    for day in HOLIDAYS:
        quarantined = pl.read_parquet(lake / "quarantine" / "chains" / f"trade_date={day}")
        expected = pl.read_csv(chain_file(day), infer_schema=False).height
        assert quarantined.height == expected and set(quarantined["_reason"]) == {"not_a_session:trade_date"}
        assert not (lake / "silver" / "chains" / f"trade_date={day}").exists()
        assert not (lake / "bronze" / "chains" / f"trade_date={day}").exists()
    sessions = sessions_of(raw)
    assert len(sessions) == 56
    for table in GOLD:
        days = set(gold(root, table).get_column("trade_date").to_list())
        assert not days & set(HOLIDAYS), table
    assert gold(root, "positioning_daily").get_column("trade_date").to_list() == sessions
    # Only the holiday rows are quarantined: every session's chain went through whole.
    reasons = pl.read_parquet(lake / "quarantine" / "chains" / "*" / "*.parquet")["_reason"]
    assert set(reasons) == {"not_a_session:trade_date"}


def test_oi_change_after_a_holiday_is_against_the_session_before_it(backfilled, raw):
    root, _ = backfilled
    truth = totals(raw)
    after_memorial_day = truth.filter(pl.col("day") == date(2019, 5, 28)).row(0, named=True)
    assert (after_memorial_day["call_oi_change"], after_memorial_day["put_oi_change"]) == (79_836, 128_621)
    row = gold(root, "positioning_daily", [date(2019, 5, 28)]).row(0, named=True)
    assert (row["call_oi_change"], row["put_oi_change"]) == (79_836, 128_621)
    after_independence_day = gold(root, "positioning_daily", [date(2019, 7, 5)]).row(0, named=True)
    expected = truth.filter(pl.col("day") == date(2019, 7, 5)).row(0, named=True)
    assert (after_independence_day["call_oi_change"], after_independence_day["put_oi_change"]) == (
        expected["call_oi_change"],
        expected["put_oi_change"],
    )


def test_positioning_of_every_session_equals_an_independent_recomputation(backfilled, raw):
    root, _ = backfilled
    truth = {r["day"]: r for r in totals(raw).iter_rows(named=True)}
    positioning = gold(root, "positioning_daily")
    bars = pl.read_csv(BARS_FILE, try_parse_dates=True)
    closes = dict(zip(bars["Date"].to_list(), bars["Close"].to_list(), strict=True))
    first = min(truth)
    for row in positioning.iter_rows(named=True):
        day, spot = row["trade_date"], row["spot"]
        chain = raw.filter(pl.col("day") == day)
        # One spot per session: the bar's close or the chain's own spot (what the walls' tie rule uses).
        assert spot in (closes[day], chain["underlying_last"][0]), day
        t = truth[day]
        assert row["symbol"] == "SPX"
        assert (row["call_oi"], row["put_oi"], row["call_volume"], row["put_volume"]) == (
            t["call_oi"],
            t["put_oi"],
            t["call_volume"],
            t["put_volume"],
        ), day
        assert row["pcr_oi"] == pytest.approx(t["put_oi"] / t["call_oi"], rel=1e-12)
        if day == first:
            assert row["call_oi_change"] is None and row["put_oi_change"] is None
        else:
            assert (row["call_oi_change"], row["put_oi_change"]) == (
                t["call_oi_change"],
                t["put_oi_change"],
            ), day
        assert (row["call_wall"], row["call_wall_oi"]) == wall(
            chain.filter(pl.col("type") == "call"), spot
        ), day
        assert (row["put_wall"], row["put_wall_oi"]) == wall(chain.filter(pl.col("type") == "put"), spot), day
        nearest = chain.get_column("expiration").min()
        assert row["max_pain_expiration"] == nearest
        assert row["max_pain"] == max_pain(chain.filter(pl.col("expiration") == nearest), spot), day


def test_expiry_levels_oi_and_max_pain_of_every_expiration_equal_the_recomputation(backfilled, raw):
    root, _ = backfilled
    levels = gold(root, "expiry_levels")
    spots = dict(gold(root, "positioning_daily").select("trade_date", "spot").iter_rows())
    truth = (
        raw.filter(~pl.col("day").is_in(HOLIDAYS))
        .group_by("day", "expiration")
        .agg(
            call_oi=pl.col("oi").filter(pl.col("type") == "call").sum(),
            put_oi=pl.col("oi").filter(pl.col("type") == "put").sum(),
        )
    )
    got = levels.select(pl.col("trade_date").alias("day"), "expiration", "call_oi", "put_oi")
    assert_frame_equal(got.sort("day", "expiration"), truth.sort("day", "expiration"), check_dtypes=False)
    pains = levels.select("trade_date", "expiration", "max_pain").rows()
    assert len(pains) > 1_900
    for day, expiration, pain in pains:
        rows = raw.filter((pl.col("day") == day) & (pl.col("expiration") == expiration))
        assert pain == max_pain(rows, spots[day]), (day, expiration)


def test_strike_levels_are_the_top_strikes_by_oi_with_changes_against_the_previous_session(backfilled, raw):
    root, _ = backfilled
    levels = gold(root, "strike_levels")
    spots = dict(gold(root, "positioning_daily").select("trade_date", "spot").iter_rows())
    sessions = sessions_of(raw)
    per_strike = (
        raw.filter(~pl.col("day").is_in(HOLIDAYS))
        .group_by("day", "type", "strike")
        .agg(pl.col("oi").sum(), pl.col("volume").sum())
    )
    for day in sessions:
        previous = sessions[sessions.index(day) - 1] if day != sessions[0] else None
        for side in ("call", "put"):
            rows = per_strike.filter((pl.col("day") == day) & (pl.col("type") == side) & (pl.col("oi") > 0))
            top = (
                rows.with_columns(distance=(pl.col("strike") - spots[day]).abs())
                .sort(["oi", "distance", "strike"], descending=[True, False, False])
                .head(5)
            )
            before = (
                {}
                if previous is None
                else dict(
                    per_strike.filter((pl.col("day") == previous) & (pl.col("type") == side))
                    .select("strike", "oi")
                    .iter_rows()
                )
            )
            expected = [
                (
                    rank,
                    r["strike"],
                    r["oi"],
                    r["volume"],
                    None if previous is None else r["oi"] - before.get(r["strike"], 0),
                )
                for rank, r in enumerate(top.iter_rows(named=True), start=1)
            ]
            got = (
                levels.filter((pl.col("trade_date") == day) & (pl.col("side") == side))
                .sort("rank")
                .select("rank", "strike", "open_interest", "volume", "oi_change")
                .rows()
            )
            assert got == expected, (day, side)


def test_technicals_equal_the_yahoo_bars(backfilled, raw):
    root, _ = backfilled
    bars = (
        pl.read_csv(BARS_FILE, try_parse_dates=True)
        .sort("Date")
        .with_columns(
            prev_close=pl.col("Close").shift(1),
            sma_20=pl.col("Close").rolling_mean(20),
            sma_200=pl.col("Close").rolling_mean(200),
            high_52w=pl.col("High").rolling_max(252),
            low_52w=pl.col("Low").rolling_min(252),
        )
    )
    technicals = gold(root, "technicals_daily")
    assert technicals["trade_date"].to_list() == [d for d in bars["Date"].to_list() if START <= d <= END]
    joined = technicals.join(bars, left_on="trade_date", right_on="Date")
    assert joined.height == technicals.height == 61
    assert (joined["symbol"] == "SPX").all()
    for ours, theirs in [
        ("close", "Close"),
        ("prev_close", "prev_close"),
        ("sma_20", "sma_20"),
        ("sma_200", "sma_200"),
        ("high_52w", "high_52w"),
        ("low_52w", "low_52w"),
    ]:
        np.testing.assert_allclose(
            joined[ours].to_numpy(), joined[theirs].to_numpy(), rtol=1e-9, err_msg=ours
        )
    change = (joined["Close"] / joined["prev_close"] - 1) * 100
    np.testing.assert_allclose(joined["change_pct"].to_numpy(), change.to_numpy(), rtol=1e-9)
    # The session after Memorial Day compares with the close of the Friday before it.
    row = joined.filter(pl.col("trade_date") == date(2019, 5, 28)).row(0, named=True)
    assert row["prev_close"] == bars.filter(pl.col("Date") == date(2019, 5, 24))["Close"][0]


def test_validate_names_the_format_and_reports_the_holiday_rows_without_failing(tmp_path, cli_env):
    path = tmp_path / "chains" / "SPX_20190527.csv.gz"
    path.parent.mkdir()
    shutil.copy(chain_file(date(2019, 5, 27)), path)
    rows = pl.read_csv(path, infer_schema=False).height
    done = cli("validate", str(path), "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert done.returncode == 0, done.stderr  # a stale holiday file is normal: not over the limit
    printed = " ".join(done.stdout.split())  # the console folds long lines (a long tmp path) at spaces
    assert f"chains (cboe-delayed-chains), {rows:,} rows, 0 valid, {rows:,} rejected" in printed, printed
    assert f"not_a_session:trade_date │ {rows:,}" in printed, printed
    bars = tmp_path / "bars" / "SPX.csv"
    bars.parent.mkdir()
    shutil.copy(BARS_FILE, bars)
    done = cli("validate", str(bars), "--warehouse", str(tmp_path / "wh"), env=cli_env)
    printed = " ".join(done.stdout.split())
    assert done.returncode == 0 and "bars (yahoo-bars), 900 rows, 900 valid, 0 rejected" in printed, printed
    assert not (tmp_path / "wh").exists()


# --- a nightly sequence over the holiday gives the backfill's rows ---------------------------------------


def test_a_nightly_sequence_around_memorial_day_gives_the_backfills_gold_rows(
    backfilled, tmp_path, prefect_api
):
    from flows.nightly import backfill, nightly

    root, _ = backfilled
    landing, config = tmp_path / "landing", str(spx_config(tmp_path))
    common = {"warehouse": str(tmp_path / "wh"), "landing": str(landing), "config": config}
    land(landing, [p for p in CHAIN_FILES if p.name <= "SPX_20190523.csv.gz"])
    backfill(start=START, end=date(2019, 5, 23), **common)
    sequence = [date(2019, 5, 24), date(2019, 5, 27), date(2019, 5, 28), date(2019, 5, 29)]
    summaries = {}
    for day in sequence:  # each session's file lands, then that night's run
        land(landing, [chain_file(day)])
        summaries[day] = nightly(date=day, **common)
    assert summaries[date(2019, 5, 27)].status == "skipped"
    # The holiday file is read by the next session's run, which warns about it.
    assert [w.split(":")[0] for w in summaries[date(2019, 5, 28)].warnings] == ["chains/SPX_20190527.csv.gz"]
    days = [d for d in sequence if d not in HOLIDAYS]
    for table in GOLD:
        assert_frame_equal(gold(tmp_path, table, days), gold(root, table, days)), table
    assert gold(tmp_path, "positioning_daily", [date(2019, 5, 28)]).select(
        "call_oi_change", "put_oi_change"
    ).row(0) == (79_836, 128_621)

"""The nightly and backfill flows end to end (under the session's Prefect) on small landing sets."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.nightly import backfill
from flows.sources.files import SourceError, bronze_schema
from flows.stages.gold import history_start
from flows.stages.silver import (
    SILVER_CLUSTER,
    SILVER_ORDER,
    RejectedShareError,
    _in_order,
    _rows_on,
    _silver_order,
)
from flows.storage.lake import Lake
from flows.storage.warehouse import WarehouseBusy, warehouse_lock
from schemas.gold import GOLD_TABLES
from tests.helpers import config_with, gold, query, run_nightly
from tests.spec_note import LAST_DAY, NEXT_DAY, NOTE_DATE, add_session, note_chain, write_note_landing
from transforms.osi import format_osi
from transforms.silver import silver_chains

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the warehouse (lake and database) with its content hash."""
    wh = root / "wh"
    return {
        str(p.relative_to(wh)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wh.rglob("*"))
        if p.is_file() and "logs" not in p.parts and p.name != ".chainsignals.lock"
    }


def test_bad_rows_are_quarantined_with_their_reason(note: Path):
    good = note_chain().head(3)
    bad = pl.concat(
        [
            good.slice(0, 1).with_columns(pl.lit(-5).alias("open_interest")),
            good.slice(0, 1).with_columns(pl.lit(9.0).alias("bid"), pl.lit(1.0).alias("ask")),
            good.slice(0, 1).with_columns(pl.lit(0.0).alias("strike")),
            good.slice(0, 1).with_columns(pl.lit("X").alias("option_type")),
            good.slice(0, 1).with_columns(pl.lit(date(2025, 12, 26)).alias("expiration")),
            good.slice(0, 1).with_columns(pl.lit("../ETC").alias("underlying")),
        ],
        how="vertical_relaxed",
    )
    bad = bad.with_columns(pl.lit(None, dtype=pl.String).alias("option_symbol"))
    pl.concat(
        [note_chain().with_columns(pl.lit(None, dtype=pl.String).alias("option_symbol")), bad],
        how="vertical_relaxed",
    ).write_csv(note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv")
    text = (note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv").read_text().splitlines()
    text.append(
        text[1].replace("IWM", "IWM", 1).replace(",C,", ",C,", 1).replace("2026-01-02", "not-a-date", 1)
    )
    (note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv").write_text("\n".join(text) + "\n")
    bars = pl.read_csv(note / "landing" / "bars" / f"bars_{NOTE_DATE}.csv", try_parse_dates=True)
    pl.concat(
        [bars, bars.head(1).with_columns(pl.lit("QQQ").alias("symbol"), pl.lit(1.0).alias("high"))]
    ).write_csv(note / "landing" / "bars" / f"bars_{NOTE_DATE}.csv")

    # The note's bars drop holds two symbols: one bad bar is 33% of that date; allow it here.
    run_nightly(note, NOTE_DATE, config=config_with(note, max_rejected_share=0.5, min_rows_for_limit=1))

    lake = Lake(note / "wh" / "lake")
    quarantine = pl.read_parquet(lake.files("quarantine", "chains", dates=[NOTE_DATE]))
    reasons = sorted(quarantine["_reason"].to_list())
    assert any("greater_than_or_equal_to(0):open_interest" in r for r in reasons)
    assert "bid_le_ask:bid,ask" in reasons
    assert any("greater_than(0):strike" in r for r in reasons)
    assert any("isin(C,P):option_type" in r for r in reasons)
    assert any("expiration_ge_trade_date:expiration,trade_date" in r for r in reasons)
    assert any("symbol_pattern:underlying" in r for r in reasons)
    assert "unparsable:expiration" in reasons
    assert len(quarantine) == 7
    silver = pl.read_parquet(lake.files("silver", "chains", dates=[NOTE_DATE]))
    assert len(silver) == len(note_chain())  # every good row kept
    bars_q = pl.read_parquet(lake.files("quarantine", "bars", dates=[NOTE_DATE]))
    assert bars_q["symbol"].to_list() == ["QQQ"] and "high_ge_low" in bars_q["_reason"][0]
    runs = query(
        note,
        "SELECT rows_in, rows_out, rows_rejected FROM pipeline_runs "
        "WHERE dataset = 'silver.chains' AND trade_date = ?",
        [NOTE_DATE],
    )
    assert runs == [(len(note_chain()) + 7, len(note_chain()), 7)]


def test_too_many_rejects_fail_the_run_and_change_nothing(note: Path):
    run_nightly(note, NOTE_DATE)
    before = snapshot(note)
    add_session(note / "landing", NEXT_DAY)
    chain_file = note / "landing" / "chains" / f"chains_{NEXT_DAY}.csv"
    chain = pl.read_csv(chain_file, try_parse_dates=True)
    chain.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(-1)
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    ).write_csv(chain_file)
    with pytest.raises(
        RejectedShareError, match=r"chains 2025-12-30: \d+ of \d+ rows rejected \(10\.\d%\) > limit 5\.0%"
    ):
        run_nightly(note, NEXT_DAY)
    assert snapshot(note) == before
    assert not (note / "wh" / "lake" / "_staging").exists() or not any(
        (note / "wh" / "lake" / "_staging").iterdir()
    )


def test_missing_column_fails_naming_file_and_column(note: Path):
    run_nightly(note, NOTE_DATE)
    before = snapshot(note)
    add_session(note / "landing", NEXT_DAY)
    chain_file = note / "landing" / "chains" / f"chains_{NEXT_DAY}.csv"
    pl.read_csv(chain_file).drop("strike").write_csv(chain_file)
    with pytest.raises(
        SourceError, match=r"chains_2025-12-30\.csv: missing required column\(s\) strike for chains"
    ):
        run_nightly(note, NEXT_DAY)
    assert snapshot(note) == before


def test_rerun_is_idempotent(note: Path):
    run_nightly(note, NOTE_DATE)
    first = {t: gold(note, t, NOTE_DATE) for t in GOLD_TABLES}
    counts = {t: query(note, f"SELECT count(*) FROM {t}")[0][0] for t in GOLD_TABLES}
    summary = run_nightly(note, NOTE_DATE, force=True)
    assert summary.files_read == 3
    for table in GOLD_TABLES:
        assert gold(note, table, NOTE_DATE).equals(first[table]), table
        assert query(note, f"SELECT count(*) FROM {table}")[0][0] == counts[table], table
    assert query(note, "SELECT count(DISTINCT run_id) FROM pipeline_runs")[0][0] == 2


def test_unchanged_files_are_skipped_and_changed_ones_reingested(note: Path):
    run_nightly(note, NOTE_DATE)
    assert run_nightly(note, NOTE_DATE).files_read == 0
    chain_file = note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    chain = pl.read_csv(chain_file, try_parse_dates=True)
    chain.with_columns(
        pl.when((pl.col("strike") == 266) & (pl.col("option_type") == "C"))
        .then(pl.col("open_interest") + 5000)
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    ).write_csv(chain_file)
    summary = run_nightly(note, NOTE_DATE)
    assert summary.files_read == 1
    positioning = gold(note, "positioning_daily", NOTE_DATE).row(0, named=True)
    assert (positioning["call_wall"], positioning["call_wall_oi"]) == (266.0, 8_401 + 4 * 5_000)
    assert query(note, "SELECT call_wall FROM positioning_daily")[0][0] == 266.0


def test_bronze_is_each_landing_files_bytes_by_sha256_and_silver_is_rebuilt_from_it(note: Path):
    """Bronze holds the landing files' raw bytes at their content address; a session whose silver is
    gone is re-validated from bronze alone, the landing file deleted meanwhile, to the same rows."""
    run_nightly(note, NOTE_DATE)
    lake = Lake(note / "wh" / "lake")
    landing = sorted(p for p in (note / "landing").rglob("*.csv"))
    copies = sorted(p for p in (lake.root / "bronze").rglob("*") if p.is_file())
    expected = {}
    for path in landing:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        expected[lake.root / "bronze" / path.parent.name / digest[:2] / f"{digest}.csv"] = path.read_bytes()
    assert copies == sorted(expected)
    assert all(copy.read_bytes() == expected[copy] for copy in copies)
    assert not list((lake.root / "bronze").rglob("*.parquet"))  # silver is the first typed write
    silver = lake.files("silver", "chains", dates=[NOTE_DATE])
    before = pl.read_parquet(silver)
    (note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv").unlink()
    for f in silver:
        f.unlink()
    summary = run_nightly(note, NOTE_DATE)
    assert summary.files_read == 0
    assert pl.read_parquet(lake.files("silver", "chains", dates=[NOTE_DATE])).equals(before)


def test_a_date_with_later_data_present_gives_the_same_rows(tmp_path: Path):
    alone, later = tmp_path / "alone", tmp_path / "later"
    write_note_landing(alone / "landing")
    write_note_landing(later / "landing")
    add_session(later / "landing", NEXT_DAY, oi_bump=3000)
    run_nightly(alone, NOTE_DATE)
    run_nightly(later, NOTE_DATE)
    for table in GOLD_TABLES:
        assert gold(later, table, NOTE_DATE).equals(gold(alone, table, NOTE_DATE)), table


def test_backfill_equals_a_sequence_of_nightly_runs(tmp_path: Path):
    seq, bulk = tmp_path / "seq", tmp_path / "bulk"
    for root in (seq, bulk):
        write_note_landing(root / "landing")
        add_session(root / "landing", NEXT_DAY, oi_bump=1200, drift=0.4)
        add_session(root / "landing", LAST_DAY, oi_bump=-700, drift=-1.1)
    for day in (NOTE_DATE, NEXT_DAY, LAST_DAY):
        run_nightly(seq, day)
    summary = backfill(
        start=NOTE_DATE, end=LAST_DAY, warehouse=str(bulk / "wh"), landing=str(bulk / "landing")
    )
    assert summary.dates == [NOTE_DATE, NEXT_DAY, LAST_DAY]
    for day in summary.dates:
        for table in GOLD_TABLES:
            assert gold(bulk, table, day).equals(gold(seq, table, day)), (table, day)
    changes = query(bulk, "SELECT trade_date, call_oi_change FROM positioning_daily ORDER BY trade_date")
    # add_session bumps the 255 call in each of the chain's 4 expirations
    assert changes == [(NOTE_DATE, None), (NEXT_DAY, 4 * 1200), (LAST_DAY, 4 * -700 - 4 * 1200)]
    walls = query(
        bulk,
        "SELECT oi_change FROM strike_levels WHERE trade_date = ? AND side = 'call' AND rank = 1",
        [NEXT_DAY],
    )
    assert walls == [(4 * 1200,)]


def test_an_underlying_missing_from_a_days_chain_has_no_oi_change_the_next_day_in_both(tmp_path: Path):
    """SPY's chain is missing on NEXT_DAY: on LAST_DAY its OI changes are NULL (the previous session in the
    lake has no SPY), whether LAST_DAY runs as a nightly (which reads that previous session only) or in
    a backfill batch holding all three days (which used to compare with SPY's NOTE_DATE chain)."""
    seq, bulk = tmp_path / "seq", tmp_path / "bulk"
    for root in (seq, bulk):
        landing = root / "landing"
        write_note_landing(landing)
        add_session(landing, NEXT_DAY, oi_bump=1200, drift=0.4)
        add_session(landing, LAST_DAY, oi_bump=-700, drift=-1.1)
        for day in (NOTE_DATE, LAST_DAY):  # SPY listed on those two days only
            chain_file = landing / "chains" / f"chains_{day}.csv"
            iwm = pl.read_csv(chain_file, try_parse_dates=True)
            spy = iwm.with_columns(
                pl.lit("SPY").alias("underlying"),
                (pl.col("strike") * 2.4).alias("strike"),
                pl.lit(None, dtype=pl.Float64).alias("underlying_price"),
            )
            pl.concat([iwm, spy]).write_csv(chain_file)
    for day in (NOTE_DATE, NEXT_DAY, LAST_DAY):
        run_nightly(seq, day)
    backfill(start=NOTE_DATE, end=LAST_DAY, warehouse=str(bulk / "wh"), landing=str(bulk / "landing"))
    for day in (NOTE_DATE, NEXT_DAY, LAST_DAY):
        for table in GOLD_TABLES:
            assert gold(bulk, table, day).equals(gold(seq, table, day)), (table, day)
    changes = query(
        bulk,
        "SELECT symbol, call_oi_change, put_oi_change FROM positioning_daily "
        "WHERE trade_date = ? ORDER BY symbol",
        [LAST_DAY],
    )
    assert changes == [("IWM", 4 * -700 - 4 * 1200, 0), ("SPY", None, None)]
    spy_levels = query(
        bulk,
        "SELECT count(*), count(oi_change) FROM strike_levels WHERE trade_date = ? AND symbol = 'SPY'",
        [LAST_DAY],
    )
    assert spy_levels == [(10, 0)]


def correct_call_oi(landing: Path, day: date, added: int) -> None:
    """A re-delivered chain for `day`: `added` more OI on the 255 call of each expiration."""
    chain_file = landing / "chains" / f"chains_{day}.csv"
    chain = pl.read_csv(chain_file, try_parse_dates=True)
    chain.with_columns(
        pl.when((pl.col("strike") == 255) & (pl.col("option_type") == "C"))
        .then(pl.col("open_interest") + added)
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    ).write_csv(chain_file)


def test_oi_change_follows_a_corrected_previous_chain_not_its_stale_gold(note: Path):
    """OI change reads the previous session's totals from its gold row only while that row was built from
    the silver chain now in the lake; a re-delivered previous chain is compared against as delivered."""
    add_session(note / "landing", NEXT_DAY, oi_bump=1200)
    run_nightly(note, NOTE_DATE)
    run_nightly(note, NEXT_DAY)
    assert gold(note, "positioning_daily", NEXT_DAY)["call_oi_change"].to_list() == [4 * 1200]
    # The previous session's chain is re-delivered with 300 more OI on the 255 call of each expiration;
    # the next nightly re-validates it (silver) but builds gold for NEXT_DAY only.
    correct_call_oi(note / "landing", NOTE_DATE, 300)
    run_nightly(note, NEXT_DAY)
    assert gold(note, "positioning_daily", NEXT_DAY)["call_oi_change"].to_list() == [4 * (1200 - 300)]


def stale_warning(sessions: str, first: date, last: date) -> str:
    return (
        f"the gold of {sessions}, computed earlier, depends on data this run replaced and still shows the data "
        f"before it: `chainsignals backfill --start {first} --end {last}` recomputes it"
    )


def test_sessions_left_computed_from_replaced_data_are_named_with_the_backfill_that_fixes_them(note: Path):
    add_session(note / "landing", NEXT_DAY, oi_bump=1200)
    add_session(note / "landing", LAST_DAY, oi_bump=-700)
    for day in (NOTE_DATE, NEXT_DAY, LAST_DAY):
        assert (
            run_nightly(note, day).warnings == []
        )  # each night's data is new: nothing earlier depends on it
    assert run_nightly(note, LAST_DAY).warnings == []  # nothing changed
    calls = "SELECT call_oi FROM positioning_daily WHERE trade_date = ?"
    before = query(note, calls, [NEXT_DAY])
    # NEXT_DAY's chain is re-delivered; the nightly of LAST_DAY re-validates it but computes LAST_DAY only.
    correct_call_oi(note / "landing", NEXT_DAY, 300)
    summary = run_nightly(note, LAST_DAY)
    assert summary.warnings == [stale_warning(f"{NEXT_DAY}", NEXT_DAY, NEXT_DAY)]
    assert query(note, calls, [NEXT_DAY]) == before  # stale, as the warning says
    logged = [json.loads(line) for line in (note / "wh" / "logs" / "runs.jsonl").read_text().splitlines()]
    assert logged[-1]["warnings"] == summary.warnings
    assert (
        backfill(
            start=NEXT_DAY, end=NEXT_DAY, warehouse=str(note / "wh"), landing=str(note / "landing")
        ).warnings
        == []
    )
    assert query(note, calls, [NEXT_DAY]) == [(before[0][0] + 4 * 300,)]
    assert run_nightly(note, LAST_DAY).warnings == []
    # Re-running an old session on corrected data leaves the sessions after it behind.
    correct_call_oi(note / "landing", NOTE_DATE, 50)
    later = stale_warning(f"2 sessions from {NEXT_DAY} to {LAST_DAY}", NEXT_DAY, LAST_DAY)
    assert run_nightly(note, NOTE_DATE).warnings == [later]


# Sorted by date, the new session's rows are appended; sorted by symbol, they land between the old
# ones and every later row's number shifts.
@pytest.mark.parametrize("order", [["date", "symbol"], ["symbol", "date"]], ids=["by_date", "by_symbol"])
def test_a_cumulative_file_delivered_again_revalidates_only_the_sessions_whose_rows_changed(
    note: Path, order
):
    add_session(note / "landing", NEXT_DAY, oi_bump=1200)
    bars = note / "landing" / "bars"
    history, day_files = bars / "bars_history.csv", [bars / f"bars_{d}.csv" for d in (NOTE_DATE, NEXT_DAY)]
    full = pl.concat([pl.read_csv(f, try_parse_dates=True) for f in (history, *day_files)]).sort(order)
    for f in day_files:  # the vendor's one file holds every session
        f.unlink()
    full.filter(pl.col("date") <= NOTE_DATE).write_csv(history)
    assert run_nightly(note, NOTE_DATE).warnings == []
    lake = Lake(note / "wh" / "lake")

    def silver_files() -> dict[date, tuple[int, str]]:
        return {
            d: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for d in lake.dates("silver", "bars")
            for f in lake.files("silver", "bars", dates=[d])
        }

    before = silver_files()
    full.write_csv(history)  # delivered again with NEXT_DAY's rows appended
    summary = run_nightly(note, NEXT_DAY)
    assert (summary.files_read, summary.warnings) == (
        1,
        [],
    )  # the history file (the chain came with the first run)
    after = silver_files()
    assert set(after) - set(before) == {NEXT_DAY}
    assert {d: after[d] for d in before} == before  # the earlier sessions: neither re-validated nor rewritten
    assert gold(note, "technicals_daily", NEXT_DAY).height == 2
    # A close corrected on NOTE_DATE: that session only is re-validated, and its gold named as stale.
    corrected = full.with_columns(
        pl.when(pl.col("date") == NOTE_DATE)
        .then(pl.col("close") + 1.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    corrected.write_csv(history)
    summary = run_nightly(note, NEXT_DAY)
    after_fix = silver_files()
    assert [d for d in after_fix if after_fix[d] != after[d]] == [NOTE_DATE]
    assert summary.warnings == [stale_warning(f"{NOTE_DATE}", NOTE_DATE, NOTE_DATE)]


def test_bars_only_symbol_still_gets_technicals_and_a_bias(note: Path):
    bars = pl.read_csv(note / "landing" / "bars" / "bars_history.csv", try_parse_dates=True)
    bars.filter(pl.col("symbol") == "SPY").with_columns(pl.lit("DIA").alias("symbol")).write_csv(
        note / "landing" / "bars" / "dia_history.csv"
    )
    last = pl.read_csv(note / "landing" / "bars" / f"bars_{NOTE_DATE}.csv", try_parse_dates=True)
    last.filter(pl.col("symbol") == "SPY").with_columns(pl.lit("DIA").alias("symbol")).write_csv(
        note / "landing" / "bars" / "dia_last.csv"
    )
    run_nightly(note, NOTE_DATE)
    row = query(note, "SELECT sma_200 IS NOT NULL, rsi_14 FROM technicals_daily WHERE symbol = 'DIA'")[0]
    assert row[0] and 0 <= row[1] <= 100
    signal = query(note, "SELECT bias, score_pcr, pcr_oi FROM signals_daily WHERE symbol = 'DIA'")[0]
    assert signal[0] in ("bullish", "bearish", "neutral") and signal[1] == 0.0 and signal[2] is None
    assert query(note, "SELECT DISTINCT instrument FROM trade_ideas WHERE symbol = 'DIA'") == [("stock",)]


def test_views_answer_analyst_sql(note: Path):
    run_nightly(note, NOTE_DATE)
    latest = query(note, "SELECT symbol, trade_date, bias FROM latest_signals ORDER BY symbol")
    assert [(s, d) for s, d, _ in latest] == [("IWM", NOTE_DATE), ("SPY", NOTE_DATE)]
    ideas = query(
        note, "SELECT rule, option_symbol, bias FROM todays_ideas WHERE symbol = 'IWM' ORDER BY rule"
    )
    # No put_breakdown: the put it would name (this Friday's 240, the put wall) is quoted 0.00 bid.
    assert [r[0] for r in ideas] == ["call_breakout", "protective_put", "stock_entry"]
    assert ideas[0][1] == "IWM   260102C00255000" and ideas[0][2] == "bullish"
    levels = query(
        note, "SELECT round(sma_30, 2), call_wall, put_wall FROM symbol_levels WHERE symbol = 'IWM'"
    )
    assert levels == [(246.33, 255.0, 240.0)]
    flow_ids = query(note, "SELECT DISTINCT flow_run_id IS NOT NULL, flow_name, status FROM pipeline_runs")
    assert flow_ids == [(True, "nightly", "success")]


ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
query = "SELECT max(trade_date), count(*) FROM signals_daily"
print(con.execute(query).fetchall(), flush=True)
sys.stdin.readline()  # hold the file open until the nightly is done
print(con.execute(query).fetchall(), flush=True)
"""


def test_reader_holding_the_database_sees_one_whole_day(note: Path):
    import subprocess
    import sys

    run_nightly(note, NOTE_DATE)
    add_session(note / "landing", NEXT_DAY)
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(note / "wh" / "signals.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = analyst.stdout.readline().strip()
        assert before == str([(NOTE_DATE, 2)])
        run_nightly(note, NEXT_DAY)  # the writer is not blocked by the analyst's open file
        out, _ = analyst.communicate("done\n", timeout=60)
        assert out.strip() == before  # the open connection saw the previous day whole, never a mix
    finally:
        analyst.kill()
    assert query(note, "SELECT max(trade_date), count(*) FROM signals_daily") == [(NEXT_DAY, 4)]


def test_a_second_run_while_one_holds_the_warehouse_fails_clearly(note: Path):
    (note / "wh").mkdir()
    with warehouse_lock(note / "wh"), pytest.raises(WarehouseBusy, match="another chainsignals run holds"):
        run_nightly(note, NOTE_DATE)


def test_a_non_session_is_skipped_with_its_reason(note: Path):
    summary = run_nightly(note, date(2025, 12, 25))
    assert summary.status == "skipped"
    assert summary.reason == "2025-12-25 is not an XNYS session (Christmas); next session 2025-12-26"
    assert not (note / "wh" / "signals.duckdb").exists()


def test_run_without_a_date_takes_the_latest_session_in_landing(note: Path):
    add_session(note / "landing", NEXT_DAY)
    summary = run_nightly(note)
    assert summary.dates == [NEXT_DAY]
    assert NEXT_DAY - timedelta(days=1) == NOTE_DATE


def test_symbols_recompute_only_those_and_keep_the_rest(note: Path):
    run_nightly(note, NOTE_DATE)
    spy_before = gold(note, "technicals_daily", NOTE_DATE).filter(pl.col("symbol") == "SPY")
    chain_file = note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    chain = pl.read_csv(chain_file, try_parse_dates=True)
    chain.with_columns(
        pl.when((pl.col("strike") == 266) & (pl.col("option_type") == "C"))
        .then(pl.col("open_interest") + 5000)
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    ).write_csv(chain_file)
    run_nightly(note, NOTE_DATE, symbols=["iwm"])
    assert query(note, "SELECT symbol FROM signals_daily ORDER BY symbol") == [("IWM",), ("SPY",)]
    assert query(note, "SELECT call_wall FROM positioning_daily WHERE symbol = 'IWM'") == [(266.0,)]
    assert gold(note, "technicals_daily", NOTE_DATE).filter(pl.col("symbol") == "SPY").equals(spy_before)
    with pytest.raises(ValueError, match="invalid symbol"):
        run_nightly(note, NOTE_DATE, symbols=["IWM'; DROP TABLE x"])


def test_note_prints_give_one_block_and_quarantine_the_stale_print(note: Path):
    (note / "landing" / "trades").mkdir()
    (note / "landing" / "trades" / f"trades_{NOTE_DATE}.csv").write_text(
        "ts,option_symbol,price,size,bid,ask,exchange\n"
        "2025-12-29T10:15:00-05:00,IWM   260116C00255000,4.10,2500,4.00,4.10,CBOE\n"
        "2025-12-29T11:00:00-05:00,IWM260116C00255000,4.05,3,4.00,4.10,ISE\n"
        "2025-12-29T11:30:00-05:00,IWM20250919C220,51.26,250,51.00,51.30,PHLX\n"
    )
    run_nightly(note, NOTE_DATE)
    assert query(
        note, "SELECT option_symbol, size, price, notional, side, expiration, strike FROM blocks"
    ) == [("IWM   260116C00255000", 2500, 4.10, 1_025_000.0, "buy", date(2026, 1, 16), 255.0)]
    flow = query(
        note,
        "SELECT block_count, buy_block_count, block_buy_notional, largest_block_side "
        "FROM flow_daily WHERE symbol = 'IWM'",
    )
    assert flow == [(1, 1, 1_025_000.0, "buy")]
    quarantine = pl.read_parquet(Lake(note / "wh" / "lake").files("quarantine", "trades", dates=[NOTE_DATE]))
    assert quarantine.select("option_symbol", "_reason").rows() == [
        ("IWM   250919C00220000", "expiration_ge_trade_date:expiration,trade_date")
    ]
    assert query(note, "SELECT score_flow FROM signals_daily WHERE symbol = 'IWM'") == [(10.0,)]


def test_nightly_publishes_ideas_and_report_artifacts(note: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    run_nightly(note, NOTE_DATE)
    with get_client(sync_client=True) as client:
        table = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["chainsignals-trade-ideas"])), limit=50
        )
        markdown = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["chainsignals-daily-report"])),
            limit=50,
        )
    latest = max(table, key=lambda a: a.created)
    rows = latest.data if isinstance(latest.data, list) else __import__("json").loads(latest.data)
    iwm = {r["rule"]: r for r in rows if r["symbol"] == "IWM"}
    assert iwm["call_breakout"]["contract"] == "IWM   260102C00255000"
    assert iwm["call_breakout"]["trigger_level"] == 250.94 and iwm["call_breakout"]["target"] == 266.0
    summary = max(markdown, key=lambda a: a.created).data
    assert summary.startswith("# chainsignals 2025-12-29\n")
    # The report's pages are not on the server: named as a path, never linked.
    assert (
        f"report: `{note / 'wh' / 'reports' / '2025-12-29' / 'index.html'}`" in summary
        and "](" not in summary
    )
    assert "| IWM | " in summary


def test_nightly_report_is_capped_to_the_most_open_interest(note: Path):
    run_nightly(note, NOTE_DATE, config=config_with(note, max_symbols=1))
    pages = sorted(p.name for p in (note / "wh" / "reports" / str(NOTE_DATE)).glob("*.md"))
    assert pages == ["IWM.md", "index.md"]  # IWM has the chain (all the OI); SPY is listed, not written
    assert "SPY" in (note / "wh" / "reports" / str(NOTE_DATE) / "index.md").read_text()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, None]),
            st.sampled_from(["x", "y", None]),
            st.sampled_from([0.5, 1.0, float("nan"), None]),
        ),
        max_size=8,
    )
)
def test_silver_order_check_gives_the_sorted_frame(rows):
    """Silver skips its sort when the rows already come in key order; the result is always the sort's."""
    frame = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.String, "c": pl.Float64}, orient="row")
    frame = frame.unique(maintain_order=True)  # silver orders by a unique key
    assert _in_order(frame, ["a", "b", "c"]).equals(frame.sort(["a", "b", "c"]))
    ordered = frame.sort(["a", "b", "c"])
    assert _in_order(ordered, ["a", "b", "c"]).equals(ordered)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["IWM", "SPY", "QQQ", None]),
            st.integers(0, 3),
            st.sampled_from([0.5, 1.0, float("nan"), None]),
        ),
        max_size=12,
        unique=True,
    ),
    st.randoms(use_true_random=False),
)
def test_silver_order_of_runs_in_any_order_gives_the_sorted_frame(rows, rng):
    """A vendor's chain: each underlying's rows in order, the underlyings in the vendor's order (silver
    then sorts by the underlying alone). Runs split in two, or rows out of order within one, still give
    the full sort."""
    frame = pl.DataFrame(rows, schema={"u": pl.String, "k": pl.Int64, "x": pl.Float64}, orient="row")
    runs = frame.sort(["u", "k", "x"]).partition_by("u", maintain_order=True)
    rng.shuffle(runs)
    by_runs = pl.concat(runs) if runs else frame
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1000))
    for candidate in (by_runs, shuffled, pl.concat([by_runs, by_runs.head(1)]).unique(maintain_order=True)):
        assert _in_order(candidate, ["u", "k", "x"]).equals(candidate.sort(["u", "k", "x"]))
        # Clustered first (a chain's expiration and side lead its written order): the rows move once.
        clustered = candidate.with_columns((pl.col("k") % 2).alias("e"))
        assert _in_order(clustered, ["u", "k", "x"], ["e"]).equals(clustered.sort(["e", "u", "k", "x"]))
        ordered = clustered.sort(["u", "k", "x"])
        assert _in_order(ordered, ["u", "k", "x"], ["e"]).equals(clustered.sort(["e", "u", "k", "x"]))


def test_silver_takes_a_batch_day_by_day_and_a_one_day_batch_as_it_is():
    """A backfill's batch is filtered one day at a time (a split of all days at once would hold the batch
    twice); a nightly's one-day batch is passed on without a copy."""
    days = [date(2025, 12, 29), date(2025, 12, 30)]
    batch = pl.DataFrame({"trade_date": [days[0], days[1], days[0]], "symbol": ["IWM", "IWM", "SPY"]})
    assert _rows_on(batch, days[0])["symbol"].to_list() == ["IWM", "SPY"]
    assert _rows_on(batch, days[1])["symbol"].to_list() == ["IWM"]
    assert _rows_on(batch, date(2025, 12, 31)).height == 0
    one_day = batch.filter(pl.col("trade_date") == days[0])
    assert _rows_on(one_day, days[0]) is one_day
    assert _rows_on(one_day, days[1]).height == 0


def test_gold_reads_history_from_two_years_before_its_years_start_and_stays_talibs(tmp_path: Path):
    import talib

    from flows.market.simulator import generate_demo_market

    # 800 sessions (from 2022) up to 2026-01-02, chains on the year's last session and the next year's first.
    days = generate_demo_market(
        tmp_path / "landing", end=date(2026, 1, 2), sessions=800, symbols=["SPY", "IWM"], chain_sessions=2
    ).sessions
    assert days[0] < date(2023, 1, 1) and days[-2:] == [date(2025, 12, 31), date(2026, 1, 2)]
    assert (
        backfill(
            start=days[-2], end=days[-1], warehouse=str(tmp_path / "wh"), landing=str(tmp_path / "landing")
        ).warnings
        == []
    )
    before = {table: gold(tmp_path, table, days[-1]) for table in GOLD_TABLES}

    # 2026's gold reads no bars from before 2024: made unreadable, they change nothing.
    lake = Lake(tmp_path / "wh" / "lake")
    old = lake.files("silver", "bars", end=date(2023, 12, 31))
    assert len(old) > 250
    for file in old:
        file.write_bytes(b"not parquet")
    assert (
        backfill(
            start=days[-1], end=days[-1], warehouse=str(tmp_path / "wh"), landing=str(tmp_path / "landing")
        ).warnings
        == []
    )
    for table in GOLD_TABLES:
        assert gold(tmp_path, table, days[-1]).equals(before[table]), table
    with pytest.raises(Exception, match="parquet"):  # 2025's do (from 2023 on)
        backfill(
            start=days[-2], end=days[-2], warehouse=str(tmp_path / "wh"), landing=str(tmp_path / "landing")
        )

    # The values are still TA-Lib's over the whole history (SPEC 4's tolerances).
    history = pl.concat(
        [pl.read_csv(f, try_parse_dates=True) for f in (tmp_path / "landing" / "bars").glob("*.csv")]
    )
    spy = history.filter(pl.col("symbol") == "SPY").sort("date")
    assert spy.get_column("date")[-1] == days[-1]
    row = before["technicals_daily"].filter(pl.col("symbol") == "SPY").row(0, named=True)
    close, high, low = (spy.get_column(c).to_numpy() for c in ("close", "high", "low"))
    assert row["sma_200"] == pytest.approx(talib.SMA(close, 200)[-1], rel=1e-9)
    assert row["ema_20"] == pytest.approx(talib.EMA(close, 20)[-1], rel=1e-9)
    assert row["atr_14"] == pytest.approx(talib.ATR(high, low, close, 14)[-1], rel=1e-6)
    assert row["rsi_14"] == pytest.approx(talib.RSI(close, 14)[-1], abs=1e-6)
    assert (row["high_52w"], row["low_52w"]) == (high[-252:].max(), low[-252:].min())


@pytest.mark.parametrize(
    ("day", "years", "start"),
    [
        (date(2026, 1, 2), 2, date(2024, 1, 1)),
        (date(2026, 12, 31), 2, date(2024, 1, 1)),
        (date(2025, 12, 31), 2, date(2023, 1, 1)),
        (date(2025, 6, 30), 3, date(2022, 1, 1)),
    ],
)
def test_history_start_is_one_date_for_every_session_of_a_year(day, years, start):
    assert history_start(day, years) == start


def test_silver_chains_keep_the_vendors_row_order():
    """Silver sorts a chain listed underlying by underlying with a cheap stable sort by the underlying;
    that needs the derivation (a join with the bars' closes) to keep the rows' order. 40,000 rows: an
    unordered join reorders a frame this size."""
    day = date(2025, 12, 31)
    rows = 40_000
    roots = [f"U{i:03d}" for i in range(400)]
    index = pl.int_range(rows, eager=True)
    bronze = pl.DataFrame(
        {
            "trade_date": [day] * rows,
            "underlying": pl.Series(roots).gather((index // 100 * 7919) % 400),  # runs in no sorted order
            "expiration": [date(2026, 1, 16)] * rows,
            "strike": (index % 100).cast(pl.Float64) + 50.0,
            "option_type": ["C"] * rows,
            "open_interest": index,
            "volume": index,
            "bid": [1.0] * rows,
            "ask": [1.2] * rows,
            "last": [1.1] * rows,
            "implied_volatility": [0.2] * rows,
            "delta": [0.5] * rows,
            "gamma": [0.01] * rows,
            "underlying_price": pl.Series([None] * rows, dtype=pl.Float64),
            "option_symbol": [""] * rows,
            "_source_file": ["chains.csv"] * rows,
            "_source_row": index,
            "_ingested_at": [datetime(2026, 1, 1, tzinfo=UTC)] * rows,
            "_parse_errors": pl.Series([None] * rows, dtype=pl.String),
        },
        schema=bronze_schema("chains"),
    ).with_columns(
        format_osi(pl.col("underlying"), pl.col("expiration"), pl.col("option_type"), pl.col("strike")).alias(
            "option_symbol"
        )
    )
    closes = pl.LazyFrame({"trade_date": [day] * 400, "symbol": roots, "close": [100.0] * 400})
    silver = silver_chains(bronze.lazy(), closes).collect()
    assert silver.get_column("_source_row").to_list() == list(range(rows))
    assert silver.get_column("spot_derived").all() and silver.get_column("underlying_price").eq(100.0).all()
    # Each underlying's contracts come in one run, so the order is settled by a sort on the underlying.
    assert _in_order(silver, SILVER_ORDER["chains"]).equals(silver.sort(SILVER_ORDER["chains"]))
    # Written clustered by expiration and side, each cluster in that order.
    written = [*SILVER_CLUSTER["chains"], *SILVER_ORDER["chains"]]
    assert _silver_order(silver, "chains").equals(silver.sort(written))

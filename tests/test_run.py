"""flows.stages.run: the one composition of a run (plain calls and the Prefect flow give the same day), and the
CLI's summary of a day, which stays a screen or two on a full-market day."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
from rich.console import Console

from flows.config import load_settings
from flows.stages.run import STAGES, run_stages
from schemas.gold import GOLD_TABLES
from tests.spec_note import NOTE_DATE, write_note_landing

ROOT = Path(__file__).resolve().parent.parent


def gold_tables(warehouse: Path, day: date) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse / "signals.duckdb"), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} WHERE trade_date = ? ORDER BY ALL", [day]).fetchall()
            for t in GOLD_TABLES
        }
    finally:
        con.close()


def test_plain_run_times_every_stage_in_order_and_publishes_what_the_flow_does(tmp_path: Path, prefect_api):
    from flows.nightly import nightly

    write_note_landing(tmp_path / "landing")
    settings = load_settings(warehouse=tmp_path / "plain", landing=tmp_path / "landing")
    events = []

    @contextmanager
    def timed(name: str):
        events.append(("start", name))
        yield
        events.append(("end", name))

    summary = run_stages(settings, "nightly", NOTE_DATE, None, False, timed=timed)
    assert events == [(edge, name) for name in STAGES for edge in ("start", "end")]
    assert summary.status == "success" and summary.dates == [NOTE_DATE]
    assert summary.rows["positioning_daily"] == 1 and summary.report.endswith("index.html")

    flow_summary = nightly(
        date=NOTE_DATE, warehouse=str(tmp_path / "flow"), landing=str(tmp_path / "landing")
    )
    assert flow_summary.rows == summary.rows
    plain, flowed = gold_tables(tmp_path / "plain", NOTE_DATE), gold_tables(tmp_path / "flow", NOTE_DATE)
    for table in GOLD_TABLES:
        assert plain[table] == flowed[table], table
    assert len(plain["trade_ideas"]) >= 3
    # The plain run's pipeline_runs rows carry no flow run; the flow's name theirs.
    con = duckdb.connect(str(tmp_path / "plain" / "signals.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(flow_run_id) FROM pipeline_runs").fetchall()[0][1] == 0
    finally:
        con.close()


SYMBOLS = 5_000
RULES = ("call_breakout", "protective_put", "stock_entry")


def full_market_database(path: Path, day: date, n: int = SYMBOLS) -> None:
    """signals_daily and trade_ideas of an n-symbol day (three ideas each), with the idea_display view."""
    symbols = [f"S{i:04d}" for i in range(n)]
    scores = [(i * 37) % 201 - 100 for i in range(n)]
    signals = pl.DataFrame(
        {
            "trade_date": [day] * n,
            "symbol": symbols,
            "close": [100.0 + i % 50 for i in range(n)],
            "change_pct": [0.5] * n,
            "bias": ["bullish" if s > 20 else "bearish" if s < -20 else "neutral" for s in scores],
            "bias_score": pl.Series(scores, dtype=pl.Int64),
            "support": [95.0] * n,
            "resistance": [105.0] * n,
            "summary": ["s"] * n,
        }
    )
    ideas = pl.DataFrame(
        {
            "trade_date": [day] * (3 * n),
            "symbol": [s for s in symbols for _ in RULES],
            "idea_id": [f"{s}-{r}" for s in symbols for r in RULES],
            "rule": list(RULES) * n,
            "direction": ["bullish", "bearish", "bullish"] * n,
            "instrument": ["call", "put", "stock"] * n,
            "option_symbol": [None] * (3 * n),
            "expiration": [None] * (3 * n),
            "strike": [None] * (3 * n),
            "dte": [None] * (3 * n),
            "contract_open_interest": [None] * (3 * n),
            "entry_premium": [1.25] * (3 * n),
            "underlying_close": [100.0] * (3 * n),
            "trigger_level": [101.0] * (3 * n),
            "trigger_direction": ["above"] * (3 * n),
            "target": [110.0] * (3 * n),
            "stop": [98.0] * (3 * n),
            "risk_reward": [((i * 7919) % 1000) / 100 for i in range(3 * n)],
            "rationale": ["r"] * (3 * n),
        },
        schema_overrides={
            "option_symbol": pl.String,
            "expiration": pl.Date,
            "strike": pl.Float64,
            "dte": pl.Int64,
            "contract_open_interest": pl.Int64,
        },
    )
    con = duckdb.connect(str(path))
    try:
        con.register("signals_frame", signals)
        con.register("ideas_frame", ideas)
        con.execute("CREATE TABLE signals_daily AS SELECT * FROM signals_frame")
        con.execute("CREATE TABLE trade_ideas AS SELECT * FROM ideas_frame")
        con.execute((ROOT / "sql" / "views" / "idea_display.sql").read_text())
    finally:
        con.close()


def test_the_summary_of_a_full_market_day_is_counts_the_top_20_in_a_stated_order_and_where_the_rest_is(
    tmp_path: Path, monkeypatch
):
    import flows.cli.app

    day = date(2025, 12, 31)
    full_market_database(tmp_path / "signals.duckdb", day)
    out = io.StringIO()
    monkeypatch.setattr(flows.cli.app, "console", Console(file=out, width=160))
    flows.cli.app._print_day(SimpleNamespace(database=tmp_path / "signals.duckdb", warehouse=tmp_path), day)
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) <= 80, f"{len(lines)} lines"  # two screens of 40 lines, against 15,000+ before
    scores = [(i * 37) % 201 - 100 for i in range(SYMBOLS)]
    bullish, bearish = sum(s > 20 for s in scores), sum(s < -20 for s in scores)
    flat = " ".join(text.split())
    assert (
        f"{SYMBOLS:,} symbols: bearish {bearish:,}, bullish {bullish:,}, neutral {SYMBOLS - bullish - bearish:,}; "
        "15,000 trade ideas: call_breakout bullish 5,000, protective_put bearish 5,000, stock_entry bullish 5,000"
    ) in flat
    assert "signals 2025-12-31: 20 of 5,000, strongest first: |score| descending, then symbol" in flat
    assert (
        "trade ideas 2025-12-31: 20 of 15,000, best reward/risk first: R:R descending, then symbol and rule"
        in flat
    )
    # The first signal rows: |score| 100 (i * 37 % 201 in {0, 200}), symbols in order.
    strongest = sorted(range(SYMBOLS), key=lambda i: (-abs(scores[i]), i))[:3]
    shown = [row.split()[0] for row in re.findall(r"^│ (S\d{4} .*)$", text, re.MULTILINE)]
    assert shown[:3] == [f"S{i:04d}" for i in strongest]
    best = max(((i * 7919) % 1000) / 100 for i in range(3 * SYMBOLS))
    assert f"{best:.1f} │" in text
    assert f"`chainsignals ideas --date 2025-12-31 --warehouse {tmp_path}`" in flat
    assert f"`chainsignals signals --date 2025-12-31 --warehouse {tmp_path}`" in flat


def test_the_summary_of_a_small_day_shows_every_signal_and_idea_without_pointing_elsewhere(
    tmp_path: Path, monkeypatch
):
    import flows.cli.app

    day, symbols = date(2025, 12, 31), 3
    full_market_database(tmp_path / "signals.duckdb", day, symbols)
    out = io.StringIO()
    monkeypatch.setattr(flows.cli.app, "console", Console(file=out, width=160))
    flows.cli.app._print_day(SimpleNamespace(database=tmp_path / "signals.duckdb", warehouse=tmp_path), day)
    text = out.getvalue()
    assert len(re.findall(r"^│ S000\d ", text, re.MULTILINE)) == symbols + 3 * symbols
    assert "signals 2025-12-31, strongest first" in " ".join(text.split()) and "of 3" not in text
    assert "chainsignals ideas" not in text

"""flows.run: the one composition of a run (plain calls and the Prefect flow give the same day)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from spec_note import NOTE_DATE, write_note_landing

from flows.config import load_settings
from flows.pipeline import GOLD_TABLES
from flows.run import STAGES, run_stages

ROOT = Path(__file__).resolve().parent.parent


def gold_tables(warehouse: Path, day: date) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse / "signals.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} WHERE trade_date = ? ORDER BY ALL", [day]).fetchall()
                for t in GOLD_TABLES}
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

    flow_summary = nightly(date=NOTE_DATE, warehouse=str(tmp_path / "flow"), landing=str(tmp_path / "landing"))
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

"""Gold's Prefect result cache: keyed on the landing files' hashes, config and code; used only while the
files it wrote are intact. And what happens when a step after the publish fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flows.nightly
from flows.config import load_settings
from flows.storage.fingerprints import inputs_fingerprint, stage_key
from flows.storage.lake import Lake
from schemas.gold import GOLD_TABLES
from tests.helpers import config_with, gold, query, run_nightly
from tests.spec_note import NOTE_DATE

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def gold_times(root: Path) -> dict[str, int]:
    lake = Lake(root / "wh" / "lake")
    return {
        str(p): p.stat().st_mtime_ns for t in GOLD_TABLES for p in lake.files("gold", t, dates=[NOTE_DATE])
    }


def refuse_gold(monkeypatch) -> list[int]:
    """build_gold replaced by a counter that fails: a run that succeeds did not compute gold."""
    calls = []

    def refused(*args, **kwargs):
        calls.append(1)
        raise AssertionError("gold recomputed")

    monkeypatch.setattr(flows.nightly, "build_gold", refused)
    return calls


def test_unchanged_inputs_reuse_gold_and_changed_ones_recompute(note: Path, monkeypatch):
    run_nightly(note, NOTE_DATE)
    first = gold_times(note)
    assert len(first) == len(GOLD_TABLES)
    assert any((note / "wh" / ".cache" / "prefect").iterdir())  # records live with the warehouse

    with monkeypatch.context() as patch:
        calls = refuse_gold(patch)
        summary = run_nightly(note, NOTE_DATE)
    assert calls == [] and gold_times(note) == first
    assert summary.rows["positioning_daily"] == 1  # the cached counts still reach the summary
    assert query(note, "SELECT call_wall FROM positioning_daily WHERE symbol = 'IWM'") == [(255.0,)]

    # A removed gold file invalidates the record: gold is computed again and the file is back.
    removed = Lake(note / "wh" / "lake").files("gold", "strike_levels", dates=[NOTE_DATE])[0]
    removed.unlink()
    run_nightly(note, NOTE_DATE)
    assert removed.exists() and gold_times(note)[str(removed)] != first[str(removed)]

    # --force recomputes whatever the cache holds.
    before = gold_times(note)
    run_nightly(note, NOTE_DATE, force=True)
    assert all(gold_times(note)[p] != t for p, t in before.items())


def test_the_key_follows_landing_content_config_and_parameters(note: Path):
    run_nightly(note, NOTE_DATE)
    settings = load_settings(warehouse=note / "wh", landing=note / "landing")
    key = stage_key("build-gold", settings, dates=[NOTE_DATE], symbols=None)
    assert key == stage_key("build-gold", settings, dates=[NOTE_DATE], symbols=None)
    assert key != stage_key("build-gold", settings, dates=[NOTE_DATE], symbols=["IWM"])

    other_config = load_settings(
        config_with(note, max_rejected_share=0.5), warehouse=note / "wh", landing=note / "landing"
    )
    assert stage_key("build-gold", other_config, dates=[NOTE_DATE], symbols=None) != key

    # Touching a landing file without changing it keeps the key; changing one byte changes it.
    fingerprint = inputs_fingerprint(settings)
    chain = next((note / "landing" / "chains").iterdir())
    chain.write_bytes(chain.read_bytes())
    run_nightly(note, NOTE_DATE)
    assert inputs_fingerprint(settings) == fingerprint
    text = chain.read_text().splitlines()
    text[1] = text[1].replace(",", ", ", 1)  # same values, different bytes: a new vendor drop
    chain.write_text("\n".join(text) + "\n")
    run_nightly(note, NOTE_DATE)
    assert inputs_fingerprint(settings) != fingerprint


def test_a_report_failure_after_the_publish_is_a_warning_not_a_failed_run(note: Path, monkeypatch):
    import flows.report.build

    def broken(*args, **kwargs):
        raise OSError("disk full while writing the report")

    monkeypatch.setattr(flows.report.build, "write_report", broken)
    summary = run_nightly(note, NOTE_DATE)
    assert summary.status == "success" and summary.report == ""
    assert summary.warnings == [f"report for {NOTE_DATE} not written: disk full while writing the report"]
    assert query(note, "SELECT max(trade_date) FROM signals_daily") == [(NOTE_DATE,)]
    logged = [json.loads(line) for line in (note / "wh" / "logs" / "runs.jsonl").read_text().splitlines()]
    assert logged[-1]["status"] == "success" and logged[-1]["warnings"] == summary.warnings
    assert gold(note, "positioning_daily", NOTE_DATE)["call_wall"].to_list() == [255.0]


def test_artifacts_hold_the_best_ideas_and_strongest_signals_in_a_stated_order(note: Path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    monkeypatch.setattr(flows.nightly, "ARTIFACT_TOP", 1)
    summary = run_nightly(note, NOTE_DATE)
    (total,) = query(note, "SELECT count(*) FROM trade_ideas WHERE trade_date = ?", [NOTE_DATE])[0]
    best = query(
        note,
        "SELECT symbol, rule, risk_reward FROM trade_ideas WHERE trade_date = ? "
        "ORDER BY risk_reward DESC, symbol, rule LIMIT 1",
        [NOTE_DATE],
    )[0]
    strongest = query(
        note,
        "SELECT symbol, bias_score FROM signals_daily WHERE trade_date = ? "
        "ORDER BY abs(bias_score) DESC, symbol LIMIT 1",
        [NOTE_DATE],
    )[0]
    assert summary.status == "success" and total > 1
    with get_client(sync_client=True) as client:

        def latest(key: str):
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=200
            )
            return max(found, key=lambda a: a.created)

        table, markdown = latest("chainsignals-trade-ideas"), latest("chainsignals-daily-report")
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    assert [(r["symbol"], r["rule"], r["risk_reward"]) for r in rows] == [(*best[:2], round(best[2], 2))]
    assert table.description == (
        f"chainsignals trade ideas for {NOTE_DATE}: 1 of {total:,}, best reward/risk first: R:R descending, "
        "then symbol and rule; all in the todays_ideas view"
    )
    signal_rows = [line for line in markdown.data.splitlines() if line.startswith("| ") and "---" not in line]
    assert signal_rows[1:] == [
        f"| {strongest[0]} | "
        + query(note, "SELECT bias FROM signals_daily WHERE symbol = ?", [strongest[0]])[0][0]
        + f" | {strongest[1]:+d} | "
        + query(note, "SELECT summary FROM signals_daily WHERE symbol = ?", [strongest[0]])[0][0]
        + " |"
    ]
    assert "Signals: 1 of 2, strongest first: |score| descending, then symbol; all in signals_daily." in (
        markdown.data
    )

"""One run composed once: the stages of a session (`nightly`) or a range (`backfill`), in order.

ingest + validate (landing -> bronze -> silver) -> gold (staged under the run) -> publish (gold and the
DuckDB warehouse committed together) -> present (the day's report; the Prefect flows add artifacts).

`run_stages` holds the order, the warehouse lock, the run log and what a failure leaves behind. How
each stage executes is its `Steps`: `PLAIN` calls the pipeline's functions in this process (bench,
tests); `flows.nightly` passes its Prefect tasks (retries, caching, artifacts). A `timed(name)` context
manager around each stage is the hook for timing it. Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from flows.config import Settings
from flows.errors import ChainsignalsError
from flows.sources.calendar import closed_reason
from flows.sources.files import now_utc
from flows.stages.gold import build_gold, finish_shards
from flows.stages.ingest import ingest_and_validate, latest_landing_session
from flows.stages.sessions import (
    StageStats,
    clear_pending_stats,
    gold_sessions,
    pending_stats,
    short_chain,
    stale_gold_sessions,
    uncomputed_sessions,
)
from flows.storage import runlog
from flows.storage.fingerprints import run_inputs_fingerprint
from flows.storage.lake import GoldStagedLake, Lake, journal_path, roll_forward
from flows.storage.warehouse import WarehouseBusy, check_no_writer, publish, warehouse_lock
from schemas.gold import GOLD_TABLES

STAGES = ("ingest", "gold", "publish", "present")
"""The names `timed` receives, in run order."""

GoldCounts = dict[str, dict[date, int]]


class RunError(ChainsignalsError, RuntimeError):
    """A run that cannot compute what it was asked (nothing in landing for the session, a short chain set
    to fail, lake files that no longer match their commit); the message is one line."""


@dataclass
class RunSummary:
    run_id: str
    flow: str
    status: str  # success | skipped
    dates: list[date] = field(default_factory=list)
    files_read: int = 0
    files_skipped: int = 0
    files_hidden: int = 0  # landing files skipped for a leading dot
    rows: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    report: str = ""  # the day's report index (HTML)
    flow_run_url: str = ""  # the flow run's page on the Prefect server's UI
    # For the operator, on a run that succeeded: landing rows dated on a non-session (quarantined), steps
    # after the publish that failed (the data is in), sessions left computed from data this run replaced.
    warnings: list[str] = field(default_factory=list)


def _plain_ingest(settings: Settings, run_id: str, end: date | None, force: bool) -> tuple[dict, StageStats]:
    result, stats = ingest_and_validate(settings, run_id, end=end, force=force)
    return ingest_summary(result), stats


def ingest_summary(result) -> dict:
    """What the run keeps of an ingest (small: a Prefect task returns it)."""
    return {
        "files_read": result.files_read,
        "files_skipped": result.files_skipped,
        "hidden": result.hidden,
        "unsettled": result.unsettled,
        "warnings": result.warnings,
    }


def _plain_gold(
    settings: Settings, dates: list[date], symbols: list[str] | None, shards: int, run_id: str, force: bool
) -> tuple[GoldCounts, StageStats]:
    stats = StageStats()
    if shards <= 1:
        return build_gold(settings, dates, stats, symbols, run_id=run_id), stats
    counts: GoldCounts = {}
    for index in range(shards):
        for table, per_day in build_gold(
            settings, dates, stats, shard=(index, shards), run_id=run_id
        ).items():
            for day, n in per_day.items():
                counts.setdefault(table, {})[day] = counts.get(table, {}).get(day, 0) + n
    finish_shards(settings, dates, shards, run_id)
    return counts, stats


def publish_staged(settings: Settings, dates: list[date], runs: pl.DataFrame, run_id: str) -> dict[str, int]:
    """The run's staged gold and the database, committed together."""
    return publish(
        settings.database, GoldStagedLake(settings.lake, run_id=run_id), {t: dates for t in GOLD_TABLES}, runs
    )


def write_day_report(settings: Settings, day: date):
    """The day's Markdown and HTML pages under <warehouse>/reports/<day>/, from the published warehouse."""
    from flows.report.build import write_report

    return write_report(
        settings.database, settings.lake, settings.reports, day, report_symbols(settings, day)
    )


def report_symbols(settings: Settings, day: date) -> list[str] | None:
    """All symbols of the day, or on a full-market day the `report_max_symbols` with the most open
    interest (5,000 pages with charts, ~20 ms each, would add minutes to a night; the index lists all)."""
    from flows.storage.warehouse import connect_read_only

    con = connect_read_only(settings.database)
    try:
        rows = con.execute(
            "SELECT s.symbol FROM signals_daily AS s LEFT JOIN positioning_daily AS p "
            "ON p.trade_date = s.trade_date AND p.symbol = s.symbol WHERE s.trade_date = ? "
            "ORDER BY coalesce(p.call_oi + p.put_oi, 0) DESC, s.symbol",
            [day],
        ).fetchall()
    finally:
        con.close()
    if len(rows) <= settings.report_max_symbols:
        return None
    return [r[0] for r in rows[: settings.report_max_symbols]]


def _plain_present(settings: Settings, day: date, logger: logging.Logger) -> tuple[Any, list[str]]:
    try:
        return write_day_report(settings, day), []
    except Exception as exc:
        line = f"report for {day} not written: {one_line(exc)}"
        logger.warning("%s (the warehouse has the day)", line)
        return None, [line]


@dataclass(frozen=True)
class Steps:
    """How each stage executes, and what the run reports to (a Prefect flow run, or nothing)."""

    ingest: Callable[[Settings, str, date | None, bool], tuple[dict, StageStats]] = _plain_ingest
    gold: Callable[
        [Settings, list[date], list[str] | None, int, str, bool], tuple[GoldCounts, StageStats]
    ] = _plain_gold
    publish: Callable[[Settings, list[date], pl.DataFrame, str], dict[str, int]] = publish_staged
    # The day's report (and artifacts): returns (report index or None, warnings); never raises for a
    # failure of its own, the day being published.
    present: Callable[[Settings, date, logging.Logger], tuple[Any, list[str]]] = _plain_present
    logger: Callable[[], logging.Logger] = lambda: logging.getLogger("chainsignals.run")
    flow_run_id: Callable[[], str | None] = lambda: None
    flow_run_url: Callable[[], str] = lambda: ""
    name_run: Callable[[str], None] = lambda _name: None
    # Exceptions that stop a run rather than fail it (Prefect adds its TerminationSignal).
    interrupts: tuple[type[BaseException], ...] = (KeyboardInterrupt,)


PLAIN = Steps()

Timer = Callable[[str], AbstractContextManager]


def _untimed(_name: str) -> AbstractContextManager:
    return nullcontext()


def new_run_id() -> str:
    return now_utc().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def run_stages(
    settings: Settings,
    flow_name: str,
    target: date | None,
    start: date | None,
    force: bool,
    symbols: list[str] | None = None,
    shards: int = 1,
    *,
    steps: Steps = PLAIN,
    timed: Timer = _untimed,
    run_id: str | None = None,
) -> RunSummary:
    """Run one session (`flow_name` "nightly": `target`, or the latest session in landing) or every
    session in [start, target] ("backfill"). `timed(stage)` wraps each of STAGES."""
    logger = steps.logger()
    run_id = run_id or new_run_id()
    started = now_utc()
    end = target
    try:
        with warehouse_lock(settings.warehouse):
            # A publish killed after its decision is finished first: the lake and database then agree.
            roll_forward(settings.warehouse)
            # An analyst's read-write connection: refused now, not after an hour of work.
            wal_warning = check_no_writer(settings.database)
            reason = closed_reason(target, settings.calendar) if flow_name == "nightly" and target else None
            if reason:
                logger.info("skipped: %s", reason)
                runlog.append(
                    settings.warehouse,
                    {
                        "run_id": run_id,
                        "flow": flow_name,
                        "status": "skipped",
                        "date": target,
                        "started_at": started,
                        "finished_at": now_utc(),
                        "reason": reason,
                    },
                )
                return RunSummary(
                    run_id, flow_name, "skipped", reason=reason, flow_run_url=steps.flow_run_url()
                )
            with timed("ingest"):
                files, _ = steps.ingest(settings, run_id, end, force)
            incomplete = None
            if flow_name == "nightly":
                if target is None:
                    target = latest_landing_session(settings)
                    if target is None:
                        raise RunError(
                            f"no bars or chains in landing ({settings.landing})", file=settings.landing
                        )
                    steps.name_run(f"nightly-{target}")
                dates = gold_sessions(settings, target, target)
                if not dates:
                    raise RunError(
                        f"no bars for {target} in landing ({settings.landing})", date=target, dataset="bars"
                    )
                incomplete = short_chain(Lake(settings.lake), target, settings.min_chain_share)
                if incomplete and settings.on_short_chain == "fail":
                    raise RunError(
                        f'{incomplete} ([ingest] on_short_chain = "fail")', date=target, dataset="chains"
                    )
                # Sessions a failed run ingested after the last computed one are computed with this one.
                lake = Lake(settings.lake)
                if lake.dates("gold", "technicals_daily"):
                    dates = sorted({*dates, *(d for d in uncomputed_sessions(lake) if d < target)})
            else:
                dates = gold_sessions(settings, start, end)
                if not dates:
                    raise RunError(f"no sessions with bars between {start} and {end}", dataset="bars")
            with timed("gold"):
                counts, gold_stats = steps.gold(settings, dates, symbols, shards, run_id, force)
            with timed("publish"):
                lake = Lake(settings.lake)
                pending = pending_stats(lake)
                runs = run_records(run_id, flow_name, pending, gold_stats, steps.flow_run_id())
                loaded = steps.publish(settings, dates, runs, run_id)
                clear_pending_stats(lake)
            stale = _stale_warning(stale_gold_sessions(lake, pending, dates), logger)
            # The day is published: what follows only presents it. A failure there is a warning on a run
            # that succeeded (the warehouse has the day), not a failed run to re-run for nothing.
            with timed("present"):
                report, warnings = steps.present(settings, dates[-1], logger)
            arriving = [
                f"{name} is still being written: left for the next run" for name in files["unsettled"]
            ]
            chain = [incomplete] if flow_name == "nightly" and incomplete else []
            for line in chain:
                logger.warning(line)
            warnings = (
                files["warnings"]
                + arriving
                + chain
                + stale
                + ([wal_warning] if wal_warning else [])
                + warnings
            )
    except WarehouseBusy:
        raise  # another run's warehouse: refused, not a run of this one
    except BaseException as exc:
        if not journal_path(settings.warehouse).exists():  # not decided: its staged gold goes
            GoldStagedLake(settings.lake, run_id=run_id).discard()
        named = _name_bad_lake_files(settings, exc)
        # Ctrl-C and SIGTERM stop a run, not fail it (in a flow run Prefect turns SIGTERM into its
        # TerminationSignal; outside one flows.cli.launcher raises it as a KeyboardInterrupt).
        status = "interrupted" if isinstance(exc, steps.interrupts) else "failed"
        runlog.append(
            settings.warehouse,
            {
                "run_id": run_id,
                "flow": flow_name,
                "status": status,
                "date": target,
                "start": start,
                "started_at": started,
                "finished_at": now_utc(),
                "error": one_line(named or exc),
            },
        )
        if named is not None:
            raise named from exc
        raise
    summary = RunSummary(
        run_id,
        flow_name,
        "success",
        dates,
        files["files_read"],
        files["files_skipped"],
        len(files["hidden"]),
        {t: sum(c.values()) for t, c in counts.items()},
        report=str(report.html) if report else "",
        flow_run_url=steps.flow_run_url(),
        warnings=warnings,
    )
    # The inputs a whole-universe run computed from: the next run with the same ones has nothing to do
    # (flows/cli/precheck.py answers it before Prefect starts).
    inputs = {"inputs": run_inputs_fingerprint(settings)} if not symbols else {}
    runlog.append(
        settings.warehouse,
        {
            "run_id": run_id,
            "flow": flow_name,
            "status": "success",
            "dates": [dates[0], dates[-1]],
            "started_at": started,
            "finished_at": now_utc(),
            "rows": loaded,
            **inputs,
            "files": {
                "read": files["files_read"],
                "unchanged": files["files_skipped"],
                "hidden": len(files["hidden"]),
            },
            **({"warnings": warnings} if warnings else {}),
        },
    )
    logger.info("%s %s: %s", flow_name, run_id, summary.rows)
    return summary


def run_records(
    run_id: str, flow_name: str, pending: pl.DataFrame, gold: StageStats, flow_run_id: str | None = None
) -> pl.DataFrame:
    """pipeline_runs rows: silver stats awaiting publication (this run's or a killed run's) + gold."""
    frame = gold.frame()
    if "run_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(run_id).alias("run_id"))
    gold_rows = frame.group_by("dataset", "trade_date").agg(  # shards: one row per table and date
        pl.col("rows_in", "rows_out", "rows_rejected").sum(),
        pl.col("started_at").min(),
        pl.col("finished_at").max(),
        pl.col("run_id").min(),
    )
    rows = pl.concat([pending, gold_rows], how="diagonal_relaxed")
    return rows.with_columns(
        pl.lit(flow_run_id, dtype=pl.String).alias("flow_run_id"),
        pl.lit(flow_name).alias("flow_name"),
        pl.lit("success").alias("status"),
    )


def _name_bad_lake_files(settings: Settings, exc: BaseException) -> Exception | None:
    """A lake file that does not read fails a scan of many files with polars' message alone ("expected
    parquet magic bytes"): the lake's recorded sha256 find which file it was."""
    if not isinstance(exc, pl.exceptions.PolarsError):
        return None
    from flows.storage.lake import verify_lake

    _, problems = verify_lake(Lake(settings.lake))
    if not problems:
        return None
    return RunError(
        f"{one_line(exc)}; the lake file(s) that no longer match their commit: " + "; ".join(problems)
    )


def _stale_warning(stale: list[date], logger: logging.Logger) -> list[str]:
    """The sessions a re-delivered or back-dated file left computed from the data before it. Not
    recomputed here: a bar corrected a year back reaches a year of technicals, which is a backfill's work,
    not a night's. The operator decides; the warning says how."""
    if not stale:
        return []
    sessions = f"{stale[0]}" if len(stale) == 1 else f"{len(stale)} sessions from {stale[0]} to {stale[-1]}"
    line = (
        f"the gold of {sessions}, computed earlier, depends on data this run replaced and still shows the "
        f"data before it: `chainsignals backfill --start {stale[0]} --end {stale[-1]}` recomputes it"
    )
    logger.warning(line)
    return [line]


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""Prefect flows: `nightly` (one session) and `backfill` (a range in one pass per stage).

Each stage is one task over all symbols at once. Tasks return small summaries, never frames: the
data lives in the lake. Works with no Prefect server (ephemeral) or against one via PREFECT_API_URL.
"""

from __future__ import annotations

import datetime as dt
import errno
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run

from flows import runlog
from flows.caching import (
    CACHE_EXPIRATION,
    outputs_fingerprint,
    result_storage,
    run_inputs_fingerprint,
    stage_key,
)
from flows.calendar import closed_reason
from flows.config import Settings, load_settings
from flows.errors import ChainsignalsError
from flows.lake import GoldStagedLake, Lake, journal_path, roll_forward
from flows.pipeline import (
    GOLD_TABLES,
    StageStats,
    build_gold,
    clear_pending_stats,
    finish_shards,
    gold_sessions,
    ingest_and_validate,
    latest_landing_session,
    pending_stats,
    shard_part,
    short_chain,
    stale_gold_sessions,
    uncomputed_sessions,
)
from flows.progress import stage
from flows.sources import SourceError, now_utc
from flows.warehouse import WarehouseBusy, check_no_writer, publish, warehouse_lock
from schemas.rules import checked_symbols


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


def _new_run_id() -> str:
    return now_utc().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _source_may_recover(task, task_run, state) -> bool:
    """Retry reads that can succeed later (I/O errors, a file still being copied), not bad data."""
    error = state.data
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:  # a full disk stays full for seconds
        return False
    return isinstance(error, OSError) or (isinstance(error, SourceError) and error.transient)


@task(name="ingest-and-validate", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_source_may_recover,
      cache_policy=NO_CACHE)
def ingest_task(settings: Settings, run_id: str, end: date | None, force: bool) -> tuple[dict, StageStats]:
    """Landing -> bronze -> silver. Retried: landing files may still be arriving (partial copies)."""
    with stage("ingest and validate landing files"):
        result, stats = ingest_and_validate(settings, run_id, end=end, force=force)
    get_run_logger().info("ingested %d file(s), %d unchanged, %d hidden skipped; dates touched: %s",
                          result.files_read, result.files_skipped, len(result.hidden),
                          {k: len(v) for k, v in result.touched.items()})
    for line in result.warnings:
        get_run_logger().warning(line)
    for name in result.unsettled:
        get_run_logger().warning("%s is still being written: left for the next run", name)
    return {"files_read": result.files_read, "files_skipped": result.files_skipped, "hidden": result.hidden,
            "unsettled": result.unsettled, "warnings": result.warnings}, stats


GoldResult = tuple[dict[str, dict[date, int]], StageStats, dict[str, list[int]]]
"""Rows per table and date, their pipeline_runs stats, and the files written (to validate a cache hit)."""


def _gold_key(context, inputs: dict) -> str:
    return stage_key("build-gold", inputs["settings"], dates=inputs["dates"], symbols=inputs["symbols"])


def _gold_shard_key(context, inputs: dict) -> str:
    return stage_key("build-gold-shard", inputs["settings"], dates=inputs["dates"], index=inputs["index"],
                     shards=inputs["shards"])


@task(name="build-gold", cache_key_fn=_gold_key, cache_expiration=CACHE_EXPIRATION, persist_result=True)
def gold_task(settings: Settings, dates: list[date], symbols: list[str] | None, run_id: str) -> GoldResult:
    """The gold tables staged under `run_id` (the publish commits them); run_id is not in the cache
    key: a cached result stands for the files as the lake holds them once committed."""
    stats = StageStats()
    with stage(f"compute gold tables for {len(dates)} session(s)"):
        counts = build_gold(settings, dates, stats, symbols, run_id=run_id)
    _computed_by(stats, run_id)
    return counts, stats, outputs_fingerprint(settings, GOLD_TABLES, dates, run_id=run_id)


@task(name="build-gold-shard", cache_key_fn=_gold_shard_key, cache_expiration=CACHE_EXPIRATION,
      persist_result=True)
def gold_shard_task(settings: Settings, dates: list[date], index: int, shards: int, run_id: str) -> GoldResult:
    """One shard's underlyings (hashed) for every gold table; runs wherever the task runner puts it."""
    stats = StageStats()
    counts = build_gold(settings, dates, stats, shard=(index, shards), run_id=run_id)
    _computed_by(stats, run_id)
    return counts, stats, outputs_fingerprint(settings, GOLD_TABLES, dates, part=shard_part(index, shards),
                                              run_id=run_id)


def _computed_by(stats: StageStats, run_id: str) -> None:
    """Gold stats name the run that computed them: a later run reusing the cached result (a publish
    finished after a kill) records no second copy of them in pipeline_runs."""
    for row in stats.rows:
        row["run_id"] = run_id


def _cached_gold(gold, settings: Settings, force: bool, parts: list[str | None], calls: list[tuple],
                 run_id: str) -> list[GoldResult]:
    """Run the gold task once per argument tuple (submitted together), reusing a cached result only when
    the files it wrote are still on disk unchanged; otherwise (or with `force`) recompute."""
    logger = get_run_logger()
    storage = result_storage(settings)
    runnable = gold.with_options(result_storage=storage, refresh_cache=force or None)
    if len(calls) == 1:  # in this thread, as a plain task call
        states = [runnable(settings, *calls[0], return_state=True)]
    else:
        futures = [runnable.submit(settings, *args) for args in calls]
        states = [f.wait() or f.state for f in futures]
    results = []
    for args, part, state in zip(calls, parts, states, strict=True):
        result: GoldResult = state.result()
        if state.name == "Cached":
            if result[2] != outputs_fingerprint(settings, GOLD_TABLES, args[0], part=part, run_id=run_id):
                logger.warning("%s: the cached result's gold files changed since: recomputing", gold.name)
                result = gold.with_options(result_storage=storage, refresh_cache=True)(settings, *args)
            else:
                logger.info("%s: same inputs as a finished run, its gold files intact: result reused", gold.name)
        results.append(result)
    return results


def _gold(settings: Settings, dates: list[date], symbols: list[str] | None, shards: int, run_id: str,
          force: bool = False) -> tuple[dict[str, dict[date, int]], StageStats]:
    if shards <= 1:
        (result,) = _cached_gold(gold_task, settings, force, [None], [(dates, symbols, run_id)], run_id)
        return result[0], result[1]
    if symbols:
        raise ValueError("symbols and shards do not combine: a shard is a hash of all underlyings")
    with stage(f"compute gold tables for {len(dates)} session(s) in {shards} shards"):
        results = _cached_gold(gold_shard_task, settings, force, [shard_part(i, shards) for i in range(shards)],
                               [(dates, i, shards, run_id) for i in range(shards)], run_id)
        finish_shards(settings, dates, shards, run_id)
    counts: dict[str, dict[date, int]] = {}
    stats = StageStats()
    for shard_counts, shard_stats, _ in results:
        stats.rows.extend(shard_stats.rows)
        for table, per_day in shard_counts.items():
            for day, n in per_day.items():
                counts.setdefault(table, {})[day] = counts.get(table, {}).get(day, 0) + n
    return counts, stats


@task(name="publish-warehouse", cache_policy=NO_CACHE)
def publish_task(settings: Settings, dates: list[date], runs: pl.DataFrame, run_id: str) -> dict[str, int]:
    """The run's staged gold and the database, committed together."""
    with stage("publish to the DuckDB warehouse"):
        return publish(settings.database, GoldStagedLake(settings.lake, run_id=run_id),
                       {t: dates for t in GOLD_TABLES}, runs)


@task(name="write-report", cache_policy=NO_CACHE)
def report_task(settings: Settings, day: date):
    """The day's Markdown and HTML pages under <warehouse>/reports/<day>/, from the published warehouse."""
    from flows.report import write_report

    with stage(f"write the {day} report"):
        return write_report(settings.database, settings.lake, settings.reports, day, report_symbols(settings, day))


def report_symbols(settings: Settings, day: date) -> list[str] | None:
    """All symbols of the day, or on a full-market day the `report_max_symbols` with the most open
    interest (5,000 pages with charts, ~20 ms each, would add minutes to a night; the index lists all)."""
    from flows.warehouse import connect_read_only

    con = connect_read_only(settings.database)
    try:
        rows = con.execute(
            "SELECT s.symbol FROM signals_daily AS s LEFT JOIN positioning_daily AS p "
            "ON p.trade_date = s.trade_date AND p.symbol = s.symbol WHERE s.trade_date = ? "
            "ORDER BY coalesce(p.call_oi + p.put_oi, 0) DESC, s.symbol", [day]).fetchall()
    finally:
        con.close()
    if len(rows) <= settings.report_max_symbols:
        return None
    return [r[0] for r in rows[: settings.report_max_symbols]]


ARTIFACT_MAX_IDEAS = 2_000
"""Rows in the ideas table artifact: Prefect refuses events over 1.5 MB (a full-market day has ~10,000)."""
ARTIFACT_MAX_CHARS = 1_000_000
"""The markdown artifact's size limit, for the same reason."""


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def artifacts_task(settings: Settings, day: date, report_path: str | None = None) -> None:
    """The day's ideas as a table artifact and its summary as markdown, under stable keys so the
    Prefect UI shows their history night after night. The summary is embedded whole and links to
    nothing: the report's pages are files on the machine that ran the flow, not on the server, so
    their path is named as text."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from flows.warehouse import connect_read_only

    con = connect_read_only(settings.database)
    try:
        cursor = con.execute(
            "SELECT symbol, rule, direction, contract, premium_per_contract, trigger_text, target_text, stop_text, "
            "trigger_level, target, stop, risk_reward FROM idea_display "
            "WHERE trade_date = ? ORDER BY symbol, rule LIMIT ?", [day, ARTIFACT_MAX_IDEAS])
        names = [d[0] for d in cursor.description]
        ideas = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        (total,) = con.execute("SELECT count(*) FROM trade_ideas WHERE trade_date = ?", [day]).fetchall()[0]
        signals = con.execute("SELECT symbol, bias, bias_score, summary FROM signals_daily WHERE trade_date = ? "
                              "ORDER BY bias_score DESC, symbol", [day]).fetchall()
    finally:
        con.close()
    shown = f"the first {len(ideas):,} of {total:,} (by symbol; all in the todays_ideas view)" if total > len(ideas) \
        else f"{total:,}"
    create_table_artifact(key="chainsignals-trade-ideas", table=ideas,
                          description=f"chainsignals trade ideas for {day}: {shown}")
    counts = ", ".join(f"{b} {n}" for b, n in sorted(Counter(b for _, b, _, _ in signals).items()))
    lines = [f"# chainsignals {day}", "",
             f"report: `{report_path}` (on the machine that ran the flow)" if report_path else "report: not written",
             "", f"{len(signals):,} symbols; bias counts: {counts}; {total:,} trade ideas.", "",
             "| symbol | bias | score | summary |", "|---|---|---|---|"]
    lines += [f"| {s} | {b} | {score:+d} | {summary} |" for s, b, score, summary in signals]
    report_markdown = "\n".join(lines)
    if len(report_markdown) > ARTIFACT_MAX_CHARS:
        cut = report_markdown.rfind("\n", 0, ARTIFACT_MAX_CHARS)
        report_markdown = report_markdown[:cut] + "\n\n(truncated here; the report folder has the whole index)"
    create_markdown_artifact(key="chainsignals-daily-report", markdown=report_markdown,
                             description=f"chainsignals daily report for {day}")


def _run_records(run_id: str, flow_name: str, pending: pl.DataFrame, gold: StageStats) -> pl.DataFrame:
    """pipeline_runs rows: silver stats awaiting publication (this run's or a killed run's) + gold."""
    frame = gold.frame()
    if "run_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(run_id).alias("run_id"))
    gold_rows = frame.group_by("dataset", "trade_date").agg(  # shards: one row per table and date
        pl.col("rows_in", "rows_out", "rows_rejected").sum(), pl.col("started_at").min(),
        pl.col("finished_at").max(), pl.col("run_id").min())
    rows = pl.concat([pending, gold_rows], how="diagonal_relaxed")
    return rows.with_columns(
        pl.lit(str(flow_run.id) if flow_run.id else None, dtype=pl.String).alias("flow_run_id"),
        pl.lit(flow_name).alias("flow_name"),
        pl.lit("success").alias("status"),
    )


def _execute(settings: Settings, flow_name: str, target: date | None, start: date | None,
             force: bool, symbols: list[str] | None = None, shards: int = 1) -> RunSummary:
    logger = get_run_logger()
    run_id = _new_run_id()
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
                runlog.append(settings.warehouse, {"run_id": run_id, "flow": flow_name, "status": "skipped",
                                                   "date": target, "started_at": started, "finished_at": now_utc(),
                                                   "reason": reason})
                return RunSummary(run_id, flow_name, "skipped", reason=reason, flow_run_url=flow_run.ui_url or "")
            files, _ = ingest_task(settings, run_id, end, force)
            incomplete = None
            if flow_name == "nightly":
                if target is None:
                    target = latest_landing_session(settings)
                    if target is None:
                        raise RunError(f"no bars or chains in landing ({settings.landing})", file=settings.landing)
                    _name_run(f"nightly-{target}")
                dates = gold_sessions(settings, target, target)
                if not dates:
                    raise RunError(f"no bars for {target} in landing ({settings.landing})", date=target,
                                   dataset="bars")
                incomplete = short_chain(Lake(settings.lake), target, settings.min_chain_share)
                if incomplete and settings.on_short_chain == "fail":
                    raise RunError(f"{incomplete} ([ingest] on_short_chain = \"fail\")", date=target, dataset="chains")
                # Sessions a failed run ingested after the last computed one are computed with this one.
                lake = Lake(settings.lake)
                if lake.dates("gold", "technicals_daily"):
                    dates = sorted({*dates, *(d for d in uncomputed_sessions(lake) if d < target)})
            else:
                dates = gold_sessions(settings, start, end)
                if not dates:
                    raise RunError(f"no sessions with bars between {start} and {end}", dataset="bars")
            counts, gold_stats = _gold(settings, dates, symbols, shards, run_id, force)
            lake = Lake(settings.lake)
            pending = pending_stats(lake)
            runs = _run_records(run_id, flow_name, pending, gold_stats)
            loaded = publish_task(settings, dates, runs, run_id)
            clear_pending_stats(lake)
            stale = _stale_warning(stale_gold_sessions(lake, pending, dates))
            # The day is published: what follows only presents it. A failure there is a warning on a run
            # that succeeded (the warehouse has the day), not a failed run to re-run for nothing.
            report, warnings = _after_publish(settings, dates[-1])
            arriving = [f"{name} is still being written: left for the next run" for name in files["unsettled"]]
            chain = [incomplete] if flow_name == "nightly" and incomplete else []
            for line in chain:
                logger.warning(line)
            warnings = files["warnings"] + arriving + chain + stale + ([wal_warning] if wal_warning else []) + warnings
    except WarehouseBusy:
        raise  # another run's warehouse: refused, not a run of this one
    except BaseException as exc:
        if not journal_path(settings.warehouse).exists():  # not decided: its staged gold goes
            GoldStagedLake(settings.lake, run_id=run_id).discard()
        named = _name_bad_lake_files(settings, exc)
        # Ctrl-C and SIGTERM stop a run, not fail it (in a flow run Prefect turns SIGTERM into its
        # TerminationSignal; outside one flows.launcher raises it as a KeyboardInterrupt).
        status = "interrupted" if isinstance(exc, (KeyboardInterrupt, TerminationSignal)) else "failed"
        runlog.append(settings.warehouse, {"run_id": run_id, "flow": flow_name, "status": status,
                                           "date": target, "start": start, "started_at": started,
                                           "finished_at": now_utc(), "error": _one_line(named or exc)})
        if named is not None:
            raise named from exc
        raise
    summary = RunSummary(run_id, flow_name, "success", dates, files["files_read"], files["files_skipped"],
                         len(files["hidden"]), {t: sum(c.values()) for t, c in counts.items()},
                         report=str(report.html) if report else "", flow_run_url=flow_run.ui_url or "",
                         warnings=warnings)
    # The inputs a whole-universe run computed from: the next run with the same ones has nothing to do
    # (flows/precheck.py answers it before Prefect starts).
    inputs = {"inputs": run_inputs_fingerprint(settings)} if not symbols else {}
    runlog.append(settings.warehouse, {"run_id": run_id, "flow": flow_name, "status": "success",
                                       "dates": [dates[0], dates[-1]], "started_at": started,
                                       "finished_at": now_utc(), "rows": loaded, **inputs,
                                       "files": {"read": files["files_read"], "unchanged": files["files_skipped"],
                                                 "hidden": len(files["hidden"])},
                                       **({"warnings": warnings} if warnings else {})})
    logger.info("%s %s: %s", flow_name, run_id, summary.rows)
    return summary


def _name_bad_lake_files(settings: Settings, exc: BaseException) -> Exception | None:
    """A lake file that does not read fails a scan of many files with polars' message alone ("expected
    parquet magic bytes"): the lake's recorded sha256 find which file it was."""
    if not isinstance(exc, pl.exceptions.PolarsError):
        return None
    from flows.lake import verify_lake

    _, problems = verify_lake(Lake(settings.lake))
    if not problems:
        return None
    return RunError(f"{_one_line(exc)}; the lake file(s) that no longer match their commit: "
                    + "; ".join(problems))


def _stale_warning(stale: list[date]) -> list[str]:
    """The sessions a re-delivered or back-dated file left computed from the data before it. Not
    recomputed here: a bar corrected a year back reaches a year of technicals, which is a backfill's work,
    not a night's. The operator decides; the warning says how."""
    if not stale:
        return []
    sessions = f"{stale[0]}" if len(stale) == 1 else f"{len(stale)} sessions from {stale[0]} to {stale[-1]}"
    line = (f"the gold of {sessions}, computed earlier, depends on data this run replaced and still shows the "
            f"data before it: `chainsignals backfill --start {stale[0]} --end {stale[-1]}` recomputes it")
    get_run_logger().warning(line)
    return [line]


def _after_publish(settings: Settings, day: date):
    """The day's report, then its Prefect artifacts; each failure becomes a warning line."""
    logger = get_run_logger()
    warnings = []
    report_state = report_task(settings, day, return_state=True)
    report = None
    if report_state.is_failed():
        warnings.append(f"report for {day} not written: {_one_line(report_state.result(raise_on_failure=False))}")
    else:
        report = report_state.result()
    artifacts_state = artifacts_task(settings, day, str(report.html) if report else None, return_state=True)
    if artifacts_state.is_failed():
        warnings.append(f"Prefect artifacts for {day} not published: "
                        f"{_one_line(artifacts_state.result(raise_on_failure=False))}")
    for line in warnings:
        logger.warning("%s (the warehouse has the day)", line)
    return report, warnings


def _name_run(name: str) -> None:
    """Rename this flow run once its session is known (a run for "the latest session" starts unnamed)."""
    if not flow_run.id:
        return
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name)
    except Exception as exc:  # noqa: BLE001 - a name is for people: the run goes on without it
        get_run_logger().warning("flow run not renamed to %s: %s", name, _one_line(exc))


def _nightly_run_name() -> str:
    """nightly-<session>: the runs of a night are found by date in the Prefect UI."""
    parameters = flow_run.parameters
    day = parameters.get("date")
    if day is None and parameters.get("default_date") == "today":
        day = dt.datetime.now(ZoneInfo("America/New_York")).date()
    return f"nightly-{day or 'latest'}"


def _backfill_run_name() -> str:
    parameters = flow_run.parameters
    return f"backfill-{parameters.get('start')}..{parameters.get('end')}"


def _final_state(summary: RunSummary):
    """A skip is its own state in the Prefect UI ("Skipped", with the reason), not a plain Completed."""
    if summary.status != "skipped":
        return summary
    from prefect.states import Completed

    return Completed(name="Skipped", message=summary.reason, data=summary)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _settings(warehouse: str | None, landing: str | None, config: str | None, lake: str | None) -> Settings:
    return load_settings(config, warehouse=warehouse, landing=landing, lake=lake)


@flow(name="nightly", log_prints=True, flow_run_name=_nightly_run_name)
def nightly(date: dt.date | None = None, symbols: list[str] | None = None, source: str = "files",
            warehouse: str | None = None, landing: str | None = None, config: str | None = None,
            force: bool = False, default_date: str = "latest", shards: int = 1,
            lake: str | None = None) -> RunSummary:
    """Ingest whatever is new in landing and compute one session.

    date: the session; without it, default_date decides: "latest" (the latest session in landing) or
    "today" (today in New York: what a scheduled run wants, so a holiday is skipped, not re-run).
    source: "files" reads landing as it is; "demo" first writes the demo market into landing.
    symbols: recompute only these underlyings (merged into the day's tables); default all of landing.
    shards: split the gold stage into this many hash shards of underlyings, one task each (run them on
    a Dask cluster with nightly.with_options(task_runner=DaskTaskRunner(...)): see with_dask()).
    lake: the lake's folder or object-storage URL (default: the config's, else <warehouse>/lake).
    """
    settings = _settings(warehouse, landing, config, lake)
    symbols = _checked_symbols(symbols)
    if date is None and default_date == "today":
        date = dt.datetime.now(ZoneInfo("America/New_York")).date()
    elif date is None and default_date != "latest":
        raise ValueError(f"default_date must be 'latest' or 'today', not {default_date!r}")
    if source == "demo":
        from flows.demo import generate_demo_market

        generate_demo_market(settings.landing, chain_sessions=30)
    elif source != "files":
        raise ValueError(f"unknown source {source!r} (files | demo)")
    return _final_state(_execute(settings, "nightly", date, None, force, symbols, shards))


def _checked_symbols(symbols: list[str] | None) -> list[str] | None:
    """Symbols reach paths and SQL: anything outside the strict pattern is refused, not cleaned."""
    return checked_symbols(symbols) if symbols else None


@flow(name="backfill", log_prints=True, flow_run_name=_backfill_run_name)
def backfill(start: date, end: date, warehouse: str | None = None, landing: str | None = None,
             config: str | None = None, force: bool = False, shards: int = 1,
             lake: str | None = None) -> RunSummary:
    """Every session in [start, end] in one pass per stage (not a loop of nightly runs)."""
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}")
    return _execute(_settings(warehouse, landing, config, lake), "backfill", end, start, force, None, shards)


def with_dask(flow_fn, workers: int | None = None, address: str | None = None):
    """The flow with its tasks on Dask: a local cluster of `workers` processes, or an existing one."""
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers or 2, "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": None})
    return flow_fn.with_options(task_runner=runner)


__all__ = ["RunSummary", "backfill", "nightly"]

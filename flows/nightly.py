"""Prefect flows: `nightly` (one session) and `backfill` (a range in one pass per stage).

Each stage is one task over all symbols at once. Tasks return small summaries, never frames: the
data lives in the lake. Works with no Prefect server (ephemeral) or against one via PREFECT_API_URL.
"""

from __future__ import annotations

import datetime as dt
import errno
from datetime import date
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run

from flows.config import Settings, load_settings
from flows.sources.files import SourceError
from flows.stages.gold import build_gold, finish_shards, shard_part
from flows.stages.ingest import ingest_and_validate
from flows.stages.progress import stage
from flows.stages.run import (
    RunError,
    RunSummary,
    Steps,
    ingest_summary,
    one_line,
    publish_staged,
    report_symbols,
    run_stages,
    write_day_report,
)
from flows.stages.sessions import StageStats
from flows.storage.fingerprints import (
    CACHE_EXPIRATION,
    outputs_fingerprint,
    result_storage,
    stage_key,
)
from schemas.checks import checked_symbols
from schemas.gold import GOLD_TABLES


def _source_may_recover(task, task_run, state) -> bool:
    """Retry reads that can succeed later (I/O errors, a file still being copied), not bad data."""
    error = state.data
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:  # a full disk stays full for seconds
        return False
    return isinstance(error, OSError) or (isinstance(error, SourceError) and error.transient)


@task(
    name="ingest-and-validate",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_source_may_recover,
    cache_policy=NO_CACHE,
)
def ingest_task(settings: Settings, run_id: str, end: date | None, force: bool) -> tuple[dict, StageStats]:
    """Landing -> bronze -> silver. Retried: landing files may still be arriving (partial copies)."""
    with stage("ingest and validate landing files"):
        result, stats = ingest_and_validate(settings, run_id, end=end, force=force)
    get_run_logger().info(
        "ingested %d file(s), %d unchanged, %d hidden skipped; dates touched: %s",
        result.files_read,
        result.files_skipped,
        len(result.hidden),
        {k: len(v) for k, v in result.touched.items()},
    )
    for line in result.warnings:
        get_run_logger().warning(line)
    for name in result.unsettled:
        get_run_logger().warning("%s is still being written: left for the next run", name)
    return ingest_summary(result), stats


GoldResult = tuple[dict[str, dict[date, int]], StageStats, dict[str, list[int]]]
"""Rows per table and date, their pipeline_runs stats, and the files written (to validate a cache hit)."""


def _gold_key(context, inputs: dict) -> str:
    return stage_key("build-gold", inputs["settings"], dates=inputs["dates"], symbols=inputs["symbols"])


def _gold_shard_key(context, inputs: dict) -> str:
    return stage_key(
        "build-gold-shard",
        inputs["settings"],
        dates=inputs["dates"],
        index=inputs["index"],
        shards=inputs["shards"],
    )


@task(name="build-gold", cache_key_fn=_gold_key, cache_expiration=CACHE_EXPIRATION, persist_result=True)
def gold_task(settings: Settings, dates: list[date], symbols: list[str] | None, run_id: str) -> GoldResult:
    """The gold tables staged under `run_id` (the publish commits them); run_id is not in the cache
    key: a cached result stands for the files as the lake holds them once committed."""
    stats = StageStats()
    with stage(f"compute gold tables for {len(dates)} session(s)"):
        counts = build_gold(settings, dates, stats, symbols, run_id=run_id)
    _computed_by(stats, run_id)
    return counts, stats, outputs_fingerprint(settings, GOLD_TABLES, dates, run_id=run_id)


@task(
    name="build-gold-shard",
    cache_key_fn=_gold_shard_key,
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
def gold_shard_task(
    settings: Settings, dates: list[date], index: int, shards: int, run_id: str
) -> GoldResult:
    """One shard's underlyings (hashed) for every gold table; runs wherever the task runner puts it."""
    stats = StageStats()
    counts = build_gold(settings, dates, stats, shard=(index, shards), run_id=run_id)
    _computed_by(stats, run_id)
    return (
        counts,
        stats,
        outputs_fingerprint(settings, GOLD_TABLES, dates, part=shard_part(index, shards), run_id=run_id),
    )


def _computed_by(stats: StageStats, run_id: str) -> None:
    """Gold stats name the run that computed them: a later run reusing the cached result (a publish
    finished after a kill) records no second copy of them in pipeline_runs."""
    for row in stats.rows:
        row["run_id"] = run_id


def _cached_gold(
    gold, settings: Settings, force: bool, parts: list[str | None], calls: list[tuple], run_id: str
) -> list[GoldResult]:
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
                logger.info(
                    "%s: same inputs as a finished run, its gold files intact: result reused", gold.name
                )
        results.append(result)
    return results


def _gold(
    settings: Settings,
    dates: list[date],
    symbols: list[str] | None,
    shards: int,
    run_id: str,
    force: bool = False,
) -> tuple[dict[str, dict[date, int]], StageStats]:
    if shards <= 1:
        (result,) = _cached_gold(gold_task, settings, force, [None], [(dates, symbols, run_id)], run_id)
        return result[0], result[1]
    if symbols:
        raise RunError("symbols and shards do not combine: a shard is a hash of all underlyings")
    with stage(f"compute gold tables for {len(dates)} session(s) in {shards} shards"):
        results = _cached_gold(
            gold_shard_task,
            settings,
            force,
            [shard_part(i, shards) for i in range(shards)],
            [(dates, i, shards, run_id) for i in range(shards)],
            run_id,
        )
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
        return publish_staged(settings, dates, runs, run_id)


@task(name="write-report", cache_policy=NO_CACHE)
def report_task(settings: Settings, day: date):
    """The day's Markdown and HTML pages under <warehouse>/reports/<day>/, from the published warehouse."""
    with stage(f"write the {day} report"):
        return write_day_report(settings, day)


ARTIFACT_TOP = 100
"""Ideas in the table artifact and signals in the markdown one, the best first: a full-market day's 10,000
ideas and 5,000 symbols read nowhere in the Prefect UI (and pass its 1.5 MB event limit)."""


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def artifacts_task(settings: Settings, day: date, report_path: str | None = None) -> None:
    """The day in brief (flows/report/summary.py, what the CLI prints) as Prefect artifacts under stable keys,
    so the UI shows their history night after night: the best ideas as a table, the counts and the
    strongest signals as markdown. The markdown links to nothing: the report's pages are files on the
    machine that ran the flow, not on the server, so their path is named as text."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from flows.report.summary import IDEAS_ORDER, SIGNALS_ORDER, day_summary, shown

    brief = day_summary(settings.database, day, ARTIFACT_TOP)
    create_table_artifact(
        key="chainsignals-trade-ideas",
        table=brief.ideas,
        description=shown(f"chainsignals trade ideas for {day}", len(brief.ideas), brief.n_ideas, IDEAS_ORDER)
        + "; all in the todays_ideas view",
    )
    counts = ", ".join(f"{bias} {n:,}" for bias, n in brief.by_bias)
    rules = ", ".join(f"{rule} {direction} {n:,}" for rule, direction, n in brief.by_rule)
    lines = [
        f"# chainsignals {day}",
        "",
        f"report: `{report_path}` (on the machine that ran the flow)"
        if report_path
        else "report: not written",
        "",
        f"{brief.n_signals:,} symbols: {counts}; {brief.n_ideas:,} trade ideas"
        + (f": {rules}." if rules else "."),
        "",
        shown("Signals", len(brief.signals), brief.n_signals, SIGNALS_ORDER)
        + ("; all in signals_daily." if len(brief.signals) < brief.n_signals else "."),
        "",
        "| symbol | bias | score | summary |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {s['symbol']} | {s['bias']} | {s['bias_score']:+d} | {s['summary']} |" for s in brief.signals
    ]
    create_markdown_artifact(
        key="chainsignals-daily-report",
        markdown="\n".join(lines),
        description=f"chainsignals daily report for {day}",
    )


def _after_publish(settings: Settings, day: date, logger):
    """The day's report, then its Prefect artifacts; each failure becomes a warning line."""
    warnings = []
    report_state = report_task(settings, day, return_state=True)
    report = None
    if report_state.is_failed():
        warnings.append(
            f"report for {day} not written: {one_line(report_state.result(raise_on_failure=False))}"
        )
    else:
        report = report_state.result()
    artifacts_state = artifacts_task(settings, day, str(report.html) if report else None, return_state=True)
    if artifacts_state.is_failed():
        warnings.append(
            f"Prefect artifacts for {day} not published: "
            f"{one_line(artifacts_state.result(raise_on_failure=False))}"
        )
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
    except Exception as exc:
        get_run_logger().warning("flow run not renamed to %s: %s", name, one_line(exc))


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


PREFECT_STEPS = Steps(
    ingest=ingest_task,
    gold=_gold,
    publish=publish_task,
    present=_after_publish,
    logger=get_run_logger,
    flow_run_id=lambda: str(flow_run.id) if flow_run.id else None,
    flow_run_url=lambda: flow_run.ui_url or "",
    name_run=_name_run,
    interrupts=(KeyboardInterrupt, TerminationSignal),
)
"""The run's stages as this module's Prefect tasks."""


def _execute(
    settings: Settings,
    flow_name: str,
    target: date | None,
    start: date | None,
    force: bool,
    symbols: list[str] | None = None,
    shards: int = 1,
) -> RunSummary:
    return run_stages(settings, flow_name, target, start, force, symbols, shards, steps=PREFECT_STEPS)


def _settings(warehouse: str | None, landing: str | None, config: str | None, lake: str | None) -> Settings:
    return load_settings(config, warehouse=warehouse, landing=landing, lake=lake)


@flow(name="nightly", log_prints=True, flow_run_name=_nightly_run_name)
def nightly(
    date: dt.date | None = None,
    symbols: list[str] | None = None,
    source: str = "files",
    warehouse: str | None = None,
    landing: str | None = None,
    config: str | None = None,
    force: bool = False,
    default_date: str = "latest",
    shards: int = 1,
    lake: str | None = None,
) -> RunSummary:
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
        raise RunError(f"default_date must be 'latest' or 'today', not {default_date!r}")
    if source == "demo":
        from flows.market.simulator import generate_demo_market

        generate_demo_market(settings.landing, chain_sessions=30)
    elif source != "files":
        raise RunError(f"unknown source {source!r} (files | demo)")
    return _final_state(_execute(settings, "nightly", date, None, force, symbols, shards))


def _checked_symbols(symbols: list[str] | None) -> list[str] | None:
    """Symbols reach paths and SQL: anything outside the strict pattern is refused, not cleaned."""
    return checked_symbols(symbols) if symbols else None


@flow(name="backfill", log_prints=True, flow_run_name=_backfill_run_name)
def backfill(
    start: date,
    end: date,
    warehouse: str | None = None,
    landing: str | None = None,
    config: str | None = None,
    force: bool = False,
    shards: int = 1,
    lake: str | None = None,
) -> RunSummary:
    """Every session in [start, end] in one pass per stage (not a loop of nightly runs)."""
    if end < start:
        raise RunError(f"backfill end {end} is before start {start}")
    return _execute(_settings(warehouse, landing, config, lake), "backfill", end, start, force, None, shards)


def with_dask(flow_fn, workers: int | None = None, address: str | None = None):
    """The flow with its tasks on Dask: a local cluster of `workers` processes, or an existing one."""
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers or 2,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return flow_fn.with_options(task_runner=runner)


__all__ = ["RunSummary", "backfill", "nightly", "report_symbols"]

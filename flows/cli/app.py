"""The `chainsignals` command line (Typer + Rich)."""

from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

app = typer.Typer(
    name="chainsignals",
    help="Nightly options positioning: option chains and daily bars to a Parquet lake, a DuckDB "
    "warehouse, a daily bias and trade ideas.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped or captured output (CI logs, cron mail) gets a wide console instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

Warehouse = Annotated[
    Path | None,
    typer.Option("--warehouse", "-w", help="Data root (lake/, signals.duckdb).", show_default=False),
]
Landing = Annotated[
    Path | None,
    typer.Option("--landing", "-l", help="Landing folder (default <warehouse>/landing).", show_default=False),
]
LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake",
        help="The lake: a folder or an object-storage URL (s3://bucket/prefix; default <warehouse>/lake).",
        show_default=False,
    ),
]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default chainsignals.toml).", show_default=False),
]
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=0,
        help="Run the gold stage on a local Dask cluster of N worker "
        "processes, in N hash shards of underlyings (0: in this process).",
    ),
]
DaskAddress = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Use an existing Dask scheduler (tcp://host:8786); shards = --workers or 4.",
        show_default=False,
    ),
]


def _flow_for(flow_fn, workers: int, dask_address: str | None):
    """The flow as given, or on Dask; and how many shards to cut the gold stage into."""
    if not workers and not dask_address:
        return flow_fn, 1
    from flows.nightly import with_dask

    return with_dask(flow_fn, workers=workers or None, address=dask_address), workers or 4


# Sessions the exchange calendar and the pipeline's date arithmetic can take (a date near 9999-12-31
# overflows the calendar's timestamps: a usage error, not a failed run).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{_safe(value)!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise typer.BadParameter(f"{day} is outside the dates a run can take ({FIRST_DAY}..{LAST_DAY})")
    return day


def _symbols(value: str | None) -> list[str] | None:
    """--symbols checked before Prefect starts: a typo is a usage error, not a failed flow run."""
    listed = [s for s in (value or "").split(",") if s.strip()]
    if not listed:
        return None
    from schemas.checks import checked_symbols  # pandera: a second and more to import, only when needed

    try:
        return checked_symbols(listed) if listed else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--symbols") from None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: object) -> str:
    """Control characters (a file named with an escape sequence) shown as \\xNN, never sent raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _safe(text: object) -> str:
    """Text from files, paths and errors inside Rich markup: shown as it is ([final], ^{0,62}$)."""
    return escape(_visible(text))


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {_safe(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _prefect_server() -> str | None:
    """The operator's Prefect server (PREFECT_API_URL), not the temporary one the launcher started."""
    from flows.cli.launcher import temporary_server

    return None if temporary_server() else os.environ.get("PREFECT_API_URL")


def _quiet_prefect() -> None:
    # The CLI shows its own progress, so Prefect's console handler keeps to warnings; the loggers stay at
    # Prefect's INFO so a server's flow-run page has the night's log (the API handler takes every level).
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.cli.launcher import STARTUP_TIMEOUT_SECONDS, STARTUP_TIMEOUT_VARIABLE, temporary_server

    server = temporary_server()
    if server:  # started by the launcher; booting since the process began
        # Prefect and the pipeline import (seconds of CPU) on this core while the server boots on the other.
        import flows.nightly  # noqa: F401

        _run_failures_left_to_the_cli()
        _guarded(server.wait_ready, float(os.environ.get(STARTUP_TIMEOUT_VARIABLE, STARTUP_TIMEOUT_SECONDS)))
        return
    if not os.environ.get("PREFECT_API_URL"):
        # Prefect starts its own temporary server, which lives for this one run; stopped when it ends, it
        # logs the events still in flight as a traceback after the run succeeded. Its own errors do not
        # decide the run's outcome.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        from flows.cli.launcher import server_dies_with_cli

        server_dies_with_cli()
    _run_failures_left_to_the_cli()


@contextmanager
def _holding_the_lock(settings):
    """The warehouse lock, taken before Prefect starts: a second run is refused at once, in one line
    (exit 75, EX_TEMPFAIL: try later), and records no failed run. The flow takes it again (re-entrant
    in this process)."""
    from flows.storage.warehouse import WarehouseBusy, warehouse_lock

    try:
        lock = warehouse_lock(settings.warehouse, for_this_process=True)
        lock.__enter__()
    except WarehouseBusy as exc:
        _fail(f"{_one_line(exc)}: not started", 75)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


class _RunFailuresLeftToTheCLI(logging.Filter):
    """Drops a failed flow or task run's console record (a traceback each): the CLI says why in one line.
    The record still reaches the Prefect API log (the UI of a server), and CHAINSIGNALS_DEBUG keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not record.name.startswith(
            ("prefect.flow_runs", "prefect.task_runs")
        )


def _run_failures_left_to_the_cli() -> None:
    if os.environ.get("CHAINSIGNALS_DEBUG"):
        return
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()  # with the level above; a later set-up is incremental and keeps the handlers
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _RunFailuresLeftToTheCLI) for f in handler.filters
        ):
            handler.addFilter(_RunFailuresLeftToTheCLI())


def _run_with_progress(label: str, fn, *args, **kwargs):
    from flows.stages.progress import set_reporter

    if not err.is_terminal:
        return _run_with_progress_lines(label, fn, *args, **kwargs)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=not err.is_terminal,
    ) as progress:
        tasks: dict[str, int] = {}

        def report(description: str, finished: bool) -> None:
            if description not in tasks:
                tasks[description] = progress.add_task(description, total=1)
            if finished:
                progress.update(tasks[description], completed=1)

        def counter(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = progress.add_task(description, total=total)
            progress.update(
                tasks[description], description=f"{description} {done}/{total}", completed=done, total=total
            )

        set_reporter(report, counter)
        overall = progress.add_task(label, total=None)
        try:
            return fn(*args, **kwargs)
        finally:
            progress.update(overall, total=1, completed=1)
            set_reporter(None)


def _run_with_progress_lines(label: str, fn, *args, **kwargs):
    """Progress as timestamped lines, for a log file or cron mail (a Rich display draws nothing there until
    the end): one when a stage starts, one when it ends with its duration, and counts (sessions i/N)."""
    import time

    from flows.stages.progress import set_reporter

    started: dict[str, float] = {}

    def line(text: str) -> None:
        err.print(f"{time.strftime('%H:%M:%S')} {text}", highlight=False, markup=False, soft_wrap=True)

    def report(description: str, finished: bool) -> None:
        if finished:
            line(
                f"{description}: done in {time.monotonic() - started.pop(description, time.monotonic()):.1f} s"
            )
        else:
            started[description] = time.monotonic()
            line(f"{description} ...")

    def counter(description: str, done: int, total: int) -> None:
        line(f"{description} {done}/{total}")

    first = time.monotonic()
    server = "the Prefect server" if _prefect_server() else "a temporary Prefect server"
    line(f"{label}: starting on {server}")
    set_reporter(report, counter)
    try:
        return fn(*args, **kwargs)
    finally:
        set_reporter(None)
        line(f"{label}: finished in {time.monotonic() - first:.1f} s")


def _guarded(fn, *args, **kwargs):
    """Run a pipeline call; any failure becomes one line on stderr and exit code 1; SIGINT or SIGTERM
    one line and 130 or 143 (the shell's codes for them). A failure the code names (a ChainsignalsError,
    an OSError such as a full disk) is its reason; anything else is a bug, and the line also says where
    its traceback is."""
    from flows.cli.launcher import Terminated
    from flows.config import ConfigError
    from flows.errors import ChainsignalsError

    try:
        return fn(*args, **kwargs)
    except (typer.Exit, typer.BadParameter):
        raise
    except KeyboardInterrupt as exc:
        _record_interrupt(kwargs, exc)
        _fail(
            f"interrupted ({'SIGTERM' if isinstance(exc, Terminated) else 'SIGINT'}): the run is recorded as "
            "interrupted; nothing it had not committed is visible",
            143 if isinstance(exc, Terminated) else 130,
        )
    except ConfigError as exc:
        _fail(_one_line(exc), 2)
    except (ChainsignalsError, OSError) as exc:
        if os.environ.get("CHAINSIGNALS_DEBUG"):
            raise
        _fail(_one_line(exc))
    except Exception as exc:  # a bug: still one line, its traceback kept for whoever fixes it
        if os.environ.get("CHAINSIGNALS_DEBUG"):
            raise
        _fail(f"{_one_line(exc)} ({type(exc).__name__}, unexpected: {_traceback_kept(exc)})")


def _traceback_kept(exc: BaseException) -> str:
    """Where the traceback of an unexpected failure is: a file written for it (a cron job's one line
    cannot be re-run with CHAINSIGNALS_DEBUG=1 after the fact)."""
    import tempfile
    import traceback

    unkept = "CHAINSIGNALS_DEBUG=1 shows the traceback"
    try:
        handle, name = tempfile.mkstemp(prefix="chainsignals-", suffix=".traceback")
    except OSError:
        return unkept
    try:
        with os.fdopen(handle, "w") as out:
            out.write("".join(traceback.format_exception(exc)))
    except OSError:  # a full disk: no half-written file left behind
        Path(name).unlink(missing_ok=True)
        return unkept
    return f"traceback in {name}"


def _record_interrupt(flow_kwargs: dict, exc: BaseException) -> None:
    """A signal before the flow's own bookkeeping began (Prefect still starting): the run log still
    says a run was interrupted."""
    from flows.sources.files import now_utc
    from flows.storage import runlog

    if flow_kwargs.get("warehouse") and not runlog.APPENDED:
        runlog.append(
            Path(flow_kwargs["warehouse"]),
            {
                "run_id": None,
                "flow": "backfill" if "start" in flow_kwargs else "nightly",
                "status": "interrupted",
                "date": flow_kwargs.get("date") or flow_kwargs.get("end"),
                "finished_at": now_utc(),
                "error": f"{_one_line(exc)} before the run began",
            },
        )


def _settings(warehouse: Path | None, landing: Path | None, config: Path | None, lake: str | None = None):
    from flows.config import ConfigError, load_settings

    try:
        return load_settings(config, warehouse=warehouse, landing=landing, lake=lake)
    except ConfigError as exc:
        _fail(_one_line(exc), 2)


@app.command()
def run(
    date_: Annotated[
        str | None, typer.Option("--date", "-d", help="Session to compute (default: the latest in landing).")
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Comma-separated underlyings to recompute (default: all in landing)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-ingest landing files even when unchanged.")] = False,
    workers: Workers = 0,
    dask_address: DaskAddress = None,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Ingest what is new in landing and compute one session."""
    settings = _settings(warehouse, landing, config, lake)
    target = _day(date_)
    if symbols and (workers or dask_address):
        _fail("--symbols and --workers/--dask-address do not combine: shards split all underlyings", 2)
    with _holding_the_lock(settings):
        symbol_list = _symbols(symbols)
        if _answered_before_prefect(settings, target, force, symbol_list):
            return
        if not workers and not dask_address:  # the ingest task then runs in this process
            from flows.stages.ingest import start_read_ahead

            start_read_ahead(settings, force)  # while Prefect imports and its server starts
        _quiet_prefect()
        from flows.nightly import nightly

        flow_fn, shards = _flow_for(nightly, workers, dask_address)
        summary = _guarded(
            _run_with_progress,
            f"nightly {target or 'latest'}",
            flow_fn,
            date=target,
            symbols=symbol_list,
            warehouse=str(settings.warehouse),
            landing=str(settings.landing),
            config=str(settings.config_file),
            lake=settings.lake_location or None,
            force=force,
            shards=shards,
        )
    if summary.status == "skipped":
        console.print(f"skipped: {_safe(summary.reason)}", highlight=False)
        _print_flow_run(summary)
        return
    _print_summary(summary)
    _print_day(settings, summary.dates[-1])
    _print_report(summary)
    _print_flow_run(summary)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First session (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--end", help="Last session (YYYY-MM-DD).")],
    force: Annotated[bool, typer.Option(help="Re-ingest landing files even when unchanged.")] = False,
    workers: Workers = 0,
    dask_address: DaskAddress = None,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Compute every session from --start to --end, both included, in one pass per stage."""
    settings = _settings(warehouse, landing, config, lake)
    first, last = _day(start), _day(end)
    if last < first:
        _fail(f"--end {last} is before --start {first}", 2)
    with _holding_the_lock(settings):
        _quiet_prefect()
        from flows.nightly import backfill as backfill_flow

        flow_fn, shards = _flow_for(backfill_flow, workers, dask_address)
        summary = _guarded(
            _run_with_progress,
            f"backfill {first}..{last}",
            flow_fn,
            start=first,
            end=last,
            warehouse=str(settings.warehouse),
            landing=str(settings.landing),
            config=str(settings.config_file),
            lake=settings.lake_location or None,
            force=force,
            shards=shards,
        )
    _print_summary(summary)
    _print_flow_run(summary)


@app.command()
def demo(
    sessions: Annotated[
        int, typer.Option(min=1, max=5_000, help="Sessions of bars to generate (20 years at most).")
    ] = 320,
    chain_sessions: Annotated[
        int, typer.Option(min=1, help="Sessions with option chains (the last ones).")
    ] = 30,
    scale: Annotated[
        bool,
        typer.Option(
            "--scale",
            help="Write the full-market day (about 5,000 underlyings, "
            "2 million contracts) instead, for benchmarks; no run.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic market.")] = 7,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Write the demo market into landing, backfill its chain sessions, print the last day."""
    settings = _settings(warehouse, landing, config, lake)
    from flows.market.simulator import generate_demo_market, generate_full_market_day

    if scale:
        summary = _guarded(
            _run_with_progress,
            "writing the full-market day",
            generate_full_market_day,
            settings.landing,
            sessions=min(sessions, 300),
            seed=seed,
        )
        console.print(f"full-market day written to {settings.landing}: {summary}")
        return
    market = _guarded(
        _run_with_progress,
        "writing the demo market",
        generate_demo_market,
        settings.landing,
        sessions=sessions,
        chain_sessions=chain_sessions,
        seed=seed,
    )
    days = market.sessions[-chain_sessions:]
    _quiet_prefect()
    from flows.nightly import backfill as backfill_flow

    summary = _guarded(
        _run_with_progress,
        f"backfill {days[0]}..{days[-1]}",
        backfill_flow,
        start=days[0],
        end=days[-1],
        warehouse=str(settings.warehouse),
        landing=str(settings.landing),
        config=str(settings.config_file),
        lake=settings.lake_location or None,
    )
    _print_summary(summary)
    _print_day(settings, summary.dates[-1])
    _print_report(summary)


@app.command()
def report(
    date_: Annotated[
        str | None, typer.Option("--date", "-d", help="Session (default: the latest in the warehouse).")
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", "-s", help="Only this symbol (repeatable).")
    ] = None,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Write the day's Markdown and HTML report (per symbol and an index) under <warehouse>/reports/."""
    settings = _settings(warehouse, landing, config, lake)
    from flows.report.build import write_report
    from flows.storage.warehouse import connect_read_only

    day = _day(date_)
    if day is None:
        if not settings.database.exists():
            _fail(f"no warehouse at {settings.database}: run `chainsignals run` first")
        con = connect_read_only(settings.database)
        try:
            day = con.execute("SELECT max(trade_date) FROM signals_daily").fetchall()[0][0]
        finally:
            con.close()
    index = _guarded(write_report, settings.database, settings.lake, settings.reports, day, symbol or None)
    console.print(f"report {day}: {len(index.reports)} symbol page(s)\n{_safe(index.html)}", highlight=False)


@app.command()
def serve(
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Serve the nightly deployment of prefect.yaml (weekdays 18:30 New York) until stopped."""
    settings = _settings(warehouse, landing, config, lake)
    from flows.deployment import deployment_spec, serve_nightly

    spec = deployment_spec("nightly")
    for schedule in spec.get("schedules", []):
        console.print(
            f"serving nightly: cron '{schedule['cron']}' ({schedule.get('timezone', 'UTC')}), "
            f"warehouse {settings.warehouse}, landing {settings.landing}"
        )
    _guarded(
        serve_nightly,
        {
            "warehouse": str(settings.warehouse),
            "landing": str(settings.landing),
            "config": str(settings.config_file),
            "lake": settings.lake_location or None,
        },
    )


@app.command()
def status(
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
    verify_files: Annotated[
        bool,
        typer.Option("--verify", help="Also check every committed lake file against its recorded sha256."),
    ] = False,
) -> None:
    """What the warehouse holds and how the last runs went."""
    settings = _settings(warehouse, landing, config, lake)
    # Whatever the files look like (a truncated partition, an analyst's WAL), status says so in a line.
    failed = _guarded(_status, settings)
    if verify_files and not _guarded(_verify, settings):
        failed = True
    if failed:
        raise typer.Exit(1)


def _status(settings) -> bool:
    """Print the status; True when the last run failed."""
    from flows.stages.sessions import uncomputed_sessions
    from flows.storage import runlog
    from flows.storage.lake import Lake, journal_path, read_manifest

    console.print(
        f"warehouse  {_safe(settings.warehouse)}\nlanding    {_safe(settings.landing)}\n"
        f"lake       {_safe(settings.lake)}",
        highlight=False,
    )
    lake = Lake(settings.lake)
    table = Table("layer", "dataset", "partitions", "first", "last", title="lake")
    manifest = read_manifest(lake)
    for layer in ("bronze", "silver", "quarantine", "gold"):
        folder = settings.lake / layer
        for dataset in sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
            if layer == "bronze":  # raw files by content: the sessions they hold are in the manifest
                days = sorted(
                    {
                        d
                        for name, held in manifest.select("dataset", "dates").iter_rows()
                        if name == dataset
                        for d in held or []
                    }
                )
            else:
                days = lake.dates(layer, dataset)
            table.add_row(
                layer, dataset, str(len(days)), str(days[0]) if days else "-", str(days[-1]) if days else "-"
            )
    console.print(table if table.row_count else "lake: empty")
    waiting = uncomputed_sessions(lake)
    if waiting:
        span = (
            str(waiting[0]) if len(waiting) == 1 else f"{len(waiting)} sessions, {waiting[0]}..{waiting[-1]}"
        )
        console.print(
            f"[yellow]ingested, not computed:[/] {span} (the next run computes them)", highlight=False
        )
    if journal_path(settings.warehouse).exists():
        console.print(
            "[yellow]a publish was interrupted after its decision:[/] the next run completes it",
            highlight=False,
        )
    if settings.database.exists():
        from flows.storage.warehouse import connect_read_only

        try:
            con = connect_read_only(settings.database)
        except Exception as exc:
            console.print(
                f"[red]{_safe(settings.database)} does not open:[/] {_safe(_one_line(exc))}", highlight=False
            )
        else:
            try:
                rows = con.sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                    "ORDER BY table_name"
                ).fetchall()
                counts = Table("table", "rows", "last trade_date", title=_safe(settings.database))
                for (name,) in rows:
                    n, last = con.sql(f'SELECT count(*), max(trade_date) FROM "{name}"').fetchall()[0]
                    counts.add_row(Text(_visible(name)), f"{n:,}", str(last))
                console.print(counts)
            finally:
                con.close()
    else:
        console.print("no warehouse yet: run `chainsignals demo` or `chainsignals run`")
    runs = runlog.read(settings.warehouse, last=10)
    if runs:
        recent = Table("finished", "flow", "status", "dates", title="recent runs")
        recent.add_column(
            "detail", overflow="fold"
        )  # a failure's reason whole: it is what the operator needs
        for r in runs:
            dates = r.get("dates") or [r.get("date")]
            detail = r.get("error") or ", ".join(f"{k} {v:,}" for k, v in (r.get("rows") or {}).items())
            detail = "; ".join(filter(None, [detail, *(f"warning: {w}" for w in r.get("warnings") or [])]))
            recent.add_row(
                str(r.get("finished_at", ""))[:19],
                r.get("flow", ""),
                r.get("status", ""),
                "..".join(str(d) for d in dates if d),
                Text(_visible(detail)),
            )  # not Rich markup
        console.print(recent)
    return bool(runs) and runs[-1].get("status") == "failed"


def _verify(settings) -> bool:
    """Check the lake's committed files against their recorded sha256; True when all match."""
    from flows.storage.lake import Lake, verify_lake

    checked, problems = verify_lake(Lake(settings.lake))
    for line in problems:
        err.print(f"[bold red]bad:[/] {_safe(line)}", highlight=False, soft_wrap=True)
    console.print(f"verify: {checked:,} committed file(s) checked, {len(problems)} bad", highlight=False)
    return not problems


@app.command()
def verify(
    warehouse: Warehouse = None, landing: Landing = None, config: Config = None, lake: LakeOption = None
) -> None:
    """Check every committed lake file against the sha256 recorded when it was committed; name each bad one."""
    settings = _settings(warehouse, landing, config, lake)
    if not _guarded(_verify, settings):
        raise typer.Exit(1)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A landing file (CSV, CSV.GZ or Parquet).", exists=False)],
    dataset: Annotated[
        str | None,
        typer.Option(help="bars | chains | trades (default: the parent folder's name or the header)."),
    ] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="Force a format instead of detecting it.")
    ] = None,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Dry-run a landing file against its schema: nothing is written."""
    settings = _settings(warehouse, landing, config, lake)
    from flows.cli.validate import validate_file

    report = _guarded(validate_file, settings, file, dataset, format_)
    console.print(
        f"{_safe(file)}: {report.dataset} ({report.format}), {report.rows:,} rows, "
        f"{report.valid:,} valid, {report.rejected:,} rejected, {report.duplicates:,} duplicates"
    )
    if report.reasons:
        table = Table("reason", "rows", title="rejected rows")
        for reason, count in report.reasons:
            table.add_row(Text(_visible(reason)), f"{count:,}")
        console.print(table)
    if report.over_limit:
        _fail(
            f"{file}: {report.rejected / max(report.rows, 1):.1%} of rows rejected, over the "
            f"{settings.max_rejected_share:.0%} limit"
        )


OutputFormat = Annotated[
    str,
    typer.Option(
        "--format", "-f", help="table | csv | json | parquet (parquet needs --out).", case_sensitive=False
    ),
]
OutFile = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write to this file instead of standard output.",
        show_default=False,
        dir_okay=False,
    ),
]
SymbolFilter = Annotated[
    list[str] | None,
    typer.Option("--symbol", "-s", help="Only this symbol (repeatable).", show_default=False),
]


@app.command()
def sql(
    query: Annotated[
        str, typer.Argument(help="One SELECT (or DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) statement.")
    ],
    format_: OutputFormat = "table",
    out: OutFile = None,
    warehouse: Warehouse = None,
    config: Config = None,
) -> None:
    """Run one read-only query on the warehouse (signals.duckdb opened read-only)."""
    settings = _settings(warehouse, None, config)
    fmt = _output_format(format_, out)
    from flows.cli.query import QueryError, run_sql

    try:
        frame = run_sql(settings.database, query)
    except QueryError as exc:
        _fail(str(exc))
    _emit(frame, fmt, out, title=None)


def _question_command(name: str, help_text: str):
    """`ideas`, `levels` and `signals`: one session's rows of one everyday question."""

    def command(
        date_: Annotated[
            str | None,
            typer.Option(
                "--date", "-d", help="Session (default: the latest in the warehouse).", show_default=False
            ),
        ] = None,
        symbol: SymbolFilter = None,
        format_: OutputFormat = "table",
        out: OutFile = None,
        warehouse: Warehouse = None,
        config: Config = None,
    ) -> None:
        settings = _settings(warehouse, None, config)
        day = _day(date_)
        fmt = _output_format(format_, out)
        symbols = _symbol_filter(symbol)
        from flows.cli.query import QUESTIONS, QueryError, ask

        question = QUESTIONS[name]
        try:
            day, frame = ask(settings.database, question, day, symbols)
        except QueryError as exc:
            _fail(str(exc))
        shown = (
            frame.select([c for c in question.table_columns if c in frame.columns])
            if fmt == "table"
            else frame
        )
        _emit(shown, fmt, out, title=f"{name} {day}")

    command.__doc__ = help_text
    return app.command(name=name)(command)


ideas = _question_command(
    "ideas",
    "A session's trade ideas with the symbol's bias (the todays_ideas view's rows for the latest session).",
)
levels = _question_command(
    "levels",
    "A session's levels per symbol: close, SMAs, bands, pivots, walls, max pain (the symbol_levels view).",
)
signals = _question_command(
    "signals",
    "A session's bias per symbol with its levels and summary (the "
    "latest_signals view's rows for the latest session).",
)


def _output_format(value: str, out: Path | None) -> str:
    fmt = value.lower()
    if fmt not in ("table", "csv", "json", "parquet"):
        raise typer.BadParameter(f"{value!r} is not one of table, csv, json, parquet", param_hint="--format")
    if fmt == "parquet" and out is None:
        raise typer.BadParameter("parquet is binary: name a file with --out", param_hint="--format")
    return fmt


def _symbol_filter(values: list[str] | None) -> list[str] | None:
    from schemas.checks import checked_symbols

    listed = [s for v in values or [] for s in v.split(",") if s.strip()]
    try:
        return checked_symbols(listed) if listed else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--symbol") from None


TABLE_MAX_ROWS = 1_000
"""Rows the `table` format prints; csv, json and parquet carry every row."""


def _emit(frame, fmt: str, out: Path | None, title: str | None) -> None:
    """The rows as a Rich table, CSV, JSON (an array of objects) or Parquet, to stdout or --out."""
    try:
        if fmt == "parquet":
            frame.write_parquet(out)
        elif fmt in ("csv", "json"):
            text = frame.write_csv() if fmt == "csv" else frame.write_json() + "\n"
            if out is None:
                sys.stdout.write(text)
            else:
                out.write_text(text)
        else:
            target = Console(file=out.open("w"), width=200) if out else console
            target.print(_rich_table(frame, title))
            if frame.height > TABLE_MAX_ROWS:
                err.print(
                    f"the first {TABLE_MAX_ROWS:,} of {frame.height:,} rows: --format csv, json or parquet "
                    "give them all",
                    highlight=False,
                )
    except (OSError, ValueError, TypeError) as exc:  # polars: a nested column has no CSV form
        _fail(f"cannot write {fmt}: {_one_line(exc)}")
    if out is not None:
        err.print(f"{frame.height:,} row(s) written to {out}", highlight=False)


def _rich_table(frame, title: str | None) -> Table | str:
    if not frame.width:
        return "(no columns)"
    table = Table(*frame.columns, title=title)
    for row in frame.head(TABLE_MAX_ROWS).iter_rows():
        table.add_row(*(_cell(v) for v in row))
    if not frame.height:
        table.caption = "no rows"
    return table


def _cell(value) -> Text:
    """One value as plain text (never Rich markup): floats to 2 decimals (2 significant digits under 0.1)."""
    if value is None:
        return Text("-")
    if isinstance(value, float):
        return Text(f"{value:,.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}")
    if value in ("bullish", "bearish"):
        return Text(value, style="green" if value == "bullish" else "red")
    return Text(str(value))


def _answered_before_prefect(settings, target: date | None, force: bool, symbols: list[str] | None) -> bool:
    """A run with no work answers in a second or two, before Prefect starts: a date the exchange is closed,
    or nothing new in landing since the run that computed the session. Either is recorded in
    logs/runs.jsonl. With a Prefect server (PREFECT_API_URL) a closed date still goes to the flow, which
    records it there as a "Skipped" run: there is no temporary server to wait for."""
    from datetime import datetime

    started = datetime.now(UTC)
    if target is not None:
        from flows.sources.calendar import closed_reason

        reason = _guarded(closed_reason, target, settings.calendar)
        if reason and _prefect_server():
            return False
        if reason:
            from flows.storage.runlog import record_skip

            record_skip(settings.warehouse, "nightly", target, reason, started)
            console.print(f"skipped: {reason}", highlight=False, markup=False)
            return True
    if force or symbols:
        return False
    from flows.cli.precheck import nothing_new
    from flows.storage.runlog import record_skip

    reason = _guarded(nothing_new, settings, target)
    if reason:
        record_skip(settings.warehouse, "nightly", target, reason, started)
        console.print(f"skipped: {reason}", highlight=False, markup=False)
    return bool(reason)


def _print_flow_run(summary) -> None:
    """The flow run's page when a Prefect server keeps it (a temporary server's pages end with the run)."""
    if _prefect_server() and summary.flow_run_url:
        console.print(f"flow run: {summary.flow_run_url}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def backtest(
    rules: Annotated[
        Path, typer.Argument(help="A TOML file of [[rules]] (the syntax of chainsignals.toml).")
    ],
    start: Annotated[
        str | None, typer.Option("--start", help="First session (default: the lake's first).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last session (default: the lake's last).")] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also run the config's rules, side by side.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the ideas and outcomes here (Parquet; default "
            "<warehouse>/scratch/backtest-<time>.parquet).",
        ),
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated underlyings (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap interval of mean R.")] = 16,
    warehouse: Warehouse = None,
    landing: Landing = None,
    config: Config = None,
    lake: LakeOption = None,
) -> None:
    """Score a rule file over the lake's history, point in time, without writing to the warehouse or lake."""
    settings = _settings(warehouse, landing, config, lake)
    from rich.progress import BarColumn, MofNCompleteColumn

    from flows.config import ConfigError, load_rule_file
    from flows.stages.backtest import run_backtest

    first, last, symbol_list = _day(start), _day(end), _symbols(symbols)
    if first and last and last < first:
        _fail(f"--end {last} is before --start {first}", 2)
    try:
        candidate = load_rule_file(rules, settings)
    except ConfigError as exc:
        _fail(_one_line(exc), 2)
    rule_sets = {"baseline": settings.rules} if baseline else {}
    rule_sets[rules.stem if rules.stem != "baseline" else "candidate"] = candidate
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("backtest: session batches", total=None)
        result = _guarded(
            run_backtest,
            settings,
            rule_sets,
            start=first,
            end=last,
            symbols=symbol_list,
            seed=seed,
            out=out,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    _print_backtest(result, seed)


def _print_backtest(result, seed: int) -> None:
    def num(value, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    table = Table(
        title=f"backtest {result.sessions[0]}..{result.sessions[-1]} ({len(result.sessions)} sessions)"
    )
    for header in (
        "rule set",
        "rule",
        "direction",
        "ideas",
        "triggered",
        "targets",
        "stops",
        "expired",
        "closed",
        "hit rate",
        "mean R",
        "95% CI mean R",
        "expectancy",
        "worst losing run",
    ):
        table.add_column(
            header, no_wrap=header in ("rule set", "rule", "direction", "hit rate", "95% CI mean R")
        )
    for r in result.scorecard.iter_rows(named=True):
        interval = "-" if r["mean_r_low"] is None else f"[{r['mean_r_low']:+.2f}, {r['mean_r_high']:+.2f}]"
        table.add_row(
            r["rule_set"],
            r["rule"],
            r["direction"],
            *(f"{r[c]:,}" for c in ("ideas", "triggered", "target_hits", "stop_hits", "expired", "closed")),
            f"{num(r['hit_rate'])} of {r['closed']:,}",
            num(r["mean_r"], "+.2f"),
            interval,
            num(r["expectancy"], "+.2f"),
            str(r["worst_losing_streak"]),
        )
    console.print(table)
    console.print(
        f"closed = target + stop + expired (option expiry or stock horizon); hit rate = targets / closed; "
        f"mean R over closed, its interval a bootstrap (seed {seed}); expectancy = R per idea resolved "
        f"(an untriggered one earns 0). Outcomes as of {result.sessions[-1]}: ideas still open or pending "
        f"then are not closed. {result.seconds:.1f} s; ideas and outcomes in {result.out}",
        highlight=False,
    )


def _print_summary(summary) -> None:
    if not summary.dates:
        return
    span = f"{summary.dates[0]}" if len(summary.dates) == 1 else f"{summary.dates[0]}..{summary.dates[-1]}"
    rows = ", ".join(f"{t} {n:,}" for t, n in summary.rows.items())
    hidden = f", {summary.files_hidden} hidden skipped" if summary.files_hidden else ""
    console.print(
        f"[green]{summary.flow} {span}[/] ({summary.run_id}): {summary.files_read} file(s) ingested, "
        f"{summary.files_skipped} unchanged{hidden}; {rows}",
        highlight=False,
    )
    for line in summary.warnings:
        console.print(f"[yellow]warning:[/] {_safe(line)}", highlight=False)


def _print_report(summary) -> None:
    console.print(
        f"report: {_safe(summary.report)}"
        if summary.report
        else "report: not written (see the warning above)",
        highlight=False,
    )


SUMMARY_TOP = 20
"""Signals and ideas a run prints; the counts cover all of them and the query commands list the rest."""


def _print_day(settings, day: date, top: int = SUMMARY_TOP) -> None:
    """The day as counts (symbols by bias, ideas by rule and direction), the `top` strongest signals and
    best ideas in a stated order, and where the rest is: a full-market day stays a screen or two."""
    from flows.report.summary import IDEAS_ORDER, SIGNALS_ORDER, day_summary, shown

    brief = day_summary(settings.database, day, top)
    by_bias, by_rule, n_signals, n_ideas = brief.by_bias, brief.by_rule, brief.n_signals, brief.n_ideas
    signals, ideas = brief.signals, brief.ideas
    console.print(
        f"{n_signals:,} symbols: "
        + ", ".join(f"{b} {n:,}" for b, n in by_bias)
        + f"; {n_ideas:,} trade ideas"
        + (": " if by_rule else "")
        + ", ".join(f"{r} {d} {n:,}" for r, d, n in by_rule),
        highlight=False,
        markup=False,
    )
    table = Table(
        "symbol",
        "close",
        "chg %",
        "bias",
        "score",
        "support",
        "resistance",
        title=shown(f"signals {day}", len(signals), n_signals, SIGNALS_ORDER),
    )
    for row in signals:
        sup, res, chg = row["support"], row["resistance"], row["change_pct"]
        colour = {"bullish": "green", "bearish": "red"}.get(row["bias"], "yellow")
        table.add_row(
            row["symbol"],
            f"{row['close']:.2f}",
            f"{chg:+.2f}" if chg is not None else "-",
            f"[{colour}]{row['bias']}[/]",
            f"{row['bias_score']:+d}",
            f"{sup:.2f}" if sup is not None else "-",
            f"{res:.2f}" if res is not None else "-",
        )
    console.print(table)
    # Trigger, target and stop are the underlying's levels, option ideas' too: each cell names the symbol.
    table = Table(
        "symbol",
        "rule",
        "direction",
        "contract",
        "$ / contract",
        "trigger",
        "target",
        "stop",
        "R:R",
        title=shown(f"trade ideas {day}", len(ideas), n_ideas, IDEAS_ORDER)
        + " (levels are the underlying's; premium = mid x 100)",
    )
    for idea in ideas:
        premium = idea["premium_per_contract"]
        colour = {"bullish": "green", "bearish": "red"}.get(idea["direction"], "yellow")
        table.add_row(
            idea["symbol"],
            idea["rule"],
            f"[{colour}]{idea['direction']}[/]",
            idea["contract"],
            f"{premium:,.2f}" if premium is not None else "-",
            idea["trigger_text"],
            idea["target_text"],
            idea["stop_text"],
            f"{idea['risk_reward']:.1f}",
        )
    console.print(table)
    if len(signals) < n_signals or len(ideas) < n_ideas:
        where = f" --date {day} --warehouse {settings.warehouse}"
        console.print(
            f"all of them: `chainsignals signals{where}` and `chainsignals ideas{where}` (--format csv, "
            "json or parquet for every column), and the report's index below",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

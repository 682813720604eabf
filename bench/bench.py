"""`make bench`: the nightly run on the full-market day against the floor (SPEC section 8).

1. Generate the full-market day with the demo generator (`flows.market.simulator.generate_full_market_day`):
   about 5,000 underlyings, 2 million contracts, 300 sessions of bars, 2 million prints, plain CSV.
2. Warm-up (reported, not compared): load the previous session (the bars history and that session's
   chains) into a fresh warehouse, then keep a snapshot of it.
3. Measure in fresh processes, alternated (the order reversed every other round), `--rounds` of each:
   - floor: polars reads the last session's raw files (chains, bars drop, trades) and writes each once
     as Parquet;
   - pandas: `bench/pandas_reference.py`, the night's analysis as a plain pandas script;
   - chainsignals run: the whole CLI process as cron runs it, on a fresh copy of the snapshot (its own
     temporary Prefect server, output to a file); its progress lines, timestamped as they arrive, split
     it into before the flow, the flow's stages and after;
   - nightly: the same run's stages in process (`flows.stages.run.run_stages`, plain steps, no Prefect), each
     timed through the composition's `timed` hook: the per-stage view.
   Each process's peak RSS and CPU come from `wait4` (the kernel's figures for that process alone).
4. `--prefect`: also one `flows.nightly.nightly` Prefect flow run on another copy (orchestration cost).
5. Backfill: a 500-underlying market (`generate_demo_market`), a year of chains, through the same
   stages in one process (each stage over every session, as the `backfill` flow does). RSS is sampled
   after every session a stage writes, the high-water mark reset after each sample, so the table
   month -> peak RSS (ingest, silver, gold) shows whether memory grows with the length of the backfill.
   Then `chainsignals backtest rules/bias_following.toml --baseline` over the year it built, the whole
   CLI process timed (wall, CPU, peak RSS), with its sessions, underlyings and ideas.

The report (Markdown) goes to stdout and `bench/results.md`; `--json` also writes the raw figures.

    .venv/bin/python -m bench.bench [--underlyings 5000] [--prints 2000000] [--rounds 2] [--skip-backfill]
                                    [--skip-report] [--prefect] [--profile] [--workdir DIR --keep]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/bench.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results.md"
# The allocator setting this process was started with: importing polars (the generator does) rewrites
# the variable with polars' defaults, which must not pass for an operator's own setting.
STARTED_ALLOCATOR = {k: v for k, v in os.environ.items() if k == "_RJEM_MALLOC_CONF"}
TARGET_RATIO = 3.0
TARGET_RSS_MB = 4096.0
# Above this many cores of other work during a round (a quarter of one core), its times are not clean.
OTHER_WORK_WARNING_CORES = 0.25
MB = 1024.0


class BenchError(Exception):
    """A benchmark step that failed; the message is one line."""


# ------------------------------------------------------------------------------------------ memory
def memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (getrusage where there is none)."""
    try:
        status = Path("/proc/self/status").read_text()
        values = {k: v for k, _, v in (line.partition(":") for line in status.splitlines())}
        return int(values["VmRSS"].split()[0]) / MB, int(values["VmHWM"].split()[0]) / MB
    except (OSError, KeyError, ValueError):
        peak = _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return peak, peak


def _maxrss_mb(maxrss: int) -> float:
    return maxrss / (MB * MB) if sys.platform == "darwin" else maxrss / MB  # bytes on macOS, KiB elsewhere


# ------------------------------------------------------------------------------------------ probes
STAGE_LABELS = {
    "ingest": "ingest + silver",
    "gold": "gold",
    "publish": "publish: DuckDB",
    "present": "report: Markdown, HTML, charts",
}
"""flows.stages.run's stages as the report names them."""


@dataclass
class Probe:
    """Timings of one run: `stages` are the run composition's stages (flows.stages.run.run_stages times them
    through its `timed` hook), consecutive and adding up to the run with `other`; `stage_cpu` is the
    CPU the whole process (every thread) spent in each, so CPU over seconds is how many of the cores a
    stage kept busy. `parts` split the ingest stage (its steps) and the gold stage (per table, from
    the run's pipeline_runs rows: wall only). `inner` are hot spots (CSV reads, validation, Parquet
    writes), which overlap. `peak_after` is the process's RSS high-water mark when each stage ended.
    """

    stages: dict[str, float] = field(default_factory=dict)
    stage_cpu: dict[str, float] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)
    part_cpu: dict[str, float] = field(default_factory=dict)
    inner: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    peak_after: dict[str, float] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)  # epoch seconds, to place pipeline_runs rows

    def add_stage(self, name: str, seconds: float, cpu: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds
        self.stage_cpu[name] = self.stage_cpu.get(name, 0.0) + cpu
        self.peak_after[name] = memory_mb()[1]

    def add_part(self, name: str, seconds: float, cpu: float | None = None) -> None:
        self.parts[name] = self.parts.get(name, 0.0) + seconds
        if cpu is not None:
            self.part_cpu[name] = self.part_cpu.get(name, 0.0) + cpu

    def add_inner(self, name: str, seconds: float) -> None:
        self.inner[name] = self.inner.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started, cpu = time.perf_counter(), time.process_time()
        self.started_at.setdefault(name, time.time())
        try:
            yield
        finally:
            self.add_stage(name, time.perf_counter() - started, time.process_time() - cpu)

    def timed(self, stage: str):
        """flows.stages.run's `timed` hook."""
        return self.stage(STAGE_LABELS.get(stage, stage))


def _wrap(owner, attribute: str, record: Callable[[dict, float, float], None]) -> None:
    """Replace owner.attribute (a public function or method) by a timing wrapper; `record(bound
    arguments, seconds, process CPU)`. Missing attributes are skipped: the pipeline may change under
    the benchmark, and what is gone is then not broken down, never mistimed."""
    original = getattr(owner, attribute, None)
    if original is None or getattr(original, "__bench_wrapped__", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            try:
                bound = signature.bind_partial(*args, **kwargs).arguments
            except TypeError:
                bound = {}
            record(bound, time.perf_counter() - started, time.process_time() - cpu)

    wrapper.__bench_wrapped__ = True
    setattr(owner, attribute, wrapper)


def install_probes(probe: Probe) -> None:
    """Break the ingest stage into its steps and time hot spots, through public functions only."""
    from flows.stages import gold, ingest, silver
    from flows.storage import lake

    def inner(name: str) -> Callable[[dict, float, float], None]:
        return lambda _bound, seconds, _cpu: probe.add_inner(name, seconds)

    def each(attribute: str, record: Callable[[dict, float, float], None]) -> None:
        for stage in (ingest, silver, gold):  # wrapped where it is looked up: the stage modules import it
            _wrap(stage, attribute, record)

    each("ingest_landing", lambda _b, s, c: probe.add_part("ingest: landing -> bronze", s, c))
    each("build_silver", lambda b, s, c: probe.add_part(f"ingest: silver {b.get('dataset', '?')}", s, c))
    _wrap(lake.Staging, "commit", lambda _b, s, c: probe.add_part("ingest: commit staged partitions", s, c))
    each("write_manifest", lambda _b, s, c: probe.add_part("ingest: write manifest", s, c))
    each("read_text_frame", inner("read landing file (text)"))
    each("conform", inner("conform to bronze (parse, type)"))
    each("file_digest", inner("sha256 of landing files"))
    each("dirty_silver_dates", inner("find dirty silver dates"))
    each("split_valid", inner("pandera: silver validation"))
    each("split_duplicates", inner("de-duplication"))
    each("validate_gold", inner("pandera: gold validation"))
    _wrap(lake, "write_atomic", inner("parquet writes (all layers)"))


def gold_parts(database: Path, run_id: str, gold_started: float) -> dict[str, float]:
    """Each gold table's seconds, from the run's pipeline_runs rows: from the previous table's end
    (the gold stage's start for the first) to its own, so compute, validation and write."""
    from flows.storage.warehouse import connect_read_only

    con = connect_read_only(database)
    try:
        rows = con.execute(
            "SELECT dataset, max(finished_at) AS done FROM pipeline_runs WHERE run_id = ? "
            "AND dataset LIKE 'gold.%' GROUP BY dataset ORDER BY done",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    parts, mark = {}, gold_started
    for dataset, done in rows:
        parts[f"gold: {dataset.removeprefix('gold.')}"] = max(done.timestamp() - mark, 0.0)
        mark = done.timestamp()
    return parts


def _no_report(_settings, _day, _logger):
    return None, []


def child_floor(spec: dict) -> dict:
    """The floor: read that day's raw files with polars and write each once as Parquet."""
    import polars as pl

    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    files = []
    started, cpu = time.perf_counter(), time.process_time()
    for raw in spec["files"]:
        path = Path(raw)
        t0 = time.perf_counter()
        frame = pl.read_csv(path, infer_schema_length=10_000)
        frame.write_parquet(out / f"{path.parent.name}-{path.name.split('.')[0]}.parquet")
        files.append(
            {
                "file": f"{path.parent.name}/{path.name}",
                "rows": frame.height,
                "mb": path.stat().st_size / (MB * MB),
                "seconds": time.perf_counter() - t0,
            }
        )
        del frame
    return {
        "seconds": time.perf_counter() - started,
        "run_cpu": time.process_time() - cpu,
        "files": files,
        "self_peak_mb": memory_mb()[1],
    }


def child_pipeline(spec: dict) -> dict:
    """The nightly run for one session in this process: flows.stages.run.run_stages with its plain steps (no
    Prefect), each stage timed through its hook: ingest + silver, gold, publish, the day's report."""
    probe = Probe()
    install_probes(probe)
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    from dataclasses import replace

    from flows.config import load_settings
    from flows.report import build as report
    from flows.stages.run import PLAIN, run_stages

    settings = load_settings(warehouse=spec["warehouse"], landing=spec["landing"])
    target = date.fromisoformat(spec["target"])
    run_id = f"bench-{os.getpid()}"
    steps = PLAIN if spec.get("report", True) else replace(PLAIN, present=_no_report)
    install_report_probes(probe, report)
    if profiler:
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = run_stages(
        settings, "nightly", target, None, False, steps=steps, timed=probe.timed, run_id=run_id
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    # Whatever no stage covers (the lock, listing dates, the run log).
    probe.add_stage(
        "other (untimed)",
        max(seconds - sum(probe.stages.values()), 0.0),
        max(cpu - sum(probe.stage_cpu.values()), 0.0),
    )
    for name, part in gold_parts(settings.database, run_id, probe.started_at[STAGE_LABELS["gold"]]).items():
        probe.add_part(name, part)
    return {
        "seconds": seconds,
        "run_cpu": cpu,
        "stages": probe.stages,
        "stage_cpu": probe.stage_cpu,
        "parts": probe.parts,
        "part_cpu": probe.part_cpu,
        "inner": probe.inner,
        "calls": probe.calls,
        "peak_after": probe.peak_after,
        "self_peak_mb": memory_mb()[1],
        "rows_in": _rows_in(settings, run_id),
        "gold_rows": summary.rows,
    }


def _rows_in(settings, run_id: str) -> dict[str, int]:
    from flows.storage.warehouse import connect_read_only

    con = connect_read_only(settings.database)
    try:
        return dict(
            con.execute(
                "SELECT dataset, sum(rows_in)::BIGINT FROM pipeline_runs WHERE run_id = ? "
                "AND dataset LIKE 'silver.%' GROUP BY dataset",
                [run_id],
            ).fetchall()
        )
    finally:
        con.close()


def install_report_probes(probe: Probe, report_module) -> None:
    def inner(name: str) -> Callable[[dict, float, float], None]:
        return lambda _bound, seconds, _cpu: probe.add_inner(name, seconds)

    _wrap(report_module, "load_day", inner("report: load the day from DuckDB"))
    _wrap(report_module, "price_history", inner("report: price history from the lake"))
    _wrap(report_module, "strike_oi", inner("report: strike OI from the lake"))
    _wrap(report_module, "price_chart", inner("report: price chart SVG (per symbol)"))
    _wrap(report_module, "oi_chart", inner("report: OI chart SVG (per symbol)"))


def child_prefect(spec: dict) -> dict:
    """One `nightly` Prefect flow run (ephemeral API unless PREFECT_API_URL is set)."""
    started = time.perf_counter()
    from flows.nightly import nightly

    imported = time.perf_counter()
    summary = nightly(
        date=date.fromisoformat(spec["target"]), warehouse=spec["warehouse"], landing=spec["landing"]
    )
    return {
        "seconds": time.perf_counter() - imported,
        "import_seconds": imported - started,
        "status": summary.status,
        "self_peak_mb": memory_mb()[1],
    }


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux: `5` into /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class PeakSampler:
    """RSS samples after each session a stage writes; each holds the true peak since the previous
    sample (the high-water mark is reset after reading it), so no transient peak is missed."""

    samples: list[dict] = field(default_factory=list)
    peak_mb: float = 0.0
    resets: bool = True
    started: float = field(default_factory=time.perf_counter)

    def sample(self, phase: str, day: date, rows: int | None) -> None:
        rss, window_peak = memory_mb()
        self.peak_mb = max(self.peak_mb, window_peak)
        self.resets = reset_peak_rss() and self.resets
        self.samples.append(
            {
                "phase": phase,
                "day": day.isoformat(),
                "rss_mb": rss,
                "window_peak_mb": window_peak,
                "rows": rows,
                "t": time.perf_counter() - self.started,
            }
        )


def child_backfill(spec: dict) -> dict:
    """The backfill (flows.stages.run.run_stages over every chain session, plain steps) in one process,
    sampling RSS after each session a stage writes: bronze (ingest, one landing file per session),
    silver and gold."""
    from dataclasses import replace

    from flows.config import load_settings
    from flows.stages.run import PLAIN, run_stages
    from flows.stages.sessions import StageStats
    from flows.storage.lake import Staging

    sampler = PeakSampler()
    original_add, original_scratch = StageStats.add, Staging.stage_scratch

    def add(self, dataset, day, rows_in, rows_out, *args, **kwargs):
        original_add(self, dataset, day, rows_in, rows_out, *args, **kwargs)
        if dataset != "silver.bars":
            sampler.sample(dataset, day, rows_out)

    def stage_scratch(self, frame, dataset, day, *args, **kwargs):  # ingest hands a session's rows to silver
        staged = original_scratch(self, frame, dataset, day, *args, **kwargs)
        if dataset != "bars":
            sampler.sample(f"bronze.{dataset}", day, frame.height)
        return staged

    settings = load_settings(warehouse=spec["warehouse"], landing=spec["landing"])
    start, end = date.fromisoformat(spec["start"]), date.fromisoformat(spec["end"])
    steps = PLAIN if spec.get("report", True) else replace(PLAIN, present=_no_report)
    probe = Probe()
    StageStats.add, Staging.stage_scratch = add, stage_scratch
    try:
        summary = run_stages(settings, "backfill", end, start, False, steps=steps, timed=probe.timed)
    finally:
        StageStats.add, Staging.stage_scratch = original_add, original_scratch
    peak = max(sampler.peak_mb, memory_mb()[1])
    return {
        "timings": probe.stages,
        "samples": sampler.samples,
        "sessions": len(summary.dates),
        "peak_mb": peak,
        "peak_resets": sampler.resets,
    }


CHILDREN = {
    "floor": child_floor,
    "pipeline": child_pipeline,
    "prefect": child_prefect,
    "backfill": child_backfill,
}


def run_child(role: str, spec_file: Path, result_file: Path) -> None:
    spec = json.loads(spec_file.read_text())
    result = CHILDREN[role](spec)
    result_file.write_text(json.dumps(result, default=str))


@dataclass
class ChildRun:
    result: dict
    wall: float
    peak_mb: float
    # Cores other processes kept busy on average while the child ran (they skew its timings); None where
    # the machine's CPU counters cannot be read.
    other_cores: float | None
    cpu: float = 0.0  # user + system CPU seconds of the whole child process

    def figures(self) -> dict:
        """The child's own result with what the parent measured of it."""
        return {
            **self.result,
            "wall": self.wall,
            "peak_mb": self.peak_mb,
            "other_cores": self.other_cores,
            "cpu": self.cpu,
        }


def nightly_env() -> dict[str, str]:
    """What `chainsignals run` sets before polars loads (flows/cli/launcher.py): the nightly's children, the
    floor's included (the same process family), run with it; the backfill's with what `backfill` gets."""
    from flows.cli.launcher import allocator_environment

    return allocator_environment(["run"], STARTED_ALLOCATOR) or dict(STARTED_ALLOCATOR)


def spawn(role: str, spec: dict, work: Path, name: str, env: dict | None = None) -> ChildRun:
    """Run one role in a fresh interpreter; its peak RSS is the kernel's, via wait4 on that child."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec_file, result_file, log_file = logs / f"{name}.spec.json", logs / f"{name}.json", logs / f"{name}.log"
    spec_file.write_text(json.dumps(spec, default=str))
    result_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "bench.bench",
        "--child",
        role,
        "--spec",
        str(spec_file),
        "--result",
        str(result_file),
    ]
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
    started, busy_before = time.perf_counter(), machine_busy_seconds()
    with log_file.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        code, figures = _reaped(process, started, busy_before)
    if code != 0:
        raise BenchError(
            f"{name} ({role}) {_exit_reason(code)} after {figures['wall']:.0f}s; "
            f"last output: {_tail(log_file)} (log: {log_file})"
        )
    return ChildRun(
        json.loads(result_file.read_text()),
        figures["wall"],
        figures["peak_mb"],
        figures["other_cores"],
        figures["cpu"],
    )


CHAINSIGNALS = Path(sys.executable).parent / "chainsignals"

# The CLI's own progress lines (stderr, one per line when not a terminal: as cron records them) that
# split the process: the flow is called, its first stage starts, its last stage ends, the flow returns.
FLOW_CALLED = "starting on"
STAGE_STARTED = " ..."
STAGE_DONE = ": done in "
FLOW_RETURNED = ": finished in "


def cli_split(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """The whole process cut at the CLI's progress lines (seconds since the process started, as the
    parent saw each line arrive): start-up (interpreter, imports, pre-checks), Prefect's start (the
    temporary server, the flow run), the stages, Prefect's end, and the output up to the exit."""

    def first(marker: str) -> float | None:
        return next((t for t, line in lines if marker in line), None)

    called, returned = first(FLOW_CALLED), first(FLOW_RETURNED)
    started = next((t for t, line in lines if line.endswith(STAGE_STARTED)), None)
    done = max((t for t, line in lines if STAGE_DONE in line), default=None)
    if None in (called, returned, started, done):
        raise BenchError(
            "the CLI's progress lines are missing (" + "; ".join(line for _, line in lines[-3:]) + ")"
        )
    return {
        "start-up": called,
        "prefect start": started - called,
        "stages": done - started,
        "prefect end": returned - done,
        "output and exit": wall - returned,
        "before the flow": started,
        "the flow": done - started,
        "after the flow": wall - done,
    }


def spawn_cli(args: list[str], work: Path, name: str, env: dict) -> dict:
    """`chainsignals run ...` as cron runs it: a fresh process, output to pipes; each stderr line
    timestamped as it arrives; peak RSS and CPU from wait4 (the process and the children it reaped:
    the temporary Prefect server)."""
    import threading

    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stdout_file = logs / f"{name}.stdout"
    lines: list[tuple[float, str]] = []
    started, busy_before = time.perf_counter(), machine_busy_seconds()
    with stdout_file.open("w") as stdout:
        process = subprocess.Popen(
            [str(CHAINSIGNALS), *args], cwd=work, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True
        )

        def read() -> None:
            for line in process.stderr:
                lines.append((time.perf_counter() - started, line.rstrip("\n")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        code, figures = _reaped(process, started, busy_before)
        reader.join(timeout=10)
    (logs / f"{name}.stderr").write_text("".join(f"{t:8.2f} {line}\n" for t, line in lines))
    if code != 0:
        raise BenchError(
            f"{name} (chainsignals {' '.join(args[:1])}) {_exit_reason(code)} after "
            f"{figures['wall']:.0f}s; last output: {lines[-1][1] if lines else '(none)'} "
            f"(log: {logs / name}.stderr)"
        )
    return {
        **figures,
        "split": cli_split(lines, figures["wall"]),
        "stdout_lines": len(stdout_file.read_text().splitlines()),
    }


def _reaped(process: subprocess.Popen, started: float, busy_before: float | None) -> tuple[int, dict]:
    """Wait for a process: its exit code, wall, CPU and peak RSS (wait4: it and the children it reaped),
    and the cores other processes kept busy meanwhile."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    wall, busy_after = time.perf_counter() - started, machine_busy_seconds()
    cpu = usage.ru_utime + usage.ru_stime
    other = (
        None
        if busy_before is None or busy_after is None
        else max(busy_after - busy_before - cpu, 0.0) / max(wall, 1e-9)
    )
    return code, {
        "wall": wall,
        "seconds": wall,
        "cpu": cpu,
        "peak_mb": _maxrss_mb(usage.ru_maxrss),
        "other_cores": other,
    }


def cron_env() -> dict[str, str]:
    """The environment a cron job gives `chainsignals run`: the operator's, without the allocator setting
    polars' import wrote into this process (the launcher sets its own), Prefect at home and quiet."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    env.update(STARTED_ALLOCATOR)
    env.update(
        {
            "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(ROOT / ".prefect")),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    env.pop("PREFECT_API_URL", None)  # as the nightly runs by default: its own temporary server
    return env


def spawn_pandas(spec: dict, work: Path, name: str) -> dict:
    """bench/pandas_reference.py in a fresh interpreter, timed like the others."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.pandas_reference", *(f"--{k}={v}" for k, v in spec.items())]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    started, busy_before = time.perf_counter(), machine_busy_seconds()
    with (logs / f"{name}.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        code, figures = _reaped(process, started, busy_before)
    if code != 0:
        raise BenchError(
            f"{name} (pandas reference) {_exit_reason(code)} after {figures['wall']:.0f}s; last output: "
            f"{_tail(logs / f'{name}.log')}"
        )
    return figures


def machine_busy_seconds(stat: Path = Path("/proc/stat")) -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all cores; idle and iowait excluded).

    Minus a child's own CPU time (wait4), it is what other processes used meanwhile: a direct measure,
    where the load average counts the child's own threads too (polars keeps both cores busy)."""
    try:
        fields = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields[1:9] + ["0"] * 8)[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _exit_reason(code: int) -> str:
    if code == -signal.SIGKILL:
        return "was killed (SIGKILL: out of memory?)"
    if code < 0:
        return f"died of signal {signal.Signals(-code).name}"
    return f"exited with {code}"


def _tail(log_file: Path) -> str:
    lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(none)"


# ------------------------------------------------------------------------------------------ options
@dataclass
class Options:
    underlyings: int = 5000
    sessions: int = 300
    prints: int = 2_000_000
    rounds: int = 2
    skip_backfill: bool = False
    skip_report: bool = False
    prefect: bool = False
    backfill_underlyings: int = 500
    backfill_sessions: int = 260
    backfill_chain_sessions: int = 252
    workdir: Path | None = None
    keep: bool = False
    profile: bool = False
    output: Path | None = RESULTS
    json_output: Path | None = None


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    d = Options()
    parser.add_argument("--underlyings", type=int, default=d.underlyings)
    parser.add_argument("--sessions", type=int, default=d.sessions, help="sessions of bars")
    parser.add_argument("--prints", type=int, default=d.prints, help="trade prints on the last session")
    parser.add_argument("--rounds", type=int, default=d.rounds, help="floor and nightly runs each")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument(
        "--skip-report",
        action="store_true",
        help="leave the day's report (pages and charts) out of the nightly: not the SPEC figure",
    )
    parser.add_argument(
        "--prefect", action="store_true", help="also time one `nightly` Prefect flow run on the same day"
    )
    parser.add_argument("--backfill-underlyings", type=int, default=d.backfill_underlyings)
    parser.add_argument("--backfill-sessions", type=int, default=d.backfill_sessions)
    parser.add_argument("--backfill-chain-sessions", type=int, default=d.backfill_chain_sessions)
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and warehouses")
    parser.add_argument("--profile", action="store_true", help="one extra nightly run under cProfile")
    parser.add_argument("--output", type=Path, default=d.output, help="Markdown report file")
    parser.add_argument("--json", dest="json_output", type=Path, help="also write the raw figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return Options(**vars(args))


# ------------------------------------------------------------------------------------------ orchestration
def _link_tree(files: list[Path], source: Path, target: Path) -> None:
    """Hard links keep size and mtime, so the landing manifest sees the very same files."""
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def generate_market(opts: Options, work: Path) -> dict:
    from flows.market.simulator import generate_full_market_day

    landing = work / "landing"
    started = time.perf_counter()
    summary = generate_full_market_day(
        landing, underlyings=opts.underlyings, sessions=opts.sessions, trades=opts.prints
    )
    seconds = time.perf_counter() - started
    target, previous = summary.chain_sessions[-1], summary.chain_sessions[0]
    day_files = [p for p in summary.files if target.isoformat() in p.name]
    return {
        "landing": landing,
        "target": target,
        "previous": previous,
        "day_files": day_files,
        "all_files": summary.files,
        "rows": dict(summary.rows),
        "underlyings": len(summary.symbols),
        "sessions": len(summary.sessions),
        "generate_seconds": seconds,
        "day_mb": sum(p.stat().st_size for p in day_files) / (MB * MB),
    }


def measure_nightly(opts: Options, work: Path, market: dict, log: Callable[[str], None]) -> dict:
    landing, target, previous = market["landing"], market["target"], market["previous"]
    landing_prev = work / "landing_prev"
    _link_tree([p for p in market["all_files"] if p not in market["day_files"]], landing, landing_prev)
    # As a night finds them, yesterday's files were delivered well before yesterday's run (a link sets
    # ctime): the manifest then records their status, and the night does not hash them again.
    from flows.sources.files import RACY_SECONDS

    time.sleep(RACY_SECONDS)
    snapshot = work / "warehouse_snapshot"
    log(f"warm-up: loading the previous session {previous} (bars history, its chains)")
    # The warm-up only prepares the lake: the previous day's report is left out.
    warm = spawn(
        "pipeline",
        {
            "warehouse": str(snapshot),
            "landing": str(landing_prev),
            "target": previous.isoformat(),
            "report": False,
        },
        work,
        "warmup",
        env=nightly_env(),
    )

    # The pandas script's own store of the bars before the night (what the lake is to the pipeline),
    # written once here, outside every timing.
    history = work / "pandas_history.parquet"
    _pandas_history(
        [p for p in market["all_files"] if p.parent.name == "bars" and p not in market["day_files"]], history
    )
    day_file = {p.parent.name: p for p in market["day_files"]}

    runs: dict[str, list[dict]] = {"floor": [], "pandas": [], "cli": [], "cli_server": [], "nightly": []}
    rounds = work / "rounds"
    kinds = ("floor", "pandas", "cli", "cli_server", "nightly")
    # An operator's running Prefect server (`prefect server start`, PREFECT_API_URL): a run that finds
    # one starts none of its own. Booted here, outside every timing; its CPU is not the run's.
    from flows.cli.launcher import TemporaryServer

    server = TemporaryServer()
    server.wait_ready(120)
    order = [kind for i in range(opts.rounds) for kind in (kinds if i % 2 == 0 else kinds[::-1])]
    for kind in order:
        index = len(runs[kind]) + 1
        log(f"{kind} round {index}")
        out = rounds / f"{kind}-{index}"
        if kind == "floor":
            run = spawn(
                "floor",
                {"files": [str(p) for p in market["day_files"]], "out": str(out)},
                work,
                f"floor-{index}",
                env=nightly_env(),
            ).figures()
        elif kind == "pandas":
            run = spawn_pandas(
                {
                    "history": history,
                    "bars": day_file["bars"],
                    "chains": day_file["chains"],
                    "trades": day_file["trades"],
                    "out": out,
                },
                work,
                f"pandas-{index}",
            )
        elif kind in ("cli", "cli_server"):
            shutil.copytree(snapshot, out)
            # The whole process, report included (the CLI has no switch to leave it out, nor should it).
            env = cron_env() | ({"PREFECT_API_URL": server.api_url} if kind == "cli_server" else {})
            run = spawn_cli(
                ["run", "--date", target.isoformat(), "--warehouse", str(out), "--landing", str(landing)],
                work,
                f"{kind}-{index}",
                env,
            )
        else:
            shutil.copytree(snapshot, out)
            run = spawn(
                "pipeline",
                {
                    "warehouse": str(out),
                    "landing": str(landing),
                    "target": target.isoformat(),
                    "report": not opts.skip_report,
                },
                work,
                f"nightly-{index}",
                env=nightly_env(),
            ).figures()
        runs[kind].append(run)
        if not opts.keep:
            shutil.rmtree(out, ignore_errors=True)
    server.stop()

    profile = None
    if opts.profile:
        profile = _profile_round(work, snapshot, landing, target, not opts.skip_report, log)
    prefect = _prefect_round(work, snapshot, landing, target, log) if opts.prefect else None
    return {
        "warmup": warm.figures(),
        "floor_runs": runs["floor"],
        "nightly_runs": runs["nightly"],
        "pandas_runs": runs["pandas"],
        "cli_runs": runs["cli"],
        "cli_server_runs": runs["cli_server"],
        "prefect": prefect,
        "profile": profile,
    }


def _pandas_history(files: list[Path], out: Path) -> None:
    import polars as pl

    frames = [
        pl.read_csv(f, try_parse_dates=True).with_columns(pl.col("date").cast(pl.Datetime("us")))
        for f in files
    ]
    pl.concat(frames, how="diagonal_relaxed").write_parquet(out)


def _profile_round(
    work: Path, snapshot: Path, landing: Path, target: date, report: bool, log: Callable[[str], None]
) -> dict:
    import pstats
    from io import StringIO

    log("profiling one more nightly run (cProfile)")
    out = work / "rounds" / "profile"
    shutil.copytree(snapshot, out)
    stats_file = work / "logs" / "nightly.prof"
    run = spawn(
        "pipeline",
        {
            "warehouse": str(out),
            "landing": str(landing),
            "target": target.isoformat(),
            "profile": str(stats_file),
            "report": report,
        },
        work,
        "profile",
        env=nightly_env(),
    )
    text = StringIO()
    pstats.Stats(str(stats_file), stream=text).sort_stats("cumulative").print_stats(35)
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": run.result["seconds"], "file": str(stats_file), "top": text.getvalue()}


def _prefect_round(
    work: Path, snapshot: Path, landing: Path, target: date, log: Callable[[str], None]
) -> dict:
    log("one nightly run through Prefect (for the orchestration overhead)")
    out = work / "rounds" / "prefect"
    shutil.copytree(snapshot, out)
    env = {
        **nightly_env(),
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(ROOT / ".prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        # The ephemeral API server needs more than the default 20 s to start on a busy 2-core machine.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": os.environ.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"
        ),
    }
    try:
        run = spawn(
            "prefect",
            {"warehouse": str(out), "landing": str(landing), "target": target.isoformat()},
            work,
            "prefect",
            env=env,
        )
        return run.figures()
    except BenchError as exc:
        return {"error": str(exc)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure_backfill(opts: Options, work: Path, log: Callable[[str], None]) -> dict:
    from flows.market.simulator import DEFAULT_SYMBOLS, generate_demo_market, synthetic_tickers
    from flows.stages.silver import PIPELINE_DATASETS

    # Prints only when the pipeline reads them: a year of prints is ~40% of the generation time.
    prints = "trades" in PIPELINE_DATASETS
    named = DEFAULT_SYMBOLS[
        : min(opts.backfill_underlyings, len(DEFAULT_SYMBOLS))
    ]  # SPY: every beta needs it
    symbols = named + synthetic_tickers(opts.backfill_underlyings - len(named), set(named))
    landing = work / "backfill_landing"
    log(
        f"backfill: generating {len(symbols)} underlyings, {opts.backfill_sessions} sessions, "
        f"{opts.backfill_chain_sessions} sessions of chains{', prints' if prints else ''}"
    )
    started = time.perf_counter()
    summary = generate_demo_market(
        landing,
        symbols=symbols,
        sessions=opts.backfill_sessions,
        chain_sessions=opts.backfill_chain_sessions,
        trades=prints,
    )
    generated = time.perf_counter() - started
    log(f"backfill: generated {summary.rows} in {generated:.0f}s; running it")
    warehouse = work / "backfill_warehouse"
    run = spawn(
        "backfill",
        {
            "warehouse": str(warehouse),
            "landing": str(landing),
            "start": summary.chain_sessions[0].isoformat(),
            "end": summary.chain_sessions[-1].isoformat(),
            "report": not opts.skip_report,
        },
        work,
        "backfill",
    )
    log("backfill: done; backtesting the seed rules and rules/bias_following.toml over it")
    try:
        backtest = measure_backtest(warehouse, work)
    except BenchError as exc:  # keep the backfill's figures; say what broke
        backtest = {"error": str(exc)}
    if not opts.keep:
        shutil.rmtree(warehouse, ignore_errors=True)
    return {
        "backtest": backtest,
        "underlyings": len(symbols),
        "sessions": opts.backfill_sessions,
        "chain_sessions": len(summary.chain_sessions),
        "rows": dict(summary.rows),
        "generate_seconds": generated,
        "wall": run.wall,
        # wait4's figure only covers the time since the sampler's last reset: the child's is whole.
        "peak_mb": max(run.result["peak_mb"], run.peak_mb),
        "peak_resets": run.result["peak_resets"],
        "timings": run.result["timings"],
        "months": backfill_months(run.result["samples"]),
    }


BACKTEST_RULES = ROOT / "rules" / "bias_following.toml"


def measure_backtest(warehouse: Path, work: Path, rules: Path = BACKTEST_RULES) -> dict:
    """`chainsignals backtest RULES --baseline` over a backfilled warehouse (the config's rules, the seed
    note's plays, beside `rules`), the whole CLI process timed as an analyst runs it: wall, CPU and peak
    RSS from wait4; sessions from its table's title; ideas per rule set and underlyings from its --out
    file."""
    import polars as pl

    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out, stdout_file, stderr_file = (
        work / "backtest.parquet",
        logs / "backtest.stdout",
        logs / "backtest.stderr",
    )
    args = ["backtest", str(rules), "--baseline", "--warehouse", str(warehouse), "--out", str(out)]
    env = {**cron_env(), "COLUMNS": "200"}
    started, busy_before = time.perf_counter(), machine_busy_seconds()
    with stdout_file.open("w") as stdout, stderr_file.open("w") as stderr:
        process = subprocess.Popen(
            [str(CHAINSIGNALS), *args], cwd=work, env=env, stdout=stdout, stderr=stderr
        )
        code, figures = _reaped(process, started, busy_before)
    if code != 0:
        raise BenchError(
            f"backtest (chainsignals backtest) {_exit_reason(code)} after {figures['wall']:.0f}s; "
            f"last output: {_tail(stderr_file)} (log: {stderr_file})"
        )
    title = re.search(r"backtest (\S+)\.\.(\S+) \((\d+) sessions\)", stdout_file.read_text())
    if title is None:
        raise BenchError(f"backtest printed no table title (log: {stdout_file})")
    ideas = pl.read_parquet(out, columns=["rule_set", "symbol"])
    per_set = ideas.group_by("rule_set", maintain_order=True).len()
    return {
        **figures,
        "rules": f"{rules.parent.name}/{rules.name}",
        "first": title[1],
        "last": title[2],
        "sessions": int(title[3]),
        "underlyings": ideas["symbol"].n_unique(),
        "ideas": ideas.height,
        "ideas_per_set": dict(per_set.iter_rows()),
    }


def backfill_months(samples: list[dict]) -> list[dict]:
    """Per calendar month of the sessions: chain sessions and rows; for its ingest (bronze), silver and
    gold work the peak RSS and the seconds spent (time since the previous sample, whatever its phase);
    and the RSS left after its last gold table (what the process keeps between months)."""
    months: dict[str, dict] = {}
    previous_t = 0.0
    for s in samples:
        month = months.setdefault(
            s["day"][:7],
            {
                "month": s["day"][:7],
                "sessions": set(),
                "chain_rows": 0,
                **{
                    f"{phase}_{what}": 0.0
                    for phase in ("bronze", "silver", "gold")
                    for what in ("peak_mb", "seconds")
                },
                "rss_after_mb": 0.0,
            },
        )
        phase = s["phase"].split(".")[0]
        elapsed, previous_t = s["t"] - previous_t, s["t"]
        if phase not in ("bronze", "silver", "gold"):
            continue
        month[f"{phase}_peak_mb"] = max(month[f"{phase}_peak_mb"], s["window_peak_mb"])
        month[f"{phase}_seconds"] += elapsed
        if s["phase"] == "silver.chains":
            month["sessions"].add(s["day"])
            month["chain_rows"] += s["rows"] or 0
        elif phase == "gold":
            month["rss_after_mb"] = s["rss_mb"]
    ordered = [months[k] for k in sorted(months)]
    return [{**m, "sessions": len(m["sessions"])} for m in ordered if m["sessions"]]


def slope_per_month(values: list[float]) -> float:
    """Least-squares slope of a series (MB per month); 0 for fewer than two points."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    return sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sum(
        (i - mean_x) ** 2 for i in range(n)
    )


def summarise(opts: Options, market: dict, nightly: dict, backfill: dict | None) -> dict:
    floors, nights = nightly["floor_runs"], nightly["nightly_runs"]
    floor_s = _median([r["seconds"] for r in floors])
    nightly_s = _median([r["seconds"] for r in nights])
    stage_names = list(dict.fromkeys(k for r in nights for k in r["stages"]))
    part_names = list(dict.fromkeys(k for r in nights for k in r.get("parts", {})))
    inner_names = list(dict.fromkeys(k for r in nights for k in r["inner"]))
    pandas_runs, cli_runs = nightly.get("pandas_runs", []), nightly.get("cli_runs", [])
    server_runs = nightly.get("cli_server_runs", [])
    everything = [*floors, *nights, *pandas_runs, *cli_runs, *server_runs]
    import polars as pl

    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": pl.__version__,
            "platform": platform.platform(),
            "memory_gb": _total_memory_gb(),
        },
        "scale": {
            "underlyings": market["underlyings"],
            "sessions": market["sessions"],
            "rows": market["rows"],
            "previous": market["previous"].isoformat(),
            "target": market["target"].isoformat(),
            "day_files": [f"{p.parent.name}/{p.name}" for p in market["day_files"]],
            "day_mb": market["day_mb"],
            "generate_seconds": market["generate_seconds"],
        },
        "warmup": nightly["warmup"],
        "floor": {
            "seconds": floor_s,
            "wall": _median([r["wall"] for r in floors]),
            "cpu": _median([r.get("cpu", 0.0) for r in floors]),
            "run_cpu": _median([r.get("run_cpu", 0.0) for r in floors]),
            "peak_rss_mb": max(r["peak_mb"] for r in floors),
            "runs": floors,
        },
        "nightly": {
            "seconds": nightly_s,
            "wall": _median([r["wall"] for r in nights]),
            "cpu": _median([r.get("cpu", 0.0) for r in nights]),
            "run_cpu": _median([r.get("run_cpu", 0.0) for r in nights]),
            "peak_rss_mb": max(r["peak_mb"] for r in nights),
            "runs": nights,
        },
        "pandas": _process_figures(pandas_runs),
        "cli": _cli_figures(cli_runs),
        "cli_server": _cli_figures(server_runs),
        "ratio": nightly_s / floor_s if floor_s else float("inf"),
        "ratio_wall": _median([r["wall"] for r in nights]) / _median([r["wall"] for r in floors]),
        "stages": {k: _median([r["stages"].get(k, 0.0) for r in nights]) for k in stage_names},
        "stage_cpu": {k: _median([r.get("stage_cpu", {}).get(k, 0.0) for r in nights]) for k in stage_names},
        "peak_after": {k: max(r["peak_after"].get(k, 0.0) for r in nights) for k in stage_names},
        "parts": {k: _median([r["parts"].get(k, 0.0) for r in nights]) for k in part_names},
        "part_cpu": {
            k: _median([r["part_cpu"][k] for r in nights])
            for k in part_names
            if all(k in r.get("part_cpu", {}) for r in nights)
        },
        "inner": {k: _median([r["inner"].get(k, 0.0) for r in nights]) for k in inner_names},
        "calls": {k: max(r["calls"].get(k, 0) for r in nights) for k in inner_names},
        "other_work": {
            "max_cores": max((r["other_cores"] or 0.0 for r in everything), default=0.0),
            "measured": all(r["other_cores"] is not None for r in everything),
            "cpus": os.cpu_count(),
        },
        "pipeline_datasets": list(_pipeline_datasets()),
        "with_report": not opts.skip_report,
        "prefect": nightly["prefect"],
        "profile": nightly["profile"],
        "backfill": backfill,
        "options": {k: str(v) for k, v in vars(opts).items()},
    }


def _cli_figures(runs: list[dict]) -> dict:
    if not runs:
        return {}
    return {
        **_process_figures(runs),
        "split": {k: _median([r["split"][k] for r in runs]) for k in runs[0]["split"]},
        "stdout_lines": max(r["stdout_lines"] for r in runs),
    }


def _process_figures(runs: list[dict]) -> dict:
    """Medians of whole-process figures (wall, CPU from wait4) and the highest peak RSS."""
    if not runs:
        return {}
    return {
        "wall": _median([r["wall"] for r in runs]),
        "cpu": _median([r["cpu"] for r in runs]),
        "peak_rss_mb": max(r["peak_mb"] for r in runs),
        "runs": runs,
    }


def _pipeline_datasets() -> tuple[str, ...]:
    from flows.stages.silver import PIPELINE_DATASETS

    return tuple(PIPELINE_DATASETS)


def _total_memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB**3
    except (ValueError, OSError, AttributeError):
        return None


def run_bench(opts: Options, log: Callable[[str], None] | None = None) -> dict:
    """Generate, warm up, measure (and backfill); return the report's figures."""
    log = log or (
        lambda message: print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
    )
    work = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="chainsignals-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cleanup = not opts.keep and not opts.workdir  # never delete a folder the user named
    try:
        log(
            f"generating the full-market day ({opts.underlyings} underlyings, {opts.sessions} sessions, "
            f"{opts.prints} prints) in {work}"
        )
        market = generate_market(opts, work)
        log(f"generated {market['rows']} in {market['generate_seconds']:.0f}s")
        nightly = measure_nightly(opts, work, market, log)
        backfill = None
        if not opts.skip_backfill:
            try:
                backfill = measure_backfill(opts, work, log)
            except BenchError as exc:  # keep the nightly figures; say what broke
                backfill = {"error": str(exc)}
        return summarise(opts, market, nightly, backfill)
    finally:
        if cleanup:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------ report
def _verdict(ok: bool) -> str:
    return "ok" if ok else "**missed**"


def render(report: dict) -> str:
    scale, floor, night = report["scale"], report["floor"], report["nightly"]
    machine = report["machine"]
    rows = scale["rows"]
    lines = [
        "# chainsignals benchmark (SPEC section 8)",
        "",
        (
            f"Machine: {machine['cpus']} CPUs, {machine['memory_gb'] or 0:.0f} GB RAM, Python {machine['python']}, "
            f"polars {machine['polars']}, {machine['platform']}."
        ),
        (
            f"Market: {scale['underlyings']:,} underlyings, {scale['sessions']} sessions of bars "
            f"({rows.get('bars', 0):,} rows), chains for {scale['previous']} and {scale['target']} "
            f"({rows.get('chains', 0):,} rows), {rows.get('trades', 0):,} prints on {scale['target']}; "
            f"the day's raw files are {scale['day_mb']:.0f} MB of CSV ({', '.join(scale['day_files'])}). "
            f"Generated in {scale['generate_seconds']:.0f} s."
        ),
        (
            f"Warm-up (previous session: {rows.get('bars', 0):,} bars rows of history, its chains, gold for one "
            f"day): {report['warmup']['seconds']:.1f} s, peak RSS {report['warmup']['peak_mb']:.0f} MB."
        ),
    ]
    lines += _user_view(report)
    lines += [
        "",
        "## Nightly stages in process vs floor",
        "",
        (
            "Floor: polars reads the day's raw files and writes each once as Parquet. Nightly: what the "
            "`nightly` flow runs for the last session (ingest + silver, gold, DuckDB publish"
            + (
                ", the day's report"
                if report["with_report"]
                else "; **without the report stage** (--skip-report)"
            )
            + "), stages called directly (no Prefect), each round on a fresh copy of the warmed-up warehouse. "
            "Both run with the allocator setting `chainsignals run` starts with (flows/cli/launcher.py). "
            f"Fresh processes, alternated; medians over {len(night['runs'])} round(s)."
        ),
        "",
        "| | floor | nightly | ratio | target |",
        "|---|---:|---:|---:|---|",
        (
            f"| run time (s, in process) | {floor['seconds']:.2f} | {night['seconds']:.2f} | "
            f"{report['ratio']:.2f} | <= {TARGET_RATIO:g}: {_verdict(report['ratio'] <= TARGET_RATIO)} |"
        ),
        (
            f"| run CPU (s, in process, every thread) | {floor.get('run_cpu', 0):.2f} | {night.get('run_cpu', 0):.2f} | "
            f"{night.get('run_cpu', 0) / (floor.get('run_cpu') or 1):.2f} | |"
        ),
        (
            f"| process wall (s, with interpreter and imports) | {floor['wall']:.2f} | {night['wall']:.2f} | "
            f"{report['ratio_wall']:.2f} | |"
        ),
        (
            f"| process CPU (s, user + system, both cores) | {floor.get('cpu', 0):.2f} | {night.get('cpu', 0):.2f} | "
            f"{night.get('cpu', 0) / (floor.get('cpu') or 1):.2f} | |"
        ),
        (
            f"| peak RSS (MB) | {floor['peak_rss_mb']:.0f} | {night['peak_rss_mb']:.0f} | | "
            f"< {TARGET_RSS_MB:.0f}: {_verdict(night['peak_rss_mb'] < TARGET_RSS_MB)} |"
        ),
        "",
        "Rounds (s): floor "
        + ", ".join(f"{r['seconds']:.2f}" for r in floor["runs"])
        + "; nightly "
        + ", ".join(f"{r['seconds']:.2f}" for r in night["runs"])
        + ". "
        f"The nightly pipeline reads {', '.join(report['pipeline_datasets'])} from landing (the floor reads "
        "every raw file of the day).",
    ]
    other = report["other_work"]
    if other["max_cores"] > OTHER_WORK_WARNING_CORES:
        lines += [
            "",
            (
                f"Warning: other processes kept {other['max_cores']:.2f} of the {other['cpus']} CPUs busy "
                "on average during a round: times are inflated (the ratio less so: rounds alternate)."
            ),
        ]
    elif not other["measured"]:
        lines += ["", "Other work on the machine was not measured (no /proc/stat): quiet it while this runs."]
    prefect = report.get("prefect")
    if prefect:
        if "error" in prefect:
            lines += ["", f"Prefect `nightly` flow run: failed: {prefect['error']}"]
        else:
            lines += [
                "",
                (
                    f"Prefect `nightly` flow run (same day, ephemeral API): {prefect['seconds']:.2f} s "
                    f"in the flow call (+{prefect['import_seconds']:.1f} s importing Prefect), process wall "
                    f"{prefect['wall']:.1f} s, peak RSS {prefect['peak_mb']:.0f} MB; orchestration overhead "
                    f"{prefect['seconds'] - night['seconds']:+.2f} s over the direct stages."
                ),
            ]
    lines += _stage_table(report) + _inner_table(report) + _floor_table(floor)
    if report.get("backfill"):
        lines += _backfill_section(report["backfill"])
    if report.get("profile"):
        lines += [
            "",
            "## Profile of one nightly run (cProfile, cumulative)",
            "",
            "```",
            report["profile"]["top"].strip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _user_view(report: dict) -> list[str]:
    """`chainsignals run` as cron runs it, beside the floor and the pandas script (whole processes)."""
    cli, pandas, floor = report.get("cli") or {}, report.get("pandas") or {}, report["floor"]
    if not cli:
        return []
    split = cli["split"]
    whole, floor_wall = cli["wall"], floor["wall"]
    lines = [
        "",
        "## The user's view: `chainsignals run`, whole process",
        "",
        (
            "The night as cron runs it: `chainsignals run --date D` in a fresh process on a copy of the lake "
            "holding everything up to the previous session, the night's drop in landing, its own temporary "
            "Prefect server, output to a file. Beside it, whole processes too: the floor and "
            "`bench/pandas_reference.py` (pandas: technicals, put/call, walls, max pain, blocks; no validation, "
            "IV, greeks, database or report). Wall is what the user waits for; CPU (user + system, from wait4, "
            "the temporary server included) is what a loaded machine distorts least. "
            f"Medians over {len(cli['runs'])} round(s), alternated."
        ),
        "",
        "| process | wall s | CPU s | peak RSS (MB) | wall / floor | wall / pandas |",
        "|---|---:|---:|---:|---:|---:|",
        f"| floor | {floor_wall:.2f} | {floor.get('cpu', 0):.2f} | {floor['peak_rss_mb']:.0f} | 1.00 | |",
    ]
    if pandas:
        lines.append(
            f"| pandas script | {pandas['wall']:.2f} | {pandas['cpu']:.2f} | {pandas['peak_rss_mb']:.0f} | "
            f"{pandas['wall'] / floor_wall:.2f} | 1.00 |"
        )
    vs_pandas = f"{whole / pandas['wall']:.2f}" if pandas else ""
    lines.append(
        f"| **chainsignals run** | **{whole:.2f}** | {cli['cpu']:.2f} | {cli['peak_rss_mb']:.0f} | "
        f"**{whole / floor_wall:.2f}** | {vs_pandas} |"
    )
    kept = report.get("cli_server") or {}
    if kept:
        lines.append(
            f"| chainsignals run, a Prefect server running | {kept['wall']:.2f} | {kept['cpu']:.2f} | "
            f"{kept['peak_rss_mb']:.0f} | {kept['wall'] / floor_wall:.2f} | "
            + (f"{kept['wall'] / pandas['wall']:.2f} |" if pandas else " |")
        )
    lines += [
        "",
        (
            f"Targets: whole run <= {TARGET_RATIO:g}x the floor: {_verdict(whole <= TARGET_RATIO * floor_wall)}"
            + (f"; faster than the pandas script: {_verdict(whole < pandas['wall'])}" if pandas else "")
            + f"; peak RSS < {TARGET_RSS_MB:.0f} MB: {_verdict(cli['peak_rss_mb'] < TARGET_RSS_MB)}."
        ),
        "",
        (
            "Where the run's seconds go, cut at the CLI's own progress lines (stderr, timestamped on arrival): "
            f"before the flow {split['before the flow']:.2f} (start-up {split['start-up']:.2f}: interpreter, "
            f"imports, pre-checks; Prefect's start {split['prefect start']:.2f}: temporary server, flow run), "
            f"the flow's stages {split['the flow']:.2f}, after the flow {split['after the flow']:.2f} "
            f"(Prefect's end {split['prefect end']:.2f}, output and exit {split['output and exit']:.2f}; "
            f"{cli['stdout_lines']:,} lines printed)."
        ),
        "",
        "Rounds (wall s): "
        + "; ".join(
            f"{name} " + ", ".join(f"{r['wall']:.2f}" for r in runs["runs"])
            for name, runs in (
                ("floor", floor),
                ("pandas", pandas),
                ("chainsignals run", cli),
                ("with a running server", kept),
            )
            if runs
        ),
    ]
    if kept:
        lines[-2:-2] = [
            "",
            (
                "With a Prefect server already running (an operator's `prefect server start`, "
                "PREFECT_API_URL), the run starts none: before the flow "
                f"{kept['split']['before the flow']:.2f}, the stages {kept['split']['the flow']:.2f}, after "
                f"{kept['split']['after the flow']:.2f} (that server's CPU is not the run's)."
            ),
        ]
    return lines


def _stage_table(report: dict) -> list[str]:
    total = sum(report["stages"].values()) or 1.0
    cpu = report.get("stage_cpu", {})
    total_cpu = sum(cpu.values())
    lines = [
        "",
        "## Nightly per stage (median seconds)",
        "",
        (
            "CPU is the whole process's (every thread) during the stage; cores = CPU / seconds, out of "
            f"{os.cpu_count()}."
        ),
        "",
        "| stage | seconds | share | CPU s | cores | peak RSS at its end (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, seconds in report["stages"].items():
        used = cpu.get(name, 0.0)
        lines.append(
            f"| {name} | {seconds:.2f} | {seconds / total:.0%} | {used:.2f} | "
            f"{used / seconds if seconds >= 0.01 else 0.0:.1f} | {report['peak_after'][name]:.0f} |"
        )
    lines.append(f"| **total** | **{total:.2f}** | | **{total_cpu:.2f}** | **{total_cpu / total:.1f}** | |")
    parts = report.get("parts", {})
    if parts:
        part_cpu = report.get("part_cpu", {})
        lines += [
            "",
            (
                "Inside the ingest and gold stages (gold per table from its pipeline_runs rows: from the "
                "previous table's end to its own, wall only):"
            ),
            "",
            "| part | seconds | CPU s |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {name} | {seconds:.2f} | {f'{part_cpu[name]:.2f}' if name in part_cpu else ''} |"
            for name, seconds in parts.items()
        ]
    return lines


def _inner_table(report: dict) -> list[str]:
    lines = [
        "",
        "Inside those stages (overlapping, for hot spots):",
        "",
        "| hot spot | calls | seconds |",
        "|---|---:|---:|",
    ]
    for name, seconds in sorted(report["inner"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {report['calls'][name]} | {seconds:.2f} |")
    return lines


def _floor_table(floor: dict) -> list[str]:
    lines = [
        "",
        "## Floor per file (first round)",
        "",
        "| file | MB | rows | seconds |",
        "|---|---:|---:|---:|",
    ]
    for f in floor["runs"][0]["files"]:
        lines.append(f"| {f['file']} | {f['mb']:.0f} | {f['rows']:,} | {f['seconds']:.2f} |")
    return lines


def _backfill_section(backfill: dict) -> list[str]:
    lines = ["", "## Backfill: peak RSS per month processed", ""]
    if "error" in backfill:
        return [*lines, f"Failed: {backfill['error']}"]
    rows, t, months = backfill["rows"], backfill["timings"], backfill["months"]
    trend = {
        name: slope_per_month([m[key] for m in months[1:-1] or months])
        for name, key in (
            ("bronze", "bronze_peak_mb"),
            ("silver", "silver_peak_mb"),
            ("gold", "gold_peak_mb"),
            ("retained", "rss_after_mb"),
        )
    }
    how = (
        "the true peak between two samples (the high-water mark is reset after each)"
        if backfill["peak_resets"]
        else "the high-water mark so far (this system cannot reset it)"
    )
    lines += [
        (
            f"{backfill['underlyings']} underlyings, {backfill['sessions']} sessions of bars, "
            f"{backfill['chain_sessions']} sessions of chains ({rows.get('chains', 0):,} chain rows, "
            f"{rows.get('trades', 0):,} prints), generated in {backfill['generate_seconds']:.0f} s. One process "
            "runs the backfill flow's stages over every chain session (each stage over all sessions, as the "
            "`backfill` flow does): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
            + f"; process wall {backfill['wall']:.0f} s "
            f"({backfill['chain_sessions'] / backfill['wall'] * 60:.1f} sessions a minute), peak RSS "
            f"{backfill['peak_mb']:.0f} MB."
        ),
        (
            f"RSS is sampled after every session a stage writes; each figure is {how}. Trend over the full "
            "months (MB per month): " + ", ".join(f"{k} {v:+.1f}" for k, v in trend.items()) + "."
        ),
        "",
        (
            "| month | chain sessions | chain rows | ingest peak (MB) | silver peak (MB) | gold peak (MB) "
            "| RSS after its gold (MB) | ingest s | silver s | gold s |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in months:
        lines.append(
            f"| {m['month']} | {m['sessions']} | {m['chain_rows']:,} | {m['bronze_peak_mb']:.0f} | "
            f"{m['silver_peak_mb']:.0f} | {m['gold_peak_mb']:.0f} | {m['rss_after_mb']:.0f} | "
            f"{m['bronze_seconds']:.0f} | {m['silver_seconds']:.0f} | {m['gold_seconds']:.0f} |"
        )
    if "backtest" in backfill:
        lines += _backtest_section(backfill["backtest"])
    return lines


def _backtest_section(backtest: dict) -> list[str]:
    lines = ["", "## Backtest over the backfilled year", ""]
    if "error" in backtest:
        return [*lines, f"Failed: {backtest['error']}"]
    per_set = ", ".join(f"{name} {count:,}" for name, count in backtest["ideas_per_set"].items())
    return [
        *lines,
        (
            f"`chainsignals backtest {backtest['rules']} --baseline` (the seed note's plays beside it) over "
            f"the lake the backfill built: {backtest['sessions']} sessions ({backtest['first']} to "
            f"{backtest['last']}), {backtest['underlyings']} underlyings, {backtest['ideas']:,} ideas "
            f"({per_set}) with their outcomes and scorecard, in {backtest['wall']:.1f} s wall and "
            f"{backtest['cpu']:.1f} CPU s (the whole CLI process, start-up included), peak RSS "
            f"{backtest['peak_mb']:.0f} MB"
            + (
                f"; other processes kept {backtest['other_cores']:.2f} cores busy meanwhile."
                if backtest.get("other_cores") is not None
                else "."
            )
        ),
    ]


# ------------------------------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child = argparse.ArgumentParser()
        child.add_argument("--child", choices=sorted(CHILDREN))
        child.add_argument("--spec", type=Path)
        child.add_argument("--result", type=Path)
        args = child.parse_args(argv)
        run_child(args.child, args.spec, args.result)
        return 0
    opts = parse_options(argv)
    try:
        report = run_bench(opts)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    text = render(report)
    print(text)
    if opts.output:
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        opts.output.write_text(text)
    if opts.json_output:
        opts.json_output.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

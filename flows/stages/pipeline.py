"""The pipeline's stages as plain functions over all symbols and dates at once.

landing -> bronze -> silver (validated, quarantine) -> gold -> warehouse. The Prefect flows in
flows/nightly.py wrap each stage in one task; tests may call the stages directly.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from itertools import groupby
from pathlib import Path

import polars as pl

from flows.storage.fingerprints import code_fingerprint
from flows.sources.calendar import non_sessions
from flows.config import Settings
from flows.errors import ChainsignalsError
from flows.storage.faults import crash_point
from flows.storage.lake import (
    GoldStagedLake,
    Lake,
    LakePath,
    Staging,
    bronze_key,
    modified_ns,
    raw_suffix,
    read_manifest,
    read_parquet,
    split_dates,
    sweep_debris,
    version,
    write_atomic,
    write_manifest,
)
from flows.stages.progress import count
from flows.sources.files import (
    DATASETS,
    SourceError,
    bronze_schema,
    check_size,
    conform,
    file_digest,
    landing_files,
    now_utc,
    read_text_frame,
)
from schemas.gold import GOLD_BY_NAME, GOLD_TABLES, validate_gold
from schemas.quarantine import NOT_A_SESSION, REASON, split_duplicates, split_valid
from schemas.silver import Bars, Chains, Trades
from transforms.features import join_features, with_signals
from transforms.order_flow import blocks, flow_daily
from transforms.forwards import expiry_forwards
from transforms.greeks import derive_iv_and_greeks, expiry_exposure, iv_rank_percentile, session_greeks
from transforms.ideas import TRADE_IDEA_SCHEMA, option_chain, trade_ideas
from transforms.outcomes import exit_mid_sessions, outcomes_for_run, walk_from
from transforms.positioning import (
    expiry_levels,
    positioning_daily,
    previous_sessions,
    strike_levels,
    strike_open_interest,
)
from transforms.signals import pcr_zscore, signals_daily
from transforms.silver import (
    BARS_COLUMNS,
    CHAIN_COLUMNS,
    LINEAGE_COLUMNS,
    dedupe_order,
    silver_bars,
    silver_chains,
)
from transforms.technicals import carry_forward, technicals_daily, technicals_with_state
from transforms.trades import TRADE_SCHEMA, contract_reasons, silver_trades
from transforms.yardsticks import expiry_yardsticks

# Order matters: chains take spot from the bars, prints are checked against the chains.
PIPELINE_DATASETS = ("bars", "chains", "trades")
SILVER_KEYS: dict[str, list[str] | None] = {
               "bars": ["trade_date", "symbol"],
               # Prints have no natural key: two same-microsecond prints of one contract are both real.
               "trades": None,
               # option_symbol too: SPX and SPXW (or IWM and adjusted IWM1) list the same strike and expiry
               "chains": ["trade_date", "underlying", "option_symbol", "expiration", "strike", "option_type"]}
SILVER_MODELS = {"bars": Bars, "chains": Chains, "trades": Trades}
# The order silver partitions are written in: the key (or a total order for prints), with the chain's
# expiration and option type left out because the validated OSI symbol already decides them. Prints of
# one microsecond keep the tape's order (file, then row): that is the sequence they were reported in.
SILVER_ORDER = {"bars": ["trade_date", "symbol"],
                "chains": ["trade_date", "underlying", "option_symbol", "strike"],
                "trades": ["ts", "_source_file", "_source_row"]}
# The instrument a chain row is on: `underlying` in silver (the landing name), `symbol` in gold (SPEC 2).
GOLD_RENAMES = {"underlying": "symbol"}


class RejectedShareError(ChainsignalsError):
    """Too many rows of a `dataset` and `date` failed validation; the message is one line."""


@dataclass
class StageStats:
    """Row counts per dataset and date, the raw material of pipeline_runs."""

    rows: list[dict] = field(default_factory=list)

    def add(self, dataset: str, day: date, rows_in: int, rows_out: int, rows_rejected: int,
            started_at: datetime) -> None:
        self.rows.append({"dataset": dataset, "trade_date": day, "rows_in": rows_in, "rows_out": rows_out,
                          "rows_rejected": rows_rejected, "started_at": started_at, "finished_at": now_utc()})

    def frame(self) -> pl.DataFrame:
        # A row may name the run that computed it (a cached gold result reused by a later run).
        by = {"run_id": pl.String} if self.rows and "run_id" in self.rows[0] else {}
        return pl.DataFrame(self.rows, schema={
            "dataset": pl.String, "trade_date": pl.Date, "rows_in": pl.Int64, "rows_out": pl.Int64,
            "rows_rejected": pl.Int64, "started_at": pl.Datetime("us", "UTC"),
            "finished_at": pl.Datetime("us", "UTC"), **by})


def silver_schema(dataset: str) -> dict[str, pl.DataType]:
    base = bronze_schema(dataset)
    if dataset == "trades":
        return dict(TRADE_SCHEMA) | {c: base[c] for c in LINEAGE_COLUMNS}
    if dataset == "bars":
        return {c: base[c] for c in BARS_COLUMNS} | {c: base[c] for c in LINEAGE_COLUMNS}
    derived = {"mid": pl.Float64(), "dte": pl.Int64(), "spot_derived": pl.Boolean(), "iv_derived": pl.Boolean(),
               "greeks_derived": pl.Boolean(), "forward": pl.Float64(), "forward_source": pl.String(),
               "iv_status": pl.String()}
    return {c: base.get(c, derived.get(c)) for c in CHAIN_COLUMNS} | {c: base[c] for c in LINEAGE_COLUMNS}


# ------------------------------------------------------------------------------------------ ingest
@dataclass
class IngestResult:
    touched: dict[str, set[date]]
    manifest: pl.DataFrame
    files_read: int
    files_skipped: int
    warnings: list[str] = field(default_factory=list)  # for the operator; the run goes on
    hidden: list[str] = field(default_factory=list)  # landing files skipped for a leading dot
    unsettled: list[str] = field(default_factory=list)  # still changing: left for the next run


def _part_name(relative: str) -> str:
    return "src-" + hashlib.sha1(relative.encode()).hexdigest()[:16]


def _settled(paths: list[Path], seconds: float) -> tuple[list[Path], list[Path]]:
    """(files whose size and mtime held still for `seconds`, files still changing). A file younger
    than that is looked at again once it would be old enough (one wait for all, at most `seconds`):
    a copy in progress keeps growing and is left for the next run."""
    if seconds <= 0 or not paths:
        return paths, []
    before = {p: p.stat() for p in paths}
    youngest = max(st.st_mtime for st in before.values())
    wait = youngest + seconds - time.time()
    if wait <= 0:
        return paths, []
    time.sleep(min(wait, seconds))
    settled, moving = [], []
    for path in paths:
        now = path.stat()
        same = (now.st_size, now.st_mtime_ns) == (before[path].st_size, before[path].st_mtime_ns)
        (settled if same else moving).append(path)
    return settled, moving


def ingest_landing(settings: Settings, staging: Staging, *, datasets: tuple[str, ...] = PIPELINE_DATASETS,
                   force: bool = False, formats: dict[str, str] | None = None) -> IngestResult:
    """Copy every new or changed landing file into bronze (its raw bytes, keyed by sha256) and hold its
    typed rows for silver; unchanged files are skipped.

    A file is unchanged when its sha256 matches the manifest's, whatever its size and mtime (a
    corrected file extracted from an archive keeps both). The run parses and hashes its own copy of the
    file, so bronze holds exactly the bytes that were read. A file of several sessions delivered again
    re-validates only the sessions whose rows changed (the manifest keeps each session's rows digest).
    Files still being written (see _settled) and hidden files are left out, and listed in the result.
    """
    manifest = read_manifest(staging.lake)
    known = {row["path"]: row for row in manifest.iter_rows(named=True)}
    touched: dict[str, set[date]] = defaultdict(set)
    new_rows, read, skipped, warnings = [], 0, 0, []
    hidden: list[Path] = []
    listed = {dataset: landing_files(settings.landing, dataset, hidden) for dataset in datasets}
    settled, unsettled = _settled([p for paths in listed.values() for p in paths], settings.stable_seconds)
    settled_set = set(settled)
    ingested_at = now_utc()
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for dataset in datasets:
            for path in (p for p in listed[dataset] if p in settled_set):
                relative = path.relative_to(settings.landing).as_posix()
                stat = path.stat()
                previous = known.get(relative)
                # A row from before bronze kept raw bytes has no copy: the file is read again, once.
                # The content decides whether to read it.
                if previous and previous["bronze"] and not force and previous["sha256"] == file_digest(path):
                    if previous["mtime_ns"] != stat.st_mtime_ns:
                        new_rows.append({**previous, "mtime_ns": stat.st_mtime_ns})
                    skipped += 1
                    continue
                check_size(path, settings.max_file_bytes)
                # Parse the copy and hash it on another thread meanwhile (both mostly GIL-free).
                copy = staging.stage_raw(path)
                pending_digest = hasher.submit(file_digest, copy)
                bronze, fmt = conform(read_text_frame(copy, settings.max_file_bytes, shown=path), dataset, path,
                                      relative, ingested_at, (formats or {}).get(dataset))
                digest = pending_digest.result()
                key = bronze_key(dataset, digest, raw_suffix(path.name))
                staging.keep_raw(copy, staging.lake.bronze_file(key), digest)
                part = _part_name(relative)
                dates = sorted(d for d in bronze.get_column("trade_date").unique().to_list() if d is not None)
                undated = (bronze.filter(pl.col("trade_date").is_null()) if bronze.get_column("trade_date").null_count()
                           else bronze.clear())
                if len(undated) == len(bronze) and len(bronze):
                    raise SourceError(f"{path}: no row has a readable date", file=path, dataset=dataset)
                off = non_sessions(dates, settings.calendar)
                if off:  # e.g. a vendor's stale snapshot on a holiday: quarantined here, never a session
                    bronze = _stage_non_sessions(staging, dataset, bronze, off, part)
                    dates = [d for d in dates if d not in off]
                    warnings.append(_non_session_warning(relative, off, settings.calendar))
                by_day = split_dates(bronze)
                # A file of one session that changed has changed that session: no digest needed.
                digests = {day: _rows_digest(rows) for day, rows in by_day.items()} if len(by_day) > 1 else {}
                before = (dict(zip(previous["dates"], previous["digests"], strict=True))
                          if previous and previous["digests"] and not force else {})
                changed = []
                for day, rows in by_day.items():
                    if before.get(day) is not None and before[day] == digests.get(day):
                        continue  # a cumulative file delivered again: this day's rows as they were
                    staging.stage_scratch(rows, dataset, day, part)
                    changed.append(day)
                if len(undated):
                    # Rows without a date cannot be partitioned: they go straight to quarantine.
                    _stage_undated(staging, dataset, undated, ingested_at.date(), part)
                for stale in set(previous["dates"] if previous else []) - set(dates):
                    touched[dataset].add(stale)  # the file no longer holds it: rebuilt from the others
                touched[dataset].update(changed)
                unbuilt = (set(previous["unbuilt"] or []) & set(dates) if previous else set()) | set(changed)
                new_rows.append({"path": relative, "dataset": dataset, "format": fmt, "size": stat.st_size,
                                 "mtime_ns": stat.st_mtime_ns, "sha256": digest, "part": part, "dates": dates,
                                 "rows": len(bronze), "ingested_at": ingested_at, "bronze": key,
                                 "digests": [digests[d] for d in dates] if digests else None,
                                 "unbuilt": sorted(unbuilt)})
                read += 1
    updated = {r["path"]: r for r in [*known.values(), *new_rows]}
    merged = pl.DataFrame(list(updated.values()), schema=manifest.schema) if updated else manifest
    return IngestResult(dict(touched), merged, read, skipped, warnings,
                        [p.relative_to(settings.landing).as_posix() for p in hidden],
                        [p.relative_to(settings.landing).as_posix() for p in unsettled])


# What a delivery adds to a row, left out of a session's rows digest: in a file sorted by symbol a new
# session's rows land between the old ones and shift every row number.
DELIVERY_COLUMNS = ["trade_date", "_source_row", "_ingested_at"]


def _rows_digest(rows: pl.DataFrame) -> str:
    """A session's rows, in order (the order decides duplicates), as one digest. polars' row hashes
    are stable within its version; after an upgrade a cumulative file's sessions are re-validated once."""
    hashes = rows.drop(DELIVERY_COLUMNS, strict=False).hash_rows()
    return hashlib.sha256(hashes.to_numpy().tobytes()).hexdigest()


def hold_sources(settings: Settings, staging: Staging, manifest: pl.DataFrame, dataset: str,
                 dates: set[date]) -> None:
    """Complete silver's input for `dates`: the typed rows of every landing file holding one of them.
    Files this run did not read (or read only in part) are conformed again from their bronze copy,
    through the same vendor format as at ingest."""
    holders = manifest.filter((pl.col("dataset") == dataset)
                              & pl.col("dates").list.eval(pl.element().is_in(list(dates))).list.any())
    for row in holders.iter_rows(named=True):
        missing = [d for d in row["dates"] if d in dates and row["part"] not in staging.scratch.get((dataset, d), {})]
        if not missing:
            continue
        landing = settings.landing / row["path"]
        if not row["bronze"]:
            raise SourceError(f"{landing}: no bronze copy of it in the lake; deliver it again to re-validate "
                              f"{', '.join(map(str, missing))}")
        copy = staging.raw_copy(staging.lake.bronze_file(row["bronze"]))
        frame, _ = conform(read_text_frame(copy, settings.max_file_bytes, shown=landing), dataset, landing,
                           row["path"], row["ingested_at"], row["format"])
        for day, rows in split_dates(frame.filter(pl.col("trade_date").is_in(missing))).items():
            staging.stage_scratch(rows, dataset, day, row["part"])


def _stage_non_sessions(staging: Staging, dataset: str, bronze: pl.DataFrame, days: list[date],
                        part: str) -> pl.DataFrame:
    """Stage the rows dated on `days` (not sessions) to quarantine; the other rows, for bronze.

    They never reach bronze or silver, so such a day is never a session nor any session's previous one,
    and they are not part of any session's rejected share: a vendor's stale holiday file is normal, not
    bad data. The run warns about them instead (_non_session_warning)."""
    off = pl.col("trade_date").is_in(days)
    rows = bronze.filter(off).with_columns(pl.lit(NOT_A_SESSION).alias(REASON))
    for day, day_rows in split_dates(rows).items():
        staging.stage(day_rows, "quarantine", dataset, day, part, exclusive=False)
    return bronze.filter(~off)


def _non_session_warning(relative: str, days: list[date], calendar: str) -> str:
    shown = ", ".join(map(str, days[:5])) + (f" and {len(days) - 5} more" if len(days) > 5 else "")
    return (f"{relative}: rows dated {shown}, not {calendar} session(s), quarantined as {NOT_A_SESSION} "
            f"(a vendor's stale snapshot; never a previous session)")


def _stage_undated(staging: Staging, dataset: str, undated: pl.DataFrame, day: date, part: str) -> None:
    rows = undated.with_columns(pl.lit("unparsable:trade_date").alias(REASON))
    staging.stage(rows.drop("trade_date"), "quarantine", f"{dataset}_undated", day, part, exclusive=False)


def dirty_silver_dates(lake: Lake, dataset: str, manifest: pl.DataFrame | None = None) -> set[date]:
    """Sessions bronze holds whose silver is missing, or whose rows changed in a run that left their
    silver for later (the manifest's `unbuilt`). `manifest`: this run's, when it has one."""
    manifest = read_manifest(lake) if manifest is None else manifest
    rows = manifest.filter(pl.col("dataset") == dataset)
    held = set(rows.get_column("dates").explode().drop_nulls().to_list())
    unbuilt = set(rows.get_column("unbuilt").explode().drop_nulls().to_list())
    return (held - set(lake.dates("silver", dataset))) | unbuilt


# ------------------------------------------------------------------------------------------ silver
def _date_batches(day_rows: dict[date, int], budget: int) -> list[list[date]]:
    batches, current, size = [], [], 0
    for day in sorted(day_rows):
        if current and size + day_rows[day] > budget:
            batches.append(current)
            current, size = [], 0
        current.append(day)
        size += day_rows[day]
    return [*batches, current] if current else batches


def build_silver(settings: Settings, staging: Staging, dataset: str, dates: set[date],
                 stats: StageStats, manifest: pl.DataFrame | None = None) -> dict[date, int]:
    """Validate, de-duplicate and derive the given dates; stage silver and quarantine partitions.

    Raises RejectedShareError (nothing is committed then) when a date's rejected share passes the limit
    (dates with fewer than `min_rows_for_limit` rows are not judged: a share of three rows means nothing).
    Duplicates are resolved deterministically, quarantined too, and count towards the limit (SPEC 7):
    a re-delivered file replaces its own rows (same path), so a day that is mostly duplicates is two
    names for one delivery, or a file of repeated rows, for the operator to look at.
    `manifest`: the landing files as this run leaves them (default: the lake's).
    """
    bronze = bronze_schema(dataset)
    hold_sources(settings, staging, read_manifest(staging.lake) if manifest is None else manifest, dataset, dates)
    files = {day: staging.scratch_files(dataset, day) for day in dates}
    sizes = {day: staging.rows(fs) for day, fs in files.items()}
    work = dict(sizes)
    if dataset == "trades":  # each batch of prints is checked against its sessions' chains: count them too
        work = {day: n + staging.rows(staging.staged_or_committed("silver", "chains", day)) for day, n in sizes.items()}
    out: dict[date, int] = {}
    done = 0
    for batch in _date_batches(work, settings.batch_rows):
        count(f"silver {dataset} sessions", done, len(work))
        done += len(batch)
        started = now_utc()
        batch_files = [f for day in batch for f in files[day]]
        raw = staging.read(batch_files, bronze)
        if dataset == "bars":
            derived = silver_bars(raw).collect()
        elif dataset == "chains":
            closes = _silver_closes(staging, batch)
            derived = silver_chains(raw, closes).collect()
        else:
            derived = silver_trades(raw).collect()
        unparsable = derived.filter(pl.col("_parse_errors").is_not_null()).with_columns(
            pl.concat_str(pl.lit("unparsable:"), pl.col("_parse_errors")).alias(REASON))
        candidates = derived.filter(pl.col("_parse_errors").is_null())
        valid, invalid = split_valid(candidates, SILVER_MODELS[dataset], dataset)
        keys = SILVER_KEYS[dataset]
        if keys:
            kept, duplicates = split_duplicates(valid, keys, dedupe_order())
        else:
            kept, duplicates = valid, valid.clear().with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
        if dataset == "chains":  # IV from the mid and greeks from IV where the vendor left them empty
            kept = derive_iv_and_greeks(kept.lazy(), settings.risk_free_rate).collect()
        if dataset == "trades":  # prints on contracts not listed that day, or already expired
            judged = contract_reasons(kept.lazy(), _silver_scan(staging, "chains", batch)).collect()
            flagged = judged.filter(pl.col(REASON).is_not_null())
            kept = judged.filter(pl.col(REASON).is_null()).drop(REASON)
            invalid = pl.concat([invalid, flagged], how="diagonal_relaxed")
        rejected = pl.concat([unparsable, invalid], how="diagonal_relaxed")
        quarantine = pl.concat([rejected, duplicates], how="diagonal_relaxed")
        schema = silver_schema(dataset)
        # One day at a time: split into all days at once, a backfill's batch would be held twice (its silver
        # peak rose from 2.7 to 4.0 GB that way).
        for day in batch:
            day_in = sizes[day]
            # Duplicates count too (SPEC 7): a file of one row repeated ten million times is not a day.
            day_rejected = pl.concat([_rows_on(rejected, day), _rows_on(duplicates, day)], how="diagonal_relaxed")
            day_bad = day_rejected.height
            if day_in >= settings.min_rows_for_limit and day_bad / day_in > settings.max_rejected_share:
                reasons = (day_rejected.group_by(REASON).len()
                           .sort("len", descending=True).head(3).rows())
                top = ", ".join(f"{r} ({n})" for r, n in reasons)
                raise RejectedShareError(
                    f"{dataset} {day}: {day_bad} of {day_in} rows rejected ({day_bad / day_in:.1%}) "
                    f"> limit {settings.max_rejected_share:.1%}; top reasons: {top}", dataset=dataset, date=day)
            day_rows = _in_order(_rows_on(kept, day).select(list(schema)), SILVER_ORDER[dataset])
            day_quarantine = _rows_on(quarantine, day)
            # Kept in memory for the next datasets' checks (chains need the bars, prints the chains).
            staging.stage(day_rows, "silver", dataset, day, "part-0", exclusive=True, keep=dataset != "trades")
            staging.stage(day_quarantine.select(*[c for c in bronze if c in day_quarantine.columns], REASON),
                          "quarantine", dataset, day, "part-0", exclusive=True)
            stats.add(f"silver.{dataset}", day, day_in, day_rows.height, day_quarantine.height, started)
            out[day] = day_rows.height
        staging.forget(batch_files)
    if work:
        count(f"silver {dataset} sessions", done, len(work))
    return out


def _rows_on(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    """The rows dated `day`; the frame itself when they all are (a nightly's one-day batch), not a copy."""
    dates = frame.get_column("trade_date")
    if not dates.null_count() and dates.min() == day and dates.max() == day:
        return frame
    return frame.filter(pl.col("trade_date") == day)


# Runs of the leading keys averaging fewer rows than this: _in_order sorts outright. A full-market chain
# whose runs were split checked 2 million one-row runs for repeats (0.5 s) before sorting anyway (0.35 s).
MIN_ROWS_PER_RUN = 2


def _in_order(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """`frame` sorted by `keys` (a unique key), with as little sorting as the rows need.

    Rows already in key order (a vendor's prints usually come in time order) are not sorted: one pass
    that compares neighbours is cheaper. Rows in order within each run of the leading keys, every run a
    different value (a vendor lists each underlying's contracts in order, the underlyings in its own
    order), need only a stable sort by those leading keys, a fraction of a sort by all of them."""
    if frame.height < 2:
        return frame
    for lead in range(len(keys)):
        if not frame.select(_ordered_within(keys[:lead], keys[lead:])).item():
            continue
        if not lead:
            return frame
        starts = pl.any_horizontal(pl.int_range(pl.len()) == 0, *(pl.col(k).ne_missing(pl.col(k).shift(1))
                                                                  for k in keys[:lead]))
        heads = frame.select(keys[:lead]).filter(starts)  # the first row of each run
        if heads.height > frame.height // MIN_ROWS_PER_RUN:
            break  # runs this short: checking them for repeats costs about what the full sort does
        if not heads.is_duplicated().any():  # a leading value in two runs would need the full sort
            return frame.sort(keys[:lead], maintain_order=True)
    return frame.sort(keys)


def _ordered_within(lead: list[str], rest: list[str]) -> pl.Expr:
    """True when each row and the next are in `rest` order, or differ in a `lead` key. A null or NaN in
    `rest` compares as out of order, so such rows are always sorted (where nulls go is the sort's call)."""
    following = [pl.col(k).shift(-1) for k in rest]
    in_order = pl.col(rest[-1]) <= following[-1]
    for key, next_value in zip(reversed(rest[:-1]), reversed(following[:-1]), strict=True):
        in_order = (pl.col(key) < next_value) | ((pl.col(key) == next_value) & in_order)
    in_order = in_order.fill_null(False)
    for key in lead:
        in_order = in_order | pl.col(key).ne_missing(pl.col(key).shift(-1))
    # The last row has no neighbour.
    return pl.when(pl.int_range(pl.len()) < pl.len() - 1).then(in_order).otherwise(True).all()


def _silver_scan(staging: Staging, dataset: str, days: list[date]) -> pl.LazyFrame:
    """A silver dataset as this run will leave it (staged partitions over committed ones)."""
    files = [f for day in days for f in staging.staged_or_committed("silver", dataset, day)]
    return staging.read(files, silver_schema(dataset))


def _silver_closes(staging: Staging, days: list[date]) -> pl.LazyFrame:
    return _silver_scan(staging, "bars", days).select("trade_date", "symbol", "close")


def ingest_and_validate(settings: Settings, run_id: str, *, end: date | None = None, force: bool = False,
                        formats: dict[str, str] | None = None) -> tuple[IngestResult, StageStats]:
    """Landing -> bronze -> silver for every new or dirty date, committed only when all of it passed."""
    lake = Lake(settings.lake)
    # A lake on object storage stages on local disk, beside the lock that guards it.
    staging_folder = settings.warehouse / ".staging" if lake.remote else None
    sweep_debris(lake, staging_folder)
    # A nightly's typed rows (one session of every dataset, each up to a batch) pass to silver in memory;
    # a backfill's do not fit and are re-read from scratch files.
    staging = Staging(lake, run_id, folder=staging_folder, keep_rows=2 * settings.batch_rows)
    stats = StageStats()
    try:
        result = ingest_landing(settings, staging, force=force, formats=formats)
        manifest = result.manifest
        built: dict[str, list[date]] = {}
        for dataset in PIPELINE_DATASETS:  # bars first: chains take spot from them
            dates = result.touched.get(dataset, set()) | dirty_silver_dates(lake, dataset, manifest)
            if dataset == "trades":  # a changed chain re-judges that day's prints (unknown_contract...)
                printed = set(manifest.filter(pl.col("dataset") == "trades").get_column("dates").explode().to_list())
                dates |= result.touched.get("chains", set()) & printed
            if end is not None:
                dates = {d for d in dates if d <= end}
            build_silver(settings, staging, dataset, dates, stats, manifest)
            built[dataset] = sorted(dates)
        # Sessions whose silver this run built are no longer waiting for it.
        result.manifest = manifest.with_columns(pl.coalesce(
            *(pl.when(pl.col("dataset") == dataset).then(
                pl.col("unbuilt").list.set_difference(pl.lit(days, dtype=pl.List(pl.Date))))
              for dataset, days in built.items()),
            pl.col("unbuilt")).alias("unbuilt"))
        crash_point("ingest-staged")
        staging.commit()
        # Silver's row counts travel with the lake until a publish records them: a run killed after
        # this commit still gets its pipeline_runs rows from whichever run publishes next.
        record_pending_stats(lake, stats.frame().with_columns(pl.lit(run_id).alias("run_id")))
        # A crash here leaves the lake committed and the manifest behind: the next run re-reads the
        # same files and stages identical parts (and replaces these stats), so the end state is the same.
        crash_point("manifest-pending")
        write_manifest(lake, result.manifest)
    except BaseException:
        staging.discard()
        raise
    return result, stats


def _pending_stats_path(lake: Lake) -> LakePath:
    return lake.root / "_runs" / "pending_stats.parquet"


def record_pending_stats(lake: Lake, stats: pl.DataFrame) -> None:
    """Merge stage stats awaiting publication; a newer row for the same date and dataset replaces."""
    if stats.is_empty():
        return
    merged = pl.concat([pending_stats(lake), stats], how="diagonal_relaxed").unique(
        subset=["trade_date", "dataset"], keep="last", maintain_order=True)
    write_atomic(merged, _pending_stats_path(lake))


def pending_stats(lake: Lake) -> pl.DataFrame:
    path = _pending_stats_path(lake)
    if not path.exists():
        return StageStats().frame().with_columns(pl.lit(None, dtype=pl.String).alias("run_id"))
    return read_parquet(path)


def clear_pending_stats(lake: Lake) -> None:
    _pending_stats_path(lake).unlink(missing_ok=True)


def stale_gold_sessions(lake: Lake, pending: pl.DataFrame, computed: list[date]) -> list[date]:
    """Gold sessions computed before silver they depend on changed: every session with gold from the
    earliest silver date rebuilt since the last publish (`pending`) on, except those just computed.
    Later sessions depend on earlier silver too (a symbol's technicals run over its history, OI change
    compares with the previous chain, idea outcomes walk the sessions after each idea)."""
    rebuilt = pending.filter(pl.col("dataset").str.starts_with("silver.")).get_column("trade_date")
    if rebuilt.is_empty():
        return []
    done = set(computed)
    return [d for d in lake.dates("gold", "technicals_daily") if d >= rebuilt.min() and d not in done]


def latest_landing_session(settings: Settings) -> date | None:
    manifest = read_manifest(Lake(settings.lake))
    dates = manifest.filter(pl.col("dataset").is_in(list(PIPELINE_DATASETS))).get_column("dates").explode()
    dates = dates.drop_nulls()
    return dates.max() if len(dates) else None


# ------------------------------------------------------------------------------------------ gold
def shard_of(symbol: str, shards: int) -> int:
    """Stable across processes and machines (Python's hash() is salted per process)."""
    return int(hashlib.md5(symbol.encode()).hexdigest()[:8], 16) % shards


def shard_part(index: int, shards: int) -> str:
    return f"part-{index}-of-{shards}"


def shard_symbols(settings: Settings, dates: list[date], index: int, shards: int) -> list[str]:
    """The underlyings of shard `index` among those with bars or a chain in `dates`."""
    lake = Lake(settings.lake)
    universe = set(lake.scan("silver", "bars", {"trade_date": pl.Date(), "symbol": pl.String()}, dates=dates)
                   .select("symbol").unique().collect().to_series().to_list())
    universe |= set(lake.scan("silver", "chains", {"trade_date": pl.Date(), "underlying": pl.String()}, dates=dates)
                    .select("underlying").unique().collect().to_series().to_list())
    return sorted(s for s in universe if shard_of(s, shards) == index)


def gold_lake(settings: Settings, run_id: str | None) -> Lake:
    """Where a gold stage writes: the run's staged gold (committed with the publish), or with no run
    the lake itself (tests and benchmarks calling build_gold directly)."""
    return GoldStagedLake(settings.lake, run_id=run_id) if run_id else Lake(settings.lake)


def finish_shards(settings: Settings, dates: list[date], shards: int, run_id: str | None = None) -> None:
    """After every shard wrote its parts: drop parts from earlier runs (other shard counts, part-0)."""
    lake = gold_lake(settings, run_id)
    expected = {shard_part(i, shards) for i in range(shards)}
    for table in GOLD_TABLES:
        lake.keep_only_parts("gold", table, dates, expected)


def build_gold(settings: Settings, dates: list[date], stats: StageStats,
               symbols: list[str] | None = None, shard: tuple[int, int] | None = None,
               run_id: str | None = None) -> dict[str, dict[date, int]]:
    """All gold tables for `dates`, from silver data dated on or before each date (no lookahead).

    `symbols` restricts the run to those underlyings: their rows are recomputed and merged into the
    day's partitions, other symbols' rows are kept as they are. `shard` (index, count) computes the
    underlyings hashed to that shard and writes them as the partition's part `part-<i>-of-<n>`
    (then call finish_shards once every shard is done). `run_id`: stage the tables under that run
    (see GoldStagedLake) for the publish to commit; without it they are written into the lake.
    """
    lake = gold_lake(settings, run_id)
    dates = sorted(set(dates))
    counts: dict[str, dict[date, int]] = defaultdict(dict)
    started = now_utc()
    part = None
    if shard is not None:
        symbols, part = shard_symbols(settings, dates, *shard), shard_part(*shard)
    write = partial(_write_gold, lake, counts=counts, stats=stats, symbols=symbols, part=part)
    years = _by_year(dates)
    technicals = pl.concat([_technicals(settings, lake, year, symbols) for year in years])
    write("technicals_daily", technicals, dates, started=started)

    chain_dates = set(lake.dates("silver", "chains"))
    # Ingest quarantines rows dated on non-sessions; a lake written before it did may still hold such a
    # day's silver, which must not be any session's previous one.
    chain_dates -= set(non_sessions(chain_dates, settings.calendar))
    chain_rows = {d: 1 for d in dates}
    for d in dates:
        if d in chain_dates:
            chain_rows[d] = lake.scan("silver", "chains", {"trade_date": pl.Date()}, dates=[d]).select(
                pl.len()).collect().item()
    # A batch never spans a new year: its sessions share one history start.
    done = 0
    for batch in [b for year in years for b in _date_batches({d: chain_rows[d] for d in year}, settings.batch_rows)]:
        count("gold sessions", done, len(dates))
        done += len(batch)
        started = now_utc()
        since = history_start(batch[0], settings.history_years)
        # Read once: positioning, greeks, levels and ideas all work on the same day's chain.
        chains = _only(lake.scan("silver", "chains", silver_schema("chains"), dates=batch), symbols).collect().lazy()
        previous_day = max((d for d in chain_dates if d < batch[0]), default=None)
        previous_chains = (_only(lake.scan("silver", "chains", silver_schema("chains"), dates=[previous_day]),
                                 symbols) if previous_day else None)
        spot = technicals.lazy().filter(pl.col("trade_date").is_in(batch)).select(
            "trade_date", pl.col("symbol").alias("underlying"), pl.col("close").alias("spot"))
        previous = _previous_oi_totals(lake, previous_day, previous_chains, symbols)
        prior_dates = _prior_chain_sessions(chain_dates, batch)
        positioning = _with_iv_rank(lake, batch, since, positioning_daily(
            chains, spot=spot, previous=previous, prior_dates=prior_dates).join(
            session_greeks(chains, spot=spot, rate=settings.risk_free_rate), on=["trade_date", "underlying"],
            how="left").collect())
        write("positioning_daily", positioning, batch, started=started)
        crash_point("gold-half-written")
        yardsticks = expiry_yardsticks(chains, expiry_forwards(chains, settings.risk_free_rate), spot=spot).collect()
        write("expiry_levels", expiry_levels(chains, spot=spot).join(
            expiry_exposure(chains, spot=spot, rate=settings.risk_free_rate), on=["trade_date", "underlying", "expiration"], how="left").join(
            yardsticks.lazy(), on=["trade_date", "underlying", "expiration"], how="left").collect(),
            batch, started=started)
        trades = _only(lake.scan("silver", "trades", silver_schema("trades"), dates=batch), symbols)
        block_prints = blocks(trades, settings.block_notional, settings.block_size).collect()
        flow = flow_daily(block_prints.lazy(), chains, trades).collect()
        write("blocks", block_prints, batch, started=started)
        write("flow_daily", flow, batch, started=started)
        write("strike_levels", strike_levels(chains, previous_chains=previous_chains, top_n=settings.top_strikes,
                                             spot=spot, prior_dates=prior_dates).collect(), batch, started=started)

        features = join_features(technicals.lazy().filter(pl.col("trade_date").is_in(batch)),
                                 positioning.lazy().rename(GOLD_RENAMES), flow.lazy().rename(GOLD_RENAMES))
        history = pl.concat([
            _gold_positioning(lake, {"pcr_oi": pl.Float64()}, start=since, end=batch[0])
            .filter(pl.col("trade_date") < batch[0]),
            positioning.lazy().select("trade_date", "underlying", "pcr_oi"),
        ])
        pcr_z = pcr_zscore(history, settings.pcr_history_sessions).filter(pl.col("trade_date").is_in(batch))
        signals = signals_daily(features, pcr_z, weights=settings.weights, bullish_at=settings.bullish_at,
                                bearish_at=settings.bearish_at).collect()
        write("signals_daily", signals, batch, started=started)
        contracts = option_chain(chains, strike_open_interest(chains), yardsticks.lazy())
        # In memory: polars 2.1's streaming engine panics (binview index) on this plan at full-market size.
        ideas = trade_ideas(with_signals(features, signals.lazy()), contracts, settings.rules).collect(
            engine="in-memory")
        write("trade_ideas", ideas, batch, started=started)
    count("gold sessions", done, len(dates))
    _build_outcomes(settings, lake, dates, write, symbols)
    return dict(counts)


def history_start(day: date, years: int) -> date:
    """The first session the gold of `day` reads history from: 1 January, `years` years before its year.

    Bounded, so a nightly's cost and memory do not grow with the history in the lake (the technicals of
    5,000 symbols over ten years of bars: 12.7 s and a 5.0 GB peak; over three: 2.0 s, 1.6 GB). The same for every session of a
    year, so a backfill (one pass per year) and a nightly start each rolling sum at the same bar and give
    the same rows, bit for bit. Two years back at least: 52-week and 252-session windows are full, and
    the seeded recursions (EMA, ATR, RSI) have forgotten their start to below a double's precision.
    """
    return date(day.year - years, 1, 1)


def _by_year(dates: list[date]) -> list[list[date]]:
    """Sorted dates grouped by calendar year (the unit history_start is fixed for)."""
    return [list(group) for _, group in groupby(sorted(dates), key=lambda d: d.year)]


def _technicals(settings: Settings, lake: Lake, dates: list[date], symbols: list[str] | None) -> pl.DataFrame:
    """technicals_daily for `dates` (one calendar year): carried forward from the state the session before
    them left when that state still stands for the lake's bars, else from the bars since their history
    start. Either way the same rows, bit for bit (transforms.technicals.carry_forward)."""
    start = history_start(dates[0], settings.history_years)
    if symbols:  # the benchmark stays in: every beta needs it
        bars = _of_symbols(lake.scan("silver", "bars", silver_schema("bars"), start=start, end=dates[-1]),
                           [*symbols, settings.benchmark])
        return (technicals_daily(bars, settings.benchmark).filter(pl.col("trade_date").is_in(dates))
                .filter(pl.col("symbol").is_in(symbols)).collect())
    sessions = [d for d in lake.dates("silver", "bars") if start <= d <= dates[-1]]
    before = [d for d in sessions if d < dates[0]]
    state = _technicals_state(settings, lake, before[-1], start) if before else None
    if state is None:
        bars = lake.scan("silver", "bars", silver_schema("bars"), start=start, end=dates[-1])
        technicals, state = technicals_with_state(bars, settings.benchmark)
        technicals, state = pl.collect_all([technicals.filter(pl.col("trade_date").is_in(dates)), state])
    else:
        days, state = [], state.lazy()
        for day in (d for d in sessions if d > before[-1]):  # the sessions a run computes: a few at most
            today, state = carry_forward(state, lake.scan("silver", "bars", silver_schema("bars"), dates=[day]),
                                         settings.benchmark)
            today, collected = pl.collect_all([today, state])
            state = collected.lazy()
            days.append(today)
        technicals, state = pl.concat(days).filter(pl.col("trade_date").is_in(dates)), collected
    _keep_technicals_state(settings, lake, sessions[-1], start, state)
    return technicals.sort("symbol", "trade_date")


# The technicals' state after a session is a cache of what its bars give (like the task cache, under
# <warehouse>/.cache, never published): a state that no longer matches the lake is recomputed, never used.
TECHNICALS_STATES_KEPT = 2
"""The newest sessions' states kept: the last one, and the one before it for a re-run of the last session."""


def _technicals_state_file(settings: Settings, day: date) -> Path:
    return Path(settings.warehouse) / ".cache" / "technicals" / f"state-{day.isoformat()}.parquet"


def _technicals_state_key(settings: Settings, lake: Lake, day: date, start: date) -> str:
    """What a state after `day` was computed from: the history start, the benchmark, the code and every
    bars partition up to `day` as the lake holds it (a late or corrected bar changes its file)."""
    digest = hashlib.sha256(f"{start}\0{settings.benchmark}\0{code_fingerprint()}".encode())
    for path in lake.files("silver", "bars", start=start, end=day):
        digest.update(f"\n{Path(str(path)).relative_to(Path(str(lake.root)))}\0{version(path)}".encode())
    return digest.hexdigest()


def _technicals_state(settings: Settings, lake: Lake, day: date, start: date) -> pl.DataFrame | None:
    """The state after `day` if one was kept and the lake's bars up to `day` are still the ones it was
    computed from (same files, same history start, benchmark and code); otherwise None."""
    path = _technicals_state_file(settings, day)
    if not path.exists():
        return None
    state = read_parquet(path)
    if state.is_empty() or state["state_key"][0] != _technicals_state_key(settings, lake, day, start):
        return None
    return state.drop("state_key")


def _keep_technicals_state(settings: Settings, lake: Lake, day: date, start: date, state: pl.DataFrame) -> None:
    path = _technicals_state_file(settings, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    # lz4: half zstd's write time on 20 MB of doubles, for a file read back once.
    write_atomic(state.with_columns(state_key=pl.lit(_technicals_state_key(settings, lake, day, start))), path,
                 compression="lz4")
    for older in sorted(path.parent.glob("state-*.parquet"), reverse=True)[TECHNICALS_STATES_KEPT:]:
        older.unlink(missing_ok=True)


def _prior_chain_sessions(chain_dates: set[date], batch: list[date]) -> pl.LazyFrame:
    """(trade_date, prior_date): for each chain session of the batch, the lake's chain session before it,
    which OI changes compare with (the same whether the batch holds one session or a year of them)."""
    sessions = pl.LazyFrame({"trade_date": sorted(chain_dates)}, schema={"trade_date": pl.Date()})
    return previous_sessions(sessions).filter(pl.col("trade_date").is_in(batch))


def _previous_oi_totals(lake: Lake, day: date | None, chains: pl.LazyFrame | None,
                        symbols: list[str] | None) -> pl.LazyFrame | None:
    """call_oi and put_oi of the session before a batch, for the OI changes: from that session's gold
    positioning when it was built from the silver chain now in the lake, else recomputed from the chain."""
    if day is None or chains is None:
        return None
    columns = ["trade_date", "underlying", "call_oi", "put_oi"]
    gold = lake.files("gold", "positioning_daily", dates=[day])
    silver = lake.files("silver", "chains", dates=[day])
    built, delivered = min(map(modified_ns, gold), default=0), max(map(modified_ns, silver), default=0)
    # Object storage keeps whole seconds: there a tie may hide a later delivery, so only a strictly
    # newer gold row is trusted.
    if gold and (built > delivered or (built == delivered and not lake.remote)):
        return _only(_gold_positioning(lake, {"call_oi": pl.Int64(), "put_oi": pl.Int64()}, dates=[day]), symbols)
    return positioning_daily(chains).select(columns)


def _build_outcomes(settings: Settings, lake: Lake, dates: list[date], write, symbols: list[str] | None) -> None:
    """idea_outcomes, one as-of partition per session in ascending order: each run walks the ideas still
    open at the previous partition, so a backfill writes exactly what a sequence of nightlies would. The
    ideas and bars are read from the oldest of those ideas on, not from the start of the history."""
    mid_schema = {"trade_date": pl.Date(), "option_symbol": pl.String(), "mid": pl.Float64()}
    for day in dates:
        started = now_utc()
        since = max((d for d in lake.dates("gold", "idea_outcomes") if d < day), default=None)
        start = _outcomes_start(lake, since)
        ideas = lake.scan("gold", "trade_ideas", TRADE_IDEA_SCHEMA, start=start, end=day)
        bars = lake.scan("silver", "bars", silver_schema("bars"), start=start, end=day)
        if symbols:
            ideas = ideas.filter(pl.col("symbol").is_in(symbols))
            bars = _of_symbols(bars, symbols)
        # The chains of the sessions an exit can fall on only (weeks of full chains would cost seconds).
        mid_days = exit_mid_sessions(ideas, bars, day, since).collect().get_column("trade_date").to_list()
        mids = lake.scan("silver", "chains", mid_schema, dates=mid_days)
        rows = outcomes_for_run(ideas, bars, day, since, mids, settings.stock_horizon_sessions).collect()
        write("idea_outcomes", rows, [day], started=started)


def _outcomes_start(lake: Lake, since: date | None) -> date | None:
    """The first session the idea_outcomes run after `since` reads ideas and bars from: the oldest idea
    still open in partition `since` (see transforms.outcomes.walk_from); on the first run, the first
    trade_ideas partition."""
    if since is None:
        return min(lake.dates("gold", "trade_ideas"), default=None)
    previous = lake.scan("gold", "idea_outcomes", {"idea_date": pl.Date(), "status": pl.String()}, dates=[since])
    return walk_from(previous, since).collect().item()


def _with_iv_rank(lake: Lake, batch: list[date], since: date, positioning: pl.DataFrame) -> pl.DataFrame:
    """IV rank and percentile of atm_iv_30 against the sessions in the lake from `since` up to each
    row's date."""
    history = pl.concat([
        _gold_positioning(lake, {"atm_iv_30": pl.Float64()}, start=since, end=batch[0])
        .filter(pl.col("trade_date") < batch[0]),
        positioning.lazy().select("trade_date", "underlying", "atm_iv_30"),
    ])
    ranks = iv_rank_percentile(history).filter(pl.col("trade_date").is_in(batch)).select(
        "trade_date", "underlying", "iv_rank_252", "iv_percentile_252")
    return positioning.join(ranks.collect(), on=["trade_date", "underlying"], how="left")


def _scan_gold(lake: Lake, table: str, schema: dict[str, pl.DataType], **select) -> pl.LazyFrame:
    """A gold table's partitions with `schema`'s columns. Files written before gold named the instrument
    `symbol` hold it as `underlying`: either is read as `symbol`."""
    if "symbol" not in schema:
        return lake.scan("gold", table, schema, **select)
    either = {**schema, **{old: pl.String() for old in GOLD_RENAMES}}
    return lake.scan("gold", table, either, **select).with_columns(
        pl.coalesce("symbol", *GOLD_RENAMES)).select(list(schema))


def _gold_positioning(lake: Lake, columns: dict[str, pl.DataType], **select) -> pl.LazyFrame:
    """Earlier sessions of gold positioning_daily in the transforms' vocabulary (trade_date, underlying,
    *columns)."""
    schema = {"trade_date": pl.Date(), "symbol": pl.String(), **columns}
    return _scan_gold(lake, "positioning_daily", schema, **select).rename({"symbol": "underlying"})


def _of_symbols(bars: pl.LazyFrame, symbols: list[str]) -> pl.LazyFrame:
    """The bars of `symbols`. A semi join, not an is_in filter: polars pushes that filter into the scan
    of every one of the hundreds of bar files, where it costs about three times the read itself."""
    wanted = pl.LazyFrame({"symbol": sorted(set(symbols))}, schema={"symbol": pl.String()})
    return bars.join(wanted, on="symbol", how="semi")


def _only(frame: pl.LazyFrame, symbols: list[str] | None) -> pl.LazyFrame:
    return frame.filter(pl.col("underlying").is_in(symbols)) if symbols else frame


def _write_gold(lake: Lake, table: str, frame: pl.DataFrame, dates: list[date], *,
                counts: dict[str, dict[date, int]], stats: StageStats, started: datetime,
                symbols: list[str] | None = None, part: str | None = None) -> None:
    gold = GOLD_BY_NAME[table]
    frame = validate_gold(frame.rename(GOLD_RENAMES, strict=False), gold.model)
    key = list(gold.key)
    if part:  # a shard: its own file beside the other shards'
        lake.write_partitions(frame.sort(key, nulls_last=True), "gold", table, dates=dates,
                              part=part, exclusive=False)
    elif symbols:  # keep the other symbols' rows of these partitions
        kept = _scan_gold(lake, table, dict(frame.schema), dates=dates).filter(~pl.col("symbol").is_in(symbols))
        frame = pl.concat([kept.collect(), frame])
    if not part:
        lake.write_partitions(frame.sort(key, nulls_last=True), "gold", table, dates=dates)
    per_day = dict(frame.group_by("trade_date").len().iter_rows())
    for day in dates:
        counts[table][day] = per_day.get(day, 0)
        stats.add(f"gold.{table}", day, per_day.get(day, 0), per_day.get(day, 0), 0, started)


def gold_sessions(settings: Settings, start: date, end: date) -> list[date]:
    """Sessions in [start, end] that have silver bars (gold needs at least the bars)."""
    days = [d for d in Lake(settings.lake).dates("silver", "bars") if start <= d <= end]
    off = set(non_sessions(days, settings.calendar))
    return [d for d in days if d not in off]


def short_chain(lake: Lake, day: date, share: float) -> str | None:
    """Why `day`'s chain looks incomplete (missing, or under `share` of the previous chain session's
    rows), or None: a file still being copied, or one skipped, publishes a day of partial positioning."""
    sessions = lake.dates("silver", "chains")
    before = [d for d in sessions if d < day]
    if not before:
        return None
    def rows(d: date) -> int:
        return lake.scan("silver", "chains", {"trade_date": pl.Date()}, dates=[d]).select(pl.len()).collect().item()
    previous = rows(before[-1])
    now = rows(day) if day in sessions else 0
    if now >= share * previous:
        return None
    what = "has no option chain" if not now else f"has a chain of {now:,} rows"
    return (f"{day} {what}, under {share:.0%} of the previous session's ({before[-1]}: {previous:,} rows): "
            "positioning for that day is partial")


def uncomputed_sessions(lake: Lake) -> list[date]:
    """Sessions ingested but not computed: silver a run committed before it failed (its stats still
    await a publish) with bars, and after the last session with gold (an older date rebuilt is the
    stale-gold warning's case, not this one)."""
    pending = pending_stats(lake).filter(pl.col("dataset").str.starts_with("silver."))
    rebuilt = set(pending.get_column("trade_date").drop_nulls().to_list())
    if not rebuilt:
        return []
    computed = lake.dates("gold", "technicals_daily")
    with_bars = set(lake.dates("silver", "bars"))
    return sorted(d for d in rebuilt & with_bars if not computed or d > computed[-1])


__all__ = ["DATASETS", "GOLD_TABLES", "RejectedShareError", "StageStats", "build_gold", "build_silver",
           "gold_sessions", "ingest_and_validate", "latest_landing_session"]

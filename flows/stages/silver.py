"""Silver: a session's typed rows validated (schemas/silver.py), quarantined with reasons, de-duplicated and
derived (transforms/silver.py, greeks.py), written one partition per trade_date."""

from __future__ import annotations

from datetime import date

import polars as pl

from flows.config import Settings
from flows.errors import ChainsignalsError
from flows.sources.files import (
    SourceError,
    bronze_schema,
    conform,
    now_utc,
    read_text_frame,
)
from flows.stages.progress import count
from flows.stages.sessions import StageStats
from flows.storage.lake import (
    Lake,
    Staging,
    read_manifest,
    split_dates,
)
from schemas.quarantine import REASON, split_duplicates, split_valid
from schemas.silver import Bars, Chains, Trades
from transforms.greeks import derive_iv_and_greeks
from transforms.positioning import with_strike_open_interest
from transforms.silver import (
    BARS_COLUMNS,
    CHAIN_COLUMNS,
    LINEAGE_COLUMNS,
    dedupe_order,
    silver_bars,
    silver_chains,
)
from transforms.trades import TRADE_SCHEMA, contract_reasons, silver_trades

# Order matters: chains take spot from the bars, prints are checked against the chains.
PIPELINE_DATASETS = ("bars", "chains", "trades")


SILVER_KEYS: dict[str, list[str] | None] = {
    "bars": ["trade_date", "symbol"],
    # Prints have no natural key: two same-microsecond prints of one contract are both real.
    "trades": None,
    # option_symbol too: SPX and SPXW (or IWM and adjusted IWM1) list the same strike and expiry
    "chains": ["trade_date", "underlying", "option_symbol", "expiration", "strike", "option_type"],
}


SILVER_MODELS = {"bars": Bars, "chains": Chains, "trades": Trades}


# The order silver partitions are written in: the key (or a total order for prints), with the chain's
# expiration and option type left out because the validated OSI symbol already decides them. Prints of
# one microsecond keep the tape's order (file, then row): that is the sequence they were reported in.
SILVER_ORDER = {
    "bars": ["trade_date", "symbol"],
    "chains": ["trade_date", "underlying", "option_symbol", "strike"],
    "trades": ["ts", "_source_file", "_source_row"],
}
# Chains are then clustered by expiration and side, with a stable sort that keeps the order above within
# each: every underlying's calls of one expiration lie together, then its puts, then the next expiration.
# A listing (underlying, side, expiration) stays one run, and with row groups of SILVER_ROW_GROUP_ROWS a
# reader of a few listings per session (a backtest's chosen ones) skips the rest by their statistics.
SILVER_CLUSTER: dict[str, list[str]] = {"chains": ["expiration", "option_type"]}
SILVER_ROW_GROUP_ROWS: dict[str, int] = {"chains": 65_536}


class RejectedShareError(ChainsignalsError):
    """Too many rows of a `dataset` and `date` failed validation; the message is one line."""


def silver_schema(dataset: str) -> dict[str, pl.DataType]:
    base = bronze_schema(dataset)
    if dataset == "trades":
        return dict(TRADE_SCHEMA) | {c: base[c] for c in LINEAGE_COLUMNS}
    if dataset == "bars":
        return {c: base[c] for c in BARS_COLUMNS} | {c: base[c] for c in LINEAGE_COLUMNS}
    derived = {
        "mid": pl.Float64(),
        "dte": pl.Int64(),
        "spot_derived": pl.Boolean(),
        "iv_derived": pl.Boolean(),
        "greeks_derived": pl.Boolean(),
        "forward": pl.Float64(),
        "forward_source": pl.String(),
        "iv_status": pl.String(),
        "strike_call_oi": pl.Int64(),
        "strike_put_oi": pl.Int64(),
    }
    return {c: base.get(c, derived.get(c)) for c in CHAIN_COLUMNS} | {c: base[c] for c in LINEAGE_COLUMNS}


def hold_sources(
    settings: Settings, staging: Staging, manifest: pl.DataFrame, dataset: str, dates: set[date]
) -> None:
    """Complete silver's input for `dates`: the typed rows of every landing file holding one of them.
    Files this run did not read (or read only in part) are conformed again from their bronze copy,
    through the same vendor format as at ingest."""
    holders = manifest.filter(
        (pl.col("dataset") == dataset) & pl.col("dates").list.eval(pl.element().is_in(list(dates))).list.any()
    )
    for row in holders.iter_rows(named=True):
        missing = [
            d for d in row["dates"] if d in dates and row["part"] not in staging.scratch.get((dataset, d), {})
        ]
        if not missing:
            continue
        landing = settings.landing / row["path"]
        if not row["bronze"]:
            raise SourceError(
                f"{landing}: no bronze copy of it in the lake; deliver it again to re-validate "
                f"{', '.join(map(str, missing))}"
            )
        copy = staging.raw_copy(staging.lake.bronze_file(row["bronze"]))
        frame, _ = conform(
            read_text_frame(copy, settings.max_file_bytes, shown=landing),
            dataset,
            landing,
            row["path"],
            row["ingested_at"],
            row["format"],
        )
        for day, rows in split_dates(frame.filter(pl.col("trade_date").is_in(missing))).items():
            staging.stage_scratch(rows, dataset, day, row["part"])


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


def build_silver(
    settings: Settings,
    staging: Staging,
    dataset: str,
    dates: set[date],
    stats: StageStats,
    manifest: pl.DataFrame | None = None,
) -> dict[date, int]:
    """Validate, de-duplicate and derive the given dates; stage silver and quarantine partitions.

    Raises RejectedShareError (nothing is committed then) when a date's rejected share passes the limit
    (dates with fewer than `min_rows_for_limit` rows are not judged: a share of three rows means nothing).
    Duplicates are resolved deterministically, quarantined too, and count towards the limit (SPEC 7):
    a re-delivered file replaces its own rows (same path), so a day that is mostly duplicates is two
    names for one delivery, or a file of repeated rows, for the operator to look at.
    `manifest`: the landing files as this run leaves them (default: the lake's).
    """
    bronze = bronze_schema(dataset)
    hold_sources(
        settings, staging, read_manifest(staging.lake) if manifest is None else manifest, dataset, dates
    )
    files = {day: staging.scratch_files(dataset, day) for day in dates}
    sizes = {day: staging.rows(fs) for day, fs in files.items()}
    work = dict(sizes)
    if dataset == "trades":  # each batch of prints is checked against its sessions' chains: count them too
        work = {
            day: n + staging.rows(staging.staged_or_committed("silver", "chains", day))
            for day, n in sizes.items()
        }
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
            pl.concat_str(pl.lit("unparsable:"), pl.col("_parse_errors")).alias(REASON)
        )
        candidates = derived.filter(pl.col("_parse_errors").is_null())
        valid, invalid = split_valid(candidates, SILVER_MODELS[dataset], dataset)
        keys = SILVER_KEYS[dataset]
        if keys:
            kept, duplicates = split_duplicates(valid, keys, dedupe_order())
        else:
            kept, duplicates = valid, valid.clear().with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
        if dataset == "chains":  # IV from the mid and greeks from IV where the vendor left them empty
            kept = with_strike_open_interest(
                derive_iv_and_greeks(kept.lazy(), settings.risk_free_rate)
            ).collect()
        if dataset == "trades":  # prints on contracts not listed that day, or already expired
            judged = contract_reasons(kept.lazy(), _silver_scan(staging, "chains", batch)).collect()
            flagged = judged.filter(pl.col(REASON).is_not_null())
            kept = judged.filter(pl.col(REASON).is_null()).drop(REASON)
            invalid = pl.concat([invalid, flagged], how="diagonal_relaxed")
        rejected = pl.concat([unparsable, invalid], how="diagonal_relaxed")
        quarantine = pl.concat([rejected, duplicates], how="diagonal_relaxed")
        schema = silver_schema(dataset)
        # One day at a time: split into all days at once, a backfill's batch would be held in memory twice.
        for day in batch:
            day_in = sizes[day]
            # Duplicates count too (SPEC 7): a file of one row repeated ten million times is not a day.
            day_rejected = pl.concat(
                [_rows_on(rejected, day), _rows_on(duplicates, day)], how="diagonal_relaxed"
            )
            day_bad = day_rejected.height
            if day_in >= settings.min_rows_for_limit and day_bad / day_in > settings.max_rejected_share:
                reasons = day_rejected.group_by(REASON).len().sort("len", descending=True).head(3).rows()
                top = ", ".join(f"{r} ({n})" for r, n in reasons)
                raise RejectedShareError(
                    f"{dataset} {day}: {day_bad} of {day_in} rows rejected ({day_bad / day_in:.1%}) "
                    f"> limit {settings.max_rejected_share:.1%}; top reasons: {top}",
                    dataset=dataset,
                    date=day,
                )
            day_rows = _silver_order(_rows_on(kept, day).select(list(schema)), dataset)
            day_quarantine = _rows_on(quarantine, day)
            # Kept in memory for the next datasets' checks (chains need the bars, prints the chains).
            staging.stage(
                day_rows,
                "silver",
                dataset,
                day,
                "part-0",
                exclusive=True,
                keep=dataset != "trades",
                row_group_rows=SILVER_ROW_GROUP_ROWS.get(dataset),
            )
            staging.stage(
                day_quarantine.select(*[c for c in bronze if c in day_quarantine.columns], REASON),
                "quarantine",
                dataset,
                day,
                "part-0",
                exclusive=True,
            )
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


# Runs of the leading keys averaging fewer rows than this: _in_order sorts outright, since checking
# millions of one-row runs for repeats costs more than the sort it would spare.
MIN_ROWS_PER_RUN = 2


def _silver_order(frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """A silver partition's rows in the order it is written: by SILVER_CLUSTER, then SILVER_ORDER."""
    return _in_order(frame, SILVER_ORDER[dataset], SILVER_CLUSTER.get(dataset, []))


def _in_order(frame: pl.DataFrame, keys: list[str], cluster: list[str] | None = None) -> pl.DataFrame:
    """`frame` sorted by `cluster` then `keys` (a unique key), with as little sorting as the rows need.

    Rows already in key order (a vendor's prints usually come in time order) need no sort by `keys`:
    one pass that compares neighbours is cheaper. Rows in order within each run of the leading keys,
    every run a different value (a vendor lists each underlying's contracts in order, the underlyings in
    its own order), need only a stable sort by those leading keys, a fraction of a sort by all of them.
    The `cluster` keys lead that one stable sort, so the rows are moved once."""
    cluster = cluster or []
    if frame.height < 2:
        return frame
    for lead in range(len(keys)):
        if not frame.select(_ordered_within(keys[:lead], keys[lead:])).item():
            continue
        if not lead:
            return frame.sort(cluster, maintain_order=True) if cluster else frame
        starts = pl.any_horizontal(
            pl.int_range(pl.len()) == 0, *(pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys[:lead])
        )
        heads = frame.select(keys[:lead]).filter(starts)  # the first row of each run
        if heads.height > frame.height // MIN_ROWS_PER_RUN:
            break  # runs this short: checking them for repeats costs about what the full sort does
        if not heads.is_duplicated().any():  # a leading value in two runs would need the full sort
            return frame.sort([*cluster, *keys[:lead]], maintain_order=True)
    return frame.sort([*cluster, *keys])


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

"""What the lake says about sessions: which are computed, pending, stale or short, and the stage statistics
a run records for pipeline_runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from flows.config import Settings
from flows.sources.calendar import non_sessions
from flows.sources.files import (
    now_utc,
)
from flows.storage.lake import (
    Lake,
    LakePath,
    read_parquet,
    write_atomic,
)


@dataclass
class StageStats:
    """Row counts per dataset and date, the raw material of pipeline_runs."""

    rows: list[dict] = field(default_factory=list)

    def add(
        self, dataset: str, day: date, rows_in: int, rows_out: int, rows_rejected: int, started_at: datetime
    ) -> None:
        self.rows.append(
            {
                "dataset": dataset,
                "trade_date": day,
                "rows_in": rows_in,
                "rows_out": rows_out,
                "rows_rejected": rows_rejected,
                "started_at": started_at,
                "finished_at": now_utc(),
            }
        )

    def frame(self) -> pl.DataFrame:
        # A row may name the run that computed it (a cached gold result reused by a later run).
        by = {"run_id": pl.String} if self.rows and "run_id" in self.rows[0] else {}
        return pl.DataFrame(
            self.rows,
            schema={
                "dataset": pl.String,
                "trade_date": pl.Date,
                "rows_in": pl.Int64,
                "rows_out": pl.Int64,
                "rows_rejected": pl.Int64,
                "started_at": pl.Datetime("us", "UTC"),
                "finished_at": pl.Datetime("us", "UTC"),
                **by,
            },
        )


def _pending_stats_path(lake: Lake) -> LakePath:
    return lake.root / "_runs" / "pending_stats.parquet"


def record_pending_stats(lake: Lake, stats: pl.DataFrame) -> None:
    """Merge stage stats awaiting publication; a newer row for the same date and dataset replaces."""
    if stats.is_empty():
        return
    merged = pl.concat([pending_stats(lake), stats], how="diagonal_relaxed").unique(
        subset=["trade_date", "dataset"], keep="last", maintain_order=True
    )
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
        return (
            lake.scan("silver", "chains", {"trade_date": pl.Date()}, dates=[d])
            .select(pl.len())
            .collect()
            .item()
        )

    previous = rows(before[-1])
    now = rows(day) if day in sessions else 0
    if now >= share * previous:
        return None
    what = "has no option chain" if not now else f"has a chain of {now:,} rows"
    return (
        f"{day} {what}, under {share:.0%} of the previous session's ({before[-1]}: {previous:,} rows): "
        "positioning for that day is partial"
    )


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

"""`chainsignals validate FILE`: a landing file checked exactly as a run would, writing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flows.config import Settings
from flows.sources.calendar import non_sessions
from flows.sources.files import DATASETS, FIELDS, SourceError, conform, now_utc, read_text_frame
from schemas.quarantine import NOT_A_SESSION, REASON, split_duplicates, split_valid
from transforms.silver import dedupe_order, silver_bars, silver_chains
from transforms.trades import silver_trades


@dataclass
class FileReport:
    dataset: str
    format: str
    rows: int
    valid: int
    rejected: int
    duplicates: int
    reasons: list[tuple[str, int]]
    over_limit: bool


def guess_dataset(path: Path, columns: set[str]) -> str:
    for part in reversed(path.parts[:-1]):
        if part in DATASETS:
            return part
    scores = {d: len(columns & set(FIELDS[d])) for d in DATASETS}
    best = max(scores, key=scores.get)
    if scores[best] == 0:
        raise SourceError(
            f"{path}: cannot tell whether this is bars, chains or trades; pass --dataset", file=path
        )
    return best


def validate_file(
    settings: Settings, path: Path, dataset: str | None = None, fmt: str | None = None
) -> FileReport:
    from flows.stages.silver import SILVER_KEYS, SILVER_MODELS

    if not path.is_file():
        raise SourceError(f"{path}: no such file", file=path)
    text = read_text_frame(path, settings.max_file_bytes)
    dataset = dataset or guess_dataset(path, set(text.columns))
    bronze, detected = conform(text, dataset, path, path.name, now_utc(), fmt)
    # As a run does: rows dated on a non-session are quarantined apart and are not part of the share.
    off = non_sessions(bronze.get_column("trade_date").drop_nulls().unique().to_list(), settings.calendar)
    non_session = bronze.filter(pl.col("trade_date").is_in(off)).with_columns(
        pl.lit(NOT_A_SESSION).alias(REASON)
    )
    judged = bronze.filter(~pl.col("trade_date").is_in(off)) if off else bronze
    if dataset == "bars":
        derived = silver_bars(judged.lazy()).collect()
    elif dataset == "chains":  # a chain without spot is judged as if the bars will supply it
        closes = (
            judged.lazy()
            .select("trade_date", pl.col("underlying").alias("symbol"), pl.col("strike").alias("close"))
            .unique(["trade_date", "symbol"])
        )
        derived = silver_chains(judged.lazy(), closes).collect()
    else:  # whether a print's contract is listed needs that day's chain: a run checks it
        derived = silver_trades(judged.lazy()).collect()
    unparsable = derived.filter(pl.col("_parse_errors").is_not_null()).with_columns(
        pl.concat_str(pl.lit("unparsable:"), pl.col("_parse_errors")).alias(REASON)
    )
    valid, invalid = split_valid(
        derived.filter(pl.col("_parse_errors").is_null()), SILVER_MODELS[dataset], dataset
    )
    keys = SILVER_KEYS[dataset]
    kept, duplicates = split_duplicates(valid, keys, dedupe_order()) if keys else (valid, valid.clear())
    rejected = pl.concat([unparsable, invalid], how="diagonal_relaxed")
    shown = pl.concat([non_session.select(REASON), rejected.select(REASON)])
    reasons = [] if shown.is_empty() else shown.group_by(REASON).len().sort("len", descending=True).rows()
    return FileReport(
        dataset,
        detected,
        bronze.height,
        kept.height,
        rejected.height + non_session.height,
        duplicates.height,
        reasons,
        judged.height >= max(settings.min_rows_for_limit, 1)
        # duplicates count toward the share, as in a run (SPEC 7)
        and (rejected.height + duplicates.height) / judged.height > settings.max_rejected_share,
    )

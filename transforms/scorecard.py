"""What the scorecard (sql/views/idea_scorecard.sql, the one definition of its counts and rates) cannot
say in SQL: a seeded bootstrap interval of mean R, the same for every run with the same seed."""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

BOOTSTRAP_RESAMPLES = 2_000  # enough for the ends of a 95% interval; the cost grows with resamples x ideas
BOOTSTRAP_LEVEL = 0.95
# Resampled values held at once: the means are taken block by block, so memory stays flat however many
# ideas a rule has.
_BOOTSTRAP_BLOCK = 4_000_000
CLOSED = ("target_hit", "stop_hit", "expired")


def bootstrap_mean_interval(
    values: np.ndarray,
    seed: int,
    key: str = "",
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = BOOTSTRAP_LEVEL,
) -> tuple[float | None, float | None]:
    """The percentile bootstrap interval of the mean of `values` (resampled with replacement).

    The generator is seeded by (seed, crc32 of `key`): a rule's interval depends on its own values and
    the seed only, not on which other rules ran beside it. (None, None) without values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None, None
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))
    per_block = max(1, _BOOTSTRAP_BLOCK // values.size)
    means = np.concatenate(
        [
            values[rng.integers(0, values.size, size=(min(per_block, resamples - done), values.size))].mean(
                axis=1
            )
            for done in range(0, resamples, per_block)
        ]
    )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def mean_r_intervals(outcomes: pl.DataFrame, keys: list[str], seed: int) -> pl.DataFrame:
    """Per `keys` group of `outcomes` (idea_outcomes rows, one per idea): mean_r_low and mean_r_high, the
    bootstrap interval of mean R over the closed ideas with an R, taken in (idea_date, symbol, idea_id)
    order so the row order of the input does not matter."""
    closed = (
        outcomes.filter(pl.col("status").is_in(CLOSED) & pl.col("r_multiple").is_not_null())
        .sort(*keys, "idea_date", "symbol", "idea_id")
        .group_by(keys, maintain_order=True)
        .agg(pl.col("r_multiple"))
    )
    rows = []
    for group in closed.iter_rows(named=True):  # one per rule: a handful, each vectorised in numpy
        key = "|".join(str(group[k]) for k in keys)
        low, high = bootstrap_mean_interval(np.array(group["r_multiple"]), seed, key)
        rows.append({**{k: group[k] for k in keys}, "mean_r_low": low, "mean_r_high": high})
    schema = {**{k: outcomes.schema[k] for k in keys}, "mean_r_low": pl.Float64, "mean_r_high": pl.Float64}
    return pl.DataFrame(rows, schema=schema)

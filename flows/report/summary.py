"""The day in brief, one definition for every place that shows it (the CLI's run summary, the Prefect
artifacts): symbols counted by bias and ideas by rule and direction, the strongest signals and the best
ideas in a stated order; the rest is in the query commands, the views and the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from flows.storage.warehouse import connect_read_only

SIGNALS_ORDER = "strongest first: |score| descending, then symbol"
IDEAS_ORDER = "best reward/risk first: R:R descending, then symbol and rule"
SIGNAL_COLUMNS = ("symbol", "close", "change_pct", "bias", "bias_score", "support", "resistance", "summary")
# Levels as the underlying's, labelled ("IWM above 250.94"), and the premium per contract (idea_display).
IDEA_COLUMNS = (
    "symbol",
    "rule",
    "direction",
    "contract",
    "premium_per_contract",
    "trigger_text",
    "target_text",
    "stop_text",
    "trigger_level",
    "target",
    "stop",
    "risk_reward",
)


@dataclass(frozen=True)
class DaySummary:
    day: date
    by_bias: list[tuple[str, int]]
    by_rule: list[tuple[str, str, int]]
    signals: list[dict]  # the strongest, SIGNAL_COLUMNS, in SIGNALS_ORDER
    ideas: list[dict]  # the best, IDEA_COLUMNS, in IDEAS_ORDER

    @property
    def n_signals(self) -> int:
        return sum(n for _, n in self.by_bias)

    @property
    def n_ideas(self) -> int:
        return sum(n for *_, n in self.by_rule)


def day_summary(database: Path, day: date, top: int) -> DaySummary:
    """The published day's counts and its `top` strongest signals and best ideas."""
    con = connect_read_only(database)
    try:
        by_bias = con.execute(
            "SELECT bias, count(*) FROM signals_daily WHERE trade_date = ? GROUP BY bias ORDER BY bias", [day]
        ).fetchall()
        by_rule = con.execute(
            "SELECT rule, direction, count(*) FROM trade_ideas WHERE trade_date = ? "
            "GROUP BY rule, direction ORDER BY rule, direction",
            [day],
        ).fetchall()
        signals = con.execute(
            f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM signals_daily "
            "WHERE trade_date = ? ORDER BY abs(bias_score) DESC, symbol LIMIT ?",
            [day, top],
        ).fetchall()
        ideas = con.execute(
            f"SELECT {', '.join(IDEA_COLUMNS)} FROM idea_display WHERE trade_date = ? "
            "ORDER BY risk_reward DESC NULLS LAST, symbol, rule LIMIT ?",
            [day, top],
        ).fetchall()
    finally:
        con.close()
    return DaySummary(
        day,
        [tuple(row) for row in by_bias],
        [tuple(row) for row in by_rule],
        [dict(zip(SIGNAL_COLUMNS, row, strict=True)) for row in signals],
        [dict(zip(IDEA_COLUMNS, row, strict=True)) for row in ideas],
    )


def shown(title: str, rows: int, total: int, order: str) -> str:
    """A table's title: how many of how many rows, in which order."""
    return f"{title}: {rows:,} of {total:,}, {order}" if rows < total else f"{title}, {order}"

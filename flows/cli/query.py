"""Read-only questions to the warehouse from the shell: `chainsignals sql|ideas|levels|signals`.

Every query runs on a read-only connection (a nightly publishing meanwhile swaps the file in beside it,
SPEC 6). User values (dates, symbols) reach SQL as parameters only; free SQL is limited to one
statement that only reads (SELECT, its FROM-first and DESCRIBE/SHOW/SUMMARIZE forms, EXPLAIN).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from flows.errors import ChainsignalsError
from flows.storage.warehouse import quiet

FORMATS = ("table", "csv", "json", "parquet")
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class QueryError(ChainsignalsError):
    """A query the command refuses or the warehouse cannot answer; the message is one line."""


@dataclass(frozen=True)
class Question:
    """One of the everyday questions: the rows of one session, optionally some symbols only."""

    name: str
    # Selects the session's rows; `?` placeholders: the session, then the symbol list (NULL: all).
    sql: str
    # The table whose latest trade_date is the default session.
    dated_by: str
    # The columns the `table` format shows (csv, json and parquet carry every column).
    table_columns: tuple[str, ...]


# The ideas of a session with the symbol's bias, as the todays_ideas view shows the latest one.
IDEAS = Question(
    "ideas",
    """SELECT ideas.*, signals.bias, signals.bias_score
       FROM trade_ideas AS ideas
       LEFT JOIN signals_daily AS signals USING (trade_date, symbol)
       WHERE ideas.trade_date = ? AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], ideas.symbol))
       ORDER BY ideas.symbol, ideas.rule""",
    "trade_ideas",
    (
        "symbol",
        "bias",
        "rule",
        "direction",
        "option_symbol",
        "entry_premium",
        "trigger_direction",
        "trigger_level",
        "target",
        "stop",
        "risk_reward",
    ),
)
# The symbol_levels view (close, bands, pivots, walls, max pain) for one session.
LEVELS = Question(
    "levels",
    """SELECT * FROM symbol_levels
       WHERE trade_date = ? AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], symbol))
       ORDER BY symbol""",
    "technicals_daily",
    (
        "symbol",
        "close",
        "change_pct",
        "sma_30",
        "sma_200",
        "bb_lower",
        "bb_upper",
        "s1",
        "pivot_point",
        "r1",
        "put_wall",
        "call_wall",
        "max_pain",
        "pcr_oi",
    ),
)
# The bias of a session, as latest_signals shows the latest one (strongest bullish first).
SIGNALS = Question(
    "signals",
    """SELECT * FROM signals_daily
       WHERE trade_date = ? AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], symbol))
       ORDER BY bias_score DESC, symbol""",
    "signals_daily",
    ("symbol", "close", "change_pct", "bias", "bias_score", "support", "resistance", "summary"),
)
QUESTIONS = {q.name: q for q in (IDEAS, LEVELS, SIGNALS)}


def connect(database: Path) -> duckdb.DuckDBPyConnection:
    if not database.exists():
        raise QueryError(
            f"no warehouse at {database}: run `chainsignals demo` or `chainsignals run` first", file=database
        )
    return quiet(duckdb.connect(str(database), read_only=True))


def run_sql(database: Path, query: str) -> pl.DataFrame:
    """The result of one read-only statement, fetched whole."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    if len(statements) != 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    if statements[0].type not in READ_ONLY_STATEMENTS:
        raise QueryError(
            f"only queries that read (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run here, not "
            f"{statements[0].type.name}"
        )
    con = connect(database)
    try:
        return con.sql(query).pl()
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    finally:
        con.close()


def ask(
    database: Path, question: Question, day: date | None, symbols: list[str] | None
) -> tuple[date, pl.DataFrame]:
    """The question's rows for `day` (default: the latest session of its table) and `symbols` (default all).
    A session the warehouse does not hold is an error naming the sessions it does hold."""
    con = connect(database)
    try:
        first, last, held = con.execute(
            f"SELECT min(trade_date), max(trade_date), count(*) FILTER (WHERE trade_date = ?) "
            f"FROM {question.dated_by}",
            [day],
        ).fetchall()[0]
        if last is None:
            raise QueryError(f"the warehouse has no {question.dated_by} rows yet")
        if day is not None and not held:
            raise QueryError(f"no session {day} in the warehouse (it holds {first} to {last})")
        day = day or last
        frame = con.sql(question.sql, params=[day, symbols, symbols]).pl()
    finally:
        con.close()
    return day, frame


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__

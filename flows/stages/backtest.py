"""`chainsignals backtest`: rule sets over the lake's history, point in time, nothing published.

Each session's ideas come from that session's gold features only (technicals, positioning, block flow,
signals, and the listings with their yardsticks of expiry_levels, all as the nightly wrote them) and
the contracts of that session's silver chain in the listings a rule picks, through the same
`trade_ideas` the nightly runs. Their outcomes are `idea_outcomes` as of the last session of the range:
the very function whose rows the nightly's incremental runs add up to. So for the config's rules a backtest gives the nightly's trade_ideas and
its latest idea_outcomes row per idea, and for a session D the same rows whatever later sessions the
lake holds (only outcomes still open at the range's end differ from a longer backtest's).

Nothing is written to the warehouse or to gold: the ideas and outcomes go to a Parquet file (under
<warehouse>/scratch/ or --out). The scorecard is sql/views/idea_scorecard.sql run by DuckDB over them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from flows.config import Settings
from flows.errors import ChainsignalsError
from flows.stages.silver import silver_schema
from flows.storage.lake import Lake
from flows.storage.warehouse import SQL_DIR, quiet
from transforms.features import (
    FLOW_FEATURES,
    POSITIONING_FEATURES,
    SIGNAL_FEATURES,
    TECHNICAL_FEATURES,
    join_features,
    with_signals,
)
from transforms.ideas import (
    TRADE_IDEA_SCHEMA,
    Rule,
    chosen_listings,
    expiry_listings,
    picked_chain,
    trade_ideas,
)
from transforms.outcomes import IDEA_OUTCOME_SCHEMA, WITH_EXIT, idea_outcomes
from transforms.scorecard import mean_r_intervals
from transforms.yardsticks import YARDSTICK_COLUMNS

SCORECARD_SQL = SQL_DIR / "views" / "idea_scorecard.sql"
DEFAULT_SEED = 16
# The silver chain columns a backtest reads (their types are silver's own).
_SILVER_CHAINS = silver_schema("chains")
CHAIN_COLUMNS: dict[str, pl.DataType] = {
    column: _SILVER_CHAINS[column]
    for column in (
        "trade_date",
        "underlying",
        "expiration",
        "dte",
        "option_symbol",
        "option_type",
        "strike",
        "open_interest",
        "volume",
        "bid",
        "ask",
        "mid",
        "strike_call_oi",
        "strike_put_oi",
    )
}
# The symbol column of the gold tables keyed by underlying (positioning_daily, flow_daily, expiry_levels).
GOLD_SYMBOL = "symbol"
_KEYS = {"trade_date": pl.Date(), GOLD_SYMBOL: pl.String()}
# What a backtest reads of expiry_levels: the listings per side, and the yardsticks.
_EXPIRY_ROWS = {
    **_KEYS,
    "expiration": pl.Date(),
    "dte": pl.Int64(),
    "call_contracts": pl.Int64(),
    "put_contracts": pl.Int64(),
    **YARDSTICK_COLUMNS,
}
_MID_COLUMNS = {"trade_date": pl.Date(), "option_symbol": pl.String(), "mid": pl.Float64()}
_LISTING_COLUMNS = {"underlying": pl.String(), "option_type": pl.String(), "expiration": pl.Date()}


class BacktestError(ChainsignalsError):
    """A backtest that cannot run (no sessions in the range, an empty lake); the message is one line."""


@dataclass
class BacktestResult:
    sessions: list[date]
    ideas: pl.DataFrame  # TRADE_IDEA_SCHEMA + rule_set
    outcomes: pl.DataFrame  # IDEA_OUTCOME_SCHEMA + rule_set, as of the last session
    scorecard: pl.DataFrame  # idea_scorecard rows + rule_set, mean_r_low, mean_r_high
    seconds: float
    out: Path | None = None


def _session_batches(
    lake: Lake, sessions: list[date], batch_rows: int, option_rules: int
) -> list[list[date]]:
    """Sessions in batches holding at most about `batch_rows` chosen contracts. Each option rule picks
    at most one listing per symbol and session, so a session holds at most `option_rules` x the largest
    listing of each symbol (from expiry_levels of the last session, standing for all)."""
    largest = 1
    if option_rules:
        largest = (
            lake.scan("gold", "expiry_levels", _EXPIRY_ROWS, dates=sessions[-1:])
            .group_by(GOLD_SYMBOL)
            .agg(pl.max_horizontal("call_contracts", "put_contracts").max())
            .select(pl.col("call_contracts").sum())
            .collect()
            .item()
            or 1
        )
    size = max(1, batch_rows // (max(1, option_rules) * largest))
    return [sessions[i : i + size] for i in range(0, len(sessions), size)]


def _of(frame: pl.LazyFrame, column: str, symbols: list[str] | None) -> pl.LazyFrame:
    return frame.filter(pl.col(column).is_in(symbols)) if symbols else frame


def _gold(lake: Lake, table: str, schema: dict, batch: list[date], symbols: list[str] | None) -> pl.LazyFrame:
    return _of(lake.scan("gold", table, schema, dates=batch), GOLD_SYMBOL, symbols)


def rule_rows(lake: Lake, batch: list[date], symbols: list[str] | None) -> pl.DataFrame:
    """The rule row of every symbol and session of `batch`, as the nightly joined it (gold technicals,
    positioning, block flow and signals)."""
    features = join_features(
        _gold(lake, "technicals_daily", TECHNICAL_FEATURES, batch, symbols),
        _gold(lake, "positioning_daily", {**_KEYS, **POSITIONING_FEATURES}, batch, symbols),
        _gold(lake, "flow_daily", {**_KEYS, **FLOW_FEATURES}, batch, symbols),
    )
    signals = _gold(
        lake,
        "signals_daily",
        {"trade_date": pl.Date(), "symbol": pl.String(), **SIGNAL_FEATURES},
        batch,
        symbols,
    )
    return with_signals(features, signals).collect()


def listings(lake: Lake, batch: list[date], symbols: list[str] | None) -> pl.DataFrame:
    """Every listing (session, symbol, side, expiration) of the batch with its expiry fields, from
    expiry_levels (expiry_listings): the chain itself is not read to find them."""
    return expiry_listings(_gold(lake, "expiry_levels", _EXPIRY_ROWS, batch, symbols)).collect()


def _check_listings(lake: Lake, sessions: list[date]) -> None:
    """Every session's expiry_levels has the listings per side (a lake written before them has not):
    one column read over the range, so the message names every session to rewrite."""
    older = (
        lake.scan(
            "gold", "expiry_levels", {"trade_date": pl.Date(), "call_contracts": pl.Int64()}, dates=sessions
        )
        .filter(pl.col("call_contracts").is_null())
        .select("trade_date")
        .collect()["trade_date"]
    )
    if not older.is_empty():
        raise BacktestError(_older_lake("gold expiry_levels", "call_contracts", older))


def _older_lake(what: str, column: str, days: pl.Series) -> str:
    first, last = days.min(), days.max()
    return (
        f"{what} of {first}..{last} has no {column}: the lake was written by an older chainsignals; "
        f"rewrite those sessions with `chainsignals backfill --start {first} --end {last} --force`"
    )


def read_chain(
    lake: Lake, wanted: pl.DataFrame, columns: dict[str, pl.DataType] = CHAIN_COLUMNS
) -> pl.DataFrame:
    """The silver chain rows (`columns`) of the listings in `wanted` (trade_date, symbol, option_type,
    expiration), each on its own session.

    Silver chains are clustered by expiration and side (SILVER_CLUSTER): the row groups holding none of
    the wanted expirations are skipped by their statistics, and the rest filtered by listing."""
    if wanted.is_empty():
        return pl.DataFrame(schema=columns)
    listed = ["trade_date", "underlying", "option_type", "expiration"]
    listings = wanted.select(
        pl.struct("trade_date", pl.col("symbol").alias("underlying"), "option_type", "expiration").alias(
            "listing"
        )
    )
    chains = (
        lake.scan(
            "silver",
            "chains",
            columns | {c: CHAIN_COLUMNS[c] for c in listed},
            dates=wanted["trade_date"].unique().sort(),
        )
        .filter(pl.col("expiration").is_in(wanted["expiration"].unique().implode()))
        .filter(pl.struct(listed).is_in(listings["listing"].unique().implode()))
        .select(list(columns))
        .collect()
    )
    if "strike_call_oi" in columns:
        unknown = chains.filter(pl.col("strike_call_oi").is_null())
        if not unknown.is_empty():
            raise BacktestError(_older_lake("silver chains", "strike_call_oi", unknown["trade_date"]))
    return chains


def named_contracts(ideas: pl.DataFrame) -> pl.DataFrame:
    """The contracts option ideas name: symbol, option_type, expiration, option_symbol."""
    return ideas.filter(pl.col("option_symbol").is_not_null()).select(
        "symbol",
        pl.col("instrument")
        .replace_strict({"call": "C", "put": "P"}, return_dtype=pl.String)
        .alias("option_type"),
        "expiration",
        "option_symbol",
    )


def session_ideas(
    lake: Lake, batch: list[date], rule_sets: dict[str, tuple[Rule, ...]], symbols: list[str] | None
) -> dict[str, pl.DataFrame]:
    """Every rule set's ideas of the sessions in `batch`, from the gold features and silver chains of
    those sessions alone. The listings come from expiry_levels, and of the chain only the listings a
    rule picks are read: the contracts its ideas can name."""
    rows = rule_rows(lake, batch, symbols)
    option_rules = [rule for rules in rule_sets.values() for rule in rules if rule.option_type]
    expirations = (
        listings(lake, batch, symbols)
        if option_rules
        else expiry_listings(pl.LazyFrame(schema=_EXPIRY_ROWS)).collect()
    )
    picked = chosen_listings(rows.lazy(), expirations.lazy(), option_rules).collect()
    picked = expirations.join(picked, on="_listing", how="semi")
    chains = read_chain(lake, picked)
    # Built once for every rule set of the batch.
    chain = picked_chain(expirations.lazy(), picked, chains.lazy()).collect()
    return {
        name: trade_ideas(rows.lazy(), chain, rules).collect(engine="in-memory")
        for name, rules in rule_sets.items()
    }


def exit_mids(lake: Lake, ideas: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """The chain mids (_MID_COLUMNS) idea_outcomes looks up for `outcomes` (its rows without mids, of
    `ideas`): each option idea's contract on the session it closed, read from that session's listing."""
    exits = (
        outcomes.filter(pl.col("status").is_in(WITH_EXIT) & pl.col("option_symbol").is_not_null())
        .select(pl.col("closed_on").alias("trade_date"), "option_symbol")
        .join(named_contracts(ideas).unique("option_symbol"), on="option_symbol")
        .unique()
    )
    rows = read_chain(lake, exits.drop("option_symbol"), _MID_COLUMNS | _LISTING_COLUMNS)
    return rows.join(exits.select("trade_date", "option_symbol"), on=["trade_date", "option_symbol"]).select(
        list(_MID_COLUMNS)
    )


def scorecard(ideas: pl.DataFrame, outcomes: pl.DataFrame, sessions: list[date]) -> pl.DataFrame:
    """idea_scorecard.sql, the warehouse view's own text, over one rule set's ideas and outcomes."""
    # One thread: a parallel avg or sum adds the rows in the order its threads finish, so mean_r and
    # expectancy would differ in their last bits from run to run; same ideas, same bits.
    con = quiet(duckdb.connect(config={"threads": 1}))
    try:
        frames = {
            "trade_ideas": ideas.select(list(TRADE_IDEA_SCHEMA)),
            "idea_outcomes": outcomes.select(list(IDEA_OUTCOME_SCHEMA)),
            "technicals_daily": pl.DataFrame({"trade_date": sessions}, schema={"trade_date": pl.Date}),
        }
        for name, frame in frames.items():
            con.register("frame", frame.to_arrow())
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.execute(SCORECARD_SQL.read_text())
        return con.sql("SELECT * FROM idea_scorecard").pl()
    finally:
        con.close()


def run_backtest(
    settings: Settings,
    rule_sets: dict[str, tuple[Rule, ...]],
    *,
    start: date | None = None,
    end: date | None = None,
    symbols: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    out: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Ideas and outcomes of each rule set over the lake's gold sessions in [start, end].

    progress(done, total) is called after each batch of sessions (and once before the first).
    """
    started = time.perf_counter()
    lake = Lake(settings.lake)
    sessions = [
        d
        for d in lake.dates("gold", "technicals_daily")
        if (start is None or d >= start) and (end is None or d <= end)
    ]
    if not sessions:
        raise BacktestError(
            f"no gold sessions in the lake {settings.lake} between {start or 'the first'} and "
            f"{end or 'the last'}: run `chainsignals backfill` first",
            file=settings.lake,
        )
    option_rules = sum(1 for rules in rule_sets.values() for rule in rules if rule.option_type)
    if option_rules:
        _check_listings(lake, sessions)
    batches = _session_batches(lake, sessions, settings.batch_rows, option_rules)
    collected: dict[str, list[pl.DataFrame]] = {name: [] for name in rule_sets}
    if progress:
        progress(0, len(batches))
    for done, batch in enumerate(batches, 1):
        for name, frame in session_ideas(lake, batch, rule_sets, symbols).items():
            collected[name].append(frame)
        if progress:
            progress(done, len(batches))
    bars = (
        _of(
            lake.scan(
                "silver",
                "bars",
                {
                    "trade_date": pl.Date(),
                    "symbol": pl.String(),
                    **{c: pl.Float64() for c in ("open", "high", "low", "close")},
                },
                start=sessions[0],
                end=sessions[-1],
            ),
            "symbol",
            symbols,
        )
        .collect()
        .lazy()
    )
    horizon = settings.stock_horizon_sessions
    all_ideas = {name: pl.concat(frames) for name, frames in collected.items()}

    def walk(name: str, mids: pl.LazyFrame | None) -> pl.DataFrame:
        return idea_outcomes(all_ideas[name].lazy(), bars, sessions[-1], mids, horizon).collect()

    # The exit mids are read once the walks say which contract closed on which session: a first walk
    # without them gives the exits, the second (idea_outcomes itself) prices them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        unpriced = dict(zip(rule_sets, pool.map(lambda name: walk(name, None), rule_sets), strict=True))
    mids = exit_mids(
        lake, pl.concat(all_ideas.values()), pl.concat(unpriced.values(), how="vertical_relaxed")
    ).lazy()
    keys = ["rule_set", "rule", "direction"]

    def score(name: str) -> tuple[pl.DataFrame, ...]:
        set_ideas, set_outcomes = all_ideas[name], walk(name, mids)
        tag = pl.lit(name).alias("rule_set")
        return (
            set_ideas.with_columns(tag),
            set_outcomes.with_columns(tag),
            scorecard(set_ideas, set_outcomes, sessions).with_columns(tag),
            mean_r_intervals(set_outcomes.with_columns(tag), keys, seed),
        )

    # Each rule set on its own thread: the bootstrap (numpy) of one runs beside the other's polars and
    # DuckDB work. Every interval is seeded by its own rule, so the threads change no figure.
    with ThreadPoolExecutor(max_workers=2) as pool:
        ideas, outcomes, cards, intervals = (
            list(part) for part in zip(*pool.map(score, rule_sets), strict=True)
        )
    ideas_frame, outcomes_frame = pl.concat(ideas), pl.concat(outcomes)
    intervals = pl.concat(intervals)
    # Every rule gets its row, in its file's order: one that never fired says so with zeros.
    declared = pl.DataFrame(
        [
            {"rule_set": name, "rule": r.name, "direction": r.direction}
            for name, rules in rule_sets.items()
            for r in rules
        ],
        schema={k: pl.String for k in keys},
    )
    card = (
        pl.concat(cards).filter(pl.col("period") == "all").drop("period").join(intervals, on=keys, how="left")
    )
    counts = [c for c, t in card.schema.items() if t.is_integer()]
    card = (
        declared.join(card, on=keys, how="left", maintain_order="left")
        .with_columns(pl.col(counts).fill_null(0))
        .select(
            *keys,
            pl.exclude(*keys, "mean_r_low", "mean_r_high", "expectancy", "worst_losing_streak"),
            "mean_r_low",
            "mean_r_high",
            "expectancy",
            "worst_losing_streak",
        )
    )
    out = out or settings.warehouse / "scratch" / f"backtest-{datetime.now(UTC):%Y%m%dT%H%M%S}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    # One row per idea: its levels and how it played out (the outcome columns it shares are the idea's own).
    ideas_frame.join(
        outcomes_frame.drop("symbol", "rule", "direction", "instrument", "option_symbol").rename(
            {"trade_date": "as_of"}
        ),
        on=["rule_set", "idea_id"],
        how="left",
    ).write_parquet(out)
    return BacktestResult(sessions, ideas_frame, outcomes_frame, card, time.perf_counter() - started, out)

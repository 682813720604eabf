"""`chainsignals backtest`: rule sets over the lake's history, point in time, nothing published.

Each session's ideas come from that session's gold features only (technicals, positioning, block flow,
signals and the per-expiration yardsticks of expiry_levels, all as the nightly wrote them) and that
session's silver chain, through the same `trade_ideas` the nightly runs. Their outcomes are
`idea_outcomes` as of the last session of the range: the very function whose rows the nightly's
incremental runs add up to. So for the config's rules a backtest gives the nightly's trade_ideas and
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
    listed_chain,
    rule_columns,
    trade_ideas,
)
from transforms.outcomes import IDEA_OUTCOME_SCHEMA, idea_outcomes
from transforms.positioning import strike_open_interest
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
    )
}
# The symbol column of the gold tables keyed by underlying (positioning_daily, flow_daily, expiry_levels).
GOLD_SYMBOL = "symbol"
_KEYS = {"trade_date": pl.Date(), GOLD_SYMBOL: pl.String()}
# What option_chain reads of strike_open_interest.
_STRIKE_OI = ["trade_date", "underlying", "strike", "call_oi", "put_oi"]
# The contracts ideas named (their exit mids are looked up in later sessions' chains).
_NAMED = {
    "symbol": pl.String(),
    "option_type": pl.String(),
    "expiration": pl.Date(),
    "option_symbol": pl.String(),
}
_MID_COLUMNS = {"trade_date": pl.Date(), "option_symbol": pl.String(), "mid": pl.Float64()}


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


def _session_batches(lake: Lake, sessions: list[date], batch_rows: int) -> list[list[date]]:
    """Sessions in batches of about `batch_rows` chain rows (the first chain's size stands for all)."""
    chain_days = [d for d in lake.dates("silver", "chains") if sessions[0] <= d <= sessions[-1]]
    per_session = 1
    if chain_days:
        per_session = max(
            1,
            lake.scan("silver", "chains", {"trade_date": pl.Date()}, dates=[chain_days[-1]])
            .select(pl.len())
            .collect()
            .item(),
        )
    size = max(1, batch_rows // per_session)
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


def expiry_yardsticks(lake: Lake, batch: list[date], symbols: list[str] | None) -> pl.LazyFrame:
    """expiry_levels' yardsticks of the batch, as option_chain takes them."""
    return _gold(
        lake, "expiry_levels", {**_KEYS, "expiration": pl.Date(), **YARDSTICK_COLUMNS}, batch, symbols
    ).rename({GOLD_SYMBOL: "underlying"})


def named_contracts(ideas: pl.DataFrame) -> pl.DataFrame:
    """The contracts (_NAMED) that option ideas name."""
    return ideas.filter(pl.col("option_symbol").is_not_null()).select(
        "symbol",
        pl.col("instrument")
        .replace_strict({"call": "C", "put": "P"}, return_dtype=pl.String)
        .alias("option_type"),
        "expiration",
        "option_symbol",
    )


def session_ideas(
    lake: Lake,
    batch: list[date],
    rule_sets: dict[str, tuple[Rule, ...]],
    symbols: list[str] | None,
    named: pl.DataFrame | None = None,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Every rule set's ideas of the sessions in `batch`, from the gold features and silver chains of
    those sessions alone; and the batch's chain mids (_MID_COLUMNS) of the contracts an idea names, in
    this batch or in `named` (_NAMED: the contracts earlier batches' ideas named).

    The mids are every exit mid the outcomes of ideas up to this batch can look up (an idea exits
    after its own session), taken while the chain is in memory instead of reading every contract's
    symbol and mid again.

    Only the chain rows of the underlyings an option rule applies to in the batch or a named contract
    is on are read (none when there are neither), and only the contracts of the listings a rule picks
    are keyed and joined; the strike totals only when a rule names them."""

    rows = rule_rows(lake, batch, symbols)
    all_rules = [rule for rules in rule_sets.values() for rule in rules]
    option_rules = [rule for rule in all_rules if rule.option_type]
    applies = pl.concat(
        [rows.lazy().filter(pl.sql_expr(rule.when)).select("symbol") for rule in option_rules]
        or [pl.LazyFrame(schema={"symbol": pl.String()})]
    )
    if named is None:
        named = pl.DataFrame(schema=_NAMED)
    underlyings = pl.concat([applies, named.lazy().select("symbol")]).unique().collect()["symbol"]
    chains = _of(lake.scan("silver", "chains", CHAIN_COLUMNS, dates=batch), "underlying", symbols)
    if underlyings.is_empty():
        chains = chains.clear()
    elif not rows["symbol"].is_in(underlyings.implode()).all():
        # Silver files are in underlying order: the scan skips the row groups holding none of them.
        chains = chains.filter(pl.col("underlying").is_in(underlyings.implode()))
    chains = chains.collect()
    # The partition column comes in other chunks than the file's columns, and a filter of such a frame by
    # the per-row masks below copies the whole frame to line them up, on every use: in one chunk (with
    # masks in one chunk) it does not, and that is a copy of one small column instead of the frame.
    chains = chains.with_columns(chains.get_column("trade_date").rechunk())
    listed = listed_chain(chains)
    expirations = listed.expirations(expiry_yardsticks(lake, batch, symbols)).collect()
    picked = chosen_listings(rows.lazy(), expirations.lazy(), option_rules).collect()
    strike_oi = strike_open_interest(pl.LazyFrame(schema=CHAIN_COLUMNS))
    if {"strike_call_oi", "strike_put_oi"} & rule_columns(all_rules):
        strike_oi = strike_open_interest(chains.lazy())
    # Built once for every rule set of the batch.
    chain = listed.option_chain(picked, expirations.lazy(), strike_oi.select(_STRIKE_OI).collect().lazy())
    ideas = {
        name: trade_ideas(rows.lazy(), chain, rules).collect(engine="in-memory")
        for name, rules in rule_sets.items()
    }
    return ideas, listed.mids(pl.concat([*map(named_contracts, ideas.values()), named]).unique())


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
    batches = _session_batches(lake, sessions, settings.batch_rows)
    collected: dict[str, list[pl.DataFrame]] = {name: [] for name in rule_sets}
    named, exit_mids = pl.DataFrame(schema=_NAMED), []
    if progress:
        progress(0, len(batches))
    for done, batch in enumerate(batches, 1):
        batch_ideas, batch_mids = session_ideas(lake, batch, rule_sets, symbols, named)
        for name, frame in batch_ideas.items():
            collected[name].append(frame)
            named = pl.concat([named, named_contracts(frame)]).unique()
        exit_mids.append(batch_mids)
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
    # A chain session without gold (ingested, not computed) gives no ideas but can hold an exit mid.
    ungold = sorted(set(lake.dates("silver", "chains")) - set(sessions))
    ungold = [d for d in ungold if sessions[0] <= d <= sessions[-1]]
    if ungold:
        exit_mids.append(
            lake.scan("silver", "chains", _MID_COLUMNS, dates=ungold)
            .filter(pl.col("option_symbol").is_in(named["option_symbol"].implode()))
            .collect()
        )
    mids = pl.concat(exit_mids).lazy()
    keys = ["rule_set", "rule", "direction"]

    def score(name: str) -> tuple[pl.DataFrame, ...]:
        set_ideas = pl.concat(collected[name])
        set_outcomes = idea_outcomes(
            set_ideas.lazy(), bars, sessions[-1], mids, settings.stock_horizon_sessions
        ).collect()
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

"""Gold: the registry's tables (schemas/gold.py) built from silver for a batch of sessions, all symbols at
once (or one shard of them), validated and staged for the publish; technicals carried forward when they can be."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date, datetime
from functools import partial
from itertools import groupby
from pathlib import Path

import polars as pl

from flows.config import Settings
from flows.sources.calendar import non_sessions
from flows.sources.files import (
    now_utc,
)
from flows.stages.progress import count
from flows.stages.sessions import StageStats
from flows.stages.silver import _date_batches, silver_schema
from flows.storage.faults import crash_point
from flows.storage.fingerprints import code_fingerprint
from flows.storage.lake import (
    GoldStagedLake,
    Lake,
    modified_ns,
    read_parquet,
    version,
    write_atomic,
)
from schemas.gold import GOLD_BY_NAME, GOLD_TABLES, validate_gold
from transforms.features import join_features, with_signals
from transforms.forwards import expiry_forwards
from transforms.greeks import expiry_exposure, iv_rank_percentile, session_greeks
from transforms.ideas import TRADE_IDEA_SCHEMA, option_chain, trade_ideas
from transforms.order_flow import blocks, flow_daily
from transforms.outcomes import exit_mid_sessions, outcomes_for_run, walk_from
from transforms.positioning import (
    expiry_levels,
    positioning_daily,
    previous_sessions,
    strike_levels,
    strike_open_interest,
)
from transforms.signals import pcr_zscore, signals_daily
from transforms.technicals import carry_forward, technicals_daily, technicals_with_state
from transforms.yardsticks import expiry_yardsticks

# The instrument a chain row is on: `underlying` in silver (the landing name), `symbol` in gold (SPEC 2).
GOLD_RENAMES = {"underlying": "symbol"}


# ------------------------------------------------------------------------------------------ gold
def shard_of(symbol: str, shards: int) -> int:
    """Stable across processes and machines (Python's hash() is salted per process)."""
    return int(hashlib.md5(symbol.encode()).hexdigest()[:8], 16) % shards


def shard_part(index: int, shards: int) -> str:
    return f"part-{index}-of-{shards}"


def shard_symbols(settings: Settings, dates: list[date], index: int, shards: int) -> list[str]:
    """The underlyings of shard `index` among those with bars or a chain in `dates`."""
    lake = Lake(settings.lake)
    universe = set(
        lake.scan("silver", "bars", {"trade_date": pl.Date(), "symbol": pl.String()}, dates=dates)
        .select("symbol")
        .unique()
        .collect()
        .to_series()
        .to_list()
    )
    universe |= set(
        lake.scan("silver", "chains", {"trade_date": pl.Date(), "underlying": pl.String()}, dates=dates)
        .select("underlying")
        .unique()
        .collect()
        .to_series()
        .to_list()
    )
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


def build_gold(
    settings: Settings,
    dates: list[date],
    stats: StageStats,
    symbols: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    run_id: str | None = None,
) -> dict[str, dict[date, int]]:
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
            chain_rows[d] = (
                lake.scan("silver", "chains", {"trade_date": pl.Date()}, dates=[d])
                .select(pl.len())
                .collect()
                .item()
            )
    # A batch never spans a new year: its sessions share one history start.
    done = 0
    for batch in [
        b for year in years for b in _date_batches({d: chain_rows[d] for d in year}, settings.batch_rows)
    ]:
        count("gold sessions", done, len(dates))
        done += len(batch)
        started = now_utc()
        since = history_start(batch[0], settings.history_years)
        # Read once: positioning, greeks, levels and ideas all work on the same day's chain.
        chains = (
            _only(lake.scan("silver", "chains", silver_schema("chains"), dates=batch), symbols)
            .collect()
            .lazy()
        )
        previous_day = max((d for d in chain_dates if d < batch[0]), default=None)
        previous_chains = (
            _only(lake.scan("silver", "chains", silver_schema("chains"), dates=[previous_day]), symbols)
            if previous_day
            else None
        )
        spot = (
            technicals.lazy()
            .filter(pl.col("trade_date").is_in(batch))
            .select("trade_date", pl.col("symbol").alias("underlying"), pl.col("close").alias("spot"))
        )
        previous = _previous_oi_totals(lake, previous_day, previous_chains, symbols)
        prior_dates = _prior_chain_sessions(chain_dates, batch)
        positioning = _with_iv_rank(
            lake,
            batch,
            since,
            positioning_daily(chains, spot=spot, previous=previous, prior_dates=prior_dates)
            .join(
                session_greeks(chains, spot=spot, rate=settings.risk_free_rate),
                on=["trade_date", "underlying"],
                how="left",
            )
            .collect(),
        )
        write("positioning_daily", positioning, batch, started=started)
        crash_point("gold-half-written")
        yardsticks = expiry_yardsticks(
            chains, expiry_forwards(chains, settings.risk_free_rate), spot=spot
        ).collect()
        write(
            "expiry_levels",
            expiry_levels(chains, spot=spot)
            .join(
                expiry_exposure(chains, spot=spot, rate=settings.risk_free_rate),
                on=["trade_date", "underlying", "expiration"],
                how="left",
            )
            .join(yardsticks.lazy(), on=["trade_date", "underlying", "expiration"], how="left")
            .collect(),
            batch,
            started=started,
        )
        trades = _only(lake.scan("silver", "trades", silver_schema("trades"), dates=batch), symbols)
        block_prints = blocks(trades, settings.block_notional, settings.block_size).collect()
        flow = flow_daily(block_prints.lazy(), chains, trades).collect()
        write("blocks", block_prints, batch, started=started)
        write("flow_daily", flow, batch, started=started)
        write(
            "strike_levels",
            strike_levels(
                chains,
                previous_chains=previous_chains,
                top_n=settings.top_strikes,
                spot=spot,
                prior_dates=prior_dates,
            ).collect(),
            batch,
            started=started,
        )

        features = join_features(
            technicals.lazy().filter(pl.col("trade_date").is_in(batch)),
            positioning.lazy().rename(GOLD_RENAMES),
            flow.lazy().rename(GOLD_RENAMES),
        )
        history = pl.concat(
            [
                _gold_positioning(lake, {"pcr_oi": pl.Float64()}, start=since, end=batch[0]).filter(
                    pl.col("trade_date") < batch[0]
                ),
                positioning.lazy().select("trade_date", "underlying", "pcr_oi"),
            ]
        )
        pcr_z = pcr_zscore(history, settings.pcr_history_sessions).filter(pl.col("trade_date").is_in(batch))
        signals = signals_daily(
            features,
            pcr_z,
            weights=settings.weights,
            bullish_at=settings.bullish_at,
            bearish_at=settings.bearish_at,
        ).collect()
        write("signals_daily", signals, batch, started=started)
        contracts = option_chain(chains, strike_open_interest(chains), yardsticks.lazy())
        # In memory: polars 2.1's streaming engine panics (binview index) on this plan at full-market size.
        ideas = trade_ideas(with_signals(features, signals.lazy()), contracts, settings.rules).collect(
            engine="in-memory"
        )
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
        bars = _of_symbols(
            lake.scan("silver", "bars", silver_schema("bars"), start=start, end=dates[-1]),
            [*symbols, settings.benchmark],
        )
        return (
            technicals_daily(bars, settings.benchmark)
            .filter(pl.col("trade_date").is_in(dates))
            .filter(pl.col("symbol").is_in(symbols))
            .collect()
        )
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
            today, state = carry_forward(
                state, lake.scan("silver", "bars", silver_schema("bars"), dates=[day]), settings.benchmark
            )
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


def _keep_technicals_state(
    settings: Settings, lake: Lake, day: date, start: date, state: pl.DataFrame
) -> None:
    path = _technicals_state_file(settings, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    # lz4: the cheapest codec to write, for a file read back once.
    write_atomic(
        state.with_columns(state_key=pl.lit(_technicals_state_key(settings, lake, day, start))),
        path,
        compression="lz4",
    )
    for older in sorted(path.parent.glob("state-*.parquet"), reverse=True)[TECHNICALS_STATES_KEPT:]:
        older.unlink(missing_ok=True)


def _prior_chain_sessions(chain_dates: set[date], batch: list[date]) -> pl.LazyFrame:
    """(trade_date, prior_date): for each chain session of the batch, the lake's chain session before it,
    which OI changes compare with (the same whether the batch holds one session or a year of them)."""
    sessions = pl.LazyFrame({"trade_date": sorted(chain_dates)}, schema={"trade_date": pl.Date()})
    return previous_sessions(sessions).filter(pl.col("trade_date").is_in(batch))


def _previous_oi_totals(
    lake: Lake, day: date | None, chains: pl.LazyFrame | None, symbols: list[str] | None
) -> pl.LazyFrame | None:
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
        return _only(
            _gold_positioning(lake, {"call_oi": pl.Int64(), "put_oi": pl.Int64()}, dates=[day]), symbols
        )
    return positioning_daily(chains).select(columns)


def _build_outcomes(
    settings: Settings, lake: Lake, dates: list[date], write, symbols: list[str] | None
) -> None:
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
    previous = lake.scan(
        "gold", "idea_outcomes", {"idea_date": pl.Date(), "status": pl.String()}, dates=[since]
    )
    return walk_from(previous, since).collect().item()


def _with_iv_rank(lake: Lake, batch: list[date], since: date, positioning: pl.DataFrame) -> pl.DataFrame:
    """IV rank and percentile of atm_iv_30 against the sessions in the lake from `since` up to each
    row's date."""
    history = pl.concat(
        [
            _gold_positioning(lake, {"atm_iv_30": pl.Float64()}, start=since, end=batch[0]).filter(
                pl.col("trade_date") < batch[0]
            ),
            positioning.lazy().select("trade_date", "underlying", "atm_iv_30"),
        ]
    )
    ranks = (
        iv_rank_percentile(history)
        .filter(pl.col("trade_date").is_in(batch))
        .select("trade_date", "underlying", "iv_rank_252", "iv_percentile_252")
    )
    return positioning.join(ranks.collect(), on=["trade_date", "underlying"], how="left")


def _scan_gold(lake: Lake, table: str, schema: dict[str, pl.DataType], **select) -> pl.LazyFrame:
    """A gold table's partitions with `schema`'s columns. Files written before gold named the instrument
    `symbol` hold it as `underlying`: either is read as `symbol`."""
    if "symbol" not in schema:
        return lake.scan("gold", table, schema, **select)
    either = {**schema, **{old: pl.String() for old in GOLD_RENAMES}}
    return (
        lake.scan("gold", table, either, **select)
        .with_columns(pl.coalesce("symbol", *GOLD_RENAMES))
        .select(list(schema))
    )


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


def _write_gold(
    lake: Lake,
    table: str,
    frame: pl.DataFrame,
    dates: list[date],
    *,
    counts: dict[str, dict[date, int]],
    stats: StageStats,
    started: datetime,
    symbols: list[str] | None = None,
    part: str | None = None,
) -> None:
    gold = GOLD_BY_NAME[table]
    frame = validate_gold(frame.rename(GOLD_RENAMES, strict=False), gold.model)
    key = list(gold.key)
    if part:  # a shard: its own file beside the other shards'
        lake.write_partitions(
            frame.sort(key, nulls_last=True), "gold", table, dates=dates, part=part, exclusive=False
        )
    elif symbols:  # keep the other symbols' rows of these partitions
        kept = _scan_gold(lake, table, dict(frame.schema), dates=dates).filter(
            ~pl.col("symbol").is_in(symbols)
        )
        frame = pl.concat([kept.collect(), frame])
    if not part:
        lake.write_partitions(frame.sort(key, nulls_last=True), "gold", table, dates=dates)
    per_day = dict(frame.group_by("trade_date").len().iter_rows())
    for day in dates:
        counts[table][day] = per_day.get(day, 0)
        stats.add(f"gold.{table}", day, per_day.get(day, 0), per_day.get(day, 0), 0, started)

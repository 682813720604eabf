"""How each trade idea played out: a forward walk over the underlying's bars (SPEC 4, idea_outcomes).

For every idea dated before `as_of`, the sessions after its trade date are walked, up to `as_of` and
no further than the idea's window: for options the last session on or before the expiration, for stock
the `horizon_sessions`-th session after the trade date (sessions are the symbol's own bars).

- **Trigger**: the first session whose high reaches the trigger level (trigger_direction above) or whose
  low reaches it (below). Entry is the trigger level, or the session's open when the session opened
  already beyond it (a gap through the trigger).
- **Target / stop**: from the trigger session on, the first session that touches the target or the
  stop decides. The trigger session itself counts: the bar cannot tell whether a stop touch came before
  or after the entry, so the walk assumes the worst, just as a session touching both levels is a
  stop_hit. The open is the one price whose time is known: on a session where the position was already
  held at the open (any session after the trigger session, or the trigger session when the entry was
  at its open), an open at or beyond a level is that level's hit at the open price (a gap through the
  target is a target_hit, exit at the open, even if the session later reaches the stop). Otherwise the
  exit is at the level.
- **Window end**: nothing touched by the last session of the window: `expired` (exit at that session's
  close) when triggered, `not_triggered` when not. Before the window ends: `open` (triggered) or
  `pending` (not yet).
- **r_multiple** = (exit - entry) / (entry - stop) for bullish ideas, (entry - exit) / (stop - entry)
  for bearish ones; NULL when entry - stop is not positive (the entry gapped to or past the stop, so
  the trade had no risk to measure in).
- **Options**: `option_exit_mid` is the contract's mid on `closed_on` from `contract_mids` (the silver
  chains); `option_mid_source` says 'chain' when it was found and 'missing' when that chain (or its mid)
  is not in the lake: it is never estimated. `option_r_multiple` = (exit mid - entry_premium) /
  entry_premium: a long option risks its premium, so 1R is the premium paid. Rows without an exit
  (pending, open, not_triggered) and stock rows have NULL in all three.

**Point in time.** Bars, chains and ideas dated after `as_of` are dropped before anything else, so the
result for `as_of` D is a pure function of data dated D or earlier: a backfill that computes D with
later sessions in the lake returns exactly what the nightly run of D returned, and the latest row per
idea after a sequence of nightly runs equals one run at the last date (tests/test_outcomes.py checks
both). `outcomes_for_run` is the nightly's incremental form: only the rows that changed since the
previous run.

Output `trade_date` is `as_of` (the gold partition: the session the outcome is as of); the idea's own
date is `idea_date`.
"""

from __future__ import annotations

from datetime import date

import polars as pl

STATUSES = ("pending", "not_triggered", "open", "target_hit", "stop_hit", "expired")
FINAL_STATUSES = ("not_triggered", "target_hit", "stop_hit", "expired")
WITH_EXIT = ("target_hit", "stop_hit", "expired")

IDEA_OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),  # as_of: the session this outcome is known at (the gold partition)
    "idea_id": pl.String(),
    "idea_date": pl.Date(),
    "symbol": pl.String(),
    "rule": pl.String(),
    "direction": pl.String(),
    "instrument": pl.String(),
    "option_symbol": pl.String(),
    "status": pl.String(),
    "triggered_on": pl.Date(),
    "entry_price": pl.Float64(),
    "closed_on": pl.Date(),
    "exit_price": pl.Float64(),
    "r_multiple": pl.Float64(),
    "sessions_walked": pl.Int64(),
    "option_exit_mid": pl.Float64(),
    "option_mid_source": pl.String(),
    "option_r_multiple": pl.Float64(),
}

IDEA_COLUMNS = (
    "trade_date",
    "idea_id",
    "symbol",
    "rule",
    "direction",
    "instrument",
    "option_symbol",
    "expiration",
    "entry_premium",
    "trigger_level",
    "trigger_direction",
    "target",
    "stop",
)
BAR_COLUMNS = ("trade_date", "symbol", "open", "high", "low", "close")

_IDEA = "_idea"  # a row key of our own: the walk must not depend on idea_id being unique


def _candidates(ideas: pl.LazyFrame, as_of: date, since: date | None) -> pl.LazyFrame:
    """The ideas the run may write, with `_IDEA`: dated before as_of and, after `since`, no option
    expired by then (whether a stock idea's window ended by `since` needs the bars: see _windows)."""
    live = pl.col("trade_date") < as_of
    if since is not None:
        live = live & ((pl.col("instrument") == "stock") | (pl.col("expiration") > since))
    return ideas.select(IDEA_COLUMNS).filter(live).rename({"trade_date": "idea_date"}).with_row_index(_IDEA)


def _numbered_sessions(bars: pl.LazyFrame, as_of: date, candidates: pl.LazyFrame) -> pl.LazyFrame:
    """The bars the walks need, ordered by symbol and date, with `bar_no` (the row number, a join key) and
    `session_no` (1 for each symbol's first bar kept, counting up).

    Kept: the bars dated <= as_of of the symbols with candidates, from their oldest candidate's date
    on, not the whole history. Every window, horizon and `stock_live_from` test counts a symbol's bars
    dated after one of its candidates' dates, so leaving out the bars before the oldest shifts all of
    that symbol's session numbers by the same amount and changes no result.
    """
    oldest = candidates.group_by("symbol").agg(pl.col("idea_date").min().alias("_oldest"))
    return (
        bars.select(BAR_COLUMNS)
        .filter(pl.col("trade_date") <= as_of)
        .join(oldest, on="symbol", how="inner")
        .filter(pl.col("trade_date") >= pl.col("_oldest"))
        .drop("_oldest")
        .sort("symbol", "trade_date")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("bar_no"))
        .with_columns((pl.col("bar_no") - pl.col("bar_no").min().over("symbol") + 1).alias("session_no"))
    )


def _session_no_on_or_before(
    frame: pl.LazyFrame, day: str, sessions: pl.LazyFrame, alias: str
) -> pl.LazyFrame:
    """Add `alias`: the symbol's session number of its last bar dated on or before column `day` (0: none)."""
    numbered = sessions.select(
        "symbol", pl.col("trade_date").alias("_bar_date"), pl.col("session_no").alias(alias)
    )
    return (
        frame.sort(day)
        .join_asof(
            numbered.sort("_bar_date"),
            left_on=day,
            right_on="_bar_date",
            by="symbol",
            strategy="backward",
            check_sortedness=False,
        )
        .drop("_bar_date")
        .with_columns(pl.col(alias).fill_null(0))
    )


def _windows(
    candidates: pl.LazyFrame, sessions: pl.LazyFrame, as_of: date, horizon_sessions: int, since: date | None
) -> pl.LazyFrame:
    """One row per idea: its window in session numbers, (start_no, end_no], and whether it is complete.

    `since`: leave out the ideas whose window was already complete at `since` (their outcome is final
    and unchanged since then): options expired by then (not candidates), and stock ideas dated before
    the symbol's `horizon_sessions`-th last session on or before `since`.
    """
    per_symbol = sessions.group_by("symbol").agg(
        (pl.col("bar_no").min() - 1).alias("bar_base"),  # bar_no = bar_base + session_no
        pl.col("session_no").max().alias("last_no"),
        *(
            []
            if since is None
            else [
                pl.when(pl.col("trade_date").filter(pl.col("trade_date") <= since).len() >= horizon_sessions)
                .then(
                    pl.col("trade_date").filter(pl.col("trade_date") <= since).top_k(horizon_sessions).min()
                )
                .alias("stock_live_from")
            ]
        ),
    )
    is_stock = pl.col("instrument") == "stock"
    frame = candidates.join(per_symbol, on="symbol", how="left").with_columns(pl.col("last_no").fill_null(0))
    if since is not None:
        frame = frame.filter(~is_stock | (pl.col("idea_date") >= pl.col("stock_live_from")).fill_null(True))
        frame = frame.drop("stock_live_from")
    frame = _session_no_on_or_before(frame, "idea_date", sessions, "start_no")
    frame = _session_no_on_or_before(
        frame.with_columns(pl.coalesce("expiration", "idea_date").alias("_window_date")),
        "_window_date",
        sessions,
        "expiry_no",
    ).drop("_window_date")
    horizon_no = pl.col("start_no") + horizon_sessions
    return frame.with_columns(
        pl.when(is_stock)
        .then(pl.min_horizontal(horizon_no, "last_no"))
        .otherwise(pl.max_horizontal("expiry_no", "start_no"))
        .alias("end_no"),
        pl.when(is_stock)
        .then(horizon_no <= pl.col("last_no"))
        .otherwise(pl.col("expiration") <= as_of)
        .alias("window_complete"),
    )


def _walk(windows: pl.LazyFrame, sessions: pl.LazyFrame) -> pl.LazyFrame:
    """Per idea (_idea): its trigger session and its deciding (target/stop) session within the window.

    One row per idea and walked session: only numbers and flags, as there are ideas x window of them.
    """
    bullish, above = pl.col("_bullish"), pl.col("_above")
    high, low, no = pl.col("high"), pl.col("low"), pl.col("session_no")
    crossed = pl.when(above).then(high >= pl.col("trigger_level")).otherwise(low <= pl.col("trigger_level"))
    touch_target = pl.when(bullish).then(high >= pl.col("target")).otherwise(low <= pl.col("target"))
    touch_stop = pl.when(bullish).then(low <= pl.col("stop")).otherwise(high >= pl.col("stop"))
    first = pl.col("bar_base") + 1
    rows = (
        windows.select(
            _IDEA,
            (pl.col("direction") == "bullish").alias("_bullish"),
            (pl.col("trigger_direction") == "above").alias("_above"),
            "trigger_level",
            "target",
            "stop",
            pl.int_ranges(first + pl.col("start_no"), first + pl.col("end_no"), dtype=pl.Int64).alias(
                "bar_no"
            ),
        )
        .explode("bar_no")
        .join(
            sessions.select("bar_no", "session_no", "trade_date", "open", "high", "low", "close"),
            on="bar_no",
            how="inner",
        )
        .select(
            _IDEA,
            "session_no",
            "trade_date",
            "open",
            "close",
            crossed.alias("_crossed"),
            touch_target.alias("_touch_target"),
            touch_stop.alias("_touch_stop"),
        )
        .with_columns(no.filter("_crossed").min().over(_IDEA).alias("trigger_no"))
        .with_columns(
            no.filter((no >= pl.col("trigger_no")) & (pl.col("_touch_target") | pl.col("_touch_stop")))
            .min()
            .over(_IDEA)
            .alias("exit_no")
        )
    )
    at_trigger, at_exit = no == pl.col("trigger_no"), no == pl.col("exit_no")
    return rows.group_by(_IDEA).agg(
        pl.col("trigger_no").first(),
        pl.col("exit_no").first(),
        pl.col("trade_date").filter(at_trigger).first().alias("triggered_on"),
        pl.col("open").filter(at_trigger).first().alias("trigger_open"),
        pl.col("trade_date").filter(at_exit).first().alias("exit_on"),
        pl.col("open").filter(at_exit).first().alias("exit_open"),
        pl.col("_touch_target").filter(at_exit).first().alias("exit_touch_target"),
        pl.col("_touch_stop").filter(at_exit).first().alias("exit_touch_stop"),
        pl.col("trade_date").sort_by("session_no").last().alias("last_on"),
        pl.col("close").sort_by("session_no").last().alias("last_close"),
    )


def _beyond(price: pl.Expr, level: pl.Expr, upward: pl.Expr) -> pl.Expr:
    """price at or past level, upward (True) or downward (False)."""
    return pl.when(upward).then(price >= level).otherwise(price <= level)


def _decide(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Status, entry, exit and R from the walk's trigger and deciding sessions."""
    bullish = pl.col("direction") == "bullish"
    trigger_up = pl.col("trigger_direction") == "above"
    triggered = pl.col("trigger_no").is_not_null()
    hit = pl.col("exit_no").is_not_null()
    gap_entry = triggered & _beyond(pl.col("trigger_open"), pl.col("trigger_level"), trigger_up)
    # The open counts as a fill only when the position was already held at that open.
    held_at_open = hit & ((pl.col("exit_no") > pl.col("trigger_no")) | pl.col("gap_entry"))
    open_at_target = pl.col("held_at_open") & _beyond(pl.col("exit_open"), pl.col("target"), bullish)
    open_at_stop = pl.col("held_at_open") & _beyond(pl.col("exit_open"), pl.col("stop"), ~bullish)
    stop_hit = hit & ~open_at_target & (open_at_stop | pl.col("exit_touch_stop"))
    status = (
        pl.when(stop_hit)
        .then(pl.lit("stop_hit"))
        .when(hit)
        .then(pl.lit("target_hit"))
        .when(pl.col("window_complete") & triggered)
        .then(pl.lit("expired"))
        .when(pl.col("window_complete"))
        .then(pl.lit("not_triggered"))
        .when(triggered)
        .then(pl.lit("open"))
        .otherwise(pl.lit("pending"))
    )
    entry = (
        pl.when(pl.col("gap_entry"))
        .then(pl.col("trigger_open"))
        .when(triggered)
        .then(pl.col("trigger_level"))
    )
    exit_price = (
        pl.when(pl.col("status") == "stop_hit")
        .then(pl.when(open_at_stop).then(pl.col("exit_open")).otherwise(pl.col("stop")))
        .when(pl.col("status") == "target_hit")
        .then(pl.when(open_at_target).then(pl.col("exit_open")).otherwise(pl.col("target")))
        .when(pl.col("status") == "expired")
        .then(pl.col("last_close"))
    )
    closed_on = (
        pl.when(pl.col("status").is_in(["target_hit", "stop_hit"]))
        .then(pl.col("exit_on"))
        .when(pl.col("status").is_in(["expired", "not_triggered"]))
        .then(pl.col("last_on"))
    )
    sign = pl.when(bullish).then(pl.lit(1.0)).otherwise(pl.lit(-1.0))
    risk = sign * (pl.col("entry_price") - pl.col("stop"))
    reward = sign * (pl.col("exit_price") - pl.col("entry_price"))
    return (
        frame.with_columns(gap_entry.alias("gap_entry"))
        .with_columns(held_at_open.alias("held_at_open"))
        .with_columns(status.alias("status"))
        .with_columns(
            entry.alias("entry_price"),
            exit_price.alias("exit_price"),
            closed_on.alias("closed_on"),
            (pl.coalesce("exit_no", "end_no") - pl.col("start_no"))
            .clip(lower_bound=0)
            .alias("sessions_walked"),
        )
        .with_columns(pl.when(risk > 0).then(reward / risk).alias("r_multiple"))
    )


def _option_marks(frame: pl.LazyFrame, contract_mids: pl.LazyFrame | None, as_of: date) -> pl.LazyFrame:
    """The contract's mid on the exit session, 'chain' when the lake has it, 'missing' when not."""
    if contract_mids is None:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("_mid"))
    else:
        wanted = (
            frame.filter(pl.col("option_symbol").is_not_null() & pl.col("closed_on").is_not_null())
            .select(pl.col("closed_on").alias("trade_date"), "option_symbol")
            .unique()
        )
        mids = (
            contract_mids.select("trade_date", "option_symbol", pl.col("mid").cast(pl.Float64))
            .filter(pl.col("trade_date") <= as_of)
            .join(wanted, on=["trade_date", "option_symbol"], how="semi")
            .sort("trade_date", "option_symbol", "mid", nulls_last=True)
            .unique(subset=["trade_date", "option_symbol"], keep="first")
            .rename({"trade_date": "closed_on", "mid": "_mid"})
        )
        frame = frame.join(mids, on=["closed_on", "option_symbol"], how="left")
    priced = (pl.col("instrument") != "stock") & pl.col("status").is_in(WITH_EXIT)
    exit_mid = pl.when(priced).then(pl.col("_mid"))
    premium = pl.col("entry_premium")
    return frame.with_columns(
        exit_mid.alias("option_exit_mid"),
        pl.when(priced)
        .then(pl.when(pl.col("_mid").is_not_null()).then(pl.lit("chain")).otherwise(pl.lit("missing")))
        .alias("option_mid_source"),
        pl.when(priced & (premium > 0)).then((pl.col("_mid") - premium) / premium).alias("option_r_multiple"),
    )


def _outcomes(
    ideas: pl.LazyFrame,
    bars: pl.LazyFrame,
    as_of: date,
    contract_mids: pl.LazyFrame | None,
    horizon_sessions: int,
    since: date | None,
) -> pl.LazyFrame:
    if horizon_sessions < 1:
        raise ValueError(f"horizon_sessions must be at least 1, not {horizon_sessions}")
    # Each of these feeds several joins below (the windows feed the walk and are joined back to its
    # result). Cached, so each is computed once: the optimizer does not merge the copies by itself once
    # each has its own projection.
    candidates = _candidates(ideas, as_of, since).cache()
    sessions = _numbered_sessions(bars, as_of, candidates).cache()
    windows = _windows(candidates, sessions, as_of, horizon_sessions, since).cache()
    decided = _decide(windows.join(_walk(windows, sessions), on=_IDEA, how="left"))
    if since is not None:
        # The windows complete at `since` are gone already; of the rest, an expiry decided now (even when
        # its last session was on or before `since`, as for an option expiring on a Saturday), a hit only
        # when its session is after `since`. Filtered before the chain lookup, which reads this frame
        # twice: the same plan twice is computed once.
        decided = decided.filter(
            ~pl.col("status").is_in(["target_hit", "stop_hit"]) | (pl.col("closed_on") > since)
        )
    decided = _option_marks(decided, contract_mids, as_of)
    return (
        decided.with_columns(pl.lit(as_of, dtype=pl.Date).alias("trade_date"))
        .select([pl.col(c).cast(t) for c, t in IDEA_OUTCOME_SCHEMA.items()])
        .sort("idea_date", "symbol", "rule", "idea_id")
    )


def idea_outcomes(
    ideas: pl.LazyFrame,
    bars: pl.LazyFrame,
    as_of: date,
    contract_mids: pl.LazyFrame | None = None,
    horizon_sessions: int = 10,
) -> pl.LazyFrame:
    """Every idea dated before `as_of`, walked over the bars dated after it and on or before `as_of`.

    ideas: trade_ideas rows (trade_date, idea_id, symbol, rule, direction, instrument, option_symbol,
    expiration, entry_premium, trigger_level, trigger_direction, target, stop).
    bars: trade_date, symbol, open, high, low, close (all sessions from the oldest idea's date on).
    contract_mids: trade_date, option_symbol, mid (the silver chains), or None.
    Returns IDEA_OUTCOME_SCHEMA, one row per idea, trade_date = as_of.
    """
    return _outcomes(ideas, bars, as_of, contract_mids, horizon_sessions, since=None)


def outcomes_for_run(
    ideas: pl.LazyFrame,
    bars: pl.LazyFrame,
    as_of: date,
    since: date | None,
    contract_mids: pl.LazyFrame | None = None,
    horizon_sessions: int = 10,
) -> pl.LazyFrame:
    """The rows the run of `as_of` writes to idea_outcomes partition `as_of`.

    `since` is the previous run's as_of (the latest idea_outcomes partition before `as_of`; None when
    there is none, which writes every idea). Written: the ideas not final at `as_of` and those that
    became final after `since` (a hit on a session after `since`, a window that ended after it); an
    idea final by `since` already has its final row in an earlier partition, and it would not change.
    Each row equals that idea's row of idea_outcomes(as_of), so the latest row per idea over a
    sequence of runs is idea_outcomes at the last date: a backfill that runs every date in turn writes
    exactly what the nightly runs would have, with memory bounded by the live ideas, not the history.
    contract_mids needs only the sessions `exit_mid_sessions` names. ideas and bars need only the
    sessions from `walk_from` on (from the oldest idea's date on when `since` is None): the run reads a
    few weeks of them, not the whole history.
    """
    if since is not None and since >= as_of:
        raise ValueError(f"since ({since}) must be before as_of ({as_of})")
    return _outcomes(ideas, bars, as_of, contract_mids, horizon_sessions, since=since)


def exit_mid_sessions(
    ideas: pl.LazyFrame, bars: pl.LazyFrame, as_of: date, since: date | None
) -> pl.LazyFrame:
    """The sessions whose chains hold every exit mid the run of `as_of` looks up (column trade_date, sorted).

    A written row's exit is a session of its symbol on or before `as_of`: after `since` for a hit; for
    an option's expiry, the symbol's last session on or before its expiration, an expiration after
    `since` (an option expired by `since` is final already). When the symbol traded on `since` that
    session is `since` or later; when it did not (a halt, a data gap), it is the symbol's last session
    before `since`, which can be weeks back. So: every session after `since`, and each symbol's last
    session on or before `since` when it has a live option idea. With no `since` (the first run), every
    session of `bars`.
    """
    sessions = bars.select("trade_date", "symbol").filter(pl.col("trade_date") <= as_of)
    if since is None:
        return sessions.select(pl.col("trade_date").unique().sort())
    with_options = _candidates(ideas, as_of, since).filter(pl.col("instrument") != "stock").select("symbol")
    last_by_since = (
        sessions.filter(pl.col("trade_date") <= since)
        .join(with_options.unique(), on="symbol", how="semi")
        .group_by("symbol")
        .agg(pl.col("trade_date").max())
    )
    after_since = sessions.filter(pl.col("trade_date") > since)
    return pl.concat([last_by_since.select("trade_date"), after_since.select("trade_date")]).select(
        pl.col("trade_date").unique().sort()
    )


def walk_from(previous_run: pl.LazyFrame, since: date) -> pl.LazyFrame:
    """The date the run after `since` needs ideas and bars from (one row, `walk_from`).

    previous_run: idea_date and status of idea_outcomes partition `since`, which holds every idea dated
    before `since` that was not final then. The oldest of those not final, or `since` when all are: an
    idea dated earlier was final by `since`, so the run writes nothing for it, and the bars before it
    only shift session numbers (see _numbered_sessions).
    """
    return previous_run.filter(~pl.col("status").is_in(FINAL_STATUSES)).select(
        pl.min_horizontal(pl.col("idea_date").min(), pl.lit(since, dtype=pl.Date)).alias("walk_from")
    )


__all__ = [
    "FINAL_STATUSES",
    "IDEA_OUTCOME_SCHEMA",
    "STATUSES",
    "exit_mid_sessions",
    "idea_outcomes",
    "outcomes_for_run",
    "walk_from",
]

"""The day's report: one Markdown and one self-contained HTML page per symbol, and an index.

Every number in the text is a value of the warehouse row of that session (DuckDB, read-only,
parameterised SQL), printed with a fixed number of decimals; nothing is recomputed here. The charts
are drawn from the lake: the price chart from silver bars up to the session (the same
``technicals_daily`` transform the gold table comes from) and the open-interest chart from that
session's silver chain partition.

Layout under ``out_dir/<YYYY-MM-DD>/``::

    index.md  index.html            the day's symbols with bias, score, close, change, links
    <SYMBOL>.md  <SYMBOL>.html      the note: price, positioning, flow, levels, plays, scenarios
    charts/<SYMBOL>-price.svg       linked from the Markdown (the HTML inlines the same <svg> elements)
    charts/<SYMBOL>-oi.svg

The charts are SVG text built by hand (``report_charts``, no plotting library). The HTML pages load
nothing: CSS is inline, the charts are inline ``<svg>`` elements, and a Content-Security-Policy forbids
any other source. Files are written under a temporary name and renamed into place; a chart a run does
not draw is removed, as are the PNG charts earlier versions wrote.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from flows.config import PROJECT_ROOT
from flows.errors import ChainsignalsError
from flows.report.charts import oi_chart, price_chart, price_history, price_marks, strike_oi
from flows.report.pages import (
    NA,
    Chart,
    Facts,
    Heading,
    Link,
    Mono,
    Para,
    Section,
    Styled,
    Table,
    fmt_compact,
    fmt_count,
    fmt_money,
    fmt_pct,
    is_missing,
    render_page,
)
from flows.storage.faults import disk_full_point
from flows.storage.lake import LakePath
from flows.storage.warehouse import quiet
from schemas.checks import SYMBOL_PATTERN, checked_symbols

TOP_BLOCKS = 5
NEW_YORK = ZoneInfo("America/New_York")
SCORECARD_VIEW = "idea_scorecard"
SQL_VIEWS = PROJECT_ROOT / "sql" / "views"


class ReportError(ChainsignalsError, ValueError):
    """A report that cannot be written (bad symbol, no data for the day); the message is one line."""


@dataclass(frozen=True)
class SymbolReport:
    symbol: str
    markdown: Path
    html: Path
    charts: tuple[Path, ...]
    bias: str | None
    bias_score: int | None
    chart_seconds: float


@dataclass(frozen=True)
class ReportIndex:
    day: date
    directory: Path
    markdown: Path
    html: Path
    reports: tuple[SymbolReport, ...]
    summary: list[dict[str, Any]]
    """One row per symbol of the day (symbol, bias, bias_score, close, change_pct, ideas): an artifact table."""
    has_scorecard: bool
    seconds: float
    chart_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return [r.symbol for r in self.reports]


# ------------------------------------------------------------------------------------ warehouse


KEYS = {"iv_history": "symbol"}
"""The symbol column of frames load_day reads besides DAY_QUERIES'."""
DAY_QUERIES: dict[str, str] = {
    # table -> (symbol column); every query is parameterised on (day, symbols)
    "technicals_daily": "symbol",
    "positioning_daily": "symbol",
    "signals_daily": "symbol",
    "flow_daily": "symbol",
    "idea_display": "symbol",  # the ideas as they read (sql/views/idea_display.sql)
    "strike_levels": "symbol",
    "blocks": "symbol",
}
ORDER_BY = {
    "idea_display": "symbol, rule, idea_id",
    "strike_levels": "symbol, side, rank",
    "blocks": "symbol, notional DESC, ts",
}


@dataclass
class DayData:
    day: date
    frames: dict[str, pl.DataFrame]
    run: dict[str, Any] | None
    scorecard: pl.DataFrame | None
    scorecard_error: str | None
    _by_symbol: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict, repr=False)

    def row(self, table: str, symbol: str) -> dict[str, Any] | None:
        rows = self.rows(table, symbol)
        return rows[0] if rows else None

    def rows(self, table: str, symbol: str) -> list[dict[str, Any]]:
        """The table's rows of one symbol, in the query's order (grouped once per table, from one to_dicts:
        a partition per symbol would cost a polars call each)."""
        if table not in self._by_symbol:
            key, groups = DAY_QUERIES.get(table) or KEYS[table], {}
            for row in self.frames[table].to_dicts():
                groups.setdefault(row[key], []).append(row)
            self._by_symbol[table] = groups
        return self._by_symbol[table].get(symbol, [])


def check_symbols(symbols: Sequence[str] | None) -> list[str] | None:
    """Upper-cased, de-duplicated symbols; anything outside SYMBOL_PATTERN is refused, not cleaned."""
    if symbols is None:
        return None
    try:
        return checked_symbols([symbols] if isinstance(symbols, str) else symbols)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
    return con.sql(sql, params=params).pl()


def _index(con: duckdb.DuckDBPyConnection, day: date, present: set[str]) -> pl.DataFrame:
    """Every symbol of the day (whatever `symbols` says) with bias, score, close, change and its ideas."""
    if "trade_ideas" not in present:
        return _frame(
            con,
            "SELECT symbol, bias, bias_score, close, change_pct, 0::BIGINT AS ideas "
            "FROM signals_daily WHERE trade_date = ? ORDER BY symbol",
            [day],
        )
    return _frame(
        con,
        """
        SELECT s.symbol, s.bias, s.bias_score, s.close, s.change_pct, coalesce(i.ideas, 0) AS ideas
        FROM signals_daily s LEFT JOIN (SELECT symbol, count(*) AS ideas FROM trade_ideas WHERE trade_date = ?
                                        GROUP BY symbol) i ON i.symbol = s.symbol
        WHERE s.trade_date = ? ORDER BY s.symbol""",
        [day, day],
    )


INDEX_MAX_IDEAS = 300
"""Ideas listed on the index (a full-market day has thousands: `chainsignals ideas` lists them all)."""
IV_RANK_SESSIONS = 252
"""The window of iv_rank_252: a rank from fewer sessions is flagged as such."""
# Sessions with an ATM IV per underlying among the IV_RANK_SESSIONS sessions up to the day: what its IV
# rank was computed from.
IV_HISTORY_SQL = """
    SELECT symbol, count(atm_iv_30) AS iv_sessions
    FROM positioning_daily
    WHERE trade_date <= ? AND trade_date >= (
        SELECT coalesce(min(trade_date), DATE '0001-01-01') FROM (
            SELECT DISTINCT trade_date FROM positioning_daily WHERE trade_date <= ?
            ORDER BY trade_date DESC LIMIT ?))
      AND symbol IN (SELECT UNNEST(?::VARCHAR[]))
    GROUP BY symbol"""


def _day_ideas(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """The session's ideas as they read (idea_display) with the symbol's bias, for the index (all symbols,
    the first INDEX_MAX_IDEAS)."""
    return _frame(
        con,
        """
        SELECT i.symbol, s.bias, i.rule, i.direction, i.instrument, i.option_symbol, i.premium_per_contract,
               i.trigger_text, i.target_text, i.stop_text, i.risk_reward, count(*) OVER () AS total
        FROM idea_display i LEFT JOIN signals_daily s USING (trade_date, symbol)
        WHERE i.trade_date = ? ORDER BY i.symbol, i.rule, i.idea_id LIMIT ?""",
        [day, INDEX_MAX_IDEAS],
    )


def load_day(database: Path, day: date, symbols: list[str] | None) -> DayData:
    """The session's rows of every table the report prints, for `symbols` (default: the day's signals)."""
    if not Path(database).is_file():
        raise ReportError(f"no warehouse at {database}", file=database)
    con = quiet(duckdb.connect(str(database), read_only=True))
    try:
        present = _relations(con)
        if "signals_daily" not in present:
            raise ReportError(f"{database}: no signals_daily table (has the pipeline run?)", file=database)
        index = _index(con, day, present)  # also the day's symbols: no query of its own for them
        day_symbols = index["symbol"].unique(maintain_order=True).to_list()
        if not day_symbols:
            raise ReportError(f"no signals for {day} in {database}", file=database, date=day)
        if symbols is not None:
            missing = sorted(set(symbols) - set(day_symbols))
            if missing:
                raise ReportError(f"no signals for {', '.join(missing)} on {day}", file=database, date=day)
        wanted = symbols if symbols is not None else day_symbols
        frames = {}
        for table, key in DAY_QUERIES.items():
            if table not in present:  # older warehouses: an absent table prints as "no data"
                frames[table] = pl.DataFrame()
                continue
            order = ORDER_BY.get(table, key)
            frames[table] = _frame(
                con,
                f"SELECT * FROM {table} WHERE trade_date = ? AND {key} IN "
                f"(SELECT UNNEST(?::VARCHAR[])) ORDER BY {order}",
                [day, wanted],
            )
        frames["index"] = index
        frames["day_ideas"] = _day_ideas(con, day) if "idea_display" in present else pl.DataFrame()
        frames["iv_history"] = (
            _frame(con, IV_HISTORY_SQL, [day, day, IV_RANK_SESSIONS, wanted])
            if "positioning_daily" in present
            else pl.DataFrame()
        )
        run = None
        if "pipeline_runs" in present:
            found = con.execute(
                "SELECT run_id, finished_at FROM pipeline_runs WHERE trade_date = ? "
                "ORDER BY finished_at DESC NULLS LAST LIMIT 1",
                [day],
            ).fetchall()
            run = {"run_id": found[0][0], "finished_at": found[0][1]} if found else None
        scorecard, scorecard_error = None, None
        if SCORECARD_VIEW in present:
            try:
                scorecard = _frame(con, f"SELECT * FROM {SCORECARD_VIEW}", [])
            except duckdb.Error as exc:
                scorecard_error = str(exc).strip().splitlines()[0]
        return DayData(day, frames, run, scorecard, scorecard_error)
    finally:
        con.close()


# ------------------------------------------------------------------------------------- sections


def _relation(price: float | None, level: float | None) -> str:
    if is_missing(price) or is_missing(level):
        return ""
    return " (close above)" if price > level else (" (close below)" if price < level else " (close at it)")


def _price_section(t: dict[str, Any] | None, chart: Chart | None) -> Section:
    if t is None:
        return Section("Price and trend", [Para("No bar for this session.")])
    close = t["close"]
    facts = Facts(
        [
            ("Close", fmt_money(close)),
            ("Change", fmt_pct(t["change_pct"], sign=True)),
            ("Previous close", fmt_money(t["prev_close"])),
            (
                "Session range",
                f"{fmt_money(t['low'])} - {fmt_money(t['high'])} (open {fmt_money(t['open'])})",
            ),
            ("SMA 30", fmt_money(t["sma_30"]) + _relation(close, t["sma_30"])),
            ("SMA 50", fmt_money(t["sma_50"]) + _relation(close, t["sma_50"])),
            ("SMA 200", fmt_money(t["sma_200"]) + _relation(close, t["sma_200"])),
            ("Bollinger lower", fmt_money(t["bb_lower"])),
            ("Bollinger middle", fmt_money(t["bb_middle"])),
            ("Bollinger upper", fmt_money(t["bb_upper"])),
            ("RSI 14", fmt_money(t["rsi_14"])),
            ("ATR 14", fmt_money(t["atr_14"])),
            ("52-week low", fmt_money(t["low_52w"])),
            ("52-week high", fmt_money(t["high_52w"])),
            ("Volume", fmt_count(t["volume"])),
        ]
    )
    return Section("Price and trend", [facts, *([chart] if chart else [])])


def _iv_rank(value: float | None, sessions: int | None) -> str:
    """IV rank with the history it comes from when that is short of its 252 sessions."""
    text = fmt_pct(value, scale=100)
    if sessions is not None and sessions < IV_RANK_SESSIONS:
        return f"{text} (from {sessions} sessions, fewer than {IV_RANK_SESSIONS}: a short history)"
    return text


def _positioning_section(
    p: dict[str, Any] | None,
    levels: list[dict[str, Any]],
    chart: Chart | None,
    iv_sessions: int | None = None,
) -> Section:
    if p is None:
        return Section("Positioning", [Para("No option chain for this session.")])
    facts = Facts(
        [
            ("Spot", fmt_money(p["spot"])),
            ("Put/call OI ratio", fmt_money(p["pcr_oi"])),
            ("Put/call volume ratio", fmt_money(p["pcr_volume"])),
            ("Call OI", fmt_count(p["call_oi"]) + f" (change {fmt_count(p['call_oi_change'], sign=True)})"),
            ("Put OI", fmt_count(p["put_oi"]) + f" (change {fmt_count(p['put_oi_change'], sign=True)})"),
            ("Call wall", f"{fmt_money(p['call_wall'])} ({fmt_count(p['call_wall_oi'])} contracts)"),
            (
                "Next call wall",
                f"{fmt_money(p.get('next_call_wall'))} ({fmt_count(p.get('next_call_wall_oi'))} contracts)",
            ),
            ("Put wall", f"{fmt_money(p['put_wall'])} ({fmt_count(p['put_wall_oi'])} contracts)"),
            (
                "Next put wall",
                f"{fmt_money(p.get('next_put_wall'))} ({fmt_count(p.get('next_put_wall_oi'))} contracts)",
            ),
            ("Max pain", f"{fmt_money(p['max_pain'])} (expiration {_iso(p['max_pain_expiration'])})"),
            ("Net GEX", f"{fmt_compact(p.get('net_gex'))} per 1% move"),
            ("Net DEX", f"{fmt_compact(p.get('net_dex'))} (delta-equivalent dollars)"),
            ("Gamma flip", fmt_money(p.get("gamma_flip"))),
            ("ATM IV 30", fmt_pct(p.get("atm_iv_30"), scale=100)),
            ("25-delta risk reversal", fmt_pct(p.get("rr_25d"), scale=100, sign=True)),
            ("IV rank 252", _iv_rank(p.get("iv_rank_252"), iv_sessions)),
            ("IV percentile 252", _iv_rank(p.get("iv_percentile_252"), iv_sessions)),
        ]
    )
    table = Table(
        ["Side", "Rank", "Strike", "Open interest", "Volume", "OI change"],
        [
            [
                r["side"],
                str(r["rank"]),
                fmt_money(r["strike"]),
                fmt_count(r["open_interest"]),
                fmt_count(r["volume"]),
                fmt_count(r["oi_change"], sign=True),
            ]
            for r in levels
        ],
        numeric=(1, 2, 3, 4, 5),
    )
    blocks: list = [facts]
    if levels:
        blocks += [Heading("Largest open interest by strike"), table]
    return Section("Positioning", [*blocks, *([chart] if chart else [])])


def _flow_section(f: dict[str, Any] | None, prints: list[dict[str, Any]]) -> Section:
    if f is None:
        return Section("Flow", [Para("No trade prints or chain flow for this session.")])
    facts = Facts(
        [
            (
                "Blocks",
                (
                    f"{fmt_count(f['block_count'])} ({fmt_count(f['buy_block_count'])} buy, "
                    f"{fmt_count(f['sell_block_count'])} sell)"
                ),
            ),
            ("Block notional", fmt_compact(f["block_notional"])),
            ("Buy block notional", fmt_compact(f["block_buy_notional"])),
            ("Sell block notional", fmt_compact(f["block_sell_notional"])),
            (
                "Largest block",
                f"{fmt_compact(f['largest_block_notional'])} {f['largest_block_side']}"
                if f.get("largest_block_symbol")
                else "none",
            ),
            *(
                [("Largest block contract", Mono(f["largest_block_symbol"]))]
                if f.get("largest_block_symbol")
                else []
            ),
            ("Unusual contracts", fmt_count(f["unusual_contracts"])),
        ]
    )
    blocks: list = [facts]
    if prints:
        blocks += [
            Heading(f"Largest blocks (top {min(TOP_BLOCKS, len(prints))} of {len(prints)})"),
            Table(
                ["Time", "Contract", "Size", "Price", "Notional", "Side"],
                [
                    [
                        _time(r["ts"]),
                        Mono(r["option_symbol"]),
                        fmt_count(r["size"]),
                        fmt_money(r["price"]),
                        fmt_compact(r["notional"]),
                        str(r["side"]),
                    ]
                    for r in prints[:TOP_BLOCKS]
                ],
                numeric=(2, 3, 4),
            ),
        ]
    return Section("Flow", blocks)


def _levels_section(t: dict[str, Any] | None, s: dict[str, Any]) -> Section:
    rows = []
    if t is not None:
        rows += [
            ("Pivot (next session)", fmt_money(t["pivot_point"])),
            ("R1", fmt_money(t["r1"])),
            ("S1", fmt_money(t["s1"])),
            ("R2", fmt_money(t["r2"])),
            ("S2", fmt_money(t["s2"])),
        ]
    rows += [
        ("Support", fmt_money(s["support"])),
        ("Resistance", fmt_money(s["resistance"])),
        ("Breakout level", fmt_money(s["breakout_level"])),
        ("Breakdown level", fmt_money(s["breakdown_level"])),
    ]
    return Section("Levels", [Facts(rows)])


def _plays_section(ideas: list[dict[str, Any]]) -> Section:
    if not ideas:
        return Section("Plays", [Para("No rule fired for this session.")])
    blocks: list = []
    for number, idea in enumerate(ideas, start=1):
        blocks.append(Heading(f"Play {number}: {idea['rule']} ({idea['direction']}, {idea['instrument']})"))
        if idea.get("option_symbol"):
            contract = [
                ("Contract", Mono(idea["option_symbol"])),
                ("Expiration", f"{_iso(idea['expiration'])} ({fmt_count(idea.get('dte'))} days)"),
                ("Strike", fmt_money(idea["strike"])),
                (
                    "Premium",
                    (
                        f"{fmt_money(idea['premium_per_contract'], dollar=True)} per contract "
                        f"(option mid {fmt_money(idea['entry_premium'])})"
                    ),
                ),
                ("Contract OI", fmt_count(idea.get("contract_open_interest"))),
            ]
        else:
            contract = [("Contract", "stock")]
        blocks.append(
            Facts(
                [
                    *contract,
                    # The underlying's levels, named as such: an option idea's trigger is not the option's price.
                    ("Trigger", idea["trigger_text"]),
                    ("Target", idea["target_text"]),
                    ("Stop", idea["stop_text"]),
                    ("R:R", fmt_money(idea["risk_reward"])),
                    ("Idea id", str(idea["idea_id"])),
                ]
            )
        )
        blocks.append(Para(idea["rationale"] or ""))
    return Section("Plays", blocks)


def _scenarios_section(s: dict[str, Any]) -> Section:
    return Section(
        "Scenarios",
        [Facts([("Bull case", s.get("bull_case") or NA), ("Bear case", s.get("bear_case") or NA)])],
    )


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else NA if value is None else str(value)


def _time(value: Any) -> str:
    """A print's time in New York (the exchange's clock)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(NEW_YORK).strftime("%H:%M:%S ET")
    return _iso(value)


def _footer(data: DayData) -> str:
    run = data.run
    source = f"run {run['run_id']} finished {_iso(run['finished_at'])}" if run else "no pipeline run recorded"
    return (
        f"chainsignals report for {data.day.isoformat()}: every number is the warehouse's value for that "
        f"session (signals.duckdb, {source}); charts from the lake's silver bars and chain."
    )


def _score_line(s: dict[str, Any]) -> str:
    parts = [
        (name, s.get(f"score_{key}"))
        for name, key in (
            ("trend", "trend"),
            ("RSI", "rsi"),
            ("%B", "percent_b"),
            ("put/call", "pcr"),
            ("flow", "flow"),
            ("gamma", "gamma"),
        )
    ]
    return "Score components: " + ", ".join(f"{name} {fmt_money(v, sign=True)}" for name, v in parts)


# ---------------------------------------------------------------------------------------- writing


def _write_atomic(path: Path, content: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        disk_full_point("report-write", path)
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _symbol_page(symbol: str, data: DayData, charts: dict[str, Chart]) -> tuple[str, str]:
    s = data.row("signals_daily", symbol)
    t = data.row("technicals_daily", symbol)
    p = data.row("positioning_daily", symbol)
    bias = s["bias"] or NA
    lead = [
        Para(
            f"Bias: {bias} ({fmt_count(s['bias_score'], sign=True)})",
            css=bias if bias in ("bullish", "bearish", "neutral") else "",
        ),
        Para(_score_line(s)),
        Para(s.get("summary") or "", css="lead"),
    ]
    sections = [
        _price_section(t, charts.get("price")),
        _positioning_section(
            p,
            data.rows("strike_levels", symbol),
            charts.get("oi"),
            (data.row("iv_history", symbol) or {}).get("iv_sessions"),
        ),
        _flow_section(data.row("flow_daily", symbol), data.rows("blocks", symbol)),
        _levels_section(t, s),
        _plays_section(data.rows("idea_display", symbol)),
        _scenarios_section(s),
    ]
    return render_page(
        f"{symbol}: {data.day.isoformat()}",
        lead,
        sections,
        _footer(data),
        links=[("Index", "index.md", "index.html")],
    )


def _index_page(data: DayData, written: set[str]) -> tuple[str, str]:
    index = data.frames["index"]
    rows = []
    for r in index.to_dicts():
        symbol = r["symbol"]
        have = symbol in written
        rows.append(
            [
                Link(symbol, f"{symbol}.md", f"{symbol}.html") if have else symbol,
                _bias(r["bias"]),
                fmt_count(r["bias_score"], sign=True),
                fmt_money(r["close"]),
                fmt_pct(r["change_pct"], sign=True),
                fmt_count(r["ideas"]),
                [Link("md", f"{symbol}.md", f"{symbol}.md"), Link("html", f"{symbol}.html", f"{symbol}.html")]
                if have
                else "not written",
            ]
        )
    headers = ["Symbol", "Bias", "Score", "Close", "Change", "Ideas", "Report"]
    sections = [
        _ideas_section(data.frames["day_ideas"], written),
        Section("Symbols", [Table(headers, rows, numeric=(2, 3, 4, 5))]),
    ]
    if data.scorecard is not None:
        sections.append(_scorecard_section(data.scorecard))
    elif data.scorecard_error:
        sections.append(Section("Idea scorecard", [Para(f"Unavailable: {data.scorecard_error}")]))
    counts = ", ".join(f"{b} {n}" for b, n in index.group_by("bias").len().sort("bias").iter_rows())
    lead = [Para(f"{index.height} symbols; bias counts: {counts}.")]
    return render_page(f"chainsignals report: {data.day.isoformat()}", lead, sections, _footer(data))


def _bias(bias: str | None) -> Styled | str:
    return Styled(bias, bias) if bias in ("bullish", "bearish", "neutral") else bias or NA


def _ideas_section(ideas: pl.DataFrame, written: set[str]) -> Section:
    """Today's ideas, one row each: what to watch (trigger), where it pays (target), where it is wrong (stop)."""
    if not ideas.height:
        return Section("Today's ideas", [Para("No rule fired for this session.")])
    rows = [
        [
            Link(r["symbol"], f"{r['symbol']}.md", f"{r['symbol']}.html")
            if r["symbol"] in written
            else r["symbol"],
            _bias(r["bias"]),
            r["rule"],
            _bias(r["direction"]),
            Mono(r["option_symbol"]) if r["option_symbol"] else "stock",
            fmt_money(r["premium_per_contract"], dollar=True)
            if not is_missing(r["premium_per_contract"])
            else NA,
            r["trigger_text"],
            r["target_text"],
            r["stop_text"],
            fmt_money(r["risk_reward"]),
        ]
        for r in ideas.to_dicts()
    ]
    total = ideas["total"][0]
    blocks: list = [
        Table(
            [
                "Symbol",
                "Bias",
                "Rule",
                "Direction",
                "Contract",
                "Premium per contract",
                "Trigger",
                "Target",
                "Stop",
                "R:R",
            ],
            rows,
            numeric=(5, 9),
        )
    ]
    if total > ideas.height:
        blocks.append(
            Para(
                f"The first {ideas.height:,} of {total:,} ideas, by symbol; the command chainsignals ideas "
                "lists them all.",
                css="note",
            )
        )
    return Section("Today's ideas", blocks)


def scorecard_definitions() -> str:
    """What the scorecard's columns mean: the comment heading the view's SQL file, so the page says what
    the view computes whoever changes it."""
    lines = []
    for line in (SQL_VIEWS / f"{SCORECARD_VIEW}.sql").read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def _scorecard_section(frame: pl.DataFrame) -> Section:
    def cell(value: Any, dtype: pl.DataType) -> str:
        if value is None:
            return NA
        if dtype.is_float():
            return fmt_money(value)
        if dtype.is_integer():
            return fmt_count(value)
        return _iso(value) if isinstance(value, (date, datetime)) else str(value)

    numeric = tuple(i for i, d in enumerate(frame.dtypes) if d.is_numeric())
    rows = [[cell(v, d) for v, d in zip(row, frame.dtypes, strict=True)] for row in frame.iter_rows()]
    headers = [c.replace("_", " ") for c in frame.columns]
    definitions = scorecard_definitions()
    return Section(
        "Idea scorecard",
        [
            Para(
                "How the rules' ideas played out, from the warehouse's idea outcomes (all sessions walked so far); "
                "the counts are the sample sizes each rate stands on."
            ),
            *([Para(definitions, css="note")] if definitions else []),
            Table(headers, rows, numeric=numeric),
        ],
    )


def write_report(
    database: Path,
    lake_root: LakePath | str,
    out_dir: Path,
    day: date,
    symbols: list[str] | None = None,
    *,
    charts: bool = True,
) -> ReportIndex:
    """Write the day's report under ``out_dir/<day>/`` and return what was written.

    symbols: only these symbols' pages (each must match SYMBOL_PATTERN and have a signals row that
    day); the index always lists every symbol of the day and links the pages present in the folder.
    charts: draw the SVG charts (a few milliseconds per symbol); without them the pages are text only.
    Raises ReportError for a refused symbol or a day without signals.
    """
    started = time.perf_counter()
    wanted = check_symbols(symbols)
    data = load_day(Path(database), day, wanted)
    selected = wanted if wanted is not None else data.frames["index"]["symbol"].to_list()
    bad = [s for s in selected if not re.fullmatch(SYMBOL_PATTERN, s)]
    if bad:  # the warehouse validates symbols; a name reaching a file path is checked once more
        raise ReportError(f"warehouse symbol(s) {bad!r} do not match {SYMBOL_PATTERN}")
    final = Path(out_dir) / day.isoformat()
    # A day's first report is written in a temporary folder renamed into place once its index is
    # written: a run interrupted (disk full, a signal) leaves no folder without an index.html. A later
    # one (more symbols, a rerun) updates the folder in place, file by file.
    fresh = not final.exists()
    folder = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}") if fresh else final
    try:
        (folder / "charts").mkdir(parents=True, exist_ok=True)
        earlier_charts = set(os.listdir(folder / "charts"))  # only these can be stale: no unlink for the rest

        history = _by_symbol(price_history(lake_root, day, selected) if charts else None, "symbol")
        oi = _by_symbol(strike_oi(lake_root, day, selected) if charts else None, "underlying")
        reports = tuple(
            _write_symbol(folder, symbol, data, history.get(symbol), oi.get(symbol), earlier_charts)
            for symbol in selected
        )

        day_symbols = data.frames["index"]["symbol"].to_list()
        files = {
            entry.name for entry in os.scandir(folder) if entry.is_file()
        }  # one listing, no stat per page
        written = {
            s
            for s in day_symbols
            if re.fullmatch(SYMBOL_PATTERN, s) and f"{s}.md" in files and f"{s}.html" in files
        }
        markdown, page = _index_page(data, written)
        _write_atomic(folder / "index.md", markdown)
        _write_atomic(folder / "index.html", page)
        if fresh:
            os.replace(folder, final)
    except BaseException:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    folder = final
    reports = tuple(_moved(r, final) for r in reports)
    return ReportIndex(
        day,
        folder,
        folder / "index.md",
        folder / "index.html",
        reports,
        data.frames["index"].to_dicts(),
        data.scorecard is not None,
        time.perf_counter() - started,
        {r.symbol: r.chart_seconds for r in reports},
    )


def _moved(report: SymbolReport, folder: Path) -> SymbolReport:
    """The report's paths once its folder is in place."""

    def there(path: Path) -> Path:
        return folder / path.relative_to(path.parent if path.parent.name != "charts" else path.parent.parent)

    return replace(
        report,
        markdown=there(report.markdown),
        html=there(report.html),
        charts=tuple(there(c) for c in report.charts),
    )


def _by_symbol(frame: pl.DataFrame | None, key: str) -> dict[str, pl.DataFrame]:
    if frame is None or not frame.height:
        return {}
    return {k[0]: part for k, part in frame.partition_by(key, as_dict=True, maintain_order=True).items()}


def _write_symbol(
    folder: Path,
    symbol: str,
    data: DayData,
    history: pl.DataFrame | None,
    oi: pl.DataFrame | None,
    earlier_charts: set[str],
) -> SymbolReport:
    """One symbol's charts, Markdown and HTML; a chart this run does not draw is removed, not left stale
    (`earlier_charts`: the names in charts/ before the run)."""
    tick = time.perf_counter()
    drawn = _charts(symbol, data, history, oi)
    seconds = time.perf_counter() - tick
    for kind in ("price", "oi"):
        target = folder / _chart_file(symbol, kind)
        if kind in drawn:
            _write_atomic(target, drawn[kind].svg)
        elif target.name in earlier_charts:
            target.unlink(missing_ok=True)
        png = target.with_suffix(".png")  # written by versions before the SVG charts
        if png.name in earlier_charts:
            png.unlink(missing_ok=True)
    markdown, page = _symbol_page(symbol, data, drawn)
    _write_atomic(folder / f"{symbol}.md", markdown)
    _write_atomic(folder / f"{symbol}.html", page)
    s = data.row("signals_daily", symbol)
    return SymbolReport(
        symbol,
        folder / f"{symbol}.md",
        folder / f"{symbol}.html",
        tuple(folder / c.file for c in drawn.values()),
        s["bias"],
        s["bias_score"],
        seconds,
    )


def _chart_file(symbol: str, kind: str) -> str:
    return f"charts/{symbol}-{kind}.svg"


def _charts(
    symbol: str, data: DayData, history: pl.DataFrame | None, oi: pl.DataFrame | None
) -> dict[str, Chart]:
    drawn = {}
    if history is not None:
        drawn["price"] = Chart(
            f"{symbol} price, SMA 30/200, Bollinger bands, pivots, the day's levels and volume",
            price_chart(
                symbol,
                data.day,
                history,
                data.row("technicals_daily", symbol),
                price_marks(data.row("positioning_daily", symbol), data.rows("idea_display", symbol)),
            ),
            _chart_file(symbol, "price"),
        )
    positioning = data.row("positioning_daily", symbol)
    if positioning is not None and oi is not None:
        drawn["oi"] = Chart(
            f"{symbol} open interest by strike",
            oi_chart(symbol, data.day, oi, positioning),
            _chart_file(symbol, "oi"),
        )
    return drawn


__all__ = [
    "DayData",
    "ReportError",
    "ReportIndex",
    "SymbolReport",
    "check_symbols",
    "load_day",
    "write_report",
]

"""Report charts as SVG text, built by hand (no plotting library): price with averages, bands, pivots
and the day's levels over volume; open interest by strike.

Hand-written SVG rather than Vega-Lite through Altair: on this machine Altair took ~340 ms to build one
such chart as HTML (and vl-convert ~1.3 s to render it to SVG) against ~5 ms here, for up to 100 pages
a night, and its pages need the 0.9 MB Vega JavaScript bundle to draw anything; these charts are plain
elements a test reads back and a page shows with scripts forbidden. Data comes from the lake: silver bars up to the session and that
session's silver chain partition.

Each chart is one ``<svg>`` element (viewBox and width, so it scales; generic sans-serif font; no
scripts, links, ids or ``url(...)`` references, so it can be inlined in a page under a strict CSP).
Series are path strings (pixels computed with numpy, their texts looked up in a table of 0.1 px steps,
joined once per path): one ``<path>`` per line (a NULL/NaN breaks it into segments), one for the band,
one for all call bars and one for all put bars. Coordinates are rounded to 0.1 px. Elements a reader
(or a test) looks for carry a ``class``: paths ``close``, ``sma-30``, ``sma-200``, ``bb-band``,
``bb-middle``, ``calls``, ``puts``; ``pivot`` groups (a dotted line and a ``pivot-label``);
``x-tick``/``y-tick`` labels (a ``<text>`` whose x or y is the tick's exact position, centred on it with
``dy``; the volume panel's are ``volume-tick``); ``axis-title`` labels (with units); ``legend`` labels;
``mark`` lines on the OI chart (``spot``, ``call-wall``, ``put-wall``, ``max-pain``) and ``mark`` groups on
the price chart (``trigger``, ``target``, ``stop``, ``call-wall``, ``put-wall``, ``max-pain``,
``gamma-flip``, with ``data-level`` and a ``mark-label``); the ``volume`` path; ``panel`` groups
(``data-scope`` ``monthly``, ``all`` or ``volume``).
"""

from __future__ import annotations

import functools
import html
import math
from dataclasses import dataclass
from datetime import date
from itertools import repeat
from typing import Any

import numpy as np
import polars as pl

from flows.report.pages import fmt_money, is_missing
from flows.storage.lake import Lake, LakePath
from transforms.ideas import expiry_flags
from transforms.positioning import live_contracts, strike_open_interest
from transforms.technicals import technicals_daily

PRICE_SESSIONS = 120
"""Sessions shown on the price chart."""
HISTORY_SESSIONS = PRICE_SESSIONS + 210
"""Bars read for the chart: enough for SMA 200 on its first session."""
OI_RANGE = (0.8, 1.2)
"""Strikes shown on the OI chart, as multiples of spot (widened to include the walls and max pain)."""

BARS_SCHEMA = {
    "trade_date": pl.Date(),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Int64(),
}
CHAIN_SCHEMA = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "option_type": pl.String(),
    "open_interest": pl.Int64(),
    "volume": pl.Int64(),
    "dte": pl.Int64(),
}


def price_history(lake_root: LakePath | str, day: date, symbols: list[str]) -> pl.DataFrame:
    """Per symbol the last PRICE_SESSIONS sessions up to `day`: close, SMA 30/200 and Bollinger bands.

    Computed by the gold table's own transform from silver bars dated on or before `day`, so the last
    row of each symbol equals its technicals_daily row.
    """
    lake = Lake(lake_root)
    days = [d for d in lake.dates("silver", "bars") if d <= day][-HISTORY_SESSIONS:]
    if not days:
        return pl.DataFrame(schema={"trade_date": pl.Date(), "symbol": pl.String()})
    # A semi join, not an is_in filter: that would be pushed into the scan of every bar file, where it
    # costs three times the read itself.
    wanted = pl.LazyFrame({"symbol": symbols}, schema={"symbol": pl.String()})
    bars = lake.scan("silver", "bars", BARS_SCHEMA, dates=days).join(wanted, on="symbol", how="semi")
    return (
        technicals_daily(bars, benchmark=symbols[0])
        .select(
            "trade_date",
            "symbol",
            "close",
            "volume",
            "sma_30",
            "sma_200",
            "bb_upper",
            "bb_middle",
            "bb_lower",
        )
        .filter(pl.int_range(pl.len()).reverse().over("symbol") < PRICE_SESSIONS)
        .collect()
    )


def strike_oi(lake_root: LakePath | str, day: date, symbols: list[str]) -> pl.DataFrame:
    """OI by strike from the session's silver chain: scope 'all' (every expiration after the session)
    and 'monthly' (the nearest monthly expiration), with call_oi and put_oi per strike."""
    lake = Lake(lake_root)
    schema = {
        "scope": pl.String(),
        "underlying": pl.String(),
        "expiration": pl.Date(),
        "strike": pl.Float64(),
        "call_oi": pl.Int64(),
        "put_oi": pl.Int64(),
    }
    if day not in lake.dates("silver", "chains"):
        return pl.DataFrame(schema=schema)
    # One big file: here the is_in filter in the scan pays (it runs as the row groups are decoded, where
    # a semi join would hold the whole chain first). The symbols' contracts are collected once: three
    # plans below use them, and sharing a cached scan between them costs more than the collection.
    chains = (
        live_contracts(
            lake.scan("silver", "chains", CHAIN_SCHEMA, dates=[day]).filter(
                pl.col("underlying").is_in(symbols)
            )
        )
        .collect()
        .lazy()
    )
    # Expirations are classified once each, not once per contract.
    nearest = (
        chains.select("underlying", "expiration", "dte")
        .unique()
        .with_columns(expiry_flags(pl.col("expiration"), pl.col("dte")))
        .filter(pl.col("is_monthly"))
        .group_by("underlying")
        .agg(pl.col("expiration").min())
    )
    monthly = chains.join(nearest, on=["underlying", "expiration"], how="semi")

    def shaped(frame: pl.LazyFrame, scope: str) -> pl.LazyFrame:
        return strike_open_interest(frame).select(
            pl.lit(scope).alias("scope"),
            "underlying",
            pl.lit(None, pl.Date).alias("expiration"),
            "strike",
            pl.col("call_oi").cast(pl.Int64),
            pl.col("put_oi").cast(pl.Int64),
        )

    both = pl.concat(
        [
            shaped(chains, "all"),
            shaped(monthly, "monthly").drop("expiration").join(nearest, on="underlying").select(list(schema)),
        ]
    )
    return both.sort("underlying", "scope", "strike").collect()


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else "n/a"


# ------------------------------------------------------------------------------------ SVG pieces

FONT = "sans-serif"
CHAR_EM = 0.6
"""A character's rough width in em (a sans-serif digit is 0.55-0.6): enough to lay out a legend."""
TEXT = "#1d2733"
MUTED = "#6b7682"
GRID = "#e3e6ea"
FRAME = "#444444"


def _esc(text: str) -> str:
    """Text and attribute values for XML (and for HTML, where the SVG is inlined)."""
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    """One coordinate: rounded to 0.1 px, without a trailing '.0' or a '-0'."""
    text = f"{float(value):.1f}"  # correctly rounded, as round(value, 1) is, without its cost
    return "0" if text == "-0.0" else text.removesuffix(".0")


def _nums(values: np.ndarray) -> list[str]:
    """Coordinates as text: rounded to 0.1 px, without a trailing '.0' or a '-0'.

    Rounding to one decimal is rint(v * 10) / 10 (what np.round does), so a coordinate on the canvas is
    its entry in _pixel_texts, looked up by its number of tenths; anything else (off the canvas, NaN)
    is printed by polars, as that table is.
    """
    tenths = np.rint(np.asarray(values, dtype=np.float64) * 10)
    if not tenths.size:
        return []
    texts = _pixel_texts()
    if tenths.min() >= 0 and tenths.max() < len(texts):  # False for a NaN
        return texts[tenths.astype(np.intp)].tolist()
    return pl.Series(tenths / 10 + 0.0).cast(pl.String).str.strip_suffix(".0").to_list()


@functools.cache
def _pixel_texts() -> np.ndarray:
    """The text of every 0.1 px step across the largest canvas, printed once: a chart's paths have a
    few thousand coordinates, and printing each costs more than looking it up."""
    steps = np.arange(10 * max(*PRICE_SIZE, *OI_SIZE) + 1) / 10
    return pl.Series(steps).cast(pl.String).str.strip_suffix(".0").to_numpy()


def _rows(*parts: list[str] | str) -> str:
    """Row-wise concatenation of coordinate columns and literal strings, the rows joined by spaces."""
    if not any(isinstance(p, list) for p in parts):
        return ""
    return " ".join(
        map("".join, zip(*(p if isinstance(p, list) else repeat(p) for p in parts), strict=False))
    )


def _polyline(x: np.ndarray, y: np.ndarray) -> str:
    """Path data through the finite points; a NaN starts a new segment ('M' again)."""
    ok = np.isfinite(x) & np.isfinite(y)
    starts = ok & ~np.concatenate(([False], ok[:-1]))
    commands = np.where(starts, "M", "L")[ok].tolist()
    return _rows(commands, _nums(x[ok]), ",", _nums(y[ok]))


def _band(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> str:
    """Filled area between two lines: one closed outline (along `high`, back along `low`) per finite run."""
    ok = np.isfinite(low) & np.isfinite(high)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.astype(np.int8), [0]))))
    gap = np.array([np.nan])
    xs, ys = [], []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        xs += [x[start:stop], x[start:stop][::-1], gap]
        ys += [high[start:stop], low[start:stop][::-1], gap]
    if not xs:
        return ""
    return _polyline(np.concatenate(xs), np.concatenate(ys))


def _bars(x: np.ndarray, heights: np.ndarray, zero: float, half: float) -> str:
    """Path data of vertical bars from `zero` to `heights` (pixels), `half` px either side of x."""
    zero_text = _n(zero)
    return _rows(
        "M",
        _nums(x - half),
        "," + zero_text + "V",
        _nums(heights),
        "H",
        _nums(x + half),
        "V" + zero_text + "Z",
    )


@dataclass(frozen=True)
class _Scale:
    """Data to pixels, linear: d0 -> p0, d1 -> p1."""

    d0: float
    d1: float
    p0: float
    p1: float

    def __call__(self, values: Any) -> Any:
        return self.p0 + (np.asarray(values, dtype=np.float64) - self.d0) * (
            (self.p1 - self.p0) / (self.d1 - self.d0)
        )


def _floats(series: pl.Series, null: float = math.nan) -> np.ndarray:
    """A column as float64 with NULL as `null`, by Series methods (a cast or fill_null runs a query each,
    which costs more than a chart's few hundred values)."""
    values = series.to_numpy().astype(np.float64)  # a NULL comes out as NaN
    if series.null_count() and not math.isnan(null):
        values[series.is_null().to_numpy()] = null
    return values


def _limits(values: np.ndarray, margin: float = 0.05) -> tuple[float, float]:
    """The finite values' range with `margin` of it either side (a flat or empty range gets some room)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low <= 1e-9 * max(1.0, abs(high)):
        room = max(1.0, abs(high) * 0.05)
        return low - room, high + room
    pad = (high - low) * margin
    return low - pad, high + pad


def _ticks(low: float, high: float, target: int = 6, min_step: float = 0.0) -> tuple[np.ndarray, int]:
    """'Nice' ticks inside [low, high]: a step of 1, 2, 2.5 or 5 times a power of ten giving about
    `target` ticks, and the decimals its labels need."""
    raw = max((high - low) / target, min_step, 1e-12)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9)
    ticks = (np.arange(first, math.floor(high / step + 1e-9) + 1) * step).round(10)
    decimals = next((d for d in range(7) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 6)
    return ticks, decimals


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = 11,
    anchor: str = "start",
    color: str = TEXT,
    css: str | None = None,
    middle: bool = True,
    extra: str = "",
) -> str:
    """A label; `middle` centres it vertically on y (so y is the exact position it labels)."""
    attrs = f' class="{css}"' if css else ""
    attrs += f' font-size="{size}"' if size != 11 else ""
    attrs += f' text-anchor="{anchor}"' if anchor != "start" else ""
    attrs += f' fill="{color}"' if color != TEXT else ""
    attrs += ' dy="0.35em"' if middle else ""
    return f'<text x="{_n(x)}" y="{_n(y)}"{attrs}{extra}>{_esc(text)}</text>'


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    color: str,
    width: float,
    *,
    dash: str | None = None,
    css: str | None = None,
    opacity: float | None = None,
) -> str:
    attrs = f' class="{css}"' if css else ""
    attrs += f' stroke-dasharray="{dash}"' if dash else ""
    attrs += f' stroke-opacity="{opacity}"' if opacity is not None else ""
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{color}" '
        f'stroke-width="{width}"{attrs}/>'
    )


def _path(
    d: str,
    *,
    css: str,
    stroke: str | None = None,
    width: float = 1.0,
    fill: str = "none",
    dash: str | None = None,
    opacity: float | None = None,
) -> str:
    if not d:
        return ""
    attrs = f' stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round"' if stroke else ""
    attrs += f' stroke-dasharray="{dash}"' if dash else ""
    attrs += f' fill-opacity="{opacity}"' if opacity is not None else ""
    return f'<path class="{css}" d="{d}" fill="{fill}"{attrs}/>'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    """The chart as a standalone SVG document (no XML declaration, so it can be inlined in HTML as is)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="11" fill="{TEXT}" role="img" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>\n"
    )


DASH = {"-": None, "--": "5 3", ":": "1.5 2.5", "-.": "7 3 1.5 3"}
"""Dash patterns by name (solid, dashed, dotted), as the marks list them."""


def _legend(entries: list[tuple[str, str, str]], x: float, y: float, *, centre: bool = False) -> str:
    """One row of (kind 'box' or a line style, colour, label) entries; x is its left edge, or its centre
    with `centre`."""
    widths = [22 + 5 + len(label) * 11 * CHAR_EM + 16 for _, _, label in entries]
    left = x - sum(widths) / 2 if centre else x
    parts = []
    for (kind, color, label), width in zip(entries, widths, strict=True):
        if kind == "box":
            parts.append(f'<rect x="{_n(left)}" y="{_n(y - 5)}" width="22" height="10" fill="{color}"/>')
        else:
            parts.append(_line(left, y, left + 22, y, color, 1.5, dash=DASH[kind]))
        parts.append(_text(left + 27, y, label, css="legend"))
        left += width
    return '<g class="legend-row">' + "".join(parts) + "</g>"


# ------------------------------------------------------------------------------------ price chart

PRICE_SIZE = (1000, 580)
PRICE_BOX = (80, 58, 842, 400)
"""Plot area (left, top, right, bottom) in pixels; the level labels sit right of it."""
VOLUME_BOX = (80, 418, 842, 518)
"""The volume panel under the price, on the same sessions."""
VOLUME_COLOR = "#9aa7b4"
PIVOT_STYLE = (("R1", "r1", "#2e7d32"), ("P", "pivot_point", "#555555"), ("S1", "s1", "#c62828"))
SERIES = (  # column, css, colour, width
    ("close", "close", "#1d2733", 1.5),
    ("sma_30", "sma-30", "#e69138", 1.2),
    ("sma_200", "sma-200", "#6aa84f", 1.2),
)
BAND_FILL = "#cfe0f3"


MARK_STYLE = {  # kind -> colour, dash, css: the levels of the day drawn across the price chart
    "trigger": ("#e65100", "--", "trigger"),
    "target": ("#2e7d32", "--", "target"),
    "stop": ("#c62828", "--", "stop"),
    "call wall": ("#1b5e20", "-.", "call-wall"),
    "put wall": ("#b71c1c", "-.", "put-wall"),
    "max pain": ("#6a1b9a", ":", "max-pain"),
    "gamma flip": ("#1565c0", "-.", "gamma-flip"),
}


def price_marks(positioning: dict[str, Any] | None, ideas: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The levels a trader watches on the price chart: the day's ideas' trigger, target and stop, the OI
    walls, max pain and the gamma flip; (kind, value) each, one per distinct kind and level."""
    marks = (
        [
            (kind, positioning.get(column))
            for kind, column in (
                ("call wall", "call_wall"),
                ("put wall", "put_wall"),
                ("max pain", "max_pain"),
                ("gamma flip", "gamma_flip"),
            )
        ]
        if positioning
        else []
    )
    marks += [
        (kind, idea.get(column))
        for idea in ideas
        for kind, column in (("trigger", "trigger_level"), ("target", "target"), ("stop", "stop"))
    ]
    seen, out = set(), []
    for kind, value in marks:
        if not is_missing(value) and (kind, round(float(value), 2)) not in seen:
            seen.add((kind, round(float(value), 2)))
            out.append((kind, float(value)))
    return out


def _spread_labels(wanted: list[float], top: float, bottom: float, gap: float = 13) -> list[float]:
    """Label positions near `wanted` (sorted top to bottom), at least `gap` px apart, inside [top, bottom]."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + gap) if placed else max(y, top))
    overflow = (placed[-1] - bottom) if placed else 0
    if overflow > 0:  # push the stack up, then keep the top inside too (labels may then overlap a little)
        placed = [
            max(y - overflow, top + i * gap * (bottom - top) / max(gap * len(placed), 1))
            for i, y in enumerate(placed)
        ]
    return placed


def price_chart(
    symbol: str,
    day: date,
    history: pl.DataFrame,
    technicals: dict[str, Any] | None,
    marks: list[tuple[str, float]] = (),
) -> str:
    """Close, SMA 30/200 and the Bollinger band of the last sessions, the next session's pivots and the
    day's levels (`marks`: price_marks), over a volume panel: SVG."""
    width, height = PRICE_SIZE
    left, top, right, bottom = PRICE_BOX
    n = history.height
    col = {
        c: _floats(history[c]) for c in ("close", "sma_30", "sma_200", "bb_upper", "bb_middle", "bb_lower")
    }
    levels = [
        (name, float(technicals[column]), color)
        for name, column, color in PIVOT_STYLE
        if technicals and not is_missing(technicals.get(column))
    ]
    ys = _Scale(
        *_limits(
            np.concatenate([*col.values(), [level for _, level, _ in levels], [value for _, value in marks]])
        ),
        bottom,
        top,
    )
    xs = _Scale(-1, n + 4, left, right)
    x = xs(np.arange(n))
    body = []

    y_ticks, _ = _ticks(ys.d0, ys.d1)
    py = ys(y_ticks)
    body += [_line(left, p, right, p, GRID, 0.8) for p in py]
    x_ticks = np.linspace(0, n - 1, min(n, 7)).round().astype(int) if n else np.array([], dtype=int)
    body += [_line(p, top, p, bottom, GRID, 0.8) for p in xs(x_ticks)]

    body.append(
        _path(_band(x, ys(col["bb_lower"]), ys(col["bb_upper"])), css="bb-band", fill=BAND_FILL, opacity=0.7)
    )
    body.append(_path(_polyline(x, ys(col["bb_middle"])), css="bb-middle", stroke="#8fb3d9", width=0.8))
    for column, css, color, line_width in SERIES:
        body.append(_path(_polyline(x, ys(col[column])), css=css, stroke=color, width=line_width))

    # Every labelled level, top to bottom, its label at least 13 px from the next, right of the plot.
    labelled = sorted(
        [(level, "pivot", name, color) for name, level, color in levels]
        + [(value, "mark", kind, MARK_STYLE[kind][0]) for kind, value in marks],
        key=lambda m: -m[0],
    )
    label_y = _spread_labels([float(ys(level)) for level, *_ in labelled], top + 6, height - 8)
    for (level, group, name, color), text_y in zip(labelled, label_y, strict=True):
        y = float(ys(level))
        if group == "pivot":
            body.append(
                '<g class="pivot">'
                + _line(left, y, right, y, color, 0.8, dash=DASH[":"], opacity=0.8)
                + _line(xs(n - 0.5), y, xs(n + 4), y, color, 2.5)
                + _text(right + 6, text_y, f"{name} {fmt_money(level)}", color=color, css="pivot-label")
                + "</g>"
            )
            continue
        _, dash, css = MARK_STYLE[name]
        body.append(
            f'<g class="mark {css}" data-level="{level:.2f}">'
            + _line(left, y, right, y, color, 1.1, dash=DASH[dash], opacity=0.9)
            + _text(
                right + 6, text_y, f"{name.capitalize()} {fmt_money(level)}", color=color, css="mark-label"
            )
            + "</g>"
        )

    body.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" '
        f'stroke="{FRAME}" stroke-width="0.8"/>'
    )
    body += [
        _text(left - 6, p, f"{v:,.2f}", anchor="end", css="y-tick") for v, p in zip(y_ticks, py, strict=True)
    ]
    body.append(_axis_title(18, (top + bottom) / 2, "Price ($)"))
    body += _volume_panel(
        xs, x, _floats(history["volume"], 0.0) if "volume" in history.columns else np.zeros(n)
    )
    v_bottom = VOLUME_BOX[3]
    dates = history["trade_date"]  # read at the ticks only
    body += [_line(p, v_bottom, p, v_bottom + 4, FRAME, 0.8) for p in xs(x_ticks)]
    body += [
        _text(p, v_bottom + 16, dates[int(i)].isoformat(), anchor="middle", css="x-tick")
        for i, p in zip(x_ticks, xs(x_ticks), strict=True)
    ]
    body.append(_axis_title((left + right) / 2, v_bottom + 40, "Session (trade date)", vertical=False))
    if not n:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "no bars", anchor="middle", color=MUTED))
    body.append(
        _legend(
            [
                ("box", BAND_FILL, "Bollinger 20/2"),
                *[
                    ("-", color, name)
                    for name, color in (("Close", "#1d2733"), ("SMA 30", "#e69138"), ("SMA 200", "#6aa84f"))
                ],
                ("box", VOLUME_COLOR, "Volume"),
            ],
            left,
            42,
        )
    )
    title = f"{symbol}: last {n} sessions to {day.isoformat()}, pivots and the day's levels"
    body.append(_text((left + right) / 2, 20, title, size=15, anchor="middle", css="title"))
    return _svg(width, height, title, body)


def _axis_title(x: float, y: float, text: str, *, vertical: bool = True) -> str:
    """An axis's title with its unit; a y axis's reads bottom to top beside its ticks."""
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if vertical else ""
    return _text(x, y, text, anchor="middle", color=MUTED, css="axis-title", extra=turn)


def _volume_panel(xs: _Scale, x: np.ndarray, volume: np.ndarray) -> list[str]:
    """Daily volume as bars under the price, on the same x positions, its own scale from 0."""
    left, top, right, bottom = VOLUME_BOX
    high = float(volume.max()) if volume.size and volume.max() > 0 else 1.0
    vy = _Scale(0.0, high * 1.05, bottom, top)
    ticks, _ = _ticks(0.0, high * 1.05, target=3, min_step=1)
    half = max(0.5, (xs(1) - xs(0)) * 0.35) if x.size > 1 else 2.0
    body = ['<g class="panel" data-scope="volume">']
    body += [_line(left, p, right, p, GRID, 0.8) for p in vy(ticks)]
    body.append(_path(_bars(x, vy(volume), float(vy(0)), half), css="volume", fill=VOLUME_COLOR))
    body.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" '
        f'stroke="{FRAME}" stroke-width="0.8"/>'
    )
    body += [
        _text(left - 6, p, _shares(v), anchor="end", css="volume-tick")
        for v, p in zip(ticks, vy(ticks), strict=True)
    ]
    body.append(_axis_title(18, (top + bottom) / 2, "Volume"))
    return [*body, "</g>"]


def _shares(value: float) -> str:
    """A volume tick: '0', '750k', '1.5m', '2bn'."""
    for size, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.1f}".removesuffix(".0") + suffix
    return f"{value:,.0f}"


# --------------------------------------------------------------------------------------- OI chart

OI_SIZE = (1000, 680)
OI_BOXES = ((90, 100, 980, 318), (90, 418, 980, 636))
"""Plot areas (left, top, right, bottom) of the two panels: nearest monthly expiration, all expirations."""
CALL_COLOR, PUT_COLOR, SPOT_COLOR = "#2e7d32", "#c62828", "#1d2733"


@dataclass(frozen=True)
class _StrikeOI:
    """A panel's strikes with their call and put OI (NULL OI as 0), as numpy arrays."""

    strike: np.ndarray
    calls: np.ndarray
    puts: np.ndarray

    def where(self, keep: np.ndarray) -> _StrikeOI:
        return _StrikeOI(self.strike[keep], self.calls[keep], self.puts[keep])


def _oi_panel(
    panel: _StrikeOI,
    title: str,
    scope: str,
    box: tuple[int, int, int, int],
    spot: float | None,
    marks: list[tuple[str, float | None, str, str, str]],
) -> str:
    left, top, right, bottom = box
    anchors = [v for _, v, _, _, _ in marks if not is_missing(v)]
    if not is_missing(spot):
        anchors += [spot * OI_RANGE[0], spot * OI_RANGE[1]]
    shown = panel
    strikes_all = panel.strike
    if anchors:
        low, high = min(anchors), max(anchors)
        pad = (high - low) * 0.03
        shown = panel.where((strikes_all >= low - pad) & (strikes_all <= high + pad))
        x_low, x_high = low - pad, high + pad
    strikes = shown.strike
    steps = np.diff(np.unique(strikes))
    bar_width = float(steps.min()) * 0.8 if steps.size else 1.0
    if not anchors:
        x_low, x_high = (
            (float(strikes_all.min()) - bar_width, float(strikes_all.max()) + bar_width)
            if strikes_all.size
            else (0.0, 1.0)
        )
    if strikes.size:  # room for the outermost bars' full width
        x_low, x_high = (
            min(x_low, float(strikes.min()) - bar_width / 2),
            max(x_high, float(strikes.max()) + bar_width / 2),
        )
    if x_high - x_low <= 1e-9:
        room = max(1.0, abs(x_high) * 0.05)
        x_low, x_high = x_low - room, x_high + room
    xs = _Scale(x_low, x_high, left, right)
    calls, puts = shown.calls, shown.puts
    ys = _Scale(*_limits(np.concatenate([calls, -puts, [0.0]])), bottom, top)

    body = [f'<g class="panel" data-scope="{scope}">']
    y_ticks, _ = _ticks(ys.d0, ys.d1, target=7, min_step=1)
    py = ys(y_ticks)
    body += [_line(left, p, right, p, GRID, 0.8) for p in py]
    half = bar_width / 2 * (right - left) / (x_high - x_low)
    cx = xs(strikes)
    up, down = calls > 0, puts > 0
    body.append(_path(_bars(cx[up], ys(calls[up]), float(ys(0)), half), css="calls", fill=CALL_COLOR))
    body.append(_path(_bars(cx[down], ys(-puts[down]), float(ys(0)), half), css="puts", fill=PUT_COLOR))
    body.append(_line(left, ys(0), right, ys(0), "#333333", 0.6, css="zero"))
    if not is_missing(spot):
        body.append(_line(xs(spot), top, xs(spot), bottom, SPOT_COLOR, 1.3, css="mark spot"))
    for _, value, color, style, css in marks:
        if not is_missing(value):
            body.append(
                _line(xs(value), top, xs(value), bottom, color, 1.2, dash=DASH[style], css=f"mark {css}")
            )
    body.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" '
        f'stroke="{FRAME}" stroke-width="0.8"/>'
    )
    body += [
        _text(left - 6, p, f"{abs(v):,.0f}", anchor="end", css="y-tick")
        for v, p in zip(y_ticks, py, strict=True)
    ]
    x_ticks, decimals = _ticks(x_low, x_high, target=10)
    px = xs(x_ticks)
    body += [_line(p, bottom, p, bottom + 4, FRAME, 0.8) for p in px]
    body += [
        _text(p, bottom + 16, f"{v:,.{decimals}f}", anchor="middle", css="x-tick")
        for v, p in zip(x_ticks, px, strict=True)
    ]
    body.append(_text((left + right) / 2, top - 12, title, size=13, anchor="middle", css="panel-title"))
    body.append(_axis_title(22, (top + bottom) / 2, "Open interest (contracts)"))
    body.append(_axis_title((left + right) / 2, bottom + 32, "Strike ($)", vertical=False))
    if not strikes.size:
        body.append(
            _text(
                (left + right) / 2,
                (top + bottom) / 2,
                "no open interest",
                size=13,
                anchor="middle",
                color=MUTED,
                css="empty",
            )
        )
    return "".join(body) + "</g>"


def oi_chart(symbol: str, day: date, oi: pl.DataFrame, positioning: dict[str, Any]) -> str:
    """Open interest by strike (calls up, puts down) with spot, the walls and max pain, in two panels
    (nearest monthly expiration; all expirations): SVG."""
    width, height = OI_SIZE
    spot = positioning.get("spot")
    marks = [
        ("Call wall", positioning.get("call_wall"), "#1b5e20", "--", "call-wall"),
        ("Put wall", positioning.get("put_wall"), "#b71c1c", "--", "put-wall"),
        (
            f"Max pain ({_iso(positioning.get('max_pain_expiration'))})",
            positioning.get("max_pain"),
            "#6a1b9a",
            ":",
            "max-pain",
        ),
    ]
    scope = oi["scope"].to_numpy()
    by_strike = _StrikeOI(_floats(oi["strike"]), _floats(oi["call_oi"], 0.0), _floats(oi["put_oi"], 0.0))
    monthly = np.flatnonzero(scope == "monthly")
    expiration = oi["expiration"][int(monthly[0])] if monthly.size else None
    panel_title = (
        f"Nearest monthly expiration {expiration.isoformat()} ({(expiration - day).days} days)"
        if expiration
        else "Nearest monthly expiration: none listed"
    )
    body = [
        _oi_panel(by_strike.where(monthly), panel_title, "monthly", OI_BOXES[0], spot, marks),
        _oi_panel(by_strike.where(scope == "all"), "All expirations", "all", OI_BOXES[1], spot, marks),
    ]
    entries = [("box", CALL_COLOR, "Call OI"), ("box", PUT_COLOR, "Put OI")]
    if not is_missing(spot):
        entries.append(("-", SPOT_COLOR, f"Spot {fmt_money(spot)}"))
    entries += [
        (style, color, f"{name} {fmt_money(value)}")
        for name, value, color, style, _ in marks
        if not is_missing(value)
    ]
    body.append(_legend(entries, width / 2, 50, centre=True))
    title = f"{symbol}: open interest by strike on {day.isoformat()} (calls up, puts down)"
    body.append(_text(width / 2, 20, title, size=15, anchor="middle", css="title"))
    return _svg(width, height, title, body)


__all__ = ["PRICE_SESSIONS", "oi_chart", "price_chart", "price_history", "price_marks", "strike_oi"]

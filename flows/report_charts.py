"""Report charts (matplotlib, Agg canvas, no pyplot state): price with averages, bands and pivots;
open interest by strike. Data comes from the lake: silver bars up to the session and that session's
silver chain partition.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from flows.lake import Lake
from flows.report_pages import fmt_money, is_missing
from transforms.ideas import expiry_flags
from transforms.positioning import live_contracts, strike_open_interest
from transforms.technicals import technicals_daily

PRICE_SESSIONS = 120
"""Sessions shown on the price chart."""
HISTORY_SESSIONS = PRICE_SESSIONS + 210
"""Bars read for the chart: enough for SMA 200 on its first session."""
OI_RANGE = (0.8, 1.2)
"""Strikes shown on the OI chart, as multiples of spot (widened to include the walls and max pain)."""

BARS_SCHEMA = {"trade_date": pl.Date(), "symbol": pl.String(), "open": pl.Float64(), "high": pl.Float64(),
               "low": pl.Float64(), "close": pl.Float64(), "volume": pl.Int64()}
CHAIN_SCHEMA = {"trade_date": pl.Date(), "underlying": pl.String(), "expiration": pl.Date(), "strike": pl.Float64(),
                "option_type": pl.String(), "open_interest": pl.Int64(), "volume": pl.Int64(), "dte": pl.Int64()}


def price_history(lake_root: Path, day: date, symbols: list[str]) -> pl.DataFrame:
    """Per symbol the last PRICE_SESSIONS sessions up to `day`: close, SMA 30/200 and Bollinger bands.

    Computed by the gold table's own transform from silver bars dated on or before `day`, so the last
    row of each symbol equals its technicals_daily row.
    """
    lake = Lake(Path(lake_root))
    days = [d for d in lake.dates("silver", "bars") if d <= day][-HISTORY_SESSIONS:]
    if not days:
        return pl.DataFrame(schema={"trade_date": pl.Date(), "symbol": pl.String()})
    bars = lake.scan("silver", "bars", BARS_SCHEMA, dates=days).filter(pl.col("symbol").is_in(symbols))
    return (
        technicals_daily(bars, benchmark=symbols[0])
        .select("trade_date", "symbol", "close", "sma_30", "sma_200", "bb_upper", "bb_middle", "bb_lower")
        .filter(pl.int_range(pl.len()).reverse().over("symbol") < PRICE_SESSIONS)
        .collect()
    )


def strike_oi(lake_root: Path, day: date, symbols: list[str]) -> pl.DataFrame:
    """OI by strike from the session's silver chain: scope 'all' (every expiration after the session)
    and 'monthly' (the nearest monthly expiration), with call_oi and put_oi per strike."""
    lake = Lake(Path(lake_root))
    schema = {"scope": pl.String(), "underlying": pl.String(), "expiration": pl.Date(), "strike": pl.Float64(),
              "call_oi": pl.Int64(), "put_oi": pl.Int64()}
    if day not in lake.dates("silver", "chains"):
        return pl.DataFrame(schema=schema)
    chains = live_contracts(lake.scan("silver", "chains", CHAIN_SCHEMA, dates=[day])
                            .filter(pl.col("underlying").is_in(symbols)))
    monthly = (chains.with_columns(expiry_flags(pl.col("expiration"), pl.col("dte")))
               .filter(pl.col("is_monthly"))
               .filter(pl.col("expiration") == pl.col("expiration").min().over("underlying")))
    nearest = monthly.group_by("underlying").agg(pl.col("expiration").first())

    def shaped(frame: pl.LazyFrame, scope: str) -> pl.LazyFrame:
        return strike_open_interest(frame).select(
            pl.lit(scope).alias("scope"), "underlying", pl.lit(None, pl.Date).alias("expiration"), "strike",
            pl.col("call_oi").cast(pl.Int64), pl.col("put_oi").cast(pl.Int64))

    both = pl.concat([
        shaped(chains, "all"),
        shaped(monthly, "monthly").drop("expiration").join(nearest, on="underlying").select(list(schema)),
    ])
    return both.sort("underlying", "scope", "strike").collect()


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else "n/a"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


PIVOT_STYLE = (("R1", "r1", "#2e7d32"), ("P", "pivot_point", "#555555"), ("S1", "s1", "#c62828"))


def price_chart(symbol: str, day: date, history: pl.DataFrame, technicals: dict[str, Any] | None) -> bytes:
    fig = Figure(figsize=(10, 4.4), dpi=100)
    ax = fig.add_axes((0.065, 0.11, 0.80, 0.79))
    n = history.height
    x = np.arange(n)
    col = {c: history[c].cast(pl.Float64).fill_null(float("nan")).to_numpy() for c in history.columns
           if c not in ("trade_date", "symbol")}
    ax.fill_between(x, col["bb_lower"], col["bb_upper"], color="#cfe0f3", alpha=0.7, lw=0, label="Bollinger 20/2")
    ax.plot(x, col["bb_middle"], color="#8fb3d9", lw=0.8)
    ax.plot(x, col["close"], color="#1d2733", lw=1.5, label="Close")
    ax.plot(x, col["sma_30"], color="#e69138", lw=1.2, label="SMA 30")
    ax.plot(x, col["sma_200"], color="#6aa84f", lw=1.2, label="SMA 200")
    right = n + 4
    if technicals:
        for name, column, color in PIVOT_STYLE:
            level = technicals.get(column)
            if is_missing(level):
                continue
            ax.axhline(level, color=color, lw=0.7, ls=":", alpha=0.8)
            ax.hlines(level, n - 0.5, n + 4, color=color, lw=2.0)  # the next session
            ax.text(n + 5, level, f"{name} {fmt_money(level)}", va="center", fontsize=8, color=color, clip_on=False)
    ax.set_xlim(-1, right)
    if n:
        ticks = np.linspace(0, n - 1, min(n, 7)).round().astype(int)
        dates = history["trade_date"].to_list()
        ax.set_xticks(ticks, [dates[i].isoformat() for i in ticks], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.2f}"))
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, ncol=4, frameon=False)
    ax.set_title(f"{symbol}: last {n} sessions to {day.isoformat()}, next-session pivots", fontsize=11)
    return _png(fig)


def _bars(ax, x: np.ndarray, heights: np.ndarray, width: float, color: str, label: str) -> None:
    """Bars as one PolyCollection: ax.bar adds one patch per bar, ten times slower for a chain."""
    left, right = x - width / 2, x + width / 2
    zero = np.zeros_like(left)
    corners = np.stack([np.column_stack(p) for p in ((left, zero), (left, heights), (right, heights), (right, zero))],
                       axis=1)
    ax.add_collection(PolyCollection(corners, facecolors=color, edgecolors="none", label=label))
    if heights.size:
        ax.update_datalim([(float(left.min()), float(heights.min())), (float(right.max()), float(heights.max()))])
        ax.autoscale_view()


def _oi_panel(ax, frame: pl.DataFrame, title: str, spot: float | None, marks: list[tuple[str, float | None, str, str]]) -> None:
    anchors = [v for _, v, _, _ in marks if not is_missing(v)]
    if not is_missing(spot):
        anchors += [spot * OI_RANGE[0], spot * OI_RANGE[1]]
    shown = frame
    if anchors:
        low, high = min(anchors), max(anchors)
        pad = (high - low) * 0.03
        shown = frame.filter(pl.col("strike").is_between(low - pad, high + pad))
        ax.set_xlim(low - pad, high + pad)
    strikes = shown["strike"].to_numpy()
    steps = np.diff(np.unique(strikes))
    width = float(steps.min()) * 0.8 if steps.size else 1.0
    _bars(ax, strikes, shown["call_oi"].to_numpy(), width, "#2e7d32", "Call OI")
    _bars(ax, strikes, -shown["put_oi"].to_numpy(), width, "#c62828", "Put OI")
    ax.axhline(0, color="#333333", lw=0.6)
    if not is_missing(spot):
        ax.axvline(spot, color="#1d2733", lw=1.3, label=f"Spot {fmt_money(spot)}")
    for name, value, color, style in marks:
        if not is_missing(value):
            ax.axvline(value, color=color, lw=1.2, ls=style, label=f"{name} {fmt_money(value)}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):,.0f}"))
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, axis="y")
    ax.set_title(title, fontsize=10)
    if not shown.height:
        ax.text(0.5, 0.5, "no open interest", transform=ax.transAxes, ha="center", va="center", color="#6b7682")


def oi_chart(symbol: str, day: date, oi: pl.DataFrame, positioning: dict[str, Any]) -> bytes:
    fig = Figure(figsize=(10, 6.6), dpi=100)
    axes = fig.subplots(2, 1)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.06, hspace=0.32)
    spot = positioning.get("spot")
    marks = [("Call wall", positioning.get("call_wall"), "#1b5e20", "--"),
             ("Put wall", positioning.get("put_wall"), "#b71c1c", "--"),
             (f"Max pain ({_iso(positioning.get('max_pain_expiration'))})", positioning.get("max_pain"), "#6a1b9a", ":")]
    monthly = oi.filter(pl.col("scope") == "monthly")
    expiration = monthly["expiration"][0] if monthly.height else None
    title = (f"Nearest monthly expiration {expiration.isoformat()} ({(expiration - day).days} days)"
             if expiration else "Nearest monthly expiration: none listed")
    _oi_panel(axes[0], monthly, title, spot, marks)
    _oi_panel(axes[1], oi.filter(pl.col("scope") == "all"), "All expirations", spot, marks)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=6, fontsize=8, frameon=False)
    fig.suptitle(f"{symbol}: open interest by strike on {day.isoformat()} (calls up, puts down)", fontsize=11,
                 y=0.99)
    return _png(fig)



__all__ = ["PRICE_SESSIONS", "oi_chart", "price_chart", "price_history", "strike_oi"]

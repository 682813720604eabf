"""The day's report: numbers traced back to the warehouse, HTML rendered by headless Chromium, the index,
the symbols filter. One demo warehouse (3 symbols, 260 sessions of bars, 2 of chains) for the module."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from PIL import Image

from flows.market.simulator import generate_demo_market
from flows.nightly import backfill
from flows.report.build import ReportError, ReportIndex, load_day, write_report
from flows.report.charts import PRICE_SESSIONS, oi_chart, price_chart, price_history, strike_oi
from flows.report.pages import Para, Section, fmt_compact, fmt_count, fmt_money, fmt_pct, render_page
from transforms.text import fmt_fixed

SYMBOLS = ["AAPL", "IWM", "SPY"]
CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Built:
    root: Path
    database: Path
    lake: Path
    day: date
    report: ReportIndex


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_api) -> Built:
    root = tmp_path_factory.mktemp("report")
    market = generate_demo_market(root / "landing", sessions=260, chain_sessions=2, symbols=SYMBOLS)
    first, day = market.chain_sessions[0], market.chain_sessions[-1]
    backfill(start=first, end=day, warehouse=str(root / "wh"), landing=str(root / "landing"))
    database, lake = root / "wh" / "signals.duckdb", root / "wh" / "lake"
    return Built(root, database, lake, day, write_report(database, lake, root / "reports", day))


def rows(built: Built, sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(built.database), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def one(built: Built, table: str, key: str, symbol: str) -> dict:
    found = rows(built, f"SELECT * FROM {table} WHERE trade_date = ? AND {key} = ?", [built.day, symbol])
    assert len(found) == 1, (table, symbol)
    return found[0]


# ------------------------------------------------------------------------------- parsing the Markdown

NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?")
FREE_TEXT = {"Bull case", "Bear case", "Idea id", "Contract"}


def numbers(text: str) -> list[float]:
    return [float(n.replace("$", "").replace(",", "")) for n in NUMBER.findall(text)]


def sections(markdown: str) -> dict[str, str]:
    parts = re.split(r"(?m)^## ", markdown)
    return {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in parts[1:]}


def facts(text: str) -> dict[str, str]:
    """'- Label: value' lines of a section (labels are unique within one)."""
    found = {}
    for label, value in re.findall(r"(?m)^- (.+?): (.+)$", text):
        assert label not in found, f"label {label!r} twice"
        found[label] = value
    return found


def plays(text: str) -> dict[str, dict[str, str]]:
    """Plays by idea id: each '### Play N: ...' block's labelled lines and its rationale paragraph."""
    found = {}
    for block in re.split(r"(?m)^### ", text)[1:]:
        lines = facts(block)
        paragraphs = [p for p in block.split("\n\n")[1:] if p.strip() and not p.startswith("- ")]
        lines["heading"] = block.split("\n", 1)[0]
        lines["rationale"] = unescape(paragraphs[-1].strip())
        found[lines["Idea id"]] = lines
    return found


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def first(value: str) -> float:
    return numbers(value)[0]


def close_to(parsed: float, value: float | None, scale: float = 1.0) -> bool:
    """The printed 2-decimal figure is the warehouse value rounded (half a cent of slack)."""
    return value is not None and abs(parsed - value * scale) <= 0.005 + 1e-9 * max(1.0, abs(value * scale))


def shows(printed: str, value: float | None, scale: float = 1.0) -> bool:
    """A labelled value: the warehouse value rounded, or n/a where the warehouse has NULL."""
    if value is None:
        return printed.startswith("n/a")
    return close_to(first(printed), value, scale)


def reads_as_money(printed: str, value: float | None) -> bool:
    """'-$38.6bn' or '$412.3m' for a large amount (1 decimal of its unit), the exact '$85,210.50' under $1m."""
    if value is None:
        return printed.startswith("n/a")
    found = re.match(r"(-?)\$([\d,.]+)(tn|bn|m)?", printed)
    scale = {"tn": 1e12, "bn": 1e9, "m": 1e6, None: 1.0}[found.group(3)]
    number = float(found.group(2).replace(",", ""))
    if (found.group(1) == "-") != (value < 0) or (scale > 1 and not 0.9995 <= abs(value) / scale < 1000):
        return False
    return abs(number - abs(value) / scale) <= (0.05 if scale > 1 else 0.005) + 1e-9 * abs(number)


def labelled(idea: dict) -> tuple[str, str, str]:
    """An idea's trigger, target and stop as they must read: the underlying's levels, named, to the cent."""
    return (
        f"{idea['symbol']} {idea['trigger_direction']} {idea['trigger_level']:.2f}",
        f"{idea['symbol']} {idea['target']:.2f}",
        f"{idea['symbol']} {idea['stop']:.2f}",
    )


def page(built: Built, symbol: str, kind: str = "md") -> str:
    return (built.report.directory / f"{symbol}.{kind}").read_text()


# ------------------------------------------------------------------------------------------ numbers


def test_money_and_counts_are_printed_like_the_warehouse_texts():
    assert fmt_money(249.8) == "249.80"
    assert (
        fmt_money(0.125) == "0.13"
    )  # half away from zero, as transforms.text.fmt_fixed (Python's format: 0.12)
    assert fmt_money(-0.125) == "-0.13"
    assert fmt_money(-0.001) == "0.00"
    assert fmt_money(-1_709_970_893.5833, dollar=True) == "-$1,709,970,893.58"
    assert fmt_money(0.42, sign=True) == "+0.42"
    assert fmt_money(None) == "n/a" and fmt_money(float("nan")) == "n/a"
    assert fmt_count(605_389) == "605,389" and fmt_count(-234_019, sign=True) == "-234,019"
    assert fmt_count(1_200, sign=True) == "+1,200" and fmt_count(None) == "n/a"
    assert fmt_pct(-2.449239251444635, sign=True) == "-2.45%"
    assert fmt_pct(0.193723, scale=100) == "19.37%"
    assert fmt_compact(-38_600_027_182.22) == "-$38.6bn" and fmt_compact(412_345_678) == "$412.3m"
    assert fmt_compact(999_960_000) == "$1.0bn" and fmt_compact(85_210.5) == "$85,210.50"
    values = [0.005, 0.015, 1.005, 2.675, -2.675, 187.7065, 182.58690519181448, 10.0, 0.0, -0.004]
    polars_text = pl.DataFrame({"v": values}).select(fmt_fixed(pl.col("v"))).to_series().to_list()
    assert [fmt_money(v) for v in values] == polars_text


def test_markdown_numbers_match_the_warehouse_rows(built: Built):
    for symbol in SYMBOLS:
        md = sections(page(built, symbol))
        t = one(built, "technicals_daily", "symbol", symbol)
        p = one(built, "positioning_daily", "symbol", symbol)
        s = one(built, "signals_daily", "symbol", symbol)
        f = one(built, "flow_daily", "symbol", symbol)

        price = facts(md["Price and trend"])
        for label, column in [
            ("Close", "close"),
            ("Previous close", "prev_close"),
            ("SMA 30", "sma_30"),
            ("SMA 50", "sma_50"),
            ("SMA 200", "sma_200"),
            ("Bollinger lower", "bb_lower"),
            ("Bollinger middle", "bb_middle"),
            ("Bollinger upper", "bb_upper"),
            ("RSI 14", "rsi_14"),
            ("ATR 14", "atr_14"),
            ("52-week low", "low_52w"),
            ("52-week high", "high_52w"),
        ]:
            assert shows(price[label], t[column]), (symbol, label, price[label], t[column])
        assert price["Change"].endswith("%") and close_to(first(price["Change"]), t["change_pct"])
        assert numbers(price["Session range"]) == pytest.approx(
            [round(t["low"], 2), round(t["high"], 2), round(t["open"], 2)], abs=0.0051
        )
        assert first(price["Volume"]) == t["volume"]
        relation = "above" if t["close"] > t["sma_200"] else "below"
        assert price["SMA 200"].endswith(f"(close {relation})")

        pos = facts(md["Positioning"])
        for label, column in [
            ("Spot", "spot"),
            ("Put/call OI ratio", "pcr_oi"),
            ("Put/call volume ratio", "pcr_volume"),
            ("Gamma flip", "gamma_flip"),
        ]:
            assert shows(pos[label], p[column]), (symbol, label)
        for label, column in [
            ("ATM IV 30", "atm_iv_30"),
            ("25-delta risk reversal", "rr_25d"),
            ("IV rank 252", "iv_rank_252"),
            ("IV percentile 252", "iv_percentile_252"),
        ]:
            assert shows(pos[label], p[column], scale=100), (symbol, label)
        for label, column in [("Net GEX", "net_gex"), ("Net DEX", "net_dex")]:
            assert reads_as_money(pos[label], p[column]), (symbol, label, pos[label])
        assert pos["Net GEX"].endswith(" per 1% move")
        assert numbers(pos["Call wall"]) == [round(p["call_wall"], 2), p["call_wall_oi"]]
        assert numbers(pos["Put wall"]) == [round(p["put_wall"], 2), p["put_wall_oi"]]
        assert f"({p['call_wall_oi']:,} contracts)" in pos["Call wall"]  # thousands separators
        assert numbers(pos["Call OI"]) == [p["call_oi"], p["call_oi_change"]]
        assert numbers(pos["Put OI"]) == [p["put_oi"], p["put_oi_change"]]
        assert pos["Max pain"] == f"{p['max_pain']:.2f} (expiration {p['max_pain_expiration'].isoformat()})"

        flow = facts(md["Flow"])
        assert numbers(flow["Blocks"]) == [f["block_count"], f["buy_block_count"], f["sell_block_count"]]
        assert reads_as_money(flow["Block notional"], f["block_notional"])
        assert first(flow["Unusual contracts"]) == f["unusual_contracts"]

        levels = facts(md["Levels"])
        for label, column, row in [
            ("Pivot (next session)", "pivot_point", t),
            ("R1", "r1", t),
            ("S1", "s1", t),
            ("R2", "r2", t),
            ("S2", "s2", t),
            ("Support", "support", s),
            ("Resistance", "resistance", s),
            ("Breakout level", "breakout_level", s),
            ("Breakdown level", "breakdown_level", s),
        ]:
            assert shows(levels[label], row[column]), (symbol, label)

        scenarios = facts(md["Scenarios"])
        assert unescape(scenarios["Bull case"]) == s["bull_case"]
        assert unescape(scenarios["Bear case"]) == s["bear_case"]


def test_every_trade_idea_is_a_play_with_its_numbers(built: Built):
    ideas = rows(
        built, "SELECT * FROM trade_ideas WHERE trade_date = ? ORDER BY symbol, rule, idea_id", [built.day]
    )
    assert ideas and any(i["instrument"] != "stock" for i in ideas)
    printed = {}
    for symbol in SYMBOLS:
        printed |= plays(sections(page(built, symbol))["Plays"])
    assert set(printed) == {i["idea_id"] for i in ideas}
    for idea in ideas:
        play = printed[idea["idea_id"]]
        assert play["heading"].endswith(f"{idea['rule']} ({idea['direction']}, {idea['instrument']})")
        # The levels are the underlying's, labelled with it, to the cent (also for option ideas).
        assert (play["Trigger"], play["Target"], play["Stop"]) == labelled(idea)
        assert close_to(first(play["R:R"]), idea["risk_reward"]), idea["idea_id"]
        assert play["rationale"] == idea["rationale"]
        if idea["instrument"] == "stock":
            assert play["Contract"] == "stock"
            continue
        assert play["Contract"] == f"`{idea['option_symbol']}`" and len(idea["option_symbol"]) == 21
        premium = re.fullmatch(
            r"\$([\d,]+\.\d\d) per contract \(option mid ([\d,]+\.\d\d)\)", play["Premium"]
        )
        assert premium, play["Premium"]
        assert close_to(first(premium.group(1)), idea["entry_premium"], scale=100)  # dollars per contract
        assert close_to(first(premium.group(2)), idea["entry_premium"])
        assert close_to(first(play["Strike"]), idea["strike"])
        assert play["Expiration"] == f"{idea['expiration'].isoformat()} ({idea['dte']} days)"
        assert first(play["Contract OI"]) == idea["contract_open_interest"]


def test_every_number_printed_is_a_value_of_that_session(built: Built):
    """Labelled values and table cells: each number is one of the symbol's warehouse values that day
    (percent figures scaled by 100), never something computed by the report."""
    for symbol in SYMBOLS:
        known: list[float] = []
        for table, key in [
            ("technicals_daily", "symbol"),
            ("positioning_daily", "symbol"),
            ("signals_daily", "symbol"),
            ("flow_daily", "symbol"),
            ("trade_ideas", "symbol"),
            ("strike_levels", "symbol"),
            ("blocks", "symbol"),
        ]:
            for row in rows(
                built, f"SELECT * FROM {table} WHERE trade_date = ? AND {key} = ?", [built.day, symbol]
            ):
                known += [
                    float(v) for v in row.values() if isinstance(v, (int, float)) and not isinstance(v, bool)
                ]
        values = np.array([v for v in known if np.isfinite(v)])
        md = page(built, symbol)
        md = md.split("\n---\n")[0]  # the footer names the run
        cells = [v for label, v in re.findall(r"(?m)^- (.+?): (.+)$", md) if label not in FREE_TEXT]
        cells += [
            c
            for line in re.findall(r"(?m)^\|(.+)\|$", md)
            for c in line.split("|")
            if not set(c.strip()) <= set("-:")
        ]
        checked = 0
        for cell in cells:
            cell = re.sub(r"`[^`]*`", "", cell)  # OSI symbols are checked as contracts
            cell = re.sub(r"\d{2}:\d{2}:\d{2} ET", "", cell)  # print times
            cell = re.sub(r"\d{4}-\d{2}-\d{2}", "", cell)  # dates are checked as dates above
            cell = re.sub(r"-?\$[\d.]+(?:tn|bn|m)\b", "", cell)  # and money in millions and billions
            cell = re.sub(r"\(from \d+ sessions, fewer than 252", "", cell)  # the IV rank's history
            for number in numbers(cell):
                close = np.abs(values - number) <= 0.005 + 1e-9 * abs(number)
                close |= np.abs(values * 100 - number) <= 0.005 + 1e-9 * abs(number)
                assert close.any(), f"{symbol}: {number} in {cell!r} is no warehouse value"
                checked += 1
        assert checked > 60


def test_the_charts_are_drawn_from_the_same_numbers(built: Built):
    history = price_history(built.lake, built.day, SYMBOLS)
    assert history.group_by("symbol").len().sort("symbol")["len"].to_list() == [PRICE_SESSIONS] * len(SYMBOLS)
    last = history.filter(pl.col("trade_date") == built.day).sort("symbol")
    for row in last.iter_rows(named=True):
        t = one(built, "technicals_daily", "symbol", row["symbol"])
        for column in ("close", "sma_30", "sma_200", "bb_upper", "bb_middle", "bb_lower"):
            assert row[column] == pytest.approx(t[column], rel=1e-9), (row["symbol"], column)
    # 260 sessions of bars: SMA 200 from the 200th on, i.e. on the last 61 of the 120 charted sessions
    assert history.group_by("symbol").agg(pl.col("sma_200").count())["sma_200"].to_list() == [61] * len(
        SYMBOLS
    )

    oi = strike_oi(built.lake, built.day, SYMBOLS)
    totals = oi.filter(pl.col("scope") == "all").group_by("underlying").agg(pl.col("call_oi", "put_oi").sum())
    for row in totals.iter_rows(named=True):
        p = one(built, "positioning_daily", "symbol", row["underlying"])
        assert (row["call_oi"], row["put_oi"]) == (p["call_oi"], p["put_oi"])
        walls = oi.filter((pl.col("scope") == "all") & (pl.col("underlying") == row["underlying"]))
        assert walls["call_oi"].max() == p["call_wall_oi"] and walls["put_oi"].max() == p["put_wall_oi"]
    monthly = (
        oi.filter(pl.col("scope") == "monthly").group_by("underlying").agg(pl.col("expiration").unique())
    )
    for expirations in monthly["expiration"].to_list():
        (expiration,) = expirations
        assert expiration > built.day and expiration.weekday() == 4 and 15 <= expiration.day <= 21
    for report in built.report.reports:
        assert [c.name for c in report.charts] == [f"{report.symbol}-price.svg", f"{report.symbol}-oi.svg"]
        assert not list(report.charts[0].parent.glob("*.png"))


# ------------------------------------------------------------------------------------------- SVG charts

SVG = "{http://www.w3.org/2000/svg}"
POINT = re.compile(r"([ML])(-?[\d.]+),(-?[\d.]+)")
BAR = re.compile(r"M(-?[\d.]+),(-?[\d.]+)V(-?[\d.]+)H(-?[\d.]+)V(-?[\d.]+)Z")
PX = 0.1  # the charts round coordinates to 0.1 px


def svg(path: Path | str) -> ET.Element:
    root = ET.fromstring(Path(path).read_text() if isinstance(path, Path) else path)
    assert root.tag == f"{SVG}svg"
    return root


def classed(root: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in root.iter() if css in (e.get("class") or "").split()]


def only(root: ET.Element, css: str) -> ET.Element:
    (found,) = classed(root, css)
    return found


def points(path: ET.Element) -> tuple[list[str], np.ndarray, np.ndarray]:
    found = POINT.findall(path.get("d"))
    assert " ".join(f"{c}{x},{y}" for c, x, y in found) == path.get("d")  # nothing else in the path
    return (
        [c for c, _, _ in found],
        np.array([float(x) for _, x, _ in found]),
        np.array([float(y) for _, _, y in found]),
    )


@dataclass(frozen=True)
class Axis:
    """An axis read back from its tick labels: each label's number at the pixel it is drawn at."""

    values: np.ndarray
    pixels: np.ndarray

    @classmethod
    def read(cls, root: ET.Element, axis: str, *, negative_below: float | None = None) -> Axis:
        """negative_below: the pixel row under which labels are magnitudes of negative values (put OI)."""
        ticks = classed(root, f"{axis}-tick")
        values = np.array([numbers(t.text)[0] for t in ticks])
        pixels = np.array([float(t.get(axis)) for t in ticks])
        if negative_below is not None:
            assert (values >= 0).all()
            values = np.where(pixels > negative_below, -values, values)
        assert len(ticks) >= 3 and len(set(np.diff(values).round(6))) == 1, "evenly spaced ticks"
        return cls(values, pixels)

    def value(self, pixel: float | np.ndarray) -> np.ndarray:
        slope, intercept = np.polyfit(self.pixels, self.values, 1)
        assert np.allclose(slope * self.pixels + intercept, self.values, atol=abs(slope) * PX)  # linear
        return slope * np.asarray(pixel) + intercept

    def slack(self) -> float:
        """Data units of the coordinates' rounding (the pixel, and the ticks it is read through)."""
        return abs(np.polyfit(self.pixels, self.values, 1)[0]) * 2 * PX


def test_price_chart_svg_draws_the_warehouse_series_and_pivots(built: Built):
    history = price_history(built.lake, built.day, SYMBOLS)
    for symbol in SYMBOLS:
        root = svg(built.report.directory / "charts" / f"{symbol}-price.svg")
        assert root.get("viewBox") == "0 0 1000 580" and root.get("width") == "1000"
        assert root.get("font-family") == "sans-serif"
        assert root.find(f"{SVG}title").text == (
            f"{symbol}: last {PRICE_SESSIONS} sessions to {built.day}, pivots and the day's levels"
        )
        mine = history.filter(pl.col("symbol") == symbol).sort("trade_date")
        t = one(built, "technicals_daily", "symbol", symbol)
        y = Axis.read(root, "y")

        commands, close_x, close_y = points(only(root, "close"))
        assert commands == ["M"] + ["L"] * (PRICE_SESSIONS - 1)  # one point per charted session, no gap
        assert np.all(np.diff(close_x) > 0)
        assert y.value(close_y) == pytest.approx(mine["close"].to_numpy(), abs=y.slack())
        assert y.value(close_y[-1]) == pytest.approx(t["close"], abs=y.slack())  # the last close is the day's
        commands, sma_x, sma_y = points(only(root, "sma-200"))
        assert commands == ["M"] + ["L"] * 60  # SMA 200 from the 200th bar: the last 61 sessions
        assert sma_x.tolist() == close_x[-61:].tolist()
        assert y.value(sma_y) == pytest.approx(mine["sma_200"].drop_nulls().to_numpy(), abs=y.slack())
        _, _, sma30_y = points(only(root, "sma-30"))
        assert y.value(sma30_y[-1]) == pytest.approx(t["sma_30"], abs=y.slack())
        assert (
            only(root, "sma-30").get("stroke") == "#e69138"
            and only(root, "sma-200").get("stroke") == "#6aa84f"
        )
        _, _, middle_y = points(only(root, "bb-middle"))
        assert y.value(middle_y[-1]) == pytest.approx(t["bb_middle"], abs=y.slack())
        _, band_x, band_y = points(only(root, "bb-band"))  # along the upper band, back along the lower
        half = len(band_x) // 2
        assert band_x[:half].tolist() == band_x[half:][::-1].tolist() == close_x[-half:].tolist()
        assert y.value(band_y[half - 1]) == pytest.approx(t["bb_upper"], abs=y.slack())
        assert y.value(band_y[half]) == pytest.approx(t["bb_lower"], abs=y.slack())

        dates = [e.text for e in classed(root, "x-tick")]
        assert dates[0] == mine["trade_date"][0].isoformat() and dates[-1] == built.day.isoformat()
        assert dates == sorted(set(dates)) and set(dates) <= {d.isoformat() for d in mine["trade_date"]}
        assert float(classed(root, "x-tick")[-1].get("x")) == close_x[-1]

        levels = facts(sections(page(built, symbol))["Levels"])  # the page's figures, the chart's labels
        pivots = classed(root, "pivot")
        assert [only(g, "pivot-label").text for g in pivots] == [
            f"R1 {levels['R1']}",
            f"P {levels['Pivot (next session)']}",
            f"S1 {levels['S1']}",
        ]
        for group, column in zip(pivots, ("r1", "pivot_point", "s1"), strict=True):
            assert only(group, "pivot-label").text.endswith(fmt_money(t[column]))
            line = group.find(f"{SVG}line")
            assert y.value(float(line.get("y1"))) == pytest.approx(t[column], abs=y.slack())
        for group in classed(root, "mark"):  # the day's levels: each line at its value, labelled with it
            line, level = group.find(f"{SVG}line"), float(group.get("data-level"))
            assert y.value(float(line.get("y1"))) == pytest.approx(level, abs=y.slack())
            assert only(group, "mark-label").text.endswith(fmt_money(level))
        bars = [tuple(map(float, b)) for b in BAR.findall(only(root, "volume").get("d"))]
        assert len(bars) == PRICE_SESSIONS and [(b[0] + b[3]) / 2 for b in bars] == pytest.approx(
            close_x, abs=0.11
        )
        heights = np.array([b[1] - b[2] for b in bars])  # pixels, proportional to the volume
        volumes = mine["volume"].to_numpy().astype(float)
        assert heights / heights.max() == pytest.approx(volumes / volumes.max(), abs=0.01)


def test_oi_chart_svg_draws_the_chain_with_walls_and_max_pain(built: Built):
    oi = strike_oi(built.lake, built.day, SYMBOLS)
    for symbol in SYMBOLS:
        root = svg(built.report.directory / "charts" / f"{symbol}-oi.svg")
        assert root.get("viewBox") == "0 0 1000 680" and root.get("width") == "1000"
        p = one(built, "positioning_daily", "symbol", symbol)
        pos = facts(sections(page(built, symbol))["Positioning"])
        expiration = p["max_pain_expiration"].isoformat()
        assert [e.text for e in classed(root, "legend")] == [
            "Call OI",
            "Put OI",
            f"Spot {pos['Spot']}",
            f"Call wall {fmt_money(p['call_wall'])}",
            f"Put wall {fmt_money(p['put_wall'])}",
            f"Max pain ({expiration}) {fmt_money(p['max_pain'])}",
        ]
        assert pos["Call wall"].startswith(fmt_money(p["call_wall"]) + " ")
        assert pos["Max pain"].startswith(fmt_money(p["max_pain"]) + " ")

        panels = {g.get("data-scope"): g for g in classed(root, "panel")}
        assert list(panels) == ["monthly", "all"]
        mine = oi.filter(pl.col("underlying") == symbol)
        (month,) = mine.filter(pl.col("scope") == "monthly")["expiration"].unique().to_list()
        assert only(panels["monthly"], "panel-title").text == (
            f"Nearest monthly expiration {month.isoformat()} ({(month - built.day).days} days)"
        )
        for scope, panel in panels.items():
            zero = float(only(panel, "zero").get("y1"))
            x, y = Axis.read(panel, "x"), Axis.read(panel, "y", negative_below=zero)
            for css, column in [
                ("spot", "spot"),
                ("call-wall", "call_wall"),
                ("put-wall", "put_wall"),
                ("max-pain", "max_pain"),
            ]:
                line = only(panel, css)
                assert line.get("x1") == line.get("x2")
                assert x.value(float(line.get("x1"))) == pytest.approx(p[column], abs=x.slack()), (
                    symbol,
                    scope,
                    css,
                )
            assert y.value(zero) == pytest.approx(0, abs=y.slack())
            rows = mine.filter(pl.col("scope") == scope)
            frame = panel.find(f"{SVG}rect")  # the plot area
            left = x.value(float(frame.get("x")))
            right = x.value(float(frame.get("x")) + float(frame.get("width")))
            for css, column, sign in [("calls", "call_oi", 1), ("puts", "put_oi", -1)]:
                bars = [tuple(map(float, b)) for b in BAR.findall(only(panel, css).get("d"))]
                assert all(b[1] == b[4] == zero for b in bars)
                centres = x.value(np.array([(b[0] + b[3]) / 2 for b in bars]))
                drawn = sign * y.value(np.array([b[2] for b in bars]))
                expected = rows.filter(pl.col("strike").is_between(left, right) & (pl.col(column) > 0))
                assert centres == pytest.approx(expected["strike"].to_numpy(), abs=x.slack())
                assert drawn == pytest.approx(expected[column].to_numpy().astype(float), abs=y.slack())
                if scope == "all":  # the tallest bar is the wall, with the wall's open interest
                    wall = "call_wall" if css == "calls" else "put_wall"
                    tallest = int(np.argmax(drawn))
                    assert centres[tallest] == pytest.approx(p[wall], abs=x.slack())
                    assert drawn[tallest] == pytest.approx(p[f"{wall}_oi"], abs=y.slack())


def test_path_coordinates_print_as_polars_prints_them_rounded():
    """The table lookup behind the path texts is the print of np.round(v, 1), on and off the canvas."""
    from flows.report.charts import _nums

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(-50, 1050, 20_000),
            np.arange(-20, 10_020) / 10 + 0.05,
            [-0.04, -0.0, 0.05, 0.15, 0.25, 999.95, 1e16, np.nan, np.inf],
        ]
    )
    printed = pl.Series(np.round(values, 1) + 0.0).cast(pl.String).str.strip_suffix(".0").to_list()
    assert _nums(values) == printed
    assert _nums(np.array([])) == []


def test_svg_charts_escape_text_break_lines_at_gaps_and_say_when_empty():
    day = date(2025, 3, 14)
    history = pl.DataFrame(
        {
            "trade_date": pl.date_range(date(2025, 3, 1), day, eager=True),
            "close": [float(v) for v in range(100, 114)],
            "sma_30": [1.0 * v if v % 5 else None for v in range(100, 114)],  # NULLs at 105 and 110
            "sma_200": [None] * 14,
            "bb_upper": [120.0] * 14,
            "bb_middle": [107.0] * 14,
            "bb_lower": [95.0] * 14,
        },
        schema_overrides={"sma_200": pl.Float64},
    )
    text = price_chart("A&B<'\"", day, history, {"r1": 121.5, "pivot_point": None, "s1": 93.25})
    root = svg(text)
    assert "A&B<'\"" in root.find(f"{SVG}title").text and "A&B<" not in text
    commands, _, _ = points(only(root, "sma-30"))
    assert commands == ["M", "L", "L", "L"] * 2 + ["M", "L", "L"]  # NULL at 100, 105 and 110: three segments
    assert not classed(root, "sma-200")  # no value at all: no path
    assert [only(g, "pivot-label").text for g in classed(root, "pivot")] == ["R1 121.50", "S1 93.25"]
    assert all(len(n) <= 1 for n in re.findall(r"\.(\d+)", only(root, "close").get("d")))  # 0.1 px

    empty = pl.DataFrame(
        schema={
            "scope": pl.String,
            "underlying": pl.String,
            "expiration": pl.Date,
            "strike": pl.Float64,
            "call_oi": pl.Int64,
            "put_oi": pl.Int64,
        }
    )
    root = svg(
        oi_chart("IWM", day, empty, {"spot": 200.0, "call_wall": None, "put_wall": None, "max_pain": None})
    )
    assert [e.text for e in classed(root, "empty")] == ["no open interest"] * 2
    assert not classed(root, "calls") and not classed(root, "puts") and not classed(root, "call-wall")
    assert [e.text for e in classed(root, "legend")] == ["Call OI", "Put OI", "Spot 200.00"]
    panel = classed(root, "panel")[1]
    x = Axis.read(panel, "x")
    frame = panel.find(f"{SVG}rect")
    assert x.value(float(frame.get("x"))) == pytest.approx(
        160 - 80 * 0.03, abs=x.slack()
    )  # OI_RANGE, 3% room


def test_a_rerun_removes_charts_it_does_not_draw_and_old_png_charts(built: Built, tmp_path: Path):
    charts = tmp_path / built.day.isoformat() / "charts"
    charts.mkdir(parents=True)
    for name in ("IWM-price.png", "IWM-oi.png", "SPY-price.png"):
        (charts / name).write_bytes(b"an old PNG chart")
    write_report(built.database, built.lake, tmp_path, built.day, symbols=["IWM"])
    assert sorted(p.name for p in charts.iterdir()) == ["IWM-oi.svg", "IWM-price.svg", "SPY-price.png"]
    assert "](charts/IWM-price.svg)" in (charts.parent / "IWM.md").read_text()
    report = write_report(built.database, built.lake, tmp_path, built.day, symbols=["IWM"], charts=False)
    assert report.reports[0].charts == () and sorted(p.name for p in charts.iterdir()) == ["SPY-price.png"]
    assert "charts/" not in (charts.parent / "IWM.md").read_text()
    assert "<svg" not in (charts.parent / "IWM.html").read_text()


# ------------------------------------------------------------------------------------ HTML in Chromium


def chromium() -> str:
    """Debian's chromium; installed here when missing (the tests run as root). No network: a clear failure."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing and the tests are not root: apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.fail(f"installing chromium: `{' '.join(command)}` timed out (no network?)")
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            pytest.fail(
                f"installing chromium failed (no network?): `{' '.join(command)}` exited "
                f"{done.returncode}: {tail}"
            )
    if not Path(CHROMIUM).exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


def screenshot(browser: str, url: str, folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={folder / 'profile'}",
            f"--screenshot={folder / 'shot.png'}",
            "--window-size=1200,1600",
            "--enable-logging=stderr",
            "--v=0",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def console_errors(stderr: str) -> list[str]:
    """Chromium logs every console message as '...:CONSOLE...] "text", source: ...' (level INFO even for
    console.error); the pages run no script, so any console line is a failure (a CSP refusal, an error)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_html_is_self_contained_and_renders_in_chromium(built: Built, tmp_path: Path):
    html_page = page(built, "IWM", "html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", html_page)
    assert "@import" not in html_page and "url(" not in html_page and "<script" not in html_page
    assert "<img" not in html_page
    inline = re.findall(
        r"<svg\b.*?</svg>", html_page, flags=re.DOTALL
    )  # the charts, inlined as their files are
    charts = built.report.directory / "charts"
    assert inline == [(charts / f"IWM-{kind}.svg").read_text().strip() for kind in ("price", "oi")]
    assert all(
        re.fullmatch(r'<svg xmlns="http://www\.w3\.org/2000/svg" [^>]*>', chart.split("<title>")[0])
        for chart in inline
    )  # the namespace is the only URL, and no element refers to anything
    assert not re.search(r"\b(?:href|src)\s*=", "".join(inline))

    started = time.perf_counter()
    browser = chromium()
    install_seconds = time.perf_counter() - started
    # A control page proves the console check sees errors at all.
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><body><p>x</p><script>console.error("boom"); missing();</script></body></html>'
    )
    runs = {
        "report": screenshot(browser, (built.report.directory / "IWM.html").as_uri(), tmp_path / "report"),
        "control": screenshot(browser, control.as_uri(), tmp_path / "control"),
    }
    logs = {}
    for name, process in runs.items():
        try:
            _, logs[name] = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"chromium did not finish the {name} page in 120 s")
        assert process.returncode == 0, logs[name][-2000:]
    assert any("boom" in line for line in console_errors(logs["control"]))
    assert any("Uncaught ReferenceError" in line for line in console_errors(logs["control"]))
    assert console_errors(logs["report"]) == [], f"console output (chromium ready in {install_seconds:.1f} s)"

    shot = np.asarray(Image.open(tmp_path / "report" / "shot.png").convert("RGB")).astype(int)
    assert shot.shape == (1600, 1200, 3)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 50 and shot.std() > 10
    sma30_orange = np.array([0xE6, 0x91, 0x38])  # the price chart's SMA 30 line: the chart image was drawn
    assert (np.abs(shot - sma30_orange).sum(axis=2) < 40).sum() > 50


def dump_dom(browser: str, path: Path, folder: Path) -> str:
    """The page's DOM as Chromium built it (--dump-dom)."""
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={folder}",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


def test_a_trader_sees_the_days_ideas_levels_volume_and_units_in_chromium(built: Built, tmp_path: Path):
    from flows.report.build import scorecard_definitions

    browser = chromium()
    index = dump_dom(browser, built.report.html, tmp_path / "index")
    ideas = rows(
        built,
        "SELECT i.*, s.bias FROM trade_ideas i JOIN signals_daily s USING (trade_date, symbol) "
        "WHERE trade_date = ? ORDER BY symbol, rule, idea_id",
        [built.day],
    )
    ideas_section = index.split("<h2>Today's ideas</h2>")[1].split("</section>")[0]
    lines = re.findall(r"<tr>(.*?)</tr>", ideas_section.split("<tbody>")[1])
    assert len(lines) == len(ideas) > 0
    for line, idea in zip(lines, ideas, strict=True):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", line)
        assert idea["symbol"] in cells[0]
        assert cells[1] == f'<span class="{idea["bias"]}">{idea["bias"]}</span>'  # coloured by its class
        assert (
            cells[2] == idea["rule"]
            and cells[3] == f'<span class="{idea["direction"]}">{idea["direction"]}</span>'
        )
        assert cells[4] == (f"<code>{idea['option_symbol']}</code>" if idea["option_symbol"] else "stock")
        if idea["entry_premium"] is None:
            assert cells[5] == "n/a"
        else:  # dollars per contract: the mid x 100
            assert cells[5].startswith("$") and close_to(first(cells[5]), idea["entry_premium"], scale=100)
        assert tuple(cells[6:9]) == labelled(idea)
    for summary in built.report.summary:  # the symbols table's bias in its colour too
        assert (
            f'<span class="{summary["bias"]}">{summary["bias"]}</span>' in index.split("<h2>Symbols</h2>")[1]
        )
    scorecard = index.split("<h2>Idea scorecard</h2>")[1].split("</section>")[0]
    assert (
        scorecard_definitions()
        and f'<p class="note">{html.escape(scorecard_definitions(), quote=False)}</p>' in scorecard
    )
    assert '<th class="num">ideas</th>' in scorecard  # the sample sizes: the view's counts

    iwm = dump_dom(browser, built.report.directory / "IWM.html", tmp_path / "iwm")
    price_svg = re.search(r'<svg[^>]*aria-label="IWM: last.*?</svg>', iwm, flags=re.DOTALL).group(0)
    drawn = {
        (kind, float(level))
        for kind, level in re.findall(r'<g class="mark ([a-z\-]+)" data-level="([-\d.]+)">', price_svg)
    }
    p = one(built, "positioning_daily", "symbol", "IWM")
    expected = {
        (kind, round(p[column], 2))
        for kind, column in [
            ("call-wall", "call_wall"),
            ("put-wall", "put_wall"),
            ("max-pain", "max_pain"),
            ("gamma-flip", "gamma_flip"),
        ]
        if p[column] is not None
    }
    expected |= {
        (kind, round(i[column], 2))
        for i in ideas
        if i["symbol"] == "IWM"
        for kind, column in [("trigger", "trigger_level"), ("target", "target"), ("stop", "stop")]
    }
    assert drawn == expected and any(kind == "trigger" for kind, _ in drawn)
    volume = re.search(r'<path class="volume" d="([^"]+)"', price_svg).group(1)
    assert volume.count("M") == min(PRICE_SESSIONS, 260)  # a bar per session shown
    titles = re.findall(r'class="axis-title"[^>]*>([^<]+)</text>', iwm)
    assert (
        titles
        == ["Price ($)", "Volume", "Session (trade date)"] + ["Open interest (contracts)", "Strike ($)"] * 2
    )
    positioning = iwm.split("<h2>Positioning</h2>")[1]
    gex = re.search(r"<th>Net GEX</th><td>([^<]+)</td>", positioning).group(1)
    assert re.fullmatch(r"-?\$[\d.]+(bn|m) per 1% move|-?\$[\d,]+\.\d\d per 1% move", gex)
    assert reads_as_money(gex, p["net_gex"])
    iv_rank = re.search(r"<th>IV rank 252</th><td>([^<]+)</td>", positioning).group(1)
    sessions = rows(
        built,
        "SELECT count(atm_iv_30) AS n FROM positioning_daily WHERE symbol = 'IWM' AND trade_date <= ?",
        [built.day],
    )[0]["n"]
    assert sessions == 2 and iv_rank == (
        f"{fmt_pct(p['iv_rank_252'], scale=100)} (from 2 sessions, fewer than 252: a short history)"
    )


# ---------------------------------------------------------------------------------------------- index


def test_index_lists_every_symbol_with_working_links(built: Built):
    folder = built.report.directory
    assert folder == built.root / "reports" / built.day.isoformat()
    day_symbols = [
        r["symbol"]
        for r in rows(
            built, "SELECT symbol FROM signals_daily WHERE trade_date = ? ORDER BY symbol", [built.day]
        )
    ]
    assert day_symbols == SYMBOLS == built.report.symbols
    index_md = (folder / "index.md").read_text()
    index_html = (folder / "index.html").read_text()
    table = [line for line in sections(index_md)["Symbols"].splitlines() if re.match(r"\| \[[A-Z]", line)]
    assert [re.match(r"\| \[([A-Z.\-0-9]+)\]", line).group(1) for line in table] == SYMBOLS
    for line, summary in zip(table, built.report.summary, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == summary["bias"] and first(cells[2]) == summary["bias_score"]
        assert close_to(first(cells[3]), summary["close"]) and close_to(
            first(cells[4]), summary["change_pct"]
        )
        ideas = rows(
            built,
            "SELECT count(*) AS n FROM trade_ideas WHERE trade_date = ? AND symbol = ?",
            [built.day, summary["symbol"]],
        )[0]["n"]
        assert first(cells[5]) == ideas
    md_links = re.findall(r"\]\(([^)]+)\)", index_md)
    html_links = re.findall(r'href="([^"]+)"', index_html)
    assert {f"{s}.md" for s in SYMBOLS} <= set(md_links) and {f"{s}.html" for s in SYMBOLS} <= set(html_links)
    for link in md_links + html_links:
        assert (folder / link).is_file(), link
    for symbol in SYMBOLS:  # each page links back, and its Markdown charts exist
        assert 'href="index.html"' in page(built, symbol, "html")
        for link in re.findall(r"\]\(([^)]+)\)", page(built, symbol)):
            assert (folder / link).is_file(), (symbol, link)


def copy_warehouse(built: Built, tmp_path: Path, *statements: str) -> Path:
    database = tmp_path / "signals.duckdb"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(built.database, database)
    con = duckdb.connect(str(database))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    return database


def test_scorecard_section_when_the_view_exists_and_none_without_it(built: Built, tmp_path: Path):
    with_view = copy_warehouse(
        built,
        tmp_path / "with",
        "DROP VIEW IF EXISTS idea_scorecard",
        """
        CREATE VIEW idea_scorecard AS SELECT * FROM (VALUES
            ('call_breakout', 'bullish', 'all', 12, 5, 3, 1, 0.75::DOUBLE, 1.2345::DOUBLE),
            ('put_breakdown', 'bearish', 'all', 4, 0, 0, 0, NULL, NULL))
        AS t(rule, direction, period, ideas, triggered, target_hits, stop_hits, hit_rate, mean_r)""",
    )
    report = write_report(with_view, built.lake, tmp_path / "out", built.day, symbols=["IWM"])
    index = report.markdown.read_text()
    assert report.has_scorecard and "## Idea scorecard" in index
    assert "| call_breakout | bullish | all | 12 | 5 | 3 | 1 | 0.75 | 1.23 |" in index
    assert "| put_breakdown | bearish | all | 4 | 0 | 0 | 0 | n/a | n/a |" in index
    assert "Idea scorecard" in report.html.read_text()

    without = copy_warehouse(built, tmp_path / "without", "DROP VIEW IF EXISTS idea_scorecard")
    report = write_report(without, built.lake, tmp_path / "out2", built.day, symbols=["IWM"])
    assert not report.has_scorecard
    assert "scorecard" not in report.markdown.read_text().lower()
    assert "scorecard" not in report.html.read_text().lower()


# ------------------------------------------------------------------------------------------- symbols


def test_symbols_filter_writes_only_those_pages(built: Built, tmp_path: Path):
    report = write_report(built.database, built.lake, tmp_path, built.day, symbols=["iwm", " IWM"])
    folder = tmp_path / built.day.isoformat()
    assert report.symbols == ["IWM"]
    assert sorted(p.name for p in folder.glob("*.md")) == ["IWM.md", "index.md"]
    assert sorted(p.name for p in folder.glob("*.html")) == ["IWM.html", "index.html"]
    assert (folder / "IWM.md").read_text() == page(built, "IWM")  # same rows, same page
    index = (folder / "index.md").read_text()
    assert (
        "[IWM](IWM.md)" in index and "| SPY |" in index and "not written" in index
    )  # the day's others, unlinked
    assert {s["symbol"] for s in report.summary} == set(SYMBOLS)


@pytest.mark.parametrize(
    "hostile",
    ["../etc/passwd", "IWM;DROP TABLE signals_daily", "IWM'--", "", "A" * 11, "1WM", "IWM/../SPY", "IWM\x00"],
)
def test_a_hostile_symbol_is_refused_before_anything_is_written(built: Built, tmp_path: Path, hostile: str):
    with pytest.raises(ReportError, match="invalid symbol"):
        write_report(built.database, built.lake, tmp_path / "out", built.day, symbols=["IWM", hostile])
    assert not (tmp_path / "out").exists()


def test_unknown_symbol_or_day_is_a_one_line_error(built: Built, tmp_path: Path):
    with pytest.raises(ReportError, match=f"no signals for ZZZZ on {built.day}"):
        write_report(built.database, built.lake, tmp_path, built.day, symbols=["ZZZZ"])
    with pytest.raises(ReportError, match="no signals for 2020-01-02"):
        write_report(built.database, built.lake, tmp_path, date(2020, 1, 2))
    with pytest.raises(ReportError, match="no warehouse"):
        write_report(tmp_path / "missing.duckdb", built.lake, tmp_path, built.day)
    assert not any(tmp_path.iterdir())


def test_a_symbol_without_chain_or_prints_gets_text_pages(built: Built, tmp_path: Path):
    data = load_day(built.database, built.day, ["IWM"])
    for table in ("positioning_daily", "flow_daily", "idea_display", "strike_levels", "blocks"):
        data.frames[table] = data.frames[table].clear()
    from flows.report.build import _symbol_page

    markdown, html_page = _symbol_page("IWM", data, {})
    md = sections(markdown)
    assert md["Positioning"].strip() == "No option chain for this session."
    assert md["Plays"].strip() == "No rule fired for this session."
    assert "Close" in facts(md["Price and trend"]) and "<svg" not in html_page and "charts/" not in markdown


def test_text_from_the_warehouse_is_escaped():
    markdown, page_html = render_page(
        "T <b>", [Para("a <script>alert(1)</script> *x* [y](z) call_breakout")], [Section("S", [])], "f"
    )
    assert "<script>" not in page_html and "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html
    assert r"\<script\>" in markdown and r"\*x\* \[y\](z)" in markdown and "call_breakout" in markdown

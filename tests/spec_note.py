"""The note of SPEC section 1 rebuilt as landing files (bars for IWM and SPY, IWM's chain on 2025-12-29),
and the sessions after it (NEXT_DAY, LAST_DAY) derived from it.

Closes are solved so that, on 2025-12-29: SMA 30 = 246.33, Bollinger 20/2 = 244.92 / 250.94 / 256.96,
SMA 200 = 224.02, close 249.80 from 251.42, low 249.35. The chain puts call OI peaks at 255 (10,000)
and 266 (8,401), put OI peaks at 240 (7,739), 235 (7,321) and 245, and put/call OI at 2.18.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from flows.sources.calendar import sessions
from transforms.black_scholes import bs_price

NOTE_DATE = date(2025, 12, 29)
NEXT_DAY = date(2025, 12, 30)
LAST_DAY = date(2025, 12, 31)
EXPIRATIONS = [date(2026, 1, 2), date(2026, 1, 9), date(2026, 1, 16), date(2026, 2, 20)]
CALL_OI = {255.0: 10_000, 266.0: 8_401}
PUT_OI = {240.0: 7_739, 235.0: 7_321, 245.0: 5_000}
BASE_CALL_OI, BASE_PUT_OI = 25, 60  # per contract on every other strike


def iwm_closes(n: int) -> np.ndarray:
    """n closes ending ...251.42, 249.80 with the note's SMA 30, SMA 200 and 20-day band."""
    mean20, std20, mean30, mean200 = 250.94, (256.96 - 250.94) / 2, 246.33, 224.02
    last20 = np.empty(20)
    last20[-2:] = [251.42, 249.80]
    pattern = 250.94 + np.array(
        [1.5, -1.0, 2.0, -2.5, 0.5, 3.0, -1.5, 1.0, -0.5, 2.5, -2.0, 0.0, 1.2, -1.8, 0.8, -0.3]
    )
    last20[:16] = pattern
    rest_sum = 20 * mean20 - last20[:16].sum() - last20[-2:].sum()
    rest_sq = 20 * (std20**2 + mean20**2) - (last20[:16] ** 2).sum() - (last20[-2:] ** 2).sum()
    half_spread = np.sqrt(rest_sq / 2 - rest_sum**2 / 4)
    last20[16:18] = [rest_sum / 2 + half_spread, rest_sum / 2 - half_spread]
    prior10 = np.full(10, (30 * mean30 - 20 * mean20) / 10)
    prior170 = (200 * mean200 - 30 * mean30) / 170 + np.linspace(-18, 18, 170)
    older = np.linspace(190.0, 200.0, n - 200)
    return np.concatenate([older, prior170, prior10, last20])


def write_note_landing(landing: Path, *, with_chain: bool = True) -> None:
    days = sessions(date(2024, 9, 1), NOTE_DATE)[-260:]
    closes = iwm_closes(len(days))
    opens = np.concatenate([[closes[0]], closes[:-1]])
    highs = np.maximum(opens, closes) + 0.6
    lows = np.minimum(opens, closes) - 0.6
    opens[-1], highs[-1], lows[-1] = 251.00, 251.70, 249.35
    rng = np.random.default_rng(3)
    spy = 600 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    bars = pl.concat(
        [
            pl.DataFrame(
                {
                    "date": days,
                    "symbol": "IWM",
                    "open": opens,
                    "high": highs,
                    "low": lows,
                    "close": closes,
                    "volume": np.full(len(days), 30_000_000, dtype=np.int64),
                }
            ),
            pl.DataFrame(
                {
                    "date": days,
                    "symbol": "SPY",
                    "open": spy,
                    "high": spy * 1.005,
                    "low": spy * 0.995,
                    "close": spy,
                    "volume": np.full(len(days), 70_000_000, dtype=np.int64),
                }
            ),
        ]
    )
    (landing / "bars").mkdir(parents=True, exist_ok=True)
    bars.filter(pl.col("date") < NOTE_DATE).write_csv(landing / "bars" / "bars_history.csv")
    bars.filter(pl.col("date") == NOTE_DATE).write_csv(landing / "bars" / f"bars_{NOTE_DATE}.csv")
    if with_chain:
        (landing / "chains").mkdir(parents=True, exist_ok=True)
        note_chain().write_csv(landing / "chains" / f"chains_{NOTE_DATE}.csv")


def rewrite_bars_in_place(landing: Path) -> tuple[Path, os.stat_result]:
    """Change one digit of IWM's volume in the note's bars file, keeping its size and mtime (what a
    tool that restores timestamps leaves): the file and its status before the rewrite."""
    bars = landing / "bars" / f"bars_{NOTE_DATE}.csv"
    before = bars.stat()
    text = bars.read_text()
    assert ",30000000" in text
    bars.write_text(text.replace(",30000000", ",30000001", 1))
    os.utime(bars, ns=(before.st_atime_ns, before.st_mtime_ns))
    return bars, before


def add_session(landing: Path, day: date, *, oi_bump: int = 0, drift: float = 0.5) -> None:
    """Bars and IWM's chain for one more session, derived from the note's last day."""
    bars = pl.read_csv(landing / "bars" / f"bars_{NOTE_DATE}.csv", try_parse_dates=True)
    bars = bars.with_columns(
        pl.lit(day).alias("date"), *[(pl.col(c) + drift) for c in ("open", "high", "low", "close")]
    )
    bars.write_csv(landing / "bars" / f"bars_{day}.csv")
    chain = note_chain(spot=249.80 + drift).with_columns(
        pl.lit(day).alias("quote_date"),
        (
            pl.col("open_interest")
            + pl.when((pl.col("strike") == 255) & (pl.col("option_type") == "C")).then(oi_bump).otherwise(0)
        ).alias("open_interest"),
    )
    chain.write_csv(landing / "chains" / f"chains_{day}.csv")


def _oi(side: str, strike: float, expiration_index: int) -> int:
    special = CALL_OI if side == "C" else PUT_OI
    if strike in special:  # the wall's OI split over the expirations, summing to the note's figure
        total = special[strike]
        weights = [0.4, 0.1, 0.4, 0.1]
        share = [int(total * w) for w in weights]
        share[2] += total - sum(share)
        return share[expiration_index]
    return BASE_CALL_OI if side == "C" else BASE_PUT_OI


def note_chain(spot: float = 249.80) -> pl.DataFrame:
    rows = []
    strikes = np.arange(225.0, 276.0, 1.0)
    for e_index, expiration in enumerate(EXPIRATIONS):
        t = (expiration - NOTE_DATE).days / 365.0
        for side in ("C", "P"):
            iv = 0.18 + 0.002 * np.abs(strikes - spot)
            price = bs_price(
                np.full_like(strikes, spot),
                strikes,
                np.full_like(strikes, t),
                0.04,
                iv,
                np.full(strikes.shape, side == "C"),
            )
            for strike, p, vol in zip(strikes, price, iv, strict=True):
                rows.append(
                    {
                        "quote_date": NOTE_DATE,
                        "underlying": "IWM",
                        "expiration": expiration,
                        "strike": float(strike),
                        "option_type": side,
                        "open_interest": _oi(side, float(strike), e_index),
                        "volume": 100,
                        "bid": round(max(p - 0.05, 0.0), 2),
                        "ask": round(p + 0.05, 2),
                        "last": round(p, 2),
                        "implied_volatility": round(float(vol), 4),
                        "delta": None,
                        "gamma": None,
                        "underlying_price": spot,
                    }
                )
    chain = pl.DataFrame(rows)
    # Filler put OI on strikes away from the walls (above 250, below 235) makes put/call OI 2.18
    # without creating a new wall: no filler strike gets near 5,000.
    calls = chain.filter(pl.col("option_type") == "C")["open_interest"].sum()
    puts = chain.filter(pl.col("option_type") == "P")["open_interest"].sum()
    missing = round(2.18 * calls) - puts
    filler = (pl.col("option_type") == "P") & ((pl.col("strike") >= 250) | (pl.col("strike") < 235))
    slots = chain.filter(filler).height
    first_slot = pl.int_range(pl.len()).over(filler) == 0
    return chain.with_columns(
        pl.when(filler)
        .then(
            pl.col("open_interest")
            + missing // slots
            + pl.when(first_slot).then(missing % slots).otherwise(0)
        )
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    )

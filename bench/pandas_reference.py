"""`make bench`'s second reference: the night's work as a competent analyst writes it in plain pandas.

Reads the night's drop (the day's bars, chain and prints) and the analyst's own bars history (a Parquet
file kept from the nights before), and writes per symbol: technicals (SMA 20/30/50/200, EMA 20, Bollinger
20/2, ATR 14 and RSI 14 Wilder, 52-week range, floor pivots), put/call ratios, OI walls, max pain on
the nearest expiration, and the day's blocks with their side by the quote rule. Vectorised groupby
work, no loop over symbols or rows; no validation, quarantine, IV or greeks, no database, no report.

    python -m bench.pandas_reference --history HISTORY.parquet --bars DAY.csv --chains DAY.csv \
        --trades DAY.csv --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

BLOCK_NOTIONAL = 1_000_000.0
BLOCK_SIZE = 1_000


def technicals(bars: pd.DataFrame) -> pd.DataFrame:
    bars = bars.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    by = bars.groupby("symbol", sort=False)
    close = by["close"]
    out = bars[["date", "symbol", "open", "high", "low", "close", "volume"]].copy()
    out["prev_close"] = close.shift(1)
    out["change_pct"] = (bars["close"] / out["prev_close"] - 1) * 100
    for n in (20, 30, 50, 200):
        out[f"sma_{n}"] = close.transform(lambda s, n=n: s.rolling(n, min_periods=n).mean())
    out["ema_20"] = close.transform(lambda s: s.ewm(span=20, adjust=False, min_periods=20).mean())
    std = close.transform(lambda s: s.rolling(20, min_periods=20).std(ddof=0))
    out["bb_middle"], out["bb_upper"], out["bb_lower"] = (
        out["sma_20"],
        out["sma_20"] + 2 * std,
        out["sma_20"] - 2 * std,
    )
    true_range = pd.concat(
        [
            bars["high"] - bars["low"],
            (bars["high"] - out["prev_close"]).abs(),
            (bars["low"] - out["prev_close"]).abs(),
        ],
        axis=1,
    ).max(axis=1)
    out["atr_14"] = true_range.groupby(bars["symbol"], sort=False).transform(
        lambda s: s.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    )
    change = close.diff()
    gain = (
        change.clip(lower=0)
        .groupby(bars["symbol"], sort=False)
        .transform(lambda s: s.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean())
    )
    loss = (
        (-change)
        .clip(lower=0)
        .groupby(bars["symbol"], sort=False)
        .transform(lambda s: s.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean())
    )
    out["rsi_14"] = 100 - 100 / (1 + gain / loss)
    out["high_52w"] = by["high"].transform(lambda s: s.rolling(252, min_periods=1).max())
    out["low_52w"] = by["low"].transform(lambda s: s.rolling(252, min_periods=1).min())
    pivot = (bars["high"] + bars["low"] + bars["close"]) / 3
    out["pivot_point"], out["r1"], out["s1"] = pivot, 2 * pivot - bars["low"], 2 * pivot - bars["high"]
    return out


def positioning(chain: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    live = chain[chain["expiration"] > day]
    sides = live.pivot_table(
        index="underlying",
        columns="option_type",
        values=["open_interest", "volume"],
        aggfunc="sum",
        fill_value=0,
    )
    out = pd.DataFrame(
        {
            "call_oi": sides[("open_interest", "C")],
            "put_oi": sides[("open_interest", "P")],
            "call_volume": sides[("volume", "C")],
            "put_volume": sides[("volume", "P")],
        }
    )
    out["pcr_oi"] = out["put_oi"] / out["call_oi"].replace(0, np.nan)
    out["pcr_volume"] = out["put_volume"] / out["call_volume"].replace(0, np.nan)
    spot = live.groupby("underlying")["underlying_price"].first()
    by_strike = live.groupby(["underlying", "option_type", "strike"], as_index=False)["open_interest"].sum()
    by_strike["distance"] = (by_strike["strike"] - by_strike["underlying"].map(spot)).abs()
    ranked = by_strike.sort_values(
        ["underlying", "option_type", "open_interest", "distance", "strike"],
        ascending=[True, True, False, True, True],
    )
    walls = ranked.groupby(["underlying", "option_type"]).head(1).set_index(["underlying", "option_type"])
    out["call_wall"] = walls.xs("C", level="option_type")["strike"]
    out["put_wall"] = walls.xs("P", level="option_type")["strike"]
    out["max_pain"] = max_pain(live, spot)
    out["spot"] = spot
    return out.reset_index()


def max_pain(live: pd.DataFrame, spot: pd.Series) -> pd.Series:
    """On each underlying's nearest expiration: the listed strike minimising the writers' payout."""
    nearest = live.groupby("underlying")["expiration"].transform("min")
    front = live.loc[live["expiration"] == nearest, ["underlying", "strike", "option_type", "open_interest"]]
    candidates = front[["underlying", "strike"]].drop_duplicates().rename(columns={"strike": "settle"})
    pairs = candidates.merge(front, on="underlying")
    call = pairs["option_type"] == "C"
    intrinsic = np.where(
        call,
        (pairs["settle"] - pairs["strike"]).clip(lower=0),
        (pairs["strike"] - pairs["settle"]).clip(lower=0),
    )
    pairs["pain"] = intrinsic * pairs["open_interest"]
    pain = pairs.groupby(["underlying", "settle"], as_index=False)["pain"].sum()
    pain["distance"] = (pain["settle"] - pain["underlying"].map(spot)).abs()
    best = pain.sort_values(["underlying", "pain", "distance", "settle"]).groupby("underlying").head(1)
    return best.set_index("underlying")["settle"]


def blocks(trades: pd.DataFrame) -> pd.DataFrame:
    trades = trades.assign(notional=trades["price"] * trades["size"] * 100)
    big = trades[(trades["notional"] >= BLOCK_NOTIONAL) | (trades["size"] >= BLOCK_SIZE)].copy()
    mid = (big["bid"] + big["ask"]) / 2
    big["side"] = np.select(
        [big["price"] >= big["ask"], big["price"] <= big["bid"], big["price"] > mid, big["price"] < mid],
        ["buy", "sell", "buy", "sell"],
        default="unknown",
    )
    return big


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("history", "bars", "chains", "trades", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    day_bars = pd.read_csv(args.bars, parse_dates=["date"])
    history = pd.read_parquet(args.history)
    bars = pd.concat([history[history["date"] < day_bars["date"].min()], day_bars], ignore_index=True)
    day = day_bars["date"].max()
    tech = technicals(bars)
    tech[tech["date"] == day].to_parquet(args.out / "technicals.parquet", index=False)

    chain = pd.read_csv(
        args.chains,
        parse_dates=["quote_date", "expiration"],
        dtype={"underlying": "string", "option_type": "string", "option_symbol": "string"},
    )
    positioning(chain, day).to_parquet(args.out / "positioning.parquet", index=False)

    trades = pd.read_csv(
        args.trades, dtype={"option_symbol": "string", "exchange": "string", "underlying": "string"}
    )
    blocks(trades).to_parquet(args.out / "blocks.parquet", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

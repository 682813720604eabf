"""Block trades and daily flow per underlying (pure), from silver prints and silver chains.

A print is a block when its notional (price * size * 100) reaches the notional threshold (default
$1,000,000) or its size reaches the size threshold (default 1,000 contracts). Its side follows the quote
rule: at or above the ask = buy, at or below the bid = sell, otherwise above the mid = buy, below the
mid = sell, at the mid = unknown; without both quotes the side is unknown.

Without prints the block tables are empty but typed. On a session with prints, ``flow_daily`` has a row
for every underlying with a chain that session, zeros when none of its prints was a block.
"""

from __future__ import annotations

import polars as pl

SESSION = ["trade_date", "underlying"]
CONTRACT_MULTIPLIER = 100
BLOCK_NOTIONAL = 1_000_000.0
BLOCK_SIZE = 1000
# Quotes and prices are dollars with at most 4 decimals; anything closer than this is the same price.
PRICE_TOLERANCE = 1e-9

BUY, SELL, UNKNOWN = "buy", "sell", "unknown"

BLOCKS_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "option_symbol": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "option_type": pl.String(),
    "size": pl.Int64(),
    "price": pl.Float64(),
    "notional": pl.Float64(),
    "side": pl.String(),
}
FLOW_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "block_count": pl.Int64(),
    "buy_block_count": pl.Int64(),
    "sell_block_count": pl.Int64(),
    "block_buy_notional": pl.Float64(),
    "block_sell_notional": pl.Float64(),
    "block_notional": pl.Float64(),
    "largest_block_symbol": pl.String(),
    "largest_block_notional": pl.Float64(),
    "largest_block_side": pl.String(),
    "unusual_contracts": pl.Int64(),
}
UNUSUAL_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "underlying": pl.String(),
    "option_symbol": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "option_type": pl.String(),
    "volume": pl.Int64(),
    "open_interest": pl.Int64(),
    "last": pl.Float64(),
    "volume_oi_ratio": pl.Float64(),
}
BLOCKS_COLUMNS = list(BLOCKS_SCHEMA)
FLOW_DAILY_COLUMNS = list(FLOW_DAILY_SCHEMA)
UNUSUAL_COLUMNS = list(UNUSUAL_SCHEMA)

# Unusual activity: volume > 500, open interest > 100, last > 0.10 and volume / OI >= 1.25.
UNUSUAL_MIN_VOLUME = 500
UNUSUAL_MIN_OI = 100
UNUSUAL_MIN_LAST = 0.10


def _expr(value: pl.Expr | str | float | None) -> pl.Expr:
    if isinstance(value, pl.Expr):
        return value
    if isinstance(value, str):
        return pl.col(value)
    return pl.lit(value, dtype=pl.Float64)


def classify_side(price: pl.Expr | str, bid: pl.Expr | str, ask: pl.Expr | str) -> pl.Expr:
    """The quote rule: 'buy' | 'sell' | 'unknown' (unknown when the bid or the ask is missing).

    Checked in order, so a locked quote (bid == ask) calls a print at that price a buy. The mid is
    compared as 2 * price against bid + ask, within PRICE_TOLERANCE, so no division is involved.
    """
    price, bid, ask = _expr(price), _expr(bid), _expr(ask)
    twice_price, quote_sum = price * 2, bid + ask
    return (
        pl.when(bid.is_null() | ask.is_null() | price.is_null())
        .then(pl.lit(UNKNOWN))
        .when(price >= ask - PRICE_TOLERANCE)
        .then(pl.lit(BUY))
        .when(price <= bid + PRICE_TOLERANCE)
        .then(pl.lit(SELL))
        .when(twice_price > quote_sum + 2 * PRICE_TOLERANCE)
        .then(pl.lit(BUY))
        .when(twice_price < quote_sum - 2 * PRICE_TOLERANCE)
        .then(pl.lit(SELL))
        .otherwise(pl.lit(UNKNOWN))
        .alias("side")
    )


def notional(price: pl.Expr | str = "price", size: pl.Expr | str = "size") -> pl.Expr:
    """price * size * 100 in dollars, rounded to cents so that $1,000,000 on paper is exactly 1e6."""
    return (_expr(price) * (_expr(size) * CONTRACT_MULTIPLIER).cast(pl.Float64)).round(2).alias("notional")


def blocks(
    trades: pl.LazyFrame, notional_threshold: float = BLOCK_NOTIONAL, size_threshold: int = BLOCK_SIZE
) -> pl.LazyFrame:
    """Block prints (notional >= notional_threshold or size >= size_threshold) with their side.

    ``trades``: silver prints (schemas.silver.Trades columns), already cleared of unknown or expired
    contracts. Sorted by session, underlying, time and symbol.
    """
    return (
        trades.with_columns(notional(), classify_side("price", "bid", "ask"))
        .filter((pl.col("notional") >= notional_threshold) | (pl.col("size") >= size_threshold))
        .select(*[pl.col(c).cast(t) for c, t in BLOCKS_SCHEMA.items()])
        .sort(["trade_date", "underlying", "ts", "option_symbol"], maintain_order=True)
    )


def _unusual() -> pl.Expr:
    # volume / OI >= 1.25 as 4 * volume >= 5 * OI: integer arithmetic, exact at the boundary.
    return (
        (pl.col("volume") > UNUSUAL_MIN_VOLUME)
        & (pl.col("open_interest") > UNUSUAL_MIN_OI)
        & (pl.col("last") > UNUSUAL_MIN_LAST)
        & (pl.col("volume") * 4 >= pl.col("open_interest") * 5)
    ).fill_null(False)


def unusual_contracts(chains: pl.LazyFrame) -> pl.LazyFrame:
    """Chain contracts with unusual activity: volume > 500, OI > 100, last > 0.10, volume/OI >= 1.25."""
    return (
        chains.filter(_unusual())
        .with_columns(
            (pl.col("volume").cast(pl.Float64) / pl.col("open_interest").cast(pl.Float64)).alias(
                "volume_oi_ratio"
            )
        )
        .select(*[pl.col(c).cast(t) for c, t in UNUSUAL_SCHEMA.items()])
        .sort(["trade_date", "underlying", "option_symbol"], maintain_order=True)
    )


def _of_largest_block(column: str) -> pl.Expr:
    # Largest first; ties go to the earlier print, then the lower symbol, so the pick is deterministic.
    order = [pl.col("notional"), pl.col("ts"), pl.col("option_symbol")]
    return pl.col(column).sort_by(order, descending=[True, False, False]).first()


def _cents_sum(money: pl.Expr) -> pl.Expr:
    return (money * 100.0).round(0).cast(pl.Int64).sum() * 0.01


def _block_aggregates() -> list[pl.Expr]:
    is_buy, is_sell = pl.col("side") == BUY, pl.col("side") == SELL
    return [
        pl.len().cast(pl.Int64).alias("block_count"),
        is_buy.sum().cast(pl.Int64).alias("buy_block_count"),
        is_sell.sum().cast(pl.Int64).alias("sell_block_count"),
        # Summed in whole cents (notional is rounded to cents): exact, whatever the row order or
        # sharding, where a float sum is not.
        _cents_sum(pl.col("notional").filter(is_buy)).alias("block_buy_notional"),
        _cents_sum(pl.col("notional").filter(is_sell)).alias("block_sell_notional"),
        _cents_sum(pl.col("notional")).alias("block_notional"),
        _of_largest_block("option_symbol").alias("largest_block_symbol"),
        _of_largest_block("notional").alias("largest_block_notional"),
        _of_largest_block("side").alias("largest_block_side"),
    ]


def flow_daily(
    blocks: pl.LazyFrame, chains: pl.LazyFrame, trades: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Block flow per (trade_date, underlying) on every session that had prints.

    Sessions with prints are those of ``blocks`` and of ``trades`` (silver prints; only trade_date is
    read); pass ``trades`` so a session whose prints held no block still gets its zero rows. On a
    session with prints every underlying with a chain has a row (counts and notionals 0,
    largest_block_* null), as has every underlying with a block; ``unusual_contracts`` counts that
    session's unusual chain contracts (null when the underlying has no chain that session).
    Without prints at all the result is empty, with FLOW_DAILY_SCHEMA's types.
    """
    sources = [blocks] if trades is None else [blocks, trades]
    print_days = pl.concat([lf.select(pl.col("trade_date").cast(pl.Date)) for lf in sources]).unique()
    typed_blocks = blocks.select(*[pl.col(c).cast(t) for c, t in BLOCKS_SCHEMA.items()])
    per_block = typed_blocks.group_by(SESSION).agg(_block_aggregates())
    unusual = (
        chains.join(print_days, on="trade_date", how="semi")
        .group_by(SESSION)
        .agg(_unusual().sum().cast(pl.Int64).alias("unusual_contracts"))
    )
    zeros = {
        "block_count": 0,
        "buy_block_count": 0,
        "sell_block_count": 0,
        "block_buy_notional": 0.0,
        "block_sell_notional": 0.0,
        "block_notional": 0.0,
    }
    return (
        unusual.join(per_block, on=SESSION, how="full", coalesce=True)
        .with_columns(*[pl.col(c).fill_null(v) for c, v in zeros.items()])
        .select(*[pl.col(c).cast(t) for c, t in FLOW_DAILY_SCHEMA.items()])
        .sort(SESSION, maintain_order=True)
    )


__all__ = [
    "BLOCKS_COLUMNS",
    "BLOCKS_SCHEMA",
    "BLOCK_NOTIONAL",
    "BLOCK_SIZE",
    "FLOW_DAILY_COLUMNS",
    "FLOW_DAILY_SCHEMA",
    "UNUSUAL_COLUMNS",
    "UNUSUAL_SCHEMA",
    "blocks",
    "classify_side",
    "flow_daily",
    "notional",
    "unusual_contracts",
]

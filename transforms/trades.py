"""Option trade prints, bronze -> silver (pure): OSI parts, underlying, the New York trade date.

A print's ``ts`` is UTC; its session is the New York calendar date of that instant (a print at
00:30 UTC on the 30th is a 19:30 New York print on the 29th). Validation lives in schemas.silver.Trades;
``unknown_or_expired`` adds the one check that needs the chain: does the printed contract exist that day?
"""

from __future__ import annotations

import polars as pl

from transforms.osi import (
    all_rows,
    format_osi,
    is_canonical_osi,
    is_fixed_osi,
    osi_part_names,
    parse_osi,
    with_fixed_osi_parts,
)
from transforms.silver import LINEAGE_COLUMNS

EXCHANGE_TZ = "America/New_York"
REASON = "_reason"  # the quarantine reason column (schemas.quarantine.REASON)
UNKNOWN_CONTRACT = "unknown_contract:option_symbol"
EXPIRED_CONTRACT = "expired_contract:expiration,trade_date"

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "ts": pl.Datetime("us", "UTC"),
    "option_symbol": pl.String(),
    "underlying": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "option_type": pl.String(),
    "price": pl.Float64(),
    "size": pl.Int64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "exchange": pl.String(),
}
TRADE_COLUMNS = list(TRADE_SCHEMA)


def session_date(ts: pl.Expr) -> pl.Expr:
    """The New York calendar date of a UTC timestamp."""
    return ts.dt.convert_time_zone(EXCHANGE_TZ).dt.date()


def _given(text: pl.Expr) -> pl.Expr:
    """The value, or null when it is empty or blank."""
    stripped = text.str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped.str.to_uppercase())


# Text that trimming and upper-casing leave as it is, and not empty: what vendors nearly always send.
_CLEAN_SYMBOL = r"^[A-Z0-9.\-]+$"


def _given_symbol(text: pl.Expr) -> pl.Expr:
    """_given for a symbol column: clean values are taken as they are, only the others are trimmed and
    upper-cased (one pattern test is cheaper than both passes over every row)."""
    clean = text.str.contains(_CLEAN_SYMBOL).fill_null(False)
    return pl.when(clean).then(text).otherwise(_given(pl.when(~clean).then(text)))


_OSI = "__osi_"  # prefix of the contract fields read from the symbol
_PART = osi_part_names(_OSI)
_PARSED = "__osi"


def silver_trades(bronze_trades: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze prints -> silver columns (schemas.silver.Trades) + lineage.

    option_symbol becomes the 21-char OSI form; a symbol that does not parse keeps its raw text (and its
    contract fields stay null) so validation quarantines it with what came in. The underlying is the
    row's own when given, else the OSI root. Any incoming trade_date (e.g. a hive partition column) is
    replaced by the session date of ``ts``.
    """
    # The usual file has only padded, compact or Polygon symbols: one pass by offsets over the rows in
    # place; otherwise the padded ones are split by offsets and the rest parsed and formatted.
    part = {name: pl.col(column) for name, column in _PART.items()}
    fixed = is_fixed_osi(pl.col("option_symbol"))
    parsed = (
        with_fixed_osi_parts(bronze_trades, "option_symbol", _OSI, padded=True)
        if all_rows(bronze_trades, fixed)
        else _parsed_by_spelling(bronze_trades)
    )
    return parsed.with_columns(
        session_date(pl.col("ts")).alias("trade_date"),
        pl.coalesce(_given_symbol(pl.col("underlying")), part["root"]).alias("underlying"),
        part["expiration"].alias("expiration"),
        part["strike"].alias("strike"),
        part["option_type"].alias("option_type"),
    ).select(*[pl.col(c).cast(t) for c, t in TRADE_SCHEMA.items()], *LINEAGE_COLUMNS)


def _parsed_by_spelling(bronze_trades: pl.LazyFrame) -> pl.LazyFrame:
    """with_fixed_osi_parts(..., padded=True) for any mix of spellings (rows reordered: padded first)."""
    part = {name: pl.col(column) for name, column in _PART.items()}
    osi = format_osi(part["root"], part["expiration"], part["option_type"], part["strike"])
    canonical = is_canonical_osi(pl.col("option_symbol"))
    return pl.concat(
        [
            with_fixed_osi_parts(bronze_trades.filter(canonical), "option_symbol", _OSI),
            # The struct is a column first: fields taken from the expression would parse once per field.
            bronze_trades.filter(~canonical)
            .with_columns(parse_osi(pl.col("option_symbol")).alias(_PARSED))
            .with_columns(_parts_of(pl.col(_PARSED)))
            .with_columns(pl.coalesce(osi, pl.col("option_symbol")).alias("option_symbol"))
            .drop(_PARSED),
        ]
    )


def _parts_of(parsed: pl.Expr) -> list[pl.Expr]:
    """parse_osi's struct as the plain columns with_fixed_osi_parts writes."""
    return [parsed.struct.field(name).alias(column) for name, column in _PART.items()]


def contract_reasons(trades: pl.LazyFrame, chains: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Every silver print with ``_reason``: why it names no live contract, null when it does.

    - ``expired_contract:expiration,trade_date``: the contract expired before the print's session (a
      stale symbol such as the press's ``IWM20250919C220`` printed on 2025-12-29). Checked first.
    - ``unknown_contract:option_symbol``: the session has a silver chain but the contract is not in it.
      A session without any chain rows is not judged (the chain may not have been delivered yet).

    ``chains`` needs trade_date and option_symbol (21-char OSI, as silver chains carry it).
    """
    # A membership test against the listed (session, symbol) pairs: cheaper than a join, and the prints
    # keep their order. The pairs are collected here because `is_in` needs them as a value.
    key = pl.struct("trade_date", "option_symbol")
    listed = chains.lazy().select(key.alias("key")).collect().get_column("key")
    chain_days = listed.struct.field("trade_date").unique()
    reason = (
        pl.when(pl.col("expiration") < pl.col("trade_date"))
        .then(pl.lit(EXPIRED_CONTRACT))
        .when(pl.col("trade_date").is_in(chain_days.implode()) & ~key.is_in(listed.implode()))
        .then(pl.lit(UNKNOWN_CONTRACT))
    )
    return trades.with_columns(reason.alias(REASON))


def unknown_or_expired(trades: pl.LazyFrame, chains: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """The prints `contract_reasons` rejects, with ``_reason``; the other prints are not returned."""
    return contract_reasons(trades, chains).filter(pl.col(REASON).is_not_null())


__all__ = [
    "EXPIRED_CONTRACT",
    "TRADE_COLUMNS",
    "TRADE_SCHEMA",
    "UNKNOWN_CONTRACT",
    "contract_reasons",
    "session_date",
    "silver_trades",
    "unknown_or_expired",
]

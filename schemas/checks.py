"""Patterns and row rules shared by the silver and gold models.

A rule that spans several columns is attached to ONE of its columns as a column check (pandera hands a
column check the whole frame), so pandera reports its failures with the row index and a one-column
failure case. Its ``error`` is the full quarantine reason, ``<rule>:<col>,<col>``; a one-column check's
reason is ``<check>:<column>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # pandera costs a second to import: the CLI checks symbols with this module without it
    from pandera.api.polars.types import PolarsData

# Symbols end up in partition paths and SQL, so anything outside this is hostile or a vendor typo.
# Lowercase is normalised upstream, so it is invalid here.
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,9}$"


def checked_symbols(symbols: Iterable[str]) -> list[str]:
    """Upper-cased (surrounding blanks dropped), de-duplicated and sorted. Anything outside
    SYMBOL_PATTERN raises ValueError naming it: refused, not cleaned."""
    cleaned = [str(s).strip().upper() for s in symbols]
    bad = [s for s in cleaned if not re.fullmatch(SYMBOL_PATTERN, s)]
    if bad or not cleaned:
        raise ValueError(f"invalid symbol(s) {bad or cleaned!r}: symbols must match {SYMBOL_PATTERN}")
    return sorted(set(cleaned))


# The canonical 21-char OSI form: root (1-6, letter first) left-justified in 6, YYMMDD, C|P, strike*1000.
OSI21_PATTERN = r"^[A-Z][A-Z0-9]{0,5} {0,5}[0-9]{6}[CP][0-9]{8}$"

SYMBOL_RULE = "symbol_pattern"
OSI_RULE = "osi_symbol"
OPTION_TYPE_RULE = "isin(C,P)"


def reason(rule: str, *columns: str) -> str:
    """The quarantine reason of a multi-column rule: ``rule:col1,col2``."""
    return f"{rule}:{','.join(columns)}"


def rows(data: PolarsData, passes: pl.Expr) -> pl.LazyFrame:
    """One boolean per row (null = not judged here, e.g. a null input caught by not_nullable)."""
    return data.lazyframe.select(passes.alias(data.key))


def symbol_ok(column: str) -> pl.Expr:
    return pl.col(column).str.contains(SYMBOL_PATTERN)


def osi21_ok(column: str) -> pl.Expr:
    symbol = pl.col(column)
    return symbol.str.contains(OSI21_PATTERN) & (symbol.str.len_bytes() == 21)


def le_tol(smaller: str, larger: str) -> pl.Expr:
    """smaller <= larger, forgiving float round-off between values computed by different formulas."""
    slack = 1e-9 * pl.max_horizontal(pl.lit(1.0), pl.col(larger).abs())
    return pl.col(smaller) <= pl.col(larger) + slack

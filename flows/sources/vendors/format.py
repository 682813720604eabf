"""A vendor format is a declaration (`VendorFormat`), read by one conformer (`VendorFormat.conform`).

The declaration says how to recognise a landing file's header and how its columns become the canonical
landing columns (SPEC 3): which vendor column feeds each canonical one, how the vendor writes dates,
which vendor words mean what (``call`` -> ``C``), and which values are the vendor's "none" (a close of
0 for a contract that did not trade, an IV of 0 it did not compute). A convention that is not a mapping
(a quote date taken from the trade timestamps, a symbol from the file name) is a small named function
in the column map.

The conformer moves text, it does not judge it: a value it cannot read (an unparsable date, a strike of
``n/a``) is passed on as it came, so typing names it and validation quarantines the row with what came
in. Typing, parse errors and validation then run exactly as for canonical files (flows/sources/files.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from transforms.osi import normalize_osi

NY = "America/New_York"
MISSING_WORDS = ["", "NAN", "NONE", "NULL", "NAT", "NA", "N/A"]


class Columns:
    """Column access on a text frame where optional columns may be absent (then null)."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self.names = set(lf.collect_schema().names())

    def raw(self, name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in self.names else pl.lit(None, dtype=pl.String)

    def value(self, name: str) -> pl.Expr:
        """Trimmed text; null when absent, empty or a missing-value word (NaN, None, NaT, ...)."""
        text = self.raw(name).str.strip_chars()
        return pl.when(~text.str.to_uppercase().is_in(MISSING_WORDS)).then(text)


# A derived canonical column: (the file's columns, the file's path when known) -> text expression.
Derive = Callable[[Columns, Path | None], pl.Expr]


def number(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().cast(pl.Float64, strict=False)


def as_date(text: pl.Expr, formats: tuple[str, ...] = ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d")) -> pl.Expr:
    """A calendar date in the given forms (ISO may carry a time after the date)."""
    text = text.str.strip_chars()
    return pl.coalesce(
        *[
            (text.str.slice(0, 10) if fmt == "%Y-%m-%d" else text).str.to_date(fmt, strict=False)
            for fmt in formats
        ]
    )


def iso(day: pl.Expr) -> pl.Expr:
    return day.dt.strftime("%Y-%m-%d")


def ticker(text: pl.Expr) -> pl.Expr:
    """A vendor's symbol: upper case, without the index caret (^SPX -> SPX)."""
    return text.str.strip_chars().str.to_uppercase().str.strip_prefix("^")


@dataclass(frozen=True)
class VendorFormat:
    """One landing format. Header names are compared lower-cased and trimmed (as the reader gives them).

    name: ``<vendor>-<dataset>``; ``--format <vendor>`` selects it.
    header: columns a file must have to be this format; header_any: and all of at least one of these
      groups; header_none: and none of these (a canonical file that happens to share the rest).
    columns: canonical landing column -> the vendor column, a tuple of vendor columns (the first given
      wins), or a Derive function for a convention that is not a column.
    together: canonical columns that come from the same alternative of their tuples (a quote's bid and
      ask from one snapshot): the first alternative where all of them are given.
    dates/date_formats: canonical columns holding dates and the forms the vendor writes them in; they
      become ISO text.
    values: canonical column -> {vendor word (any case): canonical text}.
    tickers: canonical columns holding a vendor symbol (upper-cased, a leading ``^`` dropped).
    osi: canonical columns holding an OSI symbol in any spelling, emitted in the 21-char form.
    when_missing: canonical column -> the text an empty value means (Yahoo omits zero open interest).
    zero_means_none: canonical columns where 0 is the vendor's "none" (a close for no trade).
    not_computed: IV column -> the columns that mean nothing without it: a non-positive or non-finite
      IV is the vendor's "not computed"; it and those columns become empty.
    """

    name: str
    dataset: str
    header: frozenset[str]
    columns: Mapping[str, str | tuple[str, ...] | Derive]
    header_any: tuple[frozenset[str], ...] = ()
    header_none: frozenset[str] = frozenset()
    together: tuple[tuple[str, ...], ...] = ()
    dates: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tickers: tuple[str, ...] = ()
    osi: tuple[str, ...] = ()
    when_missing: Mapping[str, str] = field(default_factory=dict)
    zero_means_none: tuple[str, ...] = ()
    not_computed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def detect(self, columns: set[str]) -> bool:
        return (
            self.header <= columns
            and not self.header_none & columns
            and (not self.header_any or any(group <= columns for group in self.header_any))
        )

    def conform(self, lf: pl.LazyFrame, path: Path | None = None) -> pl.LazyFrame:
        """A landing file's all-text frame -> the canonical landing columns this format gives, as text."""
        c = Columns(lf)
        out: dict[str, pl.Expr] = {}
        for column, source in self.columns.items():
            if callable(source):
                out[column] = source(c, path)
            else:
                sources = (source,) if isinstance(source, str) else source
                out[column] = (
                    pl.coalesce(*[c.value(s) for s in sources]) if len(sources) > 1 else c.value(sources[0])
                )
        for group in self.together:
            alternatives = list(zip(*[self.columns[column] for column in group], strict=True))
            for column in group:
                at = group.index(column)
                chosen = pl.when(pl.all_horizontal([c.value(s).is_not_null() for s in alternatives[0]]))
                chosen = chosen.then(c.value(alternatives[0][at]))
                for alternative in alternatives[1:-1]:
                    chosen = chosen.when(pl.all_horizontal([c.value(s).is_not_null() for s in alternative]))
                    chosen = chosen.then(c.value(alternative[at]))
                out[column] = chosen.otherwise(c.value(alternatives[-1][at]))
        for column, text in self.when_missing.items():
            out[column] = pl.coalesce(out[column], pl.lit(text))
        for column, words in self.values.items():
            lower = out[column].str.to_lowercase()
            mapping = {k.lower(): v for k, v in words.items()}
            out[column] = (
                pl.when(lower.is_in(list(mapping)))
                .then(lower.replace_strict(mapping, default=None, return_dtype=pl.String))
                .otherwise(out[column])
            )
        for column in self.dates:
            out[column] = pl.coalesce(iso(as_date(out[column], self.date_formats)), out[column])
        for column in self.zero_means_none:
            out[column] = pl.when(number(out[column]).fill_null(1.0) != 0).then(out[column])
        for column in self.tickers:
            out[column] = ticker(out[column])
        for column in self.osi:
            out[column] = pl.coalesce(normalize_osi(out[column]), out[column])
        for iv, blanks in self.not_computed.items():
            value = number(out[iv])
            # Text that does not read as a number is no verdict: it is passed on and quarantined as it came.
            computed = (value.is_finite() & (value > 0)) | value.is_null()
            for column in (iv, *blanks):
                out[column] = pl.when(computed).then(out[column])
        return lf.select([expr.cast(pl.String).alias(column) for column, expr in out.items()])


def file_symbol(path: Path | None) -> str | None:
    """The symbol a file is named for: the part before the first ``_`` or ``.``, upper-cased, a leading
    ``^`` dropped (``SPX.csv``, ``spx_daily.csv.gz``, ``^SPX.csv`` -> SPX)."""
    if path is None:
        return None
    stem = path.name.split(".", 1)[0].split("_", 1)[0].strip().upper().removeprefix("^")
    return stem or None

"""Landing files: discovery, format detection, reading with explicit types, conforming to bronze.

Every CSV value is read as text and parsed here with explicit rules: inference guesses wrong on real
files (a gamma column of `0` then `0.000001`). A value that does not parse becomes NULL and its column
is named in `_parse_errors`, so validation quarantines the row instead of the reader failing the file.
A file that is unreadable, lacks a required column, or has a column where no value parses fails the
run with one line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from transforms.trades import session_date

DATASETS = ("bars", "chains", "trades")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


class SourceError(Exception):
    """A landing file the run cannot use; the message is one line naming the file and the problem.

    `transient`: the file may still be arriving (unreadable, truncated); a retry can succeed.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Field:
    name: str  # canonical bronze name
    kind: str  # date | datetime | float | int | symbol | option_type | text
    required: bool = True


# Canonical landing columns (SPEC 3) -> bronze columns. `date`/`quote_date` become `trade_date`.
FIELDS: dict[str, dict[str, Field]] = {
    "bars": {
        "date": Field("trade_date", "date"),
        "symbol": Field("symbol", "symbol"),
        "open": Field("open", "float"),
        "high": Field("high", "float"),
        "low": Field("low", "float"),
        "close": Field("close", "float"),
        "volume": Field("volume", "int"),
        "adj_close": Field("adj_close", "float", required=False),
    },
    "chains": {
        "quote_date": Field("trade_date", "date"),
        "underlying": Field("underlying", "symbol"),
        "expiration": Field("expiration", "date"),
        "strike": Field("strike", "float"),
        "option_type": Field("option_type", "option_type"),
        "open_interest": Field("open_interest", "int"),
        "volume": Field("volume", "int"),
        "bid": Field("bid", "float"),
        "ask": Field("ask", "float"),
        "last": Field("last", "float", required=False),
        "implied_volatility": Field("implied_volatility", "float", required=False),
        "delta": Field("delta", "float", required=False),
        "gamma": Field("gamma", "float", required=False),
        "underlying_price": Field("underlying_price", "float", required=False),
        "option_symbol": Field("option_symbol", "text", required=False),
    },
    "trades": {
        "ts": Field("ts", "datetime"),
        "option_symbol": Field("option_symbol", "text"),
        "price": Field("price", "float"),
        "size": Field("size", "int"),
        "bid": Field("bid", "float", required=False),
        "ask": Field("ask", "float", required=False),
        "exchange": Field("exchange", "text", required=False),
        "underlying": Field("underlying", "symbol", required=False),
    },
}
KIND_DTYPES: dict[str, pl.DataType] = {
    "date": pl.Date(), "datetime": pl.Datetime("us", "UTC"), "float": pl.Float64(), "int": pl.Int64(),
    "symbol": pl.String(), "option_type": pl.String(), "text": pl.String(),
}
LINEAGE: dict[str, pl.DataType] = {
    "_source_file": pl.String(), "_source_row": pl.Int64(), "_ingested_at": pl.Datetime("us", "UTC"),
    "_parse_errors": pl.String(),
}


def bronze_schema(dataset: str) -> dict[str, pl.DataType]:
    # Prints carry a timestamp, not a date: their partition is the New York session date of `ts`.
    session = {"trade_date": pl.Date()} if dataset == "trades" else {}
    return session | {f.name: KIND_DTYPES[f.kind] for f in FIELDS[dataset].values()} | LINEAGE


@dataclass(frozen=True)
class Adapter:
    """A landing format: how to recognise its header and map it to the canonical columns."""

    name: str
    dataset: str
    detect: Callable[[set[str]], bool]
    conform: Callable[[pl.LazyFrame], pl.LazyFrame]  # all-text frame in, canonical all-text frame out


def _canonical(dataset: str) -> Adapter:
    required = {c for c, f in FIELDS[dataset].items() if f.required}
    return Adapter(f"canonical-{dataset}", dataset, lambda cols: required <= cols, lambda lf: lf)


# Vendor formats register here (detected in order; canonical last so it is the fallback).
ADAPTERS: list[Adapter] = []


def adapters_for(dataset: str) -> list[Adapter]:
    # Imported here, not at the top: flows.sources_vendors imports Adapter from this module.
    from flows.sources_vendors import VENDOR_ADAPTERS

    return [a for a in [*ADAPTERS, *VENDOR_ADAPTERS] if a.dataset == dataset] + [_canonical(dataset)]


def detect_format(dataset: str, columns: set[str], path: Path, explicit: str | None = None) -> Adapter:
    candidates = adapters_for(dataset)
    if explicit:
        for adapter in candidates:
            if adapter.name in (explicit, f"{explicit}-{dataset}"):
                return adapter
        raise SourceError(f"{path}: unknown format {explicit!r} for {dataset} "
                          f"(known: {', '.join(a.name for a in candidates)})")
    for adapter in candidates:
        if adapter.detect(columns):
            return adapter
    missing = sorted(c for c, f in FIELDS[dataset].items() if f.required and c not in columns)
    raise SourceError(f"{path}: missing required column(s) {', '.join(missing)} for {dataset}")


def landing_files(landing: Path, dataset: str) -> list[Path]:
    folder = landing / dataset
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(SUFFIXES))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text_frame(path: Path) -> pl.DataFrame:
    """The file with every column as text and lower-cased, trimmed header names."""
    try:
        if path.name.lower().endswith(".parquet"):
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.all().cast(pl.String))
        else:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=False)
    except Exception as exc:  # noqa: BLE001 - polars/arrow raise many kinds; the user needs the file and why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: unreadable: {first}", transient=True) from None
    return frame.rename({c: c.strip().lower() for c in frame.columns})


def _parse(kind: str, raw: pl.Expr) -> pl.Expr:
    text = raw.str.strip_chars()
    if kind == "float":
        return text.cast(pl.Float64, strict=False)
    if kind == "int":
        number = text.cast(pl.Float64, strict=False)
        return pl.when(number == number.round(0)).then(number).cast(pl.Int64, strict=False)
    if kind == "date":
        return pl.coalesce(
            text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
            text.str.to_date("%m/%d/%Y", strict=False),
            text.str.to_date("%Y%m%d", strict=False),
        )
    if kind == "datetime":
        # ISO timestamps with an offset or Z are exact; naive ones are exchange time (New York).
        with_zone = text.str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d):?(\d\d)$", "$1$2")
        def zoned(fmt: str) -> pl.Expr:
            return with_zone.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")
        def naive(fmt: str) -> pl.Expr:
            return (text.str.to_datetime(fmt, strict=False, time_unit="us")
                    .dt.replace_time_zone("America/New_York", ambiguous="earliest", non_existent="null")
                    .dt.convert_time_zone("UTC"))
        return pl.coalesce(zoned("%Y-%m-%dT%H:%M:%S%.f%z"), zoned("%Y-%m-%d %H:%M:%S%.f%z"),
                           naive("%Y-%m-%d %H:%M:%S%.f"), naive("%Y-%m-%dT%H:%M:%S%.f"))
    if kind == "symbol":
        return text.str.to_uppercase()
    if kind == "option_type":
        upper = text.str.to_uppercase()
        return pl.when(upper.is_in(["C", "CALL"])).then(pl.lit("C")).when(upper.is_in(["P", "PUT"])).then(
            pl.lit("P")).otherwise(upper)
    return text


def conform(frame: pl.DataFrame, dataset: str, path: Path, source_file: str, ingested_at: datetime,
            explicit_format: str | None = None) -> tuple[pl.DataFrame, str]:
    """A landing file's text frame -> typed bronze rows with lineage; also the detected format name."""
    adapter = detect_format(dataset, set(frame.columns), path, explicit_format)
    canonical = adapter.conform(frame.lazy()).collect()
    missing = [c for c, f in FIELDS[dataset].items() if f.required and c not in canonical.columns]
    if missing:
        raise SourceError(f"{path}: missing required column(s) {', '.join(missing)} for {dataset}")
    fields = FIELDS[dataset]
    raw_cols = {c: (pl.col(c) if c in canonical.columns else pl.lit(None, dtype=pl.String)) for c in fields}
    typed = canonical.lazy().select(
        *[_parse(f.kind, raw_cols[c].cast(pl.String)).cast(KIND_DTYPES[f.kind]).alias(f.name)
          for c, f in fields.items()],
        *[(raw_cols[c].cast(pl.String).str.strip_chars().str.len_chars().fill_null(0) > 0).alias(f"__given_{c}")
          for c in fields],
    ).collect()
    failed = {c: (pl.col(f"__given_{c}") & pl.col(f.name).is_null()) for c, f in fields.items()}
    counts = typed.select(
        *[e.sum().alias(c) for c, e in failed.items()], *[pl.col(f"__given_{c}").sum().alias(f"n_{c}") for c in fields]
    ).row(0, named=True)
    for column, field in fields.items():
        given, bad = counts[f"n_{column}"], counts[column]
        if given and bad == given and len(typed) > 1:
            sample = canonical.get_column(column).drop_nulls().head(1).to_list() if column in canonical.columns else []
            raise SourceError(f"{path}: column {column!r} has no value readable as {field.kind}"
                              f" (e.g. {sample[0]!r})" if sample else f"{path}: column {column!r} is unreadable")
    parse_errors = pl.concat_list([pl.when(e).then(pl.lit(c)) for c, e in failed.items()]).list.drop_nulls()
    if dataset == "trades":
        typed = typed.with_columns(session_date(pl.col("ts")).alias("trade_date"))
    bronze = typed.with_columns(
        pl.when(parse_errors.list.len() > 0).then(parse_errors.list.join(",")).alias("_parse_errors"),
        pl.lit(source_file).alias("_source_file"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_source_row"),
        pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )
    return bronze.select(list(bronze_schema(dataset))), adapter.name


def now_utc() -> datetime:
    return datetime.now(UTC)

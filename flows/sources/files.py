"""Landing files: discovery, format detection, reading with explicit types, conforming to bronze.

Every CSV value is read as text and parsed here with explicit rules: inference guesses wrong on real
files (a gamma column of `0` then `0.000001`). A value that does not parse becomes NULL and its column
is named in `_parse_errors`, so validation quarantines the row instead of the reader failing the file.
A file that is unreadable, lacks a required column, or has a column where no value parses fails the
run with one line naming the file and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from flows.errors import ChainsignalsError
from flows.sources.vendors import VENDOR_FORMATS, VendorFormat
from transforms.trades import EXCHANGE_TZ, session_date

DATASETS = ("bars", "chains", "trades")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


class SourceError(ChainsignalsError):
    """A landing file (`file`) the run cannot use; the message is one line naming the file and the problem.

    `transient`: the file may still be arriving (unreadable, truncated); a retry can succeed.
    """

    def __init__(self, message: str, *, transient: bool = False, **context) -> None:
        super().__init__(message, **context)
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
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "symbol": pl.String(),
    "option_type": pl.String(),
    "text": pl.String(),
}
LINEAGE: dict[str, pl.DataType] = {
    "_source_file": pl.String(),
    "_source_row": pl.Int64(),
    "_ingested_at": pl.Datetime("us", "UTC"),
    "_parse_errors": pl.String(),
}


def bronze_schema(dataset: str) -> dict[str, pl.DataType]:
    # Prints carry a timestamp, not a date: their partition is the New York session date of `ts`.
    session = {"trade_date": pl.Date()} if dataset == "trades" else {}
    return session | {f.name: KIND_DTYPES[f.kind] for f in FIELDS[dataset].values()} | LINEAGE


def _canonical(dataset: str) -> VendorFormat:
    """The canonical landing columns as a format: already canonical, so conforming them is the identity
    (the full-market chain takes no extra pass)."""
    required = frozenset(c for c, f in FIELDS[dataset].items() if f.required)
    return _CanonicalFormat(f"canonical-{dataset}", dataset, required, {c: c for c in FIELDS[dataset]})


class _CanonicalFormat(VendorFormat):
    def conform(self, lf: pl.LazyFrame, path: Path | None = None) -> pl.LazyFrame:
        return lf


# Vendor formats in detection order (flows/sources/vendors/); the canonical columns come last, as the fallback.
ADAPTERS: list[VendorFormat] = list(VENDOR_FORMATS)
for _format in ADAPTERS:  # a declaration naming a column the dataset does not have is a bug: say so at import
    if not set(_format.columns) <= set(FIELDS[_format.dataset]):
        raise ValueError(
            f"vendor format {_format.name}: columns {sorted(set(_format.columns) - set(FIELDS[_format.dataset]))} "
            f"are not canonical {_format.dataset} columns ({', '.join(FIELDS[_format.dataset])})"
        )


def adapters_for(dataset: str) -> list[VendorFormat]:
    return [a for a in ADAPTERS if a.dataset == dataset] + [_canonical(dataset)]


def detect_format(dataset: str, columns: set[str], path: Path, explicit: str | None = None) -> VendorFormat:
    candidates = adapters_for(dataset)
    if explicit:
        for adapter in candidates:
            if adapter.name in (explicit, f"{explicit}-{dataset}"):
                return adapter
        raise SourceError(
            f"{path}: unknown format {explicit!r} for {dataset} "
            f"(known: {', '.join(a.name for a in candidates)})",
            file=path,
            dataset=dataset,
        )
    for adapter in candidates:
        if adapter.detect(columns):
            return adapter
    missing = sorted(c for c, f in FIELDS[dataset].items() if f.required and c not in columns)
    raise SourceError(
        f"{path}: missing required column(s) {', '.join(missing)} for {dataset}", file=path, dataset=dataset
    )


def landing_files(landing: Path, dataset: str, hidden: list[Path] | None = None) -> list[Path]:
    """The dataset's landing files. Hidden ones (a leading dot, as copy tools name a file in transit)
    are skipped and appended to `hidden` for the run summary. A symbolic link leading out of landing
    is refused: the run reads what landing holds, not what a link points at elsewhere."""
    folder = landing / dataset
    if not folder.is_dir():
        return []
    root = landing.resolve()
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.name.lower().endswith(SUFFIXES) or not path.is_file():
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            if hidden is not None:
                hidden.append(path)
            continue
        target = path.resolve()
        if not target.is_relative_to(root):
            raise SourceError(
                f"{path}: a symbolic link to {target}, outside landing ({root}): refused "
                "(copy the file into landing instead)",
                file=path,
            )
        found.append(path)
    return found


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# A file whose status changed this little before it was hashed may change again within the same tick of
# a coarse filesystem clock and keep its ctime: its digest is not reused (git's "racy" index entries).
RACY_SECONDS = 2.0
IDENTITY_COLUMNS = ("size", "mtime_ns", "ctime_ns", "inode")
"""What the manifest records of a landing file's status when its sha256 was taken."""


def file_identity(stat: os.stat_result, hashed_at: float) -> dict[str, int | None]:
    """A landing file's status as the manifest records it beside its sha256. ctime and inode are kept only
    when the file had been still for RACY_SECONDS at `hashed_at` (a time.time() before the read): without
    them the digest is never reused."""
    still = stat.st_ctime_ns < (hashed_at - RACY_SECONDS) * 1e9
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns if still else None,
        "inode": stat.st_ino if still else None,
    }


def known_digest(stat: os.stat_result, recorded: dict | None) -> str | None:
    """The sha256 the manifest `recorded` for this file when its status proves the content unchanged: the
    same inode, size, mtime and ctime. Nothing sets ctime back (any write, rename over the file, or
    mtime change sets it to now), so a corrected file that keeps its size and mtime still differs. None:
    the file must be hashed."""
    if not recorded or recorded.get("ctime_ns") is None or not recorded.get("sha256"):
        return None
    now = file_identity(stat, float("inf"))
    if all(recorded.get(column) == now[column] for column in IDENTITY_COLUMNS):
        return recorded["sha256"]
    return None


def landing_digest(path: Path, recorded: dict | None) -> tuple[str, dict[str, int | None]]:
    """The sha256 of a landing file and its status (`file_identity`): the manifest's digest when the
    status proves the file unchanged, else the file read and hashed."""
    stat = path.stat()
    known = known_digest(stat, recorded)
    if known:
        return known, {column: recorded[column] for column in IDENTITY_COLUMNS}
    started = time.time()
    digest = file_digest(path)
    return digest, identity_between(stat, path.stat(), started)


def identity_between(before: os.stat_result, after: os.stat_result, started: float) -> dict[str, int | None]:
    """file_identity of a file read between two stats, the read begun at `started` (time.time()); without
    ctime and inode when the file changed meanwhile."""
    identity = file_identity(after, started)
    if file_status(before) != file_status(after):
        identity |= {"ctime_ns": None, "inode": None}  # written to while read: hashed again next time
    return identity


def file_status(stat: os.stat_result) -> tuple[int, int, int, int]:
    """Size, mtime, ctime and inode: equal before and after a read, nothing wrote the file meanwhile."""
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


class TooLargeError(SourceError):
    """A landing file over the per-file limit of decompressed bytes; not retried."""


def check_size(path: Path, max_bytes: int | None, shown: Path | None = None) -> None:
    """Refuse a plain (not gzip) file over `max_bytes` before anything reads or copies it."""
    if path.name.lower().endswith(".gz"):
        return
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise TooLargeError(
            f"{shown or path}: {size:,} bytes, over the {max_bytes:,}-byte limit per file "
            "([ingest] max_file_bytes): refused",
            file=shown or path,
        )


def _bounded_source(path: Path, max_bytes: int | None, shown: Path | None = None) -> Path | bytes:
    """What polars reads: the path itself (a plain file within the limit), or a gzip file's content,
    decompressed here a block at a time and refused as soon as it passes `max_bytes` (a gzip bomb
    never expands in memory beyond the limit)."""
    if not path.name.lower().endswith(".gz"):
        check_size(path, max_bytes, shown)
        return path
    out = bytearray()
    with gzip.open(path, "rb") as stream:
        while block := stream.read(1 << 24):
            out += block
            if max_bytes is not None and len(out) > max_bytes:
                raise TooLargeError(
                    f"{shown or path}: decompresses to more than {max_bytes:,} bytes ([ingest] "
                    "max_file_bytes): refused",
                    file=shown or path,
                )
    return bytes(out)


def _read_csv_text(path: Path | bytes) -> pl.DataFrame:
    """Every column as text; bytes that are not UTF-8 become U+FFFD. Strict UTF-8 is read first (it is
    faster and, for a valid file, gives the same frame); only a file it refuses is read again lossily.
    A path is a path, never a glob pattern (`bars [final].csv`, a file named `bars_*.csv`)."""
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=False, glob=False)
    except Exception:
        return pl.read_csv(
            path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=False, glob=False
        )


def read_text_frame(path: Path, max_bytes: int | None = None, shown: Path | None = None) -> pl.DataFrame:
    """The file with every column as text and lower-cased, trimmed header names. `max_bytes`: the
    most (decompressed) bytes the file may hold; a larger one is refused, naming it. `shown`: the name
    messages give (the landing file, when `path` is its bronze copy)."""
    try:
        if path.name.lower().endswith(".parquet"):
            _bounded_source(path, max_bytes, shown)
            frame = pl.read_parquet(path, glob=False)
            frame = frame.with_columns(pl.all().cast(pl.String))
        else:
            frame = _read_csv_text(_bounded_source(path, max_bytes, shown))
    except TooLargeError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(
            f"{shown or path}: unreadable: {first}", transient=True, file=shown or path
        ) from None
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
            return (
                text.str.to_datetime(fmt, strict=False, time_unit="us")
                .dt.replace_time_zone("America/New_York", ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )

        return pl.coalesce(
            zoned("%Y-%m-%dT%H:%M:%S%.f%z"),
            zoned("%Y-%m-%d %H:%M:%S%.f%z"),
            naive("%Y-%m-%d %H:%M:%S%.f"),
            naive("%Y-%m-%dT%H:%M:%S%.f"),
        )
    if kind == "symbol":
        return text.str.to_uppercase()
    if kind == "option_type":
        upper = text.str.to_uppercase()
        return (
            pl.when(upper.is_in(["C", "CALL"]))
            .then(pl.lit("C"))
            .when(upper.is_in(["P", "PUT"]))
            .then(pl.lit("P"))
            .otherwise(upper)
        )
    return text


def _fast(kind: str, raw: pl.Expr, shape: _Shape | None) -> pl.Expr:
    """An expression equal to `_parse(kind, raw)` wherever it is not null, and cheaper on clean text.

    Where it is null and the raw value is not, `conform` evaluates `_parse` on just those rows, so the
    result is `_parse`'s by construction; the fast forms only have to be exact where they give a value.
    """
    if kind == "float":
        # The float parser rejects surrounding whitespace, so a value means the text was already trimmed.
        return raw.cast(pl.Float64, strict=False)
    if kind == "int":
        # Integer text within 2^53 is the integral float `_parse` reads; beyond, `_parse` rounds via float.
        number = raw.cast(pl.Int64, strict=False)
        return pl.when(number.is_between(-_EXACT_INT, _EXACT_INT)).then(number)
    if kind == "date":  # exactly ten characters: nothing for `_parse` to trim or cut
        return pl.when(raw.str.len_bytes() == 10).then(raw.str.to_date("%Y-%m-%d", strict=False))
    if kind == "datetime":
        return shape.expr(raw) if shape else pl.repeat(None, pl.len(), dtype=KIND_DTYPES[kind])
    if kind == "option_type":  # already C or P; CALL, " p" and the like are mapped by `_parse`
        return pl.when(raw.is_in(["C", "P"])).then(raw)
    if kind == "symbol":  # nothing to trim or upper-case
        return pl.when(raw.str.contains(r"^[A-Z0-9._/^=-]+$")).then(raw)
    return _parse(kind, raw)  # text: never null for a value


_EXACT_INT = 2**53
# ISO timestamp forms a file is likely to use throughout: separator, fraction digits, zone suffix.
_SHAPE = re.compile(
    r"[12][0-9]{3}-[0-9]{2}-[0-9]{2}([T ])[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{1,6}))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2}|[+-][0-9]{4})?"
)
_SUFFIX_PATTERNS = {
    "": "",
    "Z": "Z",
    "+hh:mm": "[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]",
    "+hhmm": "[+-](?:[01][0-9]|2[0-3])[0-5][0-9]",
}


@dataclass(frozen=True)
class _Shape:
    """One fixed-width timestamp form, parsed by position after a strict anchored regex match.

    The regex is matched against the untrimmed text (padded values go to `_parse`) and admits only
    in-range fields (no leap second, no 24:00, offsets under 24h, at most 6 fraction digits, so
    microseconds are exact); an impossible date (Feb 30) or a New York time in the spring-forward gap
    gives null and goes to `_parse` like any other miss.
    """

    sep: str
    digits: int  # fraction digits, 0 for none
    suffix: str  # "" (naive New York time), "Z", "+hh:mm", "+hhmm"

    @classmethod
    def detect(cls, values: list[str]) -> _Shape | None:
        """The most common form among sample values (trimmed, non-empty), if any has one."""
        shapes: dict[_Shape, int] = {}
        for value in values:
            match = _SHAPE.fullmatch(value)
            if match:
                sep, fraction, zone = match.groups()
                suffix = "" if zone is None else "Z" if zone == "Z" else "+hh:mm" if ":" in zone else "+hhmm"
                shape = cls(sep, len(fraction or ""), suffix)
                shapes[shape] = shapes.get(shape, 0) + 1
        return max(shapes, key=shapes.__getitem__) if shapes else None

    def expr(self, raw: pl.Expr) -> pl.Expr:
        pattern = (
            "^[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
            + self.sep
            + "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
            + (rf"\.[0-9]{{{self.digits}}}" if self.digits else "")
            + _SUFFIX_PATTERNS[self.suffix]
            + "$"
        )
        seconds = raw.str.slice(0, 19).str.to_datetime(
            f"%Y-%m-%d{self.sep}%H:%M:%S", strict=False, time_unit="us"
        )
        micros = seconds.cast(pl.Int64)
        if self.digits:
            micros = micros + raw.str.slice(20, self.digits).cast(pl.Int64, strict=False) * 10 ** (
                6 - self.digits
            )
        at = 19 + (self.digits + 1 if self.digits else 0)  # where the zone suffix starts
        if self.suffix in ("+hh:mm", "+hhmm"):
            minutes_at = at + (4 if self.suffix == "+hh:mm" else 3)
            offset = (
                raw.str.slice(at + 1, 2).cast(pl.Int64, strict=False) * 3600
                + raw.str.slice(minutes_at, 2).cast(pl.Int64, strict=False) * 60
            ) * 1_000_000
            micros = micros - pl.when(raw.str.slice(at, 1) == "-").then(-offset).otherwise(offset)
        local = micros.cast(pl.Datetime("us"))
        if self.suffix:
            instant = local.dt.replace_time_zone("UTC")
        else:
            instant = local.dt.replace_time_zone(
                "America/New_York", ambiguous="earliest", non_existent="null"
            ).dt.convert_time_zone("UTC")
        return pl.when(raw.str.contains(pattern)).then(instant)


def _session_dates(ts: pl.Series) -> pl.Series:
    """`session_date(ts)` (the New York date of each instant) without a time-zone lookup per row.

    New York's UTC offset changes at most once in any hour, so when it is the same at the start and end
    of every UTC hour the instants fall in (a file of one session: always), it is one offset throughout.
    """
    wall = ts.dt.replace_time_zone(None)
    hours = wall.dt.truncate("1h").unique().drop_nulls()
    edges = pl.concat([hours, hours + timedelta(hours=1) - timedelta(microseconds=1)])
    offsets = (
        edges.dt.replace_time_zone("UTC").dt.convert_time_zone(EXCHANGE_TZ).dt.replace_time_zone(None) - edges
    ).unique()
    if len(offsets) == 1:
        return (wall + offsets[0]).dt.date()
    return ts.to_frame().select(session_date(pl.col(ts.name))).to_series()


def _given(raw: pl.Expr) -> pl.Expr:
    return raw.str.strip_chars().str.len_chars().fill_null(0) > 0


def conform(
    frame: pl.DataFrame,
    dataset: str,
    path: Path,
    source_file: str,
    ingested_at: datetime,
    explicit_format: str | None = None,
) -> tuple[pl.DataFrame, str]:
    """A landing file's text frame -> typed bronze rows with lineage; also the detected format name.

    Values are typed by `_parse`'s rules. For speed each column is first read with `_fast` (one
    parallel pass over all columns); only the rows it leaves null with text present are read again by
    `_parse`, and only those can be parse errors.
    """
    adapter = detect_format(dataset, set(frame.columns), path, explicit_format)
    canonical = adapter.conform(frame.lazy(), path).collect()
    missing = [c for c, f in FIELDS[dataset].items() if f.required and c not in canonical.columns]
    if missing:
        raise SourceError(
            f"{path}: missing required column(s) {', '.join(missing)} for {dataset}",
            file=path,
            dataset=dataset,
        )
    fields = {c: f for c, f in FIELDS[dataset].items() if c in canonical.columns}
    raw = {c: canonical.get_column(c).cast(pl.String) for c in fields}
    shapes = {
        c: _Shape.detect(raw[c].drop_nulls().head(1000).str.strip_chars().to_list())
        for c, f in fields.items()
        if f.kind == "datetime"
    }
    typed = (
        pl.DataFrame(raw)
        .lazy()
        .select(
            _fast(f.kind, pl.col(c), shapes.get(c)).cast(KIND_DTYPES[f.kind]).alias(c)
            for c, f in fields.items()
        )
        .collect()
    )
    values: dict[str, pl.Series] = {}
    failed: dict[str, pl.Series] = {}  # row indices of values given but unreadable, per column
    for column, field in fields.items():
        value = typed.get_column(column)
        if value.null_count() > raw[column].null_count():
            retry = (value.is_null() & raw[column].is_not_null()).arg_true()
            again = pl.DataFrame({column: raw[column].gather(retry)}).select(
                _parse(field.kind, pl.col(column)).cast(KIND_DTYPES[field.kind]).alias("value"),
                _given(pl.col(column)).alias("given"),
            )
            value = value.scatter(retry, again.get_column("value"))
            bad = retry.filter(again.get_column("value").is_null() & again.get_column("given"))
            if len(bad):
                failed[column] = bad
        values[column] = value
    for column, bad in failed.items():
        given = raw[column].to_frame().select(_given(pl.col(column)).sum()).item()
        if given and len(bad) == given and len(canonical) > 1:
            sample = raw[column].drop_nulls().head(1).to_list()
            raise SourceError(
                f"{path}: column {column!r} has no value readable as {fields[column].kind}"
                f" (e.g. {sample[0]!r})"
                if sample
                else f"{path}: column {column!r} is unreadable",
                file=path,
                dataset=dataset,
            )
    height = len(canonical)
    flags = [
        pl.Series(f"__failed_{c}", [], dtype=pl.Boolean).extend_constant(False, height).scatter(bad, True)
        for c, bad in failed.items()
    ]
    absent = [
        pl.lit(None, dtype=KIND_DTYPES[f.kind]).alias(f.name)
        for c, f in FIELDS[dataset].items()
        if c not in fields
    ]
    bronze = pl.DataFrame([v.alias(fields[c].name) for c, v in values.items()] + flags, height=height).lazy()
    if absent:
        bronze = bronze.with_columns(absent)
    if dataset == "trades":
        bronze = bronze.with_columns(_session_dates(values["ts"]).alias("trade_date"))
    errors = pl.lit(None, dtype=pl.String)
    if flags:
        errors = pl.when(pl.any_horizontal([f.name for f in flags])).then(
            pl.concat_str(
                [pl.when(pl.col(f"__failed_{c}")).then(pl.lit(c)) for c in failed],
                separator=",",
                ignore_nulls=True,
            )
        )
    bronze = bronze.with_columns(
        errors.alias("_parse_errors"),
        pl.lit(source_file).alias("_source_file"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_source_row"),
        pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )
    return bronze.select(list(bronze_schema(dataset))).collect(), adapter.name


def now_utc() -> datetime:
    return datetime.now(UTC)

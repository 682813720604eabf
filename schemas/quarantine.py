"""Split a frame into valid rows and quarantined rows with a reason.

Row-level failures (a failed check or a null in a required column) quarantine the row; schema-level
failures (a missing column, a wrong dtype) mean the file itself is unusable and raise StructuralError.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.backends.polars.checks import PolarsCheckBackend
from pandera.config import ValidationDepth, config_context
from pandera.constants import CHECK_OUTPUT_KEY
from pandera.errors import SchemaError, SchemaErrorReason, SchemaErrors

from schemas.checks import SYMBOL_PATTERN
from transforms.errors import ChainsignalsError

__all__ = ["NOT_A_SESSION", "REASON", "SYMBOL_PATTERN", "StructuralError", "split_duplicates", "split_valid"]

REASON = "_reason"
# A row dated on a day that is not a session of the exchange calendar (a vendor's stale holiday snapshot):
# quarantined at ingest, outside any session's rejected share.
NOT_A_SESSION = "not_a_session:trade_date"
_ROW = "__row_nr"  # scratch column; dunder so it cannot clash with lineage columns like _source_file

# Failures pandera reports per row (with a row index); everything else is about the frame's shape.
_ROW_REASONS = {
    SchemaErrorReason.SERIES_CONTAINS_NULLS,
    SchemaErrorReason.SERIES_CONTAINS_DUPLICATES,
    SchemaErrorReason.DATAFRAME_CHECK,
}
# Shown first: a missing column also breaks every check that reads it, which is noise next to the cause.
_SHAPE_REASONS = {SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME, SchemaErrorReason.WRONG_DATATYPE}


class StructuralError(ChainsignalsError):
    """The `dataset` cannot be validated row by row; the message is one line naming dataset and problem."""


def split_valid(
    df: pl.DataFrame, model: type[pa.DataFrameModel], dataset: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate ``df`` against ``model``: (valid rows, rejected rows + ``_reason``), input order kept.

    ``_reason`` lists every failed check of the row as ``check:column[,column]``, joined with '; '.
    """
    errors, failure_cases = run_lazy_validation(df, model)
    if not errors:
        return df, _with_reason(df.clear(), pl.lit(None, pl.Utf8))

    structural = [e for e in errors if not is_row_failure(e)]
    if structural:
        raise StructuralError(f"{dataset}: {describe_structural(structural)}", dataset=dataset)

    reasons = (
        row_reasons(failure_cases)
        .group_by(_ROW, maintain_order=True)
        .agg(pl.col(REASON).unique(maintain_order=True).str.join("; "))
    )
    judged = df.with_row_index(_ROW).join(reasons, on=_ROW, how="left", maintain_order="left")
    rejected = pl.col(REASON).is_not_null()
    return (
        judged.filter(~rejected).drop(_ROW, REASON),
        judged.filter(rejected).drop(_ROW),
    )


def split_duplicates(
    df: pl.DataFrame, keys: list[str], order_by: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep, per key, the row that sorts last by ``order_by``; the others get ``_reason='duplicate:keys'``.

    Rows tied on ``order_by`` are ordered by their remaining columns, so the survivor never depends on
    the input order. Both outputs keep the input order.
    """
    # Rows that share a key share its hash: when no hash repeats (the common case) there is nothing to do.
    # Otherwise only rows with a repeated hash are compared and ordered (a collision is resolved there).
    key_hash = df.select(pl.struct(keys).hash()).to_series()
    ordered = key_hash.sort()
    if not (ordered == ordered.shift(1)).any():
        return df, _with_reason(df.clear(), pl.lit(f"duplicate:{','.join(keys)}"))
    numbered = df.with_row_index(_ROW)
    contested = numbered.filter(key_hash.is_duplicated())
    tie_breakers = [c for c in df.columns if c not in keys and c not in order_by]
    losers = (
        contested.sort([*order_by, *tie_breakers], nulls_last=False, maintain_order=True)
        .filter(~pl.struct(keys).is_last_distinct())
        .get_column(_ROW)
    )
    lost = pl.col(_ROW).is_in(losers.implode())
    kept = numbered.filter(~lost).drop(_ROW)
    dropped = numbered.filter(lost).drop(_ROW)
    return kept, _with_reason(dropped, pl.lit(f"duplicate:{','.join(keys)}"))


def _with_reason(df: pl.DataFrame, reason: pl.Expr) -> pl.DataFrame:
    return df.with_columns(reason.cast(pl.Utf8).alias(REASON))


def run_lazy_validation(
    df: pl.DataFrame, model: type[pa.DataFrameModel]
) -> tuple[list[SchemaError], pl.DataFrame | None]:
    """All of pandera's findings at once: (schema errors, failure-case table); ([], None) when valid."""
    if meets_model(df, model):
        return [], None
    # Validation is forced on and to full depth: an environment that disabled pandera (or asked for
    # schema-only checks) must not let bad rows through unreported.
    with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        try:
            model.validate(df, lazy=True)
        except SchemaErrors as exc:
            return exc.schema_errors, exc.failure_cases
    return [], None


def meets_model(df: pl.DataFrame, model: type[pa.DataFrameModel]) -> bool:
    """True when ``df`` passes every rule of ``model``, found in one polars pass; False when any rule
    fails or the model uses a feature this screen does not evaluate (pandera then decides, row by row).

    The same verdicts pandera reaches (its dtype checks, not-nullable with NaN as null, each check's
    own function with its ignore_na), evaluated as one batch of queries where pandera runs and collects
    them one by one with its bookkeeping around each: on the full-market chain (1.9 million rows)
    0.41-0.46 s instead of 0.55-0.62 s, on a day of bars 4 ms instead of 30 ms. A clean frame, the usual
    case, is decided here; only a frame with a failure pays for pandera's failure cases.
    """
    schema = model.to_schema()
    schema.register_default_backends(pl.LazyFrame)
    if not issubclass(pa.Check.get_backend(pl.LazyFrame()), PolarsCheckBackend):  # e.g. the Narwhals one
        return False
    if (
        schema.unique
        or schema.ordered
        or schema.coerce
        or schema.strict not in (False, True)
        or schema.add_missing_columns
        or schema.drop_invalid_rows
        or getattr(schema, "parsers", None)
    ):
        return False
    if schema.strict and not set(df.columns) <= set(schema.columns):  # an undeclared column
        return False
    columns = {name: column for name, column in schema.columns.items() if name in df.schema}
    for name, column in schema.columns.items():
        if column.regex or column.unique or column.coerce or getattr(column, "parsers", None):
            return False
        if name not in columns and column.required:
            return False
    frame = df.lazy()
    for name, column in columns.items():
        if column.dtype is not None and not column.dtype.check(
            df.schema[name], PolarsData(frame.select(name), name)
        ):
            return False
    verdicts: list[pl.LazyFrame | bool] = []
    for name, column in columns.items():
        if not column.nullable:
            present = pl.col(name).is_not_null()
            if df.schema[name].is_float():
                present = present & pl.col(name).is_not_nan()
            verdicts.append(frame.select(present.all()))
    try:
        verdicts.extend(
            _check_verdict(check, frame, name) for name, column in columns.items() for check in column.checks
        )
        verdicts.extend(_check_verdict(check, frame, None) for check in schema.checks)
        if any(v is False for v in verdicts):
            return False
        lazy = [v for v in verdicts if isinstance(v, pl.LazyFrame)]
        return all(result.item() is True for result in pl.collect_all(lazy)) if lazy else True
    except pl.exceptions.PolarsError:  # e.g. a check reading a column the frame lacks: pandera says which
        return False


def _check_verdict(check: pa.Check, frame: pl.LazyFrame, key: str | None) -> pl.LazyFrame | bool:
    """Whether every row passes ``check``: its backend's own output, reduced as pandera reduces it."""
    builtin = getattr(check._check_fn, "__name__", None)
    if builtin is not None and check.is_builtin_check(builtin):  # as Check.__call__ does: polars' version
        check._check_fn = check.get_builtin_check_fn(builtin)
    backend = PolarsCheckBackend(check)
    output = backend.apply(PolarsData(backend.preprocess(frame, key), key or "*"))
    if isinstance(output, bool):
        return output
    passed = pl.col(CHECK_OUTPUT_KEY)
    passed = passed | passed.is_null() if check.ignore_na else passed.fill_null(False)
    return output.select(passed.all())


def row_reasons(failure_cases: pl.DataFrame) -> pl.DataFrame:
    """Pandera's failure cases as (row number, _reason, failure_case), one row per failed check and row."""
    # A multi-column rule carries its full reason in the check name (see schemas.checks); a one-column
    # check is qualified with the column pandera reports.
    return failure_cases.filter(pl.col("index").is_not_null()).select(
        pl.col("index").cast(pl.UInt32).alias(_ROW),
        pl.when(pl.col("check").str.contains(":", literal=True))
        .then(pl.col("check"))
        .otherwise(pl.concat_str(pl.col("check"), pl.lit(":"), pl.col("column")))
        .alias(REASON),
        pl.col("failure_case"),
    )


def is_row_failure(error: SchemaError) -> bool:
    return error.reason_code in _ROW_REASONS and error.check_output is not None


def describe_structural(errors: list[SchemaError]) -> str:
    shape = [e for e in errors if e.reason_code in _SHAPE_REASONS]
    return "; ".join(_describe_one(e) for e in (shape or errors))


def _describe_one(error: SchemaError) -> str:
    if error.reason_code == SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME:
        return f"missing column '{error.failure_cases}'"
    if error.reason_code == SchemaErrorReason.WRONG_DATATYPE:
        expected = error.schema.dtype if error.schema is not None else "?"
        return f"column '{error.column_name}' has dtype {error.failure_cases}, expected {expected}"
    message = " ".join(str(error).split())
    return f"{error.reason_code.name.lower()}: {message[:300]}"

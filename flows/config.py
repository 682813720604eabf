"""Configuration: `chainsignals.toml` read into one pydantic model per table, strictly (a misspelt key or a
value of the wrong type is refused, naming the file, the key and the nearest known one); rules checked at
start-up."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from flows.errors import ChainsignalsError
from transforms.ideas import Rule, RuleError, compile_rules
from transforms.signals import DEFAULT_WEIGHTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "chainsignals.toml"
MIN_HISTORY_YEARS = 2
SESSIONS_PER_YEAR = 252  # the least a year of history is relied on to hold


DEFAULT_MAX_FILE_BYTES = 2 << 30  # decompressed bytes of one landing file (a full-market chain is ~0.3 GB)
STABLE_SECONDS_VARIABLE = "CHAINSIGNALS_STABLE_SECONDS"  # overrides [ingest] stable_seconds (tests: 0)


class ConfigError(ChainsignalsError):
    """A configuration or rule file that cannot be used (`file`); the message is one line."""


# One model per TOML table. Each setting and its default are declared here and nowhere else;
# chainsignals.toml states the same values for its readers (tests/test_config.py keeps the two equal).
class Section(BaseModel):
    """A TOML table: a key it does not declare (a typo) or a value of the wrong type is refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PathsConfig(Section):
    warehouse: str = "warehouse"  # data root: lake/, signals.duckdb, reports/
    landing: str = ""  # empty: <warehouse>/landing
    lake: str = ""  # empty: <warehouse>/lake; else a folder or an object-storage URL


class MarketConfig(Section):
    benchmark: str = "SPY"  # beta_252 is measured against this symbol's bars
    calendar: str = "XNYS"  # exchange-calendars name
    risk_free_rate: float = 0.04


class IngestConfig(Section):
    max_rejected_share: float = Field(0.05, ge=0)
    min_rows_for_limit: int = Field(50, ge=0)
    batch_rows: int = Field(4_000_000, gt=0)
    max_file_bytes: int = Field(DEFAULT_MAX_FILE_BYTES, gt=0)
    stable_seconds: float = Field(2.0, ge=0)
    min_chain_share: float = Field(0.5, ge=0)
    on_short_chain: Literal["warn", "fail"] = "warn"


class PositioningConfig(Section):
    top_strikes: int = Field(5, gt=0)  # strike_levels keeps the top N strikes per side


class FlowConfig(Section):
    block_notional: float = Field(1_000_000.0, gt=0)  # a print is a block at this notional ...
    block_size: int = Field(1_000, gt=0)  # ... or at this many contracts


class HistoryConfig(Section):
    years: int = MIN_HISTORY_YEARS

    @field_validator("years", mode="before")
    @classmethod
    def _a_whole_number_of_years(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_HISTORY_YEARS:
            raise ValueError(
                f"[history] years must be a whole number of at least {MIN_HISTORY_YEARS} "
                f"(got {value!r}): 52-week and 252-session windows need a full year, and "
                "EMA, ATR and RSI about two to forget where their pass started"
            )
        return value


# The bias components' weights are declared with the score (transforms.signals); a weight not named
# there would be ignored, so it is refused like any other unknown key.
WeightsConfig = create_model(
    "WeightsConfig", __base__=Section, **{name: (float, weight) for name, weight in DEFAULT_WEIGHTS.items()}
)


class SignalsConfig(Section):
    bullish_at: float = 20.0
    bearish_at: float = -20.0
    pcr_history_sessions: int = 60  # its bound depends on [history], checked by ConfigFile
    weights: WeightsConfig = WeightsConfig()


class ReportConfig(Section):
    max_symbols: int = Field(100, ge=0)


class OutcomesConfig(Section):
    stock_horizon_sessions: int = Field(10, gt=0)


class IdeasConfig(Section):
    min_risk_reward: float = Field(0.0, ge=0)  # the default of rules without their own


# A [[rules]] table takes the fields of transforms.ideas.Rule; their values are checked when the rule
# compiles (expressions against the feature schema), so here only the keys are.
RuleTable = create_model(
    "RuleTable",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{f.name: (Any, None) for f in fields(Rule)},
)


class ConfigFile(Section):
    """chainsignals.toml, every table with its defaults; a rule file for `chainsignals backtest` is one too
    (its [[rules]] and [ideas] are what the backtest reads)."""

    paths: PathsConfig = PathsConfig()
    market: MarketConfig = MarketConfig()
    ingest: IngestConfig = IngestConfig()
    positioning: PositioningConfig = PositioningConfig()
    flow: FlowConfig = FlowConfig()
    history: HistoryConfig = HistoryConfig()
    signals: SignalsConfig = SignalsConfig()
    report: ReportConfig = ReportConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
    ideas: IdeasConfig = IdeasConfig()
    rules: list[RuleTable] = []

    @model_validator(mode="after")
    def _put_call_history_fits_the_history_read(self) -> ConfigFile:
        most = SESSIONS_PER_YEAR * self.history.years
        if not 0 < self.signals.pcr_history_sessions <= most:
            raise ValueError(
                f"[signals] pcr_history_sessions must be between 1 and {most} ([history] years of "
                f"sessions), got {self.signals.pcr_history_sessions}"
            )
        return self


@dataclass(frozen=True)
class Settings:
    """The configuration a run uses: the file's values (defaults in the models above), the paths
    resolved and the rules compiled."""

    warehouse: Path
    landing: Path
    benchmark: str
    calendar: str
    risk_free_rate: float
    max_rejected_share: float
    min_rows_for_limit: int
    batch_rows: int
    max_file_bytes: int
    stable_seconds: float
    min_chain_share: float
    on_short_chain: str
    top_strikes: int
    block_notional: float
    block_size: int
    bullish_at: float
    bearish_at: float
    pcr_history_sessions: int
    history_years: int
    weights: dict[str, float]
    stock_horizon_sessions: int
    min_risk_reward: float  # [ideas] min_risk_reward: the default of rules without their own
    report_max_symbols: int
    rules: tuple[Rule, ...]
    config_file: Path | None
    lake_location: str  # empty: <warehouse>/lake; else a folder or an object-storage URL

    @property
    def lake(
        self,
    ):  # -> flows.storage.lake.LakePath (imported late: config stays free of the lake's I/O stack)
        from flows.storage.lake import lake_root

        return lake_root(self.lake_location or self.warehouse / "lake")

    @property
    def database(self) -> Path:
        return self.warehouse / "signals.duckdb"

    @property
    def reports(self) -> Path:
        return self.warehouse / "reports"


def load_settings(
    config: Path | str | None = None,
    *,
    warehouse: Path | str | None = None,
    landing: Path | str | None = None,
    lake: str | None = None,
) -> Settings:
    """Read the config (explicit path, else $CHAINSIGNALS_CONFIG, else the bundled default).

    `warehouse`, `landing` and `lake` override the file's paths (the CLI's --warehouse/--landing/--lake).
    """
    path = Path(config or os.environ.get("CHAINSIGNALS_CONFIG") or DEFAULT_CONFIG)
    raw = _read_toml(path, "config file")
    cfg = _parse(raw, path)

    paths = cfg.paths
    wh = Path(warehouse or os.environ.get("CHAINSIGNALS_WAREHOUSE") or paths.warehouse or "warehouse")
    land = landing or os.environ.get("CHAINSIGNALS_LANDING") or paths.landing or (wh / "landing")
    lake_location = str(lake or os.environ.get("CHAINSIGNALS_LAKE") or paths.lake or "")
    if lake_location and "://" not in lake_location:
        lake_location = str(Path(lake_location).resolve())
    ingest = cfg.ingest
    return Settings(
        warehouse=wh.resolve(),
        landing=Path(land).resolve(),
        benchmark=cfg.market.benchmark.upper(),
        calendar=cfg.market.calendar,
        risk_free_rate=cfg.market.risk_free_rate,
        max_rejected_share=ingest.max_rejected_share,
        min_rows_for_limit=ingest.min_rows_for_limit,
        batch_rows=ingest.batch_rows,
        max_file_bytes=ingest.max_file_bytes,
        stable_seconds=float(os.environ.get(STABLE_SECONDS_VARIABLE) or ingest.stable_seconds),
        min_chain_share=ingest.min_chain_share,
        on_short_chain=ingest.on_short_chain,
        top_strikes=cfg.positioning.top_strikes,
        block_notional=cfg.flow.block_notional,
        block_size=cfg.flow.block_size,
        bullish_at=cfg.signals.bullish_at,
        bearish_at=cfg.signals.bearish_at,
        pcr_history_sessions=cfg.signals.pcr_history_sessions,
        history_years=cfg.history.years,
        weights=cfg.signals.weights.model_dump(),
        stock_horizon_sessions=cfg.outcomes.stock_horizon_sessions,
        min_risk_reward=cfg.ideas.min_risk_reward,
        report_max_symbols=cfg.report.max_symbols,
        rules=_compile(cfg, path, cfg.ideas.min_risk_reward),
        config_file=path,
        lake_location=lake_location,
    )


def load_rule_file(path: Path | str, settings: Settings) -> tuple[Rule, ...]:
    """A rule file (same [[rules]] syntax as chainsignals.toml), compiled; ConfigError when unusable. The
    file's own [ideas] min_risk_reward is the default of its rules; without one, the config's."""
    path = Path(path)
    parsed = _parse(_read_toml(path, "rule file"), path)
    if not parsed.rules:
        raise ConfigError(f"{path}: no [[rules]]", file=path)
    own = "min_risk_reward" in parsed.ideas.model_fields_set
    return _compile(parsed, path, parsed.ideas.min_risk_reward if own else settings.min_risk_reward)


def _compile(parsed: ConfigFile, path: Path, min_risk_reward: float) -> tuple[Rule, ...]:
    tables = [rule.model_dump(exclude_unset=True) for rule in parsed.rules]
    try:
        return tuple(compile_rules(tables, min_risk_reward))
    except (RuleError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}", file=path) from None


def _parse(raw: dict, path: Path) -> ConfigFile:
    """`raw` (a parsed TOML file) validated; the first problem as one line naming the file, the table, the
    key and, for a key that is not known, the nearest known one."""
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        problems = exc.errors()
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{path}: {_refusal(ConfigFile, raw, problems[0])}{more}", file=path) from None


def _refusal(model: type[BaseModel], raw: dict, problem: dict) -> str:
    *table, key = problem["loc"] or ("",)
    if problem["type"] == "value_error":  # the validators' own messages name the table and key
        return str(problem["ctx"]["error"])
    where = _table_name(table, raw)
    if problem["type"] == "extra_forbidden":
        return (
            f"{where}{key} is not a known {'key' if table else 'table or key'}{_nearest(model, table, key)}"
        )
    given, reason = repr(problem["input"]), problem["msg"]
    given = given if len(given) <= 40 else given[:37] + "..."
    return f"{where}{key} = {given}: {reason[:1].lower()}{reason[1:]}"


def _table_name(table: list, raw: dict) -> str:
    """How the TOML file spells the table at `table` (a pydantic location), as a prefix: "[signals.weights] "."""
    if not table:
        return ""
    if table[0] == "rules" and len(table) > 1:
        rule = raw["rules"][table[1]]
        name = rule.get("name") if isinstance(rule, dict) else None
        return f"rule {name!r} ([[rules]] #{table[1] + 1}): " if name else f"[[rules]] #{table[1] + 1}: "
    return f"[{'.'.join(map(str, table))}] "


def _nearest(model: type[BaseModel], table: list, key: str) -> str:
    """ " (did you mean top_strikes?)": the closest name in the same table, else a key of any table."""
    tables = _all_tables(model)
    if table:
        scope = [
            (name, name) for name in _known_keys(model, [part for part in table if not isinstance(part, int)])
        ]
    else:
        scope = [(name, label) for label, name, _ in tables if label.strip("[]") == name]
    anywhere = [(name, f"{label} {name}") for label, _, names in tables for name in names]
    for candidates in (scope, anywhere):
        found = difflib.get_close_matches(str(key), [name for name, _ in candidates], n=1, cutoff=0.6)
        if found:
            return f" (did you mean {dict(candidates)[found[0]]}?)"
    return ""


def _known_keys(model: type[BaseModel], table: list[str]) -> list[str]:
    for part in table:
        model = _table_model(model.model_fields[part].annotation)
    return list(model.model_fields)


def _table_model(annotation: Any) -> type[BaseModel]:
    """The model of a table field (`X`, `X | None` or `list[X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel))


def _all_tables(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, list[str]]]:
    """Every table of `model`: its TOML header ("[signals.weights]", "[[rules]]"), its field name and keys."""
    tables = []
    for name, info in model.model_fields.items():
        try:
            sub = _table_model(info.annotation)
        except StopIteration:
            continue
        path = f"{prefix}{name}"
        label = f"[[{path}]]" if get_origin(info.annotation) is list else f"[{path}]"
        tables.append((label, name, list(sub.model_fields)))
        tables.extend(_all_tables(sub, f"{path}."))
    return tables


def _read_toml(path: Path, what: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", file=path) from None

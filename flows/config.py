"""Configuration: `chainsignals.toml` loaded into typed settings; rules checked at start-up."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from transforms.ideas import Rule, RuleError, compile_rules

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "chainsignals.toml"
MIN_HISTORY_YEARS = 2
SESSIONS_PER_YEAR = 252  # the least a year of history is relied on to hold


# [ingest] keys and their defaults, declared once: a key not listed here is a typo, refused.
DEFAULT_MAX_FILE_BYTES = 2 << 30  # decompressed bytes of one landing file (a full-market chain is ~0.3 GB)
DEFAULT_STABLE_SECONDS = 2.0
INGEST_DEFAULTS: dict[str, object] = {
    "max_rejected_share": 0.05, "min_rows_for_limit": 50, "batch_rows": 4_000_000,
    "max_file_bytes": DEFAULT_MAX_FILE_BYTES, "stable_seconds": DEFAULT_STABLE_SECONDS,
    "min_chain_share": 0.5, "on_short_chain": "warn",
}
STABLE_SECONDS_VARIABLE = "CHAINSIGNALS_STABLE_SECONDS"  # overrides [ingest] stable_seconds (tests: 0)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Settings:
    warehouse: Path
    landing: Path
    benchmark: str = "SPY"
    calendar: str = "XNYS"
    risk_free_rate: float = 0.04
    max_rejected_share: float = 0.05
    min_rows_for_limit: int = 50
    batch_rows: int = 4_000_000
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    stable_seconds: float = DEFAULT_STABLE_SECONDS
    min_chain_share: float = 0.5
    on_short_chain: str = "warn"
    top_strikes: int = 5
    block_notional: float = 1_000_000.0
    block_size: int = 1_000
    bullish_at: float = 20.0
    bearish_at: float = -20.0
    pcr_history_sessions: int = 60
    history_years: int = MIN_HISTORY_YEARS
    weights: dict[str, float] = field(default_factory=dict)
    stock_horizon_sessions: int = 10
    min_risk_reward: float = 0.0  # [ideas] min_risk_reward: the default of rules without their own
    report_max_symbols: int = 100
    rules: tuple[Rule, ...] = ()
    config_file: Path | None = None
    lake_location: str = ""  # empty: <warehouse>/lake; else a folder or an object-storage URL

    @property
    def lake(self):  # -> flows.lake.LakePath (imported late: config stays free of the lake's I/O stack)
        from flows.lake import lake_root

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

    paths = raw.get("paths", {})
    market = raw.get("market", {})
    ingest = raw.get("ingest", {})
    signals = raw.get("signals", {})
    flow = raw.get("flow", {})
    wh = Path(warehouse or os.environ.get("CHAINSIGNALS_WAREHOUSE") or paths.get("warehouse") or "warehouse")
    land = landing or os.environ.get("CHAINSIGNALS_LANDING") or paths.get("landing") or (wh / "landing")
    lake_location = str(lake or os.environ.get("CHAINSIGNALS_LAKE") or paths.get("lake") or "")
    if lake_location and "://" not in lake_location:
        lake_location = str(Path(lake_location).resolve())
    min_risk_reward = float(raw.get("ideas", {}).get("min_risk_reward", 0.0))
    rules = load_rules(raw, path, min_risk_reward)
    unknown = sorted(set(ingest) - set(INGEST_DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown [ingest] key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(INGEST_DEFAULTS)})")
    ingest = INGEST_DEFAULTS | ingest
    if ingest["on_short_chain"] not in ("warn", "fail"):
        raise ConfigError(f"{path}: [ingest] on_short_chain must be \"warn\" or \"fail\", "
                          f"got {ingest['on_short_chain']!r}")
    stable_seconds = float(os.environ.get(STABLE_SECONDS_VARIABLE) or ingest["stable_seconds"])
    history_years = raw.get("history", {}).get("years", MIN_HISTORY_YEARS)
    if not isinstance(history_years, int) or history_years < MIN_HISTORY_YEARS:
        raise ConfigError(f"{path}: [history] years must be a whole number of at least {MIN_HISTORY_YEARS} "
                          f"(got {history_years!r}): 52-week and 252-session windows need a full year, and "
                          "EMA, ATR and RSI about two to forget where their pass started")
    pcr_history_sessions = int(signals.get("pcr_history_sessions", 60))
    if not 0 < pcr_history_sessions <= SESSIONS_PER_YEAR * history_years:
        raise ConfigError(f"{path}: [signals] pcr_history_sessions must be between 1 and "
                          f"{SESSIONS_PER_YEAR * history_years} ([history] years of sessions), got {pcr_history_sessions}")
    return Settings(
        warehouse=wh.resolve(),
        landing=Path(land).resolve(),
        benchmark=str(market.get("benchmark", "SPY")).upper(),
        calendar=market.get("calendar", "XNYS"),
        risk_free_rate=float(market.get("risk_free_rate", 0.04)),
        max_rejected_share=float(ingest["max_rejected_share"]),
        min_rows_for_limit=int(ingest["min_rows_for_limit"]),
        batch_rows=int(ingest["batch_rows"]),
        max_file_bytes=int(ingest["max_file_bytes"]),
        stable_seconds=stable_seconds,
        min_chain_share=float(ingest["min_chain_share"]),
        on_short_chain=str(ingest["on_short_chain"]),
        top_strikes=int(raw.get("positioning", {}).get("top_strikes", 5)),
        block_notional=float(flow.get("block_notional", 1_000_000)),
        block_size=int(flow.get("block_size", 1_000)),
        bullish_at=float(signals.get("bullish_at", 20)),
        bearish_at=float(signals.get("bearish_at", -20)),
        pcr_history_sessions=pcr_history_sessions,
        history_years=history_years,
        weights={k: float(v) for k, v in signals.get("weights", {}).items()},
        stock_horizon_sessions=int(raw.get("outcomes", {}).get("stock_horizon_sessions", 10)),
        min_risk_reward=min_risk_reward,
        report_max_symbols=int(raw.get("report", {}).get("max_symbols", 100)),
        rules=tuple(rules),
        config_file=path,
        lake_location=lake_location,
    )


def load_rules(raw: dict, path: Path, min_risk_reward: float) -> tuple[Rule, ...]:
    """The [[rules]] of a parsed TOML file (the config or a rule file for `backtest`), compiled. A file's
    own [ideas] min_risk_reward is the default of its rules; without one, `min_risk_reward`."""
    default = raw.get("ideas", {}).get("min_risk_reward", min_risk_reward)
    try:
        return tuple(compile_rules(raw.get("rules", []), float(default)))
    except (RuleError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_rule_file(path: Path | str, settings: Settings) -> tuple[Rule, ...]:
    """A rule file (same [[rules]] syntax as chainsignals.toml), compiled; ConfigError when unusable."""
    path = Path(path)
    raw = _read_toml(path, "rule file")
    if not raw.get("rules"):
        raise ConfigError(f"{path}: no [[rules]]")
    return load_rules(raw, path, settings.min_risk_reward)


def _read_toml(path: Path, what: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None

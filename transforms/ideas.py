"""Trade ideas from declared rules: SQL expressions over the joined feature row (SPEC 5).

A rule names when it applies, how to pick an expiration and a contract of that day's chain (options),
and its trigger, target and stop. Rules are compiled against the feature schema when the
configuration loads, so a bad expression fails at start-up with the rule's name.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from transforms.errors import ChainsignalsError
from transforms.features import RULE_ROW_SCHEMA
from transforms.text import fmt_fixed

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SESSION_KEYS = ["trade_date", "symbol"]
ORDER_KEY = re.compile(r"^(?P<expr>.+?)(?:\s+(?P<dir>asc|desc))?$", re.IGNORECASE | re.DOTALL)

# The expiration's yardsticks (transforms/yardsticks.py, expiry_levels) in the rule row, by their rule-row
# name: rr_25d and bf_25d are prefixed, as the row's rr_25d is positioning's 30-day one.
YARDSTICK_FIELDS: dict[str, str] = {
    "expected_move": "expected_move",
    "expected_move_pct": "expected_move_pct",
    "rr_25d": "expiry_rr_25d",
    "bf_25d": "expiry_bf_25d",
}
EXPIRY_FIELDS: dict[str, pl.DataType] = {
    "expiration": pl.Date(),
    "dte": pl.Int64(),
    "is_weekly": pl.Boolean(),
    "is_monthly": pl.Boolean(),
    "is_quarterly": pl.Boolean(),
    "is_leaps": pl.Boolean(),
    **{name: pl.Float64() for name in YARDSTICK_FIELDS.values()},
}
CONTRACT_FIELDS: dict[str, pl.DataType] = {
    "option_symbol": pl.String(),
    "option_type": pl.String(),
    "strike": pl.Float64(),
    "open_interest": pl.Int64(),
    "volume": pl.Int64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "mid": pl.Float64(),
    "strike_call_oi": pl.Int64(),
    "strike_put_oi": pl.Int64(),
}
LEVEL_FIELDS: dict[str, pl.DataType] = {
    "trigger_level": pl.Float64(),
    "target": pl.Float64(),
    "stop": pl.Float64(),
    "entry_premium": pl.Float64(),
    "risk_reward": pl.Float64(),
}

TRADE_IDEA_COLUMNS = [
    "trade_date",
    "symbol",
    "idea_id",
    "rule",
    "direction",
    "instrument",
    "option_symbol",
    "expiration",
    "strike",
    "dte",
    "entry_premium",
    "contract_open_interest",
    "underlying_close",
    "trigger_level",
    "trigger_direction",
    "target",
    "stop",
    "risk_reward",
    "rationale",
]
TRADE_IDEA_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "symbol": pl.String(),
    "idea_id": pl.String(),
    "rule": pl.String(),
    "direction": pl.String(),
    "instrument": pl.String(),
    "option_symbol": pl.String(),
    "expiration": pl.Date(),
    "strike": pl.Float64(),
    "dte": pl.Int64(),
    "entry_premium": pl.Float64(),
    "contract_open_interest": pl.Int64(),
    "underlying_close": pl.Float64(),
    "trigger_level": pl.Float64(),
    "trigger_direction": pl.String(),
    "target": pl.Float64(),
    "stop": pl.Float64(),
    "risk_reward": pl.Float64(),
    "rationale": pl.String(),
}


class RuleError(ChainsignalsError, ValueError):
    """A rule that cannot be compiled; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    direction: str
    instrument: str
    when: str
    trigger: str
    trigger_direction: str
    target: str
    stop: str
    rationale: str
    expiry_filter: str = "TRUE"
    expiry_order: tuple[str, ...] = ("dte ASC",)
    strike_filter: str = "TRUE"
    strike_order: tuple[str, ...] = ("strike ASC",)
    # Applied to the contract strike_order chose: the idea is dropped, not moved to another strike.
    contract_filter: str = "TRUE"
    # An idea whose reward/risk (target - trigger) / (trigger - stop) is below this is not emitted.
    min_risk_reward: float = 0.0

    @property
    def option_type(self) -> str | None:
        return {"call": "C", "put": "P"}.get(self.instrument)


def _order_keys(keys: tuple[str, ...]) -> tuple[list[pl.Expr], list[bool]]:
    exprs, descending = [], []
    for key in keys:
        match = ORDER_KEY.match(key.strip())
        exprs.append(pl.sql_expr(match["expr"]))
        descending.append((match["dir"] or "asc").lower() == "desc")
    return exprs, descending


def _template_parts(template: str) -> list[tuple[str, str | None, str]]:
    return [(literal, field, spec or "") for literal, field, spec, _ in string.Formatter().parse(template)]


def _check(
    rule_name: str, field: str, expr: str, schema: dict[str, pl.DataType], kind: str | None = None
) -> None:
    """Compile `expr` over an empty frame of `schema`; kind 'boolean' or 'number' also checks its type."""
    try:
        dtype = pl.LazyFrame(schema=schema).select(pl.sql_expr(expr)).collect().dtypes[0]
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuleError(f"rule '{rule_name}': {field} = {expr!r} is not valid: {reason}") from None
    # Without this, a filter that is not true/false or a level that is text only fails mid-run.
    if kind == "boolean" and dtype not in (pl.Boolean, pl.Null):
        raise RuleError(f"rule '{rule_name}': {field} = {expr!r} must be true or false, not {dtype}")
    if kind == "number" and not (dtype.is_numeric() or dtype == pl.Null):
        raise RuleError(f"rule '{rule_name}': {field} = {expr!r} must be a number, not {dtype}")


def compile_rules(raw_rules: list[dict], min_risk_reward: float = 0.0) -> list[Rule]:
    """Turn the config's [[rules]] into Rules, checking every expression against the feature schema.

    `min_risk_reward` is the default of rules that do not set their own."""
    rules, seen = [], set()
    for raw in raw_rules:
        name = str(raw.get("name", ""))
        if not RULE_NAME.match(name):
            raise RuleError(f"rule name {name!r} must match {RULE_NAME.pattern}")
        if name in seen:
            raise RuleError(f"rule '{name}' is declared twice")
        seen.add(name)
        try:
            rule = Rule(
                name=name,
                direction=raw["direction"],
                instrument=raw["instrument"],
                when=raw.get("when", "TRUE"),
                trigger=raw["trigger"],
                trigger_direction=raw["trigger_direction"],
                target=raw["target"],
                stop=raw["stop"],
                rationale=raw.get("rationale", ""),
                expiry_filter=raw.get("expiry_filter", "TRUE"),
                expiry_order=tuple(raw.get("expiry_order", ["dte ASC"])),
                strike_filter=raw.get("strike_filter", "TRUE"),
                strike_order=tuple(raw.get("strike_order", ["strike ASC"])),
                contract_filter=raw.get("contract_filter", "TRUE"),
                min_risk_reward=raw.get("min_risk_reward", min_risk_reward),
            )
        except KeyError as exc:
            raise RuleError(f"rule '{name}': missing field {exc.args[0]!r}") from None
        if (
            isinstance(rule.min_risk_reward, bool)
            or not isinstance(rule.min_risk_reward, int | float)
            or rule.min_risk_reward < 0
        ):
            raise RuleError(
                f"rule '{name}': min_risk_reward must be a number >= 0, not {rule.min_risk_reward!r}"
            )
        if rule.direction not in ("bullish", "bearish"):
            raise RuleError(f"rule '{name}': direction must be bullish or bearish, not {rule.direction!r}")
        if rule.instrument not in ("stock", "call", "put"):
            raise RuleError(f"rule '{name}': instrument must be stock, call or put, not {rule.instrument!r}")
        if rule.trigger_direction not in ("above", "below"):
            raise RuleError(f"rule '{name}': trigger_direction must be above or below")

        feature_row = dict(RULE_ROW_SCHEMA)
        contract_row = {**feature_row, **EXPIRY_FIELDS, **CONTRACT_FIELDS}
        level_row = contract_row if rule.option_type else feature_row
        _check(name, "when", rule.when, feature_row, "boolean")
        if rule.option_type:
            _check(name, "expiry_filter", rule.expiry_filter, {**feature_row, **EXPIRY_FIELDS}, "boolean")
            for key in rule.expiry_order:
                _check(
                    name,
                    "expiry_order",
                    ORDER_KEY.match(key.strip())["expr"],
                    {**feature_row, **EXPIRY_FIELDS},
                )
            _check(name, "strike_filter", rule.strike_filter, contract_row, "boolean")
            for key in rule.strike_order:
                _check(name, "strike_order", ORDER_KEY.match(key.strip())["expr"], contract_row)
            _check(name, "contract_filter", rule.contract_filter, contract_row, "boolean")
        _check(name, "trigger", rule.trigger, level_row, "number")
        with_trigger = {**level_row, "trigger_level": pl.Float64()}
        _check(name, "target", rule.target, with_trigger, "number")
        _check(name, "stop", rule.stop, with_trigger, "number")
        template_fields = {**contract_row, **LEVEL_FIELDS}
        try:
            parts = _template_parts(rule.rationale)
        except ValueError as exc:
            raise RuleError(f"rule '{name}': rationale template is not valid: {exc}") from None
        for _, fld, spec in parts:
            if fld is not None and fld not in template_fields:
                raise RuleError(f"rule '{name}': rationale names unknown column {{{fld}}}")
            if spec and not re.fullmatch(r"\.\d+f", spec):
                raise RuleError(f"rule '{name}': rationale format {{{fld}:{spec}}} must look like :.2f")
        rules.append(rule)
    return rules


def _good_friday(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm) minus two days."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1) - timedelta(days=2)


# NYSE holidays that can fall on a third Friday: Good Friday, and Juneteenth (since 2022; observed on
# Friday the 18th when the 19th is a Saturday). The monthly expiration then moves to the Thursday.
_THIRD_FRIDAY_HOLIDAYS = pl.Series(
    [
        d
        for y in range(2000, 2101)
        for d in (_good_friday(y), *((date(y, 6, 18), date(y, 6, 19)) if y >= 2022 else ()))
        if d.weekday() == 4 and 15 <= d.day <= 21
    ],
    dtype=pl.Date,
)


def expiry_flags(expiration: pl.Expr, dte: pl.Expr) -> list[pl.Expr]:
    """Classify expirations: monthly = third Friday (the Thursday before when Friday is a holiday)."""
    day, weekday = expiration.dt.day(), expiration.dt.weekday()  # Monday = 1
    third_friday = (weekday == 5) & day.is_between(15, 21)
    holiday_thursday = (
        (weekday == 4)
        & day.is_between(14, 20)
        & expiration.dt.offset_by("1d").is_in(_THIRD_FRIDAY_HOLIDAYS.implode())
    )
    monthly = third_friday | holiday_thursday
    # Quarterlies expire on the quarter's last weekday (a holiday there moves it a day earlier;
    # that rare case is not modelled): a weekday with no weekday left after it in its month. Counted
    # from the days left, as month ends and date offsets are slow per contract.
    days_left = expiration.dt.days_in_month() - day
    last_weekday = ((weekday <= 4) & (days_left == 0)) | ((weekday == 5) & (days_left <= 2))
    quarter_end = expiration.dt.month().is_in([3, 6, 9, 12]) & last_weekday
    return [
        monthly.alias("is_monthly"),
        (~monthly & weekday.is_in([4, 5])).alias("is_weekly"),
        quarter_end.alias("is_quarterly"),
        (dte > 270).alias("is_leaps"),
    ]


def _render(template: str, schema: dict[str, pl.DataType]) -> pl.Expr:
    parts: list[pl.Expr] = []
    for literal, fld, spec in _template_parts(template):
        if literal:
            parts.append(pl.lit(literal))
        if fld is None:
            continue
        dtype = schema[fld]
        if dtype.is_float():
            decimals = int(spec[1:-1]) if spec else 2
            parts.append(fmt_fixed(pl.col(fld), decimals))
        else:
            parts.append(pl.col(fld).cast(pl.String))
    return pl.concat_str(parts, ignore_nulls=True) if parts else pl.lit("")


def _stable_id(key: pl.Expr) -> pl.Expr:
    # A cryptographic digest, not polars' hash(): ids must not change across polars versions.
    return key.map_elements(lambda s: hashlib.sha1(s.encode()).hexdigest()[:16], return_dtype=pl.String)


def _first_per(frame: pl.LazyFrame, group: list[str], keys: tuple[str, ...], tiebreak: str) -> pl.LazyFrame:
    exprs, descending = _order_keys(keys)
    return frame.sort(
        [*group, *exprs, pl.col(tiebreak)],
        descending=[False] * len(group) + descending + [False],
        nulls_last=True,
    ).unique(subset=group, keep="first", maintain_order=True)


@dataclass(frozen=True)
class OptionChain:
    """The chain as rules read it, at the grains they choose at: a rule picks its expiration among
    `expirations` (small: one row per session, symbol, side and listed expiration), and only the
    contracts of the expiration it picked are joined with the features and the strike totals, so the
    per-contract table is never widened with every feature and expiry column.

    expirations: trade_date, symbol, option_type and EXPIRY_FIELDS.
    contracts: trade_date, symbol, expiration and CONTRACT_FIELDS; the strike totals (strike_call_oi,
    strike_put_oi: the strike's OI over every live expiration) among them only when strike_oi is None.
    strike_oi: trade_date, symbol, strike and the strike totals, joined to the contracts a rule reads.
    """

    expirations: pl.LazyFrame
    contracts: pl.LazyFrame
    strike_oi: pl.LazyFrame | None

    def cache(self) -> OptionChain:
        """The same chain with each part computed once however many rules or rule sets read it."""
        return OptionChain(
            self.expirations.cache(),
            self.contracts.cache(),
            None if self.strike_oi is None else self.strike_oi.cache(),
        )

    def collect(self) -> OptionChain:
        """The same chain held in memory (for several trade_ideas calls over one batch)."""
        return OptionChain(
            self.expirations.collect().lazy(),
            self.contracts.collect().lazy(),
            None if self.strike_oi is None else self.strike_oi.collect().lazy(),
        )


_STRIKE_TOTALS = ["strike_call_oi", "strike_put_oi"]
_CONTRACT_COLUMNS = [c for c in CONTRACT_FIELDS if c not in _STRIKE_TOTALS]
_LISTING = "_listing"


def _listing_key() -> pl.Expr:
    """One integer per listing (session, symbol, side, expiration) of live contracts, exact: the symbol's
    categorical code, the side, the session's day number and the days to expiry packed in 25 + 1 + 18 +
    20 bits (sessions before the year 2687, fewer than 33 million symbols in the process). Grouping and joining the chain on one integer instead of four columns, one of them text,
    is what keeps choosing an expiration cheap."""
    code = pl.col("symbol").cast(pl.Categorical).to_physical().cast(pl.UInt64)
    put = (pl.col("option_type") == "P").cast(pl.UInt64)
    day = pl.col("trade_date").cast(pl.Int32).cast(pl.UInt64, strict=True)
    to_expiry = (pl.col("expiration") - pl.col("trade_date")).dt.total_days().cast(pl.UInt64, strict=True)
    return (((code * 2 + put) * 2**18 + day) * 2**20 + to_expiry).alias(_LISTING)


def _yardstick_rows(yardsticks: pl.LazyFrame | None) -> pl.LazyFrame:
    """expiry_levels' yardsticks keyed by (trade_date, symbol, expiration) under their rule-row names."""
    if yardsticks is None:
        return pl.LazyFrame(
            schema={
                "trade_date": pl.Date(),
                "symbol": pl.String(),
                "expiration": pl.Date(),
                **{name: pl.Float64() for name in YARDSTICK_FIELDS.values()},
            }
        )
    return yardsticks.select(
        "trade_date",
        pl.col("underlying").alias("symbol"),
        "expiration",
        *[pl.col(c).cast(pl.Float64).alias(n) for c, n in YARDSTICK_FIELDS.items()],
    )


def _expirations(listed: pl.LazyFrame, yardsticks: pl.LazyFrame | None) -> pl.LazyFrame:
    """`listed` (one row per listing: _LISTING, trade_date, symbol, option_type, expiration, dte) with
    the expiry flags and yardsticks. The flags depend on the expiration and dte only: classified once
    per listed expiration, not once per contract (millions of contracts share a few thousand
    expirations)."""
    return (
        listed.with_columns(expiry_flags(pl.col("expiration"), pl.col("dte")))
        .join(_yardstick_rows(yardsticks), on=["trade_date", "symbol", "expiration"], how="left")
        .select(_LISTING, "trade_date", "symbol", "option_type", *EXPIRY_FIELDS)
    )


def _strike_totals(strike_oi: pl.LazyFrame) -> pl.LazyFrame:
    return strike_oi.select(
        "trade_date",
        pl.col("underlying").alias("symbol"),
        "strike",
        pl.col("call_oi").alias("strike_call_oi"),
        pl.col("put_oi").alias("strike_put_oi"),
    )


def option_chain(
    chains: pl.LazyFrame, strike_oi: pl.LazyFrame, yardsticks: pl.LazyFrame | None = None
) -> OptionChain:
    """The contracts ideas may name: listed, expiring after the session; their expirations with the
    expiry flags and yardsticks (trade_date, underlying, expiration and the keys of YARDSTICK_FIELDS, as
    in expiry_levels; NULL without); their strikes' total OI (strike_open_interest)."""
    live = (
        chains.filter(pl.col("expiration") > pl.col("trade_date"))
        .select(
            "trade_date",
            pl.col("underlying").alias("symbol"),
            "expiration",
            "dte",
            *_CONTRACT_COLUMNS,
        )
        .with_columns(_listing_key())
    )
    expirations = _expirations(
        live.select(_LISTING, "trade_date", "symbol", "option_type", "expiration", "dte").unique(
            subset=[_LISTING]
        ),
        yardsticks,
    )
    return OptionChain(expirations, live.drop("dte"), _strike_totals(strike_oi))


# --- the same chain for many sessions at once (chainsignals backtest): the listings from expiry_levels, and
# only the contracts of the listings some rule picks read and joined.

_LISTED = ["trade_date", "symbol", "option_type", "expiration"]


def expiry_listings(expiry_rows: pl.LazyFrame) -> pl.LazyFrame:
    """option_chain(...).expirations from expiry_levels rows instead of the chain: one listing per side
    with contracts listed (call_contracts, put_contracts), with the flags and yardsticks.

    expiry_rows: trade_date, symbol, expiration, dte, call_contracts, put_contracts and the keys of
    YARDSTICK_FIELDS. expiry_levels counts the contracts expiring after the session, the very ones
    option_chain lists, so both give the same listings; _LISTING is this frame's own numbering."""
    sides = [
        expiry_rows.filter(pl.col(f"{side}_contracts") > 0).with_columns(pl.lit(code).alias("option_type"))
        for side, code in (("call", "C"), ("put", "P"))
    ]
    return (
        pl.concat(sides)
        .with_columns(_listing_key(), *expiry_flags(pl.col("expiration"), pl.col("dte")))
        .with_columns(*[pl.col(c).cast(pl.Float64).alias(n) for c, n in YARDSTICK_FIELDS.items()])
        .select(_LISTING, "trade_date", "symbol", "option_type", *EXPIRY_FIELDS)
    )


def picked_chain(expirations: pl.LazyFrame, picked: pl.DataFrame, chains: pl.LazyFrame) -> OptionChain:
    """The OptionChain of `expirations` (expiry_listings) whose contracts are those of `picked` (rows of
    `expirations`: the listings chosen_listings gives) in `chains` (silver rows of at least those
    listings, with their strike totals strike_call_oi and strike_put_oi): for rules that pick among
    `picked` only, the same ideas as option_chain over the whole chain."""
    contracts = chains.select(
        "trade_date",
        pl.col("underlying").alias("symbol"),
        "expiration",
        *_CONTRACT_COLUMNS,
        *_STRIKE_TOTALS,
    ).join(picked.lazy().select(_LISTING, *_LISTED), on=_LISTED)
    return OptionChain(expirations, contracts, None)


def _chosen_expiry(
    rule: Rule, candidates: pl.LazyFrame, expirations: pl.LazyFrame, with_features: bool = True
) -> pl.LazyFrame:
    """Per session and symbol where the option rule applies: the expiration row it picks, with the
    candidate's feature row (`with_features`). Each listed expiration gets only the features choosing
    among them reads (expiry_filter, expiry_order); the rest joins the one expiration chosen."""
    listed = set(expirations.collect_schema())
    features = [c for c in candidates.collect_schema() if c not in listed]
    choosing = _named_columns([rule.expiry_filter, *rule.expiry_order])
    chosen = _first_per(
        expirations.filter(pl.col("option_type") == rule.option_type)
        .join(candidates.select(*_SESSION_KEYS, *[c for c in features if c in choosing]), on=_SESSION_KEYS)
        .filter(pl.sql_expr(rule.expiry_filter)),
        _SESSION_KEYS,
        rule.expiry_order,
        "expiration",
    )
    if not with_features:
        return chosen
    rest = [c for c in features if c not in choosing]
    return chosen.join(candidates.select(*_SESSION_KEYS, *rest), on=_SESSION_KEYS)


def chosen_listings(
    features: pl.LazyFrame, expirations: pl.LazyFrame, rules: tuple[Rule, ...] | list[Rule]
) -> pl.LazyFrame:
    """The listings (_LISTING) any option rule of `rules` picks: the only ones whose contracts its
    ideas can name."""
    picked = [
        _chosen_expiry(
            rule, features.filter(pl.sql_expr(rule.when)), expirations, with_features=False
        ).select(_LISTING)
        for rule in rules
        if rule.option_type
    ]
    if not picked:
        return expirations.select(_LISTING).clear()
    return pl.concat(picked).unique()


def _named_columns(exprs: list[str]) -> set[str]:
    """The columns SQL expressions (or order keys, with their ASC/DESC) name."""
    return {name for e in exprs for name in pl.sql_expr(ORDER_KEY.match(e.strip())["expr"]).meta.root_names()}


def _with_strike_totals(contracts: pl.LazyFrame, strike_oi: pl.LazyFrame | None) -> pl.LazyFrame:
    if strike_oi is None:  # the contracts carry them
        return contracts
    return contracts.join(strike_oi, on=[*_SESSION_KEYS, "strike"], how="left")


def _rule_ideas(rule: Rule, features: pl.LazyFrame, chain: OptionChain) -> pl.LazyFrame:
    candidates = features.filter(pl.sql_expr(rule.when))
    if rule.option_type:
        chosen_expiry = _chosen_expiry(rule, candidates, chain.expirations)
        # The chosen listings' contracts, found by their one integer key (a semi join first: only the
        # few matching contracts are copied). On the left, the contract's columns keep their names:
        # `volume` is the contract's, as in compile_rules' contract row.
        chosen = chosen_expiry.drop("trade_date", "symbol", "expiration", "option_type")
        # The chosen listings' contracts, found by their one integer key (a semi join first: only the
        # few matching contracts are copied). Each gets only the columns choosing among them reads
        # (strike_filter, strike_order); the rest of the feature and expiry row joins the one contract
        # chosen per session and symbol, not every contract of its listing. The contract's own columns
        # keep their names: `volume` is the contract's, as in compile_rules' contract row.
        contract_columns = set(chain.contracts.collect_schema())
        row_columns = [c for c in chosen.collect_schema() if c not in contract_columns]
        choosing = _named_columns([rule.strike_filter, *rule.strike_order])
        early = [c for c in row_columns if c in choosing]
        late = [c for c in row_columns if c not in choosing]
        rows = (
            _first_per(
                chain.contracts.join(chosen.select(_LISTING), on=_LISTING, how="semi")
                .join(chosen.select(_LISTING, *early), on=_LISTING)
                .pipe(_with_strike_totals, chain.strike_oi)
                .filter(pl.sql_expr(rule.strike_filter)),
                # A rule picks one listing per session and symbol: its key stands for both.
                [_LISTING],
                rule.strike_order,
                "option_symbol",
            )
            .join(chosen.select(_LISTING, *late), on=_LISTING)
            .filter(pl.sql_expr(rule.contract_filter))
            .with_columns(
                pl.col("mid").alias("entry_premium"), pl.col("open_interest").alias("contract_open_interest")
            )
        )
    else:
        rows = candidates.with_columns(
            *[pl.lit(None, dtype=t).alias(c) for c, t in {**EXPIRY_FIELDS, **CONTRACT_FIELDS}.items()],
            pl.lit(None, dtype=pl.Float64).alias("entry_premium"),
            pl.lit(None, dtype=pl.Int64).alias("contract_open_interest"),
        )
    rows = rows.with_columns(pl.sql_expr(rule.trigger).cast(pl.Float64).alias("trigger_level"))
    rows = rows.with_columns(
        pl.sql_expr(rule.target).cast(pl.Float64).alias("target"),
        pl.sql_expr(rule.stop).cast(pl.Float64).alias("stop"),
    )
    trigger, target, stop = pl.col("trigger_level"), pl.col("target"), pl.col("stop")
    consistent = (
        (stop < trigger) & (trigger < target)
        if rule.direction == "bullish"
        else ((target < trigger) & (trigger < stop))
    )
    risk_reward = (target - trigger).abs() / (trigger - stop).abs()
    rows = rows.filter(consistent & (risk_reward >= rule.min_risk_reward)).with_columns(
        risk_reward.alias("risk_reward"),
        pl.col("close").alias("underlying_close"),
        pl.lit(rule.name).alias("rule"),
        pl.lit(rule.direction).alias("direction"),
        pl.lit(rule.instrument).alias("instrument"),
        pl.lit(rule.trigger_direction).alias("trigger_direction"),
    )
    return rows.with_columns(_render(rule.rationale, dict(rows.collect_schema())).alias("rationale"))


def trade_ideas(
    features: pl.LazyFrame, chain: OptionChain, rules: tuple[Rule, ...] | list[Rule]
) -> pl.LazyFrame:
    """All rules over all symbols and sessions at once; `chain` comes from option_chain()."""
    if not rules:
        return pl.LazyFrame(schema=TRADE_IDEA_SCHEMA)
    # Every option rule reads the chain's parts: each is built once, not once per rule.
    chain = chain.cache()
    ideas = pl.concat(
        [
            _rule_ideas(rule, features, chain).select([c for c in TRADE_IDEA_COLUMNS if c != "idea_id"])
            for rule in rules
        ],
        how="vertical_relaxed",
    )
    key = pl.concat_str(
        [
            pl.col("trade_date").cast(pl.String),
            "symbol",
            "rule",
            pl.coalesce("option_symbol", pl.lit("stock")),
        ],
        separator="|",
    )
    return (
        ideas.with_columns(_stable_id(key).alias("idea_id"))
        .select([pl.col(c).cast(t) for c, t in TRADE_IDEA_SCHEMA.items()])
        .sort("trade_date", "symbol", "rule")
    )

"""Deterministic synthetic options market: the embedded default source (SPEC section 3).

It writes ordinary canonical landing files, so the demo exercises exactly the code path real files do:

    landing/bars/bars_history.csv              every session but the last (a history file)
    landing/bars/bars_YYYY-MM-DD.csv           the last session (a nightly drop)
    landing/chains/chains_YYYY-MM-DD.parquet   chain snapshots, all but the last five chain sessions
    landing/chains/chains_YYYY-MM-DD.csv.gz    chain snapshots, the last five chain sessions
    landing/trades/trades_YYYY-MM-DD.csv       option trade prints

Market model (all seeded, byte-identical for the same arguments):

- XNYS sessions (``exchange_calendars``), ending at the last session on or before ``end`` (default
  2025-12-31, never "today", so runs are reproducible).
- Daily log returns = beta x market shock + idiosyncratic shock, both GARCH(1,1) with Student-t
  innovations, so volatility clusters and betas estimated against SPY come out near the profiles'.
- Option chains priced with Black-Scholes at r = ``DEMO_RATE``, q = 0, t = calendar days / 365, quoted at
  the close (``underlying_price`` = that session's close). The IV surface is the underlying's current
  conditional volatility with a mean-reverting term structure, a put skew and a smile. The quoted mid
  equals the Black-Scholes price at the written (rounded) IV to within half a cent.
- Open interest: a per-contract target (near the money, round strikes, monthlies, puts for index ETFs)
  times a persistent per-contract popularity; each session's OI is the previous session's plus a
  mean-reverting random step, so it persists day over day. Listed strikes are never delisted before
  expiry, as on a real exchange.
- About 1% of chain rows have empty implied_volatility/delta/gamma, for the derivation path.
"""

from __future__ import annotations

import gzip
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import product
from pathlib import Path
from string import ascii_uppercase

import exchange_calendars as xcals
import numpy as np
import polars as pl
from scipy.special import ndtri

from transforms.black_scholes import bs_delta, bs_gamma, bs_price
from transforms.errors import ChainsignalsError

DEFAULT_END = date(2025, 12, 31)
BENCHMARK = "SPY"
DEFAULT_SYMBOLS = ["SPY", "IWM", "QQQ", "AAPL", "MSFT", "NVDA", "TSLA"]
DEMO_RATE = 0.04
DEMO_DIVIDEND_YIELD = 0.0
DAYS_PER_YEAR = 365.0
CSV_GZ_CHAIN_SESSIONS = 5

_TRADING_DAYS = 252
_MARKET_VOL = 0.16
_GARCH_ALPHA = 0.08
_GARCH_BETA = 0.90
_DRIFT = 0.07 / _TRADING_DAYS
_T_DOF = 5.0
_VOL_RISK_PREMIUM = 1.08
_TERM_MEAN_REVERSION = 3.0
_IV_NULL_SHARE = 0.01
_DELIST_OI = 10
_DEMO_PRINTS_PER_SYMBOL = 300
_BLOCK_SHARE = 0.003
_EXCHANGES = [
    "CBOE",
    "ISE",
    "PHLX",
    "AMEX",
    "ARCA",
    "BOX",
    "MIAX",
    "NOM",
    "C2",
    "BZX",
    "EDGX",
    "GEMX",
    "MEMX",
]
_EXCHANGE_WEIGHTS = np.array([18, 10, 11, 7, 9, 4, 8, 7, 3, 6, 5, 6, 6], dtype=float)

# Contract key bit layout: underlying index | expiration (days since epoch) | put flag | strike (milli-$).
# Sorting by key sorts a chain by underlying, expiration, calls before puts, strike.
_STRIKE_BITS = 29
_PUT_SHIFT = _STRIKE_BITS
_EXP_SHIFT = _STRIKE_BITS + 1
_EXP_BITS = 15
_U_SHIFT = _EXP_SHIFT + _EXP_BITS


class MarketError(ChainsignalsError, ValueError):
    """A synthetic market that cannot be generated as asked (more sessions than the calendar holds)."""


@dataclass(frozen=True)
class SymbolProfile:
    """What makes one underlying look like itself."""

    start_price: float
    beta: float
    idio_vol: float  # annualised idiosyncratic volatility
    avg_volume: float  # shares per day
    oi_scale: float  # open interest of a popular at-the-money monthly strike
    skew: float  # IV slope per unit of standardised moneyness (puts richer when > 0)
    index_like: bool = False  # index ETFs: puts dominate open interest
    liquidity: float = 1.0  # spread multiplier (higher = wider)
    weeklies: bool = True
    quarterlies: bool = True
    leaps: bool = True
    strike_width: float = 1.0  # scales how far the strike grid reaches from spot


PROFILES: dict[str, SymbolProfile] = {
    "SPY": SymbolProfile(600.0, 1.00, 0.01, 70e6, 40_000, 0.14, index_like=True, liquidity=0.5),
    "IWM": SymbolProfile(250.0, 1.15, 0.09, 30e6, 12_000, 0.12, index_like=True, liquidity=0.7),
    "QQQ": SymbolProfile(520.0, 1.12, 0.07, 45e6, 20_000, 0.12, index_like=True, liquidity=0.6),
    "AAPL": SymbolProfile(230.0, 1.10, 0.20, 50e6, 9_000, 0.07, liquidity=0.8),
    "MSFT": SymbolProfile(480.0, 1.00, 0.18, 20e6, 5_000, 0.07, liquidity=0.9),
    "NVDA": SymbolProfile(180.0, 1.70, 0.35, 180e6, 15_000, 0.05, liquidity=0.8),
    "TSLA": SymbolProfile(400.0, 2.00, 0.50, 90e6, 12_000, 0.04, liquidity=0.9),
}


@dataclass
class DemoSummary:
    """What a generator wrote."""

    landing: Path
    sessions: list[date]
    symbols: list[str]
    chain_sessions: list[date] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        span = f"{self.sessions[0]}..{self.sessions[-1]}" if self.sessions else "-"
        counts = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        return (
            f"{len(self.sessions)} sessions {span}, {len(self.symbols)} symbols, "
            f"{len(self.chain_sessions)} chain sessions, {len(self.files)} files ({counts}) in {self.landing}"
        )


# ----------------------------------------------------------------------------------------------------
# Calendar and expirations


@dataclass(frozen=True)
class _SessionWindow:
    """The generated sessions, their UTC open/close instants (early closes included), and the calendar
    (those sessions plus three years ahead) that expirations are snapped to."""

    days: np.ndarray  # datetime64[D]
    opens: np.ndarray  # datetime64[us], UTC
    closes: np.ndarray
    calendar: np.ndarray  # datetime64[D]


def _to_date(day: np.datetime64) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day.astype("datetime64[D]").astype(np.int64)))


def _utc_instants(times) -> np.ndarray:
    """A pandas Series of session times (tz-aware UTC) as naive UTC datetime64[us]."""
    return times.dt.tz_convert(None).to_numpy().astype("datetime64[us]")


def _session_window(end: date | None, sessions: int) -> _SessionWindow:
    """The ``sessions`` XNYS sessions ending at the last session on or before ``end`` (default
    2025-12-31)."""
    end = end or DEFAULT_END
    first = end - timedelta(days=int(sessions * 7 / 4.8) + 30)
    with warnings.catch_warnings():
        # exchange-calendars 4.x trips a pandas deprecation warning inside its own constructor.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        try:
            cal = xcals.get_calendar(
                "XNYS", start=first.isoformat(), end=(end + timedelta(days=3 * 366)).isoformat()
            )
        except ValueError as exc:  # a start before the calendar's (and pandas') range of dates
            raise MarketError(
                f"{sessions} sessions before {end} reach back to {first}, outside the XNYS calendar "
                f"({exc}): ask for fewer"
            ) from None
    calendar = cal.sessions.values.astype("datetime64[D]")
    past = np.flatnonzero(calendar <= np.datetime64(end, "D"))
    if past.size < sessions:
        raise MarketError(
            f"{sessions} sessions asked, but XNYS has only {past.size} sessions up to {end}: ask for fewer"
        )
    idx = past[-sessions:]
    return _SessionWindow(
        days=calendar[idx],
        opens=_utc_instants(cal.opens)[idx],
        closes=_utc_instants(cal.closes)[idx],
        calendar=calendar,
    )


@dataclass(frozen=True)
class _Expirations:
    """Every listed expiration of the horizon, by kind, snapped to the previous session on holidays."""

    weekly: np.ndarray  # every Friday
    monthly: np.ndarray  # third Fridays
    quarterly: np.ndarray  # last session of March, June, September, December
    january: np.ndarray  # January third Fridays (LEAPS)

    @classmethod
    def from_calendar(cls, calendar: np.ndarray) -> _Expirations:
        days = np.arange(calendar[0], calendar[-1] + 1, dtype="datetime64[D]")
        # 1970-01-01 was a Thursday, so day-number % 7 == 1 is a Friday.
        fridays = days[(days.astype(np.int64) % 7) == 1]
        day_of_month = (fridays - fridays.astype("datetime64[M]")).astype(np.int64) + 1
        third = fridays[(day_of_month >= 15) & (day_of_month <= 21)]
        month = calendar.astype("datetime64[M]")
        # The calendar's final month may be cut short, so its last session is not a month end.
        last_of_month = calendar[np.r_[month[1:] != month[:-1], False]]
        month_number = last_of_month.astype("datetime64[M]").astype(np.int64) % 12 + 1
        quarter_ends = last_of_month[np.isin(month_number, [3, 6, 9, 12])]
        january = third[third.astype("datetime64[M]").astype(np.int64) % 12 == 0]
        snap = _snapper(calendar)
        return cls(snap(fridays), snap(third), quarter_ends, snap(january))

    def for_session(self, day: np.datetime64) -> dict[str, np.ndarray]:
        """Expirations listed on ``day``: weeklies ~5 weeks out, monthlies ~6 months, quarterlies ~1
        year, and the January LEAPS of the next two years."""

        def window(kind: np.ndarray, days: int) -> np.ndarray:
            return kind[(kind >= day) & (kind <= day + np.timedelta64(days, "D"))]

        year = day.astype("datetime64[Y]").astype(np.int64) + 1970
        leap_years = self.january.astype("datetime64[Y]").astype(np.int64) + 1970
        return {
            "weekly": window(self.weekly, 35),
            "monthly": window(self.monthly, 200),
            "quarterly": window(self.quarterly, 370),
            "leaps": self.january[(leap_years > year) & (leap_years <= year + 2)],
        }


def _snapper(calendar: np.ndarray):
    def snap(days: np.ndarray) -> np.ndarray:
        # A Friday holiday moves the expiration to the previous session (Good Friday, Juneteenth...).
        idx = np.searchsorted(calendar, days, side="right") - 1
        inside = idx >= 0
        return np.unique(calendar[idx[inside]])

    return snap


# ----------------------------------------------------------------------------------------------------
# Bars


@dataclass(frozen=True)
class _PricePaths:
    open: np.ndarray  # [session, symbol]
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    daily_var: np.ndarray  # conditional daily variance the session was drawn with
    activity: np.ndarray  # volume / average volume


def _garch_omega(daily_var: np.ndarray | float) -> np.ndarray | float:
    return daily_var * (1.0 - _GARCH_ALPHA - _GARCH_BETA)


def _student_t(rng: np.random.Generator, shape) -> np.ndarray:
    # Unit-variance fat-tailed shocks.
    return rng.standard_t(_T_DOF, size=shape) / np.sqrt(_T_DOF / (_T_DOF - 2.0))


def _simulate_prices(profiles: list[SymbolProfile], n_sessions: int, rng: np.random.Generator) -> _PricePaths:
    n = len(profiles)
    beta = np.array([p.beta for p in profiles])
    start = np.array([p.start_price for p in profiles])
    avg_volume = np.array([p.avg_volume for p in profiles])
    market_lr = _MARKET_VOL**2 / _TRADING_DAYS
    idio_lr = np.array([p.idio_vol for p in profiles]) ** 2 / _TRADING_DAYS
    z_market = _student_t(rng, n_sessions)
    z_idio = _student_t(rng, (n_sessions, n))

    log_ret = np.empty((n_sessions, n))
    daily_var = np.empty((n_sessions, n))
    h_market, h_idio = market_lr, idio_lr.copy()
    # The GARCH recursion is inherently sequential in time; every step is vectorised over symbols.
    for t in range(n_sessions):
        daily_var[t] = beta**2 * h_market + h_idio
        e_market = np.sqrt(h_market) * z_market[t]
        e_idio = np.sqrt(h_idio) * z_idio[t]
        log_ret[t] = _DRIFT - 0.5 * daily_var[t] + beta * e_market + e_idio
        h_market = _garch_omega(market_lr) + _GARCH_ALPHA * e_market**2 + _GARCH_BETA * h_market
        h_idio = _garch_omega(idio_lr) + _GARCH_ALPHA * e_idio**2 + _GARCH_BETA * h_idio

    close = start * np.exp(np.cumsum(log_ret, axis=0))
    prev_close = np.vstack([start, close[:-1]])
    sd = np.sqrt(daily_var)
    open_ = prev_close * np.exp(0.3 * sd * rng.standard_normal((n_sessions, n)))
    open_, close = np.round(open_, 2), np.round(close, 2)
    high = np.round(
        np.maximum(open_, close) * np.exp(0.5 * sd * np.abs(rng.standard_normal((n_sessions, n)))), 2
    )
    low = np.round(
        np.minimum(open_, close) * np.exp(-0.5 * sd * np.abs(rng.standard_normal((n_sessions, n)))), 2
    )
    low = np.maximum(low, 0.01)
    # Big moves trade more: volume rises with the size of the standardised return.
    surprise = np.abs(log_ret) / sd
    activity = np.exp(0.5 * (surprise - 0.8) + 0.25 * rng.standard_normal((n_sessions, n)))
    volume = np.rint(avg_volume * activity).astype(np.int64)
    return _PricePaths(open_, high, low, close, volume, daily_var, activity)


def _bars_frame(sessions: np.ndarray, symbols: list[str], paths: _PricePaths) -> pl.DataFrame:
    n_sessions, n = paths.close.shape
    return pl.DataFrame(
        {
            "date": pl.Series(np.repeat(sessions, n)).cast(pl.Date),
            "symbol": pl.Series(np.tile(np.array(symbols, dtype=object), n_sessions), dtype=pl.String),
            "open": paths.open.ravel(),
            "high": paths.high.ravel(),
            "low": paths.low.ravel(),
            "close": paths.close.ravel(),
            "volume": pl.Series(paths.volume.ravel(), dtype=pl.Int64),
        }
    )


def _write_bars(landing: Path, bars: pl.DataFrame, sessions: np.ndarray) -> tuple[list[Path], int]:
    folder = landing / "bars"
    folder.mkdir(parents=True, exist_ok=True)
    last = _to_date(sessions[-1])
    history_path = folder / "bars_history.csv"
    nightly_path = folder / f"bars_{last.isoformat()}.csv"
    bars.filter(pl.col("date") < last).write_csv(history_path)
    bars.filter(pl.col("date") == last).write_csv(nightly_path)
    return [history_path, nightly_path], bars.height


# ----------------------------------------------------------------------------------------------------
# Option chains


def _unit_hash(keys: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of the contract key -> uniform [0, 1): a per-contract draw that is the same every
    session without carrying state."""
    with np.errstate(over="ignore"):
        x = keys.astype(np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _strike_steps(spot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strike increments in milli-dollars near spot (within 5%), in the wings (to 15%) and far out."""
    fine = np.select([spot < 25, spot < 100, spot < 1000], [500, 1000, 1000], 5000)
    mid = np.select([spot < 25, spot < 100, spot < 1000], [1000, 2500, 5000], 10000)
    far = np.select([spot < 25, spot < 100, spot < 1000], [2500, 5000, 10000], 50000)
    return fine.astype(np.int64), mid.astype(np.int64), far.astype(np.int64)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # Sort-and-compare beats np.unique's hashing several times over for int64 keys.
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def _contract_key(u: np.ndarray, exp_days: np.ndarray, is_put: np.ndarray, strike_milli: np.ndarray):
    return (
        (u.astype(np.int64) << _U_SHIFT)
        | (exp_days.astype(np.int64) << _EXP_SHIFT)
        | (is_put.astype(np.int64) << _PUT_SHIFT)
        | strike_milli.astype(np.int64)
    )


def _decode_key(keys: np.ndarray):
    u = keys >> _U_SHIFT
    exp_days = (keys >> _EXP_SHIFT) & (2**_EXP_BITS - 1)
    is_put = ((keys >> _PUT_SHIFT) & 1).astype(bool)
    strike_milli = keys & (2**_STRIKE_BITS - 1)
    return u, exp_days, is_put, strike_milli


@dataclass
class _ChainBook:
    """Chain generator for a universe; carries open interest from one session to the next."""

    symbols: list[str]
    profiles: list[SymbolProfile]
    expirations: _Expirations
    prev_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    prev_oi: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        p = self.profiles
        self.u_weekly = np.array([x.weeklies for x in p])
        self.u_quarterly = np.array([x.quarterlies for x in p])
        self.u_leaps = np.array([x.leaps for x in p])
        self.u_width = np.array([x.strike_width for x in p])
        self.u_oi = np.array([x.oi_scale for x in p])
        self.u_skew = np.array([x.skew for x in p])
        self.u_index = np.array([x.index_like for x in p])
        self.u_liquidity = np.array([x.liquidity for x in p])
        self.u_lr_vol = np.sqrt(np.array([x.beta**2 * _MARKET_VOL**2 + x.idio_vol**2 for x in p]))
        monthly = self.expirations.monthly.astype(np.int64)
        quarterly = self.expirations.quarterly.astype(np.int64)
        self._monthly_days, self._quarterly_days = monthly, quarterly

    # -- listing ------------------------------------------------------------------------------------

    def _listed_pairs(self, day: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        listed = self.expirations.for_session(day)
        n = len(self.symbols)
        all_u = np.arange(n)
        u_parts, e_parts = [], []
        for kind, has_kind in (
            ("monthly", np.ones(n, bool)),
            ("weekly", self.u_weekly),
            ("quarterly", self.u_quarterly),
            ("leaps", self.u_leaps),
        ):
            us, es = np.meshgrid(all_u[has_kind], listed[kind].astype(np.int64), indexing="ij")
            u_parts.append(us.ravel())
            e_parts.append(es.ravel())
        pair = _sorted_unique((np.concatenate(u_parts) << _EXP_BITS) | np.concatenate(e_parts))
        return pair >> _EXP_BITS, pair & (2**_EXP_BITS - 1)

    def _strike_grid(self, day_num: int, spot: np.ndarray) -> np.ndarray:
        """Contract keys of today's standard strike grid (both types) for every listed expiration."""
        pair_u, pair_exp = self._listed_pairs(np.datetime64(day_num, "D"))
        s = spot[pair_u]
        t = (pair_exp - day_num) / DAYS_PER_YEAR
        fine, mid, far = _strike_steps(s)
        # Long-dated expirations list only the coarser strikes.
        fine = np.where(t > 0.5, mid, fine)
        reach = self.u_width[pair_u] * (0.25 + 0.30 * np.sqrt(t))
        lo_milli = np.maximum(np.floor(s * (1 - reach) * 1000 / far) * far, far).astype(np.int64)
        hi_milli = np.ceil(s * (1 + reach) * 1000 / far).astype(np.int64) * far
        lo_milli = (lo_milli // fine) * fine
        counts = (hi_milli - lo_milli) // fine + 1
        pair_idx = np.repeat(np.arange(pair_u.size), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        strike = lo_milli[pair_idx] + offset * fine[pair_idx]
        distance = np.abs(strike / (s[pair_idx] * 1000) - 1.0)
        step = np.where(
            distance <= 0.05, fine[pair_idx], np.where(distance <= 0.15, mid[pair_idx], far[pair_idx])
        )
        keep = strike % step == 0
        u, e, k = pair_u[pair_idx][keep], pair_exp[pair_idx][keep], strike[keep]
        calls = _contract_key(u, e, np.zeros(k.size, bool), k)
        puts = _contract_key(u, e, np.ones(k.size, bool), k)
        return _sorted_unique(np.concatenate([calls, puts]))

    def _still_listed(self, day_num: int) -> np.ndarray:
        """Yesterday's contracts that stay listed although today's grid no longer reaches them: unexpired
        strikes where the call or the put still has real open interest (dead strikes get delisted)."""
        unexpired = _decode_key(self.prev_keys)[1] >= day_num
        strike_key = self.prev_keys & ~np.int64(1 << _PUT_SHIFT)
        has_oi = _contains(_sorted_unique(strike_key[self.prev_oi > _DELIST_OI]), strike_key)
        return self.prev_keys[unexpired & has_oi]

    # -- one session --------------------------------------------------------------------------------

    def session(
        self,
        day: np.datetime64,
        spot: np.ndarray,
        daily_var: np.ndarray,
        activity: np.ndarray,
        rng: np.random.Generator,
    ) -> pl.DataFrame:
        """The chain snapshot at the close of ``day`` (spot = the close), updating the OI state."""
        day_num = int(day.astype("datetime64[D]").astype(np.int64))
        keys = _sorted_unique(np.concatenate([self._strike_grid(day_num, spot), self._still_listed(day_num)]))
        u, exp_days, is_put, strike_milli = _decode_key(keys)
        n = keys.size
        s = spot[u]
        strike = strike_milli / 1000.0
        dte = exp_days - day_num
        t = dte / DAYS_PER_YEAR

        iv, std_moneyness = self._implied_vols(u, s, strike, t, daily_var, rng)
        is_call = ~is_put
        theo = bs_price(s, strike, t, DEMO_RATE, iv, is_call, DEMO_DIVIDEND_YIELD)
        delta = np.round(bs_delta(s, strike, t, DEMO_RATE, iv, is_call, DEMO_DIVIDEND_YIELD), 4)
        gamma = np.round(bs_gamma(s, strike, t, DEMO_RATE, iv, is_call, DEMO_DIVIDEND_YIELD), 6)

        oi = self._open_interest(keys, u, exp_days, is_put, strike_milli, std_moneyness, t, rng)
        nearness = np.exp(-0.5 * std_moneyness**2)
        turnover = (0.005 + 0.12 * nearness) * np.where(dte <= 7, 3.0, 1.0) * activity[u]
        volume = rng.poisson(turnover * (oi + 25.0 * nearness)).astype(np.int64)

        theo_c = np.rint(theo * 100).astype(np.int64)
        half = self._half_spread_cents(theo_c, u, std_moneyness)
        bid_c = np.where(theo_c > 0, theo_c - half, 0)
        ask_c = np.where(theo_c > 0, theo_c + half, 1)
        last_c = np.maximum(theo_c + rng.integers(-half, half, endpoint=True), 1)
        last_c = np.minimum(last_c, ask_c)

        no_greeks = rng.random(n) < _IV_NULL_SHARE
        self.prev_keys, self.prev_oi = keys, oi
        return (
            pl.DataFrame(
                {
                    "quote_date": pl.Series(np.full(n, day_num, dtype=np.int32)).cast(pl.Date),
                    "underlying": pl.Series(self.symbols, dtype=pl.String).gather(u),
                    "expiration": pl.Series(exp_days.astype(np.int32)).cast(pl.Date),
                    "strike": strike,
                    "option_type": pl.Series(is_put).replace_strict(
                        {True: "P", False: "C"}, return_dtype=pl.String
                    ),
                    "open_interest": oi,
                    "volume": volume,
                    "bid": bid_c / 100.0,
                    "ask": ask_c / 100.0,
                    "last": pl.Series(last_c / 100.0).scatter(np.flatnonzero(volume == 0), None),
                    "implied_volatility": np.where(no_greeks, np.nan, iv),
                    "delta": np.where(no_greeks, np.nan, delta),
                    "gamma": np.where(no_greeks, np.nan, gamma),
                    "underlying_price": s,
                    "_strike_milli": strike_milli,
                }
            )
            .with_columns(
                pl.col("implied_volatility", "delta", "gamma").fill_nan(None),
                option_symbol=_osi_expr(),
            )
            .drop("_strike_milli")
        )

    def _implied_vols(self, u, s, strike, t, daily_var, rng):
        # Current conditional vol (plus a variance risk premium) mean-reverts to the long-run vol
        # along the term structure; the smile is quadratic in standardised moneyness.
        current = np.sqrt(daily_var[u] * _TRADING_DAYS) * _VOL_RISK_PREMIUM
        long_run = self.u_lr_vol[u] * _VOL_RISK_PREMIUM
        t_eff = np.maximum(t, 1.0 / DAYS_PER_YEAR)
        kt = _TERM_MEAN_REVERSION * t_eff
        atm = np.sqrt(long_run**2 + (current**2 - long_run**2) * (1.0 - np.exp(-kt)) / kt)
        forward = s * np.exp(DEMO_RATE * t)
        x = np.log(strike / forward) / (atm * np.sqrt(t_eff))
        smile = np.clip(1.0 - self.u_skew[u] * x + 0.035 * x**2, 0.75, 3.0)
        noise = 1.0 + 0.004 * rng.standard_normal(u.size)
        iv = np.round(np.clip(atm * smile * noise, 0.03, 3.0), 4)
        return iv, x

    def _half_spread_cents(self, theo_c, u, x):
        raw = np.rint(theo_c * 0.015 * self.u_liquidity[u] * (1.0 + 0.25 * np.minimum(np.abs(x), 6.0)))
        half = np.clip(raw, 1, np.maximum(5, np.rint(60 * self.u_liquidity[u]))).astype(np.int64)
        # Never more than the price itself, so the bid stays >= 0 and the mid stays on the model price.
        return np.where(theo_c > 0, np.minimum(half, theo_c), 0)

    def _open_interest(self, keys, u, exp_days, is_put, strike_milli, x, t, rng):
        center = np.where(is_put, -0.7, 0.4)
        shape = np.exp(-0.5 * (x - center) ** 2) + 0.01 * np.exp(-0.5 * ((x - center) / 3.0) ** 2)
        dollars = strike_milli // 1000
        whole = strike_milli % 1000 == 0
        roundness = np.where(
            whole & (dollars % 10 == 0),
            3.0,
            np.where(whole & (dollars % 5 == 0), 2.0, np.where(whole, 1.0, 0.5)),
        )
        kind = np.where(
            np.isin(exp_days, self._monthly_days),
            1.0,
            np.where(np.isin(exp_days, self._quarterly_days), 0.6, 0.4),
        )
        side = np.where(is_put, np.where(self.u_index[u], 1.5, 0.8), 1.0)
        popularity = np.exp(0.6 * ndtri(np.clip(_unit_hash(keys, 1), 1e-9, 1 - 1e-9)))
        target = self.u_oi[u] * shape * roundness * kind * side * popularity / (1.0 + 0.8 * t)

        seen, prev = _previous_oi(self.prev_keys, self.prev_oi, keys)
        if self.prev_keys.size == 0:
            # First session: a mature market, OI already near its targets.
            fresh = target * rng.uniform(0.7, 1.3, keys.size)
        else:
            # Newly listed strikes and expirations start thin and build up.
            fresh = target * rng.uniform(0.05, 0.3, keys.size)
        # Mean-reverting random walk: yesterday's OI plus a small pull toward the target plus noise.
        noise = (0.5 * np.sqrt(prev + 1.0) + 0.01 * prev) * rng.standard_normal(keys.size)
        step = 0.05 * (target - prev) + noise
        return np.maximum(np.rint(np.where(seen, prev + step, fresh)), 0).astype(np.int64)


def _contains(sorted_values: np.ndarray, probe: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0:
        return np.zeros(probe.size, bool)
    pos = np.minimum(np.searchsorted(sorted_values, probe), sorted_values.size - 1)
    return sorted_values[pos] == probe


def _previous_oi(prev_keys: np.ndarray, prev_oi: np.ndarray, keys: np.ndarray):
    """(listed yesterday?, yesterday's OI or 0) for each of today's contract keys."""
    if prev_keys.size == 0:
        return np.zeros(keys.size, bool), np.zeros(keys.size)
    pos = np.minimum(np.searchsorted(prev_keys, keys), prev_keys.size - 1)
    seen = prev_keys[pos] == keys
    return seen, np.where(seen, prev_oi[pos], 0).astype(float)


def _osi_expr() -> pl.Expr:
    """21-char OSI: root padded to 6, YYMMDD, C/P, strike x 1000 as 8 digits."""
    return pl.concat_str(
        pl.col("underlying").str.pad_end(6),
        pl.col("expiration").dt.strftime("%y%m%d"),
        pl.col("option_type"),
        pl.col("_strike_milli").cast(pl.String).str.zfill(8),
    )


# ----------------------------------------------------------------------------------------------------
# Trades


def _trade_prints(
    chain: pl.DataFrame,
    n_prints: int,
    session_open: np.datetime64,
    session_close: np.datetime64,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Prints sampled in proportion to each contract's volume, inside the day's quotes."""
    cumulative = np.cumsum(chain["volume"].to_numpy().astype(float))
    total = cumulative[-1] if cumulative.size else 0.0
    n_prints = n_prints if total > 0 else 0
    # Sorted probes make the lookup cache-friendly; each print's time is drawn independently below.
    pick = np.searchsorted(cumulative, np.sort(rng.uniform(0, total, n_prints)), side="right")
    picked = chain.select("option_symbol", "underlying", "bid", "ask")[pick]
    mid_c = np.rint((picked["bid"].to_numpy() + picked["ask"].to_numpy()) * 50).astype(np.int64)
    half_c = np.rint((picked["ask"].to_numpy() - picked["bid"].to_numpy()) * 50).astype(np.int64)
    # Intraday quotes wander around the closing quote.
    quote_c = np.maximum(np.rint(mid_c * np.exp(0.03 * rng.standard_normal(n_prints))), 0).astype(np.int64)
    bid_c = np.maximum(quote_c - half_c, 0)
    ask_c = np.maximum(quote_c + half_c, bid_c + 1)

    block = rng.random(n_prints) < _BLOCK_SHARE
    size = np.ceil(np.exp(rng.normal(1.1, 1.1, n_prints))).astype(np.int64)
    size = np.where(block, rng.choice([1000, 1200, 1500, 2000, 2500, 5000], n_prints), np.minimum(size, 900))

    side = rng.choice(4, n_prints, p=[0.35, 0.35, 0.2, 0.1])  # bid, ask, mid, inside
    side = np.where(block, np.where(rng.random(n_prints) < 0.75, 1, 0), side)
    inside = bid_c + rng.integers(0, np.maximum(ask_c - bid_c, 0), endpoint=True)
    price_c = np.choose(side, [bid_c, ask_c, (bid_c + ask_c + 1) // 2, inside])
    price_c = np.clip(price_c, 1, ask_c)

    span_us = (session_close - session_open).astype(np.int64)
    # U-shaped intraday intensity: busy open and close.
    offset_us = np.floor(rng.beta(0.7, 0.7, n_prints) * (span_us - 1)).astype(np.int64)
    ts = session_open + offset_us.astype("timedelta64[us]")

    spelling = rng.choice(3, n_prints, p=[0.8, 0.12, 0.08])
    osi = picked["option_symbol"]
    compact = osi.str.slice(0, 6).str.strip_chars_end() + osi.str.slice(6)
    option_symbol = (
        pl.DataFrame({"osi": osi, "compact": compact, "spelling": spelling})
        .select(
            pl.when(pl.col("spelling") == 0)
            .then(pl.col("osi"))
            .when(pl.col("spelling") == 1)
            .then(pl.col("compact"))
            .otherwise(pl.lit("O:") + pl.col("compact"))
        )
        .to_series()
    )
    return (
        pl.DataFrame(
            {
                "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
                "option_symbol": option_symbol,
                "price": price_c / 100.0,
                "size": size,
                "bid": bid_c / 100.0,
                "ask": ask_c / 100.0,
                "exchange": pl.Series(_EXCHANGES, dtype=pl.String).gather(
                    rng.choice(len(_EXCHANGES), n_prints, p=_EXCHANGE_WEIGHTS / _EXCHANGE_WEIGHTS.sum())
                ),
                "underlying": picked["underlying"],
            }
        )
        .sort("ts", maintain_order=True)
        .with_columns(
            pl.col("ts").dt.convert_time_zone("America/New_York").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        )
    )


# ----------------------------------------------------------------------------------------------------
# Writers


def _write_chain(folder: Path, chain: pl.DataFrame, day: date, fmt: str) -> Path:
    """Write one chain snapshot as ``parquet``, ``csv.gz`` or ``csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chains_{day.isoformat()}.{fmt}"
    if fmt == "parquet":
        chain.write_parquet(path)
    elif fmt == "csv.gz":
        # mtime=0 and no file name in the gzip header keep the bytes reproducible.
        path.write_bytes(gzip.compress(chain.write_csv().encode(), compresslevel=6, mtime=0))
    else:
        chain.write_csv(path)
    return path


def _write_trades(folder: Path, trades: pl.DataFrame, day: date) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trades_{day.isoformat()}.csv"
    trades.write_csv(path)
    return path


def _rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *extra]))


def _profile_for(symbol: str, seed: int) -> SymbolProfile:
    if symbol in PROFILES:
        return PROFILES[symbol]
    # Unknown tickers get a plausible profile derived from the name, independent of list order.
    draw = _rng(seed, 99, *symbol.encode())
    return SymbolProfile(
        start_price=float(np.round(np.exp(draw.normal(np.log(120), 0.6)), 2)),
        beta=float(draw.uniform(0.6, 1.6)),
        idio_vol=float(draw.uniform(0.15, 0.45)),
        avg_volume=float(np.exp(draw.normal(np.log(8e6), 0.6))),
        oi_scale=float(np.exp(draw.normal(np.log(4000), 0.4))),
        skew=float(draw.uniform(0.03, 0.08)),
    )


# ----------------------------------------------------------------------------------------------------
# Public API


def generate_demo_market(
    landing: Path,
    *,
    end: date | None = None,
    sessions: int = 320,
    symbols: list[str] | None = None,
    seed: int = 7,
    chain_sessions: int | None = None,
    trades: bool = True,
) -> DemoSummary:
    """Write the demo market's landing files under ``landing`` and say what was written.

    ``chain_sessions`` (default: all) limits option chains and trade prints to the last N sessions;
    the last ``CSV_GZ_CHAIN_SESSIONS`` chain files are CSV.GZ, earlier ones Parquet. Existing files of
    the same names are overwritten; nothing else in ``landing`` is touched.
    """
    landing = Path(landing)
    symbols = list(symbols or DEFAULT_SYMBOLS)
    profiles = [_profile_for(s, seed) for s in symbols]
    window = _session_window(end, sessions)
    session_days = window.days
    paths = _simulate_prices(profiles, sessions, _rng(seed, 1))
    summary = DemoSummary(landing, [_to_date(d) for d in session_days], symbols)

    bar_files, bar_rows = _write_bars(landing, _bars_frame(session_days, symbols, paths), session_days)
    summary.files += bar_files
    summary.rows["bars"] = bar_rows

    n_chain = sessions if chain_sessions is None else min(chain_sessions, sessions)
    book = _ChainBook(symbols, profiles, _Expirations.from_calendar(window.calendar))
    first_chain = sessions - n_chain
    summary.rows["chains"] = summary.rows["trades"] = 0
    for i in range(first_chain, sessions):
        day = session_days[i]
        chain = book.session(day, paths.close[i], paths.daily_var[i], paths.activity[i], _rng(seed, 2, i))
        fmt = "csv.gz" if i >= sessions - CSV_GZ_CHAIN_SESSIONS else "parquet"
        summary.files.append(_write_chain(landing / "chains", chain, _to_date(day), fmt))
        summary.chain_sessions.append(_to_date(day))
        summary.rows["chains"] += chain.height
        if trades:
            n_prints = int(_rng(seed, 3, i).poisson(_DEMO_PRINTS_PER_SYMBOL * len(symbols)))
            prints = _trade_prints(chain, n_prints, window.opens[i], window.closes[i], _rng(seed, 4, i))
            summary.files.append(_write_trades(landing / "trades", prints, _to_date(day)))
            summary.rows["trades"] += prints.height
    return summary


def synthetic_tickers(count: int, taken: set[str] = frozenset()) -> list[str]:
    """'AAA', 'AAB', ... then 4-letter tickers, skipping ``taken``."""
    out: list[str] = []
    for length in (3, 4):
        for letters in product(ascii_uppercase, repeat=length):
            ticker = "".join(letters)
            if ticker not in taken:
                out.append(ticker)
                if len(out) == count:
                    return out
    return out


def _full_market_profiles(n: int, rng: np.random.Generator) -> tuple[list[str], list[SymbolProfile]]:
    """The demo names plus synthetic tickers; chains get thinner down the popularity ranking, so the
    universe holds about 400 contracts per underlying (2 million for 5,000)."""
    named = DEFAULT_SYMBOLS[: min(n, len(DEFAULT_SYMBOLS))]
    tickers = synthetic_tickers(n - len(named), set(DEFAULT_SYMBOLS))
    m = len(tickers)
    rank = np.argsort(np.argsort(-rng.lognormal(0.0, 1.0, m))) / max(m, 1)  # 0 = most popular
    price = np.clip(np.exp(rng.normal(np.log(60), 0.9, m)), 5.0, 900.0)
    profiles = [PROFILES[s] for s in named] + [
        SymbolProfile(
            start_price=float(np.round(price[j], 2)),
            beta=float(rng.uniform(0.4, 1.9)),
            idio_vol=float(rng.uniform(0.15, 0.65)),
            avg_volume=float(np.exp(rng.normal(np.log(2e6), 1.0))),
            oi_scale=float(3000.0 * np.exp(-4.0 * rank[j]) + 20.0),
            skew=float(rng.uniform(0.02, 0.08)),
            liquidity=float(1.0 + 2.0 * rank[j]),
            weeklies=bool(rank[j] < 0.25),
            quarterlies=bool(rank[j] < 0.5),
            leaps=bool(rank[j] < 0.6),
            strike_width=float(1.2 - 0.4 * rank[j]),
        )
        for j in range(m)
    ]
    return named + tickers, profiles


def generate_full_market_day(
    landing: Path,
    *,
    underlyings: int = 5000,
    sessions: int = 300,
    seed: int = 11,
    trades: int = 2_000_000,
    end: date | None = None,
) -> DemoSummary:
    """The SPEC section 8 benchmark day, written as plain CSV like a vendor drop: ``sessions`` sessions
    of bars for ``underlyings`` names, chains (~400 contracts per underlying) for the last two sessions
    so the previous session can be loaded first, and ``trades`` prints for the last session."""
    landing = Path(landing)
    symbols, profiles = _full_market_profiles(underlyings, _rng(seed, 10))
    window = _session_window(end, sessions)
    session_days = window.days
    paths = _simulate_prices(profiles, sessions, _rng(seed, 1))
    summary = DemoSummary(landing, [_to_date(d) for d in session_days], symbols)

    bar_files, bar_rows = _write_bars(landing, _bars_frame(session_days, symbols, paths), session_days)
    summary.files += bar_files
    summary.rows["bars"] = bar_rows

    book = _ChainBook(symbols, profiles, _Expirations.from_calendar(window.calendar))
    summary.rows["chains"] = 0
    chain = pl.DataFrame()
    for i in range(max(sessions - 2, 0), sessions):
        day = session_days[i]
        chain = book.session(day, paths.close[i], paths.daily_var[i], paths.activity[i], _rng(seed, 2, i))
        summary.files.append(_write_chain(landing / "chains", chain, _to_date(day), "csv"))
        summary.chain_sessions.append(_to_date(day))
        summary.rows["chains"] += chain.height

    prints = _trade_prints(chain, trades, window.opens[-1], window.closes[-1], _rng(seed, 4, sessions - 1))
    summary.files.append(_write_trades(landing / "trades", prints, _to_date(session_days[-1])))
    summary.rows["trades"] = prints.height
    return summary

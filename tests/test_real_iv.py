"""Implied forwards, Black-76 IVs and greeks on real CBOE SPX chains (../shared/realdata, SPEC 3).

The files carry CBOE's own IV, delta and gamma. They are read here with a plain mapping of their
columns (independent of the vendor conformer), CBOE's IV and greeks are removed, and the derivation
must give them back: liquid contracts within a median 0.002 and a 95th percentile 0.01 of CBOE's IV,
and an IV for at least 99% of the contracts CBOE priced.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from transforms.greeks import derive_iv_and_greeks
from transforms.osi import normalize_osi

REAL_CHAINS = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "spx_chains_2019"
RATE = 0.024  # 2019's short rate: it only discounts, the forward carries the rest


def _read(path: Path) -> pl.DataFrame:
    raw = pl.read_csv(path, infer_schema=False)

    def day(c):
        return pl.col(c).str.to_date("%m/%d/%Y")

    def num(c):
        return pl.col(c).cast(pl.Float64)

    return raw.select(
        trade_date=day("quotedate"),
        underlying=pl.col("underlying").str.strip_prefix("^"),
        option_symbol=normalize_osi(pl.col("optionroot")),
        expiration=day("expiration"),
        strike=num("strike"),
        option_type=pl.when(pl.col("type") == "call").then(pl.lit("C")).otherwise(pl.lit("P")),
        open_interest=num("openinterest").cast(pl.Int64),
        volume=num("volume").cast(pl.Int64),
        bid=num("bid"),
        ask=num("ask"),
        last=num("last"),
        mid=(num("bid") + num("ask")) / 2,
        implied_volatility=pl.lit(None, dtype=pl.Float64),
        delta=pl.lit(None, dtype=pl.Float64),
        gamma=pl.lit(None, dtype=pl.Float64),
        underlying_price=num("underlying_last"),
        dte=(day("expiration") - day("quotedate")).dt.total_days(),
        spot_derived=pl.lit(False),
        cboe_iv=num("impliedvol"),
        cboe_gamma=num("gamma"),
    )


@pytest.fixture(scope="module")
def derived() -> pl.DataFrame:
    files = sorted(REAL_CHAINS.glob("SPX_*.csv.gz"))
    assert len(files) == 58, f"expected the 58 real SPX chains in {REAL_CHAINS}"
    chains = pl.concat([_read(path) for path in files[::6]])  # 10 sessions, April to July
    return derive_iv_and_greeks(chains.lazy(), RATE).collect().filter(pl.col("dte") > 0)


def test_derived_ivs_of_liquid_contracts_match_cboe(derived):
    liquid = derived.filter(
        (pl.col("open_interest") >= 1_000)
        & (pl.col("strike") / pl.col("underlying_price")).is_between(0.9, 1.1)
        & pl.col("dte").is_between(2, 60)
        & (pl.col("cboe_iv") > 0)
        & (pl.col("bid") > 0)
    )
    assert liquid.height > 5_000
    assert liquid["implied_volatility"].null_count() == 0
    error = (liquid["implied_volatility"] - liquid["cboe_iv"]).abs()
    assert error.median() <= 0.002
    assert error.quantile(0.95) <= 0.01
    # No q = 0 signature left: calls and puts are not biased against each other.
    by_side = liquid.group_by("option_type").agg((pl.col("implied_volatility") - pl.col("cboe_iv")).median())
    bias = dict(by_side.iter_rows())
    assert abs(bias["C"] - bias["P"]) < 0.002
    # Gamma from the same model: CBOE rounds to 4 decimals.
    gamma_error = (liquid["gamma"] - liquid["cboe_gamma"]).abs()
    assert gamma_error.median() < 1e-4


def test_at_least_99_percent_of_the_contracts_cboe_priced_get_an_iv(derived):
    priced = derived.filter((pl.col("bid") > 0) & (pl.col("cboe_iv") > 0))
    share = priced["implied_volatility"].is_not_null().mean()
    assert share >= 0.99
    # The rest say why, never a silent NULL.
    reasons = set(priced.filter(pl.col("implied_volatility").is_null())["iv_status"])
    assert reasons <= {"below_intrinsic", "above_cap", "no_bid"}
    assert derived["iv_status"].null_count() == 0


def test_forwards_come_from_parity_and_imply_the_dividend_yield(derived):
    expiries = derived.group_by("trade_date", "expiration").agg(
        pl.col("forward", "forward_source", "underlying_price", "dte").first()
    )
    assert set(expiries["forward_source"]) == {"parity"}
    # F = S e^((r - q) T): SPX's dividend yield was about 2% in 2019.
    implied_q = expiries.filter(pl.col("dte").is_between(30, 400)).select(
        RATE - (pl.col("forward") / pl.col("underlying_price")).log() / (pl.col("dte") / 365)
    )
    assert 0.01 < implied_q.to_series().median() < 0.03

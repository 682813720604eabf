"""positioning_daily, expiry_levels and strike_levels against hand-computed numbers and brute force."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tests.builders import CHAIN_MODEL_COLUMNS, silver_chain
from transforms.positioning import (
    EXPIRY_LEVELS_COLUMNS,
    POSITIONING_COLUMNS,
    STRIKE_LEVELS_COLUMNS,
    expiry_levels,
    positioning_daily,
    strike_levels,
    strike_open_interest,
    with_strike_open_interest,
)

D0 = date(2025, 6, 2)  # Monday
D1 = date(2025, 6, 3)
PRIOR = date(2025, 5, 30)  # the Friday before D0
E1 = date(2025, 6, 6)
E2 = date(2025, 6, 20)


def chain(legs, trade_date=D0, underlying="IWM", underlying_price=250.0) -> pl.LazyFrame:
    """A silver chain for one session. legs: (option_type, expiration, strike, open_interest, volume).
    underlying_price: one value, or one per leg."""
    prices = underlying_price if isinstance(underlying_price, list) else [underlying_price] * len(legs)
    return silver_chain(
        [
            {
                "expiration": expiration,
                "strike": float(strike),
                "option_type": kind,
                "open_interest": oi,
                "volume": volume,
                "delta": 0.5 if kind == "C" else -0.5,
                "underlying_price": price,
            }
            for (kind, expiration, strike, oi, volume), price in zip(legs, prices, strict=True)
        ],
        columns=CHAIN_MODEL_COLUMNS,
        trade_date=trade_date,
        underlying=underlying,
        bid=1.0,
        ask=1.2,
        last=1.1,
        mid=1.1,
        implied_volatility=0.2,
        gamma=0.01,
    )


# IWM on D0, spot 250. Per strike over the live expirations E1 and E2:
#   strike  230 235 240 245 250 255 260 265
#   call OI   0   0   0 100 500 500 600 550
#   put OI  300 300 700 500 200  50   0   0
# The D0 contracts expire today and must count nowhere (they would make 250 both walls).
IWM_LEGS = [
    ("C", D0, 250, 99_999, 5_000),
    ("P", D0, 250, 88_888, 4_000),
    ("C", E1, 245, 100, 10),
    ("C", E1, 250, 300, 50),
    ("C", E1, 255, 500, 70),
    ("P", E1, 245, 400, 30),
    ("P", E1, 250, 200, 20),
    ("P", E1, 255, 50, 5),
    ("C", E2, 250, 200, 5),
    ("C", E2, 260, 600, 40),
    ("C", E2, 265, 550, 0),
    ("P", E2, 240, 700, 60),
    ("P", E2, 245, 100, 1),
    ("P", E2, 235, 300, 0),
    ("P", E2, 230, 300, 2),
]
# The chain's quoted spot wobbles; its median is 250.
IWM_PRICES = [249.0, 251.0, 250.0, 250.0, 250.0, 252.0, 248.0] + [250.0] * 8


def iwm_chain(trade_date=D0) -> pl.LazyFrame:
    return chain(IWM_LEGS, trade_date=trade_date, underlying_price=IWM_PRICES)


def one_row(frame: pl.LazyFrame, **keys) -> dict:
    rows = frame.collect().filter(**keys).to_dicts() if keys else frame.collect().to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def brute_force_max_pain(legs, trade_date, spot) -> tuple[date, float]:
    """Nearest expiration after trade_date, and its max-pain strike, by evaluating every listed strike
    against every contract in exact arithmetic."""
    expiration = min(leg[1] for leg in legs if leg[1] > trade_date)
    contracts = [leg for leg in legs if leg[1] == expiration]
    return expiration, brute_force_pain_strike(contracts, spot)


def brute_force_pain_strike(contracts, spot) -> float:
    spot = Fraction(str(spot))

    def pain(s):
        return sum(
            oi * max(Fraction(0), s - Fraction(str(k)) if kind == "C" else Fraction(str(k)) - s)
            for kind, _, k, oi, _ in contracts
        )

    listed = {Fraction(str(leg[2])) for leg in contracts}
    best = min(listed, key=lambda s: (pain(s), abs(s - spot), s))
    return float(best)


# --- totals, put/call ratios, spot --------------------------------------------------------------------


def test_positioning_totals_and_ratios_exclude_contracts_expiring_today():
    row = one_row(positioning_daily(iwm_chain()))
    assert row["trade_date"] == D0 and row["underlying"] == "IWM"
    assert row["spot"] == 250.0
    assert row["contracts"] == 13
    assert (row["call_oi"], row["put_oi"]) == (2250, 2050)
    assert (row["call_volume"], row["put_volume"]) == (175, 118)
    assert row["pcr_oi"] == pytest.approx(2050 / 2250, rel=1e-12)
    assert row["pcr_volume"] == pytest.approx(118 / 175, rel=1e-12)


def test_positioning_columns_and_dtypes():
    frame = positioning_daily(iwm_chain()).collect()
    assert frame.columns == POSITIONING_COLUMNS
    schema = frame.schema
    assert schema["trade_date"] == pl.Date and schema["max_pain_expiration"] == pl.Date
    for name in ("spot", "pcr_oi", "pcr_volume", "call_wall", "put_wall", "max_pain", "next_call_wall"):
        assert schema[name] == pl.Float64, name
    for name in ("contracts", "call_oi", "put_oi", "call_volume", "call_wall_oi", "call_oi_change"):
        assert schema[name] == pl.Int64, name


def test_pcr_is_null_when_the_denominator_is_zero():
    chains = pl.concat(
        [
            chain([("P", E1, 100, 50, 7), ("P", E1, 95, 10, 3)], underlying="PUTS", underlying_price=100.0),
            chain([("C", E1, 100, 40, 0), ("P", E1, 100, 20, 9)], underlying="NOVOL", underlying_price=100.0),
            chain([("C", E1, 100, 40, 4)], underlying="CALLS", underlying_price=100.0),
        ]
    )
    frame = positioning_daily(chains)
    puts_only = one_row(frame, underlying="PUTS")
    assert puts_only["call_oi"] == 0 and puts_only["pcr_oi"] is None and puts_only["pcr_volume"] is None
    assert puts_only["call_wall"] is None and puts_only["call_wall_oi"] is None
    assert (puts_only["put_wall"], puts_only["put_wall_oi"]) == (100.0, 50)
    no_call_volume = one_row(frame, underlying="NOVOL")
    assert no_call_volume["pcr_oi"] == pytest.approx(0.5) and no_call_volume["pcr_volume"] is None
    calls_only = one_row(frame, underlying="CALLS")
    assert calls_only["pcr_oi"] == 0.0 and calls_only["pcr_volume"] == 0.0
    assert calls_only["put_wall"] is None


def test_spot_is_the_chain_median_and_the_bars_close_only_where_the_chain_has_none():
    legs = [("C", E1, 100, 1, 0)] * 3
    chains = chain(legs, underlying_price=[99.0, 101.0, 130.0])
    row = one_row(positioning_daily(chains))
    assert (row["spot"], row["spot_source"]) == (101.0, "chain")
    # SPEC 3: the vendor's spot goes with its quotes; the bars' close does not replace it.
    given = pl.LazyFrame({"trade_date": [D0], "underlying": ["IWM"], "spot": [100.5]})
    row = one_row(positioning_daily(chains, spot=given))
    assert (row["spot"], row["spot_source"]) == (101.0, "chain")
    no_spot = chain(legs, underlying_price=None)
    row = one_row(positioning_daily(no_spot, spot=given))
    assert (row["spot"], row["spot_source"]) == (100.5, "bars")
    # Rows silver filled from the bars (spot_derived) are the bars' close too.
    filled = chain(legs, underlying_price=[99.0, 99.0, 130.0]).with_columns(
        spot_derived=pl.Series([True, True, False])
    )
    row = one_row(positioning_daily(filled))
    assert (row["spot"], row["spot_source"]) == (130.0, "chain")
    row = one_row(positioning_daily(filled.filter(pl.col("spot_derived"))))
    assert (row["spot"], row["spot_source"]) == (99.0, "bars")
    elsewhere = pl.LazyFrame({"trade_date": [D1], "underlying": ["IWM"], "spot": [100.5]})
    assert one_row(positioning_daily(no_spot, spot=elsewhere))["spot"] is None


def test_strike_open_interest_sums_live_expirations_per_strike():
    frame = strike_open_interest(iwm_chain()).collect().sort("strike")
    assert frame["strike"].to_list() == [230.0, 235.0, 240.0, 245.0, 250.0, 255.0, 260.0, 265.0]
    assert frame["call_oi"].to_list() == [0, 0, 0, 100, 500, 500, 600, 550]
    assert frame["put_oi"].to_list() == [300, 300, 700, 500, 200, 50, 0, 0]
    assert frame["call_volume"].to_list() == [0, 0, 0, 10, 55, 70, 40, 0]


def test_every_contract_carries_its_strikes_open_interest():
    # A strike listed only by contracts expiring today (270) has no live open interest to carry.
    legs = [*IWM_LEGS, ("C", D0, 270, 7_777, 0)]
    frame = with_strike_open_interest(chain(legs)).collect()
    totals = {
        (row["option_type"], row["expiration"], row["strike"]): (row["strike_call_oi"], row["strike_put_oi"])
        for row in frame.iter_rows(named=True)
    }
    assert frame.height == len(legs) and frame.columns[-2:] == ["strike_call_oi", "strike_put_oi"]
    assert totals[("C", E2, 260.0)] == (600, 0)
    assert totals[("P", E2, 230.0)] == (0, 300)
    assert totals[("P", E1, 245.0)] == totals[("P", E2, 245.0)] == (100, 500)  # 400 + 100 puts
    # Today's expiring 250s carry the live 250 totals (300 + 200 calls, 200 puts), not their own OI.
    assert totals[("C", D0, 250.0)] == totals[("P", D0, 250.0)] == (500, 200)
    assert totals[("C", D0, 270.0)] == (None, None)
    # The same figures as strike_open_interest, on every live contract.
    by_strike = strike_open_interest(chain(legs)).collect()
    live = frame.filter(pl.col("expiration") > pl.col("trade_date"))
    joined = live.join(by_strike, on=["trade_date", "underlying", "strike"])
    assert joined.height == live.height
    assert joined["strike_call_oi"].equals(joined["call_oi"], check_names=False)
    assert joined["strike_put_oi"].equals(joined["put_oi"], check_names=False)


# --- walls ----------------------------------------------------------------------------------------------


def test_walls_and_next_walls():
    row = one_row(positioning_daily(iwm_chain()))
    assert (row["call_wall"], row["call_wall_oi"]) == (260.0, 600)
    assert (row["put_wall"], row["put_wall_oi"]) == (240.0, 700)
    # Above 260 only 265 carries call OI.
    assert (row["next_call_wall"], row["next_call_wall_oi"]) == (265.0, 550)
    # Below 240, 235 and 230 tie at 300: 235 is nearer spot.
    assert (row["next_put_wall"], row["next_put_wall_oi"]) == (235.0, 300)


def test_wall_ties_go_nearer_spot_then_lower():
    chains = pl.concat(
        [
            # 245 and 255 tie on OI and sit 5 from spot 250 either side: the lower wins.
            chain(
                [
                    ("C", E1, 245, 500, 0),
                    ("C", E2, 255, 500, 0),
                    ("C", E1, 240, 100, 0),
                    ("P", E1, 245, 400, 0),
                    ("P", E1, 255, 400, 0),
                ],
                underlying="AAA",
            ),
            # 255 is nearer spot 250 than 240; 256 nearer than 240.
            chain(
                [
                    ("C", E1, 240, 500, 0),
                    ("C", E1, 255, 500, 0),
                    ("P", E1, 240, 300, 0),
                    ("P", E1, 256, 300, 0),
                ],
                underlying="BBB",
            ),
        ]
    )
    frame = positioning_daily(chains)
    aaa = one_row(frame, underlying="AAA")
    assert (aaa["call_wall"], aaa["put_wall"]) == (245.0, 245.0)
    assert (aaa["next_call_wall"], aaa["next_call_wall_oi"]) == (255.0, 500)
    # Nothing below the lowest put strike.
    assert aaa["next_put_wall"] is None and aaa["next_put_wall_oi"] is None
    bbb = one_row(frame, underlying="BBB")
    assert (bbb["call_wall"], bbb["call_wall_oi"], bbb["put_wall"]) == (255.0, 500, 256.0)
    # Nothing above the highest call strike; below the put wall, 240 carries the same OI.
    assert bbb["next_call_wall"] is None and bbb["next_call_wall_oi"] is None
    assert (bbb["next_put_wall"], bbb["next_put_wall_oi"]) == (240.0, 300)
    # A spot of 254 puts 255 nearer than 245.
    moved = chains.with_columns(underlying_price=pl.lit(254.0))
    assert one_row(positioning_daily(moved), underlying="AAA")["call_wall"] == 255.0


# --- max pain -------------------------------------------------------------------------------------------


def test_max_pain_on_the_nearest_expiration_by_hand_and_brute_force():
    # E1 (D0 expires today): calls 245x100 250x300 255x500, puts 245x400 250x200 255x50.
    #   pain(245) = puts 200*5 + 50*10          = 1500
    #   pain(250) = calls 100*5 + puts 50*5     =  750  <- minimum
    #   pain(255) = calls 100*10 + 300*5        = 2500
    row = one_row(positioning_daily(iwm_chain()))
    assert row["max_pain_expiration"] == E1
    assert row["max_pain"] == 250.0
    assert brute_force_max_pain(IWM_LEGS, D0, 250.0) == (E1, 250.0)


def test_expiry_levels_by_hand():
    frame = expiry_levels(iwm_chain()).collect()
    assert frame.columns == EXPIRY_LEVELS_COLUMNS
    assert frame["expiration"].to_list() == [E1, E2]
    assert frame["dte"].to_list() == [4, 18]
    assert frame["contracts"].to_list() == [6, 7]
    assert frame["call_contracts"].to_list() == [3, 3]
    assert frame["put_contracts"].to_list() == [3, 4]
    assert frame["call_oi"].to_list() == [900, 1350]
    assert frame["put_oi"].to_list() == [650, 1400]
    assert frame["pcr_oi"].to_list() == pytest.approx([650 / 900, 1400 / 1350], rel=1e-12)
    assert frame["call_volume"].to_list() == [130, 45]
    assert frame["put_volume"].to_list() == [55, 63]
    # E2: pain(230)=10000, 235: 4500, 240: 500, 245: 0, 250: 0, 260: 2000, 265: 6000.
    # 245 and 250 tie at zero; 250 is spot.
    assert frame["max_pain"].to_list() == [250.0, 250.0]
    e2 = [leg for leg in IWM_LEGS if leg[1] == E2]
    assert brute_force_pain_strike(e2, 250.0) == 250.0


@pytest.mark.parametrize(
    ("spot", "expected"),
    [(107.0, 105.0), (109.0, 110.0), (107.5, 105.0), (101.0, 100.0)],
    ids=["nearer-105", "nearer-110", "equidistant-lower", "nearer-100"],
)
def test_max_pain_ties_go_nearer_spot_then_lower(spot, expected):
    # Pain is 1000 at every listed strike: 100 (puts 100*10), 105 (100*5 + 100*5), 110 (calls 100*10).
    legs = [("C", E1, 100, 100, 0), ("C", E1, 105, 0, 0), ("P", E1, 110, 100, 0)]
    assert one_row(positioning_daily(chain(legs, underlying_price=spot)))["max_pain"] == expected
    assert brute_force_pain_strike(legs, spot) == expected


def test_max_pain_tie_is_not_decided_by_float_noise():
    # On paper pain(126.8) = 10*0.1 = 1 = pain(126.9) = 10*0.1, and 126.8 is spot. Summed in floats,
    # pain(126.8) comes out 1.0000000000002274 and 126.9 would win.
    legs = [("C", E1, 126.8, 10, 0), ("P", E1, 126.7, 10, 0), ("P", E1, 126.8, 1, 0), ("P", E1, 126.9, 10, 0)]
    assert one_row(positioning_daily(chain(legs, underlying_price=126.8)))["max_pain"] == 126.8
    assert brute_force_pain_strike(legs, 126.8) == 126.8


@pytest.mark.parametrize("calls_first", [True, False])
@pytest.mark.parametrize(("spot", "expected"), [(100.0003, 100.0004), (100.0001, 100.0)])
def test_max_pain_strikes_apart_only_by_float_noise_are_one_strike(calls_first, spot, expected):
    # 100.0 and 100.0004 are both the OSI strike 100.000, so one strike: pain 0 there (25 at 95, 150 at
    # 105), and spot picks the spelling. Counted call first, only the call's running OI (0 to 30)
    # straddles the put OI of 5, not the put's (30 to 35): the put's strike is a candidate all the same.
    legs = [("C", E1, 100.0, 30, 0), ("P", E1, 100.0004, 5, 0), ("C", E1, 95, 0, 0), ("P", E1, 105, 0, 0)]
    legs = legs if calls_first else [legs[1], legs[0], *legs[2:]]
    assert one_row(positioning_daily(chain(legs, underlying_price=spot)))["max_pain"] == expected
    assert expiry_levels(chain(legs, underlying_price=spot)).collect()["max_pain"].to_list() == [expected]


def test_spot_distance_ties_are_not_decided_by_float_noise():
    # 100.1 and 100.3 are both 0.1 from 100.2, but in floats 100.3 - 100.2 < 100.2 - 100.1.
    legs = [("C", E1, 100.1, 50, 0), ("C", E1, 100.3, 50, 0), ("P", E1, 100.1, 0, 0), ("P", E1, 100.3, 0, 0)]
    row = one_row(positioning_daily(chain(legs, underlying_price=100.2)))
    assert row["call_wall"] == 100.1
    # pain(100.1) = 0 (no puts), pain(100.3) = 50*0.2: not a tie, the minimum wins regardless.
    assert row["max_pain"] == 100.1
    assert strike_levels(chain(legs, underlying_price=100.2)).collect()["strike"].to_list() == [100.1, 100.3]


def test_max_pain_only_considers_strikes_listed_in_the_nearest_expiration():
    # 250 would be the pain minimum, but it is listed only in E2.
    legs = [("C", E1, 240, 100, 0), ("P", E1, 260, 100, 0), ("C", E2, 250, 0, 0)]
    row = one_row(positioning_daily(chain(legs)))
    assert row["max_pain_expiration"] == E1
    # pain(240) = 100*20 = pain(260), both 10 from spot: the lower. Counting 250 (pain 2000 too) would pick it.
    assert row["max_pain"] == 240.0


# --- OI change ------------------------------------------------------------------------------------------


def test_oi_change_against_the_latest_earlier_session_in_previous():
    previous = pl.LazyFrame(
        {
            "trade_date": [date(2025, 5, 28), PRIOR, D1, PRIOR],
            "underlying": ["IWM", "IWM", "IWM", "SPY"],
            "call_oi": [1, 2000, 9, 7],
            "put_oi": [1, 2500, 9, 7],
        }
    )
    row = one_row(positioning_daily(iwm_chain(), previous=previous))
    # D1 is later than the session (no lookahead); SPY is another underlying.
    assert (row["call_oi_change"], row["put_oi_change"]) == (2250 - 2000, 2050 - 2500)
    alone = one_row(positioning_daily(iwm_chain()))
    assert alone["call_oi_change"] is None and alone["put_oi_change"] is None


def test_oi_change_inside_a_multi_date_chain_and_across_previous():
    d1_legs = [("C", E1, 250, 1000, 0), ("P", E1, 250, 3000, 0)]
    chains = pl.concat([iwm_chain(D0), chain(d1_legs, trade_date=D1)])
    previous = pl.LazyFrame(
        {
            # The stored D0 row is superseded by D0 recomputed from chains.
            "trade_date": [PRIOR, D0, PRIOR],
            "underlying": ["IWM", "IWM", "QQQ"],
            "call_oi": [2000, 1, 40],
            "put_oi": [2500, 1, 50],
        }
    )
    qqq = chain([("C", E1, 500, 45, 0), ("P", E1, 500, 45, 0)], trade_date=D1, underlying="QQQ")
    frame = positioning_daily(pl.concat([chains, qqq]), previous=previous)
    d0 = one_row(frame, underlying="IWM", trade_date=D0)
    assert (d0["call_oi_change"], d0["put_oi_change"]) == (250, -450)
    d1 = one_row(frame, underlying="IWM", trade_date=D1)
    assert (d1["call_oi_change"], d1["put_oi_change"]) == (1000 - 2250, 3000 - 2050)
    # QQQ has no D0 session, the one before D1: no change (not one against PRIOR, two sessions back).
    q = one_row(frame, underlying="QQQ")
    assert (q["call_oi_change"], q["put_oi_change"]) == (None, None)


def _three_sessions() -> list[pl.LazyFrame]:
    d2 = date(2025, 6, 4)
    return [
        pl.concat(
            [
                iwm_chain(D0),
                chain([("C", E1, 100, 5, 1), ("P", E2, 90, 6, 2)], underlying="XLF", underlying_price=100.0),
            ]
        ),
        chain([("C", E1, 250, 1000, 3), ("P", E1, 240, 3000, 4), ("C", D1, 250, 77, 0)], trade_date=D1),
        pl.concat(
            [
                chain([("C", E1, 255, 800, 3), ("P", E2, 240, 2900, 4)], trade_date=d2),
                chain(
                    [("C", E1, 100, 9, 1), ("P", E2, 90, 1, 2)],
                    trade_date=d2,
                    underlying="XLF",
                    underlying_price=101.0,
                ),
            ]
        ),
    ]


def test_positioning_backfill_equals_day_by_day():
    days = _three_sessions()
    backfill = positioning_daily(pl.concat(days)).collect()
    previous = None
    nightly = []
    for day in days:  # as the nightly runs: the previous session's rows from the lake, no more
        today = positioning_daily(day, previous=previous).collect()
        nightly.append(today)
        previous = today.lazy()
    assert_frame_equal(backfill, pl.concat(nightly).sort("trade_date", "underlying"))
    # XLF skipped D1, the session before D2: its D2 change is unknown, in both.
    xlf = backfill.filter(underlying="XLF", trade_date=date(2025, 6, 4)).row(0, named=True)
    assert (xlf["call_oi_change"], xlf["put_oi_change"]) == (None, None)
    iwm = backfill.filter(underlying="IWM", trade_date=date(2025, 6, 4)).row(0, named=True)
    assert (iwm["call_oi_change"], iwm["put_oi_change"]) == (800 - 1000, 2900 - 3000)


# --- strike levels --------------------------------------------------------------------------------------


def test_strike_levels_ranks_volumes_and_ties():
    frame = strike_levels(iwm_chain(), top_n=3).collect()
    assert frame.columns == STRIKE_LEVELS_COLUMNS
    assert frame.schema["rank"] == pl.Int64 and frame.schema["open_interest"] == pl.Int64
    calls = frame.filter(side="call")
    # 250 and 255 tie at 500 for rank 3: 250 is spot.
    assert calls["rank"].to_list() == [1, 2, 3]
    assert calls["strike"].to_list() == [260.0, 265.0, 250.0]
    assert calls["open_interest"].to_list() == [600, 550, 500]
    assert calls["volume"].to_list() == [40, 0, 55]
    puts = frame.filter(side="put")
    # 235 and 230 tie at 300: 235 is nearer.
    assert puts["strike"].to_list() == [240.0, 245.0, 235.0]
    assert puts["open_interest"].to_list() == [700, 500, 300]
    assert puts["volume"].to_list() == [60, 31, 0]
    assert frame["oi_change"].null_count() == 6  # no earlier session
    assert strike_levels(iwm_chain()).collect().height == 5 + 5


def test_strike_levels_rank_one_is_the_wall():
    levels = strike_levels(iwm_chain()).collect().filter(rank=1)
    row = one_row(positioning_daily(iwm_chain()))
    assert levels.filter(side="call")["strike"].item() == row["call_wall"]
    assert levels.filter(side="put")["strike"].item() == row["put_wall"]


def test_strike_levels_oi_change_against_previous_chains():
    previous_chains = pl.concat(
        [
            chain(
                [
                    ("C", PRIOR, 260, 10_000, 0),  # expired on its own date: not part of PRIOR's OI
                    ("C", E1, 260, 450, 0),
                    ("C", E2, 260, 50, 0),
                    ("P", E1, 250, 999, 0),  # a put at 250 says nothing about calls at 250
                    ("P", E2, 240, 1000, 0),
                    ("P", E2, 235, 300, 0),
                ],
                trade_date=PRIOR,
            ),
            chain([("C", E2, 260, 99, 0)], trade_date=date(2025, 5, 28)),  # older than PRIOR
            chain([("C", E2, 260, 1, 0)], trade_date=D1),  # later than D0: no lookahead
        ]
    )
    frame = strike_levels(iwm_chain(), previous_chains=previous_chains, top_n=3).collect()
    calls = frame.filter(side="call")
    assert calls["strike"].to_list() == [260.0, 265.0, 250.0]
    assert calls["oi_change"].to_list() == [600 - 500, 550 - 0, 500 - 0]
    puts = frame.filter(side="put")
    assert puts["strike"].to_list() == [240.0, 245.0, 235.0]
    assert puts["oi_change"].to_list() == [700 - 1000, 500 - 0, 300 - 300]


def test_strike_levels_a_stored_copy_of_the_session_is_replaced_by_the_chain():
    # previous_chains also holds a stale copy of D0 itself (the lake before a re-run): it is neither
    # the prior session nor extra OI; the change is against PRIOR, with PRIOR's OI only.
    prior = chain([("C", E2, 260, 450, 0), ("P", E2, 240, 1000, 0)], trade_date=PRIOR)
    stale = chain([("C", E2, 260, 7, 0), ("C", E2, 265, 7, 0), ("P", E2, 240, 7, 0)], trade_date=D0)
    frame = strike_levels(iwm_chain(), previous_chains=pl.concat([prior, stale]), top_n=3).collect()
    assert frame.filter(side="call").select("strike", "oi_change").rows() == [
        (260.0, 600 - 450),
        (265.0, 550 - 0),
        (250.0, 500 - 0),
    ]
    assert frame.filter(side="put").select("strike", "oi_change").rows() == [
        (240.0, 700 - 1000),
        (245.0, 500 - 0),
        (235.0, 300 - 0),
    ]


def test_strike_levels_backfill_equals_day_by_day():
    days = _three_sessions()
    backfill = strike_levels(pl.concat(days), top_n=2).collect()
    # As the nightly runs: the previous session's chain from the lake, no more. XLF skips D1, the
    # session before D2, so its D2 changes are unknown (NULL), in both.
    nightly = [
        strike_levels(day, previous_chains=days[i - 1] if i else None, top_n=2).collect()
        for i, day in enumerate(days)
    ]
    expected = pl.concat(nightly).sort("trade_date", "underlying", "side", "rank")
    assert_frame_equal(backfill, expected)
    xlf = backfill.filter(trade_date=date(2025, 6, 4), underlying="XLF")
    assert xlf.height == 2 and xlf["oi_change"].null_count() == 2
    d1_calls = backfill.filter(trade_date=D1, side="call")
    # D1 call 250: 1000 now vs 500 at D0 (E1 300 + E2 200); the D1-expiring 77 does not count.
    assert d1_calls.rows() == [(D1, "IWM", "call", 1, 250.0, 1000, 3, 500)]


# --- properties -----------------------------------------------------------------------------------------

EXPIRATIONS = [D0, D0 + timedelta(days=3), D0 + timedelta(days=10)]
legs_strategy = st.lists(
    st.tuples(
        st.sampled_from(["C", "P"]),
        st.sampled_from(EXPIRATIONS),
        st.integers(min_value=180, max_value=220).map(lambda half_dollars: half_dollars / 2),
        st.integers(min_value=0, max_value=400),
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda leg: (leg[0], leg[1], leg[2]),
).filter(lambda legs: any(leg[1] > D0 for leg in legs))
spot_strategy = st.integers(min_value=1800, max_value=2200).map(lambda tenths: tenths / 20)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(legs=legs_strategy, spot=spot_strategy)
def test_properties_max_pain_walls_and_ratios(legs, spot):
    chains = chain(legs, underlying_price=spot)
    row = one_row(positioning_daily(chains))
    live = [leg for leg in legs if leg[1] > D0]

    nearest, expected_pain = brute_force_max_pain(legs, D0, spot)
    assert row["max_pain_expiration"] == nearest
    assert row["max_pain"] in {leg[2] for leg in live if leg[1] == nearest}
    assert row["max_pain"] == expected_pain

    for level in expiry_levels(chains).collect().iter_rows(named=True):
        contracts = [leg for leg in live if leg[1] == level["expiration"]]
        assert level["max_pain"] == brute_force_pain_strike(contracts, spot)

    if row["call_oi"] == 0:
        assert row["pcr_oi"] is None
    else:
        assert row["pcr_oi"] == pytest.approx(row["put_oi"] / row["call_oi"], rel=1e-12)

    for kind, side in (("C", "call"), ("P", "put")):
        by_strike: dict[float, int] = {}
        for leg in live:
            if leg[0] == kind:
                by_strike[leg[2]] = by_strike.get(leg[2], 0) + leg[3]
        top = max(by_strike.values(), default=0)
        wall, wall_oi = row[f"{side}_wall"], row[f"{side}_wall_oi"]
        if top == 0:
            assert wall is None
            continue
        assert wall in by_strike and by_strike[wall] == wall_oi == top
        tied = [k for k, oi in by_strike.items() if oi == top]
        assert wall == min(tied, key=lambda k: (abs(Fraction(str(k)) - Fraction(str(spot))), k))
        next_wall = row[f"next_{side}_wall"]
        beyond = {k: oi for k, oi in by_strike.items() if (k > wall if kind == "C" else k < wall) and oi > 0}
        if beyond:
            assert next_wall in beyond and row[f"next_{side}_wall_oi"] == max(beyond.values())
        else:
            assert next_wall is None

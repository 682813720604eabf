"""Data that explains itself (SPEC 2): trade_date inside every silver and gold file for any reader,
`symbol` as the instrument in every gold table, and a warehouse whose tables and columns carry comments
from the gold models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from flows.market.simulator import generate_demo_market
from flows.nightly import backfill
from schemas.gold import GOLD, GOLD_TABLES

SYMBOLS = ["IWM", "SPY"]
# The partition column declared for pyarrow's hive discovery, which would otherwise infer a string.
PARTITIONING = ds.partitioning(pa.schema([("trade_date", pa.date32())]), flavor="hive")


@dataclass
class Built:
    lake: Path
    database: Path
    days: list[date]


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_api) -> Built:
    root = tmp_path_factory.mktemp("described")
    market = generate_demo_market(root / "landing", sessions=260, chain_sessions=3, symbols=SYMBOLS)
    days = market.chain_sessions
    backfill(start=days[0], end=days[-1], warehouse=str(root / "wh"), landing=str(root / "landing"))
    return Built(root / "wh" / "lake", root / "wh" / "signals.duckdb", list(days))


def warehouse(built: Built, sql: str) -> list[tuple]:
    con = duckdb.connect(str(built.database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def as_dates(values) -> list[date]:
    """A column's values as dates, failing on anything that is not one (a string, a timestamp)."""
    out = list(values)
    assert all(type(v) is date for v in out), {type(v) for v in out}
    return out


@pytest.mark.parametrize(
    ("layer", "dataset"), [("gold", "positioning_daily"), ("gold", "idea_outcomes"), ("silver", "chains")]
)
def test_every_reader_sees_trade_date_as_a_date(built: Built, layer: str, dataset: str):
    root = built.lake / layer / dataset
    folders = sorted(root.glob("trade_date=*"))
    assert folders, root
    folder = folders[-1]
    day = date.fromisoformat(folder.name.removeprefix("trade_date="))
    file = min(folder.glob("*.parquet"))
    expected = pl.read_parquet(file, hive_partitioning=False)
    assert (
        expected.height and expected.columns[0] == "trade_date" and expected.schema["trade_date"] == pl.Date
    )
    assert as_dates(expected["trade_date"].unique()) == [day]

    # Sessions whose partition holds rows (the first session has no outcomes yet: an empty file).
    every_day = sorted(
        date.fromisoformat(f.name.removeprefix("trade_date="))
        for f in folders
        if any(pl.scan_parquet(p).select(pl.len()).collect().item() for p in f.glob("*.parquet"))
    )
    con = duckdb.connect()
    try:
        for hive in ("true", "false"):
            sql = (
                f"SELECT trade_date, typeof(trade_date) FROM read_parquet('{root}/*/*.parquet', "
                f"hive_partitioning = {hive}, union_by_name = true)"
            )
            rows = con.execute(sql).fetchall()
            assert {t for _, t in rows} == {"DATE"}, hive
            assert sorted({d for d, _ in rows}) == every_day, hive
    finally:
        con.close()
    for hive in (True, False):
        scanned = pl.scan_parquet(f"{root}/**/*.parquet", hive_partitioning=hive).collect()
        assert scanned.schema["trade_date"] == pl.Date and sorted(scanned["trade_date"].unique()) == every_day
    for partitioning in (None, PARTITIONING):
        table = ds.dataset(root, format="parquet", partitioning=partitioning).to_table()
        assert table.schema.field("trade_date").type == pa.date32(), partitioning
        assert sorted(set(table.column("trade_date").to_pylist())) == every_day
    for path, kwargs in (
        (root, {"partitioning": None}),
        (root, {"partitioning": PARTITIONING}),
        (folder, {}),
        (file, {}),
    ):
        frame = pd.read_parquet(path, **kwargs)
        assert list(frame.columns).count("trade_date") == 1, path
        assert set(as_dates(frame["trade_date"])) <= set(every_day), path
    # The values are the file's, whatever the reader.
    key = "underlying" if layer == "silver" else "symbol"
    from_pandas = pd.read_parquet(file)
    assert as_dates(from_pandas["trade_date"]) == expected["trade_date"].to_list()
    assert from_pandas[key].tolist() == expected[key].to_list()


def test_every_warehouse_table_and_column_has_a_comment(built: Built):
    tables = [*GOLD_TABLES, "pipeline_runs"]
    listed = ", ".join(f"'{t}'" for t in tables)
    columns = warehouse(
        built, f"SELECT table_name, column_name, comment FROM duckdb_columns() WHERE table_name IN ({listed})"
    )
    assert {t for t, _, _ in columns} == set(tables)
    assert [(t, c) for t, c, comment in columns if not comment] == []
    assert len(columns) == sum(len(t.schema) for t in GOLD) + 11
    comments = dict(
        warehouse(built, f"SELECT table_name, comment FROM duckdb_tables() WHERE table_name IN ({listed})")
    )
    assert set(comments) == set(tables) and all(comments.values())
    unit = dict(
        warehouse(
            built, "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'positioning_daily'"
        )
    )
    assert unit["net_gex"].endswith("(dollars per 1% move)") and unit["atm_iv_30"].endswith("(fraction)")


def test_keys_and_not_null_are_declared_where_the_data_guarantees_them(built: Built):
    keys = dict(
        warehouse(
            built,
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type = 'PRIMARY KEY'",
        )
    )
    assert keys["positioning_daily"] == ["trade_date", "symbol"]
    assert keys["idea_outcomes"] == ["trade_date", "idea_id"]
    assert set(keys) == {
        "technicals_daily",
        "positioning_daily",
        "flow_daily",
        "signals_daily",
        "trade_ideas",
        "idea_outcomes",
    }  # not blocks (two identical prints are both real), nor the big ones
    nullable = dict(
        warehouse(
            built,
            "SELECT column_name, is_nullable FROM duckdb_columns() WHERE table_name = 'positioning_daily'",
        )
    )
    assert not nullable["spot"] and not nullable["symbol"] and nullable["gamma_flip"]


def test_gold_tables_join_using_trade_date_and_symbol(built: Built):
    for table in GOLD_TABLES:
        names = [
            r[0]
            for r in warehouse(
                built, f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}'"
            )
        ]
        assert "symbol" in names and "underlying" not in names, table
    rows = warehouse(
        built,
        """
        SELECT t.symbol, t.trade_date, p.call_wall, e.expiration, s.rank, f.block_count, g.bias
        FROM technicals_daily AS t
        JOIN positioning_daily AS p USING (trade_date, symbol)
        JOIN expiry_levels AS e USING (trade_date, symbol)
        JOIN strike_levels AS s USING (trade_date, symbol)
        JOIN flow_daily AS f USING (trade_date, symbol)
        JOIN signals_daily AS g USING (trade_date, symbol)
        WHERE s.rank = 1 AND s.side = 'call'""",
    )
    assert {r[0] for r in rows} == set(SYMBOLS)
    assert {r[1] for r in rows} == set(built.days)
    assert all(r[2] is not None for r in rows)
    assert (
        warehouse(
            built,
            """
        SELECT count(*) FROM trade_ideas JOIN positioning_daily USING (trade_date, symbol)""",
        )[0][0]
        == warehouse(built, "SELECT count(*) FROM trade_ideas WHERE symbol IN ('IWM', 'SPY')")[0][0]
        > 0
    )
    assert (
        warehouse(built, "SELECT count(*) FROM blocks JOIN flow_daily USING (trade_date, symbol)")[0][0]
        == warehouse(built, "SELECT count(*) FROM blocks")[0][0]
    )


def test_latest_idea_outcomes_is_each_ideas_latest_snapshot(built: Built):
    snapshots = warehouse(built, "SELECT count(*), count(DISTINCT idea_id) FROM idea_outcomes")[0]
    assert snapshots[0] > snapshots[1] > 0  # ideas still open at a later session repeat
    latest = warehouse(built, "SELECT idea_id, trade_date, status FROM latest_idea_outcomes ORDER BY idea_id")
    expected = warehouse(
        built,
        """
        SELECT idea_id, trade_date, status FROM idea_outcomes AS o
        WHERE trade_date = (SELECT max(trade_date) FROM idea_outcomes AS i WHERE i.idea_id = o.idea_id)
        ORDER BY idea_id""",
    )
    assert latest == expected and len(latest) == snapshots[1]


def test_gold_files_from_before_the_rename_are_read_by_symbol(tmp_path: Path):
    """A lake whose earlier gold still names the instrument `underlying` keeps feeding IV rank, the PCR
    history, the OI changes and a --symbols re-run's kept rows."""
    from flows.stages.gold import _gold_positioning, _scan_gold
    from flows.storage.lake import Lake

    lake = Lake(tmp_path)
    old = tmp_path / "gold" / "positioning_daily" / "trade_date=2025-01-02"
    old.mkdir(parents=True)
    pl.DataFrame({"underlying": ["IWM"], "pcr_oi": [1.5]}).write_parquet(old / "part-0.parquet")
    lake.write_partitions(
        pl.DataFrame({"trade_date": [date(2025, 1, 3)], "symbol": ["SPY"], "pcr_oi": [0.7]}),
        "gold",
        "positioning_daily",
    )
    schema = {"trade_date": pl.Date(), "symbol": pl.String(), "pcr_oi": pl.Float64()}
    assert _scan_gold(lake, "positioning_daily", schema).collect().rows() == [
        (date(2025, 1, 2), "IWM", 1.5),
        (date(2025, 1, 3), "SPY", 0.7),
    ]
    assert _gold_positioning(lake, {"pcr_oi": pl.Float64()}).collect().columns == [
        "trade_date",
        "underlying",
        "pcr_oi",
    ]

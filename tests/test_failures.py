"""Issue 20: failures, hostile files and signals never publish a wrong or partial day."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli.validate import validate_file
from flows.config import DEFAULT_CONFIG, load_settings
from flows.sources.files import SourceError
from flows.stages.silver import RejectedShareError
from flows.storage.faults import DISK_FULL_POINTS
from flows.storage.lake import Lake, read_manifest
from flows.storage.warehouse import warehouse_lock
from schemas.gold import GOLD_TABLES, GoldValidationError, TechnicalsDaily, validate_gold
from tests.helpers import CHAINSIGNALS, cli, cli_run, config_with, gold_bytes, query, run_nightly
from tests.spec_note import (
    LAST_DAY,
    NEXT_DAY,
    NOTE_DATE,
    add_session,
    note_chain,
    rewrite_bars_in_place,
    write_note_landing,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def debris(root: Path) -> list[str]:
    """Temporary files and folders a run must never leave behind."""
    return sorted(
        str(p)
        for p in (root / "wh").rglob("*")
        if ".tmp-" in p.name or ".next-" in p.name or p.name == ".publish-journal.json"
    )


@pytest.mark.parametrize("point", DISK_FULL_POINTS)
def test_disk_full_at_each_write_point_says_so_with_the_path_and_changes_nothing(
    point, before_next_day, tmp_path
):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    database = tmp_path / "wh" / "signals.duckdb"
    database_before, gold_before = database.read_bytes(), gold_bytes(tmp_path)
    run = cli_run(tmp_path, dict(env, CHAINSIGNALS_DISK_FULL_AT=point))
    said = run.stdout + run.stderr
    assert "No space left on device" in said, (point, said[-800:])
    assert str(tmp_path / "wh") in said.replace("\n", ""), (point, said[-800:])
    assert debris(tmp_path) == []
    if point == "report-write":  # after the publish: the day is in, its report is not, and no half of it
        assert run.returncode == 0, said[-800:]
        assert not (tmp_path / "wh" / "reports" / str(NEXT_DAY)).exists()
        assert not [p for p in (tmp_path / "wh" / "reports").iterdir() if ".tmp-" in p.name]
        return
    assert run.returncode == 1, said[-800:]
    assert database.read_bytes() == database_before
    assert gold_bytes(tmp_path) == gold_before
    assert not any((tmp_path / "wh" / "lake" / "_staging").glob("*"))


# ------------------------------------------------------------------------------------------ item 2
def every_gold_number_finite(root: Path) -> dict[str, int]:
    """Per gold table in the warehouse: rows with an inf or NaN in any DOUBLE column (the test wants 0)."""
    con = duckdb.connect(str(root / "wh" / "signals.duckdb"), read_only=True)
    try:
        out = {}
        for table in GOLD_TABLES:
            doubles = [
                c
                for c, t in con.execute(
                    f"SELECT column_name, data_type FROM information_schema.columns "
                    f"WHERE table_name = '{table}'"
                ).fetchall()
                if t == "DOUBLE"
            ]
            assert doubles, table
            bad = " OR ".join(f'NOT isfinite("{c}")' for c in doubles)
            out[table] = con.execute(f"SELECT count(*) FROM {table} WHERE {bad}").fetchall()[0][0]
        return out
    finally:
        con.close()


def test_non_finite_and_overflowing_numbers_are_quarantined_and_never_reach_gold(tmp_path: Path):
    write_note_landing(tmp_path / "landing")
    chains = tmp_path / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    good = note_chain()
    row = good.slice(0, 1)
    bad = pl.concat(
        [
            row.with_columns(pl.lit(float("inf")).alias("gamma")),
            row.with_columns(pl.lit(float("nan")).alias("implied_volatility")),
            row.with_columns(pl.lit(1e308).alias("implied_volatility")),
            row.with_columns(pl.lit(float("inf")).alias("underlying_price")),
            row.with_columns(pl.lit(float("inf")).alias("ask")),
            row.with_columns(
                pl.lit(1e308).alias("strike"), pl.lit(None, dtype=pl.String).alias("option_symbol")
            ),
        ],
        how="diagonal_relaxed",
    )
    pl.concat([good, bad], how="diagonal_relaxed").write_csv(chains)
    bars_file = tmp_path / "landing" / "bars" / f"bars_{NOTE_DATE}.csv"
    bars = pl.read_csv(bars_file, try_parse_dates=True)
    pl.concat(
        [
            bars,
            bars.head(1).with_columns(
                pl.lit("INF").alias("symbol"),
                pl.lit(float("inf")).alias("open"),
                pl.lit(float("inf")).alias("high"),
            ),
            bars.head(1).with_columns(pl.lit("HUGE").alias("symbol"), pl.lit(1e308).alias("high")),
        ]
    ).write_csv(bars_file)
    config = config_with(tmp_path, max_rejected_share=0.5, min_rows_for_limit=1)
    run_nightly(tmp_path, NOTE_DATE, config=config)

    lake = Lake(tmp_path / "wh" / "lake")
    chain_q = pl.read_parquet(lake.files("quarantine", "chains", dates=[NOTE_DATE]))
    reasons = chain_q.get_column("_reason").to_list()
    for expected in (
        "non_finite:gamma",
        "out_of_range:implied_volatility",
        "non_finite:underlying_price",
        "non_finite:ask",
        "out_of_range:strike",
    ):
        assert sum(expected in r.split("; ") for r in reasons) == 1, (expected, reasons)
    # SPEC 3: a vendor's non-finite IV means "not computed", so that row is kept with its IV derived
    # from the mid; as it repeats a good row and comes later in the file, the good one is the duplicate.
    assert not any("implied_volatility" in r and "out_of_range" not in r for r in reasons)
    assert sum(r.startswith("duplicate:") for r in reasons) == 1
    assert len(chain_q) == 6
    silver = pl.read_parquet(lake.files("silver", "chains", dates=[NOTE_DATE]))
    assert len(silver) == len(good)
    first = row.row(0, named=True)
    kept = silver.filter(
        pl.col("expiration") == first["expiration"],
        pl.col("strike") == first["strike"],
        pl.col("option_type") == first["option_type"],
    )
    # (the 225 call is deep in the money and its put has no bid, so its own mid is inverted)
    assert kept.select("iv_status", "iv_derived").row(0) == ("derived_itm", True)
    assert kept.get_column("implied_volatility").item() > 0
    bars_q = pl.read_parquet(lake.files("quarantine", "bars", dates=[NOTE_DATE])).sort("symbol")
    assert bars_q.select("symbol", "_reason").rows() == [
        ("HUGE", "out_of_range:high"),
        ("INF", "non_finite:open; non_finite:high"),
    ]
    assert every_gold_number_finite(tmp_path) == dict.fromkeys(GOLD_TABLES, 0)
    # The same rows through `validate`: counted, never a crash.
    report = validate_file(
        load_settings(config, warehouse=tmp_path / "wh", landing=tmp_path / "landing"), chains, "chains", None
    )
    assert (report.rows, report.rejected, report.duplicates) == (len(good) + 6, 5, 1)


def test_the_gold_validator_refuses_a_non_finite_number_and_names_it():
    frame = pl.DataFrame(
        {
            "trade_date": [NOTE_DATE],
            "symbol": ["IWM"],
            "open": [1.0],
            "high": [float("inf")],
            "low": [1.0],
            "close": [1.0],
            "volume": [1],
        }
    )
    with pytest.raises(GoldValidationError, match=r"^technicals_daily: non_finite:high \(1 rows\)$"):
        validate_gold(frame, TechnicalsDaily)


# ------------------------------------------------------------------------------------------ item 10
def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (from /proc; zombies do not count, they hold nothing)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_serverless_run(root: Path, env: dict, **extra: str) -> subprocess.Popen:
    """`chainsignals run` as an operator starts it: no Prefect server, so it starts its temporary one."""
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"} | extra
    return subprocess.Popen(
        [
            str(CHAINSIGNALS),
            "run",
            "--date",
            str(NEXT_DAY),
            "--warehouse",
            str(root / "wh"),
            "--landing",
            str(root / "landing"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_a_signal_mid_run_stops_it_within_seconds_records_it_and_leaves_no_process(
    sig, code, before_next_day, tmp_path
):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    database = tmp_path / "wh" / "signals.duckdb"
    database_before, gold_before = database.read_bytes(), gold_bytes(tmp_path)
    mark = tmp_path / "paused"
    run = start_serverless_run(
        tmp_path, env, CHAINSIGNALS_PAUSE_AT="gold-half-written", CHAINSIGNALS_PAUSE_MARK=str(mark)
    )
    try:
        assert wait_for(mark.exists, 240), run.communicate(timeout=30)
        server = children(run.pid)
        assert server, "the serverless run has its temporary Prefect server"
        sent = time.monotonic()
        (os.killpg if sig == signal.SIGINT else os.kill)(run.pid, sig)  # Ctrl-C goes to the process group
        _, stderr = run.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == code, stderr[-800:]
    assert took < 15, took
    assert wait_for(lambda: not any(alive(pid) for pid in server), 10), [p for p in server if alive(p)]
    assert database.read_bytes() == database_before and gold_bytes(tmp_path) == gold_before
    if sig == signal.SIGKILL:  # nothing runs after SIGKILL: the server still went with the CLI
        return
    assert "interrupted" in stderr
    last = json.loads((tmp_path / "wh" / "logs" / "runs.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "interrupted", last
    assert debris(tmp_path) == [] and not any((tmp_path / "wh" / "lake" / "_staging").glob("*"))


def test_ctrl_c_in_the_first_second_stops_the_run_at_once(before_next_day, tmp_path):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    run = start_serverless_run(tmp_path, env)
    try:
        time.sleep(1.0)
        sent = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        _, stderr = run.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stderr[-800:]
    assert took < 10, took
    assert wait_for(lambda: not children(run.pid), 10)


# ------------------------------------------------------------------------------------------ items 3-7
PRINTS = (
    "ts,option_symbol,price,size,bid,ask,exchange\n"
    "2025-12-29T10:15:00-05:00,IWM   260116C00255000,4.10,2500,4.00,4.10,CBOE\n"
)


def test_a_file_with_new_bytes_but_the_same_size_and_mtime_is_ingested_again(note: Path):
    run_nightly(note, NOTE_DATE)
    bars, before = rewrite_bars_in_place(note / "landing")
    assert (bars.stat().st_size, bars.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    summary = run_nightly(note, NOTE_DATE)
    assert summary.files_read == 1
    assert query(
        note, "SELECT volume FROM technicals_daily WHERE symbol = 'IWM' AND trade_date = ?", [NOTE_DATE]
    ) == [(30_000_001,)]


def test_a_corrected_chain_re_validates_that_days_prints(note: Path):
    chains = note / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    full = note_chain()
    missing = (
        (pl.col("strike") == 255)
        & (pl.col("option_type") == "C")
        & (pl.col("expiration") == date(2026, 1, 16))
    )
    full.filter(~missing).write_csv(chains)
    (note / "landing" / "trades").mkdir()
    (note / "landing" / "trades" / f"trades_{NOTE_DATE}.csv").write_text(PRINTS)
    run_nightly(note, NOTE_DATE)
    quarantined = Lake(note / "wh" / "lake").files("quarantine", "trades", dates=[NOTE_DATE])
    assert [r.split(":")[0] for r in pl.read_parquet(quarantined).get_column("_reason")] == [
        "unknown_contract"
    ]
    assert query(note, "SELECT count(*) FROM blocks") == [(0,)]
    full.write_csv(chains)  # the vendor's corrected chain; the prints file is unchanged
    run_nightly(note, NOTE_DATE)
    assert (
        pl.read_parquet(Lake(note / "wh" / "lake").files("quarantine", "trades", dates=[NOTE_DATE])).height
        == 0
    )
    assert query(note, "SELECT option_symbol, size FROM blocks") == [("IWM   260116C00255000", 2500)]


def test_a_file_still_being_written_is_left_for_the_next_run_with_a_warning(note: Path, monkeypatch):
    run_nightly(note, NOTE_DATE)
    add_session(note / "landing", NEXT_DAY)
    chain = note / "landing" / "chains" / f"chains_{NEXT_DAY}.csv"
    data = chain.read_bytes()
    chain.unlink()
    monkeypatch.setenv("CHAINSIGNALS_STABLE_SECONDS", "1.5")
    stop = threading.Event()

    def slow_copy() -> None:  # a copy over a slow link: a block every 0.2 s
        with chain.open("wb") as out:
            for start in range(0, len(data), max(len(data) // 100, 1)):
                if stop.is_set():
                    return
                out.write(data[start : start + max(len(data) // 100, 1)])
                out.flush()
                time.sleep(0.2)

    writer = threading.Thread(target=slow_copy)
    writer.start()
    try:
        time.sleep(0.5)
        summary = run_nightly(note, NEXT_DAY)
    finally:
        stop.set()
        writer.join()
    assert any(f"chains/chains_{NEXT_DAY}.csv is still being written" in w for w in summary.warnings), (
        summary.warnings
    )
    assert any(f"{NEXT_DAY} has no option chain" in w for w in summary.warnings), summary.warnings
    assert query(note, "SELECT count(*) FROM positioning_daily WHERE trade_date = ?", [NEXT_DAY]) == [(0,)]
    chain.write_bytes(data)  # the copy finished: the next run takes it whole
    monkeypatch.setenv("CHAINSIGNALS_STABLE_SECONDS", "0")
    summary = run_nightly(note, NEXT_DAY)
    assert not summary.warnings
    assert query(note, "SELECT contracts FROM positioning_daily WHERE trade_date = ?", [NEXT_DAY]) == [
        (note_chain().filter(pl.col("expiration") > NEXT_DAY).height,)
    ]


def test_a_missing_chain_warns_by_default_fails_when_configured_and_hidden_files_are_counted(note: Path):
    run_nightly(note, NOTE_DATE)
    add_session(note / "landing", NEXT_DAY)
    chain = note / "landing" / "chains" / f"chains_{NEXT_DAY}.csv"
    chain.rename(chain.with_name(f".{chain.name}"))  # delivered under a hidden name: skipped
    text = DEFAULT_CONFIG.read_text().replace('on_short_chain = "warn"', 'on_short_chain = "fail"')
    (note / "strict.toml").write_text(text)
    with pytest.raises(
        RuntimeError,
        match=rf"^{NEXT_DAY} has no option chain, under 50% of the previous "
        rf"session's \({NOTE_DATE}: \d+ rows\)",
    ):
        run_nightly(note, NEXT_DAY, config=str(note / "strict.toml"))
    summary = run_nightly(note, NEXT_DAY)
    assert summary.files_hidden == 1
    assert summary.warnings[0].startswith(f"{NEXT_DAY} has no option chain"), summary.warnings


def test_a_gzip_bomb_is_refused_naming_the_file_before_it_expands(note: Path):
    bars = note / "landing" / "bars"
    row = (bars / f"bars_{NOTE_DATE}.csv").read_text().splitlines()[1] + "\n"
    bomb = bars / "bars_bomb.csv.gz"
    with gzip.open(bomb, "wb") as out:  # 64 MB of one valid row repeated: about 0.2 MB on disk
        out.write(b"date,symbol,open,high,low,close,volume\n")
        block = row.encode() * (1 << 14)
        for _ in range((64 << 20) // len(block)):
            out.write(block)
    assert bomb.stat().st_size < 1 << 20
    text = DEFAULT_CONFIG.read_text().replace("max_file_bytes = 2_147_483_648", "max_file_bytes = 8_000_000")
    (note / "small.toml").write_text(text)
    with pytest.raises(SourceError, match=rf"^{bomb}: decompresses to more than 8,000,000 bytes"):
        run_nightly(note, NOTE_DATE, config=str(note / "small.toml"))
    # Memory: a fresh process's peak grows by about the limit, not by the 64 MB the file expands to.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"""
import resource, polars
from pathlib import Path
from flows.sources.files import read_text_frame, TooLargeError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_text_frame(Path({str(bomb)!r}), 8_000_000)
except TooLargeError:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
""",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert int(probe.stdout) < 40 << 10, probe.stdout  # KB: the 8 MB limit read, not 64 MB
    bomb.unlink()
    with gzip.open(bomb, "wb") as out:  # small enough, but the same row 1,000 times: duplicates count
        out.write(b"date,symbol,open,high,low,close,volume\n" + row.encode() * 1000)
    with pytest.raises(RejectedShareError, match=r"duplicate:trade_date,symbol"):
        run_nightly(note, NOTE_DATE, config=str(note / "small.toml"))


def test_landing_paths_are_paths_and_links_out_of_landing_are_refused(note: Path, tmp_path_factory):
    bars = note / "landing" / "bars"
    day = bars / f"bars_{NOTE_DATE}.csv"
    day.rename(bars / f"bars_{NOTE_DATE} [final].csv")
    one = day.read_text() if day.exists() else (bars / f"bars_{NOTE_DATE} [final].csv").read_text()
    (bars / "bars_*.csv").write_text(one.splitlines()[0] + "\n" + one.splitlines()[1] + "\n")  # IWM only
    run_nightly(note, NOTE_DATE, config=config_with(note, max_rejected_share=0.9))
    manifest = read_manifest(Lake(note / "wh" / "lake"))
    rows = dict(manifest.select("path", "rows").iter_rows())
    assert rows[f"bars/bars_{NOTE_DATE} [final].csv"] == 2 and rows["bars/bars_*.csv"] == 1
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.csv"
    outside.write_text(one)
    (bars / "linked.csv").symlink_to(outside)
    with pytest.raises(
        SourceError, match=rf"^{bars / 'linked.csv'}: a symbolic link to {outside}, outside landing"
    ):
        run_nightly(note, NOTE_DATE)


# ------------------------------------------------------------------------------------------ items 8, 9, 12
def test_verify_names_every_lake_file_whose_bytes_changed_and_status_never_shows_a_traceback(
    before_next_day, tmp_path
):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    wh = str(tmp_path / "wh")
    done = cli("verify", "--warehouse", wh, env=env)
    assert done.returncode == 0, done.stderr
    checked = int(done.stdout.split("verify: ")[1].split(" ")[0].replace(",", ""))
    assert checked > 100
    lake = tmp_path / "wh" / "lake"
    flipped = next((lake / "gold" / "positioning_daily").glob("*/*.parquet"))
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(
        b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 64]
    )
    flipped.write_bytes(bytes(data))  # same size, other bytes
    truncated = next((lake / "silver" / "bars").glob("*/*.parquet"))
    truncated.write_bytes(truncated.read_bytes()[:100])
    done = cli("verify", "--warehouse", wh, env=env)
    assert done.returncode == 1
    bad = [line for line in done.stderr.splitlines() if line.startswith("bad:")]
    assert len(bad) == 2 and str(flipped) in done.stderr and str(truncated) in done.stderr, done.stderr
    assert "verify: " in done.stdout and ", 2 bad" in done.stdout
    status = cli("status", "--verify", "--warehouse", wh, env=env)
    assert status.returncode == 1 and "Traceback" not in status.stderr + status.stdout
    assert str(flipped) in status.stderr
    run = cli_run(tmp_path, env)  # the nightly reads that bars file (technicals' history): it names it
    assert run.returncode == 1 and str(truncated) in run.stderr.replace("\n", ""), run.stderr[-1000:]


def test_an_analysts_read_write_connection_is_refused_early_and_its_wal_folded_in(before_next_day, tmp_path):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    database = tmp_path / "wh" / "signals.duckdb"
    analyst = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                f"import duckdb, time; c = duckdb.connect({str(database)!r}); "
                "c.execute('CREATE TABLE my_notes AS SELECT 42 AS answer'); print('ready', flush=True); "
                "time.sleep(120)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "ready"
        started = time.monotonic()
        refused = cli_run(tmp_path, env)
        assert refused.returncode == 1
        assert f"is open read-write by process {analyst.pid}" in refused.stderr, refused.stderr
        assert "read_only=True" in refused.stderr
        assert time.monotonic() - started < 120
    finally:
        analyst.kill()  # gone without a checkpoint: its WAL stays behind
        analyst.wait()
    assert database.with_name("signals.duckdb.wal").exists()
    status = cli("status", "--warehouse", str(tmp_path / "wh"), env=env)
    assert "Traceback" not in status.stdout + status.stderr
    done = cli_run(tmp_path, env)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("SELECT answer FROM my_notes").fetchall() == [(42,)]
        assert con.execute("SELECT max(trade_date) FROM signals_daily").fetchall() == [(NEXT_DAY,)]
    finally:
        con.close()
    assert not database.with_name("signals.duckdb.wal").exists()


def test_a_second_run_is_refused_at_once_and_is_not_a_failed_run(before_next_day, tmp_path):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    with warehouse_lock(tmp_path / "wh"):
        started = time.monotonic()
        refused = cli_run(tmp_path, env)
        took = time.monotonic() - started
    assert refused.returncode == 75 and "another chainsignals run holds" in refused.stderr, refused.stderr
    assert took < 10, took  # Prefect never started (it takes 20 s and more here); the CLI's imports remain
    status = cli("status", "--warehouse", str(tmp_path / "wh"), env=env)
    assert status.returncode == 0, status.stdout[-500:]


def test_cli_messages_show_file_names_as_they_are_and_impossible_dates_are_usage_errors(note, cli_env):
    bars = note / "landing" / "bars"
    (bars / "bars_x [final] \x1b[2J.csv").write_text("date,symbol\n2025-12-29,IWM\n")
    done = cli(
        "run",
        "--date",
        str(NOTE_DATE),
        "--warehouse",
        str(note / "wh"),
        "--landing",
        str(note / "landing"),
        env=cli_env,
    )
    assert done.returncode == 1
    assert "bars_x [final] \\x1b[2J.csv: missing required column(s)" in done.stderr, done.stderr
    assert "\x1b[2J" not in done.stderr
    for day in ("9999-12-31", "0001-01-01"):
        done = cli("run", "--date", day, "--warehouse", str(note / "wh"), env=cli_env)
        assert done.returncode == 2 and "outside the dates a run can take" in done.stderr, done.stderr


def test_silver_a_failed_run_committed_shows_as_ingested_not_computed_and_the_next_run_computes_it(
    before_next_day, tmp_path
):
    base, env = before_next_day
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    wh = str(tmp_path / "wh")
    failed = cli_run(tmp_path, dict(env, CHAINSIGNALS_DISK_FULL_AT="write:gold"))
    assert failed.returncode == 1
    status = cli("status", "--warehouse", wh, env=env)
    assert status.returncode == 1 and f"ingested, not computed: {NEXT_DAY}" in status.stdout, status.stdout
    add_session(tmp_path / "landing", LAST_DAY)
    done = cli(
        "run", "--date", str(LAST_DAY), "--warehouse", wh, "--landing", str(tmp_path / "landing"), env=env
    )
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(tmp_path / "wh" / "signals.duckdb"), read_only=True)
    try:
        assert con.execute(
            "SELECT DISTINCT trade_date FROM technicals_daily WHERE trade_date > ? ORDER BY 1", [NOTE_DATE]
        ).fetchall() == [(NEXT_DAY,), (LAST_DAY,)]
    finally:
        con.close()
    status = cli("status", "--warehouse", wh, env=env)
    assert status.returncode == 0 and "ingested, not computed" not in status.stdout

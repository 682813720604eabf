"""Landing files are read once per change: the manifest's ctime and inode spare hashing a file that provably
did not change, and a read-ahead (what `chainsignals run` starts while Prefect's server boots) hands the
ingest the files it read, hashed and conformed, unless they changed since."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from flows.config import load_settings
from flows.sources import files
from flows.sources.files import SourceError
from flows.stages import ingest
from flows.stages.ingest import ingest_and_validate, start_read_ahead
from flows.storage.lake import Lake, read_manifest
from tests.spec_note import NOTE_DATE, rewrite_bars_in_place, write_note_landing


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_note_landing(tmp_path / "landing")
    return tmp_path


def settings_of(root: Path):
    return load_settings(warehouse=str(root / "wh"), landing=str(root / "landing"))


def landing_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "landing").rglob("*.csv"))


def calls(monkeypatch, module, name: str) -> list[str]:
    """The file names each call of module.name gets (its first argument), in call order."""
    seen: list[str] = []
    original = getattr(module, name)

    def counted(path, *args, **kwargs):
        seen.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return seen


def silver(root: Path, dataset: str) -> pl.DataFrame:
    frame = pl.read_parquet(Lake(root / "wh" / "lake").files("silver", dataset, dates=[NOTE_DATE]))
    return frame.drop("_ingested_at")  # the time of the read: the one column two runs cannot share


def test_files_whose_status_proves_them_unchanged_are_not_read_again(root: Path, monkeypatch):
    monkeypatch.setattr(files, "RACY_SECONDS", 0.0)  # the files were written a moment ago
    settings = settings_of(root)
    hashed = calls(monkeypatch, files, "file_digest")
    first, _ = ingest_and_validate(settings, "run-1")
    assert first.files_read == len(landing_files(root)) == 3
    assert hashed == []  # a new file is hashed once, from its copy, not also to compare with the manifest
    manifest = read_manifest(Lake(settings.lake))
    for path in landing_files(root):
        row = manifest.filter(pl.col("path") == path.relative_to(root / "landing").as_posix()).row(
            0, named=True
        )
        stat = path.stat()
        assert (row["size"], row["mtime_ns"], row["ctime_ns"], row["inode"]) == (
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ctime_ns,
            stat.st_ino,
        )
    read = calls(monkeypatch, ingest, "land_file")
    again, _ = ingest_and_validate(settings, "run-2")
    assert (again.files_read, again.files_skipped) == (0, 3)
    assert hashed == [] and read == []


def test_a_rewrite_that_keeps_size_and_mtime_is_still_read(root: Path, monkeypatch):
    monkeypatch.setattr(files, "RACY_SECONDS", 0.0)  # so the first run records ctime and inode
    settings = settings_of(root)
    ingest_and_validate(settings, "run-1")
    bars, before = rewrite_bars_in_place(root / "landing")
    assert (bars.stat().st_size, bars.stat().st_mtime_ns, bars.stat().st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    result, _ = ingest_and_validate(settings, "run-2")
    assert (result.files_read, result.files_skipped) == (1, 2)
    volume = silver(root, "bars").filter(pl.col("symbol") == "IWM").get_column("volume").to_list()
    assert volume == [30_000_001]


def test_a_file_changed_just_before_it_was_read_is_hashed_again_next_time(root: Path, monkeypatch):
    settings = settings_of(root)  # RACY_SECONDS as shipped: the files were written a moment ago
    ingest_and_validate(settings, "run-1")
    manifest = read_manifest(Lake(settings.lake))
    assert manifest.get_column("ctime_ns").null_count() == manifest.height == 3
    assert manifest.get_column("inode").null_count() == 3
    hashed = calls(monkeypatch, files, "file_digest")
    again, _ = ingest_and_validate(settings, "run-2")
    assert (again.files_read, again.files_skipped) == (0, 3)
    assert sorted(hashed) == sorted(p.name for p in landing_files(root))


def test_the_read_ahead_hands_the_ingest_its_files_read_once_with_the_same_rows(
    root: Path, monkeypatch, tmp_path_factory
):
    plain = tmp_path_factory.mktemp("plain")
    write_note_landing(plain / "landing")
    ingest_and_validate(settings_of(plain), "run-plain")
    read = calls(monkeypatch, ingest, "land_file")
    settings = settings_of(root)
    start_read_ahead(settings)
    result, _ = ingest_and_validate(settings, "run-1")
    assert result.files_read == 3
    assert sorted(read) == sorted(p.name for p in landing_files(root))  # each once, by the read-ahead
    for dataset in ("bars", "chains"):  # the note has no prints
        assert silver(root, dataset).equals(silver(plain, dataset)), dataset
    bronze = sorted(p.read_bytes() for p in (Lake(settings.lake).root / "bronze").rglob("*.csv"))
    assert bronze == sorted(p.read_bytes() for p in landing_files(root))
    assert not (root / "wh" / ".cache" / "read-ahead").exists() or not any(
        (root / "wh" / ".cache" / "read-ahead").rglob("*.*")
    )  # every copy it made moved into the run's staging, then bronze


def test_a_file_rewritten_after_the_read_ahead_read_it_is_read_again(root: Path, monkeypatch):
    read = calls(monkeypatch, ingest, "land_file")
    settings = settings_of(root)
    start_read_ahead(settings)
    ingest._READ_AHEAD[settings.landing.resolve()]._thread.join()  # it has read all three
    assert len(read) == 3
    chains = root / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
    frame = pl.read_csv(chains, infer_schema=False)
    frame.with_columns(
        pl.when((pl.col("strike").cast(pl.Float64) == 266) & (pl.col("option_type") == "C"))
        .then((pl.col("open_interest").cast(pl.Int64) + 5000).cast(pl.String))
        .otherwise(pl.col("open_interest"))
        .alias("open_interest")
    ).write_csv(chains)
    result, _ = ingest_and_validate(settings, "run-1")
    assert result.files_read == 3
    assert read.count(chains.name) == 2
    oi = silver(root, "chains").filter((pl.col("strike") == 266) & (pl.col("option_type") == "C"))
    assert (oi.height, oi.get_column("open_interest").sum()) == (4, 8_401 + 4 * 5_000)  # four expirations


def test_a_file_the_read_ahead_cannot_take_fails_the_ingest_in_its_own_words(root: Path, tmp_path_factory):
    plain = tmp_path_factory.mktemp("plain")
    write_note_landing(plain / "landing")
    for folder in (root, plain):
        chains = folder / "landing" / "chains" / f"chains_{NOTE_DATE}.csv"
        chains.write_text(chains.read_text().replace("open_interest", "oi_renamed", 1))
    with pytest.raises(SourceError) as without:
        ingest_and_validate(settings_of(plain), "run-plain")
    settings = settings_of(root)
    start_read_ahead(settings)
    with pytest.raises(SourceError) as with_read_ahead:
        ingest_and_validate(settings, "run-1")
    assert str(with_read_ahead.value).replace(str(root), "<root>") == str(without.value).replace(
        str(plain), "<root>"
    )
    assert "open_interest" in str(without.value)


def test_the_read_ahead_holds_no_more_than_a_nightlys_rows(root: Path, monkeypatch):
    """A landing folder of many new files is read ahead only up to 2 x batch_rows; the ingest reads the rest."""
    read = calls(monkeypatch, ingest, "land_file")
    settings = replace(settings_of(root), batch_rows=1)  # a budget of 2 rows
    first = root / "landing" / "bars" / f"bars_{NOTE_DATE}.csv"  # the first file in the ingest's order
    assert landing_files(root)[0] == first and len(first.read_text().splitlines()) == 1 + 2  # IWM, SPY
    start_read_ahead(settings)
    ingest._READ_AHEAD[settings.landing.resolve()]._thread.join()
    assert read == [first.name]  # then its 2 rows spent the budget
    result, _ = ingest_and_validate(settings, "run-1")
    assert result.files_read == 3
    assert sorted(read) == sorted(p.name for p in landing_files(root))  # each file read once

"""The publish step's copy of the database file (flows/storage/warehouse.py: clone_file)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from flows.storage import warehouse
from flows.storage.warehouse import FICLONE, clone_file


def database_like(path: Path, size: int = 3 * 1024 * 1024 + 17) -> bytes:
    content = os.urandom(size)
    path.write_bytes(content)
    return content


def test_clone_asks_the_filesystem_for_a_reflink_and_copies_nothing_itself(tmp_path: Path, monkeypatch):
    source = tmp_path / "signals.duckdb"
    database_like(source)
    calls = []

    def reflink(fd: int, request: int, arg: int) -> int:
        calls.append((request, os.readlink(f"/proc/self/fd/{fd}"), os.readlink(f"/proc/self/fd/{arg}")))
        return 0

    monkeypatch.setattr(warehouse.fcntl, "ioctl", reflink)
    monkeypatch.setattr(warehouse.shutil, "copyfile", lambda *a, **k: pytest.fail("copied after a reflink"))
    clone_file(source, tmp_path / "next")
    assert calls == [(FICLONE, str(tmp_path / "next"), str(source))]
    assert FICLONE == 0x40049409  # _IOW(0x94, 9, int)


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL])
def test_clone_copies_the_bytes_where_the_filesystem_cannot_share_them(
    tmp_path: Path, monkeypatch, code: int
):
    source, target = tmp_path / "signals.duckdb", tmp_path / "next"
    content = database_like(source)
    target.write_bytes(b"x" * (len(content) * 2))  # debris longer than the copy: it must not survive

    def refuse(*_args) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(warehouse.fcntl, "ioctl", refuse)
    clone_file(source, target)
    assert target.read_bytes() == content
    target.write_bytes(b"changed")
    assert source.read_bytes() == content  # a copy, not a link


def test_clone_on_this_machines_filesystem(tmp_path: Path):
    source, target = tmp_path / "signals.duckdb", tmp_path / "next"
    content = database_like(source)
    clone_file(source, target)
    assert target.read_bytes() == content
    assert os.stat(source).st_ino != os.stat(target).st_ino


def test_connections_print_no_progress_bar(tmp_path):
    """DuckDB's progress bar goes to stdout: into cron mail and into `chainsignals sql --format csv`."""
    database = tmp_path / "signals.duckdb"
    duckdb.connect(str(database)).close()
    con = warehouse.connect_read_only(database)
    try:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    finally:
        con.close()
    fresh = duckdb.connect()
    assert fresh.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(True,)]
    fresh.close()

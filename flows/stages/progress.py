"""Stage progress for people watching a run: the CLI installs a Rich reporter, flows call `stage()`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_reporter: Callable[[str, bool], None] | None = None
_counter: Callable[[str, int, int], None] | None = None


def set_reporter(
    reporter: Callable[[str, bool], None] | None, counter: Callable[[str, int, int], None] | None = None
) -> None:
    """reporter(description, finished) is called when a stage starts and when it ends; counter(description,
    done, total) as a stage gets through its items (the sessions of a backfill)."""
    global _reporter, _counter
    _reporter, _counter = reporter, counter


def count(description: str, done: int, total: int) -> None:
    if _counter:
        _counter(description, done, total)


@contextmanager
def stage(description: str) -> Iterator[None]:
    if _reporter:
        _reporter(description, False)
    try:
        yield
    finally:
        if _reporter:
            _reporter(description, True)

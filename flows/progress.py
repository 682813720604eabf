"""Stage progress for people watching a run: the CLI installs a Rich reporter, flows call `stage()`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_reporter: Callable[[str, bool], None] | None = None


def set_reporter(reporter: Callable[[str, bool], None] | None) -> None:
    """reporter(description, finished) is called when a stage starts and when it ends."""
    global _reporter
    _reporter = reporter


@contextmanager
def stage(description: str) -> Iterator[None]:
    if _reporter:
        _reporter(description, False)
    try:
        yield
    finally:
        if _reporter:
            _reporter(description, True)

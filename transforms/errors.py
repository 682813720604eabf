"""The base of every error chainsignals raises on purpose.

It sits at the bottom of the import graph (it imports nothing of the project), so the transforms and
schemas derive their errors from it without importing flows; `flows.errors` is where the rest of the
code takes it from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path


class ChainsignalsError(Exception):
    """A failure the code names on purpose: its message is one line an operator can act on (the CLI prints
    it as the reason, without a traceback). `file`, `date` and `dataset` say where it happened when that is
    known (a landing or lake file, a session, bars/chains/trades or a gold table), for code that handles it.
    """

    def __init__(
        self,
        message: str = "",
        *,
        file: Path | str | None = None,
        date: dt.date | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.date = date
        self.dataset = dataset

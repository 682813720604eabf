"""Exchange sessions (XNYS by default) from exchange-calendars."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd  # exchange-calendars speaks pandas; only dates cross this boundary


@lru_cache(maxsize=4)
def _calendar(name: str):
    return xcals.get_calendar(name, start="2000-01-01")


def is_session(day: date, calendar: str = "XNYS") -> bool:
    return bool(_calendar(calendar).is_session(pd.Timestamp(day)))


def sessions(start: date, end: date, calendar: str = "XNYS") -> list[date]:
    return [ts.date() for ts in _calendar(calendar).sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def previous_session(day: date, calendar: str = "XNYS") -> date:
    return _calendar(calendar).date_to_session(pd.Timestamp(day), direction="previous").date()


def non_sessions(days: Iterable[date], calendar: str = "XNYS") -> list[date]:
    """The days that are not sessions (weekends, holidays), sorted. A day outside the calendar's range
    (it covers 2000 to a year ahead) cannot be judged and is not listed."""
    days = sorted(set(days))
    if not days:
        return []
    cal = _calendar(calendar)
    first, last = cal.first_session.date(), cal.last_session.date()
    inside = [d for d in days if first <= d <= last]
    if not inside:
        return []
    known = set(sessions(inside[0], inside[-1], calendar))
    return [d for d in inside if d not in known]


def closed_reason(day: date, calendar: str = "XNYS") -> str | None:
    """Why `day` is not a session, for the operator: "2025-12-25 is not an XNYS session (Christmas);
    next session 2025-12-26". None on a session."""
    cal = _calendar(calendar)
    stamp = pd.Timestamp(day)
    if cal.is_session(stamp):  # outside the calendar's years this raises, as is_session does
        return None
    if day.weekday() >= 5:
        why = day.strftime("%A")
    else:
        names = (
            cal.regular_holidays.holidays(stamp, stamp, return_name=True) if cal.regular_holidays else None
        )
        why = str(names.iloc[0]) if names is not None and len(names) else "exchange closed"
    article = "an" if calendar[:1].upper() in "AEFHILMNORSX" else "a"  # said as letters: an XNYS, a CME
    reason = f"{day} is not {article} {calendar} session ({why})"
    if stamp < cal.last_session:
        reason += f"; next session {cal.date_to_session(stamp, direction='next').date()}"
    return reason

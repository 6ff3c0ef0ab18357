"""Time, injectable: code that expires things takes a Clock so tests can move time without sleeping.

Instants are UTC; the city's calendar (when a grant starts and ends, when a quota resets) is Japan's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FakeClock:
    """A clock for tests: starts at a fixed instant and moves only when told."""

    current: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC))

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


SYSTEM_CLOCK = SystemClock()

JST = dt.timezone(dt.timedelta(hours=9), "JST")  # Japan keeps no daylight saving time


def city_today(clock: Clock) -> dt.date:
    """The city's date now: grants start and end, and quotas reset, by the calendar in Japan."""
    return clock.now().astimezone(JST).date()

"""Time, injectable: code that expires things takes a Clock so tests can move time without sleeping."""

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

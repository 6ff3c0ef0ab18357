"""RepeatedEvents: which occurrences of a repeatable event reach the audit log (issue 9, item 8)."""

from __future__ import annotations

import datetime as dt

from renkei.clock import FakeClock
from renkei.hub.access.repeats import RepeatedEvents


def logged(events: RepeatedEvents, source: tuple[str, ...], times: int) -> list[int]:
    found = (events.occurrence(source) for _ in range(times))
    return [seen.count for seen in found if seen is not None]


def test_the_first_and_every_doubling_are_logged_per_source_and_window() -> None:
    clock = FakeClock()
    events = RepeatedEvents(clock, window=dt.timedelta(minutes=10))
    assert logged(events, ("a",), 1000) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert logged(events, ("b",), 3) == [1, 2]  # another source counts on its own
    clock.advance(minutes=9, seconds=59)
    assert logged(events, ("a",), 24) == [1024]  # still the same window
    clock.advance(seconds=1)
    first = events.occurrence(("a",))
    assert first is not None and (first.count, first.window_started) == (1, clock.now())
    assert first.details() == {
        "occurrence": 1,
        "window_started": clock.now().isoformat(),
        "window_seconds": 600,
    }


def test_sources_beyond_the_limit_are_counted_together() -> None:
    clock = FakeClock()
    events = RepeatedEvents(clock, max_sources=3)
    for name in "abc":
        assert logged(events, (name,), 1) == [1]
    beyond = [events.occurrence((f"x{n}",)) for n in range(8)]
    assert [(s.count, s.all_sources) for s in beyond if s is not None] == [
        (1, True),
        (2, True),
        (4, True),
        (8, True),
    ]
    assert beyond[0] is not None and beyond[0].details()["all_sources"] is True
    assert logged(events, ("a",), 1) == [2]  # a source already counted keeps its own count
    clock.advance(minutes=10)
    assert logged(events, ("y",), 1) == [1]  # the stale sources make room
    seen = events.occurrence(("y",))
    assert seen is not None and not seen.all_sources

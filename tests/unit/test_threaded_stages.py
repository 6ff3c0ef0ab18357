from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from renkei.threaded_stages import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(range(100), depth=3)) == list(range(100))


def test_an_error_in_the_stage_reaches_the_consumer_after_the_good_items() -> None:
    def stage() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad row 3")

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad row 3"):
        for item in prefetch(stage()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_the_consumer_stops_the_stage() -> None:
    produced: list[int] = []
    finished = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            finished.set()

    consumer = prefetch(endless(), depth=2)
    assert [next(consumer) for _ in range(5)] == [0, 1, 2, 3, 4]
    consumer.close()
    assert len(produced) <= 5 + 3
    assert not any(t.name == "renkei-prefetch" and t.is_alive() for t in threading.enumerate())


def test_the_stage_runs_on_another_thread() -> None:
    names: list[str] = []

    def stage() -> Iterator[int]:
        names.append(threading.current_thread().name)
        yield 1

    assert list(prefetch(stage())) == [1]
    assert names == ["renkei-prefetch"]

"""Query slots: at most N queries run at once; the others wait, and a wait past its limit is refused."""

from __future__ import annotations

import threading

import pytest

from renkei.errors import answer_for
from renkei.hub.workspace.slots import QuerySlots, WorkspaceBusy


def test_no_more_than_the_slots_run_at_once() -> None:
    slots = QuerySlots(2, wait=10)
    release = threading.Event()
    peak = []

    def run() -> None:
        with slots.slot():
            peak.append(slots.running)
            release.wait(5)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    while slots.waiting < 3:  # two run, three wait
        threading.Event().wait(0.01)
    assert slots.running == 2
    release.set()
    for t in threads:
        t.join()
    assert max(peak) == 2 and len(peak) == 5 and slots.running == 0 and slots.waiting == 0


def test_a_wait_past_the_limit_is_refused_as_busy_and_frees_nothing() -> None:
    slots = QuerySlots(1, wait=0.05)
    with slots.slot():
        with pytest.raises(WorkspaceBusy, match="busy") as caught, slots.slot():
            pytest.fail("ran without a slot")
        assert slots.running == 1 and slots.waiting == 0
    assert "混み合っています" in caught.value.ja
    assert answer_for(type(caught.value)).http_status == 503
    with slots.slot():  # the refused wait took nothing away
        assert slots.running == 1


def test_zero_means_one_slot_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert QuerySlots(0, wait=1).slots == 6
    assert QuerySlots(3, wait=1).slots == 3

"""choose_worker's ordering rules, as properties over any registry view (S2)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from yunhui.placement import DRAINING, SERVING, WorkerView, choose_worker, is_available, parse_owner

NOW = 1_000_000
FRESH = 6000

workers = st.lists(
    st.builds(
        WorkerView,
        id=st.text("0123456789", min_size=1, max_size=3),
        state=st.sampled_from([SERVING, DRAINING, "garbled"]),
        beat_ms=st.integers(NOW - 3 * FRESH, NOW + 10),
        participants=st.integers(0, 500),
        reserved=st.integers(0, 100),
    ),
    max_size=8,
    unique_by=lambda w: w.id,
)


@given(workers, st.integers(0, 2**32))
def test_chooses_only_available_workers_and_one_whenever_there_is_one(
    views: list[WorkerView], seed: int
) -> None:
    chosen = choose_worker(views, now_ms=NOW, fresh_ms=FRESH, rng=random.Random(seed))
    available = [w for w in views if is_available(w, now_ms=NOW, fresh_ms=FRESH)]
    if not available:
        assert chosen is None
        return
    assert chosen in available
    assert chosen.state == SERVING and NOW - chosen.beat_ms <= FRESH
    # The power of two choices: never the heaviest of several unequal ones, always one of the lightest two.
    ranked = sorted(w.load for w in available)
    if len(available) >= 2:
        assert chosen.load <= ranked[-2] or ranked[-1] == ranked[-2]


@given(workers, st.integers(0, 2**32))
def test_of_two_available_workers_the_lighter_one(views: list[WorkerView], seed: int) -> None:
    available = [w for w in views if is_available(w, now_ms=NOW, fresh_ms=FRESH)][:2]
    if len(available) != 2:
        return
    chosen = choose_worker(available, now_ms=NOW, fresh_ms=FRESH, rng=random.Random(seed))
    assert chosen is not None and chosen.load == min(w.load for w in available)


def test_a_stale_or_draining_worker_is_never_chosen_and_a_burst_spreads() -> None:
    stale = WorkerView("1", SERVING, beat_ms=NOW - FRESH - 1)
    draining = WorkerView("2", DRAINING, beat_ms=NOW)
    assert choose_worker([stale, draining], now_ms=NOW, fresh_ms=FRESH) is None
    # Twenty rooms placed one after the other, each reserving its share, alternate between two workers.
    loads = {"1": 0, "2": 0}
    rng = random.Random(7)
    for _ in range(20):
        views = [WorkerView(k, SERVING, beat_ms=NOW, reserved=v) for k, v in loads.items()]
        chosen = choose_worker(views, now_ms=NOW, fresh_ms=FRESH, rng=rng)
        assert chosen is not None
        loads[chosen.id] += 10
    assert loads == {"1": 100, "2": 100}


def test_lease_values_parse_or_read_as_none() -> None:
    assert parse_owner("2:17") == ("2", 17)
    assert parse_owner("host-a-2:5") == ("host-a-2", 5)
    for garbled in (None, "", "2", ":5", "2:x"):
        assert parse_owner(garbled) is None


def test_a_worker_view_survives_a_garbled_hash() -> None:
    view = WorkerView.of("3", {"state": SERVING, "beat_ms": "12", "participants": "x", "http_port": "8083"})
    assert view.participants == 0 and view.http_port == 8083 and view.beat_ms == 12
    assert WorkerView.of("4", {}).state == DRAINING  # a hash without a state takes no meetings

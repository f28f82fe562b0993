"""The pure outage rules of the health monitor (rooms/incidents/outages.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rooms.incidents.outages import (
    Change,
    OutageRules,
    Scope,
    Track,
    observe,
    scope_of_cause,
)

T0 = datetime(2026, 5, 12, 2, tzinfo=UTC)
RULES = OutageRules(failures_to_open=2, successes_to_close=2, stale_after=timedelta(seconds=30))


def run(
    pattern: str, step: int = 5, rules: OutageRules = RULES
) -> list[tuple[Change, datetime | None, datetime | None]]:
    """Feed one check per `step` seconds ('x' fails, '.' passes); the changes with their dates."""
    track = Track(Scope.MEETINGS)
    changes: list[tuple[Change, datetime | None, datetime | None]] = []
    for i, c in enumerate(pattern):
        seen = observe(track, ok=c == ".", cause="media", now=T0 + timedelta(seconds=step * i), rules=rules)
        track = seen.track
        if seen.change is not Change.NONE:
            changes.append((seen.change, seen.start, seen.end))
    return changes


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_an_outage_runs_from_the_first_failure_to_the_first_success() -> None:
    changes = run("." + "x" * 9 + "..")
    assert changes[0] == (Change.OPENED, at(5), at(10))
    assert changes[-1] == (Change.CLOSED, at(5), at(50))
    assert [c for c, _, _ in changes].count(Change.OPENED) == 1


def test_one_failing_check_opens_nothing_and_a_single_success_does_not_close() -> None:
    assert run(".x..x.") == []
    changes = run(".xxx.xx..")
    assert [c for c, _, _ in changes] == [
        Change.OPENED,
        Change.EXTENDED,
        Change.EXTENDED,
        Change.EXTENDED,
        Change.CLOSED,
    ]
    # The blip of success at 20 s did not split the outage: one outage from 5 s to 35 s.
    assert changes[-1] == (Change.CLOSED, at(5), at(35))


def test_a_gap_without_checks_is_not_counted() -> None:
    track = Track(Scope.SERVICE)
    for s in (0, 5):
        track = observe(track, ok=False, cause="database", now=at(s), rules=RULES).track
    assert track.open
    # The monitor was not running for 10 minutes: the outage ends at the last failure it saw.
    seen = observe(track, ok=True, cause="", now=at(600), rules=RULES)
    assert (seen.change, seen.start, seen.end) == (Change.CLOSED, at(0), at(5))


def test_causes_decide_the_scope() -> None:
    assert scope_of_cause("media") is Scope.MEETINGS
    assert scope_of_cause("media,sip") is Scope.MEETINGS
    assert scope_of_cause("database") is Scope.SERVICE
    assert scope_of_cause("database,media") is Scope.SERVICE
    assert scope_of_cause("server_crash") is Scope.SERVICE
    assert scope_of_cause(None) is Scope.SERVICE


@given(st.text(alphabet="x.", max_size=60))
def test_outages_never_overlap_and_are_dated_on_checks(pattern: str) -> None:
    changes = run(pattern)
    closed = [(s, e) for c, s, e in changes if c is Change.CLOSED and s is not None and e is not None]
    opened = [s for c, s, _ in changes if c is Change.OPENED]
    assert len(closed) in {len(opened), len(opened) - 1}
    for (s1, e1), (s2, _) in itertools.pairwise(closed):
        assert s1 < e1 <= s2
    for s, e in closed:
        i, j = (int((s - T0).total_seconds()) // 5, int((e - T0).total_seconds()) // 5)
        # Opened by two failures in a row, closed by two successes in a row, dated at the first of each.
        assert pattern[i : i + 2] == "xx" and pattern[j - 1] == "x" and pattern[j : j + 2] == ".."

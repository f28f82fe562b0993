from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms.policy import (
    Kind,
    Outcome,
    Reason,
    Terms,
    admit,
    session_deadline,
    warning_times,
    window,
)

START = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
WINDOW = window(START, END, open_before=timedelta(minutes=10), grace=timedelta(minutes=5))
TERMS = Terms(capacity=3, passcode="1234", lobby=False)


def decide(**kwargs: object) -> tuple[Outcome, Reason | None]:
    args: dict[str, object] = {
        "now": START,
        "terms": TERMS,
        "kind": Kind.BROWSER,
        "present": 0,
        "window": WINDOW,
        "passcode": "1234",
    }
    args.update(kwargs)
    decision = admit(**args)  # type: ignore[arg-type]
    return decision.outcome, decision.reason


def test_admitted_with_right_passcode() -> None:
    assert decide() == (Outcome.ADMITTED, None)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (START - timedelta(minutes=11), (Outcome.REFUSED, Reason.NOT_OPEN)),
        (START - timedelta(minutes=10), (Outcome.ADMITTED, None)),
        (END + timedelta(minutes=4, seconds=59), (Outcome.ADMITTED, None)),
        (END + timedelta(minutes=5), (Outcome.REFUSED, Reason.CLOSED)),
    ],
)
def test_window(now: datetime, expected: tuple[Outcome, Reason | None]) -> None:
    assert decide(now=now) == expected


def test_ad_hoc_room_is_open_without_window_unless_booked_only() -> None:
    assert decide(window=None) == (Outcome.ADMITTED, None)
    assert decide(window=None, booked_only=True) == (Outcome.REFUSED, Reason.CLOSED)


@pytest.mark.parametrize("kind", [Kind.BROWSER, Kind.SIP, Kind.WHIP])
def test_capacity_counts_real_participants(kind: Kind) -> None:
    assert decide(kind=kind, present=2) == (Outcome.ADMITTED, None)
    assert decide(kind=kind, present=3) == (Outcome.REFUSED, Reason.FULL)


@pytest.mark.parametrize("kind", [Kind.RECORDER, Kind.VIEWER])
def test_recorders_and_viewers_are_not_capped(kind: Kind) -> None:
    assert decide(kind=kind, present=3) == (Outcome.ADMITTED, None)


def test_passcode() -> None:
    assert decide(passcode="9999") == (Outcome.REFUSED, Reason.WRONG_PASSCODE)
    assert decide(passcode=None) == (Outcome.REFUSED, Reason.WRONG_PASSCODE)
    assert decide(passcode=None, authorised=True) == (Outcome.ADMITTED, None)
    assert decide(passcode=None, terms=Terms(capacity=3, passcode=None, lobby=False)) == (
        Outcome.ADMITTED,
        None,
    )


def test_locked_and_lobby() -> None:
    assert decide(locked=True) == (Outcome.REFUSED, Reason.LOCKED)
    assert decide(locked=True, host=True) == (Outcome.ADMITTED, None)
    lobby_terms = Terms(capacity=3, passcode=None, lobby=True)
    assert decide(terms=lobby_terms) == (Outcome.LOBBY, None)
    assert decide(terms=lobby_terms, host=True) == (Outcome.ADMITTED, None)


def test_site_suspended_wins_over_everything() -> None:
    assert decide(kind=Kind.SIP, site_suspended=True, present=0) == (Outcome.REFUSED, Reason.SITE_SUSPENDED)
    assert decide(kind=Kind.SIP, endpoint_enabled=False) == (Outcome.REFUSED, Reason.ENDPOINT_DISABLED)


def test_recorder_skips_lock_passcode_and_lobby_but_not_window() -> None:
    terms = Terms(capacity=1, passcode="1", lobby=True)
    assert decide(kind=Kind.RECORDER, terms=terms, locked=True, passcode=None, present=5) == (
        Outcome.ADMITTED,
        None,
    )
    assert decide(kind=Kind.RECORDER, now=END + timedelta(hours=1)) == (Outcome.REFUSED, Reason.CLOSED)


def test_session_deadline_is_the_earliest_limit() -> None:
    started = START - timedelta(minutes=5)
    grace = timedelta(minutes=5)
    assert session_deadline(started_at=started) is None
    assert session_deadline(started_at=started, booking_end=END, grace=grace) == END + grace
    assert session_deadline(
        started_at=started, booking_end=END, grace=grace, max_session=timedelta(minutes=40)
    ) == started + timedelta(minutes=40)
    assert session_deadline(
        started_at=started,
        booking_end=END,
        grace=grace,
        max_session=timedelta(minutes=40),
        contract_limit=timedelta(minutes=30),
    ) == started + timedelta(minutes=30)


def test_warning_times() -> None:
    deadline = END
    assert warning_times(deadline, now=START) == [
        (END - timedelta(minutes=5), timedelta(minutes=5)),
        (END - timedelta(minutes=1), timedelta(minutes=1)),
    ]
    assert warning_times(deadline, now=END - timedelta(minutes=3)) == [
        (END - timedelta(minutes=1), timedelta(minutes=1))
    ]
    assert warning_times(deadline, now=END) == []

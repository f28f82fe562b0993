"""RateLimit: token buckets per event class, against an injected time."""

from __future__ import annotations

from datetime import timedelta

from signaling.ratelimit import EventRates, Rate, RateLimit
from tests.signaling.signaling_fakes import T0


def test_a_class_allows_its_burst_then_its_rate() -> None:
    limit = RateLimit(EventRates(state=Rate(burst=3, per_second=2.0)))
    assert [limit.allow("hand", T0) for _ in range(4)] == [True, True, True, False]
    assert limit.allow("hand", T0 + timedelta(seconds=0.4)) is False  # 0.8 of a token
    assert limit.allow("hand", T0 + timedelta(seconds=0.5)) is True
    assert limit.allow("hand", T0 + timedelta(seconds=0.5)) is False
    # Refilled to the burst, never beyond it.
    later = T0 + timedelta(seconds=60)
    assert [limit.allow("hand", later) for _ in range(4)] == [True, True, True, False]


def test_events_of_a_class_share_its_bucket_and_classes_are_apart() -> None:
    limit = RateLimit(
        EventRates(state=Rate(burst=2, per_second=1.0), candidate=Rate(burst=1, per_second=1.0))
    )
    assert limit.allow("hand", T0) and limit.allow("media_state", T0)
    assert not limit.allow("ask_unmute", T0)  # hand, media_state and ask_unmute are one class
    assert limit.allow("candidate", T0) and not limit.allow("candidate", T0)


def test_unknown_events_share_the_other_bucket_and_leave_is_never_limited() -> None:
    limit = RateLimit(EventRates(other=Rate(burst=1, per_second=1.0)))
    assert limit.allow("moderate", T0)
    assert not limit.allow("some_future_event", T0)
    assert all(limit.allow("leave", T0) for _ in range(1000))


def test_the_defaults_let_a_browser_negotiate_and_trickle() -> None:
    limit = RateLimit(EventRates())
    negotiation = ["publish_offer", "subscribe", "subscribe_answer"] * 2
    assert all(limit.allow(event, T0) for event in negotiation)
    assert all(limit.allow("candidate", T0) for _ in range(60))  # two PeerConnections, 30 each
    assert all(limit.allow("media_state", T0) for _ in range(3))  # mic, camera, screen at the start


def test_one_field_of_a_class_can_be_set_alone() -> None:
    rates = EventRates.model_validate({"candidate": {"burst": 200}})
    assert rates.candidate == Rate(burst=200, per_second=20.0)

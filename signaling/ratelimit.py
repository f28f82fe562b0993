"""RateLimit: token buckets per participant and event class, checked before an event enters the inbox.

Every client event costs a token of its class; a class's bucket holds ``burst`` tokens and refills at
``per_second``. Time comes from the caller (the conference's scheduler), so tests advance a fake clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Rate(BaseModel):
    """One bucket: ``burst`` events at once, then ``per_second`` on average."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    burst: int = Field(ge=1)
    per_second: float = Field(gt=0)


class EventRates(BaseModel):
    """The buckets of each event class (docs/operations.md lists which events share one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # publish_offer, subscribe, subscribe_answer, restart_media: a renegotiation is a handful of these.
    negotiation: Rate = Rate(burst=10, per_second=2.0)
    # A browser trickles 10-30 candidates per negotiation, two PeerConnections at the start.
    candidate: Rate = Rate(burst=100, per_second=20.0)
    # One per shown remote video whenever the layout changes; the meeting UI reports each tile's resize.
    # A grid of 49 tiles being resized: the SDK sends each tile's size at most twice a second (98/s).
    video_size: Rate = Rate(burst=400, per_second=150.0)
    # media_state, hand, ask_unmute: each one reaches everyone (participant_changed).
    state: Rate = Rate(burst=10, per_second=3.0)
    # chat_send and reaction (their own sliding windows, chat_rate_count, apply after this).
    chat: Rate = Rate(burst=20, per_second=5.0)
    # moderate, claim_host (claim_host has its attempt limits too), and any event not named here.
    other: Rate = Rate(burst=20, per_second=5.0)

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any) -> Any:
        # One environment variable (…__EVENT_RATES__CANDIDATE__BURST) sets one field of a class: the
        # other keeps the class's default.
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name, value in data.items():
            default = cls.model_fields[name].default if name in cls.model_fields else None
            if isinstance(value, dict) and isinstance(default, Rate):
                filled[name] = {**default.model_dump(), **value}
        return filled


_CLASSES = {
    "publish_offer": "negotiation",
    "subscribe": "negotiation",
    "subscribe_answer": "negotiation",
    "restart_media": "negotiation",
    "candidate": "candidate",
    "video_size": "video_size",
    "media_state": "state",
    "hand": "state",
    "ask_unmute": "state",
    "chat_send": "chat",
    "reaction": "chat",
}
# A client may always leave.
_UNLIMITED = frozenset({"leave"})


class TokenBucket:
    def __init__(self, rate: Rate, now: datetime) -> None:
        self._burst = float(rate.burst)
        self._per_second = rate.per_second
        self._tokens = self._burst
        self._at = now

    def take(self, now: datetime) -> bool:
        elapsed = (now - self._at).total_seconds()
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._per_second)
            self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class RateLimit:
    """One participant's buckets, created on first use of each class."""

    def __init__(self, rates: EventRates) -> None:
        self._rates = rates
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, event: str, now: datetime) -> bool:
        """Take a token for ``event`` (a client event name); False: over its class's rate, refuse it."""
        if event in _UNLIMITED:
            return True
        name = _CLASSES.get(event, "other")
        bucket = self._buckets.get(name)
        if bucket is None:
            rate: Rate = getattr(self._rates, name)
            bucket = self._buckets[name] = TokenBucket(rate, now)
        return bucket.take(now)

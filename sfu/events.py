"""What a Router reports to its owner (the meeting server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["mic", "camera", "screen"]
SOURCES: frozenset[str] = frozenset({"mic", "camera", "screen"})


@dataclass(frozen=True)
class TrackPublished:
    participant_id: str
    track_id: str
    kind: Literal["audio", "video"]
    source: str


@dataclass(frozen=True)
class TrackUnpublished:
    participant_id: str
    track_id: str


@dataclass(frozen=True)
class ActiveSpeakerChanged:
    participant_id: str | None


@dataclass(frozen=True)
class SubscriberNeedsOffer:
    """The participant's subscribe PeerConnection must be renegotiated (call Peer.create_subscribe_offer)."""

    participant_id: str


RouterEvent = TrackPublished | TrackUnpublished | ActiveSpeakerChanged | SubscriberNeedsOffer

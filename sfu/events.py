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


@dataclass(frozen=True)
class LayersWanted:
    """The simulcast layers (rids) of a track somebody watches: the publisher should send these and pause the
    others (it saves the publisher's uplink and encoder; the SFU drops unwatched layers anyway)."""

    participant_id: str
    track_id: str
    mid: str
    rids: tuple[str, ...]


@dataclass(frozen=True)
class ConnectionStateChanged:
    """A participant's publish or subscribe PeerConnection changed state (aiortc's ``connectionState``:
    new, connecting, connected, failed, closed). Not reported for a connection the SFU itself closed or
    replaced, so "closed" here means aiortc gave up on it (its DTLS or ICE transport died)."""

    participant_id: str
    pc: Literal["publish", "subscribe"]
    state: str


RouterEvent = (
    TrackPublished
    | TrackUnpublished
    | ActiveSpeakerChanged
    | SubscriberNeedsOffer
    | LayersWanted
    | ConnectionStateChanged
)

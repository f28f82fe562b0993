"""RFC 4733 telephone-event digits: decode once per event (the end packet is sent three times).

In sfu/ because PlainPeer reads them off the audio socket; the SIP INFO forms are in signaling/sip/dtmf.py.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 payload: the event, the end bit, volume and duration (RTP clock ticks)."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None


def parse_event(payload: bytes) -> TelephoneEvent | None:
    """The event in an RFC 4733 payload (4 bytes), or None if it is too short."""
    if len(payload) < 4:
        return None
    return TelephoneEvent(
        payload[0], bool(payload[1] & 0x80), payload[1] & 0x3F, (payload[2] << 8) | payload[3]
    )


class DigitCollector:
    """Turns telephone-event packets into digits: one per RTP timestamp (an event keeps its timestamp)."""

    def __init__(self) -> None:
        self._last_timestamp: int | None = None

    def packet(self, payload: bytes, timestamp: int) -> str | None:
        """The digit this packet completes, or None (not an end, a retransmitted end, or not a digit)."""
        event = parse_event(payload)
        if event is None or not event.end or timestamp == self._last_timestamp:
            return None
        self._last_timestamp = timestamp
        return event.digit

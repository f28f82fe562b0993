"""Mixer: the audio of one meeting for its SIP legs (research/sip-gateway.md §3.1 "Audio downlink").

Every 20 ms (one owned task): decode, once, the Opus of the K=3 loudest publishers of the Router, and for each
leg mix everyone but the leg itself, resample and encode in the leg's codec (PCMU, PCMA, G.722 or Opus, PyAV).
The other way: the terminal's G.711/G.722 is decoded, encoded as Opus and published with its audio level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

LegCodec = Literal["pcmu", "pcma", "g722", "opus"]
FRAME_S = 0.02
LOUDEST = 3
# A leg's send(payload, samples): one encoded 20 ms frame and its RTP clock ticks (PlainPeer.send_audio).
SendAudio = Callable[[bytes, int], None]
# A leg's publish(opus, level): the terminal's voice as Opus, its RFC 6464 level (PlainPeer.publish_audio).
PublishAudio = Callable[[bytes, int], None]


class Mixer:
    """The N−1 mixes of one meeting (owned by the gateway, one per Router with SIP legs)."""

    def __init__(self, router: object) -> None:
        self._router = router
        self.closed = False

    def add_leg(
        self, leg_id: str, codec: LegCodec, send: SendAudio, publish: PublishAudio | None = None
    ) -> None:
        """Mix for `leg_id` (the leg's participant id: its own published audio is left out) into `send`."""

    def receive(self, leg_id: str, payload: bytes, pt: int, timestamp: int) -> None:
        """The terminal's audio packet (PlainPeer.on_audio): decoded, re-encoded as Opus, published."""

    def remove_leg(self, leg_id: str) -> None:
        """Stop mixing for `leg_id` (unknown: no-op)."""

    async def close(self) -> None:
        """Stop the clocked task and drop every leg (idempotent)."""
        self.closed = True

"""Where a publisher's RTP numbering starts: the soak puts it just before both wraps.

aiortc 1.16 draws a sender's first sequence number from ``rtcrtpsender.random_sequence_number`` (below 32,768
on purpose, so a browser-length session rarely wraps) and its timestamp origin from ``rtcrtpsender.random32``
inside ``RTCRtpSender._run_rtp``. The soak wants a stream that wraps early and often, so the load generator's
publisher process replaces both. ``random32`` also draws every sender's SSRCs (in ``__init__``); only the call
made from ``_run_rtp`` itself is the timestamp origin, so the others keep drawing at random and two senders
never share an SSRC. This patches aiortc privates in the load generator's process only, never the SFU's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from aiortc import rtcrtpsender
from aiortc.utils import random32 as _random32

_RUN_RTP = rtcrtpsender.RTCRtpSender._run_rtp.__code__

SEQUENCE_SPACE = 1 << 16
TIMESTAMP_SPACE = 1 << 32


@dataclass(frozen=True)
class RtpOrigin:
    """The first sequence number and RTP timestamp of every stream a sender of this process starts."""

    sequence: int
    timestamp: int

    def __post_init__(self) -> None:
        if not (0 <= self.sequence < SEQUENCE_SPACE and 0 <= self.timestamp < TIMESTAMP_SPACE):
            raise ValueError(f"RTP origin out of range: {self}")

    def install(self) -> None:
        """For every sender started from now on in this process (the origins are drawn in ``_run_rtp``)."""
        timestamp = self.timestamp

        def random32() -> int:
            # The caller's frame: _run_rtp's coroutine asks for its timestamp origin, __init__ for SSRCs.
            if sys._getframe(1).f_code is _RUN_RTP:
                return timestamp
            return int(_random32())

        sequence = self.sequence
        # setattr: the names are not part of aiortc's typed interface.
        setattr(rtcrtpsender, "random_sequence_number", lambda: sequence)  # noqa: B010
        setattr(rtcrtpsender, "random32", random32)  # noqa: B010

    def wraps(self, packets: int) -> int:
        """How often the sequence number has gone from 65,535 to 0 once ``packets`` packets were sent."""
        return (self.sequence + packets - 1) // SEQUENCE_SPACE if packets > 0 else 0

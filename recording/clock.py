"""Media time from RTCP sender reports only (research/recording.md §2.5; never by counting frames).

Each RTP stream maps its timestamps to the sender's NTP clock by its last SR. One participant's streams share
that clock (lip sync); participants' clocks differ, so each gets an offset to ours, the least
``arrival − ntp`` seen over its frames (network jitter only ever adds to an arrival).
"""

from __future__ import annotations

NTP_FRACTION = float(1 << 32)


def ntp_seconds(ntp: int) -> float:
    """A 64-bit NTP timestamp in seconds."""
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / NTP_FRACTION


def _signed32(delta: int) -> int:
    delta &= 0xFFFFFFFF
    return delta - (1 << 32) if delta >= 1 << 31 else delta


class StreamClock:
    """One RTP stream's mapping to its sender's clock, from its recent sender reports.

    A report pairs an RTP time with an NTP time of one instant, but not every sender takes both at the same
    instant: aiortc sends the RTP time of the last packet sent with the NTP time of now (up to a frame
    interval later). Taking each report as it is makes every frame's time jump by that much at each report.
    The mapping is the earliest sender instant any of the last REPORTS reports gives for an RTP time (a late
    NTP time only ever makes it later); a few reports still follow an audio clock that drifts.
    """

    __slots__ = ("_bases", "_ext", "_raw", "rate", "reports")

    REPORTS = 8

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._bases: list[float] = []  # ntp − rtp/rate of the recent reports (rtp extended)
        self._raw = 0  # the last report's RTP time as sent
        self._ext = 0  # ... and extended (it keeps growing across the 32-bit wrap)
        self.reports = 0

    @property
    def mapped(self) -> bool:
        return bool(self._bases)

    def report(self, ntp: int, rtp: int) -> None:
        if not ntp:  # aiortc sends one before its first packet; no instant is known yet
            return
        rtp &= 0xFFFFFFFF
        self._ext = self._ext + _signed32(rtp - self._raw) if self.reports else rtp
        self._raw = rtp
        self.reports += 1
        self._bases.append(ntp_seconds(ntp) - self._ext / self.rate)
        del self._bases[: -self.REPORTS]

    def sender_time(self, ts: int) -> float:
        """Sender clock seconds of RTP timestamp `ts` (its distance to the last report counts)."""
        assert self._bases, "no sender report yet"
        return min(self._bases) + (self._ext + _signed32(ts - self._raw)) / self.rate


class ParticipantClock:
    """The offset from one participant's sender clock to ours (shared by all its streams)."""

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset: float | None = None

    def observe(self, sender_time: float, arrival: float) -> None:
        candidate = arrival - sender_time
        if self.offset is None or candidate < self.offset:
            self.offset = candidate

    def local(self, sender_time: float) -> float:
        """Our clock's time of a sender instant."""
        assert self.offset is not None
        return sender_time + self.offset

"""NackTracker: which packets of one incoming stream to ask the publisher for again (pure, time injected)."""

from __future__ import annotations

from collections import deque


def _newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


# RTT samples kept: the estimate is their maximum (see NackTracker).
RTT_WINDOW = 8


class NackTracker:
    """Detects sequence gaps and repeats NACKs until the packet arrives or is too old.

    Unlike aiortc's NackGenerator (one NACK per gap), a lost retransmission is asked for again, so a stream
    stays complete when retransmissions are lost too. A NACK is repeated once the retransmission is overdue:
    every ``rtt * rtt_factor``, within [min_retry, max_retry]. Repeating sooner makes publishers that answer
    every NACK (ffmpeg, GStreamer, OBS; libwebrtc ignores repeats within its RTT) send copies for nothing.

    Why the RTT is measured from NACK to retransmission, not from RTCP: the SFU sends a publisher only RRs,
    whose LSR/DLSR let the *publisher* compute the RTT. For our side we would have to send XR RRTR and read
    the publisher's XR DLRR (RFC 3611): aiortc's RtcpPacket.parse drops XR, and a WHIP encoder need not
    answer RRTR at all. The time from our NACK to the packet's retransmission is what a repeat actually
    waits for (path RTT plus the publisher's pacing), and any publisher that retransmits provides it,
    browser or encoder (one that never retransmits gives no samples, and the default RTT is used).

    Two rules keep the samples honest: only a packet NACKed exactly once is sampled (Karn: a later copy
    cannot be matched to its NACK), and the estimate is the largest of the last RTT_WINDOW samples, so a
    packet that was merely reordered (it arrives just after the NACK its gap caused: a sample of a few ms)
    cannot shrink the interval. With ``add(..., rtx=False)`` arrivals on the media SSRC are not sampled.
    """

    def __init__(
        self,
        *,
        retry_interval: float | None = None,
        rtt: float = 0.1,
        rtt_factor: float = 1.5,
        min_retry: float = 0.05,
        max_retry: float = 0.5,
        max_age: float = 1.5,
        max_missing: int = 256,
    ) -> None:
        self.max_age = max_age
        self.max_missing = max_missing
        self.max_seq: int | None = None
        # seq -> [time the gap was seen, time of the last NACK, NACKs sent]
        self.missing: dict[int, list[float]] = {}
        self.next_check = 0.0
        self.abandoned = 0  # packets given up on: the caller asks for a keyframe instead
        self.samples: deque[float] = deque(maxlen=RTT_WINDOW)
        self.configured = False
        self.default_rtt = rtt
        self.rtt_factor = rtt_factor
        self.min_retry = min_retry
        self.max_retry = max_retry
        if retry_interval is not None:  # a fixed interval, whatever the RTT
            self.min_retry = self.max_retry = retry_interval
        self.retry_interval = self._interval()

    def configure(self, *, rtt: float, rtt_factor: float, min_retry: float, max_retry: float) -> None:
        """Set the RTT assumed until measured and the bounds of the repeat interval (settings)."""
        self.default_rtt = rtt
        self.rtt_factor = rtt_factor
        self.min_retry = min_retry
        self.max_retry = max(max_retry, min_retry)
        self.configured = True
        self.retry_interval = self._interval()

    @property
    def rtt(self) -> float:
        """The round trip a repeat waits for: measured, else the default."""
        return max(self.samples) if self.samples else self.default_rtt

    def _interval(self) -> float:
        return min(max(self.rtt * self.rtt_factor, self.min_retry), self.max_retry)

    def add(self, seq: int, now: float, *, rtx: bool | None = None) -> bool:
        """Record one received packet; True when NACKs are due now (call `due`).

        `rtx`: whether it came on the RTX stream; None (not known): any arrival of a NACKed packet is
        sampled (reordering is then filtered by the windowed maximum).
        """
        if self.max_seq is None:
            self.max_seq = seq
            return False
        if _newer(seq, self.max_seq):
            gap = (seq - self.max_seq - 1) & 0xFFFF
            if gap:
                if gap > self.max_missing:  # a jump, not a loss burst: start over
                    self.missing.clear()
                else:
                    s = self.max_seq
                    for _ in range(gap):
                        s = (s + 1) & 0xFFFF
                        self.missing[s] = [now, -1e9, 0]
                    excess = len(self.missing) - self.max_missing
                    if excess > 0:
                        oldest = sorted(self.missing, key=lambda x: (seq - x) & 0xFFFF, reverse=True)
                        for old in oldest[:excess]:
                            del self.missing[old]
                        self.abandoned += excess
                    self.next_check = now
            self.max_seq = seq
        elif self.missing:
            entry = self.missing.pop(seq, None)
            if entry is not None and entry[2] == 1 and rtx is not False:
                sample = now - entry[1]
                if 0 <= sample <= self.max_age:
                    self.samples.append(sample)
                    self.retry_interval = self._interval()
        return bool(self.missing) and now >= self.next_check

    def due(self, now: float) -> list[int]:
        """Sequence numbers to NACK now: each is repeated every retry_interval until it is max_age old."""
        self.next_check = now + self.retry_interval
        result: list[int] = []
        for seq, entry in list(self.missing.items()):
            if now - entry[0] > self.max_age:
                del self.missing[seq]
                self.abandoned += 1
                continue
            if now - entry[1] < self.retry_interval:
                continue
            entry[1] = now
            entry[2] += 1
            result.append(seq)
        return result

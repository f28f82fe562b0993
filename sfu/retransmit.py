"""Bounds on what a subscriber's feedback may cost: NACK answers and keyframe requests (pure, time injected).

A subscriber's RTCP is untrusted input that the SFU answers with work on the event loop every meeting of
the process shares (each retransmission is a parse, a rewrite and an SRTP protect), and with keyframes a
publisher sends to everybody. So a NACK is answered only within a per-datagram and a per-second budget,
and never twice within one round trip; a PLI/FIR reaches the publisher only within a budget too.
"""

from __future__ import annotations

# Bounds on an RTT sample: a report answering an SR older than this is stale, not a round trip.
MAX_RTT = 2.0
# The dedupe window never shrinks below this: two copies of one NACK a few ms apart are one request.
MIN_RESEND_WINDOW = 0.01


class TokenBucket:
    """`rate` tokens per second, at most `burst` banked; starts full."""

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token at `now`; False (nothing spent) when the bucket is empty."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class ResendMemory:
    """When each output sequence number was last resent, for one subscription (bounded).

    Entries are kept in the order they were written (a dict keeps insertion order and a re-send moves its
    entry to the end), so the oldest are at the front and are dropped first: at most `size` entries, and
    none older than MAX_RTT once a newer one is written.
    """

    __slots__ = ("_at", "size")

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._at: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def recent(self, seq: int, now: float, window: float) -> bool:
        """Whether `seq` was resent less than `window` seconds before `now`."""
        at = self._at.get(seq)
        return at is not None and now - at < window

    def mark(self, seq: int, now: float) -> None:
        at = self._at
        at.pop(seq, None)
        at[seq] = now
        while len(at) > self.size:
            del at[next(iter(at))]
        oldest = next(iter(at))
        while now - at[oldest] > MAX_RTT:
            del at[oldest]
            oldest = next(iter(at))


def nack_answers(
    seqs: list[int],
    memory: ResendMemory,
    bucket: TokenBucket,
    *,
    limit: int,
    window: float,
    now: float,
) -> tuple[list[int], int]:
    """The sequence numbers of a NACK to resend now, and how many of those asked for are not.

    Only the last `limit` are looked at (a longer list is a flood, not a loss burst; receivers list the
    oldest first, and the newest are the ones the ring still holds and the receiver still waits for), a
    number resent within `window` (one RTT: the first copy may still be on its way) is skipped without
    spending a token, and each answer spends one of the subscriber's tokens. Duplicates within the NACK
    count once. The caller marks in `memory` the ones it actually sent.
    """
    window = max(window, MIN_RESEND_WINDOW)
    answer: list[int] = []
    chosen: set[int] = set()
    refused = max(0, len(seqs) - limit)
    for raw in seqs[-limit:] if limit else ():
        seq = raw & 0xFFFF  # aiortc adds the bitmask offset to the FCI's number without wrapping it
        if seq in chosen or memory.recent(seq, now, window) or not bucket.take(now):
            refused += 1
        else:
            chosen.add(seq)
            answer.append(seq)
    return answer, refused


def rtt_from_report(lsr: int, dlsr: int, sr_ntp: int, sr_at: float, now: float) -> float | None:
    """The round trip a report block measures (RFC 3550 6.4.1), or None when it does not answer this SR.

    `sr_ntp`/`sr_at`: the NTP time of an SR we sent and when (monotonic). The SFU sends a subscriber the
    publisher's SR translated, at once, with the publisher's NTP time: so the SR is identified by the middle
    32 bits of that NTP time and was sent when it arrived from the publisher (Layer.sr_at).
    """
    if not lsr or not sr_ntp or lsr != (sr_ntp >> 16) & 0xFFFFFFFF:
        return None
    rtt = now - sr_at - dlsr / 65536
    if rtt < 0 or rtt > MAX_RTT:  # a clock step, or an SR we sent long ago
        return None
    return rtt


class RttEstimate:
    """A smoothed round-trip time (RFC 6298 weights) with a default until the first sample."""

    __slots__ = ("default", "samples", "smoothed")

    def __init__(self, default: float) -> None:
        self.default = default
        self.smoothed: float | None = None
        self.samples = 0

    @property
    def value(self) -> float:
        return self.default if self.smoothed is None else self.smoothed

    def add(self, sample: float) -> None:
        self.samples += 1
        self.smoothed = sample if self.smoothed is None else 0.875 * self.smoothed + 0.125 * sample

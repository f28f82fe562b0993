"""NackTracker: which packets of one incoming stream to ask the publisher for again (pure, time injected)."""

from __future__ import annotations


def _newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class NackTracker:
    """Detects sequence gaps and repeats NACKs until the packet arrives or is too old.

    Unlike aiortc's NackGenerator (one NACK per gap), a lost retransmission is asked for again, so a stream
    stays complete when retransmissions are lost too.
    """

    def __init__(self, *, retry_interval: float = 0.05, max_age: float = 1.5, max_missing: int = 256) -> None:
        self.retry_interval = retry_interval
        self.max_age = max_age
        self.max_missing = max_missing
        self.max_seq: int | None = None
        # seq -> [time the gap was seen, time of the last NACK]
        self.missing: dict[int, list[float]] = {}
        self.next_check = 0.0
        self.abandoned = 0  # packets given up on: the caller asks for a keyframe instead

    def add(self, seq: int, now: float) -> bool:
        """Record one received packet; True when NACKs are due now (call `due`)."""
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
                        self.missing[s] = [now, -1e9]
                    excess = len(self.missing) - self.max_missing
                    if excess > 0:
                        oldest = sorted(self.missing, key=lambda x: (seq - x) & 0xFFFF, reverse=True)
                        for old in oldest[:excess]:
                            del self.missing[old]
                        self.abandoned += excess
                    self.next_check = now
            self.max_seq = seq
        elif self.missing:
            self.missing.pop(seq, None)
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
            result.append(seq)
        return result

"""From RTP packets to frames: sequence and timestamp unwrapping and a small reorder buffer (pure, `now`
injected).

Not aiortc's JitterBuffer: it stops at the first missing packet, ignores the marker bit and emits a frame
only once the next timestamp starts, so an unrepaired hole stalls it for ~512 packets
(research/recording.md §2.2). Here a frame is the contiguous run from a frame-start packet to the marker
packet (or to the next timestamp), all with one timestamp. A hole waits for its NACK repair up to
``max_wait``; at ``keyframe_after`` it asks for a keyframe once, and the recording continues from that
keyframe when it comes first; past ``max_wait`` the frames behind the hole are dropped up to the next
keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

from recording.codecs import CodecRules


class Unwrap:
    """Extends a wrapping counter (16-bit sequence numbers, 32-bit timestamps) to an ever-growing int."""

    __slots__ = ("_half", "_last", "_modulus")

    def __init__(self, bits: int) -> None:
        self._modulus = 1 << bits
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def __call__(self, value: int) -> int:
        last = self._last
        if last is None:
            # Start one cycle up so that a packet reordered before the first one stays positive.
            self._last = value + self._modulus
            return self._last
        delta = (value - last) % self._modulus
        if delta >= self._half:
            delta -= self._modulus
        extended = last + delta
        if delta > 0:
            self._last = extended
        return extended


@dataclass(frozen=True, slots=True)
class Frame:
    """One depayloaded frame: extended RTP timestamp, keyframe or not, arrival of its first packet."""

    ts: int
    keyframe: bool
    data: bytes
    arrival: float


@dataclass(slots=True)
class _Packet:
    ts: int
    marker: bool
    payload: bytes
    arrival: float


class FrameAssembler:
    """Reassembles one RTP stream's frames in order; counts holes and the keyframe requests they make."""

    def __init__(
        self, rules: CodecRules, *, max_wait: float, keyframe_after: float, audio_wait: float = 0.1
    ) -> None:
        self.rules = rules
        self.max_wait = max_wait if rules.video else audio_wait
        self.keyframe_after = keyframe_after
        self._seq = Unwrap(16)
        self._ts = Unwrap(32)
        self._buffer: dict[int, _Packet] = {}
        self._next: int | None = None  # the next sequence number a frame must start at; None: resync
        self._hole_since: float | None = None
        self._hole_asked = False
        self._need_keyframe = rules.video  # a video recording starts at a keyframe
        self._want_keyframe = False
        self.frames = 0
        self.holes = 0  # holes given up (never repaired)
        self.repaired = 0  # holes that closed while we waited
        self.keyframe_requests = 0
        self.dropped_packets = 0  # late, duplicate, or behind a hole
        self.dropped_frames = 0  # complete but not decodable (waiting for a keyframe)

    def keyframe_wanted(self) -> bool:
        """Whether a keyframe should be requested now (True once per hole; reading it clears it)."""
        wanted, self._want_keyframe = self._want_keyframe, False
        return wanted

    def push(self, seq: int, ts: int, marker: bool, payload: bytes, arrival: float) -> list[Frame]:
        """One packet; the frames it completes (in order)."""
        ext = self._seq(seq)
        if (self._next is not None and ext < self._next) or ext in self._buffer:
            self.dropped_packets += 1
            return []
        self._buffer[ext] = _Packet(self._ts(ts), marker, payload, arrival)
        return self.poll(arrival)

    def poll(self, now: float) -> list[Frame]:
        """Frames that became complete, or free to go past a hole given up at `now`."""
        out: list[Frame] = []
        while self._buffer:
            if self._next is None and not self._resync():
                break
            start = self._next
            assert start is not None
            frame = self._take(start)
            if frame is None:
                head = self._buffer.get(start)
                if head is not None and not self.rules.is_start(head.payload):
                    self._next = None  # a packet that starts nothing: continue at the next frame start
                    self._need_keyframe = self.rules.video
                    continue
                self._wait(now)  # a packet is missing at or after `start`
                if self._resync_ready(now) and self._resync():
                    continue
                break
            if self._hole_since is not None:
                self.repaired += 1
                self._hole_since = None
                self._hole_asked = False
            if self._need_keyframe and not frame.keyframe:
                self.dropped_frames += 1
                continue
            self._need_keyframe = False
            self.frames += 1
            out.append(frame)
        return out

    def _wait(self, now: float) -> None:
        """A frame is incomplete: note when the hole was seen, ask for a keyframe once it is old enough."""
        if self._hole_since is None:
            self._hole_since = now
        elif self.rules.video and not self._hole_asked and now - self._hole_since >= self.keyframe_after:
            self._hole_asked = True
            self._want_keyframe = True
            self.keyframe_requests += 1

    def _resync_ready(self, now: float) -> bool:
        """Give the hole up: it is older than max_wait, or a keyframe came after it was asked for."""
        if self._hole_since is None:
            return False
        if now - self._hole_since >= self.max_wait:
            return True
        if not self._hole_asked:
            return False
        return any(
            self.rules.is_keyframe(p.payload) and self.rules.is_start(p.payload)
            for k, p in self._buffer.items()
            if self._next is None or k > self._next
        )

    def _resync(self) -> bool:
        """Continue at the first buffered frame start (a keyframe after a video hole); False: none yet."""
        after = self._next
        starts = sorted(
            k
            for k, p in self._buffer.items()
            if (after is None or k > after) and self.rules.is_start(p.payload)
        )
        if self._hole_since is not None and self.rules.video:
            keyframes = [k for k in starts if self.rules.is_keyframe(self._buffer[k].payload)]
            starts = keyframes or starts
        if not starts:
            return False
        first = starts[0]
        for k in [k for k in self._buffer if k < first]:
            del self._buffer[k]
            self.dropped_packets += 1
        if self._hole_since is not None:
            self.holes += 1
            if self.rules.video:
                self._need_keyframe = True
                if not self._hole_asked:  # exactly one request per hole
                    self._want_keyframe = True
                    self.keyframe_requests += 1
        self._hole_since = None
        self._hole_asked = False
        self._next = first
        return True

    def _take(self, start: int) -> Frame | None:
        """The frame starting at `start` when all its packets are here (removed from the buffer)."""
        buffer = self._buffer
        first = buffer.get(start)
        if first is None:
            return None
        if not self.rules.video:
            del buffer[start]
            self._next = start + 1
            return Frame(first.ts, True, self.rules.depayload(first.payload), first.arrival)
        if not self.rules.is_start(first.payload):
            return None
        end = start
        while True:
            packet = buffer[end]
            if packet.marker:
                break
            following = buffer.get(end + 1)
            if following is None:
                return None
            if following.ts != first.ts:  # the marker was lost or never sent (H.264 does not require it)
                break
            end += 1
        parts = [buffer.pop(k) for k in range(start, end + 1)]
        self._next = end + 1
        keyframe = self.rules.is_keyframe(first.payload) or any(
            self.rules.is_keyframe(p.payload) for p in parts
        )
        data = b"".join(self.rules.depayload(p.payload) for p in parts)
        return Frame(first.ts, keyframe, data, min(p.arrival for p in parts))

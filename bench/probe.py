"""What a load-generator subscriber measures, at the lowest cost we found (12-17 µs a packet).

Once DTLS is up, SRTP datagrams are taken straight from aioice's UDP protocol callback, unprotected with the
transport's own SRTP session, counted from the fixed RTP header with ``struct`` and searched for the frame tag
with ``bytes.find``: no aioice queue, no RtpPacket.parse, no jitter buffer, no decoder. STUN, DTLS and RTCP
keep aiortc's normal path, so ICE consent and sender reports keep working. This touches aiortc/aioice
privates; the bench runs on the exact aiortc version the product pins, and ``install_raw_receive()`` only
patches the load generator's worker processes, never the SFU.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aioice.ice import StunProtocol

from bench.media import TAG_MAGIC, read_tag

_HEADER = struct.Struct("!BBHII")


class SubscriberProbe:
    """Counts, loss, latency and first keyframe of one subscriber (all SSRCs of its PeerConnection)."""

    __slots__ = (
        "all_keyframes_ns",
        "bytes",
        "first_keyframe_ns",
        "first_rtp_ns",
        "join_ns",
        "keyframe_ssrcs",
        "latencies_ms",
        "on_all_keyframes",
        "packets",
        "ssrc_count",
        "ssrc_first",
        "ssrc_high",
        "video_streams",
    )

    def __init__(self, video_streams: int = 1, on_all_keyframes: Callable[[], None] | None = None) -> None:
        self.video_streams = video_streams  # how many publishers' video this subscriber takes
        self.on_all_keyframes = on_all_keyframes
        self.join_ns = time.time_ns()
        self.first_rtp_ns = 0
        self.first_keyframe_ns = 0
        self.all_keyframes_ns = 0  # a keyframe seen on every video stream: the subscriber shows everyone
        self.keyframe_ssrcs: set[int] = set()
        self.packets = 0
        self.bytes = 0
        self.latencies_ms: list[float] = []
        self.ssrc_first: dict[int, int] = {}
        self.ssrc_high: dict[int, int] = {}  # extended highest sequence number
        self.ssrc_count: dict[int, int] = {}

    def on_rtp(self, data: bytes) -> None:
        now = time.time_ns()
        self.packets += 1
        self.bytes += len(data)
        _, _, seq, _, ssrc = _HEADER.unpack_from(data)
        high = self.ssrc_high.get(ssrc)
        if high is None:
            self.ssrc_first[ssrc] = seq
            self.ssrc_high[ssrc] = seq
            self.ssrc_count[ssrc] = 1
            if not self.first_rtp_ns:
                self.first_rtp_ns = now
        else:
            self.ssrc_count[ssrc] += 1
            delta = (seq - high) & 0xFFFF
            if delta < 0x8000:
                self.ssrc_high[ssrc] = high + delta
        if len(data) > 100:
            # The tag sits right after the RTP header (+ extensions) and the FU-A/STAP-A header.
            start = data.find(TAG_MAGIC, 12, 160)
            if start > 0:
                tag = read_tag(data, start)
                if tag is not None:
                    sent_ns, keyframe = tag
                    self.latencies_ms.append((now - sent_ns) / 1e6)
                    if keyframe and ssrc not in self.keyframe_ssrcs:
                        self._keyframe(ssrc, now)

    def _keyframe(self, ssrc: int, now: int) -> None:
        self.keyframe_ssrcs.add(ssrc)
        if not self.first_keyframe_ns:
            self.first_keyframe_ns = now
        if len(self.keyframe_ssrcs) == self.video_streams:
            self.all_keyframes_ns = now
            if self.on_all_keyframes is not None:
                self.on_all_keyframes()

    def gaps(self) -> int:
        """Packets missing from the sequence ranges seen so far (a duplicate could hide a loss).

        The SFU rewrites each subscriber's numbering to stay contiguous, so this sees only what was lost after
        the SFU; loss at the SFU is the publishers' sent count minus ``packets`` (bench/delivery.py).
        """
        missing = 0
        for ssrc, high in self.ssrc_high.items():
            missing += max(0, high - self.ssrc_first[ssrc] + 1 - self.ssrc_count[ssrc])
        return missing


_original_datagram_received = StunProtocol.datagram_received


def _raw_datagram_received(self: Any, data: bytes, addr: Any) -> None:
    tap = getattr(self.receiver, "_bench_tap", None)
    # RTP/RTCP have version 2 (first byte 128..191); RTCP packet types 192..223 take the normal path.
    if tap is not None and 127 < data[0] < 192 and not 191 < data[1] < 224:
        dtls, probe = tap
        srtp = dtls._rx_srtp  # None until DTLS has derived the keys
        if srtp is not None:
            try:
                packet = srtp.unprotect(data)
            except pylibsrtp.Error:  # replayed or not authentic: it does not count as delivered
                return
            probe.on_rtp(packet)
            return
    _original_datagram_received(self, data, addr)


def install_raw_receive() -> None:
    """Patch aioice's UDP callback process-wide (load-generator worker processes only; idempotent)."""
    # setattr: mypy refuses assignments to a method.
    setattr(StunProtocol, "datagram_received", _raw_datagram_received)  # noqa: B010


def tap_subscriber(pc: Any, probe: SubscriberProbe) -> None:
    """Route the SRTP of every transport of pc to probe; call once the transports exist (before DTLS)."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        # aioice's StunProtocol.receiver is the ICE Connection: one tap serves all its sockets.
        dtls.transport._connection._bench_tap = (dtls, probe)

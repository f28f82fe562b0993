"""A fake room terminal for the PlainPeer tests: real UDP sockets on 127.0.0.1, H.264 from PyAV/libx264,
optional SDES-SRTP with pylibsrtp, a record of everything the gateway sends back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import pylibsrtp
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPacket, RtcpPsfbPacket

from sfu.rtp import RTP_HEADER, RtpHeader, parse_rtp
from tests.sfu.conftest import draw_counter, read_counter

KEY = bytes(range(30))  # the terminal's SDES key in these tests


@dataclass
class Received:
    """What the terminal got on one m-line."""

    rtp: list[tuple[float, int, int, int, int, bool, bytes]] = field(
        default_factory=list
    )  # t ssrc seq ts pt m p
    rtcp: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def keyframe_requests(self) -> list[int]:
        """The PSFB FMTs of the keyframe requests received (1: PLI, 4: FIR)."""
        return [
            p.fmt
            for p in self.rtcp
            if isinstance(p, RtcpPsfbPacket) and p.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR)
        ]


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, cb: Callable[[bytes, Any], None]) -> None:
        self.cb = cb

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.cb(data, addr)


class Line:
    """One m-line of the terminal: RTP socket, RTCP socket (port + 1), optional SRTP."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.got = Received()
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None
        self.port = 0
        self.tx: pylibsrtp.Session | None = None
        self.rx: pylibsrtp.Session | None = None
        self.gateway: tuple[str, int] = ("127.0.0.1", 0)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(50):
            rtp, _ = await loop.create_datagram_endpoint(
                lambda: _Proto(self._on_rtp), local_addr=("127.0.0.1", 0)
            )
            port = rtp.get_extra_info("sockname")[1]
            if port % 2 == 0:
                try:
                    rtcp, _ = await loop.create_datagram_endpoint(
                        lambda: _Proto(self._on_rtcp), local_addr=("127.0.0.1", port + 1)
                    )
                except OSError:
                    rtp.close()
                    continue
                self.rtp, self.rtcp, self.port = rtp, rtcp, port
                return
            rtp.close()
        raise OSError("no even port pair")

    def keys(self, remote_key: bytes) -> None:
        """SRTP: we protect with KEY, the gateway with `remote_key` (its answer's inline key)."""
        self.tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self.rx = pylibsrtp.Session(
            pylibsrtp.Policy(key=remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        )

    def _on_rtp(self, data: bytes, addr: Any) -> None:
        if self.rx is not None:
            data = self.rx.unprotect(data)
        h = RtpHeader()
        if parse_rtp(data, h):
            payload = data[h.payload_start : h.payload_end]
            self.got.rtp.append((time.monotonic(), h.ssrc, h.seq, h.ts, h.pt, bool(h.marker), payload))
            self.got.changed.set()

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        if self.rx is not None:
            data = self.rx.unprotect_rtcp(data)
        with contextlib.suppress(ValueError):
            self.got.rtcp.extend(RtcpPacket.parse(data))
            self.got.changed.set()

    def send(self, packet: bytes) -> None:
        assert self.rtp is not None
        if self.tx is not None:
            packet = self.tx.protect(packet)
        self.rtp.sendto(packet, self.gateway)

    def send_rtcp(self, packet: bytes) -> None:
        assert self.rtcp is not None
        if self.tx is not None:
            packet = self.tx.protect_rtcp(packet)
        self.rtcp.sendto(packet, (self.gateway[0], self.gateway[1] + 1))

    def close(self) -> None:
        for t in (self.rtp, self.rtcp):
            if t is not None:
                t.close()


class H264Source:
    """Counter frames encoded with libx264 (Constrained Baseline), packetized as RFC 6184 mode 1."""

    def __init__(
        self, pt: int, start: int = 1000, width: int = 320, height: int = 240, gop: int = 300
    ) -> None:
        self.pt = pt
        self.counter = start
        self.ssrc = 0x5EED0001
        self.seq = 100
        self.ts = 12345
        self.codec = av.CodecContext.create("libx264", "w")
        self.codec.width, self.codec.height = width, height
        self.codec.pix_fmt = "yuv420p"
        self.codec.time_base = Fraction(1, 90000)
        self.codec.gop_size = gop
        self.codec.options = {"profile": "baseline", "tune": "zerolatency", "preset": "ultrafast"}
        self.frames = 0
        self.width, self.height = width, height

    def access_unit(self, *, keyframe: bool = False) -> bytes:
        """The next frame as H.264 Annex B (a slate is one such IDR)."""
        frame = draw_counter(self.counter, self.width, self.height)
        frame.pts = self.frames * 6000
        frame.time_base = Fraction(1, 90000)
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        self.counter += 1
        self.frames += 1
        return b"".join(bytes(p) for p in self.codec.encode(frame))

    def next_packets(self, *, keyframe: bool = False) -> list[bytes]:
        data = self.access_unit(keyframe=keyframe)
        payloads = H264Encoder._packetize(H264Encoder._split_bitstream(data))
        out = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 else 0
            out.append(RTP_HEADER.pack(0x80, marker | self.pt, self.seq, self.ts, self.ssrc) + payload)
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 6000) & 0xFFFFFFFF  # 15 fps
        return out


class H264Sink:
    """Depacketizes RFC 6184 (single NAL, STAP-A, FU-A) and decodes with PyAV: the counters seen."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("h264", "r")
        self.counters: list[int] = []
        self.idrs = 0
        self._au = bytearray()
        self._ts: int | None = None

    def feed(self, ts: int, marker: bool, payload: bytes) -> None:
        if self._ts is not None and ts != self._ts and self._au:
            self._flush()
        self._ts = ts
        nal = payload[0] & 0x1F
        if nal == 24:
            i = 1
            while i + 2 <= len(payload):
                size = int.from_bytes(payload[i : i + 2], "big")
                self._au += b"\x00\x00\x00\x01" + payload[i + 2 : i + 2 + size]
                i += 2 + size
        elif nal == 28:
            header = payload[1]
            if header & 0x80:
                self._au += b"\x00\x00\x00\x01" + bytes(((payload[0] & 0xE0) | (header & 0x1F),))
            self._au += payload[2:]
        else:
            self._au += b"\x00\x00\x00\x01" + payload
        if marker:
            self._flush()

    def _flush(self) -> None:
        data, self._au = bytes(self._au), bytearray()
        if not data:
            return
        if b"\x00\x00\x00\x01\x65" in data or b"\x00\x00\x00\x01\x25" in data or b"\x00\x00\x01\x65" in data:
            self.idrs += 1
        try:
            for frame in self.decoder.decode(av.Packet(data)):
                self.counters.append(read_counter(frame))
        except av.error.InvalidDataError:
            pass


def terminal_offer(
    audio_port: int, video_port: int, *, fir_only: bool = False, srtp: bool = False, te_pt: int = 101
) -> str:
    """A Poly-style offer (research/sip.md §1.1) for ports on 127.0.0.1."""
    proto = "RTP/SAVP" if srtp else "RTP/AVP"
    crypto = (
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY).decode()}|2^31\r\n" if srtp else ""
    )
    feedback = "a=rtcp-fb:* ccm fir\r\n" if fir_only else "a=rtcp-fb:* nack pli\r\na=rtcp-fb:* ccm fir\r\n"
    return (
        "v=0\r\no=plcm 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {audio_port} {proto} 9 0 {te_pt}\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:{te_pt} telephone-event/8000\r\na=fmtp:{te_pt} 0-15\r\n{crypto}a=sendrecv\r\n"
        f"m=video {video_port} {proto} 109\r\nb=TIAS:1024000\r\na=rtpmap:109 H264/90000\r\n"
        "a=fmtp:109 profile-level-id=428016;packetization-mode=1;max-fs=1344;max-mbps=40500\r\n"
        f"{feedback}{crypto}a=content:main\r\na=label:11\r\na=sendrecv\r\n"
    )


async def wait_for(event_owner: Received, predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what} not within {within} s")
        event_owner.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event_owner.changed.wait(), min(remaining, 0.2))

"""PlainStream's sockets: one m-line's RTP and RTCP on UDP, SDES-SRTP, symmetric RTP (latching).

No ICE and no DTLS: the terminal's address comes from its SDP and is replaced by the first source that
sends from the SIP peer's host (NAT), SRTP keys come from the SDP (`a=crypto`). sfu/plain.py owns these.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import Any

import pylibsrtp

from sfu.plain_media import PlainSrtp, PlainStream
from sfu.rtp import RTP_HEADER

log = logging.getLogger(__name__)

Address = tuple[str, int]
Receive = Callable[[bytes, Address], None]

# A video burst (an IDR in 30 packets) while the loop is busy elsewhere must not overflow the default
# buffer; the kernel caps this at net.core.rmem_max.
RECEIVE_BUFFER = 1 << 20

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def srtp_sessions(keys: PlainSrtp) -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    """(inbound, outbound) libsrtp sessions for one m-line's SDES keys."""
    profile = _PROFILES[keys.suite]
    rx = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=keys.remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
        )
    )
    policy = pylibsrtp.Policy(
        key=keys.local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
    )
    policy.allow_repeat_tx = True  # the slate's IDR is sent again with fresh numbers, but a NACK resends
    return rx, pylibsrtp.Session(policy)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, receive: Receive) -> None:
        self._receive = receive

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receive(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("plain RTP socket: %s", exc)  # ICMP port unreachable before the terminal listens


class RouteState:
    """What sfu/_route.c checks before each C copy (a stand-in for the DTLS transport it reads otherwise):
    `_state` is CONNECTED while a destination is latched, `_tx_srtp` the outbound session (None: plain)."""

    CONNECTED = object()
    IDLE = object()

    def __init__(self) -> None:
        self._state: object = RouteState.IDLE
        self._tx_srtp: pylibsrtp.Session | None = None
        self.nominated: dict[int, object] = {}


class MediaSocket:
    """One m-line: RTP socket (the even port) and RTCP socket (the next), SRTP, latched destination."""

    def __init__(self, kind: str, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.kind = kind
        self.rtp_sock = rtp
        self.rtcp_sock = rtcp
        self.stream: PlainStream | None = None
        self.rtp_transport: asyncio.DatagramTransport | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self.rx: pylibsrtp.Session | None = None
        self.tx: pylibsrtp.Session | None = None
        self.remote: Address | None = None  # where RTP goes
        self.remote_rtcp: Address | None = None
        self.latched = False
        self.allowed_host = ""  # "" : any source may latch
        self.route_state = RouteState()
        self.ssrc = (
            random.getrandbits(32) or 1
        )  # what we send on this m-line (audio; video: the subscription's)
        self.seq = random.getrandbits(15)
        self.ts = random.getrandbits(32)
        self.sent_first = False
        self.packets_sent = 0
        self.octets_sent = 0
        self.received = 0
        self.refused = 0  # datagrams from a host that may not latch, or failing SRTP
        self.last_received = 0.0

    @property
    def local_port(self) -> int:
        return int(self.rtp_sock.getsockname()[1])

    async def open(self, on_rtp: Receive, on_rtcp: Receive) -> None:
        loop = asyncio.get_running_loop()
        self.rtp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(on_rtp), sock=self.rtp_sock
        )
        self.rtcp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(on_rtcp), sock=self.rtcp_sock
        )

    def configure(self, stream: PlainStream, allowed_host: str) -> None:
        """Apply (again, after a re-INVITE) the negotiated stream: destination, keys."""
        changed_keys = self.stream is None or self.stream.srtp != stream.srtp
        self.stream = stream
        self.allowed_host = allowed_host
        if not self.latched:
            self._set_remote((stream.remote_host, stream.remote_port), stream)
        if changed_keys:
            self.rx, self.tx = srtp_sessions(stream.srtp) if stream.srtp is not None else (None, None)
            self.route_state._tx_srtp = self.tx
            self.route_state.nominated[1] = object()  # the C route re-reads the session

    def _set_remote(self, addr: Address, stream: PlainStream) -> None:
        if stream.remote_port == 0 or addr[0] in ("0.0.0.0", "::", ""):
            self.remote = self.remote_rtcp = None  # on hold (RFC 3264 §8.4) or no port
            self.route_state._state = RouteState.IDLE
            return
        self.remote = addr
        if stream.rtcp_mux:
            self.remote_rtcp = addr
        elif self.latched or not stream.remote_rtcp_port:
            self.remote_rtcp = (addr[0], addr[1] + 1)
        else:
            self.remote_rtcp = (addr[0], stream.remote_rtcp_port)
        self.route_state._state = RouteState.CONNECTED
        self.route_state.nominated[1] = object()  # a new "pair": the C route refreshes its address

    def admit(self, data: bytes, addr: Address, *, rtcp: bool) -> bytes | None:
        """The datagram unprotected, latching the destination to its source; None when refused."""
        stream = self.stream
        if stream is None or (self.allowed_host and addr[0] != self.allowed_host):
            self.refused += 1
            return None
        if self.rx is not None:
            try:
                data = self.rx.unprotect_rtcp(data) if rtcp else self.rx.unprotect(data)
            except pylibsrtp.Error:
                self.refused += 1
                return None
        if not rtcp and not self.latched:
            self.latched = True  # symmetric RTP: the first authentic source, once
            if addr != self.remote:
                log.info("plain %s: latched to %s:%d (SDP said %s)", self.kind, addr[0], addr[1], self.remote)
            self._set_remote(addr, stream)
        elif rtcp and self.latched and not stream.rtcp_mux and self.remote_rtcp != addr:
            self.remote_rtcp = addr
        self.received += 1
        return data

    def send_rtp(self, packet: bytes) -> bool:
        """Protect and send one RTP packet to the terminal; False when there is nowhere to send."""
        if self.remote is None or self.rtp_transport is None:
            return False
        if self.tx is not None:
            packet = self.tx.protect(packet)
        self.rtp_transport.sendto(packet, self.remote)
        self.packets_sent += 1
        self.octets_sent += len(packet)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        if self.remote_rtcp is None:
            return False
        transport = (
            self.rtp_transport if self.stream is not None and self.stream.rtcp_mux else self.rtcp_transport
        )
        if transport is None:
            return False
        if self.tx is not None:
            packet = self.tx.protect_rtcp(packet)
        transport.sendto(packet, self.remote_rtcp)
        return True

    def packet(self, pt: int, payload: bytes, samples: int, *, marker: bool = False) -> bytes:
        """Our own RTP packet on this m-line's SSRC (audio out: the mix)."""
        if not self.sent_first:
            self.sent_first = marker = True
        else:
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + samples) & 0xFFFFFFFF
        return RTP_HEADER.pack(0x80, (0x80 if marker else 0) | pt, self.seq, self.ts, self.ssrc) + payload

    def close(self) -> None:
        for transport in (self.rtp_transport, self.rtcp_transport):
            if transport is not None:
                transport.close()
        self.rtp_transport = self.rtcp_transport = None
        self.rtp_sock.close()
        self.rtcp_sock.close()
        self.route_state._state = RouteState.IDLE


def bind_pair(host: str, low: int | None, high: int | None) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one (RFC 3550 §11), from [low, high] or ephemeral."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    attempts = 64 if low is None or high is None else max(1, (high - low + 1) // 2)
    start = random.randrange(1 << 16)
    for i in range(attempts):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if low is None or high is None:
                rtp.bind((host, 0))
                port = rtp.getsockname()[1]
                if port % 2 or port == 65535:
                    rtp.close()
                    continue
            else:
                first = low + (low % 2)
                count = max(1, (high - first) // 2)
                port = first + 2 * ((start + i) % count)
                rtp.bind((host, port))
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
                raise
        except OSError:
            rtp.close()
            continue
        for sock in (rtp, rtcp):
            sock.setblocking(False)
        # A video burst (an IDR in 30 packets) while the loop is busy elsewhere must not overflow the
        # default buffer; the kernel caps this at net.core.rmem_max.
        rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        return rtp, rtcp
    raise OSError(f"no free RTP/RTCP port pair on {host}")


RTPFB = 205
TMMBR, TMMBN = 3, 4  # RFC 5104 §4.2.1, §4.2.2


def tmmbr_requests(compound: bytes) -> list[tuple[int, int, int]]:
    """The TMMBR entries of an RTCP compound packet: (media SSRC, bit rate in bit/s, measured overhead)."""
    out = []
    pos = 0
    while pos + 4 <= len(compound):
        fmt, pt = compound[pos] & 0x1F, compound[pos + 1]
        end = pos + 4 * (int.from_bytes(compound[pos + 2 : pos + 4], "big") + 1)
        if end > len(compound):
            break
        if pt == RTPFB and fmt == TMMBR:
            for at in range(pos + 12, end - 7, 8):
                ssrc = int.from_bytes(compound[at : at + 4], "big")
                word = int.from_bytes(compound[at + 4 : at + 8], "big")
                out.append((ssrc, ((word >> 9) & 0x1FFFF) << (word >> 26), word & 0x1FF))
        pos = end
    return out


def tmmbn(sender_ssrc: int, entries: list[tuple[int, int, int]]) -> bytes:
    """The TMMBN acknowledging `entries` (RFC 5104 §4.2.2: the bounding set, here what was asked)."""
    fci = b""
    for ssrc, bitrate, overhead in entries:
        exponent = 0
        while bitrate >> exponent > 0x1FFFF:
            exponent += 1
        word = (exponent << 26) | ((bitrate >> exponent) << 9) | (overhead & 0x1FF)
        fci += ssrc.to_bytes(4, "big") + word.to_bytes(4, "big")
    length = (8 + len(fci)) // 4
    return (
        bytes((0x80 | TMMBN, RTPFB))
        + length.to_bytes(2, "big")
        + sender_ssrc.to_bytes(4, "big")
        + bytes(4)
        + fci
    )

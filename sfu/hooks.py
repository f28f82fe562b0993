"""The only module that touches aiortc internals, with sfu/ice.py, sfu/certificate.py and sfu/codecs.py
(aiortc is pinned to one exact version).

Per RTCPeerConnection we
  * replace ``RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)`` and ``_handle_rtcp_data(data)`` on
    the instance: decrypted raw bytes come to us, aiortc's RtpRouter is bypassed;
  * send the way ``RTCDtlsTransport._send_rtp(data)`` does (SRTP/SRTCP protect with its ``_tx_srtp``, then
    the datagram transport of aioice's nominated pair), but synchronously: ``PeerHooks.send_now``; and hand
    the same way out (socket, address, SRTP session) to the C copy loop: ``PeerHooks.route`` (sfu/fanout.py);
  * once DTLS is up, take SRTP media straight from aioice's ``StunProtocol.datagram_received`` (replaced on
    the instance), unprotect it with the transport's ``_rx_srtp`` and call our ``_handle_rtp_data`` there,
    skipping aioice's queue and the DTLS task (``PeerHooks._tap_datagrams``);
  * replace ``RTCRtpReceiver.receive(parameters)`` and ``RTCRtpSender.send(parameters)`` on the instance so
    they only record the negotiated parameters: no decoder thread, no encoder loop, no RTCP tasks;
  * read ``RTCRtpSender._ssrc`` / ``_rtx_ssrc`` (already announced in our SDP) and set ``_stream_id`` (msid);
  * give aioice's Connection a ``connect()`` that ends when ICE does, not at its next pacing tick
    (sfu/ice.py).

``verify_hook_points()`` (sfu/hook_points.py) fails loudly when an aiortc upgrade changes any of these (for
the copied send and receive paths: every line of aiortc/aioice/pylibsrtp code they stand in for).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

import pylibsrtp
from aioice.ice import StunProtocol
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtcpPacket
from aiortc.sdp import candidate_from_sdp
from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _lib

from sfu.certificate import CertificateStore
from sfu.fanout import NATIVE, Route, srtp_context_address
from sfu.hook_points import verify_hook_points
from sfu.ice import PortRange, prompt_connect, use_port_range
from sfu.metrics import METRICS
from sfu.settings import SfuSettings

__all__ = [
    "NackGenerator",
    "PeerHooks",
    "RemoteBitrateEstimator",
    "StreamStatistics",
    "make_peer_connection",
    "parse_candidate",
    "port_range",
    "sender_ssrcs",
    "set_stream_id",
    "verify_hook_points",
]

log = logging.getLogger(__name__)

_CONNECTED = State.CONNECTED
MIN_DATAGRAM = 12  # the fixed RTP header
_srtp_protect = _lib.srtp_protect


def _fast_protect(session: Any) -> Callable[[bytes], bytes]:
    """``session.protect``, minus pylibsrtp's per-call wrapper when `session` is a ``pylibsrtp.Session``.

    The wrapper type-checks, allocates an ``int *`` and goes through two more Python calls per packet: about
    0.9 µs of the 2.4 µs an SRTP protect of 1.2 kB costs here. The returned function keeps one ``int *`` and
    calls libsrtp on the session's own buffer, exactly as the wrapper does (``SEND_PATH`` pins its code).
    Built once per SRTP session (one per DTLS handshake), not per packet.
    """
    if type(session) is not pylibsrtp.Session:
        protect: Callable[[bytes], bytes] = session.protect
        return protect
    srtp, cdata, buffer = session._srtp[0], session._cdata, session._buffer
    limit = len(cdata) - pylibsrtp.SRTP_MAX_TRAILER_LEN
    length = _ffi.new("int *")

    def fast_protect(data: bytes) -> bytes:
        n = len(data)
        if n > limit:
            raise ValueError("packet is too long")
        length[0] = n
        buffer[0:n] = data
        status = _srtp_protect(srtp, cdata, length)
        if status:
            raise pylibsrtp.Error(f"srtp_protect failed with status {status}")
        result: bytes = buffer[0 : length[0]]
        return result

    return fast_protect


RtpHandler = Callable[[bytes, int], Awaitable[None]]
RtcpHandler = Callable[[list[Any]], Awaitable[None]]
ParamsHandler = Callable[[Any, Any], None]  # (transceiver, RTCRtpReceiveParameters | RTCRtpSendParameters)


# Process-wide, like a browser's certificate per origin (sfu/certificate.py says why).
_certificates = CertificateStore()


def port_range(settings: SfuSettings) -> PortRange | None:
    """The configured media port range, if any (settings validate that both ends are set)."""
    if settings.udp_port_min is None or settings.udp_port_max is None:
        return None
    return PortRange(settings.udp_port_min, settings.udp_port_max)


def make_peer_connection(settings: SfuSettings) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in settings.ice_servers
    ]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    # Before any transport exists: the transports take their certificate from this list.
    setattr(pc, "_RTCPeerConnection__certificates", [_certificates.current()])  # noqa: B010
    return pc


def parse_candidate(candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> Any:
    """An RTCIceCandidate from its SDP form (with or without the ``candidate:`` prefix)."""
    text = candidate.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    bits = text.split()
    if len(bits) < 8 or bits[6] != "typ" or not bits[5].isdigit():
        raise ValueError(f"not an ICE candidate: {candidate!r}")
    result = candidate_from_sdp(text)
    result.sdpMid = sdp_mid
    result.sdpMLineIndex = sdp_mline_index
    return result


def sender_ssrcs(transceiver: Any) -> tuple[int, int]:
    """The SSRC and RTX SSRC aiortc announced for this transceiver's sender."""
    sender = transceiver.sender
    return int(sender._ssrc), int(sender._rtx_ssrc)


def set_stream_id(transceiver: Any, stream_id: str) -> None:
    """Group tracks into one MediaStream (a=msid) so browsers lip-sync one participant's audio and video."""
    transceiver.sender._stream_id = stream_id


class PeerHooks:
    """Taps one RTCPeerConnection: raw RTP/RTCP in, raw RTP/RTCP out, no codecs.

    Callbacks: ``on_rtp(data, arrival_ms)``, ``on_rtcp(packets)``, ``on_receive(transceiver, params)`` and
    ``on_send(transceiver, params)``; the last two run on every (re)negotiation. An exception raised by any
    callback is logged and counted in ``errors``; it never reaches aiortc (it would close the transport).
    ``sends_media``: the connection forwards RTP to its peer (a subscribe connection), so it gets a ``route``.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
        on_receive: ParamsHandler | None = None,
        on_send: ParamsHandler | None = None,
        ports: PortRange | None = None,
        sends_media: bool = False,
    ) -> None:
        self._pc = pc
        self._ports = ports  # host sockets bind within this range (None: any ephemeral port)
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_receive = on_receive
        self._on_send = on_send
        self._dtls: Any = None
        self._patched: set[int] = set()
        self.errors = 0
        # aioice's nominated pair, and its datagram transport and remote address, as of the last send.
        self._nominated: dict[int, Any] = {}
        self._srtp: Any = None  # the SRTP session `_protect` was built for
        self._protect: Callable[[bytes], bytes] | None = None
        self._pair: Any = None
        self._udp: Any = None
        self._addr: Any = None
        # The same way out for the C copy loop (sfu/fanout.py), for a connection that forwards media to its
        # peer; None otherwise (a publish connection sends only RTCP) or without the C module.
        self.route: Route | None = Route(self._refresh_route) if NATIVE and sends_media else None

    def close(self) -> None:
        """Release what the hooks hold beyond aiortc's objects: the route's socket (idempotent)."""
        if self.route is not None:
            self.route.close()

    def _refresh_route(self) -> bool | None:
        """Point the route at the nominated pair's socket and the SRTP session; the C loop calls this when
        either changed. True: ready; False: not connected (nothing can be sent); None: not a connection the
        C loop can send on (a stand-in transport without a socket or a pylibsrtp session): use Python."""
        route, dtls = self.route, self._dtls
        assert route is not None
        pair = self._nominated.get(1)
        if dtls is None or dtls._state is not _CONNECTED or pair is None:
            route.clear()
            return False
        srtp = dtls._tx_srtp
        transport = pair.protocol.transport
        sock = transport.get_extra_info("socket") if hasattr(transport, "get_extra_info") else None
        if type(srtp) is not pylibsrtp.Session or sock is None:
            return None
        host, port = pair.remote_addr[:2]
        route.set(
            dtls=dtls,
            nominated=self._nominated,
            connected=_CONNECTED,
            pair=pair,
            session=srtp,
            srtp=srtp_context_address(srtp),
            fd=sock.fileno(),
            host=host,
            port=port,
        )
        return True

    def attach(self) -> None:
        """Patch every transceiver of the PC; call after each setRemoteDescription / addTransceiver."""
        for transceiver in self._pc.getTransceivers():
            if id(transceiver) not in self._patched:
                self._patched.add(id(transceiver))
                self._patch_transceiver(transceiver)
            self._install_tap(transceiver.receiver.transport)

    @property
    def connected(self) -> bool:
        return self._dtls is not None and self._dtls.state == "connected"

    async def send(self, data: bytes) -> bool:
        """Protect and send one RTP or RTCP packet; False when the transport cannot send (yet or any more)."""
        return self.send_now(data)

    def send_now(self, data: bytes) -> bool:
        """``send`` without a coroutine: the forwarding hot path calls this once per packet and subscriber.

        It does what ``await dtls._send_rtp(data)`` does (``SEND_PATH`` pins each step), minus five
        coroutine layers (_send_rtp, Connection.send, .sendto, StunProtocol.send_data) that never suspend,
        the ``remote_addr`` property rebuilt per packet and the transport's byte counters (only aiortc's
        getStats reads them; the SFU keeps its own).
        """
        dtls = self._dtls
        if dtls is None or dtls._state is not _CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        if pair is not self._pair:
            self._pair, self._udp, self._addr = pair, pair.protocol.transport, pair.remote_addr
        srtp = dtls._tx_srtp
        # aiortc.rtp.is_rtcp, inlined: RTCP packet types 192..208 sit where RTP has marker + payload type.
        if 191 < data[1] < 209:
            protected = srtp.protect_rtcp(data)
        else:
            if self.route is not None:
                sent = self.route.send(data)
                if sent is not None:
                    return sent
            protect = self._protect
            if protect is None or srtp is not self._srtp:  # a new session per DTLS handshake
                self._srtp, protect = srtp, _fast_protect(srtp)
                self._protect = protect
            protected = protect(data)
        try:
            self._udp.sendto(protected, self._addr)
        except OSError:
            return False
        return True

    def _fail(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 10:  # a broken callback would otherwise log once per packet
            log.exception("sfu hook %s failed", what)

    def _patch_transceiver(self, transceiver: Any) -> None:
        receiver, sender = transceiver.receiver, transceiver.sender

        # RTCPeerConnection calls these again on every renegotiation; the callbacks see each call.
        async def receive(parameters: Any) -> None:
            self._install_tap(receiver.transport)
            if self._on_receive is not None:
                try:
                    self._on_receive(transceiver, parameters)
                except Exception:
                    self._fail("receive")

        async def send(parameters: Any) -> None:
            self._install_tap(sender.transport)
            if self._on_send is not None:
                try:
                    self._on_send(transceiver, parameters)
                except Exception:
                    self._fail("send")

        receiver.receive = receive
        sender.send = send
        # aiortc's receiver never sees a packet here (_handle_rtp_data is ours), so its bitrate estimator
        # (about 96 kB of rate buckets per video transceiver, on the publish and the subscribe side) is dead
        # weight; aiortc runs without one (and without a NACK generator) for audio.
        setattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)  # noqa: B010
        setattr(receiver, "_RTCRtpReceiver__nack_generator", None)  # noqa: B010

    def _install_tap(self, dtls: Any) -> None:
        self._dtls = dtls
        # The same dict for the connection's lifetime: aioice fills it on nomination and clears it on close.
        self._nominated = dtls._transport._connection._nominated
        prompt_connect(dtls._transport._connection)
        if self._ports is not None:
            use_port_range(dtls._transport._connection, self._ports)
        self._tap_datagrams(dtls)
        if getattr(dtls, "_yunhui_hooks", None) is self:
            return
        dtls._yunhui_hooks = self

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            # Arrival on our monotonic clock, not aiortc's (a timezone-aware datetime per packet): the
            # bitrate estimator only takes differences, and both ingress paths come through here.
            try:
                await self._on_rtp(data, int(monotonic() * 1000))
            except Exception:
                self._fail("rtp")

        async def handle_rtcp_data(data: bytes) -> None:
            try:
                packets = RtcpPacket.parse(data)
            except ValueError:
                return
            try:
                await self._on_rtcp(packets)
            except Exception:
                self._fail("rtcp")

        dtls._handle_rtp_data = handle_rtp_data
        dtls._handle_rtcp_data = handle_rtcp_data

    def _tap_datagrams(self, dtls: Any) -> None:
        """Take SRTP media straight from aioice's sockets (``RECEIVE_PATH``), skipping the DTLS task.

        aioice queues every datagram (``asyncio.Queue``) for the DTLS transport's task, which wakes up, checks
        the first byte, unprotects and awaits ``_handle_rtp_data``: one task switch and four coroutine layers
        per packet. Once DTLS is connected, RTP datagrams are unprotected and handed to the hook right here,
        in the socket callback; STUN, DTLS and RTCP still take aiortc's path. Called on every
        (re)negotiation: aioice opens its sockets while gathering, after our hooks were attached.
        """
        for protocol in dtls._transport._connection._protocols:
            if type(protocol) is not StunProtocol or getattr(protocol, "_yunhui_dtls", None) is dtls:
                continue
            patched: Any = protocol  # an instance attribute shadows the method, as for the DTLS transport
            patched._yunhui_dtls = dtls
            patched.datagram_received = self._datagram_tap(dtls, protocol.datagram_received)

    def forget_ssrc(self, ssrc: int) -> None:
        """Free libsrtp's receive state for `ssrc`, a stream the connection drops.

        aiortc's inbound policy is ``SSRC_ANY_INBOUND``: libsrtp (2.7, in pylibsrtp) clones its template into
        a new stream (~400 bytes) for every SSRC whose packet authenticates, keeps it until the session ends,
        and finds a packet's stream by a linear search (10,000 streams: 54 µs per unprotect instead of 4).
        """
        srtp = None if self._dtls is None else self._dtls._rx_srtp
        if isinstance(srtp, pylibsrtp.Session):
            with contextlib.suppress(pylibsrtp.Error):  # no stream: nothing to free
                srtp.remove_stream(ssrc)

    def _datagram_tap(
        self, dtls: Any, original: Callable[[bytes, Any], None]
    ) -> Callable[[bytes, Any], None]:
        def datagram_received(data: bytes, addr: Any) -> None:
            # Shorter than any RTP header (STUN, DTLS and SRTCP are longer still): anyone can send one, and
            # aiortc's DTLS task reads data[0] of what aioice queues (an empty datagram would end it).
            if len(data) < MIN_DATAGRAM:
                METRICS.runt_datagrams += 1
                return
            srtp = dtls._rx_srtp
            # SRTP RTP: first byte 128..191 (version 2), second byte not an RTCP packet type (192..208).
            if (
                srtp is None
                or not 127 < data[0] < 192
                or 191 < data[1] < 209
                or dtls._state is not _CONNECTED
            ):
                original(data, addr)
                return
            try:
                plain = srtp.unprotect(data)
            except pylibsrtp.Error:
                return  # as aiortc does: a packet that fails authentication is dropped
            coroutine = dtls._handle_rtp_data(plain, 0)  # the handler reads the clock
            try:
                coroutine.send(None)  # runs to completion: nothing on the media path awaits a real future
            except StopIteration:
                return
            coroutine.close()
            self._fail("rtp (suspended in a socket callback)")

        return datagram_received

"""The only module that touches aiortc internals (aiortc is pinned to one exact version).

Per RTCPeerConnection we
  * replace ``RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)`` and ``_handle_rtcp_data(data)`` on
    the instance: decrypted raw bytes come to us, aiortc's RtpRouter is bypassed;
  * send with ``await RTCDtlsTransport._send_rtp(data)`` (SRTP/SRTCP protect, then ICE);
  * replace ``RTCRtpReceiver.receive(parameters)`` and ``RTCRtpSender.send(parameters)`` on the instance so
    they only record the negotiated parameters: no decoder thread, no encoder loop, no RTCP tasks;
  * read ``RTCRtpSender._ssrc`` / ``_rtx_ssrc`` (already announced in our SDP) and set ``_stream_id`` (msid).

``verify_hook_points()`` fails loudly when an aiortc upgrade changes any of these.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc.rtp as aiortc_rtp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtcpPacket
from aiortc.sdp import candidate_from_sdp

from sfu.errors import HookSurfaceChanged
from sfu.rtp import URI_RID, URI_RRID
from sfu.settings import SfuSettings

__all__ = [
    "NackGenerator",
    "PeerHooks",
    "RemoteBitrateEstimator",
    "StreamStatistics",
    "install_global_patches",
    "make_peer_connection",
    "parse_candidate",
    "sender_ssrcs",
    "set_stream_id",
    "verify_hook_points",
]

log = logging.getLogger(__name__)

# (class, method, parameter names after self, must be a coroutine function)
HOOK_METHODS: tuple[tuple[type, str, tuple[str, ...], bool], ...] = (
    (RTCDtlsTransport, "_handle_rtp_data", ("data", "arrival_time_ms"), True),
    (RTCDtlsTransport, "_handle_rtcp_data", ("data",), True),
    (RTCDtlsTransport, "_send_rtp", ("data",), True),
    (RTCRtpReceiver, "receive", ("parameters",), True),
    (RTCRtpSender, "send", ("parameters",), True),
)
SENDER_ATTRIBUTES = ("_ssrc", "_rtx_ssrc", "_stream_id")

# Ids for the simulcast extensions we answer with; unique across kinds because of BUNDLE.
RID_EXTENSION_ID = 10
RRID_EXTENSION_ID = 11

RtpHandler = Callable[[bytes, int], Awaitable[None]]
RtcpHandler = Callable[[list[Any]], Awaitable[None]]
ParamsHandler = Callable[[Any, Any], None]  # (transceiver, RTCRtpReceiveParameters | RTCRtpSendParameters)


def verify_hook_points() -> None:
    """Raise HookSurfaceChanged unless every private name we rely on exists with the expected signature."""
    for cls, name, params, is_coroutine in HOOK_METHODS:
        method = getattr(cls, name, None)
        if method is None:
            raise HookSurfaceChanged(f"{cls.__name__}.{name} is gone")
        got = tuple(inspect.signature(method).parameters)[1:]
        if got != params:
            raise HookSurfaceChanged(f"{cls.__name__}.{name}{got} != expected {params}")
        if inspect.iscoroutinefunction(method) != is_coroutine:
            raise HookSurfaceChanged(f"{cls.__name__}.{name} is no longer a coroutine function")
    # Read from the constructor's source: building a sender needs a live transport.
    init_source = inspect.getsource(RTCRtpSender.__init__)
    for attr in SENDER_ATTRIBUTES:
        if f"self.{attr} = " not in init_source:
            raise HookSurfaceChanged(f"RTCRtpSender.{attr} is no longer set by its constructor")
    if not isinstance(aiortc_rtp.DYNAMIC_PAYLOAD_TYPES, range):
        raise HookSurfaceChanged("aiortc.rtp.DYNAMIC_PAYLOAD_TYPES is no longer a range")


_state = {"patched": False}


def install_global_patches() -> None:
    """Process-wide aiortc settings an SFU needs (idempotent).

    * Accept the dynamic payload types 35..63 that recent browsers use once 96..127 run out; otherwise aiortc
      answers with its own PT and drops the matching RTX.
    * Answer Opus with the browser's usual fmtp (aiortc copies its local parameters into the answer).
    * Negotiate rtp-stream-id / repaired-rtp-stream-id so browsers can send simulcast.
    """
    if _state["patched"]:
        return
    _state["patched"] = True
    aiortc_rtp.DYNAMIC_PAYLOAD_TYPES = range(35, 128)
    for codec in CODECS["audio"]:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters = {"minptime": 10, "useinbandfec": 1}
    uris = {x.uri for x in HEADER_EXTENSIONS["video"]}
    if URI_RID not in uris:
        HEADER_EXTENSIONS["video"].append(RTCRtpHeaderExtensionParameters(id=RID_EXTENSION_ID, uri=URI_RID))
    if URI_RRID not in uris:
        HEADER_EXTENSIONS["video"].append(RTCRtpHeaderExtensionParameters(id=RRID_EXTENSION_ID, uri=URI_RRID))


def make_peer_connection(settings: SfuSettings) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in settings.ice_servers
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


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
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
        on_receive: ParamsHandler | None = None,
        on_send: ParamsHandler | None = None,
    ) -> None:
        self._pc = pc
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_receive = on_receive
        self._on_send = on_send
        self._dtls: Any = None
        self._patched: set[int] = set()
        self.errors = 0

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
        dtls = self._dtls
        if dtls is None:
            return False
        try:
            await dtls._send_rtp(data)
        except (ConnectionError, OSError):
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

    def _install_tap(self, dtls: Any) -> None:
        self._dtls = dtls
        if getattr(dtls, "_yunhui_hooks", None) is self:
            return
        dtls._yunhui_hooks = self

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            try:
                await self._on_rtp(data, arrival_time_ms)
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

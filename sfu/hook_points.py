"""What sfu/hooks.py relies on in aiortc, aioice and pylibsrtp, pinned: names, signatures and copied lines.

``verify_hook_points()`` fails loudly (HookSurfaceChanged) when an upgrade changes any of them; ``Sfu``
calls it at construction and tests/sfu/test_hooks.py runs it. For the code paths sfu/hooks.py repeats
synchronously (``SEND_PATH``, ``RECEIVE_PATH``) every line of the library code it stands in for is listed.
"""

from __future__ import annotations

import inspect
from typing import Any

import aiortc.rtp as aiortc_rtp
import pylibsrtp
from aioice.ice import Connection as IceConnection
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from sfu.errors import HookSurfaceChanged
from sfu.ice import verify_connect_path

# (class, method, parameter names after self, must be a coroutine function)
HOOK_METHODS: tuple[tuple[type, str, tuple[str, ...], bool], ...] = (
    (RTCDtlsTransport, "_handle_rtp_data", ("data", "arrival_time_ms"), True),
    (RTCDtlsTransport, "_handle_rtcp_data", ("data",), True),
    (RTCDtlsTransport, "_send_rtp", ("data",), True),
    (RTCRtpReceiver, "receive", ("parameters",), True),
    (RTCRtpSender, "send", ("parameters",), True),
)
SENDER_ATTRIBUTES = ("_ssrc", "_rtx_ssrc", "_stream_id")
_srtp_process = vars(pylibsrtp.Session)["_Session__process"]  # name-mangled private method
# What PeerHooks.send_now does instead of awaiting _send_rtp: each line must still be in aiortc/aioice's code,
# so that our synchronous copy of the egress path cannot drift from theirs unnoticed.
SEND_PATH: tuple[tuple[Any, str], ...] = (
    (RTCDtlsTransport._send_rtp, "self._state != State.CONNECTED"),
    (RTCDtlsTransport._send_rtp, "if is_rtcp(data):"),
    (aiortc_rtp.is_rtcp, "return len(msg) >= 2 and msg[1] >= 192 and msg[1] <= 208"),
    (RTCDtlsTransport._send_rtp, "data = self._tx_srtp.protect_rtcp(data)"),
    (RTCDtlsTransport._send_rtp, "data = self._tx_srtp.protect(data)"),
    (RTCDtlsTransport._send_rtp, "await self.transport._send(data)"),
    (RTCIceTransport.__init__, "self._connection = gatherer._connection"),
    (RTCIceTransport.__init__, "self._send = self._connection.send"),
    (IceConnection.send, "await self.sendto(data, 1)"),
    (IceConnection.sendto, "active_pair = self._nominated.get(component)"),
    (IceConnection.sendto, "await active_pair.protocol.send_data(data, active_pair.remote_addr)"),
    (StunProtocol.send_data, "self.transport.sendto(data, addr)"),
    # _fast_protect calls libsrtp the way pylibsrtp.Session.protect does, on the session's own buffers.
    (pylibsrtp.Session.protect, "return self.__process(packet, lib.srtp_protect, SRTP_MAX_TRAILER_LEN)"),
    (_srtp_process, "if len(data) > len(self._cdata) - trailer:"),
    (_srtp_process, "self._buffer[0 : len(data)] = data"),
    (_srtp_process, "_srtp_assert(func(self._srtp[0], self._cdata, len_p))"),
    (_srtp_process, "return self._buffer[0 : len_p[0]]"),
)
# What PeerHooks._tap_datagrams does instead of letting aioice queue RTP for the DTLS task.
RECEIVE_PATH: tuple[tuple[Any, str], ...] = (
    (StunProtocol.datagram_received, "self.receiver.data_received(data, self.local_candidate.component)"),
    (IceConnection.data_received, "self._queue.put_nowait((data, component))"),
    (RTCDtlsTransport._recv_next, "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:"),
    (RTCDtlsTransport._recv_next, "arrival_time_ms = clock.current_ms()"),
    (RTCDtlsTransport._recv_next, "if is_rtcp(data):"),
    (RTCDtlsTransport._recv_next, "data = self._rx_srtp.unprotect(data)"),
    (RTCDtlsTransport._recv_next, "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)"),
    (RTCDtlsTransport._recv_next, "except pylibsrtp.Error as exc:"),
)
# PeerHooks drops each receiver's unused bitrate estimator and NACK generator; aiortc must still allow None.
RECEIVER_PATH: tuple[tuple[Any, str], ...] = (
    (RTCRtpReceiver.__init__, "self.__remote_bitrate_estimator = RemoteBitrateEstimator()"),
    (RTCRtpReceiver._handle_rtp_packet, "if self.__remote_bitrate_estimator is not None:"),
    (RTCRtpReceiver._handle_rtp_packet, "if self.__nack_generator is not None and"),
)
_create_dtls_transport = vars(RTCPeerConnection)["_RTCPeerConnection__createDtlsTransport"]
# make_peer_connection swaps the certificate each RTCPeerConnection generated for the process-wide one.
CERTIFICATE_PATH: tuple[tuple[Any, str], ...] = (
    (RTCPeerConnection.__init__, "self.__certificates = [RTCCertificate.generateCertificate()]"),
    (_create_dtls_transport, "RTCDtlsTransport(iceTransport, self.__certificates)"),
    (RTCDtlsTransport.start, "self.__local_certificate._create_ssl_context("),
)


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
    for function, line in SEND_PATH + RECEIVE_PATH + CERTIFICATE_PATH + RECEIVER_PATH:
        if line not in inspect.getsource(function):
            raise HookSurfaceChanged(f"{function.__qualname__} no longer does {line!r}")
    verify_connect_path()

"""SIP over UDP, TCP and TLS (RFC 3261 §18): framing, flows, limits; hands whole messages upwards."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from signaling.clock import Scheduler
from signaling.sip.api import Transport
from signaling.sip.limits import AddressLimits
from signaling.sip.message import (
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    parse,
    response_to,
    split_list,
)
from signaling.sip.settings import SipSettings
from signaling.sip.tlscert import server_context
from signaling.sip.uri import NameAddr, Via

__all__ = ["Flow", "SipTransport", "Source"]

logger = logging.getLogger(__name__)

# Lower-cased User-Agent fragments of SIP scanners: their messages are dropped unanswered (A19).
STUN_COOKIE = b"\x21\x12\xa4\x42"

# Bytes queued on one TCP/TLS connection before we give up on the peer.
MAX_UNSENT = 1 << 20

SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar", "vaxsipuseragent")


class Flow:
    """One TCP or TLS connection; requests and responses of its transactions go back over it."""

    def __init__(self, transport: Transport, writer: asyncio.StreamWriter, peer: tuple[str, int]) -> None:
        self.transport: Transport = transport
        self.peer = peer
        self._writer = writer
        self.closed = False

    def send(self, data: bytes) -> bool:
        if self.closed or self._writer.is_closing():
            return False
        if self._writer.transport.get_write_buffer_size() > MAX_UNSENT:
            # A peer that stopped reading: drop it rather than buffer without bound.
            logger.info("sip: %s:%d stopped reading, connection closed", *self.peer)
            self.close()
            return False
        self._writer.write(data)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()


@dataclass(frozen=True)
class Source:
    """Where a message came from (and where its answers go): transport, address, and the flow if any."""

    transport: Transport
    host: str
    port: int
    flow: Flow | None = field(default=None, compare=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


Receiver = Callable[[SipRequest | SipResponse, Source], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        self._owner.received(data, Source("udp", host, port))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a terminal that went away: its transactions time out.
        logger.debug("udp error: %s", exc)


class SipTransport:
    """The listeners of one SipServer; ``receiver`` gets each well-formed message, already checked."""

    def __init__(self, settings: SipSettings, clock: Scheduler, receiver: Receiver) -> None:
        self._settings = settings
        self._receiver = receiver
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._limits = AddressLimits(settings.rate_limits, clock, settings.trusted_proxies)
        self._trusted = frozenset(settings.trusted_proxies)
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _Datagrams | None = None
        self._servers: list[asyncio.Server] = []
        self._flows: dict[tuple[Transport, str, int], Flow] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_context: ssl.SSLContext | None = None
        self.ports: dict[Transport, int] = {}
        self.dropped = 0
        self._closed = False

    @property
    def limits(self) -> AddressLimits:
        return self._limits

    async def start(self, state_dir: Path | None = None) -> None:
        """Bind every configured listener; on a failure (a port in use) the ones bound are closed again."""
        try:
            await self._start(state_dir)
        except BaseException:
            await self.close()
            raise

    async def _start(self, state_dir: Path | None) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        if settings.udp_port is not None:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(settings.host, settings.udp_port)
            )
            self._udp, self._udp_protocol = transport, protocol
            self.ports["udp"] = int(transport.get_extra_info("sockname")[1])
        if settings.tcp_port is not None:
            server = await asyncio.start_server(
                lambda r, w: self._accept("tcp", r, w), settings.host, settings.tcp_port
            )
            self._servers.append(server)
            self.ports["tcp"] = int(server.sockets[0].getsockname()[1])
        if settings.tls_port is not None:
            context = server_context(settings.tls_cert, settings.tls_key, state_dir, settings.advertised_host)
            server = await asyncio.start_server(
                lambda r, w: self._accept("tls", r, w), settings.host, settings.tls_port, ssl=context
            )
            self._servers.append(server)
            self.ports["tls"] = int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._udp is not None and self._udp_protocol is not None:
            self._udp.close()
            # The socket is released one loop turn later; close() returns once the port is free.
            await self._udp_protocol.lost
        for server in self._servers:
            server.close()
        for flow in list(self._flows.values()):
            flow.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    # -- sending ------------------------------------------------------------------------------------

    def send(self, data: bytes, dest: Source) -> bool:
        """Send one serialised message; False when the flow is gone (the transaction then fails)."""
        if dest.transport == "udp":
            if self._udp is None or self._udp.is_closing():
                return False
            self._udp.sendto(data, dest.address)
            return True
        flow = dest.flow if dest.flow is not None and not dest.flow.closed else None
        if flow is None:
            flow = self._flows.get((dest.transport, dest.host, dest.port))
        return flow.send(data) if flow is not None else False

    async def connect(self, transport: Transport, host: str, port: int) -> Source:
        """A Source to send requests to (dial-out); opens a TCP/TLS connection unless one is up."""
        if transport == "udp":
            return Source("udp", host, port)
        existing = self._flows.get((transport, host, port))
        if existing is not None and not existing.closed:
            return Source(transport, host, port, existing)
        context: ssl.SSLContext | None = None
        if transport == "tls":
            if self._client_context is None:
                # Terminals present certificates for IP addresses or self-signed ones (research brief §2).
                self._client_context = ssl.create_default_context()
                self._client_context.check_hostname = False
                self._client_context.verify_mode = ssl.CERT_NONE
            context = self._client_context
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        flow = self._register_flow(transport, reader, writer)
        return Source(transport, host, port, flow)

    # -- receiving ----------------------------------------------------------------------------------

    def received(self, data: bytes, source: Source) -> None:
        """One datagram or one framed stream message; never raises."""
        try:
            self._received(data, source)
        except Exception:
            # A bug above us must not kill the listener; one line, no traceback per packet.
            self.dropped += 1
            logger.error("sip: message from %s:%d not handled", source.host, source.port, exc_info=True)

    def _received(self, data: bytes, source: Source) -> None:
        limits = self._limits
        if not limits.admit(source.host):
            self.dropped += 1
            return
        if not data.strip(b"\r\n"):
            # RFC 5626 keep-alive: a double CRLF ping gets a single CRLF pong.
            if data.startswith(b"\r\n\r\n"):
                self.send(b"\r\n", source)
            return
        if len(data) >= 20 and data[0] < 2 and data[4:8] == STUN_COOKIE:
            # A STUN keep-alive (RFC 5626 over UDP): we do not offer outbound, so it is ignored quietly.
            return
        if len(data) > self._settings.max_message_bytes:
            self.dropped += 1
            logger.debug("sip: %d bytes from %s dropped (over the cap)", len(data), source.host)
            return
        try:
            message = parse(data)
        except SipParseError as error:
            self.dropped += 1
            self._log_unparsable(source.host, error, data)
            self._answer_bad(data, source, error)
            return
        agent = (message.headers.get("User-Agent") or "").lower()
        if agent and any(s in agent for s in SCANNERS):
            self.dropped += 1
            limits.block(source.host)
            return
        try:
            # Every layer above reads these: checked once here, so none of them meets a malformed one.
            NameAddr.parse(message.headers.get("From") or "")
            NameAddr.parse(message.headers.get("To") or "")
            Via.parse(message.vias[0])
            if isinstance(message, SipRequest):
                message = self._stamp_via(message, source)
        except SipParseError as error:
            self.dropped += 1
            self._answer_bad(data, source, error)
            return
        self._receiver(message, source)

    def _log_unparsable(self, host: str, error: SipParseError, data: bytes) -> None:
        """The first bad message of an address in a minute at INFO (a broken terminal), the rest at DEBUG."""
        now = self._clock.now().timestamp()
        if now - self._logged.get(host, -60.0) >= 60.0:
            if len(self._logged) > 1000:
                self._logged.clear()
            self._logged[host] = now
            logger.info("sip: unparsable message from %s: %s (%r)", host, error, data[:60])
        else:
            logger.debug("sip: unparsable message from %s: %s", host, error)

    def _stamp_via(self, request: SipRequest, source: Source) -> SipRequest:
        """RFC 3261 §18.2.1 received, RFC 3581 rport: answers find their way back through NAT."""
        vias = request.vias
        top = Via.parse(vias[0])
        if source.host in self._trusted:
            return request
        params = dict(top.params)
        if top.host != source.host:
            params["received"] = source.host
        if "rport" in params:
            params["rport"] = str(source.port)
        if params == top.params:
            return request
        stamped = str(Via(top.transport, top.host, top.port, params))
        items = list(request.headers.items)
        for i, (name, value) in enumerate(items):
            if name == "Via":
                rest = split_list(value)[1:]
                items[i] = ("Via", ", ".join([stamped, *rest]))
                break
        return SipRequest(
            method=request.method, uri=request.uri, headers=Headers(tuple(items)), body=request.body
        )

    def _answer_bad(self, data: bytes, source: Source, error: SipParseError) -> None:
        """400/505/513 only when the request is parsable enough to answer and came over a stream."""
        if source.flow is None:
            return
        try:
            head = parse(
                data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", max_header_bytes=len(data), head_only=True
            )
        except SipParseError:
            return
        if isinstance(head, SipRequest) and head.method != "ACK":
            self.send(response_to(head, error.status, str(error)[:60]).serialize(), source)

    # -- streams ------------------------------------------------------------------------------------

    def _register_flow(
        self, transport: Transport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Flow:
        peer = writer.get_extra_info("peername")
        host, port = str(peer[0]), int(peer[1])
        flow = Flow(transport, writer, (host, port))
        self._flows[(transport, host, port)] = flow
        task = asyncio.get_running_loop().create_task(self._read(flow, reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return flow

    async def _accept(
        self, transport: Transport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0])
        if self._closed or not self._limits.admit_connection(host):
            writer.close()
            return
        self._register_flow(transport, reader, writer)

    async def _read(self, flow: Flow, reader: asyncio.StreamReader) -> None:
        host, port = flow.peer
        source = Source(flow.transport, host, port, flow)
        cap = self._settings.max_message_bytes
        idle = self._settings.idle_connection_seconds
        try:
            while not flow.closed:
                head = await asyncio.wait_for(_read_head(reader, cap), timeout=idle)
                if head is None:
                    break
                if not head.strip(b"\r\n"):
                    self.received(head, source)
                    continue
                length = _content_length(head)
                if length is None or length > cap - len(head):
                    self.dropped += 1
                    self._refuse_stream(head, source, 513 if length is not None else 400)
                    break
                body = await asyncio.wait_for(reader.readexactly(length), timeout=idle)
                self.received(head + body, source)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        except _TooLarge as error:
            self.dropped += 1
            self._refuse_stream(error.head, source, 513)
        finally:
            flow.close()
            self._limits.release_connection(host)
            if self._flows.get((flow.transport, host, port)) is flow:
                del self._flows[(flow.transport, host, port)]

    def _refuse_stream(self, head: bytes, source: Source, status: int) -> None:
        try:
            request = parse(
                head if head.endswith(b"\r\n\r\n") else head + b"\r\n\r\n",
                max_header_bytes=len(head) + 4,
                head_only=True,
            )
        except SipParseError:
            return
        if isinstance(request, SipRequest) and request.method != "ACK":
            self.send(response_to(request, status).serialize(), source)


class _TooLarge(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__("message too large")
        self.head = head


async def _read_head(reader: asyncio.StreamReader, cap: int) -> bytes | None:
    """The next header block (or a bare CRLF keep-alive); None at end of stream."""
    buffer = bytearray()
    while True:
        line = await reader.readline()
        if not line:
            return None
        if not buffer and line in (b"\r\n", b"\n"):
            # Keep-alive: a CRLF pair on its own (RFC 5626 §4.4.1).
            peek = await reader.readline() if line == b"\r\n" else b""
            if peek in (b"\r\n", b"\n"):
                return b"\r\n\r\n"
            if not peek:
                continue
            line = peek
        buffer += line
        if len(buffer) > cap:
            raise _TooLarge(bytes(buffer[:4096]))
        if line in (b"\r\n", b"\n"):
            return bytes(buffer)


def _content_length(head: bytes) -> int | None:
    for raw in head.split(b"\n")[1:]:
        name, colon, value = raw.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True

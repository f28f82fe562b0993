"""SocketIOServer: python-socketio's AsyncServer with the holes a hostile client could use closed.

python-socketio 5 and python-engineio 4 trust their clients in two places that matter to a meeting:

* A client *event* named ``connect`` or ``disconnect`` reaches the handlers registered for the real
  connection and disconnection (``sio.on("connect")``): ``42["connect",{},{auth}]`` joined a second
  participant on the same sid, orphaning the first for good (a ghost holding a seat and keeping the meeting
  alive), and ``42["disconnect"]`` dropped the sender's participant while its socket stayed open.
* An Engine.IO frame that does not decode (one empty WebSocket text frame) escapes the WebSocket loop before
  the Engine.IO socket is closed, so Socket.IO reports no disconnect until the ping timeout.
* Each socket's outgoing queue is an unbounded ``asyncio.Queue`` (``AsyncSocket.queue``, filled by
  ``AsyncSocket.send``, drained by the WebSocket writer task, which blocks on aiohttp's drain while the client
  does not read): ``sio.emit`` returns at once, so a client that stops reading grows the server's memory.
  Here the queue counts its bytes (``unsent_bytes``; the participant's outbox disconnects past a limit) and
  ``abort`` cuts such a client off at the TCP level, since a DISCONNECT would only queue behind the rest.
* A Socket.IO packet that does not decode logs an ERROR with a traceback per frame; here it is counted
  (SignalingMetrics.malformed_packets) and logged once per client at WARNING.

Every reach into the two libraries' private methods lives in this module; tests/signaling/
test_socketio_server.py fails loudly if an upgrade moves one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

from signaling.metrics import SIGNALING_METRICS

logger = logging.getLogger(__name__)

# Names python-socketio dispatches to the connection's own handlers, never to an event's.
RESERVED_EVENTS = frozenset(socketio.AsyncServer.reserved_events)
# An event named "*" would reach the catch-all handler without its name (python-socketio calls a handler
# registered for the event's own name that way): it goes through the catch-all path below too.
_NOT_BY_NAME = RESERVED_EVENTS | {"*"}


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]  # python-socketio is untyped
    """Socket.IO packets of JSON only: every event of the meeting protocol is JSON (messages.py serialises
    them), so python-socketio's recursive search for bytes in each payload, once per recipient, is skipped
    (13 % of the server's CPU in the 200-join benchmark)."""

    uses_binary_events = False

    def decode(self, encoded_packet: str | bytes) -> int:
        try:
            count: int = super().decode(encoded_packet)
        except Exception as exc:  # ValueError, TypeError, json's errors: whatever a hostile frame provokes
            raise MalformedPacket(type(exc).__name__) from None
        return count


class MalformedPacket(ValueError):
    """A client's Socket.IO packet did not decode."""


# Socket.IO packet types a JSON-only client sends: CONNECT, DISCONNECT, EVENT, ACK (never CONNECT_ERROR,
# and never the binary ones, whose attachments python-socketio would hold for the next frames).
_CLIENT_PACKET_TYPES = frozenset("0123")


class _UnsentQueue(asyncio.Queue[Any]):
    """An Engine.IO socket's outgoing packets, counting their bytes; the WebSocket driver registers itself
    so the socket can be cut off. Packets the writer has taken and not yet written are not counted: the
    writer takes what is queued at once, so a client holds at most about twice the limit."""

    def __init__(self) -> None:
        super().__init__()
        self.unsent = 0
        self.websocket: _DecodableFrames | None = None

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        self.unsent += _size(item)

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        self.unsent -= _size(item)
        return item


def _size(pkt: engineio_packet.Packet | None) -> int:
    if pkt is None:
        return 0
    data = pkt.data
    if isinstance(data, str | bytes):
        return 1 + len(data)  # the type digit, then the Socket.IO packet
    return 1 if data is None else len(pkt.encode())


class _DecodableFrames(engineio_aiohttp.WebSocket):  # type: ignore[misc]  # python-engineio is untyped
    """python-engineio's aiohttp WebSocket that ends the connection on a frame Engine.IO cannot decode."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)  # the bound AsyncSocket._websocket_handler
        queue = getattr(socket, "queue", None)
        if isinstance(queue, _UnsentQueue):
            queue.websocket = self
        return await super().__call__(environ)

    def abort(self) -> None:
        environ: dict[str, Any] | None = getattr(self, "environ", None)
        transport = environ["aiohttp.request"].transport if environ is not None else None
        if transport is not None:
            # The writer task wakes from its drain with an error, the reader sees the close, and Engine.IO
            # reports the disconnect as for any lost connection.
            transport.abort()

    async def wait(self) -> str | bytes:
        data: str | bytes = await super().wait()
        if isinstance(data, str):
            try:
                engineio_packet.Packet(encoded_packet=data)
            except Exception:  # ValueError (empty, "x"), binascii.Error ("b!"): whatever the decoder raises
                # AsyncSocket._websocket_handler decodes each frame outside its try, so the error escapes the
                # handler before it closes the Engine.IO socket, and the disconnect is reported only when the
                # ping times out (~45 s, while the participant holds its seat). OSError is what this driver
                # raises for a closing WebSocket: the handler then closes the socket as for any lost
                # connection. Decoding twice costs a slice of the frame; Socket.IO frames skip json.loads.
                raise OSError("not an Engine.IO packet") from None
        return data


class _EngineIOServer(engineio.AsyncServer):  # type: ignore[misc]  # python-engineio is untyped
    _async: dict[str, Any]  # the async driver: create_route, translate_request, websocket, ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # _async is the driver module's own dict, shared by every server of the process: replace, not mutate.
        if self._async.get("websocket") is engineio_aiohttp.WebSocket:
            self._async = {**self._async, "websocket": _DecodableFrames}

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        # Only AsyncSocket calls this (its outgoing queue), on the server side.
        return _UnsentQueue()


class SocketIOServer(socketio.AsyncServer):  # type: ignore[misc]  # python-socketio is untyped
    """An AsyncServer whose client events never reach the connect and disconnect handlers.

    An event named like a reserved one (or with no name at all) goes to the catch-all handler
    (``on("*")``), which refuses it as an unknown event; a join is only ever the Socket.IO connect."""

    eio: _EngineIOServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned: set[str] = set()  # Engine.IO sids already logged for a malformed packet

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineIOServer

    def unsent_bytes(self, sid: str) -> int:
        """Bytes queued at Engine.IO for the client ``sid`` and not yet taken by its writer."""
        queue = self._queue_of(sid)
        return queue.unsent if queue is not None else 0

    async def abort(self, sid: str) -> None:
        """Drop the client's connection at once, without the DISCONNECT it would have to read first."""
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        socket = self.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if socket is None:
            return
        queue = socket.queue
        if isinstance(queue, _UnsentQueue) and queue.websocket is not None:
            queue.websocket.abort()
        else:  # long-polling: nothing to cut, forget the socket and what it holds
            await socket.close(wait=False, abort=True)

    def _queue_of(self, sid: str) -> _UnsentQueue | None:
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        socket = self.eio.sockets.get(eio_sid) if eio_sid is not None else None
        queue = getattr(socket, "queue", None)
        return queue if isinstance(queue, _UnsentQueue) else None

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        if not isinstance(data, str) or data[:1] not in _CLIENT_PACKET_TYPES:
            self._malformed(eio_sid, "not a JSON Socket.IO packet")
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MalformedPacket as exc:
            self._malformed(eio_sid, f"undecodable ({exc})")

    async def _handle_eio_disconnect(self, eio_sid: str, reason: object = None) -> None:
        self._warned.discard(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _malformed(self, eio_sid: str, what: str) -> None:
        SIGNALING_METRICS.malformed_packets += 1
        if eio_sid not in self._warned and eio_sid in self.eio.sockets:
            self._warned.add(eio_sid)
            logger.warning("client %s sent a malformed packet: %s; more are only counted", eio_sid, what)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: object) -> None:
        if isinstance(data, list) and data and isinstance(data[0], str) and data[0] not in _NOT_BY_NAME:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            return
        catch_all: Callable[..., Awaitable[object]] | None = self.handlers.get(namespace, {}).get("*")
        if catch_all is None:
            return
        if isinstance(data, list) and data:
            await catch_all(data[0] if isinstance(data[0], str) else "", sid, *data[1:])
        else:
            await catch_all("", sid)


def socketio_server(**options: object) -> SocketIOServer:
    """The Socket.IO server the meeting protocol runs on (one definition for the app, tests and benchmark)."""
    return SocketIOServer(
        async_mode="aiohttp", async_handlers=False, logger=False, serializer=JsonPacket, **options
    )

"""SocketIOServer: python-socketio's AsyncServer with the holes a hostile client could use closed.

python-socketio 5 and python-engineio 4 trust their clients in two places that matter to a meeting:

* A client *event* named ``connect`` or ``disconnect`` reaches the handlers registered for the real
  connection and disconnection (``sio.on("connect")``): ``42["connect",{},{auth}]`` joined a second
  participant on the same sid, orphaning the first for good (a ghost holding a seat and keeping the meeting
  alive), and ``42["disconnect"]`` dropped the sender's participant while its socket stayed open.
* An Engine.IO frame that does not decode (one empty WebSocket text frame) escapes the WebSocket loop before
  the Engine.IO socket is closed, so Socket.IO reports no disconnect until the ping timeout.

Every reach into the two libraries' private methods lives in this module; tests/signaling/
test_socketio_server.py fails loudly if an upgrade moves one of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

# Names python-socketio dispatches to the connection's own handlers, never to an event's.
RESERVED_EVENTS = frozenset(socketio.AsyncServer.reserved_events)


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]  # python-socketio is untyped
    """Socket.IO packets of JSON only: every event of the meeting protocol is JSON (messages.py serialises
    them), so python-socketio's recursive search for bytes in each payload, once per recipient, is skipped
    (13 % of the server's CPU in the 200-join benchmark)."""

    uses_binary_events = False


class _DecodableFrames(engineio_aiohttp.WebSocket):  # type: ignore[misc]  # python-engineio is untyped
    """python-engineio's aiohttp WebSocket that ends the connection on a frame Engine.IO cannot decode."""

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


class SocketIOServer(socketio.AsyncServer):  # type: ignore[misc]  # python-socketio is untyped
    """An AsyncServer whose client events never reach the connect and disconnect handlers.

    An event named like a reserved one (or with no name at all) goes to the catch-all handler
    (``on("*")``), which refuses it as an unknown event; a join is only ever the Socket.IO connect."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineIOServer

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: object) -> None:
        if isinstance(data, list) and data and isinstance(data[0], str) and data[0] not in RESERVED_EVENTS:
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

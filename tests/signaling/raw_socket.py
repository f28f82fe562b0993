"""A hand-rolled Socket.IO client over one raw WebSocket: it sends whatever frames a test writes, as a
hostile client would, and reads the server's Engine.IO/Socket.IO packets back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.signaling.signaling_fakes import WAIT


class RawSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[tuple[str, Any]] = []  # every Socket.IO event received, in order

    async def send(self, frame: str) -> None:
        await self.ws.send_str(frame)

    async def packet(self) -> str | None:
        """The next Socket.IO packet (the text after Engine.IO's "4"), or None once the socket closed.

        Engine.IO pings are answered on the way."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    return None
                frame: str = message.data
                if frame == "2":
                    await self.ws.send_str("3")
                elif frame.startswith("4"):
                    return frame[1:]

    async def connect(self, auth: dict[str, Any]) -> Any:
        """Send the Socket.IO CONNECT with ``auth``; returns the CONNECT's data, raises on CONNECT_ERROR."""
        await self.send("40" + json.dumps(auth))
        while True:
            packet = await self.packet()
            assert packet is not None, "closed while connecting"
            if packet.startswith("0"):
                return json.loads(packet[1:])
            if packet.startswith("4"):
                raise ConnectionRefusedError(json.loads(packet[1:]))
            self._record(packet)

    async def emit(self, *args: Any) -> None:
        await self.send("42" + json.dumps(list(args)))

    async def expect(self, event: str) -> Any:
        while True:
            packet = await self.packet()
            assert packet is not None, f"closed while waiting for {event}"
            name, data = self._record(packet)
            if name == event:
                return data

    async def closed(self) -> None:
        """Wait until the server disconnects this client or closes the socket (events before are recorded)."""
        while (packet := await self.packet()) is not None and not packet.startswith("1"):
            self._record(packet)

    def _record(self, packet: str) -> tuple[str, Any]:
        if not packet.startswith("2"):
            return "", None
        name, *data = json.loads(packet[1:])
        self.events.append((name, data[0] if data else None))
        return name, data[0] if data else None


@asynccontextmanager
async def raw_socket(url: str, *, source: str | None = None) -> AsyncIterator[RawSocket]:
    """A connection to the server at ``url``, from the local address ``source`` (any of 127.0.0.0/8 on
    Linux) so that a test can play several client addresses."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0)) if source else None
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket") as ws,
    ):
        opening = await ws.receive(timeout=WAIT)  # Engine.IO OPEN: 0{"sid": ..., "pingInterval": ...}
        assert opening.type is aiohttp.WSMsgType.TEXT and opening.data.startswith("0"), opening
        yield RawSocket(ws)

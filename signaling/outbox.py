"""Outbox: one client's messages on their way out, sent by a task of their own so no sender ever waits.

A client is too slow when messages pile up in the outbox or, since python-engineio's per-socket queue is
unbounded (``sio.emit`` returns once engine.io queued the packet), when the bytes engine.io holds for it
pass a limit: the transport reports those (SocketIOServer.unsent_bytes).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from signaling.messages import JSON, ServerMessage, to_wire

DRAIN_TIMEOUT = 2.0  # the last messages to a leaving client get this long to go out


class Transport(Protocol):
    """The Socket.IO server as a participant sees it."""

    async def emit(self, event: str, data: dict[str, JSON], sid: str) -> None: ...
    async def disconnect(self, sid: str) -> None: ...

    def unsent_bytes(self, sid: str) -> int:
        """Bytes queued for the client that have not been written to its connection yet."""
        ...

    async def abort(self, sid: str) -> None:
        """Drop the connection without a goodbye (it would queue behind what the client never read)."""
        ...


@dataclass(frozen=True, slots=True)
class _Emit:
    sid: str
    event: str
    data: dict[str, JSON]


@dataclass(frozen=True, slots=True)
class _Hangup:
    sid: str


class Outbox:
    def __init__(
        self,
        transport: Transport,
        *,
        limit: int,
        unsent_bytes_limit: int,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._transport = transport
        self._limit = limit
        self._unsent_bytes_limit = unsent_bytes_limit
        self._log = log
        self._queue: asyncio.Queue[_Emit | _Hangup | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=name)

    def put(self, sid: str, message: ServerMessage) -> bool:
        """Queue ``message``; False (and nothing queued) when the client is too slow to take more."""
        if self._queue.qsize() >= self._limit:
            return False
        if self._transport.unsent_bytes(sid) > self._unsent_bytes_limit:
            return False
        event, data = to_wire(message)
        self._queue.put_nowait(_Emit(sid, event, data))
        return True

    def clear(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def hang_up(self, sid: str | None) -> None:
        """No more messages: after the queued ones, disconnect ``sid`` (if any) and stop."""
        if sid is not None:
            self._queue.put_nowait(_Hangup(sid))
        self._queue.put_nowait(None)

    async def finish(self, sid: str | None, *, slow: bool) -> None:
        """Wait for hang_up's work; a slow client's connection is dropped at once instead."""
        sender = self._sender
        if sender is None:
            return
        if not slow:
            done, _ = await asyncio.wait({sender}, timeout=DRAIN_TIMEOUT)
            if done:
                return
        # A client that stopped reading is not waited for: drop what it has not taken and hang up.
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        if sid is None:
            return
        try:
            if slow:
                await self._transport.abort(sid)
            else:
                await self._transport.disconnect(sid)
        except Exception:
            self._log.exception("disconnecting the client failed")

    async def _send_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, _Emit):
                    await self._transport.emit(item.event, item.data, item.sid)
                else:
                    await self._transport.disconnect(item.sid)
            except Exception:
                self._log.exception("sending to the client failed")

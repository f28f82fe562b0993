"""The adapters that plug SmppSender into aiosmpplib's ESME (pinned at 0.7.4): its send queue, hook,
throttle handler and retry timer, and a subclass that fixes two of its defects.

The library calls these from its own tasks; everything that decides what is sent stays in notify/smpp.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiosmpplib import ESME, SubmitSm
from aiosmpplib.broker import AbstractBroker
from aiosmpplib.hook import AbstractHook
from aiosmpplib.retrytimer import AbstractRetryTimer
from aiosmpplib.throttle import AbstractThrottleHandler

logger = logging.getLogger("notify.smpp")

FIRST_RECONNECT = 0.5
MAX_RECONNECT = 30.0


class NotSent(Exception):
    """The part never left this process (still queued when the session ended): safe to submit again."""


class Lost(Exception):
    """The part was handed to the session and no response came: it may have reached the SMSC."""


@dataclass
class Pending:
    future: asyncio.Future[tuple[int, str]]
    dequeued: bool = False


def header_of(pdu: bytes) -> tuple[int, int, int]:
    _length, command_id, status, sequence = struct.unpack_from("!IIII", pdu)
    return command_id, status, sequence


def message_id_of(pdu: bytes) -> str:
    end = pdu.find(b"\x00", 16)
    return pdu[16 : end if end >= 0 else len(pdu)].decode("latin-1")


class SessionBroker(AbstractBroker):  # type: ignore[misc]
    """The library's send queue; a part whose submit gave up before it was dequeued is skipped."""

    def __init__(self, pending: dict[str, Pending]) -> None:
        self._pending = pending
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def enqueue(self, message: Any) -> None:
        self.queue.put_nowait(message)

    async def dequeue(self) -> Any:
        while True:
            message = await self.queue.get()
            pending = self._pending.get(message.log_id)
            if pending is not None and not pending.future.done():
                pending.dequeued = True
                return message

    def drain(self) -> list[Any]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


class SessionHook(AbstractHook):  # type: ignore[misc]
    """Tells the sender which sequence number each part went out with, and hands it every PDU received."""

    def __init__(
        self, written: Callable[[int, str], None], received: Callable[[bytes], Awaitable[None]]
    ) -> None:
        self._written = written
        self._received = received

    async def sending(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            self._written(smpp_message.sequence_num, smpp_message.log_id)

    async def received(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
        await self._received(pdu)

    async def send_error(self, smpp_message: Any, error: Exception, client_id: str) -> None:
        logger.warning("SMPP submit could not be written: %r", error)


class NoThrottle(AbstractThrottleHandler):  # type: ignore[misc]
    """Throttling is handled per part by SmppSender; the library's own handler would sleep blindly."""

    async def throttled(self) -> None:
        return None

    async def not_throttled(self) -> None:
        return None

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


class Reconnect(AbstractRetryTimer):  # type: ignore[misc]
    """Called by the library after every session ends: tell the sender, then wait before reconnecting."""

    def __init__(self, ended: Callable[[], None]) -> None:
        self._ended = ended
        self._delay = 0.0

    async def wait(self) -> None:
        self._ended()
        if self._delay:
            await asyncio.sleep(self._delay)
        self._delay = min(MAX_RECONNECT, max(FIRST_RECONNECT, self._delay * 2))

    def reset(self) -> None:
        self._delay = 0.0

    def next_delay(self) -> float:
        return self._delay


class Esme(ESME):  # type: ignore[misc]
    # The library drops its StreamWriter without closing it (after an unbind, and when it reconnects after a
    # lost connection), which leaks the socket until garbage collection: close the old one each time.
    async def connect(self) -> None:
        await self._close_writer()
        await super().connect()

    async def _disconnect(self) -> None:
        writer = self._writer
        await super()._disconnect()
        await self._close_writer(writer)

    async def _close_writer(self, writer: Any = None) -> None:
        writer = writer if writer is not None else self._writer
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _handle_request(self, pdu: bytes, header: Any) -> Any:
        # Defect (d): DeliverSm.parse_receipt raises ValueError on a 12-digit "done date", which would end
        # the session (and the SMSC would redeliver the receipt forever). Acknowledge it; we parse raw PDUs.
        try:
            return await super()._handle_request(pdu, header)
        except ValueError:
            logger.info("a deliver_sm the client library cannot parse; acknowledged and read raw")
            return header


class LogForward(logging.Handler):
    """aiosmpplib attaches its own StreamHandler unless given one: route its records to our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.log(record.levelno, "aiosmpplib: %s", record.getMessage())

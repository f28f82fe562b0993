"""A real SMSC for the SMS tests: smpp34's SMPP 3.4 server on 127.0.0.1, with a scripted answer per submit.

It records every submit_sm as it arrived (time, UDH, text), answers with a message id or an error status
chosen by `policy`, pushes delivery receipts (Appendix B text plus the receipted_message_id and message_state
TLVs) and MO messages through the bound session, and lets a test wait for a condition without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import smpp34

from notify.sms import ParsedPart, parse_short_message

STATES = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}


@dataclass(frozen=True)
class Submitted:
    at: float  # time.monotonic() at arrival
    session_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    part: ParsedPart
    status: int  # 0: accepted
    message_id: str | None


# policy(submit, index) -> None to accept, or an ESME_* status to refuse
Policy = Callable[[smpp34.SubmitSmEvent, int], int | None]


def within_tps(arrivals: list[float], tps: int) -> bool:
    """The SMSC saw at most `tps` submits a second: over the whole run (with 0.3 s of slack for a stalled
    event loop that recorded early arrivals late), and in any one-second window with 3 of slack (a bucket
    that banked a second of tokens would let 2 × TPS through one)."""
    span = max(arrivals) - min(arrivals)
    busiest = max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals)
    return span >= (len(arrivals) - 1) / tps - 0.3 and busiest <= tps + 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestSmsc:
    __test__ = False  # not a pytest class

    def __init__(
        self, *, policy: Policy | None = None, receipts: str | None = None, hold: bool = False
    ) -> None:
        self.policy = policy
        # Leave every submit unanswered (kept referenced, so smpp34 does not NAK it): a lost response.
        self.hold = hold
        self.held: list[smpp34.SubmitSmEvent] = []
        # Push a receipt with this stat (DELIVRD, UNDELIV …) for every accepted part, or none.
        self.receipts = receipts
        self.submits: list[Submitted] = []
        self.binds = 0
        self.sessions: dict[str, smpp34.Esme] = {}
        self.port = 0
        self._server: smpp34.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._pushes: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    @property
    def accepted(self) -> list[Submitted]:
        return [s for s in self.submits if s.status == 0]

    async def start(self) -> int:
        if self._server is not None:
            return self.port
        for _ in range(5):
            port = _free_port()
            server = smpp34.Server("127.0.0.1", port, system_id="TESTSMSC")
            try:
                await server.start()
            except Exception:  # the port was taken between the probe and the bind: try another
                continue
            self._server, self.port = server, port
            self._task = asyncio.create_task(self._serve(), name="test-smsc")
            return port
        raise RuntimeError("no free port for the test SMSC")

    async def stop(self) -> None:
        for task in [*self._pushes, *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def wait_for(self, condition: Callable[[], bool], within: float = 30.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(condition)

    async def drain(self) -> None:
        """Return once every pushed receipt was answered (the ESME acknowledges after recording it)."""
        while self._pushes:
            await asyncio.gather(*self._pushes, return_exceptions=True)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _serve(self) -> None:
        assert self._server is not None
        while True:
            try:
                event = await self._server.next()
            except smpp34.SmppError:  # stopped
                return
            if isinstance(event, smpp34.Esme):
                self.binds += 1
                self.sessions[event.session_id] = event
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                if self.hold:
                    self.held.append(event)
                else:
                    self._answer(event)
            await self._notify()

    async def release(self) -> None:
        """Answer every held submit now, in arrival order."""
        held, self.held = self.held, []
        for event in held:
            self._answer(event)
        await self._notify()

    def _answer(self, event: smpp34.SubmitSmEvent) -> None:
        status = self.policy(event, len(self.submits)) if self.policy else None
        message_id = None if status else f"{next(self._ids):08x}"
        if message_id is None:
            event.reject(status or smpp34.ESME_RSYSERR)
        else:
            event.accept(message_id)
        part = parse_short_message(
            event.short_message, data_coding=event.data_coding, udhi=bool(event.esm_class & 0x40)
        )
        self.submits.append(
            Submitted(
                time.monotonic(),
                event.session_id,
                event.source_addr,
                event.destination_addr,
                event.data_coding,
                event.esm_class,
                event.registered_delivery,
                event.short_message,
                part,
                status or 0,
                message_id,
            )
        )
        if message_id is not None and self.receipts:
            self.push(self.receipt(event.session_id, message_id, event.destination_addr, self.receipts))

    def push(self, coro: asyncio.Future[object] | object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def receipt(
        self,
        session_id: str,
        message_id: str,
        handset: str,
        stat: str,
        *,
        err: str = "000",
        tlvs: bool = True,
        done: str = "2612031015",
    ) -> None:
        """Push an Appendix B receipt (plus TLVs unless `tlvs` is False) for one accepted part."""
        text = (
            f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:2612031014 "
            f"done date:{done} stat:{stat} err:{err} text:"
        )
        extra = []
        if tlvs:
            extra = [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([STATES.get(stat, 7)])),
            ]
        await self.sessions[session_id].deliver_sm(
            "10690000", text.encode(), source_addr=handset, esm_class=0x04, tlvs=extra
        )
        await self._notify()

    async def mo(self, handset: str, text: str, *, to: str = "10690000") -> None:
        """A handset's reply (MO) on the first bound session (once the server has seen the bind)."""
        await self.wait_for(lambda: bool(self.sessions))
        session = next(iter(self.sessions.values()))
        ucs2 = not text.isascii()
        await session.deliver_sm(
            to,
            text.encode("utf-16-be") if ucs2 else text.encode("ascii"),
            source_addr=handset,
            source_addr_ton=1,
            data_coding=8 if ucs2 else 0,
        )


class Relay:
    """A TCP relay in front of the SMSC whose connections a test can cut (a dropped SMPP session)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()

    async def cut(self, *, refuse: bool = True) -> None:
        """Abort every relayed connection; with `refuse`, new ones are dropped at once too."""
        self.refusing = refuse
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        await self.cut()
        for task in list(self._pipes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

"""SmppSender: the SMS channel over one SMPP 3.4 transceiver bind, on aiosmpplib 0.7.4 (pinned exactly).

aiosmpplib keeps the session: bind, enquire_link, reconnects, sequence numbers, and acknowledging deliver_sm.
Everything that decides what is sent and billed is ours, because of the library's defects (research/
notifications.md §4): its GSM-7 split counts characters, not septets (a) and its SAR mode sends nothing (b),
and its default moves long text into message_payload (c). So each message is segmented by notify/sms.py and
every part goes as one submit_sm carrying our UDH, pre-encoded (set_encoded_message with
auto_message_payload, which skips the library's splitting). Besides (d): its receipt parser raises on the
common 12-digit dates and that ends the session; _Esme catches it, and receipts are read from the raw PDU by
notify/receipts.py.

Exactly once: a part that may have reached the SMSC (written, then no response) makes the message
Ambiguous; the channel never resends it (resend_when_ambiguous is False), the outbox marks it unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import struct
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmpplib import ESME, NPI, TON, BindMode, PhoneNumber, SubmitSm
from aiosmpplib.broker import AbstractBroker
from aiosmpplib.hook import AbstractHook
from aiosmpplib.retrytimer import AbstractRetryTimer
from aiosmpplib.throttle import AbstractThrottleHandler

from notify.channel import (
    Accepted,
    Ambiguous,
    ChannelError,
    EventSink,
    Inbound,
    Message,
    Receipt,
    Rejected,
    RetryLater,
)
from notify.receipts import MalformedPdu, MoMessage, ReceiptState, classify
from notify.smpp_rate import TokenBucket
from notify.smpp_settings import SmppSettings
from notify.sms import Pdu, SmsTooLong, pdus, segment
from notify.sms_templates import render_message

logger = logging.getLogger(__name__)

SUBMIT_SM_RESP = 0x80000004
GENERIC_NACK = 0x80000000
DELIVER_SM = 0x00000005
BIND_TRANSCEIVER_RESP = 0x80000009
ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
THROTTLED = frozenset({ESME_RMSGQFUL, ESME_RTHROTTLED})
# Never taken, whatever we retry: bad numbers, bad length, a barred destination.
PERMANENT = frozenset({0x01, 0x0A, 0x0B, 0x0C, 0x33, 0x42, 0x43, 0x44, 0x45, 0x48, 0x49, 0x50, 0x51})
STATUS_NAMES = {0x01: "ESME_RINVMSGLEN", 0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR"}
STATUS_NAMES |= {0x0B: "ESME_RINVDSTADR", 0x14: "ESME_RMSGQFUL", 0x45: "ESME_RSUBMITFAIL"}
STATUS_NAMES |= {0x58: "ESME_RTHROTTLED", 0x64: "ESME_RX_T_APPN", 0xFF: "ESME_RUNKNOWNERR"}
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
FIRST_RECONNECT = 0.5
# An account's own template text for a message, or None for the shipped one.
TextSource = Callable[[Message], Awaitable[str | None]]
# Records an MO opt-out from a number (E.164) with the words it sent.
OptOut = Callable[[str, str], Awaitable[None]]
ReceiptStatus = Literal["delivered", "failed", "unknown"]
MAX_RECONNECT = 30.0


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


class PartlyAccepted(Ambiguous):
    """Some parts were taken and a later one was refused: never resent (the handset has the first parts).
    `provider_ids` are the taken parts, for reconciliation."""

    def __init__(self, message: str, *, provider_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.provider_ids = provider_ids


class _NotSent(Exception):
    """The part never left this process (still queued when the session ended): safe to submit again."""


class _Lost(Exception):
    """The part was handed to the session and no response came: it may have reached the SMSC."""


@dataclass
class _Pending:
    future: asyncio.Future[tuple[int, str]]
    dequeued: bool = False


def _header(pdu: bytes) -> tuple[int, int, int]:
    _length, command_id, status, sequence = struct.unpack_from("!IIII", pdu)
    return command_id, status, sequence


def _message_id(pdu: bytes) -> str:
    end = pdu.find(b"\x00", 16)
    return pdu[16 : end if end >= 0 else len(pdu)].decode("latin-1")


class _Broker(AbstractBroker):  # type: ignore[misc]
    """The library's send queue; a part whose submit gave up before it was dequeued is skipped."""

    def __init__(self, pending: dict[str, _Pending]) -> None:
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


class _Hook(AbstractHook):  # type: ignore[misc]
    def __init__(self, sender: SmppSender) -> None:
        self._sender = sender

    async def sending(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            self._sender._written(smpp_message.sequence_num, smpp_message.log_id)

    async def received(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
        await self._sender._received(pdu)

    async def send_error(self, smpp_message: Any, error: Exception, client_id: str) -> None:
        logger.warning("SMPP submit could not be written: %r", error)


class _Throttle(AbstractThrottleHandler):  # type: ignore[misc]
    """Throttling is handled per part by SmppSender; the library's own handler would sleep blindly."""

    async def throttled(self) -> None:
        return None

    async def not_throttled(self) -> None:
        return None

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


class _Reconnect(AbstractRetryTimer):  # type: ignore[misc]
    """Called by the library after every session ends: tell the sender, then wait before reconnecting."""

    def __init__(self, sender: SmppSender) -> None:
        self._sender = sender
        self._delay = 0.0

    async def wait(self) -> None:
        self._sender._session_ended()
        if self._delay:
            await asyncio.sleep(self._delay)
        self._delay = min(MAX_RECONNECT, max(FIRST_RECONNECT, self._delay * 2))

    def reset(self) -> None:
        self._delay = 0.0

    def next_delay(self) -> float:
        return self._delay


class _Esme(ESME):  # type: ignore[misc]
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


class _LogForward(logging.Handler):
    """aiosmpplib attaches its own StreamHandler unless given one: route its records to our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.log(record.levelno, "aiosmpplib: %s", record.getMessage())


@dataclass
class SmppStats:
    """Counters for /metrics (yunhui/sms_metrics.py reads them)."""

    submitted: int = 0
    accepted: int = 0
    throttled: int = 0
    rejected: int = 0
    lost: int = 0
    receipts: dict[str, int] = field(default_factory=dict)
    mo: int = 0
    opt_outs: int = 0


class SmppSender:
    """The `sms` channel (notify.channel.Channel): one transceiver bind, owned by the dispatcher."""

    name = "sms"
    resend_when_ambiguous = False

    def __init__(
        self,
        settings: SmppSettings,
        *,
        texts: TextSource | None = None,
        opt_out: OptOut | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        client_id: str = "yunhui",
    ) -> None:
        self.settings = settings
        self._texts = texts
        self._opt_out = opt_out
        self.stats = SmppStats()
        self.bucket = TokenBucket(settings.tps, now=monotonic)
        self._pending: dict[str, _Pending] = {}
        self._by_sequence: dict[int, str] = {}
        self._broker = _Broker(self._pending)
        self._window = asyncio.Semaphore(settings.window)
        self._bound = asyncio.Event()
        self._events: EventSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._keys = itertools.count(1)
        self._references = itertools.cycle(range(256))
        self._esme = _Esme(
            smsc_host=settings.host,
            smsc_port=settings.port,
            system_id=settings.system_id,
            password=settings.password.get_secret_value(),
            system_type=settings.system_type,
            bind_mode=BindMode.TRANSCEIVER,
            client_id=client_id,
            enquire_link_interval=float(settings.enquire_link_seconds),
            log_handler=_LogForward(),
            log_include_timestamp=False,
            hook=_Hook(self),
            broker=self._broker,
            throttle_handler=_Throttle(),
            retry_timer=_Reconnect(self),
            socket_timeout=float(settings.response_timeout_seconds),
        )

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    async def start(self, events: EventSink) -> None:
        if self._task is None and not self._closed:
            self._events = events
            self._task = asyncio.create_task(self._esme.start(), name="smpp:session")

    async def wait_bound(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._bound.wait()
        return self._bound.is_set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError, OSError, ConnectionError):
                async with asyncio.timeout(5):
                    await self._esme.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._bound.clear()
        self._fail_all()

    # -- sending ------------------------------------------------------------------------------------------

    async def text_of(self, message: Message) -> str:
        """The signed text of a message: its rendered `text`, an account's template (through `texts`, given
        by the composition root), or the shipped template of its key."""
        body = await self._texts(message) if self._texts is not None else None
        if body is None:
            body = render_message(message.template_key, message.locale, message.variables)
        return f"{self.settings.signature_for(message.locale)}{body}"

    async def submit(self, message: Message) -> Accepted:
        if not E164.match(message.recipient):
            raise Rejected(f"{message.recipient!r} is not an E.164 number (+8613800138000)")
        try:
            parts = pdus(segment(await self.text_of(message)), next(self._references))
        except (SmsTooLong, KeyError, ValueError) as exc:
            raise Rejected(f"the message cannot be sent as SMS: {exc!r}") from None
        except Exception as exc:
            # Nothing was sent yet (an account template could not be read): safe to try again.
            logger.exception("the text of SMS %d could not be built", message.id)
            raise RetryLater(f"the text could not be built: {exc!r}") from None
        if self._closed or self._task is None:
            raise RetryLater("the SMS channel is not running")
        ids: list[str] = []
        for part in parts:
            try:
                ids.append(await self._submit_part(message, part))
            except ChannelError as exc:
                if not ids:
                    raise
                raise PartlyAccepted(
                    f"part {part.seq}/{part.total} not taken after {len(ids)} part(s) were: {exc.message}",
                    provider_ids=tuple(ids),
                ) from None
        return Accepted(tuple(ids))

    async def _submit_part(self, message: Message, part: Pdu) -> str:
        give_up = time.monotonic() + self.settings.throttle_give_up_seconds
        while True:
            if not await self.wait_bound(self.settings.bind_wait_seconds):
                raise RetryLater("the SMSC is not bound", retry_after=self.settings.bind_wait_seconds)
            await self.bucket.take()
            async with self._window:
                try:
                    status, provider_id = await self._exchange(message, part)
                except _NotSent:
                    # Never left the process: the next session sends it, unless that takes too long.
                    if time.monotonic() > give_up:
                        raise RetryLater("the SMPP session did not send the part in time") from None
                    continue
                except _Lost as exc:
                    self.stats.lost += 1
                    raise Ambiguous(str(exc)) from None
            if status == ESME_ROK:
                self.bucket.accepted()
                self.stats.accepted += 1
                return provider_id
            if status in THROTTLED:
                self.stats.throttled += 1
                pause = self.bucket.throttled()
                logger.info(
                    "SMSC answered %s; %.2f s pause, %.1f TPS", status_name(status), pause, self.bucket.rate
                )
                if time.monotonic() + pause > give_up:
                    raise RetryLater(f"the SMSC keeps answering {status_name(status)}", retry_after=60.0)
                continue
            self.stats.rejected += 1
            if status in PERMANENT:
                raise Rejected(f"the SMSC refused the message: {status_name(status)}")
            raise RetryLater(f"the SMSC answered {status_name(status)}")

    async def _exchange(self, message: Message, part: Pdu) -> tuple[int, str]:
        key = f"{message.id}.{part.seq}.{next(self._keys)}"
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[key] = pending
        settings = self.settings
        submit = SubmitSm(
            short_message=part.text,
            source=PhoneNumber(settings.source_addr, TON(settings.source_ton), NPI(settings.source_npi)),
            destination=PhoneNumber(message.recipient.removeprefix("+"), TON.INTERNATIONAL, NPI.ISDN),
            esm_class=0x40 if part.udhi else 0x00,
            registered_delivery=1,
            encoding="ucs2" if part.data_coding == 8 else "gsm0338",
            auto_message_payload=True,
            log_id=key,
            extra_data=str(message.id),
        )
        submit.set_encoded_message(part.short_message)
        self.stats.submitted += 1
        await self._broker.enqueue(submit)
        try:
            async with asyncio.timeout(settings.response_timeout_seconds):
                return await pending.future
        except TimeoutError:
            if not pending.dequeued:
                raise _NotSent() from None
            raise _Lost(f"no submit_sm_resp within {settings.response_timeout_seconds:.0f} s") from None
        finally:
            self._pending.pop(key, None)

    # -- what the session reports ---------------------------------------------------------------------------

    def _written(self, sequence: int, key: str) -> None:
        self._by_sequence[sequence] = key

    def _session_ended(self) -> None:
        was_bound = self._bound.is_set()
        self._bound.clear()
        if was_bound:
            logger.warning("SMPP session to %s:%d ended", self.settings.host, self.settings.port)
        self._fail_all()

    def _fail_all(self) -> None:
        # Parts still queued never left: their submits go again on the next session. Dequeued parts may have
        # been written: ambiguous.
        for queued in self._broker.drain():
            pending = self._pending.get(queued.log_id)
            if pending is not None and not pending.future.done():
                pending.future.set_exception(_NotSent())
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(_Lost("the SMPP session ended before the SMSC answered"))
        self._by_sequence.clear()

    async def _received(self, pdu: bytes) -> None:
        if len(pdu) < 16:
            return
        command_id, status, sequence = _header(pdu)
        if command_id == BIND_TRANSCEIVER_RESP and status == ESME_ROK:
            logger.info(
                "SMPP bound to %s:%d as %s", self.settings.host, self.settings.port, self.settings.system_id
            )
            self._bound.set()
        elif command_id in (SUBMIT_SM_RESP, GENERIC_NACK):
            key = self._by_sequence.pop(sequence, None)
            pending = self._pending.get(key) if key is not None else None
            if pending is not None and not pending.future.done():
                pending.future.set_result((status, _message_id(pdu) if command_id == SUBMIT_SM_RESP else ""))
        elif command_id == DELIVER_SM:
            await self._deliver(pdu)

    async def _deliver(self, pdu: bytes) -> None:
        try:
            event = classify(pdu, default_country_code=self.settings.default_country_code)
        except MalformedPdu as exc:
            logger.warning("unreadable deliver_sm acknowledged: %s", exc)
            return
        if event is None:
            return
        out: Receipt | Inbound
        if isinstance(event, MoMessage):
            self.stats.mo += 1
            if event.is_opt_out and self._opt_out is not None:
                try:
                    await self._opt_out(event.sender, event.text)
                    self.stats.opt_outs += 1
                except Exception:
                    logger.exception("recording the opt-out of %s failed", event.sender)
            out = Inbound("sms", event.sender, event.text)
        else:
            self.stats.receipts[event.state.value] = self.stats.receipts.get(event.state.value, 0) + 1
            if event.state is ReceiptState.ENROUTE:
                return
            status: ReceiptStatus = "delivered" if event.state is ReceiptState.DELIVERED else "unknown"
            if event.state is ReceiptState.FAILED:
                status = "failed"
            out = Receipt("sms", event.message_id, status, event.error, event.done_at)
        if self._events is None:
            return
        # Awaited before the library acknowledges the deliver_sm: a crash before the write means the SMSC
        # delivers it again. A failing sink must not end the session, so it is logged here.
        try:
            await self._events(out)
        except Exception:
            logger.exception("the SMS event sink failed for %r", out)


def describe(settings: SmppSettings) -> Mapping[str, object]:
    """The bind as the health page shows it (no password)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "system_id": settings.system_id,
        "tps": settings.tps,
    }

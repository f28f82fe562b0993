"""SmppSender: the SMS channel over one SMPP 3.4 transceiver bind, on aiosmpplib 0.7.4 (pinned exactly).

aiosmpplib keeps the session: bind, enquire_link, reconnects, sequence numbers, and acknowledging deliver_sm.
Everything that decides what is sent and billed is ours, because of the library's defects (research/
notifications.md §4): its GSM-7 split counts characters, not septets (a) and its SAR mode sends nothing (b),
and its default moves long text into message_payload (c). So each message is segmented by notify/sms.py and
every part goes as one submit_sm carrying our UDH, pre-encoded (set_encoded_message with
auto_message_payload, which skips the library's splitting). Besides (d): its receipt parser raises on the
common 12-digit dates and that ends the session; notify/smpp_session.py catches it, and receipts are read
from the raw PDU by notify/receipts.py.

Exactly once: a part that may have reached the SMSC (written, then no response) makes the message
Ambiguous; the channel never resends it (resend_when_ambiguous is False), the outbox marks it unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiosmpplib import NPI, TON, BindMode, PhoneNumber, SubmitSm
from aiosmpplib.correlator import SimpleCorrelator

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
from notify.smpp_session import (
    Esme,
    LogForward,
    Lost,
    NoThrottle,
    NotSent,
    Pending,
    Reconnect,
    SessionBroker,
    SessionHook,
    header_of,
    message_id_of,
)
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
# How long submits answer "retry later" at once after one gave up on a throttling SMSC (seconds).
THROTTLE_REST = 60.0
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# An account's own template text for a message, or None for the shipped one.
TextSource = Callable[[Message], Awaitable[str | None]]
# Records an MO opt-out from a number (E.164) with the words it sent.
OptOut = Callable[[str, str], Awaitable[None]]
ReceiptStatus = Literal["delivered", "failed", "unknown"]


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


class PartlyAccepted(Ambiguous):
    """Some parts were taken and a later one was refused: never resent (the handset has the first parts).
    `provider_ids` are the taken parts, for reconciliation."""

    def __init__(self, message: str, *, provider_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.provider_ids = provider_ids


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
        self._pending: dict[str, Pending] = {}
        self._by_sequence: dict[int, str] = {}
        self._broker = SessionBroker(self._pending)
        self._window = asyncio.Semaphore(settings.window)
        self._bound = asyncio.Event()
        self._events: EventSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._unavailable_until = 0.0
        self._unavailable_reason = ""
        self._keys = itertools.count(1)
        self._references = itertools.cycle(range(256))
        self._esme = Esme(
            smsc_host=settings.host,
            smsc_port=settings.port,
            system_id=settings.system_id,
            password=settings.password.get_secret_value(),
            system_type=settings.system_type,
            bind_mode=BindMode.TRANSCEIVER,
            client_id=client_id,
            enquire_link_interval=float(settings.enquire_link_seconds),
            log_handler=LogForward(),
            log_include_timestamp=False,
            hook=SessionHook(self._written, self._received),
            broker=self._broker,
            throttle_handler=NoThrottle(),
            retry_timer=Reconnect(self._session_ended),
            # Receipts are matched in the database (by notify/receipts.py's parse of the raw PDU): keep the
            # library's in-memory copy of every submit for a minute, not its default three days.
            correlator=SimpleCorrelator(
                client_id,
                max_ttl_response=float(max(15.0, settings.response_timeout_seconds + 5)),
                max_ttl_delivery=60.0,
            ),
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
        # The parts go side by side, up to the window (the bucket hands out turns in order, so they still
        # leave in sequence); a message waits for the slowest of its parts, not for the sum of round trips.
        results = await asyncio.gather(
            *(self._submit_part(message, part) for part in parts), return_exceptions=True
        )
        ids = [r for r in results if isinstance(r, str)]
        failures = [r for r in results if isinstance(r, ChannelError)]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ChannelError):
                raise result
        if not failures:
            return Accepted(tuple(ids))
        if ids:
            first = failures[0]
            raise PartlyAccepted(
                f"{len(failures)} of {len(parts)} parts not taken after {len(ids)} were: {first.message}",
                provider_ids=tuple(ids),
            )
        # Nothing taken for sure: a part that may have reached the SMSC makes the whole message ambiguous.
        for kind in (Ambiguous, Rejected, RetryLater):
            for failure in failures:
                if isinstance(failure, kind):
                    raise failure
        raise failures[0]

    async def _submit_part(self, message: Message, part: Pdu) -> str:
        give_up = time.monotonic() + self.settings.throttle_give_up_seconds
        while True:
            # After one submit has waited out a missing bind or a throttling SMSC, the next ones answer at
            # once: the dispatcher sends one message after another, and e-mail waits for its run to end.
            wait = self._unavailable_until - time.monotonic()
            if wait > 0 and not (self.bound and self._unavailable_reason == "bind"):
                raise RetryLater(f"the SMSC is unavailable ({self._unavailable_reason})", retry_after=wait)
            if not await self.wait_bound(self.settings.bind_wait_seconds):
                self._unavailable("bind", self.settings.bind_wait_seconds)
                raise RetryLater("the SMSC is not bound", retry_after=self.settings.bind_wait_seconds)
            await self.bucket.take()
            async with self._window:
                try:
                    status, provider_id = await self._exchange(message, part)
                except NotSent:
                    # Never left the process: the next session sends it, unless that takes too long.
                    if time.monotonic() > give_up:
                        raise RetryLater("the SMPP session did not send the part in time") from None
                    continue
                except Lost as exc:
                    self.stats.lost += 1
                    raise Ambiguous(str(exc)) from None
            if status == ESME_ROK:
                self._unavailable_until = 0.0
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
                    self._unavailable("throttled", THROTTLE_REST)
                    raise RetryLater(
                        f"the SMSC keeps answering {status_name(status)}", retry_after=THROTTLE_REST
                    )
                continue
            self.stats.rejected += 1
            if status in PERMANENT:
                raise Rejected(f"the SMSC refused the message: {status_name(status)}")
            raise RetryLater(f"the SMSC answered {status_name(status)}")

    async def _exchange(self, message: Message, part: Pdu) -> tuple[int, str]:
        key = f"{message.id}.{part.seq}.{next(self._keys)}"
        pending = Pending(asyncio.get_running_loop().create_future())
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
                raise NotSent() from None
            raise Lost(f"no submit_sm_resp within {settings.response_timeout_seconds:.0f} s") from None
        finally:
            self._pending.pop(key, None)

    # -- what the session reports ---------------------------------------------------------------------------

    def _written(self, sequence: int, key: str) -> None:
        self._by_sequence[sequence] = key

    def _unavailable(self, reason: str, seconds: float) -> None:
        self._unavailable_until = time.monotonic() + seconds
        self._unavailable_reason = reason

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
                pending.future.set_exception(NotSent())
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(Lost("the SMPP session ended before the SMSC answered"))
        self._by_sequence.clear()

    async def _received(self, pdu: bytes) -> None:
        if len(pdu) < 16:
            return
        command_id, status, sequence = header_of(pdu)
        if command_id == BIND_TRANSCEIVER_RESP and status == ESME_ROK:
            logger.info(
                "SMPP bound to %s:%d as %s", self.settings.host, self.settings.port, self.settings.system_id
            )
            self._bound.set()
        elif command_id in (SUBMIT_SM_RESP, GENERIC_NACK):
            key = self._by_sequence.pop(sequence, None)
            pending = self._pending.get(key) if key is not None else None
            if pending is not None and not pending.future.done():
                pending.future.set_result(
                    (status, message_id_of(pdu) if command_id == SUBMIT_SM_RESP else "")
                )
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

"""The outbox dispatcher: joins rooms' outbox to notify's channels (one per cluster; see install()).

Every second (or at once after :meth:`Dispatcher.wake`) it claims due rows, hands each to its channel and
writes the outcome. Exactly-once across restarts comes from the store: the claim commits `sending` with a
lease before any network I/O; a row still `sending` after its lease (the process died mid-send) is resent
for e-mail with the same Message-ID and marked `unknown` for SMS, never resent. Running two dispatchers is
safe (claims skip locked rows, outcomes are fenced by the attempt number), which is what issue #20's
advisory lock will rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from notify.channel import (
    Accepted,
    Ambiguous,
    Attachment,
    Channel,
    ChannelError,
    Inbound,
    Message,
    Receipt,
    Rejected,
    RetryLater,
)
from notify.smpp import PartlyAccepted
from rooms.database import Database
from rooms.outbox import store
from rooms.outbox.store import Claim
from rooms.sms.store import record_taken_parts

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Replies treated as an opt-out from reminders when an SMS recipient sends them (notifications brief §4).
OPT_OUT_WORDS = frozenset({"T", "TD", "退订", "STOP", "UNSUBSCRIBE"})
# Unmatched receipts kept for a later match (oldest dropped first).
EARLY_RECEIPTS = 10_000


# Renders the document an attachment names by its source ("kind:reference"), given the reference.
DocumentRenderer = Callable[[str], Awaitable[bytes]]


def message_of(claimed: Claim, documents: dict[str, bytes] | None = None) -> Message:
    """The message a channel sends; ``documents`` holds the rendered files of attachments with a source."""
    return Message(
        id=claimed.id,
        channel=claimed.channel,
        kind=claimed.kind,
        template_key=claimed.template_key,
        locale=claimed.locale,
        recipient=claimed.recipient,
        variables=dict(claimed.variables),
        attachments=tuple(
            Attachment(
                a.filename,
                a.content_type,
                a.text,
                dict(a.params or {}),
                (documents or {}).get(a.source) if a.source is not None else None,
            )
            for a in claimed.attachments
        ),
        account_id=claimed.account_id,
        booking_id=claimed.booking_id,
        batch_id=claimed.batch_id,
        attempt=claimed.attempts,
    )


class DispatchStats:
    """What the dispatcher did, for /metrics: outcomes per (channel, outcome) and the last queue depth."""

    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.queue_depth: dict[str, int] = {}


class Dispatcher:
    """Owns the registered channels and its loop task; :meth:`close` stops both (idempotent)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        interval: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._db = db
        self._clock = clock
        self._interval = interval
        self._jitter = jitter
        self._channels: dict[str, Channel] = {}
        self._documents: dict[str, DocumentRenderer] = {}
        self._started: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self.runs = 0
        self.stats = DispatchStats()
        self._ran = asyncio.Condition()
        # Receipts that overtook the write of their own acceptance (an SMSC answers within milliseconds),
        # matched again right after that write.
        self._early: dict[str, Receipt] = {}

    def register(self, channel: Channel) -> None:
        """Add a channel (before or after start); its rows are sent from the next run on."""
        if channel.name in self._channels:
            raise ValueError(f"channel {channel.name!r} is registered twice")
        self._channels[channel.name] = channel

    def register_document(self, kind: str, renderer: DocumentRenderer) -> None:
        """Render attachments whose source is ``kind:<reference>`` (an invoice's PDF) when they are sent."""
        if kind in self._documents:
            raise ValueError(f"document kind {kind!r} is registered twice")
        self._documents[kind] = renderer

    async def _render(self, claimed: Claim) -> dict[str, bytes]:
        rendered: dict[str, bytes] = {}
        for attachment in claimed.attachments:
            if attachment.source is None or attachment.source in rendered:
                continue
            kind, _, reference = attachment.source.partition(":")
            renderer = self._documents.get(kind)
            if renderer is None:
                # Another process (an older one) queued it, or this one lacks the feature: try again later.
                raise RetryLater(f"no renderer for the attachment {attachment.filename!r}")
            try:
                rendered[attachment.source] = await renderer(reference)
            except Exception as exc:
                log.warning("outbox %d: rendering %s failed: %s", claimed.id, attachment.source, exc)
                raise RetryLater(f"the attachment {attachment.filename!r} could not be made: {exc}") from None
        return rendered

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    def wake(self) -> None:
        """Run now instead of at the next tick (after an enqueue in this process)."""
        self._wake.set()

    async def wait_for_run(self, after: int) -> int:
        """Return once more than `after` runs have finished (tests and shutdown use it)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs > after)
            return self.runs

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                self.stats.queue_depth = await store.queue_depth(self._db, now=self._clock())
            except Exception:
                log.exception("outbox dispatch failed; retrying in %.0f s", self._interval)
            async with self._ran:
                self.runs += 1
                self._ran.notify_all()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()

    async def _ensure_started(self) -> None:
        for name, channel in self._channels.items():
            if name not in self._started:
                self._started.add(name)
                await channel.start(self.on_event)

    async def run_once(self) -> int:
        """Claim what is due and send it; return how many rows were handled."""
        await self._ensure_started()
        if not self._channels:
            return 0
        resend = {name: c.resend_when_ambiguous for name, c in self._channels.items()}
        handled = 0
        while True:
            claims = await store.claim(
                self._db, now=self._clock(), channels=self.channels, resend_ambiguous=resend
            )
            if not claims:
                return handled
            by_channel: dict[str, list[Claim]] = {}
            for claimed in claims:
                by_channel.setdefault(claimed.channel, []).append(claimed)
            # Channels send side by side; within one channel in order (SMPP has its own window and rate).
            await asyncio.gather(*(self._send_all(self._channels[n], rows) for n, rows in by_channel.items()))
            handled += len(claims)

    async def _send_all(self, channel: Channel, claims: list[Claim]) -> None:
        for claimed in claims:
            await self._send(channel, claimed)

    async def _send(self, channel: Channel, claimed: Claim) -> None:
        try:
            accepted: Accepted = await channel.submit(message_of(claimed, await self._render(claimed)))
        except ChannelError as exc:
            await self._failed(channel, claimed, exc)
            return
        except Exception as exc:
            # A defect in a channel must not lose the row: it is ambiguous (e-mail resends, SMS does not).
            log.exception("outbox %d: channel %s raised", claimed.id, channel.name)
            await self._failed(channel, claimed, Ambiguous(f"{type(exc).__name__}: {exc}"))
            return
        self.stats.outcomes[(channel.name, "sent")] += 1
        if not await store.mark_sent(
            self._db, claimed, now=self._clock(), provider_ids=accepted.provider_ids
        ):
            log.warning("outbox %d: sent, but its lease had passed to another attempt", claimed.id)
        for provider_id in accepted.provider_ids:
            early = self._early.pop(provider_id, None) if provider_id else None
            if early is not None:
                await self.on_event(early)

    async def _failed(self, channel: Channel, claimed: Claim, exc: ChannelError) -> None:
        now = self._clock()
        self.stats.outcomes[(channel.name, exc.disposition)] += 1
        if isinstance(exc, Rejected):
            log.info("outbox %d to %s failed: %s", claimed.id, claimed.recipient, exc.message)
            await store.mark_failed(
                self._db, claimed, now=now, error=exc.message, suppress_recipient=exc.suppress
            )
        elif isinstance(exc, Ambiguous):
            log.warning("outbox %d to %s ambiguous: %s", claimed.id, claimed.recipient, exc.message)
            marked = await store.mark_ambiguous(
                self._db, claimed, now=now, error=exc.message, resend=channel.resend_when_ambiguous
            )
            if marked and isinstance(exc, PartlyAccepted):
                # The parts the SMSC took are billed even though the message as a whole is unknown.
                await record_taken_parts(self._db, claimed.id, exc.provider_ids, now=now)
        else:
            not_before = None if exc.retry_after is None else now + timedelta(seconds=exc.retry_after)
            status = await store.mark_retry(
                self._db, claimed, now=now, error=exc.message, jitter=self._jitter(), not_before=not_before
            )
            log.info("outbox %d to %s: %s (%s)", claimed.id, claimed.recipient, exc.message, status)

    async def on_event(self, event: Receipt | Inbound) -> None:
        """Receipts and inbound messages from any channel, matched in the database (they can come hours later,
        after a restart)."""
        now = self._clock()
        if isinstance(event, Receipt):
            found = await store.record_receipt(
                self._db,
                provider_message_id=event.provider_message_id,
                status=event.status,
                error=event.error,
                now=now,
            )
            if found is None:
                log.info("receipt for unknown message %s (%s)", event.provider_message_id, event.status)
                if len(self._early) >= EARLY_RECEIPTS:
                    self._early.pop(next(iter(self._early)))
                self._early[event.provider_message_id] = event
            return
        if event.text.strip().upper() in OPT_OUT_WORDS:
            async with self._db.writer() as session:
                await store.suppress(
                    session,
                    channel=event.channel,
                    recipient=event.sender,
                    scope="reminder",
                    reason=f"opt-out reply {event.text.strip()!r}",
                    now=now,
                )
                await session.commit()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for channel in self._channels.values():
            try:
                await channel.close()
            except Exception:
                log.exception("closing channel %s failed", channel.name)

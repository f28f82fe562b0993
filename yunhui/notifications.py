"""Wiring of notifications: the dispatcher and its channels, the booking hook, the reminder and purge jobs.

install() is the one call from create_app. Everything here runs in each process today (one process by
default); all of it is safe to run twice (idempotency keys, leases, fencing), which is what issue #20's
cluster-wide advisory lock will rely on when it puts these jobs under one runner.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from notify.channel import Accepted, EventSink, Message, Rejected
from notify.email import EmailChannel
from notify.mime import Envelope
from notify.smtp import SmtpConfig, SmtpSender
from notify.templating import Templates
from rooms.bookings import ChangeHook
from rooms.database import Database
from rooms.outbox.history import purge_history
from rooms.outbox.invitations import Invitations, NoticeSettings, queue_due_reminders
from rooms.outbox.unsubscribe import unsubscribe_token
from signaling.messages import Announcement
from signaling.server import MeetingServer
from web.api.maintenance import NOTICE_TIME_ZONE
from web.api.notifications import BOOKING_CHANGES, NOTICES, WAKE
from web.keys import METRICS
from yunhui import documents
from yunhui.dispatcher import Dispatcher
from yunhui.jobs import PeriodicJob
from yunhui.settings import Settings

log = logging.getLogger(__name__)

DISPATCHER = web.AppKey("outbox_dispatcher", Dispatcher)
INVITATIONS = web.AppKey("invitations", Invitations)
REMINDER_JOB = web.AppKey("reminder_job", PeriodicJob)
PURGE_JOB = web.AppKey("outbox_purge_job", PeriodicJob)
Clock = Callable[[], datetime]


def public_url(settings: Settings) -> str:
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host = "localhost" if settings.server.host in ("0.0.0.0", "::", "") else settings.server.host
    return f"http://{host}:{settings.server.port}"


def notice_settings(settings: Settings) -> NoticeSettings:
    notify = settings.notify
    url = public_url(settings)
    return NoticeSettings(
        public_url=url,
        sender=notify.sender,
        default_locale=notify.default_locale,
        sip_domain=notify.sip_domain or urlsplit(url).hostname or None,
        expiry=timedelta(hours=notify.expiry_hours),
        reminder_leads={
            "email": tuple(timedelta(minutes=m) for m in notify.email_reminder_minutes),
            "sms": tuple(timedelta(minutes=m) for m in notify.sms_reminder_minutes),
        },
    )


class NotifyCollector(Collector):
    """yunhui_notify_sent_total{channel,outcome} and yunhui_notify_queue_depth{channel}, without per-account
    labels; alert on a growing queue."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._stats = dispatcher.stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sent = CounterMetricFamily(
            "yunhui_notify_sent", "send attempts by channel and outcome", labels=["channel", "outcome"]
        )
        for (channel, outcome), count in sorted(self._stats.outcomes.items()):
            sent.add_metric([channel, outcome], count)
        yield sent
        depth = GaugeMetricFamily(
            "yunhui_notify_queue_depth", "messages due or being sent", labels=["channel"]
        )
        for channel, count in sorted(self._stats.queue_depth.items()):
            depth.add_metric([channel], count)
        yield depth


class AnnouncementChannel:
    """The `announcement` channel: a notice to the live meetings of this process (recipient `all` or
    `account:{id}`). Nothing to resend when ambiguous: a meeting that missed it sees the banner anyway."""

    def __init__(self, meetings: MeetingServer) -> None:
        self._meetings = meetings
        # In a cluster (yunhui/bus.py): sends the notice to the other workers' meetings too.
        self.relay: Callable[[Announcement, int | None], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        return "announcement"

    def deliver(self, announcement: Announcement, account: int | None) -> int:
        """Show the notice in this worker's live meetings (of ``account``, or all); how many it reached."""
        reached = 0
        for conference in self._meetings.conferences():
            if account is None or conference.room.account_id == account:
                conference.broadcast(announcement)
                reached += 1
        return reached

    @property
    def resend_when_ambiguous(self) -> bool:
        return False

    async def start(self, events: EventSink) -> None:
        return None

    async def submit(self, message: Message) -> Accepted:
        v = message.variables
        try:
            announcement = Announcement(
                id=int(v["window_id"]),
                kind=message.kind,
                title=dict(v["title"]),
                text=dict(v["text"]),
                starts_at=datetime.fromisoformat(v["starts_at"]),
                ends_at=datetime.fromisoformat(v["ends_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Rejected(f"not an announcement: {exc}") from exc
        account = None
        if message.recipient.startswith("account:"):
            account = int(message.recipient.removeprefix("account:"))
        reached = self.deliver(announcement, account)
        if self.relay is not None:
            await self.relay(announcement, account)
        log.info("announcement %d (%s) to %d live meeting(s)", message.id, message.kind, reached)
        return Accepted((f"meetings:{reached}",))

    async def close(self) -> None:
        return None


ANNOUNCEMENTS = web.AppKey("announcement_channel", AnnouncementChannel)


def install(
    app: web.Application,
    api: web.Application,
    *,
    settings: Settings,
    database: Database,
    clock: Clock,
    meetings: MeetingServer,
    secret_key: str,
) -> Dispatcher:
    """Add the dispatcher (app[DISPATCHER]; other channels register with it) and the notification jobs."""
    notify = settings.notify
    notices = notice_settings(settings)
    dispatcher = Dispatcher(database, clock=clock, interval=notify.dispatch_interval_seconds)
    app[DISPATCHER] = dispatcher
    documents.install(dispatcher, database, settings.rooms.supplier, clock)  # invoice and statement PDFs
    app[METRICS].register(NotifyCollector(dispatcher))
    invitations = Invitations(notices)
    app[INVITATIONS] = invitations
    hook: ChangeHook = invitations
    api[BOOKING_CHANGES] = hook
    api[WAKE] = dispatcher.wake
    api[NOTICES] = notices
    api[NOTICE_TIME_ZONE] = notify.time_zone
    base_url = public_url(settings)

    def unsubscribe_url(message: Message) -> str | None:
        if message.kind != "reminder":
            return None
        token = unsubscribe_token(secret_key, message.recipient)
        return f"{base_url}/api/v1/notifications/unsubscribe?token={quote(token)}"

    if notify.smtp.host:
        smtp = notify.smtp
        sender = SmtpSender(
            SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                tls=smtp.tls,
                starttls=smtp.starttls,
                user=smtp.user,
                password=smtp.password.get_secret_value(),
                timeout=smtp.timeout_seconds,
                ca_file=smtp.ca_file,
            )
        )
        dispatcher.register(
            EmailChannel(
                sender,
                Templates(default_locale=notify.default_locale),
                Envelope(sender=notify.sender, domain=notify.domain),
                clock=clock,
                unsubscribe_url=unsubscribe_url,
            )
        )
    else:
        log.warning("notify.smtp.host is not set: e-mail stays queued until it is configured")
    announcements = AnnouncementChannel(meetings)
    app[ANNOUNCEMENTS] = announcements
    dispatcher.register(announcements)

    horizon = timedelta(seconds=notify.reminder_interval_seconds * 2)

    async def reminders_run() -> None:
        async with database.writer() as session:
            new = await queue_due_reminders(session, invitations, now=clock(), horizon=horizon)
            await session.commit()
        if new:
            log.info("reminders: %d queued", new)
            dispatcher.wake()

    async def purge_run() -> None:
        report = await purge_history(database, now=clock())
        if report.statements or report.purged:
            log.info("outbox history: %d statement(s), %d row(s) purged", report.statements, report.purged)

    reminders = PeriodicJob("reminders", reminders_run, notify.reminder_interval_seconds)
    purge = PeriodicJob("outbox-purge", purge_run, notify.purge_interval_seconds)
    app[REMINDER_JOB] = reminders
    app[PURGE_JOB] = purge

    async def notifications_ctx(app: web.Application) -> AsyncIterator[None]:
        dispatcher.start()
        reminders.start()
        purge.start()
        yield
        await purge.close()
        await reminders.close()
        await dispatcher.close()

    app.cleanup_ctx.append(notifications_ctx)
    return dispatcher

"""Maintenance windows: the 48-hour notice rule, and the notices written in the window's own transaction.

On create, one transaction writes the window, an e-mail to every affected account admin in their language
(and a reminder a day ahead), the `announcement` to live meetings at T−60 and T−10 min, and a proof row per
notice (MaintenanceNotice) that keeps when it was queued and when it went out after the outbox is purged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.models import Site, User
from rooms.outbox import store
from rooms.outbox.invitations import LOCALES, NoticeSettings
from rooms.outbox.models import MaintenanceNotice, MaintenanceWindow, Notification
from rooms.outbox.rules import retain_until
from rooms.recurrence import time_zone

MIN_NOTICE = timedelta(hours=48)
REMINDER_BEFORE = timedelta(hours=24)
ANNOUNCE_BEFORE = (timedelta(minutes=60), timedelta(minutes=10))
SCOPES = ("platform", "account", "site")
MAX_WINDOW = timedelta(days=7)


def notice_ok(starts_at: datetime, now: datetime) -> bool:
    """The contracts' rule: a maintenance window is announced at least 48 hours before it starts."""
    return starts_at - now >= MIN_NOTICE


def check_window(
    starts_at: datetime, ends_at: datetime, *, now: datetime, emergency_reason: str | None
) -> None:
    """Raise InvalidInput for an impossible window, Conflict (naming starts_at) for a short notice."""
    if starts_at <= now:
        raise InvalidInput("the window must start in the future", field="starts_at")
    if ends_at <= starts_at:
        raise InvalidInput("the window must end after it starts", field="ends_at")
    if ends_at - starts_at > MAX_WINDOW:
        raise InvalidInput("a window is at most 7 days long", field="ends_at")
    if not notice_ok(starts_at, now) and not (emergency_reason or "").strip():
        hours = (starts_at - now).total_seconds() / 3600
        raise Conflict(
            f"starts_at is {hours:.1f} h ahead; maintenance needs 48 h notice"
            " unless an emergency_reason is given",
            field="starts_at",
            code="notice_too_short",
        )


@dataclass(frozen=True)
class WindowDraft:
    scope: str
    starts_at: datetime
    ends_at: datetime
    title: Mapping[str, str]
    text: Mapping[str, str]
    account_id: int | None = None
    site_id: int | None = None
    emergency_reason: str | None = None
    created_by: int | None = None


def _texts(value: Mapping[str, str], field: str) -> dict[str, str]:
    texts = {k: v.strip() for k, v in value.items() if v and v.strip()}
    missing = [loc for loc in LOCALES if loc not in texts]
    if missing:
        raise InvalidInput(f"{field} needs a text in {', '.join(missing)}", field=field)
    unknown = sorted(set(texts) - set(LOCALES))
    if unknown:
        raise InvalidInput(f"{field}: unknown locale {unknown[0]!r}", field=field)
    return texts


def _variables(window: MaintenanceWindow, locale: str, zone_name: str, name: str) -> dict[str, Any]:
    zone = time_zone(zone_name)
    return {
        "name": name,
        "title": window.title[locale],
        "text": window.text[locale],
        "starts": window.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "ends": window.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "time_zone": zone_name,
        "emergency_reason": window.emergency_reason or "",
    }


def batch_of(window_id: int) -> str:
    return f"maintenance:{window_id}"


async def _admins(session: AsyncSession, window: MaintenanceWindow) -> list[User]:
    query = select(User).where(User.role == "admin", User.account_id.is_not(None))
    if window.scope != "platform":
        query = query.where(User.account_id == window.account_id)
    return list((await session.scalars(query.order_by(User.id))).all())


async def _resolve_scope(session: AsyncSession, draft: WindowDraft) -> tuple[int | None, int | None]:
    if draft.scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if draft.scope == "platform":
        return None, None
    if draft.scope == "site":
        site = await session.get(Site, draft.site_id) if draft.site_id is not None else None
        if site is None:
            raise NotFound("no such site", field="site_id")
        return site.account_id, site.id
    if draft.account_id is None:
        raise InvalidInput("an account window names its account", field="account_id")
    return draft.account_id, None


async def schedule_window(
    db: Database, draft: WindowDraft, *, now: datetime, settings: NoticeSettings, time_zone_name: str
) -> MaintenanceWindow:
    """Create a window and all its notices in one transaction (nothing is written if any check fails)."""
    check_window(draft.starts_at, draft.ends_at, now=now, emergency_reason=draft.emergency_reason)
    title = _texts(draft.title, "title")
    text = _texts(draft.text, "text")
    async with db.writer() as session:
        account_id, site_id = await _resolve_scope(session, draft)
        window = MaintenanceWindow(
            scope=draft.scope,
            account_id=account_id,
            site_id=site_id,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            title=title,
            text=text,
            emergency_reason=(draft.emergency_reason or "").strip() or None,
            created_by=draft.created_by,
            created_at=now,
        )
        session.add(window)
        await session.flush()
        batch = batch_of(window.id)
        for admin in await _admins(session, window):
            locale = admin.locale if admin.locale in LOCALES else settings.default_locale
            variables = _variables(window, locale, time_zone_name, admin.display_name)
            sends = [("maintenance", now)]
            if window.starts_at - REMINDER_BEFORE > now:
                sends.append(("maintenance_reminder", window.starts_at - REMINDER_BEFORE))
            for kind, at in sends:
                outbox_id = await store.enqueue(
                    session,
                    channel="email",
                    kind=kind,
                    recipient=admin.email,
                    idempotency_key=f"{batch}:{kind}:{admin.email.lower()}",
                    now=now,
                    account_id=admin.account_id,
                    locale=locale,
                    variables=variables,
                    batch_id=batch,
                    not_before=at,
                    expires_at=window.starts_at,
                )
                session.add(
                    MaintenanceNotice(
                        window_id=window.id,
                        outbox_id=outbox_id,
                        channel="email",
                        kind=kind,
                        account_id=admin.account_id,
                        user_id=admin.id,
                        recipient=admin.email,
                        locale=locale,
                        queued_at=now,
                        status="queued",
                    )
                )
        audience = "all" if window.scope == "platform" else f"account:{window.account_id}"
        for before in ANNOUNCE_BEFORE:
            at = max(now, window.starts_at - before)
            minutes = int(before.total_seconds() // 60)
            outbox_id = await store.enqueue(
                session,
                channel="announcement",
                kind="maintenance",
                recipient=audience,
                idempotency_key=f"{batch}:announcement:{minutes}",
                now=now,
                variables={
                    "window_id": window.id,
                    "title": title,
                    "text": text,
                    "starts_at": window.starts_at.isoformat(),
                    "ends_at": window.ends_at.isoformat(),
                },
                batch_id=batch,
                not_before=at,
                expires_at=window.starts_at,
            )
            session.add(
                MaintenanceNotice(
                    window_id=window.id,
                    outbox_id=outbox_id,
                    channel="announcement",
                    kind=f"announcement_t{minutes}",
                    account_id=window.account_id,
                    recipient=audience,
                    locale="*",
                    queued_at=now,
                    status="queued",
                )
            )
        await session.commit()
    return window


async def cancel_window(db: Database, window_id: int, *, now: datetime) -> MaintenanceWindow:
    """Cancel a window and every notice of it not yet sent (the banner goes away)."""
    async with db.writer() as session:
        window = await session.scalar(
            select(MaintenanceWindow).where(MaintenanceWindow.id == window_id).with_for_update()
        )
        if window is None:
            raise NotFound("no such maintenance window")
        if window.cancelled_at is None:
            window.cancelled_at = now
            await session.execute(
                update(Notification)
                .where(Notification.batch_id == batch_of(window.id), Notification.status == "queued")
                .values(status="cancelled", last_error="window cancelled", retain_until=retain_until(now))
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(MaintenanceNotice)
                .where(MaintenanceNotice.window_id == window.id, MaintenanceNotice.status == "queued")
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
            await session.commit()
    return window


async def list_windows(db: Database, *, include_past: bool, now: datetime) -> list[MaintenanceWindow]:
    query = select(MaintenanceWindow)
    if not include_past:
        query = query.where(MaintenanceWindow.ends_at > now)
    async with db.session() as session:
        return list((await session.scalars(query.order_by(MaintenanceWindow.starts_at))).all())


async def get_window(db: Database, window_id: int) -> tuple[MaintenanceWindow, list[MaintenanceNotice]]:
    async with db.session() as session:
        window = await session.get(MaintenanceWindow, window_id)
        if window is None:
            raise NotFound("no such maintenance window")
        notices = (
            await session.scalars(
                select(MaintenanceNotice)
                .where(MaintenanceNotice.window_id == window_id)
                .order_by(MaintenanceNotice.id)
            )
        ).all()
        return window, list(notices)


async def announcements(db: Database, *, account_id: int | None, now: datetime) -> list[MaintenanceWindow]:
    """The windows to show as a banner: not cancelled, not over; platform-wide ones, plus the account's own
    (`account_id` None: anonymous, e.g. the meeting client before sign-in, sees platform windows only)."""
    scope = MaintenanceWindow.scope == "platform"
    if account_id is not None:
        scope = or_(scope, MaintenanceWindow.account_id == account_id)
    query = select(MaintenanceWindow).where(
        MaintenanceWindow.cancelled_at.is_(None), MaintenanceWindow.ends_at > now, scope
    )
    async with db.session() as session:
        return list((await session.scalars(query.order_by(MaintenanceWindow.starts_at))).all())

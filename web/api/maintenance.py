"""Maintenance windows (platform admins) and the announcements every client shows as a banner."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from rooms.outbox import maintenance as windows
from rooms.outbox.models import MaintenanceNotice, MaintenanceWindow
from web.api.base import (
    CLOCK,
    DB,
    Api,
    authenticate,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.notifications import notice_settings, wake

api = Api()
NOTICE_TIME_ZONE = web.AppKey("maintenance_time_zone", str)


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    zh_cn: Annotated[str, StringConstraints(max_length=4000)] = Field(alias="zh-CN")
    en: Annotated[str, StringConstraints(max_length=4000)]

    def as_dict(self) -> dict[str, str]:
        return {"zh-CN": self.zh_cn, "en": self.en}


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["platform", "account", "site"] = "platform"
    account_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    site_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    title: Texts
    text: Texts
    # Required for less than 48 hours' notice; recorded as the reason (an input to SLA reporting).
    emergency_reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    channel: str
    kind: str
    account_id: int | None
    user_id: int | None
    recipient: str
    locale: str
    queued_at: datetime
    sent_at: datetime | None
    status: str


class WindowOut(BaseModel):
    id: int
    scope: str
    account_id: int | None
    site_id: int | None
    starts_at: datetime
    ends_at: datetime
    title: dict[str, str]
    text: dict[str, str]
    emergency_reason: str | None
    notice_hours: float
    created_by: int | None
    created_at: datetime
    cancelled: bool


class WindowDetail(WindowOut):
    notices: list[NoticeOut]


class AnnouncementOut(BaseModel):
    id: int
    kind: Literal["maintenance"]
    title: dict[str, str]
    text: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    # True once the window has started: clients say "under maintenance" rather than "planned".
    active: bool


class WindowQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_past: bool = False


def window_out(w: MaintenanceWindow) -> WindowOut:
    return WindowOut(
        id=w.id,
        scope=w.scope,
        account_id=w.account_id,
        site_id=w.site_id,
        starts_at=w.starts_at,
        ends_at=w.ends_at,
        title=dict(w.title),
        text=dict(w.text),
        emergency_reason=w.emergency_reason,
        notice_hours=round((w.starts_at - w.created_at).total_seconds() / 3600, 2),
        created_by=w.created_by,
        created_at=w.created_at,
        cancelled=w.cancelled_at is not None,
    )


def _detail(w: MaintenanceWindow, notices: list[MaintenanceNotice]) -> WindowDetail:
    return WindowDetail(**window_out(w).model_dump(), notices=[NoticeOut.model_validate(n) for n in notices])


@api.op(
    "POST",
    "/maintenance",
    summary="Schedule a maintenance window and notify (platform admin; 48 h ahead unless an emergency)",
    tag="maintenance",
    body=WindowIn,
    response=WindowDetail,
    status=201,
)
async def create_window(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_platform_admin()
    body = await parse_body(request, WindowIn)
    settings = notice_settings(request)
    draft = windows.WindowDraft(
        scope=body.scope,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        title=body.title.as_dict(),
        text=body.text.as_dict(),
        account_id=body.account_id,
        site_id=body.site_id,
        emergency_reason=body.emergency_reason,
        created_by=who.user.id,
    )
    db = request.app[DB]
    window = await windows.schedule_window(
        db,
        draft,
        now=request.app[CLOCK](),
        settings=settings,
        time_zone_name=request.app.get(NOTICE_TIME_ZONE, "Asia/Shanghai"),
    )
    wake(request)
    window, notices = await windows.get_window(db, window.id)
    return send(_detail(window, notices), 201)


@api.op(
    "GET",
    "/maintenance",
    summary="List maintenance windows (platform admin)",
    tag="maintenance",
    response=WindowOut,
    many=True,
    query=WindowQuery,
)
async def list_windows(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    q = parse_query(request, WindowQuery)
    rows = await windows.list_windows(request.app[DB], include_past=q.include_past, now=request.app[CLOCK]())
    return send([window_out(w) for w in rows])


@api.op(
    "GET",
    "/maintenance/{window_id}",
    summary="A maintenance window with the proof of every notice (platform admin)",
    tag="maintenance",
    response=WindowDetail,
)
async def get_window(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    window, notices = await windows.get_window(request.app[DB], path_id(request, "window_id"))
    return send(_detail(window, notices))


@api.op(
    "DELETE",
    "/maintenance/{window_id}",
    summary="Cancel a maintenance window (its unsent notices are cancelled)",
    tag="maintenance",
    response=WindowOut,
)
async def cancel_window(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    window = await windows.cancel_window(
        request.app[DB], path_id(request, "window_id"), now=request.app[CLOCK]()
    )
    return send(window_out(window))


@api.op(
    "GET",
    "/announcements",
    summary="Announcements to show as a banner (platform-wide ones without sign-in)",
    tag="maintenance",
    response=AnnouncementOut,
    many=True,
    auth=False,
)
async def list_announcements(request: web.Request) -> web.Response:
    account_id = None
    if request.headers.get("Authorization"):
        account_id = (await authenticate(request)).account_id
    now = request.app[CLOCK]()
    rows = await windows.announcements(request.app[DB], account_id=account_id, now=now)
    return send(
        [
            AnnouncementOut(
                id=w.id,
                kind="maintenance",
                title=dict(w.title),
                text=dict(w.text),
                starts_at=w.starts_at,
                ends_at=w.ends_at,
                active=w.starts_at <= now,
            )
            for w in rows
        ]
    )

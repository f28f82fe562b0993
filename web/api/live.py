"""Live channels: CRUD, sources, the console's actions (rehearse, go live, stop, archive), the standby
override, staff tokens and statistics (JSON and CSV). The viewers' side is web/api/live_viewers.py."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlalchemy import select

from rooms.live import store
from rooms.live.models import LiveChannel
from rooms.live.rules import ACTIONS, mask_url, next_state, sign_staff
from rooms.live.stats import PUBLIC_PHASES, Summary, summarize, watch_seconds
from web.api.base import (
    CLOCK,
    DB,
    SECRET_KEY,
    Api,
    ApiError,
    Principal,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.live_activity import flush_activity
from web.api.schemas import Body, Id, ListQuery, Name

api = Api()
TAG = "live"


class EngineStatus(BaseModel):
    """What the channel's engine reports while it runs (absent when it runs in no process here)."""

    on_air: str = Field(description="primary, standby or none")
    source: str = Field(description="the label of the source on air")
    segments: int
    public_segments: int
    duration_s: float
    public_duration_s: float
    transcoding: bool
    rtmp: str | None = Field(description="connecting, pushing, waiting, or null without RTMP")


class LiveService(Protocol):
    """What the API needs of the live channels' engines in this process (the composition root provides it)."""

    @property
    def root(self) -> Path:
        """The directory every channel run's directory is in."""
        ...

    async def start(self, channel: LiveChannel) -> tuple[str, int | None]:
        """Start a new run of the channel's engine (rehearsal); its directory name and the meeting it shows.

        Raises RoomsError with a reason when it cannot start (e.g. the room's meeting is not live)."""
        ...

    async def go_live(self, channel: LiveChannel) -> None:
        """Make the running engine public (no restart)."""
        ...

    async def stop(self, channel: LiveChannel, *, end: bool) -> None:
        """end: write ENDLIST (the replay is complete on return); else discard a rehearsal's run."""
        ...

    async def reconfigure(self, channel: LiveChannel) -> None:
        """Apply a changed source, audio participant, standby or override to the running engine."""
        ...

    def status(self, channel_id: int) -> EngineStatus | None: ...

    async def remove_files(self, directory: str) -> None:
        """Delete a deleted channel's run directory (idempotent)."""
        ...


LIVE_SERVICE = web.AppKey("live_service", LiveService)

# --- bodies ----------------------------------------------------------------------------------------------

Language = Literal["zh-CN", "en"]
SourceKind = Literal["meeting", "encoder", "playlist", "rtmp"]
StandbyKind = Literal["none", "video", "encoder"]
Override = Literal["auto", "primary", "standby"]
State = Literal["draft", "rehearsal", "live", "ended", "archived"]
Participant = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
RtmpUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=1000)]


def _check_rtmp(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("rtmp://", "rtmps://")) or any(c.isspace() for c in value):
        raise ValueError("must be an rtmp:// or rtmps:// URL without spaces")
    return value


class ChannelIn(Body):
    title: Name
    language: Language
    source_kind: SourceKind = "meeting"
    room_id: Id | None = Field(default=None, description="the room whose meeting a meeting source shows")
    audio_participant: Participant = Field(
        default="", description="participant id whose microphone is the audio (an interpreter); empty: all"
    )
    standby_kind: StandbyKind = "none"
    standby_video_id: Id | None = Field(
        default=None, description='a ready pre-recorded video: the "video" standby'
    )
    rtmp_url: RtmpUrl | None = Field(default=None, description="push the programme here too (secret)")
    show_viewer_count: bool = False
    account_id: Id | None = Field(default=None, description="platform admin only: the account")

    _rtmp = field_validator("rtmp_url")(_check_rtmp)


class ChannelPatch(Body):
    title: Name | None = None
    language: Language | None = None
    standby_kind: StandbyKind | None = None
    standby_video_id: Id | None = None
    rtmp_url: RtmpUrl | None = Field(default=None, description='"" removes it')
    show_viewer_count: bool | None = None

    _rtmp = field_validator("rtmp_url")(_check_rtmp)


class SourceIn(Body):
    source_kind: SourceKind
    room_id: Id | None = None
    audio_participant: Participant = ""


class StandbyIn(Body):
    override: Override = Field(description="auto: the switcher decides; primary/standby: forced")


class ChannelOut(BaseModel):
    id: int
    account_id: int
    title: str
    language: str
    state: State
    source_kind: str
    room_id: int | None
    meeting_id: int | None
    audio_participant: str
    standby_kind: str
    standby_video_id: int | None
    standby_override: str
    rtmp_url: str | None = Field(description="masked: the stream key is never shown again")
    show_viewer_count: bool
    viewer_url: str = Field(description="the public viewer page")
    actions: list[str] = Field(description="the console actions the state allows now")
    created_at: datetime
    rehearsal_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    archived_at: datetime | None
    updated_at: datetime
    engine: EngineStatus | None


class ChannelFilter(ListQuery):
    account_id: Id | None = None
    state: State | None = None


class StaffTokenOut(BaseModel):
    token: str
    expires_at: datetime
    url: str = Field(description="the viewer page with the staff token: plays the rehearsal")


class Point(BaseModel):
    start: datetime
    peak: int


class StatisticsOut(BaseModel):
    channel_id: int
    phases: list[str]
    peak_concurrency: int = Field(description="the largest 10-second sample of distinct viewers")
    peak_at: datetime | None
    unique_viewers: int = Field(description="distinct viewer ids")
    views: int = Field(description="viewer sessions that played at least one segment")
    watch_minutes: float
    devices: dict[str, int] = Field(description="views per device class: desktop, phone, tablet, other")
    browsers: dict[str, int]
    systems: dict[str, int]
    series: list[Point] = Field(description="peak concurrency per 5-minute bucket")


class StatisticsQuery(Body):
    phase: Literal["public", "live", "replay", "rehearsal"] = Field(
        default="public", description="public: live and replay together (rehearsal is never public)"
    )


def _phases(name: str) -> frozenset[str]:
    return PUBLIC_PHASES if name == "public" else frozenset({name})


def _service(request: web.Request) -> LiveService | None:
    return request.app.get(LIVE_SERVICE)


def _out(request: web.Request, channel: LiveChannel) -> ChannelOut:
    service = _service(request)
    return ChannelOut(
        id=channel.id,
        account_id=channel.account_id,
        title=channel.title,
        language=channel.language,
        state=channel.state,
        source_kind=channel.source_kind,
        room_id=channel.room_id,
        meeting_id=channel.meeting_id,
        audio_participant=channel.audio_participant,
        standby_kind=channel.standby_kind,
        standby_video_id=channel.standby_video_id,
        standby_override=channel.standby_override,
        rtmp_url=mask_url(channel.rtmp_url),
        show_viewer_count=channel.show_viewer_count,
        viewer_url=f"/live/{channel.id}",
        actions=[a for a, moves in ACTIONS.items() if channel.state in moves],
        created_at=channel.created_at,
        rehearsal_at=channel.rehearsal_at,
        started_at=channel.started_at,
        ended_at=channel.ended_at,
        archived_at=channel.archived_at,
        updated_at=channel.updated_at,
        engine=service.status(channel.id) if service is not None else None,
    )


def _require_editor(who: Principal) -> None:
    if who.user.role not in ("admin", "organizer"):
        raise ApiError(403, "forbidden", "this needs the admin or organizer role")


async def _channel(request: web.Request) -> tuple[Principal, LiveChannel]:
    who = principal(request)
    async with request.app[DB].session() as session:
        channel = await owned(session, LiveChannel, path_id(request, "channel_id"), who)
    return who, channel


# --- channels --------------------------------------------------------------------------------------------


@api.op(
    "GET", "/live", summary="List live channels", tag=TAG, response=ChannelOut, many=True, query=ChannelFilter
)
async def list_channels(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, ChannelFilter)
    query = select(LiveChannel).order_by(LiveChannel.id.desc()).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(LiveChannel.account_id == account_id)
    if q.state is not None:
        query = query.where(LiveChannel.state == q.state)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([_out(request, r) for r in rows])


@api.op(
    "POST",
    "/live",
    summary="Create a live channel (draft)",
    tag=TAG,
    body=ChannelIn,
    response=ChannelOut,
    status=201,
)
async def create_channel(request: web.Request) -> web.Response:
    who = principal(request)
    _require_editor(who)
    body = await parse_body(request, ChannelIn)
    fields = store.ChannelFields(
        title=body.title,
        language=body.language,
        source_kind=body.source_kind,
        room_id=body.room_id,
        audio_participant=body.audio_participant,
        standby_kind=body.standby_kind,
        standby_video_id=body.standby_video_id,
        rtmp_url=body.rtmp_url,
        show_viewer_count=body.show_viewer_count,
    )
    channel = await store.create(
        request.app[DB],
        account_id=who.target_account(body.account_id),
        fields=fields,
        now=request.app[CLOCK](),
    )
    return send(_out(request, channel), 201)


@api.op("GET", "/live/{channel_id:[0-9]+}", summary="Get a live channel", tag=TAG, response=ChannelOut)
async def get_channel(request: web.Request) -> web.Response:
    _, channel = await _channel(request)
    return send(_out(request, channel))


@api.op(
    "PATCH",
    "/live/{channel_id:[0-9]+}",
    summary="Change a live channel's title, language, standby or RTMP push",
    tag=TAG,
    body=ChannelPatch,
    response=ChannelOut,
)
async def patch_channel(request: web.Request) -> web.Response:
    who, channel = await _channel(request)
    _require_editor(who)
    body = await parse_body(request, ChannelPatch)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "rtmp_url" in changes and channel.state in ("rehearsal", "live"):
        raise ApiError(409, "bad_state", "the RTMP push is set before the channel runs", "rtmp_url")
    for name in ("title", "language", "standby_kind", "show_viewer_count"):
        if name in changes and changes[name] is None:
            raise ApiError(422, "invalid", f"{name}: cannot be null", name)
    updated = await store.change(request.app[DB], channel.id, changes, now=request.app[CLOCK]())
    service = _service(request)
    standby = {"standby_kind", "standby_video_id"} & set(changes)
    if service is not None and updated.state in ("rehearsal", "live") and standby:
        await service.reconfigure(updated)
    return send(_out(request, updated))


@api.op(
    "DELETE",
    "/live/{channel_id:[0-9]+}",
    summary="Delete a live channel that is not running (admin)",
    tag=TAG,
    status=204,
)
async def delete_channel(request: web.Request) -> web.Response:
    who, channel = await _channel(request)
    who.require_admin()
    removed = await store.remove(request.app[DB], channel.id)
    service = _service(request)
    if service is not None and removed.directory:
        # After the commit: a crash in between leaves a directory no row names (harmless, never served).
        await service.remove_files(removed.directory)
    return web.Response(status=204)


@api.op(
    "PUT",
    "/live/{channel_id:[0-9]+}/source",
    summary="Set the channel's source (switched on air while it runs)",
    tag=TAG,
    body=SourceIn,
    response=ChannelOut,
)
async def put_source(request: web.Request) -> web.Response:
    who, channel = await _channel(request)
    _require_editor(who)
    body = await parse_body(request, SourceIn)
    changes = {"source_kind": body.source_kind, "room_id": body.room_id,
               "audio_participant": body.audio_participant}  # fmt: skip
    updated = await store.change(request.app[DB], channel.id, changes, now=request.app[CLOCK]())
    service = _service(request)
    if service is not None and updated.state in ("rehearsal", "live"):
        await service.reconfigure(updated)
    return send(_out(request, updated))


@api.op(
    "PUT",
    "/live/{channel_id:[0-9]+}/standby",
    summary="Override the hot standby (auto, primary or standby)",
    tag=TAG,
    body=StandbyIn,
    response=ChannelOut,
)
async def put_standby(request: web.Request) -> web.Response:
    who, channel = await _channel(request)
    _require_editor(who)
    body = await parse_body(request, StandbyIn)
    updated = await store.set_override(request.app[DB], channel.id, body.override, now=request.app[CLOCK]())
    service = _service(request)
    if service is not None:
        await service.reconfigure(updated)
    return send(_out(request, updated))


# --- the console's actions -------------------------------------------------------------------------------


async def _act(request: web.Request, action: str) -> web.Response:
    who, channel = await _channel(request)
    _require_editor(who)
    next_state(channel.state, action)  # a clear 409 before anything starts or stops
    db, now = request.app[DB], request.app[CLOCK]
    service = _service(request)
    if action in ("rehearse", "go_live", "stop") and service is None:
        raise ApiError(409, "unavailable", "this server runs no live channels")
    assert service is not None or action == "archive"
    if action == "archive":
        channel = await store.act(db, channel.id, action, now=now())
    elif action == "stop":
        assert service is not None
        await service.stop(channel, end=channel.state == "live")
        channel = await store.act(db, channel.id, action, now=now())
    elif channel.state == "draft":
        assert service is not None
        directory, meeting_id = await service.start(channel)
        try:
            if action == "go_live":
                await service.go_live(channel)
            channel = await store.act(db, channel.id, action, now=now(), directory=directory,
                                      meeting_id=meeting_id)  # fmt: skip
        except BaseException:
            await service.stop(channel, end=False)  # another request moved it meanwhile: this run goes
            raise
    else:  # go_live from rehearsal: the running engine goes public, no restart
        assert service is not None
        await service.go_live(channel)
        channel = await store.act(db, channel.id, action, now=now())
    return send(_out(request, channel))


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/rehearse",
    summary="Start a rehearsal: the pipeline runs, staff watch",
    tag=TAG,
    response=ChannelOut,
)
async def rehearse(request: web.Request) -> web.Response:
    return await _act(request, "rehearse")


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/go-live",
    summary="Go live: the channel becomes public (no restart)",
    tag=TAG,
    response=ChannelOut,
)
async def go_live(request: web.Request) -> web.Response:
    return await _act(request, "go_live")


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/stop",
    summary="Stop: a live channel ends (its EVENT playlist is the replay); a rehearsal goes back to draft",
    tag=TAG,
    response=ChannelOut,
)
async def stop(request: web.Request) -> web.Response:
    return await _act(request, "stop")


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/archive",
    summary="Archive an ended channel (the public replay is withdrawn)",
    tag=TAG,
    response=ChannelOut,
)
async def archive(request: web.Request) -> web.Response:
    return await _act(request, "archive")


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/staff-token",
    summary="A staff token: watch the channel during rehearsal",
    tag=TAG,
    response=StaffTokenOut,
    status=201,
)
async def staff_token(request: web.Request) -> web.Response:
    who, channel = await _channel(request)
    _require_editor(who)
    token, expires_at = sign_staff(
        request.app[SECRET_KEY], channel_id=channel.id, user_id=who.user.id, now=request.app[CLOCK]()
    )
    return send(
        StaffTokenOut(token=token, expires_at=expires_at, url=f"/live/{channel.id}?staff={token}"), 201
    )


# --- statistics ------------------------------------------------------------------------------------------


def _statistics_out(channel_id: int, phases: frozenset[str], summary: Summary) -> StatisticsOut:
    return StatisticsOut(
        channel_id=channel_id,
        phases=sorted(phases),
        peak_concurrency=summary.peak_concurrency,
        peak_at=summary.peak_at,
        unique_viewers=summary.unique_viewers,
        views=summary.views,
        watch_minutes=summary.watch_minutes,
        devices=summary.devices,
        browsers=summary.browsers,
        systems=summary.systems,
        series=[Point(start=p.start, peak=p.peak) for p in summary.series],
    )


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/statistics",
    summary="Viewer statistics: peak concurrency, unique viewers, views, watch minutes, devices, series",
    tag=TAG,
    response=StatisticsOut,
    query=StatisticsQuery,
)
async def statistics(request: web.Request) -> web.Response:
    _, channel = await _channel(request)
    phases = _phases(parse_query(request, StatisticsQuery).phase)
    await flush_activity(request)
    viewings, samples = await store.viewings(request.app[DB], channel.id)
    return send(_statistics_out(channel.id, phases, summarize(viewings, samples, phases=phases)))


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/statistics/csv",
    summary="Export the statistics as CSV: the summary, then the concurrency per 5-minute bucket",
    tag=TAG,
    query=StatisticsQuery,
    content_type="text/csv",
)
async def statistics_csv(request: web.Request) -> web.Response:
    _, channel = await _channel(request)
    phases = _phases(parse_query(request, StatisticsQuery).phase)
    await flush_activity(request)
    viewings, samples = await store.viewings(request.app[DB], channel.id)
    s = summarize(viewings, samples, phases=phases)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["metric", "value"])
    writer.writerow(["phases", " ".join(sorted(phases))])
    writer.writerow(["peak_concurrency", s.peak_concurrency])
    writer.writerow(["peak_at", s.peak_at.isoformat() if s.peak_at else ""])
    writer.writerow(["unique_viewers", s.unique_viewers])
    writer.writerow(["views", s.views])
    writer.writerow(["watch_minutes", s.watch_minutes])
    for group, counts in (("device", s.devices), ("browser", s.browsers), ("os", s.systems)):
        for name, n in counts.items():
            writer.writerow([f"{group}:{name}", n])
    writer.writerow([])
    writer.writerow(["bucket_start_utc", "peak_concurrency"])
    for p in s.series:
        writer.writerow([p.start.isoformat(), p.peak])
    writer.writerow([])
    writer.writerow(["viewer_id", "phase", "device", "browser", "os", "first_seen", "last_seen", "segments",
                     "watch_seconds"])  # fmt: skip
    for v in sorted(viewings, key=lambda v: v.first_seen):
        if v.phase in phases:
            writer.writerow([v.viewer_id, v.phase, v.device_class, v.browser, v.os, v.first_seen.isoformat(),
                             v.last_seen.isoformat(), v.segments, round(watch_seconds(v))])  # fmt: skip
    return web.Response(
        body=out.getvalue().encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="live-{channel.id}-statistics.csv"'},
    )


__all__ = ["LIVE_SERVICE", "EngineStatus", "LiveService", "api"]

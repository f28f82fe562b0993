"""Commands to a meeting from any worker (issue #20, research/scale-out.md §4.7): internal HTTP.

A meeting lives in one worker's memory. A REST call that reaches another worker (an admin ends a meeting,
mutes or removes a participant, lists the live meetings) is answered here: in this process when the meeting
is here, else forwarded to the owner the registry names, over plain request/response HTTP to the owner's
``/internal/`` routes — no second message bus. Every internal request is signed (HMAC-SHA256 of the method,
path, a timestamp and the body, with ``workers.internal_secret`` or a key derived from the shared secret
key); an unsigned, stale or forged one is refused with 401, so the routes are safe even where nginx would
pass them (deploy/nginx-cluster.conf does not).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Meeting
from signaling.messages import EndReason, Source
from signaling.moderation import forwarded
from signaling.ports import ActedBy
from signaling.server import MeetingServer
from web.api.base import LIVE, ApiError
from web.api.live_meetings import (
    LIVE_CONTROL,
    ActionOutcome,
    LiveMeetingOut,
    LiveParticipantOut,
    LiveStatusOut,
    LiveWorkerOut,
    ParticipantAction,
)
from yunhui import bus
from yunhui.cluster import REGISTRY, slot_name
from yunhui.placement import WorkerView
from yunhui.settings import WorkerSettings

log = logging.getLogger(__name__)

PREFIX = "/internal"
TIME_HEADER = "X-Yunhui-Internal-Time"
SIGNATURE_HEADER = "X-Yunhui-Internal-Signature"
# A signed request older (or newer) than this is refused: a captured one cannot be replayed later.
MAX_SKEW_SECONDS = 30.0
# An admin action waits this long for the owner (ending a meeting tells every participant first).
ACTION_TIMEOUT_SECONDS = 15.0


class WorkerUnreachable(Exception):
    """The meeting's owner did not answer an internal call (the REST API says 502)."""


def internal_secret(settings: WorkerSettings, secret_key: str) -> bytes:
    if settings.internal_secret is not None:
        return settings.internal_secret.get_secret_value().encode()
    return hmac.new(secret_key.encode(), b"yunhui.internal.v1", hashlib.sha256).digest()


def sign(secret: bytes, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = b"\n".join((method.upper().encode(), path.encode(), timestamp.encode(), body))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class _ActionIn(BaseModel):
    user_id: int


class _LocalList(BaseModel):
    worker: str
    meetings: list[LiveMeetingOut]


class LocalMeetings:
    """The meetings live in this process."""

    def __init__(self, meetings: MeetingServer, worker: str) -> None:
        self._meetings = meetings
        self.worker = worker

    async def end(self, meeting_id: int) -> bool:
        conference = self._meetings.conference_by_meeting(meeting_id)
        if conference is None:
            return False
        await conference.close(EndReason.HOST_ENDED)
        return True

    def act(
        self, meeting_id: int, participant_id: str, action: ParticipantAction, user_id: int
    ) -> ActionOutcome:
        conference = self._meetings.conference_by_meeting(meeting_id)
        if conference is None or conference.ending:
            return ActionOutcome.NO_MEETING
        target = conference.participant(participant_id)
        if target is None or not target.ready or target.closing:
            return ActionOutcome.NO_PARTICIPANT
        conference.log.info("admin user %d: %s %s", user_id, action.value, participant_id)
        if action is ParticipantAction.MUTE:
            conference.moderation.hold(target, Source.MIC)
        else:
            conference.moderation.remove(target, ActedBy(f"admin:{user_id}", "", "admin", user_id))
        return ActionOutcome.DONE

    def live(self) -> list[LiveMeetingOut]:
        found = []
        for conference in self._meetings.conferences():
            if conference.meeting_id is None or conference.ending:
                continue
            people = [
                LiveParticipantOut(
                    id=p.id,
                    display_name=p.display_name,
                    kind=p.kind.value,
                    role=p.role.value,
                    mic_muted=not forwarded(p, Source.MIC),
                    mic_held=Source.MIC in p.held,
                )
                for p in conference.participants()
                if p.ready
            ]
            room = conference.room
            found.append(
                LiveMeetingOut(
                    meeting_id=conference.meeting_id,
                    room_id=room.room_id,
                    account_id=room.account_id,
                    room_name=room.name,
                    worker=self.worker,
                    participants=people,
                )
            )
        return found


class InternalClient:
    """Signed HTTP calls to other workers; owns one aiohttp session, ``close()`` is idempotent."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def call(
        self, worker: WorkerView, method: str, path: str, body: dict[str, Any] | None, *, seconds: float
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        data = b"" if body is None else json.dumps(body).encode()
        timestamp = f"{time.time():.3f}"
        headers = {
            TIME_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, method, path, timestamp, data),
            "Content-Type": "application/json",
        }
        url = f"http://{worker.address}:{worker.http_port}{path}"
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as response:
                if response.status != 200:
                    raise WorkerUnreachable(f"worker {worker.id} answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WorkerUnreachable(
                f"worker {worker.id} did not answer: {exc or type(exc).__name__}"
            ) from None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class ClusterMeetings:
    """The REST API's live meetings for the whole service: here, or forwarded to the owner."""

    def __init__(
        self,
        local: LocalMeetings,
        database: Database,
        client: InternalClient,
        settings: WorkerSettings,
        registry: Callable[[], Any],
    ) -> None:
        self._local = local
        self._database = database
        self._client = client
        self._settings = settings
        self._registry = registry  # the cluster's Registry, or None for the single process

    async def _owner(self, meeting_id: int) -> WorkerView | None:
        """Another worker owning the meeting's room; None when the meeting is here or nowhere."""
        registry = self._registry()
        if registry is None:
            return None
        async with self._database.session() as session:
            room_id = await session.scalar(select(Meeting.room_id).where(Meeting.id == meeting_id))
        if room_id is None:
            return None
        try:
            owner = await registry.owner(room_id)
        except Exception as exc:  # Redis away: the meeting cannot be found elsewhere
            raise ApiError(503, "unavailable", f"the cluster registry is unreachable: {exc}") from None
        if owner is None or owner.worker.id == registry.worker_id:
            return None
        worker: WorkerView = owner.worker
        return worker

    async def _forward(self, worker: WorkerView, path: str, body: dict[str, Any] | None) -> Any:
        try:
            return await self._client.call(worker, "POST", path, body, seconds=ACTION_TIMEOUT_SECONDS)
        except WorkerUnreachable as exc:
            log.warning("forwarding %s failed: %s", path, exc)
            raise ApiError(
                502, "worker_unreachable", f"the meeting's worker did not answer ({exc})"
            ) from None

    async def end(self, meeting_id: int) -> bool:
        if await self._local.end(meeting_id):
            return True
        owner = await self._owner(meeting_id)
        if owner is None:
            return False
        answer = await self._forward(owner, f"{PREFIX}/meetings/{meeting_id}/end", None)
        return bool(answer.get("ended")) if isinstance(answer, dict) else False

    async def act(
        self, meeting_id: int, participant_id: str, action: ParticipantAction, *, user_id: int
    ) -> ActionOutcome:
        outcome = self._local.act(meeting_id, participant_id, action, user_id)
        if outcome is not ActionOutcome.NO_MEETING:
            return outcome
        owner = await self._owner(meeting_id)
        if owner is None:
            return outcome
        path = f"{PREFIX}/meetings/{meeting_id}/participants/{participant_id}/{action.value}"
        answer = await self._forward(owner, path, {"user_id": user_id})
        try:
            return ActionOutcome(str(answer.get("outcome")) if isinstance(answer, dict) else "")
        except ValueError:
            raise ApiError(502, "worker_unreachable", "the meeting's worker gave no outcome") from None

    async def status(self) -> LiveStatusOut:
        mine = self._local.live()
        registry = self._registry()
        if registry is None:
            return LiveStatusOut(meetings=mine, workers=[LiveWorkerOut(worker=self._local.worker,
                                 reachable=True, meetings=len(mine))])  # fmt: skip
        try:
            views: list[WorkerView] = await registry.workers()
        except Exception as exc:  # Redis away: what this worker knows, and why the rest is missing
            log.warning("live list: the registry is unreachable (%s)", exc)
            views = []
        others = [v for v in views if v.id != registry.worker_id]
        answers = await asyncio.gather(*(self._list(v) for v in others))
        meetings = list(mine)
        workers = [LiveWorkerOut(worker=self._local.worker, reachable=True, meetings=len(mine))]
        for view, answer in zip(others, answers, strict=True):
            if isinstance(answer, str):
                workers.append(LiveWorkerOut(worker=view.id, reachable=False, meetings=0, error=answer))
            else:
                meetings.extend(answer)
                workers.append(LiveWorkerOut(worker=view.id, reachable=True, meetings=len(answer)))
        meetings.sort(key=lambda m: m.meeting_id)
        return LiveStatusOut(meetings=meetings, workers=sorted(workers, key=lambda w: w.worker))

    async def _list(self, worker: WorkerView) -> list[LiveMeetingOut] | str:
        """A worker's live meetings, or why it did not answer within the fan-out timeout."""
        timeout = self._settings.internal_timeout_seconds
        try:
            answer = await self._client.call(worker, "GET", f"{PREFIX}/live", None, seconds=timeout)
            return _LocalList.model_validate(answer).meetings
        except WorkerUnreachable as exc:
            return str(exc)
        except ValidationError:
            return f"worker {worker.id} sent a list this worker cannot read (another version?)"


def _verifier(secret: bytes) -> Middleware:
    @web.middleware
    async def verify(request: web.Request, handler: Handler) -> web.StreamResponse:
        timestamp = request.headers.get(TIME_HEADER, "")
        given = request.headers.get(SIGNATURE_HEADER, "")
        try:
            skew = abs(time.time() - float(timestamp))
        except ValueError:
            skew = float("inf")
        body = await request.read()
        expected = sign(secret, request.method, request.path_qs, timestamp, body)
        if skew > MAX_SKEW_SECONDS or not hmac.compare_digest(given, expected):
            return web.json_response(
                {"code": "unauthorized", "message": "internal calls must be signed by a worker"}, status=401
            )
        return await handler(request)

    return verify


def _internal_app(local: LocalMeetings, secret: bytes) -> web.Application:
    app = web.Application(middlewares=[_verifier(secret)])
    routes = web.RouteTableDef()

    def meeting_id(request: web.Request) -> int | None:
        raw = request.match_info["meeting_id"]
        return int(raw) if raw.isdigit() and len(raw) < 12 else None

    @routes.get("/live")
    async def live(request: web.Request) -> web.Response:
        return web.json_response(
            _LocalList(worker=local.worker, meetings=local.live()).model_dump(mode="json")
        )

    @routes.post("/meetings/{meeting_id}/end")
    async def end(request: web.Request) -> web.Response:
        found = meeting_id(request)
        return web.json_response({"ended": found is not None and await local.end(found)})

    @routes.post("/meetings/{meeting_id}/participants/{participant_id}/{action}")
    async def act(request: web.Request) -> web.Response:
        found = meeting_id(request)
        try:
            action = ParticipantAction(request.match_info["action"])
            body = _ActionIn.model_validate_json(await request.read())
        except (ValueError, ValidationError) as exc:
            return web.json_response({"code": "invalid", "message": str(exc)}, status=400)
        if found is None:
            return web.json_response({"outcome": ActionOutcome.NO_MEETING.value})
        outcome = local.act(found, request.match_info["participant_id"], action, body.user_id)
        return web.json_response({"outcome": outcome.value})

    app.add_routes(routes)
    return app


def install(
    app: web.Application,
    api: web.Application,
    settings: WorkerSettings,
    *,
    meetings: MeetingServer,
    database: Database,
    secret_key: str,
) -> None:
    """The REST API's live meetings (LIVE, LIVE_CONTROL) and the signed /internal/ routes; in a cluster the
    registry (installed later by yunhui.cluster) is looked up when a call comes."""
    secret = internal_secret(settings, secret_key)
    worker = slot_name(settings) if settings.worker_id is None else str(settings.worker_id)
    local = LocalMeetings(meetings, worker)
    client = InternalClient(secret)
    control = ClusterMeetings(local, database, client, settings, lambda: app.get(REGISTRY))
    api[LIVE] = control
    api[LIVE_CONTROL] = control
    app.add_subapp(PREFIX, _internal_app(local, secret))
    bus.install(app, settings)  # announcements to every worker's meetings (after notifications.install)

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await client.close()

    app.cleanup_ctx.append(client_ctx)

"""MeetingServer: the Socket.IO handlers (parse, then enqueue) and the registry of live conferences."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import socketio

from rooms.policy import Kind
from signaling.admission import Identity, resolve
from signaling.attempts import AttemptLimiter, Backoff, Failure, client_address
from signaling.clock import LoopScheduler, Scheduler
from signaling.conference import Conference
from signaling.errors import ErrorCode, JoinRefused, ProtocolError, RefusalCode
from signaling.files import FileLinks, FileStore
from signaling.location import Placement
from signaling.messages import (
    JSON,
    SYSTEM_ROLES,
    JoinRequest,
    LeaveReason,
    PasscodeJoin,
    Reconnect,
    Role,
    TokenJoin,
    parse,
    parse_auth,
)
from signaling.participant import CLOSE_TIMEOUT, Close, Participant
from signaling.ports import MediaAttach, MeetingStore, RoomView, SfuPort
from signaling.recording import RecordingPort
from signaling.settings import SignalingSettings
from signaling.sip_dial import SipDialPort
from signaling.socketio_server import RESERVED_EVENTS, JsonPacket, SocketIOServer, socketio_server

__all__ = ["JsonPacket", "MediaSession", "MeetingServer", "SipJoin", "SocketServer", "socketio_server"]

logger = logging.getLogger(__name__)


class SocketServer(Protocol):
    """The part of socketio.AsyncServer this package uses."""

    def on(
        self, event: str, handler: Callable[..., object] | None = None, namespace: str | None = None
    ) -> object: ...
    async def emit(self, event: str, data: object = None, to: str | None = None) -> None: ...
    async def disconnect(self, sid: str) -> None: ...


class _SocketTransport:
    def __init__(self, sio: SocketServer) -> None:
        self._sio = sio

    async def emit(self, event: str, data: dict[str, JSON], sid: str) -> None:
        await self._sio.emit(event, data, to=sid)

    async def disconnect(self, sid: str) -> None:
        await self._sio.disconnect(sid)

    def unsent_bytes(self, sid: str) -> int:
        return self._sio.unsent_bytes(sid) if isinstance(self._sio, SocketIOServer) else 0

    async def abort(self, sid: str) -> None:
        if isinstance(self._sio, SocketIOServer):
            await self._sio.abort(sid)
        else:
            await self._sio.disconnect(sid)


def _refuse(
    code: RefusalCode, message: str, retry_after: int | None = None, worker: str | None = None
) -> socketio.exceptions.ConnectionRefusedError:
    # The client sees {"message": message, "data": {"code": code, "message": message}} (connect_error).
    data: dict[str, object] = {"code": code.value, "message": message}
    if retry_after is not None:
        data["retry_after"] = retry_after
    if worker is not None:
        data["worker"] = worker
    return socketio.exceptions.ConnectionRefusedError(message, data)


def _attempt_limiter(settings: SignalingSettings) -> AttemptLimiter:
    def backoff(free: int) -> Backoff:
        return Backoff(
            free=free,
            base=timedelta(seconds=settings.passcode_backoff_base_seconds),
            cap=timedelta(seconds=settings.passcode_backoff_max_seconds),
            forgive=timedelta(seconds=settings.passcode_forgive_seconds),
        )

    return AttemptLimiter(
        per_address=backoff(settings.passcode_free_failures_per_address),
        per_meeting=backoff(settings.passcode_free_failures_per_meeting),
        max_keys=settings.passcode_tracked_keys,
    )


_COUNTED_FAILURES = {
    RefusalCode.WRONG_PASSCODE: Failure.WRONG_PASSCODE,
    RefusalCode.NO_SUCH_MEETING: Failure.NO_SUCH_MEETING,
}


@dataclass(frozen=True, slots=True)
class MediaSession:
    """A WHIP publisher or WHEP viewer admitted as a participant; ``id`` names its SFU peer too."""

    id: str
    meeting_id: str
    kind: Literal["whip", "viewer"]


@dataclass(frozen=True, slots=True)
class SipJoin:
    """A SIP call asking to join a meeting (signaling/sip/call.py): what it dialled or typed, who it is."""

    meeting_number: str
    passcode: str | None  # None: none given yet (a room with a passcode refuses, uncounted)
    display_name: str  # the Endpoint's name: what the browsers show
    address: str  # the terminal's IP, for the passcode attempt limits
    attach: MediaAttach
    endpoint_id: int | None = None
    user_agent: str = ""
    # Dialled out by a moderator: the invitation stands in for the passcode (the lobby is the caller's).
    invited: bool = False


class MeetingServer:
    """Live meetings over Socket.IO. Owns every Conference; ``close()`` ends them all."""

    def __init__(
        self,
        sio: SocketServer,
        *,
        sfu: SfuPort,
        store: MeetingStore,
        settings: SignalingSettings,
        secret_key: str,
        clock: Callable[[], datetime],
        scheduler: Scheduler | None = None,
        files_prefix: str = "/files",
        client_address: Callable[[Any], str] | None = None,
    ) -> None:
        if isinstance(sio, socketio.AsyncServer) and not isinstance(sio, SocketIOServer):
            # A plain AsyncServer hands a client's "connect" event to _on_connect: ghost participants.
            raise TypeError("MeetingServer needs signaling.server.socketio_server(), not a plain AsyncServer")
        self.settings = settings
        # The request -> client address function of the app (trusted proxies); None: the TCP peer.
        self._client_address = client_address
        self.scheduler = scheduler or LoopScheduler(clock)
        if settings.files_dir is None:
            raise ValueError("signaling settings: files_dir must be set (the composition root fills it in)")
        self.files = FileStore(settings.files_dir)
        self.links = FileLinks(
            secret_key, prefix=files_prefix, ttl=timedelta(seconds=settings.file_retention_seconds)
        )
        self._sio = sio
        self._transport = _SocketTransport(sio)
        self._sfu = sfu
        self._store = store
        self._secret_key = secret_key
        self._conferences: dict[int, Conference] = {}
        self._by_sid: dict[str, Participant] = {}
        self.attempts = _attempt_limiter(settings)
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        # Recording in meetings (yunhui/recordings.py sets it); None: start_recording is refused.
        self.recordings: RecordingPort | None = None
        # The SIP gateway for a moderator's sip_dial (set by yunhui/sip.py when SIP is enabled).
        self.sip_dialer: SipDialPort | None = None
        # Where meetings live in a cluster (yunhui/cluster.py sets it); None: every meeting is local.
        self.placement: Placement | None = None
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("*", self._on_event)

    def start(self) -> None:
        """Start the background sweep of expired shared files (call once the event loop runs)."""
        if self._sweeper is None and not self._closing:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="signaling-file-sweeper")

    async def close(self) -> None:
        """End every live meeting (reason "server_shutdown"), then stop; idempotent."""
        self._closing = True
        await asyncio.gather(*(c.close() for c in list(self._conferences.values())))
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    def conference_by_meeting(self, meeting_id: int) -> Conference | None:
        for conference in self._conferences.values():
            if conference.meeting_id == meeting_id:
                return conference
        return None

    def conferences(self) -> list[Conference]:
        return list(self._conferences.values())

    # --- media sessions (WHIP/WHEP over HTTP): participants without a Socket.IO connection ---

    async def admit_media_session(
        self, token: str, kind: Literal["whip", "viewer"], *, user_agent: str = ""
    ) -> MediaSession:
        """Admit a WHIP publisher ("whip", counted) or WHEP viewer ("viewer") with a join token.

        Returns once it has joined: the meeting is started, its Attendance recorded and its SFU peer (named
        by the session id) exists. Raises JoinRefused like a Socket.IO join."""
        if self._closing:
            raise JoinRefused(RefusalCode.SERVER_CLOSING, "the server is restarting; try again shortly")
        name = "WHIP" if kind == "whip" else "WHEP"
        identity = await resolve(
            TokenJoin(token, name), store=self._store, secret_key=self._secret_key, now=self.scheduler.now()
        )
        if kind == "whip" and identity.role in SYSTEM_ROLES:
            raise JoinRefused(
                RefusalCode.NOT_AUTHORISED, f"a {identity.role.value}'s join token cannot publish"
            )
        if self._closing:
            raise JoinRefused(RefusalCode.SERVER_CLOSING, "the server is restarting; try again shortly")
        conference = self._conference_for(identity.room)
        try:
            participant = conference.join_media(
                identity,
                kind=Kind.WHIP if kind == "whip" else Kind.VIEWER,
                user_agent=user_agent,
                transport=self._transport,
            )
        finally:
            if conference.is_idle():
                self._forget(conference)
        try:
            joined = await asyncio.wait_for(participant.wait_joined(), CLOSE_TIMEOUT)
        except TimeoutError:
            joined = False
        if not joined or conference.meeting_id is None:
            await participant.close(LeaveReason.ERROR)
            raise JoinRefused(RefusalCode.UNAVAILABLE, "the meeting service is unavailable; try again")
        return MediaSession(participant.id, str(conference.meeting_id), kind)

    async def end_media_session(self, session_id: str, reason: str = "left") -> None:
        """The media session left (reason "left", "connection_lost" or "error"); idempotent."""
        for conference in list(self._conferences.values()):
            participant = conference.participant(session_id)
            if participant is not None and participant.media_session:
                try:
                    leave = LeaveReason(reason)
                except ValueError:
                    leave = LeaveReason.ERROR
                await participant.close(leave)
                return

    # --- SIP calls: participants whose media are a plain RTP leg (signaling/sip/call.py) ---

    async def admit_sip(self, request: SipJoin) -> Participant:
        """Seat a SIP call in its meeting (joining, or in the lobby) through the same policy and passcode
        attempt limits as a browser; raises JoinRefused. The caller then awaits ``wait_joined``."""
        if self._closing:
            raise JoinRefused(RefusalCode.SERVER_CLOSING, "the server is restarting; try again shortly")
        number, now = request.meeting_number, self.scheduler.now()
        room = await self._store.room_by_number(number, now=now)
        if room is not None and room.terms.passcode and request.passcode is None and not request.invited:
            # Not a guess: the terminal dialled the bare number and is asked for the passcode next.
            raise JoinRefused(RefusalCode.WRONG_PASSCODE, "this meeting needs a passcode")
        verdict = self.attempts.begin(address=request.address, meeting_number=number, now=now)
        if not verdict.allowed:
            seconds = verdict.retry_after_seconds
            raise JoinRefused(
                RefusalCode.TOO_MANY_ATTEMPTS,
                f"too many failed attempts; try again in {seconds} s",
                retry_after=seconds,
            )
        failure: Failure | None = None
        try:
            if room is None:
                raise JoinRefused(RefusalCode.NO_SUCH_MEETING, f"there is no meeting {number}")
            principal = None if request.endpoint_id is None else f"endpoint:{request.endpoint_id}"
            identity = Identity(
                room,
                Role.PARTICIPANT,
                request.display_name,
                None,
                request.invited,
                request.passcode,
                principal=principal,
                credential="passcode",
                endpoint_id=request.endpoint_id,
            )
            conference = self._conference_for(room)
            try:
                return conference.join_sip(identity, user_agent=request.user_agent, attach=request.attach)
            finally:
                if conference.is_idle():
                    self._forget(conference)
        except JoinRefused as exc:
            failure = _COUNTED_FAILURES.get(exc.code)
            raise
        finally:
            self.attempts.end(
                address=request.address, meeting_number=number, failure=failure, now=self.scheduler.now()
            )

    # --- Socket.IO handlers: parse, then enqueue; they never wait on another client ---

    async def _on_connect(self, sid: str, environ: Mapping[str, object], auth: object = None) -> None:
        if self._closing:
            raise _refuse(RefusalCode.SERVER_CLOSING, "the server is restarting; try again shortly")
        try:
            request = parse_auth(auth, display_name_max_length=self.settings.display_name_max_length)
        except ProtocolError as exc:
            raise _refuse(RefusalCode.BAD_AUTH, exc.message) from None
        try:
            if isinstance(request, PasscodeJoin):
                await self._passcode_join(sid, environ, request)
            else:
                await self._join(sid, environ, request)
        except JoinRefused as exc:
            logger.info("join refused: %s", exc.code.value)
            raise _refuse(exc.code, exc.message, exc.retry_after, exc.worker) from None

    async def _passcode_join(self, sid: str, environ: Mapping[str, object], request: PasscodeJoin) -> None:
        # Only passcodes can be guessed: join and access tokens are signed, reconnect tokens 256 random bits.
        address = client_address(environ, self._client_address)
        number = request.meeting_number
        verdict = self.attempts.begin(address=address, meeting_number=number, now=self.scheduler.now())
        if not verdict.allowed:
            seconds = verdict.retry_after_seconds
            raise JoinRefused(
                RefusalCode.TOO_MANY_ATTEMPTS,
                f"too many failed attempts; try again in {seconds} s",
                retry_after=seconds,
            )
        failure: Failure | None = None
        try:
            await self._join(sid, environ, request)
        except JoinRefused as exc:
            failure = _COUNTED_FAILURES.get(exc.code)
            raise
        finally:
            now = self.scheduler.now()
            self.attempts.end(address=address, meeting_number=number, failure=failure, now=now)

    async def _join(self, sid: str, environ: Mapping[str, object], request: JoinRequest) -> None:
        user_agent = environ.get("HTTP_USER_AGENT")
        try:
            if isinstance(request, Reconnect):
                await self._reconnect(sid, request.reconnect_token)
                return
            now = self.scheduler.now()
            identity = await resolve(request, store=self._store, secret_key=self._secret_key, now=now)
            if self.placement is not None and identity.room.room_id not in self._conferences:
                await self.placement.admit(identity.room.room_id)
            if self._closing:
                raise JoinRefused(RefusalCode.SERVER_CLOSING, "the server is restarting; try again shortly")
            conference = self._conference_for(identity.room)
            try:
                participant = conference.join(
                    identity,
                    sid=sid,
                    user_agent=user_agent if isinstance(user_agent, str) else "",
                    transport=self._transport,
                )
            finally:
                if conference.is_idle():
                    self._forget(conference)
            self._by_sid[sid] = participant
        except JoinRefused:
            raise
        except Exception:
            logger.exception("join failed")
            raise JoinRefused(
                RefusalCode.UNAVAILABLE, "the meeting service is unavailable; try again"
            ) from None

    async def _reconnect(self, sid: str, token: str) -> None:
        for conference in self._conferences.values():
            participant = conference.by_reconnect_token(token)
            if participant is not None and not conference.ending:
                break
        else:
            raise JoinRefused(RefusalCode.RECONNECT_EXPIRED, "the reconnect window has passed; join again")
        old_sid = participant.sid
        conference.reattached(participant, sid)
        self._by_sid[sid] = participant
        if old_sid is not None and self._by_sid.pop(old_sid, None) is not None:
            # The old connection has not noticed it is dead yet; it must not take the seat back.
            await self._sio.disconnect(old_sid)

    async def _on_disconnect(self, sid: str, reason: object = None) -> None:
        participant = self._by_sid.pop(sid, None)
        if participant is None or participant.closed or participant.sid != sid:
            return
        if participant.ready:
            participant.conference.detached(participant)
        else:
            # In the lobby or still joining: it has no reconnect token yet, so there is no seat to hold.
            participant.post(Close(LeaveReason.LEFT, None))

    async def _on_event(self, event: object, sid: str, *args: object) -> None:
        participant = self._by_sid.get(sid)
        if participant is None:
            return
        name = event if isinstance(event, str) else ""
        data = args[0] if len(args) == 1 else (list(args) if args else None)
        try:
            if name in RESERVED_EVENTS:
                # SocketIOServer routes these here instead of to _on_connect/_on_disconnect.
                raise ProtocolError(
                    ErrorCode.UNKNOWN_EVENT,
                    f"{name!r} is not a client event: a join is the Socket.IO connect itself",
                )
            message = parse(name, data, chat_max_length=self.settings.chat_max_length)
        except ProtocolError as exc:
            participant.protocol_error(exc, name[:40] or None)
            return
        participant.receive(message)

    # --- registry ---

    def _conference_for(self, room: RoomView) -> Conference:
        conference = self._conferences.get(room.room_id)
        if conference is None:
            conference = Conference(
                room,
                sfu=self._sfu,
                store=self._store,
                settings=self.settings,
                scheduler=self.scheduler,
                links=self.links,
                on_closed=self._forget,
                recordings=self.recordings,
            )
            conference.sip_dialer = self.sip_dialer
            self._conferences[room.room_id] = conference
        return conference

    def _forget(self, conference: Conference) -> None:
        if self._conferences.get(conference.room.room_id) is conference:
            del self._conferences[conference.room.room_id]

    async def _sweep_loop(self) -> None:
        retention = timedelta(seconds=self.settings.file_retention_seconds)
        interval = min(max(retention / 10, timedelta(minutes=1)), timedelta(hours=1))
        while True:
            now = self.scheduler.now()
            try:
                removed = await asyncio.to_thread(self.files.sweep, now, retention)
                if removed:
                    logger.info("removed %d expired shared files", removed)
            except OSError:
                logger.exception("sweeping shared files failed")
            wake = asyncio.Event()
            timer = self.scheduler.call_at(now + interval, wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()

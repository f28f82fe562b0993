"""Participant: one connected client in a conference, with one serial inbox and one outbox."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from rooms.policy import Kind
from sfu.errors import SfuError
from sfu.metrics import METRICS
from signaling import sip_dial
from signaling.admission import Identity, kind_of
from signaling.chat import RateLimiter
from signaling.errors import ErrorCode, ProtocolError
from signaling.messages import (
    CLIENT_EVENT_NAMES,
    SYSTEM_ROLES,
    AskUnmute,
    Candidate,
    ChatSend,
    ClaimHost,
    ClientMessage,
    Error,
    Hand,
    Leave,
    LeaveReason,
    MediaFailed,
    MediaState,
    Moderate,
    ParticipantChanged,
    ParticipantInfo,
    PublishAnswer,
    PublishOffer,
    React,
    Removed,
    RestartMedia,
    ServerMessage,
    SipDial,
    SipHangup,
    Source,
    StartRecording,
    StopRecording,
    Subscribe,
    SubscribeAnswer,
    SubscribeOffer,
    TrackInfo,
    VideoSize,
)
from signaling.metrics import SIGNALING_METRICS
from signaling.outbox import Outbox, Transport
from signaling.ports import ActedBy, PeerPort
from signaling.ratelimit import RateLimit

if TYPE_CHECKING:
    from signaling.clock import Timer
    from signaling.conference import Conference
    from signaling.ports import MediaAttach

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0  # a participant that takes longer to leave (stuck SFU or database) is cancelled


# Inbox items besides client messages: actions from the conference, the SFU and the server.
@dataclass(frozen=True, slots=True)
class Admitted:
    pass


@dataclass(frozen=True, slots=True)
class NeedsOffer:
    pass


@dataclass(frozen=True, slots=True)
class Reattached:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """The SFU reports a state of one of this participant's PeerConnections (sfu ConnectionStateChanged)."""

    pc: Literal["publish", "subscribe"]
    state: str


@dataclass(frozen=True, slots=True)
class MediaDead:
    """The media_failed timer ran out (checked again in the inbox: a recovery may have come first)."""


@dataclass(frozen=True, slots=True)
class Close:
    reason: LeaveReason
    farewell: ServerMessage | None


InboxItem = ClientMessage | Admitted | NeedsOffer | Reattached | ConnectionState | MediaDead | Close

# aiortc has no "disconnected": "failed" is ICE consent or DTLS lost; "closed" without our asking is aiortc
# shutting the connection after that.
_DEAD_STATES = frozenset({"failed", "closed"})


class Participant:
    """One client. Everything it does runs in its own task, one inbox item at a time.

    A media session (WHIP publisher, WHEP viewer) is a participant without a Socket.IO connection
    (``sid`` None from the start): it is told nothing, and its HTTP session ends it."""

    def __init__(
        self,
        identity: Identity,
        *,
        conference: Conference,
        transport: Transport,
        sid: str | None,
        user_agent: str,
        in_lobby: bool,
        kind: Kind | None = None,
        id_prefix: str = "",
    ) -> None:
        self.id = id_prefix + secrets.token_hex(8)
        self.identity = identity
        self.kind = kind or kind_of(identity.role)  # Attendance.kind
        self.media_session = sid is None
        self.role = identity.role
        self.display_name = identity.display_name
        self.user_agent = user_agent
        self.sid: str | None = sid
        self.reconnect_token = secrets.token_urlsafe(32)
        self.in_lobby = in_lobby
        self.ready = False  # joined, and visible to the others
        self.closed = False
        self.closing = False  # a Close is queued: the seat can no longer be reclaimed
        self.hand_raised = False
        self.self_muted: set[Source] = set()
        self.held: set[Source] = set()  # stopped by a moderator: the SFU does not forward these
        self.unmute_asked: set[Source] = set()  # held sources this participant asked to have released
        self.tracks: dict[str, TrackInfo] = {}
        self.peer: PeerPort | None = None
        # A SIP leg's media maker (Conference.join_sip), used instead of a WebRTC peer; and who is told of
        # the leave, once it is recorded (the SIP call hangs up).
        self.attach_media: MediaAttach | None = None
        self.on_left: Callable[[LeaveReason], None] | None = None
        self.grace_timer: Timer | None = None
        settings = conference.settings
        window = timedelta(seconds=settings.chat_rate_window_seconds)
        self.chat_limit = RateLimiter(settings.chat_rate_count, window)
        self.reaction_limit = RateLimiter(settings.chat_rate_count, window)
        self.conference = conference
        self._transport = transport
        self._recorded = False  # an open Attendance row exists
        self.removed_by: ActedBy | None = None  # the moderator who removed it, for the audit log
        self._errors = 0
        self._subscribing = False  # the client asked for subscribe offers
        self._offer_outstanding = False
        self._offer_again = False
        self._media_offered = False  # an offer with at least one m-section went to this subscribe connection
        # PeerConnections whose media are dead: "failed" (the SFU saw it fail) or "recovering" (replaced by
        # restart_media, not connected yet). While any is here, media_timer runs towards a media_failed leave.
        self._dead_media: dict[str, Literal["failed", "recovering"]] = {}
        self.media_timer: Timer | None = None
        self._media_deadline: datetime | None = None
        self._inbox: asyncio.Queue[InboxItem] = asyncio.Queue()
        self._queued_events = 0  # client messages in the inbox, bounded by inbox_limit
        self._limits = RateLimit(settings.event_rates)
        self._change_timer: Timer | None = None
        self._change_pending = False
        self._task: asyncio.Task[None] | None = None
        self._joined: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.log = logging.LoggerAdapter(
            logger, {"meeting_id": conference.meeting_id, "participant_id": self.id}
        )
        self._outbox = Outbox(
            transport,
            limit=settings.outbox_limit,
            unsent_bytes_limit=settings.unsent_bytes_limit,
            log=self.log,
        )

    # --- called by the conference and the server (synchronous: never waits on this client) ---

    def start(self) -> None:
        self._outbox.start(f"participant-out:{self.id}")
        self._task = asyncio.create_task(self._run(), name=f"participant:{self.id}")

    def post(self, item: InboxItem) -> None:
        if not self.closed:
            self.closing = self.closing or isinstance(item, Close)
            self._inbox.put_nowait(item)

    def receive(self, message: ClientMessage) -> None:
        """A parsed client event: into the inbox unless its class is over its rate or the inbox is full."""
        if self.closing:
            return  # leaving: nothing it sends matters any more
        event = CLIENT_EVENT_NAMES.get(type(message), "")
        settings = self.conference.settings
        if not self._limits.allow(event, self.conference.scheduler.now()):
            SIGNALING_METRICS.rate_limited[event] += 1
            error = ProtocolError(ErrorCode.RATE_LIMITED, f"too many {event} events; slow down")
            self.protocol_error(error, event)
        elif self._queued_events >= settings.inbox_limit and not isinstance(message, Leave):
            # The buckets bound what arrives; this bounds what waits behind a slow negotiation.
            SIGNALING_METRICS.rate_limited[event] += 1
            self.protocol_error(ProtocolError(ErrorCode.RATE_LIMITED, "too many events queued"), event)
        elif not self.closed:
            self._queued_events += 1
            self.post(message)

    def send(self, message: ServerMessage) -> None:
        """Queue a message for the client; dropped while it is disconnected (it gets a snapshot back)."""
        if self.sid is None or self.closed:
            return
        if not self._outbox.put(self.sid, message) and not self.closing:
            self.log.warning("client too slow; disconnecting")
            SIGNALING_METRICS.slow_clients += 1
            self.post(Close(LeaveReason.SLOW_CLIENT, None))

    def changed(self) -> bool:
        """A participant_changed about this participant is due: True if it is deferred (sent with the
        latest state at the end of the interval that an earlier one started), False to send it now."""
        if self._change_timer is not None:
            self._change_pending = True
            return True
        interval = timedelta(seconds=self.conference.settings.participant_changed_interval_seconds)
        if not interval:
            return False
        scheduler = self.conference.scheduler
        self._change_timer = scheduler.call_at(scheduler.now() + interval, self._change_due)
        return False

    def _change_due(self) -> None:
        self._change_timer = None
        if self._change_pending:
            self._change_pending = False
            if self.ready and not self.closing:
                self.conference.broadcast(ParticipantChanged(self.info()))

    def protocol_error(self, error: ProtocolError, event: str | None) -> None:
        self.send(Error(error.code, error.message, event))
        self._errors += 1
        if self._errors >= self.conference.settings.max_protocol_errors:
            self.log.info("too many protocol errors; disconnecting")
            self.post(Close(LeaveReason.PROTOCOL_ERRORS, None))

    def detach(self) -> None:
        """The connection dropped; keep the seat for the reconnect grace period."""
        self.sid = None
        self._outbox.clear()

    def reattach(self, sid: str) -> None:
        self.sid = sid
        self.reconnect_token = secrets.token_urlsafe(32)
        self.post(Reattached())

    def info(self) -> ParticipantInfo:
        muted = tuple(s for s in Source if s in self.self_muted or s in self.held)
        return ParticipantInfo(
            self.id,
            self.display_name,
            self.role,
            self.hand_raised,
            muted,
            tuple(self.tracks.values()),
            tuple(s for s in Source if s in self.held),
            tuple(s for s in Source if s in self.unmute_asked),
        )

    async def wait_joined(self) -> bool:
        """True once the participant has joined; False if it left before."""
        return await asyncio.shield(self._joined)

    async def close(self, reason: LeaveReason, farewell: ServerMessage | None = None) -> None:
        """Leave the conference (idempotent); returns when the attendance is recorded and media are gone."""
        self.post(Close(reason, farewell))
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT)
        except TimeoutError:
            self.log.warning("participant did not close in time; cancelling")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- the participant's own task ---

    async def _run(self) -> None:
        reason, farewell = LeaveReason.ERROR, None
        try:
            if self.in_lobby:
                item = await self._wait_in_lobby()
                if isinstance(item, Close):
                    reason, farewell = item.reason, item.farewell
                    return
            await self._join()
            reason, farewell = await self._loop()
        except Exception:
            self.log.exception("participant failed")
            farewell = Error(ErrorCode.INTERNAL, "internal error; please rejoin", None)
        finally:
            await self._cleanup(reason, farewell)

    async def _wait_in_lobby(self) -> Admitted | Close:
        while True:
            item = await self._next()
            match item:
                case Admitted() | Close():
                    return item
                case Leave():
                    return Close(LeaveReason.LEFT, None)
                case _:
                    self._refuse(item, ErrorCode.BAD_STATE, "waiting in the lobby")

    async def _join(self) -> None:
        conference = self.conference
        await conference.ensure_started()
        assert conference.meeting_id is not None and conference.router is not None
        now = conference.scheduler.now()
        await conference.store.record_join(
            meeting_id=conference.meeting_id,
            participant_id=self.id,
            display_name=self.display_name,
            kind=self.kind.value,
            now=now,
            user_agent=self.user_agent,
            **({} if self.identity.endpoint_id is None else {"endpoint_id": self.identity.endpoint_id}),
        )
        self._recorded = True
        if self.attach_media is not None:
            self.peer = await self.attach_media(conference.router, self.id)
        else:
            self.peer = await conference.router.add_peer(self.id, publish=self.role not in SYSTEM_ROLES)
        self.ready = True
        self.in_lobby = False
        conference.participant_ready(self, reconnected=False)
        if not self._joined.done():
            self._joined.set_result(True)
        self.log.info("joined as %s", self.role.value)

    async def _next(self) -> InboxItem:
        item = await self._inbox.get()
        if isinstance(item, ClientMessage):
            self._queued_events -= 1
        return item

    async def _loop(self) -> tuple[LeaveReason, ServerMessage | None]:
        while True:
            item = await self._next()
            if isinstance(item, Close):
                return item.reason, item.farewell
            if isinstance(item, Leave):
                return LeaveReason.LEFT, None
            try:
                await self._handle(item)
            except ProtocolError as exc:
                self.protocol_error(exc, _event_of(item))
            except SfuError as exc:
                # The SFU refused the client's SDP or candidate (the message names what is wrong), or the
                # meeting's media are closing.
                self.send(Error(ErrorCode.NEGOTIATION_FAILED, str(exc), _event_of(item)))
            except Exception:
                # A failed negotiation must not end the participant: report it and carry on.
                self.log.exception("handling %s failed", type(item).__name__)
                self.send(Error(ErrorCode.NEGOTIATION_FAILED, "the request failed", _event_of(item)))

    async def _handle(self, item: InboxItem) -> None:
        conference = self.conference
        match item:
            case PublishOffer():
                if self.role in SYSTEM_ROLES:
                    raise ProtocolError(ErrorCode.NOT_ALLOWED, "viewers and recorders do not publish")
                sources = {mid: source.value for mid, source in item.sources.items()}
                sdp = await self._peer().answer_publish(item.sdp, sources)
                self.send(PublishAnswer(sdp))
            case SubscribeAnswer():
                if not self._offer_outstanding:
                    raise ProtocolError(ErrorCode.BAD_STATE, "no subscribe offer is outstanding")
                await self._peer().accept_subscribe_answer(item.sdp)
                self._offer_outstanding = False
                if self._offer_again:
                    self._offer_again = False
                    await self._offer()
            case Subscribe() | NeedsOffer():
                if isinstance(item, Subscribe):
                    self._subscribing = True
                if not self._subscribing or self.sid is None:
                    return  # not asked yet, or disconnected: a reconnect renegotiates from scratch
                if self._offer_outstanding:
                    self._offer_again = True  # one more offer once the client answers this one
                else:
                    await self._offer()
            case Candidate():
                if item.candidate:  # an empty candidate only marks the end of gathering
                    await self._peer().add_remote_candidate(
                        item.pc, item.candidate, item.sdp_mid, item.sdp_mline_index
                    )
            case VideoSize():
                if item.track_id not in conference.track_owners():
                    raise ProtocolError(ErrorCode.NOT_FOUND, "no such track")
                self._peer().set_max_size(item.track_id, item.width, item.height)
            case Reattached():
                await self._renegotiate_after_reconnect()
            case ConnectionState():
                self._connection_state(item.pc, item.state)
            case MediaDead():
                if self._dead_media:
                    self.log.warning("media dead since %s; leaving", sorted(self._dead_media))
                    self.post(Close(LeaveReason.MEDIA_FAILED, Removed(LeaveReason.MEDIA_FAILED)))
            case RestartMedia():
                await self._restart_media(item.pc)
            case MediaState():
                conference.media_state(self, item)
            case ChatSend():
                conference.chat(self, item)
            case Hand():
                conference.hand(self, item.raised)
            case React():
                conference.react(self, item.reaction)
            case Moderate():
                conference.moderate(self, item)
            case AskUnmute():
                conference.moderation.ask_unmute(self, item.source)
            case ClaimHost():
                conference.moderation.claim_host(self, item.host_key)
            case StartRecording():
                await conference.recording.start(self)
            case StopRecording():
                await conference.recording.stop(self)
            case SipDial() | SipHangup():
                await sip_dial.dial(self, item)
            case Admitted():
                pass  # a late duplicate; already in
            case _:
                raise ProtocolError(ErrorCode.BAD_STATE, "unexpected message")

    async def _offer(self) -> None:
        peer = self._peer()
        if not self._media_offered and not any(
            owner is not self for owner in self.conference.track_owners().values()
        ):
            # Nothing to receive yet: an offer without any m-section is invalid SDP to browsers. The SFU asks
            # for an offer (NeedsOffer) as soon as another participant's track appears. Once m-sections exist
            # they stay (inactive when their track goes), so later offers are always valid.
            return
        sdp = await peer.create_subscribe_offer()
        self._offer_outstanding = True
        mids = peer.subscribe_mids()
        self._media_offered = self._media_offered or bool(mids)
        self.send(SubscribeOffer(sdp, dict(mids)))

    async def _renegotiate_after_reconnect(self) -> None:
        """A new connection means new PeerConnections on the client: replace the SFU peer."""
        router = self.conference.router
        assert router is not None
        self.log.info("reconnected; renegotiating media")
        await router.remove_peer(self.id)
        self.tracks.clear()
        self._subscribing = self._offer_outstanding = self._offer_again = self._media_offered = False
        self._dead_media.clear()  # new PeerConnections: the old ones' deaths do not count
        self._cancel_media_timer()
        self.peer = await router.add_peer(self.id, publish=self.role not in SYSTEM_ROLES)
        self.conference.participant_ready(self, reconnected=True)

    def _connection_state(self, pc: Literal["publish", "subscribe"], state: str) -> None:
        if self.media_session:
            return  # WHIP/WHEP sessions end on their own when their connection fails (sfu/whip.py)
        if state in _DEAD_STATES:
            if self._dead_media.get(pc) == "failed":
                return  # "closed" after "failed": the same death
            self._dead_media[pc] = "failed"
            scheduler = self.conference.scheduler
            if self.media_timer is None or self._media_deadline is None:
                timeout = timedelta(seconds=self.conference.settings.media_failed_timeout_seconds)
                self._media_deadline = scheduler.now() + timeout
                self.media_timer = scheduler.call_at(self._media_deadline, lambda: self.post(MediaDead()))
            left = max(0, round((self._media_deadline - scheduler.now()).total_seconds()))
            self.log.warning("%s connection %s; leaving in %d s unless renegotiated", pc, state, left)
            self.send(MediaFailed(pc, left))
        elif state == "connected" and self._dead_media.pop(pc, None) is not None:
            self.log.info("%s connection recovered", pc)
            if not self._dead_media:
                self._cancel_media_timer()

    async def _restart_media(self, pc: Literal["publish", "subscribe"]) -> None:
        """The client replaced a PeerConnection: drop the SFU's end; a new one is negotiated as at the start.
        The participant, its Attendance and its seat stay, so the others see no leave or join."""
        if pc == "publish" and self.role in SYSTEM_ROLES:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "viewers and recorders do not publish")
        await self._peer().restart(pc)
        if pc in self._dead_media:
            # Dead until the new connection reports "connected": restarting over and over keeps no seat.
            self._dead_media[pc] = "recovering"
        self.log.info("restarting the %s connection", pc)
        if pc == "subscribe":
            self._offer_outstanding = self._offer_again = self._media_offered = False
            self._subscribing = True
            if self.sid is not None:
                await self._offer()

    def _cancel_media_timer(self) -> None:
        if self.media_timer is not None:
            self.media_timer.cancel()
        self.media_timer = self._media_deadline = None

    def _peer(self) -> PeerPort:
        if self.peer is None:
            raise ProtocolError(ErrorCode.BAD_STATE, "media are not ready")
        return self.peer

    def _refuse(self, item: InboxItem, code: ErrorCode, message: str) -> None:
        self.protocol_error(ProtocolError(code, message), _event_of(item))

    async def _cleanup(self, reason: LeaveReason, farewell: ServerMessage | None) -> None:
        conference = self.conference
        if farewell is not None:
            self.send(farewell)
        sid, announce = self.sid, self.ready
        if not self._joined.done():
            self._joined.set_result(False)
        self.closed = True
        self.ready = False  # no longer a target for broadcasts, moderation or chat
        if self.grace_timer is not None:
            self.grace_timer.cancel()
        if self._change_timer is not None:
            self._change_timer.cancel()
        self._cancel_media_timer()
        if reason is LeaveReason.MEDIA_FAILED:
            METRICS.media_failed += 1
        try:
            if self.peer is not None and conference.router is not None:
                try:
                    await conference.router.remove_peer(self.id)
                except Exception:
                    self.log.exception("removing the SFU peer failed")
            if self._recorded and conference.meeting_id is not None:
                try:
                    await conference.store.record_leave(
                        meeting_id=conference.meeting_id,
                        participant_id=self.id,
                        reason=reason.value,
                        now=conference.scheduler.now(),
                        by=self.removed_by,
                    )
                except Exception:
                    self.log.exception("recording the leave failed")
        finally:
            # Others hear of the leave once it is recorded; this runs even if the writes were cancelled.
            conference.forget(self, reason, announce=announce)
            self._outbox.hang_up(sid)
        await self._outbox.finish(sid, slow=reason is LeaveReason.SLOW_CLIENT)
        self.log.info("left (%s)", reason.value)
        if self.on_left is not None:
            try:
                self.on_left(reason)
            except Exception:  # the observer's fault must not hide the leave
                self.log.exception("on_left failed")


def _event_of(item: InboxItem) -> str | None:
    return CLIENT_EVENT_NAMES.get(type(item))

"""Conference: the live object of one meeting — membership, lobby, timers, moderation, chat and files."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rooms import policy
from sfu.events import (
    ActiveSpeakerChanged,
    ConnectionStateChanged,
    LayersWanted,
    RouterEvent,
    SubscriberNeedsOffer,
    TrackPublished,
    TrackUnpublished,
)
from signaling.admission import ConferenceView, Identity, decide, session_deadline
from signaling.chat import ChatHistory
from signaling.clock import Scheduler, Timer
from signaling.errors import ErrorCode, JoinRefused, ProtocolError, RefusalCode
from signaling.files import FileLinks, StoredFile
from signaling.messages import (
    MODERATOR_ROLES,
    ActiveSpeaker,
    Chat,
    ChatEntry,
    ChatSend,
    EndReason,
    FileInfo,
    HostChanged,
    Joined,
    LeaveReason,
    LobbyChanged,
    LobbyEntry,
    LobbyWaiting,
    MediaState,
    MeetingChanged,
    MeetingEnded,
    MeetingInfo,
    MeetingMoved,
    MeetingWarning,
    Moderate,
    ParticipantChanged,
    ParticipantJoined,
    ParticipantLeft,
    PublishLayers,
    Reaction,
    ReactionSent,
    Role,
    ServerMessage,
    Source,
    TrackInfo,
)
from signaling.moderation import Moderation, forwarded
from signaling.outbox import Transport
from signaling.participant import Close, ConnectionState, NeedsOffer, Participant
from signaling.ports import ActedBy, MeetingStore, RoomView, RouterPort, SfuPort
from signaling.recording import NoTransport, RecordingControl, RecordingPort
from signaling.settings import SignalingSettings
from signaling.turn import client_ice_servers

if TYPE_CHECKING:
    from signaling.ports import MediaAttach
    from signaling.sip_dial import SipDialPort

logger = logging.getLogger(__name__)


class Conference:
    """One live meeting. Membership changes happen in synchronous methods (no await mid-change)."""

    def __init__(
        self,
        room: RoomView,
        *,
        sfu: SfuPort,
        store: MeetingStore,
        settings: SignalingSettings,
        scheduler: Scheduler,
        links: FileLinks,
        on_closed: Callable[[Conference], None],
        recordings: RecordingPort | None = None,
    ) -> None:
        self.room = room
        self.sfu = sfu
        self.store = store
        self.settings = settings
        self.scheduler = scheduler
        self.links = links
        self.meeting_id: int | None = None
        self.router: RouterPort | None = None
        self.started_at: datetime | None = None
        self.deadline: datetime | None = None
        self.locked = False
        self.ending = False
        self.sip_dialer: SipDialPort | None = None  # the SIP gateway, for sip_dial (signaling/sip_dial.py)
        self._on_closed = on_closed
        self._participants: dict[str, Participant] = {}  # admitted: joining, joined or reconnecting
        self._lobby: dict[str, Participant] = {}
        self.moderation = Moderation(self)  # holds, bans, host keys (signaling/moderation.py)
        self.recording = RecordingControl(self, recordings)  # start/stop rules (signaling/recording.py)
        self._active_speaker: str | None = None
        self._history = ChatHistory(settings.chat_history_size)
        self._start_lock = asyncio.Lock()
        self._timers: list[Timer] = []
        self._empty_timer: Timer | None = None
        self._end_task: asyncio.Task[None] | None = None
        # In-process observers of what everyone is told (the recorder's timeline): see watch().
        self._watchers: list[Callable[[ServerMessage], None]] = []
        self._ended_by: ActedBy | None = None
        self._moved: MeetingMoved | None = None  # move(): the meeting goes on elsewhere, its row stays open
        self.log = logging.LoggerAdapter(logger, {"room_id": room.room_id})

    # --- membership ---

    def view(self) -> ConferenceView:
        present = sum(1 for p in self._participants.values() if policy.counts(p.kind))
        return ConferenceView(present=present, locked=self.locked)

    def _check_entry(self, identity: Identity) -> None:
        if self.ending:
            raise JoinRefused(RefusalCode.MEETING_ENDING, "the meeting is ending; join again in a moment")
        self.moderation.check_entry(identity)

    def join(self, identity: Identity, *, sid: str, user_agent: str, transport: Transport) -> Participant:
        """Admit or seat in the lobby (raises JoinRefused); the decision and the seat are one atomic step."""
        self._check_entry(identity)
        in_lobby = not decide(identity, self.view(), now=self.scheduler.now())
        in_lobby = in_lobby or self.moderation.must_wait(identity)
        participant = Participant(
            identity, conference=self, transport=transport, sid=sid, user_agent=user_agent, in_lobby=in_lobby
        )
        self.moderation.seated(participant)
        if in_lobby:
            self._lobby[participant.id] = participant
            participant.send(LobbyWaiting(self.room.meeting_number, self.room.name))
            self._lobby_changed()
        else:
            self._participants[participant.id] = participant
            self._liveness_changed()
        participant.start()
        return participant

    def join_media(
        self, identity: Identity, *, kind: policy.Kind, user_agent: str, transport: Transport
    ) -> Participant:
        """Admit a media session (kind WHIP or VIEWER) through the same policy; it cannot wait in a lobby."""
        self._check_entry(identity)
        if self.moderation.must_wait(identity):
            # A media session has no rejoin key and cannot wait in a lobby: its credential was a removed
            # participant's (an encoder's token after its removal), so it stays out as that one did.
            raise JoinRefused(
                RefusalCode.REMOVED,
                "a moderator removed a participant who used this join token; ask the host for a new one",
            )
        if not decide(identity, self.view(), now=self.scheduler.now(), kind=kind):
            raise JoinRefused(
                RefusalCode.NOT_AUTHORISED,
                "the meeting admits through a lobby; publish with a host's join token",
            )
        # An encoder never moderates (a host token only gets it past the lock and the lobby).
        role = Role.PARTICIPANT if kind is policy.Kind.WHIP else Role.VIEWER
        participant = Participant(
            dataclasses.replace(identity, role=role),
            conference=self,
            transport=transport,
            sid=None,
            user_agent=user_agent,
            in_lobby=False,
            kind=kind,
            id_prefix="whip-" if kind is policy.Kind.WHIP else "whep-",
        )
        self._participants[participant.id] = participant
        self._liveness_changed()
        participant.start()
        return participant

    def join_sip(self, identity: Identity, *, user_agent: str, attach: MediaAttach) -> Participant:
        """Admit a SIP leg (Attendance kind "sip", counted like a browser) through the same policy, or seat it
        in the lobby (its call plays the lobby prompt meanwhile); ``attach`` makes its media in the Router."""
        self._check_entry(identity)
        in_lobby = not decide(identity, self.view(), now=self.scheduler.now(), kind=policy.Kind.SIP)
        in_lobby = in_lobby or self.moderation.must_wait(identity)
        participant = Participant(
            identity,
            conference=self,
            transport=NoTransport(),
            sid=None,
            user_agent=user_agent,
            in_lobby=in_lobby,
            kind=policy.Kind.SIP,
            id_prefix="sip-",
        )
        participant.attach_media = attach
        self.moderation.seated(participant)
        if in_lobby:
            self._lobby[participant.id] = participant
            self._lobby_changed()
        else:
            self._participants[participant.id] = participant
            self._liveness_changed()
        participant.start()
        return participant

    def join_recorder(self, display_name: str) -> Participant:
        """Seat the server's own recorder (signaling/recording.py): no connection, no lobby, not counted."""
        if self.ending:
            raise JoinRefused(RefusalCode.MEETING_ENDING, "the meeting is ending")
        identity = Identity(self.room, Role.RECORDER, display_name, None, authorised=True)
        participant = Participant(
            identity,
            conference=self,
            transport=NoTransport(),
            sid=None,
            user_agent="yunhui-recorder",
            in_lobby=False,
            kind=policy.Kind.RECORDER,
            id_prefix="rec-",
        )
        self._participants[participant.id] = participant
        participant.start()
        return participant

    def participant(self, participant_id: str) -> Participant | None:
        return self._participants.get(participant_id)

    def participants(self) -> list[Participant]:
        return list(self._participants.values())

    def lobby(self) -> list[Participant]:
        return list(self._lobby.values())

    def waiting(self, participant_id: str) -> Participant | None:
        return self._lobby.get(participant_id)

    def admit(self, participant: Participant) -> None:
        """Move a participant from the lobby to the meeting (the caller checked capacity)."""
        del self._lobby[participant.id]
        self._participants[participant.id] = participant
        self._lobby_changed()
        self._liveness_changed()

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        self._meeting_changed()

    def participant_changed(self, participant: Participant) -> None:
        self.broadcast(ParticipantChanged(participant.info()))

    def to_moderators(self, message: ServerMessage) -> None:
        for p in list(self._participants.values()):
            if p.ready and p.role in MODERATOR_ROLES:
                p.send(message)

    def by_reconnect_token(self, token: str) -> Participant | None:
        for p in self._participants.values():
            if (
                p.ready
                and not p.closing
                and not p.media_session
                and secrets.compare_digest(p.reconnect_token, token)
            ):
                return p
        return None

    def is_idle(self) -> bool:
        return not self._participants and not self._lobby and self.meeting_id is None

    async def ensure_started(self) -> None:
        """Persist the Meeting and open its Router on the first admitted join."""
        async with self._start_lock:
            if self.meeting_id is not None:
                return
            now = self.scheduler.now()
            self.meeting_id = await self.store.start_meeting(self.room, now=now)
            self.started_at = now
            self.log = logging.LoggerAdapter(
                logger, {"room_id": self.room.room_id, "meeting_id": self.meeting_id}
            )
            self.router = self.sfu.router(str(self.meeting_id))
            self.router.add_listener(self._on_router_event)
            self.deadline = session_deadline(self.room, now)
            if self.deadline is not None:
                for offset in self.settings.warning_offsets_seconds:
                    at = self.deadline - timedelta(seconds=offset)
                    if at > now:
                        self._timers.append(self.scheduler.call_at(at, self._warn))
                self._timers.append(self.scheduler.call_at(self.deadline, self._time_up))
            self.log.info("meeting started; deadline %s", self.deadline)
            # A meeting opened by a recorder or a viewer alone has nobody to keep it alive.
            self._liveness_changed()
            self.recording.meeting_started(auto_record=self.room.auto_record)

    def participant_ready(self, participant: Participant, *, reconnected: bool) -> None:
        participant.send(self._joined(participant, reconnected))
        if not reconnected:
            self.broadcast(ParticipantJoined(participant.info()), exclude=participant)
            if participant.role is Role.RECORDER:
                self._meeting_changed()

    def detached(self, participant: Participant) -> None:
        """The participant's connection dropped: hold its seat for the grace period, silently."""
        participant.detach()
        grace = timedelta(seconds=self.settings.reconnect_grace_seconds)
        participant.grace_timer = self.scheduler.call_at(
            self.scheduler.now() + grace,
            lambda: participant.post(Close(LeaveReason.CONNECTION_LOST, None)),
        )

    def reattached(self, participant: Participant, sid: str) -> None:
        if participant.grace_timer is not None:
            participant.grace_timer.cancel()
            participant.grace_timer = None
        participant.reattach(sid)

    def forget(self, participant: Participant, reason: LeaveReason, *, announce: bool) -> None:
        """Called by a participant once it has left (media gone, attendance recorded)."""
        if self._lobby.pop(participant.id, None) is not None:
            self._lobby_changed()
        elif self._participants.pop(participant.id, None) is not None:
            if announce:
                self.broadcast(ParticipantLeft(participant.id, reason))
                if participant.role is Role.RECORDER:
                    self._meeting_changed()
            if participant.role is Role.RECORDER:
                self.recording.recorder_left()
            if self._active_speaker == participant.id:
                self._active_speaker = None
            if participant.role is Role.HOST:
                self._hand_over(participant)
            self._liveness_changed()
        if self.is_idle() and not self.ending:
            self._on_closed(self)

    def broadcast(self, message: ServerMessage, *, exclude: Participant | None = None) -> None:
        if isinstance(message, ParticipantChanged) and exclude is None:
            # One client toggling its hand in a loop must not cost N emits per toggle: a burst of changes
            # of one participant goes out as one participant_changed per interval, the latest state last.
            subject = self._participants.get(message.participant.participant_id)
            if subject is not None and subject.changed():
                return
        for p in list(self._participants.values()):
            if p.ready and p is not exclude:
                p.send(message)
        for watcher in list(self._watchers):
            try:
                watcher(message)
            except Exception:  # an observer's bug must not stop the meeting's broadcasts
                self.log.exception("a meeting watcher failed on %s", type(message).__name__)

    def watch(self, watcher: Callable[[ServerMessage], None]) -> Callable[[], None]:
        """Call ``watcher`` with every message broadcast to the meeting (after the same coalescing the
        clients get), on the event loop; returns the function that stops it."""
        self._watchers.append(watcher)

        def stop() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return stop

    def track_owners(self) -> dict[str, Participant]:
        return {tid: p for p in self._participants.values() for tid in p.tracks}

    # --- timers and ending ---

    def _hand_over(self, previous: Participant) -> None:
        """The last host left for good: the longest-present co-host, else participant, becomes host."""
        if self.ending or any(p.role is Role.HOST for p in self._participants.values()):
            return
        # Only people at a Socket.IO client can moderate (not encoders, viewers or recorders). Dicts keep
        # admission order, so the first match is the longest present.
        people = [
            p
            for p in self._participants.values()
            if p.ready and not p.closing and not p.media_session and p.kind is policy.Kind.BROWSER
        ]
        successor = next((p for p in people if p.role is Role.COHOST), None) or next(
            (p for p in people if p.role is Role.PARTICIPANT), None
        )
        if successor is None:
            return
        successor.role = Role.HOST
        self.log.info("host %s left; %s is host now", previous.id, successor.id)
        self.broadcast(HostChanged(successor.id, previous.id))
        self.broadcast(ParticipantChanged(successor.info()))
        successor.send(LobbyChanged(self.lobby_entries()))

    def _liveness_changed(self) -> None:
        alive = any(policy.counts(p.kind) for p in self._participants.values())
        if alive and self._empty_timer is not None:
            self._empty_timer.cancel()
            self._empty_timer = None
        elif not alive and self._empty_timer is None and self.meeting_id is not None and not self.ending:
            at = self.scheduler.now() + timedelta(seconds=self.settings.empty_meeting_grace_seconds)
            self._empty_timer = self.scheduler.call_at(at, lambda: self.end(EndReason.EMPTY))

    def _warn(self) -> None:
        if self.deadline is None or self.ending:
            return
        left = max(0, round((self.deadline - self.scheduler.now()).total_seconds()))
        self.broadcast(MeetingWarning(self.deadline, left))

    def _time_up(self) -> None:
        self.end(EndReason.TIME_LIMIT)

    def end(self, reason: EndReason, *, by: ActedBy | None = None) -> None:
        """End the meeting for everyone (idempotent); the work runs in a task this conference owns."""
        if self.ending:
            return
        self.ending = True
        self._ended_by = by
        for timer in [*self._timers, *([self._empty_timer] if self._empty_timer else [])]:
            timer.cancel()
        self.log.info("meeting ending: %s", reason.value)
        self._end_task = asyncio.create_task(self._end(reason), name=f"conference-end:{self.room.room_id}")

    def move(self, moved: MeetingMoved) -> None:
        """Send everyone to the worker the meeting moves to (a drain, a lease taken over): they leave here
        and join again there; the meeting's row is not ended, its new owner adopts it. Idempotent."""
        if self.ending:
            return
        self._moved = moved
        self.end(EndReason.SERVER_SHUTDOWN)

    async def _end(self, reason: EndReason) -> None:
        try:
            await self.recording.close()  # an automatic start under way finishes first, then leaves
            people = [*self._participants.values(), *self._lobby.values()]
            farewell: ServerMessage = MeetingEnded(reason) if self._moved is None else self._moved
            leave = LeaveReason.MEETING_ENDED if self._moved is None else LeaveReason.MOVED
            await asyncio.gather(*(p.close(leave, farewell) for p in people))
            if self.meeting_id is not None and self._moved is None:
                await self.store.end_meeting(
                    self.meeting_id, reason=reason.value, now=self.scheduler.now(), by=self._ended_by
                )
            if self.router is not None:
                await self.router.close()
        except Exception:
            self.log.exception("ending the meeting failed")
        finally:
            self._on_closed(self)

    async def close(self, reason: EndReason = EndReason.SERVER_SHUTDOWN) -> None:
        """End the meeting (if not already ending) and wait until it has ended."""
        self.end(reason)
        if self._end_task is not None:
            await asyncio.shield(self._end_task)

    # --- what participants do ---

    def media_state(self, participant: Participant, message: MediaState) -> None:
        self.moderation.media_state(participant, message)

    def hand(self, participant: Participant, raised: bool) -> None:
        if participant.role is Role.RECORDER:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "recorders do not raise hands")
        participant.hand_raised = raised
        self.broadcast(ParticipantChanged(participant.info()))

    def react(self, participant: Participant, reaction: Reaction) -> None:
        if participant.role is Role.RECORDER:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "recorders do not react")
        if not participant.reaction_limit.allow(self.scheduler.now()):
            raise ProtocolError(ErrorCode.RATE_LIMITED, "too many reactions; slow down")
        self.broadcast(ReactionSent(participant.id, reaction))

    def chat(self, sender: Participant, message: ChatSend) -> None:
        if sender.role is Role.RECORDER:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "recorders do not chat")
        recipient = None
        if message.to is not None:
            recipient = self._participants.get(message.to)
            if recipient is None or not recipient.ready:
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such participant")
        now = self.scheduler.now()
        if not sender.chat_limit.allow(now):
            raise ProtocolError(ErrorCode.RATE_LIMITED, "too many chat messages; slow down")
        entry = ChatEntry(secrets.token_hex(8), sender.id, sender.display_name, message.to, message.text, now)
        if recipient is None:
            self._history.append(entry)
            self.broadcast(Chat(entry))
        else:
            recipient.send(Chat(entry))
            if recipient is not sender:
                sender.send(Chat(entry))

    def share_file(self, sender: Participant, stored: StoredFile) -> ChatEntry:
        """Announce an uploaded file in the public chat; every recipient gets a link signed for them."""
        info = FileInfo(stored.file_id, stored.name, stored.size, stored.content_type, "")
        entry = ChatEntry(
            secrets.token_hex(8), sender.id, sender.display_name, None, "", stored.uploaded_at, info
        )
        self._history.append(entry)
        for p in list(self._participants.values()):
            if p.ready:
                p.send(Chat(self._with_link(entry, p)))
        return entry

    def moderate(self, actor: Participant, message: Moderate) -> None:
        self.moderation.moderate(actor, message)

    # --- helpers ---

    def set_forwarding(self, participant: Participant, source: Source, *, enabled: bool) -> None:
        if participant.peer is None:
            return
        for track in participant.tracks.values():
            if track.source is source:
                participant.peer.set_forwarding(track.track_id, enabled)

    def _on_router_event(self, event: RouterEvent) -> None:
        match event:
            case TrackPublished(participant_id=pid, track_id=tid, kind=kind, source=source):
                owner = self._participants.get(pid)
                if owner is None:
                    return
                try:
                    track = TrackInfo(tid, kind, Source(source))
                except ValueError:
                    self.log.warning("track %s has an unknown source %r", tid, source)
                    return
                owner.tracks[tid] = track
                if not forwarded(owner, track.source) and owner.peer is not None:
                    owner.peer.set_forwarding(tid, False)
                if owner.ready:
                    self.broadcast(ParticipantChanged(owner.info()))
            case TrackUnpublished(participant_id=pid, track_id=tid):
                owner = self._participants.get(pid)
                if owner is not None and owner.tracks.pop(tid, None) is not None and owner.ready:
                    self.broadcast(ParticipantChanged(owner.info()))
            case ActiveSpeakerChanged(participant_id=pid):
                self._active_speaker = pid
                self.broadcast(ActiveSpeaker(pid))
            case SubscriberNeedsOffer(participant_id=pid):
                target = self._participants.get(pid)
                if target is not None:
                    target.post(NeedsOffer())
            case ConnectionStateChanged(participant_id=pid, pc=pc, state=state):
                target = self._participants.get(pid)
                if target is not None:
                    target.post(ConnectionState(pc, state))
            case LayersWanted(participant_id=pid, mid=mid, rids=rids):
                owner = self._participants.get(pid)
                if owner is not None and owner.ready:
                    owner.send(PublishLayers(mid, rids))

    def _meeting_info(self) -> MeetingInfo:
        recording = any(p.role is Role.RECORDER and p.ready for p in self._participants.values())
        return MeetingInfo(
            str(self.meeting_id or ""),
            self.room.meeting_number,
            self.room.name,
            self.locked,
            recording,
            self.started_at or self.scheduler.now(),
            self.deadline,
        )

    def _meeting_changed(self) -> None:
        self.broadcast(MeetingChanged(self._meeting_info()))

    def lobby_entries(self) -> tuple[LobbyEntry, ...]:
        return tuple(LobbyEntry(p.id, p.display_name) for p in self._lobby.values())

    def _lobby_changed(self) -> None:
        self.to_moderators(LobbyChanged(self.lobby_entries()))

    def _with_link(self, entry: ChatEntry, recipient: Participant) -> ChatEntry:
        if entry.file is None or self.meeting_id is None:
            return entry
        url = self.links.download_url(self.meeting_id, entry.file.file_id, recipient.id, self.scheduler.now())
        return dataclasses.replace(entry, file=dataclasses.replace(entry.file, url=url))

    def _joined(self, participant: Participant, reconnected: bool) -> Joined:
        assert self.meeting_id is not None
        others = tuple(p.info() for p in self._participants.values() if p.ready)
        may_upload = participant.role is not Role.RECORDER
        return Joined(
            participant_id=participant.id,
            reconnect_token=participant.reconnect_token,
            role=participant.role,
            reconnected=reconnected,
            meeting=self._meeting_info(),
            participants=others,
            active_speaker=self._active_speaker,
            chat=tuple(self._with_link(e, participant) for e in self._history.entries()),
            lobby=self.lobby_entries() if participant.role in MODERATOR_ROLES else (),
            upload_url=(
                self.links.upload_url(self.meeting_id, participant.id, self.scheduler.now())
                if may_upload
                else None
            ),
            rejoin_key=self.moderation.rejoin_key(participant),
            ice_servers=client_ice_servers(self.settings.turn, participant.id, self.scheduler.now()),
        )

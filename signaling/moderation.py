"""Moderation of one conference: holds (hard mute) and asks to unmute, removal and the ban list, host keys.

The rules are pure functions in signaling/permissions.py; this module applies them to the live participants.

Who is banned (docs/protocol.md, "Who a removal keeps out"): a login by its user; a token or passcode joiner
by the rejoin key this meeting signed for it in `joined` (the SDK keeps it and sends it back). A join token
or a passcode may be shared by many people, so neither is banned as such: once someone holding it was
removed, a newcomer on it without a rejoin key of this meeting waits in the lobby for a moderator instead
of getting in by itself. A removed guest who throws its rejoin key away therefore lands in the lobby, and
the others on the same token, who hold keys, come and go as before."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rooms import policy
from signaling.admission import Identity, check_capacity
from signaling.errors import ErrorCode, JoinRefused, ProtocolError, RefusalCode
from signaling.messages import (
    MODERATOR_ROLES,
    SYSTEM_ROLES,
    EndReason,
    Error,
    HostChanged,
    LeaveReason,
    LobbyChanged,
    LobbyRejected,
    MediaAllowed,
    MediaRequest,
    MediaState,
    Moderate,
    ModerationAction,
    Removed,
    Role,
    Source,
    UnmuteAsked,
)
from signaling.participant import Admitted, Close, Participant
from signaling.permissions import (
    HOLD_ACTIONS,
    RELEASE_ACTIONS,
    HostKeyLimits,
    guest_of,
    host_key_matches,
    host_key_retry_at,
    may_moderate,
    rejoin_key,
)
from signaling.ports import ActedBy

if TYPE_CHECKING:
    from signaling.conference import Conference


def forwarded(participant: Participant, source: Source) -> bool:
    """Whether the SFU forwards ``source``: not while a moderator holds it, nor a microphone its owner muted.

    A muted microphone of an older client (or any client that keeps sending) is 50 packets a second of
    silence: in a large meeting those copies would be most of what the SFU forwards.
    """
    return source not in participant.held and not (source is Source.MIC and source in participant.self_muted)


class Moderation:
    """The moderation state of one conference; the conference calls it for every moderation event."""

    def __init__(self, conference: Conference) -> None:
        self.conference = conference
        settings = conference.settings
        self._secret = secrets.token_bytes(32)  # signs this meeting's rejoin keys; dies with the meeting
        self._banned_people: set[str] = set()  # principals ("user:<id>") a moderator removed
        self._banned_guests: set[str] = set()  # guest ids (of rejoin keys) a moderator removed
        self._guarded: set[str] = set()  # credentials a removed participant held: newcomers wait in the lobby
        self._guest_ids: dict[str, str] = {}  # participant id -> guest id
        self._limits = HostKeyLimits(
            settings.host_key_attempts_per_participant,
            settings.host_key_attempts_per_meeting,
            timedelta(seconds=settings.host_key_window_seconds),
        )
        self._key_failures: list[datetime] = []  # wrong host keys in this meeting, newest last
        self._own_failures: dict[str, int] = {}  # participant id -> wrong host keys

    # --- entry ---

    def check_entry(self, identity: Identity) -> None:
        """Raise JoinRefused(REMOVED) for someone a moderator removed from this meeting."""
        guest = guest_of(self._secret, identity.rejoin_key)
        if (identity.principal is not None and identity.principal in self._banned_people) or (
            guest is not None and guest in self._banned_guests
        ):
            raise JoinRefused(RefusalCode.REMOVED, "a moderator removed you from this meeting")

    def must_wait(self, identity: Identity) -> bool:
        """A newcomer on a credential a removed participant held waits for a moderator (see the module)."""
        if identity.principal is not None or identity.role in MODERATOR_ROLES:
            return False  # a known user, or a host's token: nobody else could let them in
        return identity.credential in self._guarded and guest_of(self._secret, identity.rejoin_key) is None

    def seated(self, participant: Participant) -> None:
        """Remember who a new participant is: the guest its rejoin key names, else a new guest."""
        guest = guest_of(self._secret, participant.identity.rejoin_key) or secrets.token_hex(8)
        self._guest_ids[participant.id] = guest

    def rejoin_key(self, participant: Participant) -> str | None:
        guest = self._guest_ids.get(participant.id)
        return None if guest is None else rejoin_key(self._secret, guest)

    # --- moderator actions ---

    def moderate(self, actor: Participant, message: Moderate) -> None:
        conference = self.conference
        action = message.action
        if not may_moderate(actor.role, action, None):
            raise ProtocolError(ErrorCode.NOT_ALLOWED, f"{actor.role.value} may not {action.value}")
        target: Participant | None = None
        if message.participant_id is not None:
            lobby = action in (ModerationAction.ADMIT, ModerationAction.REJECT)
            target = (conference.waiting if lobby else conference.participant)(message.participant_id)
            if target is None or (not lobby and not target.ready):
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such participant")
            if not may_moderate(actor.role, action, target.role):
                raise ProtocolError(
                    ErrorCode.NOT_ALLOWED, f"{actor.role.value} may not {action.value} the host"
                )
        conference.log.info("%s %s %s", actor.id, action.value, message.participant_id or "")
        if action in HOLD_ACTIONS:
            assert target is not None
            self.hold(target, HOLD_ACTIONS[action])
            return
        if action in RELEASE_ACTIONS:
            assert target is not None
            self.release(target, RELEASE_ACTIONS[action])
            return
        match action:
            case ModerationAction.MUTE_ALL:
                for p in conference.participants():
                    if p.ready and p is not actor and p.role not in MODERATOR_ROLES | SYSTEM_ROLES:
                        self.hold(p, Source.MIC)
            case ModerationAction.REMOVE:
                assert target is not None
                self.remove(target, acted_by(actor))
            case ModerationAction.LOCK | ModerationAction.UNLOCK:
                conference.set_locked(action is ModerationAction.LOCK)
            case ModerationAction.ADMIT:
                assert target is not None
                try:
                    check_capacity(target.identity, conference.view())
                except JoinRefused as exc:
                    raise ProtocolError(ErrorCode.BAD_STATE, exc.message) from None
                conference.admit(target)
                target.post(Admitted())
            case ModerationAction.REJECT:
                assert target is not None
                target.post(
                    Close(LeaveReason.REMOVED, LobbyRejected(RefusalCode.REJECTED, "the host declined"))
                )
            case ModerationAction.END:
                conference.end(EndReason.HOST_ENDED, by=acted_by(actor))
            case ModerationAction.MAKE_COHOST | ModerationAction.REVOKE_COHOST:
                assert target is not None
                if target.role in SYSTEM_ROLES or target.media_session:
                    raise ProtocolError(
                        ErrorCode.BAD_STATE, "encoders, viewers and recorders cannot be co-hosts"
                    )
                target.role = Role.COHOST if action is ModerationAction.MAKE_COHOST else Role.PARTICIPANT
                conference.participant_changed(target)
                target.send(LobbyChanged(conference.lobby_entries()))

    def remove(self, target: Participant, by: ActedBy) -> None:
        """Out of the meeting, and not back in with the same credentials (a moderator or an admin)."""
        self._ban(target)
        target.removed_by = by
        target.post(Close(LeaveReason.REMOVED, Removed(LeaveReason.REMOVED)))

    def _ban(self, target: Participant) -> None:
        identity = target.identity
        if identity.principal is not None:
            self._banned_people.add(identity.principal)
        guest = self._guest_ids.get(target.id)
        if guest is not None:
            self._banned_guests.add(guest)
        if identity.credential is not None:
            self._guarded.add(identity.credential)

    # --- holds (hard mute) ---

    def hold(self, target: Participant, source: Source) -> None:
        target.held.add(source)
        target.unmute_asked.discard(source)
        self.conference.set_forwarding(target, source, enabled=False)
        target.send(MediaRequest(source))
        self.conference.participant_changed(target)

    def release(self, target: Participant, source: Source) -> None:
        """Only a moderator releases a hold. The participant's own mute stays as it is: the host lets them
        speak, it does not open their microphone."""
        if source not in target.held:
            return
        target.held.discard(source)
        target.unmute_asked.discard(source)
        self.conference.set_forwarding(target, source, enabled=forwarded(target, source))
        target.send(MediaAllowed(source))
        self.conference.participant_changed(target)

    def media_state(self, participant: Participant, message: MediaState) -> None:
        if message.muted:
            participant.self_muted.add(message.source)
        else:
            participant.self_muted.discard(message.source)
            if message.source in participant.held:
                # Held: the SFU keeps not forwarding it; remind the client so its controls show the truth.
                participant.send(MediaRequest(message.source))
        if message.source is Source.MIC:
            self.conference.set_forwarding(
                participant, Source.MIC, enabled=forwarded(participant, Source.MIC)
            )
        self.conference.participant_changed(participant)

    def ask_unmute(self, participant: Participant, source: Source) -> None:
        if source not in participant.held:
            raise ProtocolError(ErrorCode.BAD_STATE, f"no moderator holds your {source.value}")
        if source in participant.unmute_asked:
            return  # asked already: asking again notifies nobody (and cannot flood the moderators)
        participant.unmute_asked.add(source)
        self.conference.to_moderators(UnmuteAsked(participant.id, participant.display_name, source))
        self.conference.participant_changed(participant)

    # --- host keys ---

    def claim_host(self, participant: Participant, given: str) -> None:
        conference = self.conference
        if participant.role in SYSTEM_ROLES or participant.kind is not policy.Kind.BROWSER:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "only people in the meeting can become host")
        if participant.role is Role.HOST:
            return
        now = conference.scheduler.now()
        own = self._own_failures.get(participant.id, 0)
        retry_at = host_key_retry_at(own, self._key_failures, self._limits, now=now)
        if retry_at is not None:
            seconds = math.ceil((retry_at - now).total_seconds())
            wait = "" if retry_at.year == datetime.max.year else f" for {seconds} s"
            message = f"too many wrong host keys; claiming host is locked{wait}"
            participant.send(Error(ErrorCode.HOST_KEY_LOCKED, message, "claim_host"))
            return
        if not host_key_matches(conference.room.host_key, given):
            self._own_failures[participant.id] = own + 1
            self._key_failures = [*self._key_failures[-self._limits.per_meeting :], now]
            left = self._limits.per_participant - own - 1
            participant.send(
                Error(ErrorCode.WRONG_HOST_KEY, f"the host key is wrong ({left} tries left)", "claim_host")
            )
            return
        self._own_failures.pop(participant.id, None)
        previous = [p for p in conference.participants() if p.role is Role.HOST]
        for p in previous:
            p.role = Role.COHOST  # the old host keeps moderating; the meeting has one host
        participant.role = Role.HOST
        conference.log.info("%s claimed host with the host key", participant.id)
        conference.broadcast(HostChanged(participant.id, previous[0].id if previous else None))
        for p in [*previous, participant]:
            conference.participant_changed(p)
        participant.send(LobbyChanged(conference.lobby_entries()))


def acted_by(moderator: Participant) -> ActedBy:
    """The audit log's view of a moderator."""
    return ActedBy(moderator.id, moderator.display_name, moderator.role.value, moderator.identity.user_id)

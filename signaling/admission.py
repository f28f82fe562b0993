"""Who is joining (identity from the join request) and whether they get in, through rooms.policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms import policy
from rooms.errors import RoomsError
from rooms.tokens import verify_access_token, verify_join_token
from signaling.errors import JoinRefused, RefusalCode
from signaling.messages import MODERATOR_ROLES, LoginJoin, PasscodeJoin, Role, TokenJoin
from signaling.ports import MeetingStore, RoomView


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified joiner: the room, the role it joins as, and how it proved it."""

    room: RoomView
    role: Role
    display_name: str
    user_id: int | None
    authorised: bool  # a join token or a login stands in for the passcode
    passcode: str | None = None
    # Who this is across connections, for the conference's ban list (signaling/moderation.py):
    # ``principal`` is a person the server knows ("user:<id>" for a login; None otherwise). ``credential`` is
    # what a token or passcode joiner holds, which others may hold too ("token:<jti>", "passcode"): it is
    # never banned as such. ``rejoin_key`` is the key an earlier `joined` of this meeting gave this client
    # (checked by the conference, which signed it). A browser-chosen device id is not an identity.
    principal: str | None = None
    credential: str | None = None
    rejoin_key: str | None = None
    # A room terminal's Endpoint (SIP calls): its Attendance names the endpoint and its site for billing.
    endpoint_id: int | None = None


# Users who join as host when they sign in (rooms.models.ROLES): an account's admins and organizers.
HOST_USER_ROLES = frozenset({"admin", "organizer"})


@dataclass(frozen=True, slots=True)
class ConferenceView:
    """What admission needs to know about the live conference."""

    present: int  # participants that count toward capacity
    locked: bool


_REFUSALS = {
    policy.Reason.NOT_OPEN: (RefusalCode.NOT_OPEN, "the meeting is not open yet"),
    policy.Reason.CLOSED: (RefusalCode.CLOSED, "the meeting's booking has ended"),
    policy.Reason.FULL: (RefusalCode.FULL, "the meeting is full"),
    policy.Reason.WRONG_PASSCODE: (RefusalCode.WRONG_PASSCODE, "the passcode is wrong"),
    policy.Reason.LOCKED: (RefusalCode.LOCKED, "the meeting is locked"),
    policy.Reason.SITE_SUSPENDED: (RefusalCode.NOT_AUTHORISED, "the site is suspended"),
    policy.Reason.ENDPOINT_DISABLED: (RefusalCode.NOT_AUTHORISED, "the endpoint is disabled"),
}


def kind_of(role: Role) -> policy.Kind:
    """Attendance.kind of a Socket.IO participant."""
    return {Role.RECORDER: policy.Kind.RECORDER, Role.VIEWER: policy.Kind.VIEWER}.get(
        role, policy.Kind.BROWSER
    )


def counts(role: Role) -> bool:
    """Whether a participant in this role counts toward capacity and keeps the meeting alive."""
    return policy.counts(kind_of(role))


def decide(
    identity: Identity, conference: ConferenceView, *, now: datetime, kind: policy.Kind | None = None
) -> bool:
    """True: admit; False: wait in the lobby; raises JoinRefused with the policy's reason.

    ``kind`` is the Attendance kind when the role does not imply it (a WHIP publisher)."""
    decision = policy.admit(
        now=now,
        terms=identity.room.terms,
        kind=kind or kind_of(identity.role),
        present=conference.present,
        window=identity.room.window,
        passcode=identity.passcode,
        authorised=identity.authorised,
        host=identity.role in MODERATOR_ROLES,
        locked=conference.locked,
    )
    if decision.outcome is policy.Outcome.REFUSED:
        assert decision.reason is not None
        raise JoinRefused(*_REFUSALS[decision.reason])
    return decision.outcome is policy.Outcome.ADMITTED


def check_capacity(identity: Identity, conference: ConferenceView) -> None:
    """Raise JoinRefused(FULL) if admitting ``identity`` from the lobby would exceed capacity."""
    if counts(identity.role) and conference.present >= identity.room.terms.capacity:
        raise JoinRefused(RefusalCode.FULL, "the meeting is full")


def session_deadline(room: RoomView, started_at: datetime) -> datetime | None:
    """When a meeting started at ``started_at`` must end: its max session length or the booking's end."""
    w = room.window
    return policy.session_deadline(
        started_at=started_at,
        booking_end=None if w is None else w.booking_end,
        grace=timedelta(0) if w is None else w.closes_at - w.booking_end,
        max_session=room.terms.max_session,
    )


async def resolve(
    request: TokenJoin | PasscodeJoin | LoginJoin, *, store: MeetingStore, secret_key: str, now: datetime
) -> Identity:
    """Turn a join request into an Identity, or raise JoinRefused."""
    match request:
        case TokenJoin(token=token, display_name=name, rejoin_key=key):
            try:
                claims = verify_join_token(secret_key, token, now=now)
            except RoomsError as exc:
                raise JoinRefused(
                    RefusalCode.BAD_TOKEN, f"the join token is not valid ({exc.code})"
                ) from None
            room = await store.room_by_id(claims.room_id, now=now)
            if room is None:
                raise JoinRefused(RefusalCode.NO_SUCH_MEETING, "the room of this join token no longer exists")
            role = Role(claims.role)
            # Tokens minted before "jti" existed are told apart by their own digest.
            token_id = claims.token_id or hashlib.sha256(token.encode()).hexdigest()[:16]
            return Identity(
                room,
                role,
                claims.display_name or name or role.value,
                claims.user_id,
                True,
                credential=f"token:{token_id}",
                rejoin_key=key,
            )
        case PasscodeJoin(meeting_number=number, passcode=passcode, display_name=name, rejoin_key=key):
            room = await store.room_by_number(number, now=now)
            if room is None:
                raise JoinRefused(RefusalCode.NO_SUCH_MEETING, f"there is no meeting {number}")
            return Identity(
                room, Role.PARTICIPANT, name, None, False, passcode, credential="passcode", rejoin_key=key
            )
        case LoginJoin(meeting_number=number, access_token=access_token, display_name=name):
            try:
                login = verify_access_token(secret_key, access_token, now=now)
            except RoomsError:
                raise JoinRefused(RefusalCode.BAD_TOKEN, "the login has expired; sign in again") from None
            # The token says who signed in when; the user row says who they are now (deleted, moved to
            # another account, or given another role since): the same check as the REST API's.
            user = await store.user(login.user_id)
            if user is None or user.account_id != login.account_id or user.role != login.role:
                raise JoinRefused(RefusalCode.BAD_TOKEN, "this login is no longer valid; sign in again")
            if user.role not in HOST_USER_ROLES:
                raise JoinRefused(RefusalCode.NOT_AUTHORISED, "this user may not host meetings")
            room = await store.room_by_number(number, now=now)
            if room is None:
                raise JoinRefused(RefusalCode.NO_SUCH_MEETING, f"there is no meeting {number}")
            platform_admin = user.role == "admin" and user.account_id is None
            if not platform_admin and user.account_id != room.account_id:
                raise JoinRefused(RefusalCode.NOT_AUTHORISED, "this meeting belongs to another account")
            return Identity(
                room,
                Role.HOST,
                name or user.display_name or "Host",
                user.user_id,
                True,
                principal=f"user:{user.user_id}",
            )

"""Every message of the meeting protocol (docs/protocol.md): one parse point in, one serialise point out."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, TypeVar

from signaling.errors import ErrorCode, ProtocolError

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]

MAX_SDP_LENGTH = 100_000
MAX_ID_LENGTH = 100
MAX_CANDIDATE_LENGTH = 1_000
MAX_VIDEO_SIDE = 16_384
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_HOST_KEY_LENGTH = 20
REJOIN_KEY = re.compile(r"[A-Za-z0-9_.-]{16,128}")


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    PARTICIPANT = "participant"
    VIEWER = "viewer"
    RECORDER = "recorder"


MODERATOR_ROLES = frozenset({Role.HOST, Role.COHOST})
# System participants: they do not count toward capacity and do not keep a meeting alive.
SYSTEM_ROLES = frozenset({Role.VIEWER, Role.RECORDER})


class Source(StrEnum):
    MIC = "mic"
    CAMERA = "camera"
    SCREEN = "screen"


class Reaction(StrEnum):
    THUMBS_UP = "thumbs_up"
    CLAP = "clap"
    HEART = "heart"
    LAUGH = "laugh"
    SURPRISED = "surprised"
    PARTY = "party"


class ModerationAction(StrEnum):
    MUTE = "mute"
    MUTE_ALL = "mute_all"
    STOP_CAMERA = "stop_camera"
    STOP_SCREEN = "stop_screen"
    REMOVE = "remove"
    LOCK = "lock"
    UNLOCK = "unlock"
    ADMIT = "admit"
    REJECT = "reject"
    END = "end"
    MAKE_COHOST = "make_cohost"
    REVOKE_COHOST = "revoke_cohost"
    # Release a moderator's hold (hard mute) on a source; the participant still unmutes it themself.
    UNMUTE = "unmute"
    ALLOW_CAMERA = "allow_camera"
    ALLOW_SCREEN = "allow_screen"


TARGETED_ACTIONS = frozenset(
    {
        ModerationAction.MUTE,
        ModerationAction.STOP_CAMERA,
        ModerationAction.STOP_SCREEN,
        ModerationAction.REMOVE,
        ModerationAction.ADMIT,
        ModerationAction.REJECT,
        ModerationAction.MAKE_COHOST,
        ModerationAction.REVOKE_COHOST,
        ModerationAction.UNMUTE,
        ModerationAction.ALLOW_CAMERA,
        ModerationAction.ALLOW_SCREEN,
    }
)


class EndReason(StrEnum):
    """Meeting.end_reason."""

    EMPTY = "empty"
    HOST_ENDED = "host_ended"
    TIME_LIMIT = "time_limit"
    SERVER_SHUTDOWN = "server_shutdown"


class LeaveReason(StrEnum):
    """Attendance.leave_reason."""

    LEFT = "left"
    CONNECTION_LOST = "connection_lost"
    REMOVED = "removed"
    MEETING_ENDED = "meeting_ended"
    PROTOCOL_ERRORS = "protocol_errors"
    SLOW_CLIENT = "slow_client"
    ERROR = "error"
    # A PeerConnection stayed failed for media_failed_timeout_seconds (not renegotiated with restart_media).
    MEDIA_FAILED = "media_failed"


# --- client -> server ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PublishOffer:
    sdp: str
    sources: dict[str, Source]  # mid -> source


@dataclasses.dataclass(frozen=True, slots=True)
class Subscribe:
    """The client's subscribe PeerConnection is ready: offer it now, and again whenever tracks change."""


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeAnswer:
    sdp: str


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    pc: Literal["publish", "subscribe"]
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class VideoSize:
    track_id: str
    width: int
    height: int


@dataclasses.dataclass(frozen=True, slots=True)
class MediaState:
    source: Source
    muted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ChatSend:
    text: str
    to: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Hand:
    raised: bool


@dataclasses.dataclass(frozen=True, slots=True)
class React:
    reaction: Reaction


@dataclasses.dataclass(frozen=True, slots=True)
class Moderate:
    action: ModerationAction
    participant_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class RestartMedia:
    """Replace the SFU's end of one PeerConnection (it failed): the client has a new one and negotiates it
    as at the start, with publish_offer (publish) or by answering the subscribe_offer that follows."""

    pc: Literal["publish", "subscribe"]


@dataclasses.dataclass(frozen=True, slots=True)
class AskUnmute:
    """A participant whose ``source`` a moderator holds asks the moderators to release it."""

    source: Source


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimHost:
    """Become host with the room's host key (attempt-limited)."""

    host_key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Leave:
    pass


ClientMessage = (
    Subscribe
    | PublishOffer
    | SubscribeAnswer
    | Candidate
    | VideoSize
    | MediaState
    | ChatSend
    | Hand
    | React
    | Moderate
    | RestartMedia
    | AskUnmute
    | ClaimHost
    | Leave
)

CLIENT_EVENT_NAMES: dict[type, str] = {
    PublishOffer: "publish_offer",
    Subscribe: "subscribe",
    SubscribeAnswer: "subscribe_answer",
    Candidate: "candidate",
    VideoSize: "video_size",
    MediaState: "media_state",
    ChatSend: "chat_send",
    Hand: "hand",
    React: "reaction",
    Moderate: "moderate",
    RestartMedia: "restart_media",
    AskUnmute: "ask_unmute",
    ClaimHost: "claim_host",
    Leave: "leave",
}

# --- join requests (Socket.IO ``auth``) ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class TokenJoin:
    token: str
    display_name: str | None
    rejoin_key: str | None = None  # from an earlier `joined` of this meeting (see Conference bans)


@dataclasses.dataclass(frozen=True, slots=True)
class PasscodeJoin:
    meeting_number: str
    passcode: str
    display_name: str
    # A random id the browser keeps (localStorage): lets a moderator's removal stick to a passcode guest.
    device_id: str | None = None
    rejoin_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LoginJoin:
    meeting_number: str
    access_token: str
    display_name: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Reconnect:
    reconnect_token: str


JoinRequest = TokenJoin | PasscodeJoin | LoginJoin | Reconnect

# --- server -> client ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: str
    kind: Literal["audio", "video"]
    source: Source


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantInfo:
    participant_id: str
    display_name: str
    role: Role
    hand_raised: bool
    muted: tuple[Source, ...]
    tracks: tuple[TrackInfo, ...]
    held: tuple[Source, ...] = ()  # held by a moderator (hard mute): only a moderator releases them
    unmute_asked: tuple[Source, ...] = ()  # held sources the participant asked the moderators to release


@dataclasses.dataclass(frozen=True, slots=True)
class LobbyEntry:
    participant_id: str
    display_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingInfo:
    meeting_id: str
    meeting_number: str
    room_name: str
    locked: bool
    recording: bool
    started_at: datetime
    ends_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class FileInfo:
    file_id: str
    name: str
    size: int
    content_type: str
    url: str  # signed for the recipient; empty in the stored history


@dataclasses.dataclass(frozen=True, slots=True)
class ChatEntry:
    message_id: str
    sender_id: str
    sender_name: str
    to: str | None
    text: str
    sent_at: datetime
    file: FileInfo | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Joined:
    participant_id: str
    reconnect_token: str
    role: Role
    reconnected: bool
    meeting: MeetingInfo
    participants: tuple[ParticipantInfo, ...]
    active_speaker: str | None
    chat: tuple[ChatEntry, ...]
    lobby: tuple[LobbyEntry, ...]
    upload_url: str | None
    # Signed by this meeting: sent back in `auth` on a later join, it tells the server who this is (bans).
    rejoin_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LobbyWaiting:
    meeting_number: str
    room_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class LobbyRejected:
    code: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class LobbyChanged:
    waiting: tuple[LobbyEntry, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantJoined:
    participant: ParticipantInfo


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantChanged:
    participant: ParticipantInfo


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantLeft:
    participant_id: str
    reason: LeaveReason


@dataclasses.dataclass(frozen=True, slots=True)
class HostChanged:
    """The last host left for good; ``participant_id`` is the host now."""

    participant_id: str
    previous_host_id: str | None  # None when a host key was claimed in a meeting without a host


@dataclasses.dataclass(frozen=True, slots=True)
class ActiveSpeaker:
    participant_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingChanged:
    meeting: MeetingInfo


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingWarning:
    ends_at: datetime
    seconds_left: int


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingEnded:
    reason: EndReason


@dataclasses.dataclass(frozen=True, slots=True)
class Removed:
    reason: LeaveReason


@dataclasses.dataclass(frozen=True, slots=True)
class PublishAnswer:
    sdp: str


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeOffer:
    sdp: str
    # mid -> track_id of every m-section in the offer, so the client knows which tile each stream belongs to.
    tracks: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class PublishLayers:
    """Send only these simulcast layers (rids) of the publish m-section ``mid``, pause the others: nobody
    watches them. Sent when that changes; every layer is on when a source starts."""

    mid: str
    rids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class MediaRequest:
    """A moderator asks the client to stop sending ``source``; the SFU stops forwarding it meanwhile."""

    source: Source


@dataclasses.dataclass(frozen=True, slots=True)
class MediaAllowed:
    """A moderator released its hold on your ``source``: you may unmute it again (it stays as you left it)."""

    source: Source


@dataclasses.dataclass(frozen=True, slots=True)
class UnmuteAsked:
    """To moderators: a participant asks them to release the hold on ``source``."""

    participant_id: str
    display_name: str
    source: Source


@dataclasses.dataclass(frozen=True, slots=True)
class MediaFailed:
    """The SFU saw this PeerConnection of yours fail: renegotiate it on a new one (restart_media), or leave
    with reason media_failed after ``seconds_left``."""

    pc: Literal["publish", "subscribe"]
    seconds_left: int


@dataclasses.dataclass(frozen=True, slots=True)
class Chat:
    entry: ChatEntry


@dataclasses.dataclass(frozen=True, slots=True)
class ReactionSent:
    participant_id: str
    reaction: Reaction


@dataclasses.dataclass(frozen=True, slots=True)
class Error:
    code: ErrorCode
    message: str
    event: str | None


ServerMessage = (
    Joined
    | LobbyWaiting
    | LobbyRejected
    | LobbyChanged
    | ParticipantJoined
    | ParticipantChanged
    | ParticipantLeft
    | HostChanged
    | ActiveSpeaker
    | MeetingChanged
    | MeetingWarning
    | MeetingEnded
    | Removed
    | PublishAnswer
    | SubscribeOffer
    | MediaRequest
    | MediaAllowed
    | UnmuteAsked
    | PublishLayers
    | MediaFailed
    | Chat
    | ReactionSent
    | Error
)

EVENT_NAMES: dict[type[ServerMessage], str] = {
    Joined: "joined",
    LobbyWaiting: "lobby_waiting",
    LobbyRejected: "lobby_rejected",
    LobbyChanged: "lobby_changed",
    ParticipantJoined: "participant_joined",
    ParticipantChanged: "participant_changed",
    ParticipantLeft: "participant_left",
    HostChanged: "host_changed",
    ActiveSpeaker: "active_speaker",
    MeetingChanged: "meeting_changed",
    MeetingWarning: "meeting_warning",
    MeetingEnded: "meeting_ended",
    Removed: "removed",
    PublishAnswer: "publish_answer",
    SubscribeOffer: "subscribe_offer",
    MediaRequest: "media_request",
    MediaAllowed: "media_allowed",
    UnmuteAsked: "unmute_asked",
    PublishLayers: "publish_layers",
    MediaFailed: "media_failed",
    Chat: "chat",
    ReactionSent: "reaction",
    Error: "error",
}

# --- the one serialise point ----------------------------------------------------------------------------


def _encode(value: object) -> JSON:
    if value is None or isinstance(value, bool | int | float | str):
        return value  # StrEnum members are str
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def to_wire(message: ServerMessage) -> tuple[str, dict[str, JSON]]:
    """The event name and the JSON payload of a server message."""
    payload = _encode(message)
    assert isinstance(payload, dict)
    return EVENT_NAMES[type(message)], payload


# --- the one parse point ---------------------------------------------------------------------------------


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_PAYLOAD, message)


def _object(data: object) -> Mapping[str, object]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _bad("the payload must be an object")
    return data


def _str(data: Mapping[str, object], name: str, max_length: int, *, allow_empty: bool = False) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise _bad(f"{name!r} must be a string")
    if len(value) > max_length:
        raise _bad(f"{name!r} is longer than {max_length} characters")
    if not allow_empty and not value.strip():
        raise _bad(f"{name!r} must not be empty")
    return value


def _opt_str(data: Mapping[str, object], name: str, max_length: int) -> str | None:
    return None if data.get(name) is None else _str(data, name, max_length)


def _int(data: Mapping[str, object], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{name!r} must be an integer from {low} to {high}")
    return value


def _bool(data: Mapping[str, object], name: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise _bad(f"{name!r} must be true or false")
    return value


E = TypeVar("E", bound=StrEnum)


def _enum(data: Mapping[str, object], name: str, enum: type[E]) -> E:
    value = data.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise _bad(f"{name!r} must be one of: {choices}") from None


def _publish_offer(d: Mapping[str, object]) -> PublishOffer:
    raw = d.get("sources")
    if not isinstance(raw, dict) or len(raw) > 16:
        raise _bad("'sources' must be an object mapping each mid to mic, camera or screen")
    sources = {
        _str({"mid": mid}, "mid", MAX_ID_LENGTH): _enum({"s": s}, "s", Source) for mid, s in raw.items()
    }
    return PublishOffer(_str(d, "sdp", MAX_SDP_LENGTH), sources)


def _pc(d: Mapping[str, object]) -> Literal["publish", "subscribe"]:
    pc = d.get("pc")
    if pc not in ("publish", "subscribe"):
        raise _bad("'pc' must be publish or subscribe")
    return "publish" if pc == "publish" else "subscribe"


def _candidate(d: Mapping[str, object]) -> Candidate:
    pc = _pc(d)
    index = None if d.get("sdp_mline_index") is None else _int(d, "sdp_mline_index", 0, 255)
    return Candidate(
        pc,
        _str(d, "candidate", MAX_CANDIDATE_LENGTH, allow_empty=True),
        _opt_str(d, "sdp_mid", MAX_ID_LENGTH),
        index,
    )


def _moderate(d: Mapping[str, object]) -> Moderate:
    action = _enum(d, "action", ModerationAction)
    target = _opt_str(d, "participant_id", MAX_ID_LENGTH)
    if action in TARGETED_ACTIONS and target is None:
        raise _bad(f"{action.value!r} needs 'participant_id'")
    return Moderate(action, target if action in TARGETED_ACTIONS else None)


def parse(event: str, data: object, *, chat_max_length: int) -> ClientMessage:
    """Parse one client event; raises ProtocolError with a code naming what is wrong."""
    d = _object(data)
    match event:
        case "publish_offer":
            return _publish_offer(d)
        case "subscribe":
            return Subscribe()
        case "subscribe_answer":
            return SubscribeAnswer(_str(d, "sdp", MAX_SDP_LENGTH))
        case "candidate":
            return _candidate(d)
        case "video_size":
            return VideoSize(
                _str(d, "track_id", MAX_ID_LENGTH),
                _int(d, "width", 0, MAX_VIDEO_SIDE),
                _int(d, "height", 0, MAX_VIDEO_SIDE),
            )
        case "media_state":
            return MediaState(_enum(d, "source", Source), _bool(d, "muted"))
        case "chat_send":
            text = d.get("text")
            if isinstance(text, str) and len(text) > chat_max_length:
                raise ProtocolError(
                    ErrorCode.TOO_LONG, f"a chat message has at most {chat_max_length} characters"
                )
            return ChatSend(_str(d, "text", chat_max_length), _opt_str(d, "to", MAX_ID_LENGTH))
        case "hand":
            return Hand(_bool(d, "raised"))
        case "reaction":
            return React(_enum(d, "reaction", Reaction))
        case "moderate":
            return _moderate(d)
        case "restart_media":
            return RestartMedia(_pc(d))
        case "ask_unmute":
            return AskUnmute(_enum(d, "source", Source))
        case "claim_host":
            return ClaimHost(_str(d, "host_key", MAX_HOST_KEY_LENGTH))
        case "leave":
            return Leave()
    raise ProtocolError(ErrorCode.UNKNOWN_EVENT, f"unknown event {event[:40]!r}")


def parse_auth(auth: object, *, display_name_max_length: int) -> JoinRequest:
    """Parse the Socket.IO ``auth`` object of a connection; raises ProtocolError(BAD_PAYLOAD)."""
    d = _object(auth)
    if "reconnect_token" in d:
        return Reconnect(_str(d, "reconnect_token", 200))
    name = _opt_str(d, "display_name", display_name_max_length)
    if "token" in d:
        return TokenJoin(_str(d, "token", 4_000), name, _rejoin_key(d))
    number = _str(d, "meeting_number", 20)
    if "access_token" in d:
        return LoginJoin(number, _str(d, "access_token", 4_000), name)
    if name is None:
        raise _bad("'display_name' is required to join with a passcode")
    return PasscodeJoin(
        number, _str(d, "passcode", 64, allow_empty=True), name, _device_id(d), _rejoin_key(d)
    )


def _rejoin_key(d: Mapping[str, object]) -> str | None:
    value = _opt_str(d, "rejoin_key", 128)
    if value is not None and not REJOIN_KEY.fullmatch(value):
        raise _bad("'rejoin_key' is not one this server issued")
    return value


def _device_id(d: Mapping[str, object]) -> str | None:
    value = _opt_str(d, "device_id", 64)
    if value is not None and not DEVICE_ID.fullmatch(value):
        raise _bad("'device_id' must be 16 to 64 characters from A-Z, a-z, 0-9, '-' and '_'")
    return value

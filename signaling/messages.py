"""Every message of the meeting protocol (docs/protocol.md): one parse point in, one serialise point out."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from signaling.errors import ErrorCode, ProtocolError
from signaling.fields import FieldParser, Items, Pattern, Range, Text, as_object, bad

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
    # The meeting moved to another worker (meeting_moved); the person joins it again there.
    MOVED = "moved"


# --- client -> server ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PublishOffer:
    sdp: Annotated[str, Text(MAX_SDP_LENGTH)]
    sources: Annotated[  # mid -> source
        dict[str, Source],
        Items(
            16, Text(MAX_ID_LENGTH), "'sources' must be an object mapping each mid to mic, camera or screen"
        ),
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class Subscribe:
    """The client's subscribe PeerConnection is ready: offer it now, and again whenever tracks change."""


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeAnswer:
    sdp: Annotated[str, Text(MAX_SDP_LENGTH)]


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    pc: Literal["publish", "subscribe"]
    candidate: Annotated[str, Text(MAX_CANDIDATE_LENGTH, allow_empty=True)]  # empty: end of candidates
    sdp_mid: Annotated[str | None, Text(MAX_ID_LENGTH)]
    sdp_mline_index: Annotated[int | None, Range(0, 255)]


@dataclasses.dataclass(frozen=True, slots=True)
class VideoSize:
    track_id: Annotated[str, Text(MAX_ID_LENGTH)]
    width: Annotated[int, Range(0, MAX_VIDEO_SIDE)]
    height: Annotated[int, Range(0, MAX_VIDEO_SIDE)]


@dataclasses.dataclass(frozen=True, slots=True)
class MediaState:
    source: Source
    muted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ChatSend:
    text: Annotated[
        str, Text(limit="chat_max_length", too_long="a chat message has at most {limit} characters")
    ]
    to: Annotated[str | None, Text(MAX_ID_LENGTH)]


@dataclasses.dataclass(frozen=True, slots=True)
class Hand:
    raised: bool


@dataclasses.dataclass(frozen=True, slots=True)
class React:
    reaction: Reaction


@dataclasses.dataclass(frozen=True, slots=True)
class Moderate:
    action: ModerationAction
    participant_id: Annotated[str | None, Text(MAX_ID_LENGTH)]  # only for TARGETED_ACTIONS


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

    host_key: Annotated[str, Text(MAX_HOST_KEY_LENGTH)]


@dataclasses.dataclass(frozen=True, slots=True)
class StartRecording:
    """A host or co-host starts recording the meeting (everyone sees meeting.recording turn true)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StopRecording:
    """A host or co-host stops recording; the composite is rendered after."""


@dataclasses.dataclass(frozen=True, slots=True)
class SipDial:
    """A host or co-host calls a registered room system (an Endpoint of the account) into the meeting."""

    endpoint_id: Annotated[int, Range(1, 2**31 - 1)]


@dataclasses.dataclass(frozen=True, slots=True)
class SipHangup:
    """A host or co-host hangs up a SIP call of the meeting (the call_id of its sip_call events)."""

    call_id: Annotated[str, Text(MAX_ID_LENGTH)]


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
    | StartRecording
    | StopRecording
    | SipDial
    | SipHangup
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
    StartRecording: "start_recording",
    StopRecording: "stop_recording",
    SipDial: "sip_dial",
    SipHangup: "sip_hangup",
    Leave: "leave",
}

# --- join requests (Socket.IO ``auth``) ---------------------------------------------------------------

REJOIN = Pattern(REJOIN_KEY, "'rejoin_key' is not one this server issued")


@dataclasses.dataclass(frozen=True, slots=True)
class TokenJoin:
    token: Annotated[str, Text(4_000)]
    display_name: Annotated[str | None, Text(limit="display_name_max_length")]
    rejoin_key: Annotated[str | None, Text(128), REJOIN] = (
        None  # from an earlier `joined` of this meeting (bans)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class PasscodeJoin:
    meeting_number: Annotated[str, Text(20)]
    passcode: Annotated[str, Text(64, allow_empty=True)]
    display_name: Annotated[str, Text(limit="display_name_max_length")]
    # A random id the browser keeps (localStorage): lets a moderator's removal stick to a passcode guest.
    device_id: Annotated[
        str | None,
        Text(64),
        Pattern(DEVICE_ID, "'device_id' must be 16 to 64 characters from A-Z, a-z, 0-9, '-' and '_'"),
    ] = None
    rejoin_key: Annotated[str | None, Text(128), REJOIN] = None


@dataclasses.dataclass(frozen=True, slots=True)
class LoginJoin:
    meeting_number: Annotated[str, Text(20)]
    access_token: Annotated[str, Text(4_000)]
    display_name: Annotated[str | None, Text(limit="display_name_max_length")]


@dataclasses.dataclass(frozen=True, slots=True)
class Reconnect:
    reconnect_token: Annotated[str, Text(200)]


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
class IceServer:
    """One STUN or TURN server for the client's PeerConnections (RTCIceServer's fields)."""

    urls: tuple[str, ...]
    username: str | None
    credential: str | None


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
    # STUN/TURN servers with this participant's time-limited TURN credential (signaling/turn.py).
    ice_servers: tuple[IceServer, ...] = ()


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
class Announcement:
    """A platform notice shown over the meeting (a maintenance window ahead); texts by locale (zh-CN, en)."""

    id: int
    kind: str
    title: dict[str, str]
    text: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingEnded:
    reason: EndReason


@dataclasses.dataclass(frozen=True, slots=True)
class MeetingMoved:
    """The meeting goes on in another worker (a drain timed out, or this worker's lease moved): leave and
    join again there, through ``base`` (``/w/{worker}/``); both None: locate it again."""

    worker: str | None
    base: str | None


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
class RecordingLink:
    """To the moderators when a recording stops: a page that follows its rendering and then plays it,
    without signing in (the host need not be an admin)."""

    url: str


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
class SipCallState:
    """To the moderators: a dial-out's progress (state ringing, joined or ended; ``reason`` once ended)."""

    call_id: str
    endpoint_id: int
    display_name: str
    state: str
    reason: str | None


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
    | Announcement
    | MeetingEnded
    | MeetingMoved
    | Removed
    | PublishAnswer
    | SubscribeOffer
    | MediaRequest
    | MediaAllowed
    | UnmuteAsked
    | PublishLayers
    | MediaFailed
    | RecordingLink
    | Chat
    | ReactionSent
    | SipCallState
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
    Announcement: "announcement",
    MeetingEnded: "meeting_ended",
    MeetingMoved: "meeting_moved",
    Removed: "removed",
    PublishAnswer: "publish_answer",
    SubscribeOffer: "subscribe_offer",
    MediaRequest: "media_request",
    MediaAllowed: "media_allowed",
    UnmuteAsked: "unmute_asked",
    PublishLayers: "publish_layers",
    MediaFailed: "media_failed",
    RecordingLink: "recording_link",
    Chat: "chat",
    ReactionSent: "reaction",
    SipCallState: "sip_call",
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

# Each client event's dataclass, read once: FieldParser validates a payload against its annotated fields.
_PARSERS: dict[str, FieldParser] = {name: FieldParser(cls) for cls, name in CLIENT_EVENT_NAMES.items()}
_JOINS = {cls: FieldParser(cls) for cls in (TokenJoin, PasscodeJoin, LoginJoin, Reconnect)}


def _checked(message: Any) -> ClientMessage:
    """What the fields alone cannot say."""
    if isinstance(message, Moderate):
        if message.action not in TARGETED_ACTIONS:
            return Moderate(message.action, None)
        if message.participant_id is None:
            raise bad(f"{message.action.value!r} needs 'participant_id'")
    result: ClientMessage = message
    return result


def parse(event: str, data: object, *, chat_max_length: int) -> ClientMessage:
    """Parse one client event; raises ProtocolError with a code naming what is wrong."""
    parser = _PARSERS.get(event)
    if parser is None:
        raise ProtocolError(ErrorCode.UNKNOWN_EVENT, f"unknown event {event[:40]!r}")
    return _checked(parser.parse(as_object(data), {"chat_max_length": chat_max_length}))


def parse_auth(auth: object, *, display_name_max_length: int) -> JoinRequest:
    """Parse the Socket.IO ``auth`` object of a connection; raises ProtocolError(BAD_PAYLOAD)."""
    d = as_object(auth)
    if "reconnect_token" in d:
        kind: type[JoinRequest] = Reconnect
    elif "token" in d:
        kind = TokenJoin
    elif "access_token" in d:
        kind = LoginJoin
    else:
        kind = PasscodeJoin
        if d.get("display_name") is None and isinstance(d.get("meeting_number"), str):
            raise bad("'display_name' is required to join with a passcode")
    request: JoinRequest = _JOINS[kind].parse(d, {"display_name_max_length": display_name_max_length})
    return request

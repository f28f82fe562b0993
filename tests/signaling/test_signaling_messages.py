"""Tier 1: the wire messages — one parse point, one serialise point — and small pure helpers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.chat import RateLimiter
from signaling.errors import ErrorCode, ProtocolError
from signaling.fields import FieldParser, Range
from signaling.files import FileLinks, FileStore, safe_name, sniff
from signaling.messages import (
    Candidate,
    ChatEntry,
    ChatSend,
    FileInfo,
    Joined,
    Leave,
    LoginJoin,
    MeetingInfo,
    MeetingWarning,
    Moderate,
    ModerationAction,
    PasscodeJoin,
    PublishOffer,
    Reconnect,
    Role,
    Source,
    TokenJoin,
    VideoSize,
    parse,
    parse_auth,
    to_wire,
)
from signaling.server import JsonPacket, socketio_server

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def p(event: str, data: object) -> object:
    return parse(event, data, chat_max_length=100)


def test_parse_valid_messages() -> None:
    assert p("publish_offer", {"sdp": "v=0", "sources": {"0": "mic", "1": "screen"}}) == PublishOffer(
        "v=0", {"0": Source.MIC, "1": Source.SCREEN}
    )
    assert p("candidate", {"pc": "subscribe", "candidate": "c", "sdp_mid": "0", "sdp_mline_index": 0}) == (
        Candidate("subscribe", "c", "0", 0)
    )
    assert p("video_size", {"track_id": "t", "width": 640, "height": 360}) == VideoSize("t", 640, 360)
    assert p("chat_send", {"text": "hi", "extra": 1}) == ChatSend("hi", None)
    assert p("moderate", {"action": "lock", "participant_id": "x"}) == Moderate(ModerationAction.LOCK, None)
    assert p("leave", None) == Leave()


@pytest.mark.parametrize(
    ("event", "data", "code"),
    [
        ("nope", {}, ErrorCode.UNKNOWN_EVENT),
        ("hand", [], ErrorCode.BAD_PAYLOAD),
        ("hand", {"raised": "yes"}, ErrorCode.BAD_PAYLOAD),
        ("publish_offer", {"sdp": "v=0", "sources": {"0": "speaker"}}, ErrorCode.BAD_PAYLOAD),
        ("publish_offer", {"sdp": "x" * 100_001, "sources": {}}, ErrorCode.BAD_PAYLOAD),
        ("candidate", {"pc": "both", "candidate": ""}, ErrorCode.BAD_PAYLOAD),
        ("video_size", {"track_id": "t", "width": -1, "height": 1}, ErrorCode.BAD_PAYLOAD),
        ("video_size", {"track_id": "t", "width": True, "height": 1}, ErrorCode.BAD_PAYLOAD),
        ("chat_send", {"text": "x" * 101}, ErrorCode.TOO_LONG),
        ("chat_send", {"text": "   "}, ErrorCode.BAD_PAYLOAD),
        ("moderate", {"action": "mute"}, ErrorCode.BAD_PAYLOAD),
        ("reaction", {"reaction": None}, ErrorCode.BAD_PAYLOAD),
    ],
)
def test_parse_refuses_with_a_code(event: str, data: object, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as exc:
        p(event, data)
    assert exc.value.code is code


def test_parse_auth() -> None:
    assert parse_auth({"token": "t"}, display_name_max_length=10) == TokenJoin("t", None)
    assert parse_auth(
        {"meeting_number": "1", "passcode": "", "display_name": "A"}, display_name_max_length=10
    ) == PasscodeJoin("1", "", "A")
    assert parse_auth({"meeting_number": "1", "access_token": "a"}, display_name_max_length=10) == LoginJoin(
        "1", "a", None
    )
    assert parse_auth({"reconnect_token": "r"}, display_name_max_length=10) == Reconnect("r")
    device = "Ab3_-" * 4
    assert parse_auth(
        {"meeting_number": "1", "passcode": "", "display_name": "A", "device_id": device},
        display_name_max_length=10,
    ) == PasscodeJoin("1", "", "A", device)
    for bad_device in ("short", "x" * 65, "has space in it ok", "ümlaut" * 4, 7):
        with pytest.raises(ProtocolError, match="device_id"):
            parse_auth(
                {"meeting_number": "1", "passcode": "", "display_name": "A", "device_id": bad_device},
                display_name_max_length=10,
            )
    for bad in (None, {}, {"meeting_number": "1", "passcode": "1"}, {"token": 5}, "x"):
        with pytest.raises(ProtocolError):
            parse_auth(bad, display_name_max_length=10)
    with pytest.raises(ProtocolError):
        parse_auth({"token": "t", "display_name": "x" * 11}, display_name_max_length=10)


def test_to_wire_encodes_nested_values() -> None:
    info = MeetingInfo("1", "123", "Room", False, False, NOW, NOW + timedelta(minutes=30))
    entry = ChatEntry("m", "a", "Ann", None, "", NOW, FileInfo("f", "a.pdf", 3, "application/pdf", "/u"))
    event, data = to_wire(Joined("a", "r", Role.HOST, False, info, (), None, (entry,), (), None))
    assert event == "joined"
    assert data["meeting"] == {
        "meeting_id": "1",
        "meeting_number": "123",
        "room_name": "Room",
        "locked": False,
        "recording": False,
        "started_at": "2026-11-21T09:00:00Z",
        "ends_at": "2026-11-21T09:30:00Z",
    }
    assert data["chat"][0]["file"]["name"] == "a.pdf"  # type: ignore[index,call-overload]
    assert to_wire(MeetingWarning(NOW, 60)) == (
        "meeting_warning",
        {"ends_at": "2026-11-21T09:00:00Z", "seconds_left": 60},
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
EVENTS = [
    "publish_offer",
    "subscribe_answer",
    "candidate",
    "video_size",
    "media_state",
    "chat_send",
    "hand",
    "reaction",
    "moderate",
    "leave",
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EVENTS) | st.text(max_size=20), json_values)
def test_parse_only_ever_raises_protocol_error(event: str, data: object) -> None:
    try:
        p(event, data)
    except ProtocolError as exc:
        assert exc.code in ErrorCode


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_parse_auth_only_ever_raises_protocol_error(auth: object) -> None:
    with contextlib.suppress(ProtocolError):
        parse_auth(auth, display_name_max_length=64)


def test_rate_limiter_window() -> None:
    limit = RateLimiter(2, timedelta(seconds=5))
    assert limit.allow(NOW) and limit.allow(NOW)
    assert not limit.allow(NOW + timedelta(seconds=4))
    assert limit.allow(NOW + timedelta(seconds=5))


def test_sniff_and_names() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff("你好, world".encode()) == "text/plain; charset=utf-8"
    assert sniff(b"\xff\xfe\x00\x01\x02garbage\x80\x81") == "application/octet-stream"
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\x\\report.pdf") == "report.pdf"
    assert safe_name("..\x00\n") == "file"


def test_links_are_bound_to_purpose_meeting_file_and_time() -> None:
    links = FileLinks("k", prefix="/files", ttl=timedelta(hours=1))
    url = links.download_url(5, "ab" * 8, "pid", NOW)
    path, query = url.split("?")
    assert path == "/files/5/" + "ab" * 8
    q = dict(part.split("=") for part in query.split("&"))
    assert links.verify("download", 5, "ab" * 8, q, NOW) == "pid"
    for purpose, meeting, subject, when in (
        ("upload", 5, "ab" * 8, NOW),
        ("download", 6, "ab" * 8, NOW),
        ("download", 5, "cd" * 8, NOW),
        ("download", 5, "ab" * 8, NOW + timedelta(hours=2)),
    ):
        with pytest.raises(ValueError):
            links.verify(purpose, meeting, subject, q, when)
    with pytest.raises(ValueError):
        links.verify("download", 5, "ab" * 8, {**q, "p": "other"}, NOW)


def test_file_store_commit_lookup_and_sweep(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    file_id, part = store.create(9)
    part.write_bytes(b"%PDF-1.4 hello")
    stored = store.commit(9, file_id, name="../a.pdf", uploader_id="p", now=NOW)
    assert (stored.name, stored.size, stored.content_type) == ("a.pdf", 14, "application/pdf")
    assert store.lookup(9, file_id) == stored
    assert store.lookup(9, "../../x") is None
    assert store.sweep(NOW + timedelta(hours=1), timedelta(hours=2)) == 0
    assert store.sweep(NOW + timedelta(hours=2), timedelta(hours=2)) == 1
    assert store.lookup(9, file_id) is None
    assert not (tmp_path / "9").exists()


def test_session_deadline_is_the_earliest_limit() -> None:
    from rooms.policy import Terms, Window
    from signaling.admission import session_deadline
    from signaling.ports import RoomView

    terms = Terms(10, None, False, timedelta(minutes=90))
    window = Window(NOW - timedelta(minutes=10), NOW + timedelta(minutes=65), NOW + timedelta(minutes=60))
    assert session_deadline(RoomView(1, 1, "1", "r", terms), NOW) == NOW + timedelta(minutes=90)
    assert session_deadline(RoomView(1, 1, "1", "r", terms, window), NOW) == NOW + timedelta(minutes=65)
    no_limit = Terms(10, None, False, None)
    assert session_deadline(RoomView(1, 1, "1", "r", no_limit), NOW) is None


@pytest.mark.parametrize(
    ("role", "locked", "outcome"),
    [
        (Role.RECORDER, True, "admit"),
        (Role.VIEWER, True, "locked"),
        (Role.PARTICIPANT, True, "locked"),
        (Role.HOST, True, "full"),  # hosts pass the lock, not the capacity
        (Role.RECORDER, False, "admit"),
        (Role.VIEWER, False, "admit"),  # viewers and recorders do not count toward capacity
        (Role.PARTICIPANT, False, "full"),
        (Role.HOST, False, "full"),
    ],
)
def test_admission_maps_roles_onto_the_rooms_policy(role: Role, locked: bool, outcome: str) -> None:
    from rooms.policy import Terms
    from signaling.admission import ConferenceView, Identity, decide
    from signaling.errors import JoinRefused
    from signaling.ports import RoomView

    room = RoomView(1, 1, "1", "r", Terms(2, None, False, None))
    full = ConferenceView(present=2, locked=locked)
    if outcome == "admit":
        assert decide(Identity(room, role, "x", None, True), full, now=NOW) is True
    else:
        with pytest.raises(JoinRefused) as exc:
            decide(Identity(room, role, "x", None, True), full, now=NOW)
        assert exc.value.code == outcome


def test_protocol_doc_lists_every_event_and_code() -> None:
    """docs/protocol.md changes with the code: every event and every code must have its table row."""
    from signaling.errors import RefusalCode
    from signaling.messages import CLIENT_EVENT_NAMES, EVENT_NAMES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    names = [*CLIENT_EVENT_NAMES.values(), *EVENT_NAMES.values(), *ErrorCode, *RefusalCode]
    missing = [name for name in names if f"| `{name}` |" not in doc]
    assert missing == []
    for action in ModerationAction:
        assert f"`{action.value}`" in doc


def test_the_socketio_server_sends_json_packets_without_searching_them_for_bytes() -> None:
    assert socketio_server().packet_class is JsonPacket
    payload = {"participants": [{"id": "p1", "name": "Ada"}], "n": 1}
    packet = JsonPacket(data=["joined", payload])
    assert packet.packet_type == 2  # EVENT, not BINARY_EVENT
    assert packet.encode() == '2["joined",' + json.dumps(payload, separators=(",", ":")) + "]"


def test_the_parser_reads_every_event_from_its_dataclass_and_refuses_undeclared_fields() -> None:
    """One parser over annotated fields (signaling/fields.py): a field it cannot read fails at import,
    and a payload is checked field by field with the declared limits."""

    @dataclasses.dataclass(frozen=True)
    class Unbounded:
        count: int

    with pytest.raises(TypeError, match="needs a Range"):
        FieldParser(Unbounded)

    @dataclasses.dataclass(frozen=True)
    class Odd:
        when: datetime

    with pytest.raises(TypeError, match="not a wire field type"):
        FieldParser(Odd)

    @dataclasses.dataclass(frozen=True)
    class Bounded:
        count: Annotated[int | None, Range(1, 3)]

    parser = FieldParser(Bounded)
    assert parser.parse({}, {}) == Bounded(None) and parser.parse({"count": 3}, {}) == Bounded(3)
    with pytest.raises(ProtocolError, match="from 1 to 3"):
        parser.parse({"count": 4}, {})
    assert p("video_size", {"track_id": "t", "width": 0, "height": 16_384}) == VideoSize("t", 0, 16_384)
    with pytest.raises(ProtocolError, match="'track_id' is longer than 100"):
        p("video_size", {"track_id": "t" * 101, "width": 0, "height": 0})

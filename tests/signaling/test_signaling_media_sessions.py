"""MeetingServer.admit_media_session / end_media_session on fakes: WHIP and WHEP sessions as participants."""

from __future__ import annotations

import pytest

from signaling.errors import JoinRefused, RefusalCode
from tests.signaling.signaling_fakes import Harness, join_token


async def test_a_whip_session_is_a_counted_participant_until_it_ends(harness: Harness) -> None:
    room = harness.store.add_room(capacity=2)
    ann, _ = await harness.join(room, "host", "Ann")
    session = await harness.server.admit_media_session(join_token(room, "participant", "OBS"), "whip")
    assert session.id.startswith("whip-") and session.kind == "whip"
    peer = harness.router().peers[session.id]
    assert peer.publish  # the SFU peer exists, named by the session id, before the answer is made
    joined = (await ann.expect("participant_joined"))["participant"]
    assert (joined["participant_id"], joined["role"]) == (session.id, "participant")
    with pytest.raises(JoinRefused) as refused:
        await harness.server.admit_media_session(join_token(room, "participant", "OBS 2"), "whip")
    assert refused.value.code is RefusalCode.FULL
    viewer = await harness.server.admit_media_session(join_token(room, "participant", "Player"), "viewer")
    assert viewer.id.startswith("whep-") and not harness.router().peers[viewer.id].publish
    assert (await ann.expect("participant_joined"))["participant"]["role"] == "viewer"

    await harness.server.end_media_session(session.id, "left")
    await harness.server.end_media_session(session.id, "left")  # idempotent
    assert (await ann.expect("participant_left"))["reason"] == "left"
    assert [(a.kind, a.leave_reason) for a in harness.store.attendance] == [
        ("browser", None),
        ("whip", "left"),
        ("viewer", None),
    ]


async def test_whip_in_a_lobby_room_needs_a_host_token(harness: Harness) -> None:
    room = harness.store.add_room(lobby=True)
    with pytest.raises(JoinRefused) as refused:
        await harness.server.admit_media_session(join_token(room, "participant", "OBS"), "whip")
    assert refused.value.code is RefusalCode.NOT_AUTHORISED
    assert harness.server.conferences() == []  # nothing is left behind
    session = await harness.server.admit_media_session(join_token(room, "host", "OBS"), "whip")
    (conference,) = harness.server.conferences()
    participant = conference.participant(session.id)
    assert participant is not None and participant.role.value == "participant"  # an encoder never moderates
    # The first admitted session started the meeting; a viewer needs no lobby either.
    assert harness.store.meetings and session.meeting_id == str(next(iter(harness.store.meetings)))
    await harness.server.admit_media_session(join_token(room, "viewer", "Player"), "viewer")


async def test_viewer_and_recorder_tokens_cannot_publish(harness: Harness) -> None:
    room = harness.store.add_room()
    for role in ("viewer", "recorder"):
        with pytest.raises(JoinRefused) as refused:
            await harness.server.admit_media_session(join_token(room, role, "X"), "whip")
        assert refused.value.code is RefusalCode.NOT_AUTHORISED

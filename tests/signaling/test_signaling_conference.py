"""Tier 2: a MeetingServer on fakes — joining, media negotiation, state, chat, timers, lobby, reconnect."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from rooms.policy import Window
from rooms.tokens import mint_access_token
from sfu.events import (
    ActiveSpeakerChanged,
    LayersWanted,
    SubscriberNeedsOffer,
    TrackPublished,
    TrackUnpublished,
)
from signaling.messages import LeaveReason
from signaling.ports import UserView
from tests.signaling.signaling_fakes import SECRET, T0, Harness, Refused, join_token


async def test_two_participants_join_with_tokens_and_see_each_other(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, joined = await harness.join(room, "host", "Ann")
    assert joined["role"] == "host"
    assert [p["display_name"] for p in joined["participants"]] == ["Ann"]
    assert joined["meeting"]["meeting_number"] == room.meeting_number
    assert joined["upload_url"].startswith("/files/")
    _bob, joined_b = await harness.join(room, "participant", "Bob")
    assert {p["display_name"] for p in joined_b["participants"]} == {"Ann", "Bob"}
    seen = await ann.expect("participant_joined")
    assert seen["participant"]["participant_id"] == joined_b["participant_id"]
    (meeting,) = harness.store.meetings.values()
    assert meeting.ended_at is None
    kinds = [(a.display_name, a.kind) for a in harness.store.attendance]
    assert kinds == [("Ann", "browser"), ("Bob", "browser")]


async def test_publish_subscribe_and_candidates_go_to_the_peer(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, joined = await harness.join(room, "host", "Ann")
    pid = joined["participant_id"]
    await ann.emit("publish_offer", {"sdp": "v=0 ann", "sources": {"0": "mic", "1": "camera"}})
    assert (await ann.expect("publish_answer"))["sdp"] == "answer to v=0 ann"
    router = harness.router()
    _, bob = await harness.join(room, "participant", "Bob")
    router.emit(TrackPublished(bob["participant_id"], "other:0", "audio", "mic"))
    router.peers[pid].mids = {"0": "other:0"}  # the SFU has Bob's stream to offer
    router.emit(SubscriberNeedsOffer(pid))  # ignored: the client has not asked to subscribe yet
    await ann.emit("subscribe")
    router.emit(SubscriberNeedsOffer(pid))  # arrives while the first offer is outstanding
    offer = await ann.expect("subscribe_offer")
    assert offer == {"sdp": "offer 1", "tracks": {"0": "other:0"}}
    await ann.emit("subscribe_answer", {"sdp": "answer 1"})
    assert (await ann.expect("subscribe_offer"))["sdp"] == "offer 2"
    await ann.emit("subscribe_answer", {"sdp": "answer 2"})
    await ann.emit(
        "candidate", {"pc": "publish", "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdp_mid": "0"}
    )
    await ann.emit("candidate", {"pc": "subscribe", "candidate": ""})  # end of candidates: ignored
    await ann.emit("leave")
    await harness.store.wait_left(pid)
    peer_log = router.removed
    assert peer_log == [pid]


async def test_no_subscribe_offer_until_there_is_something_to_receive(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, a = await harness.join(room, "host", "Ann")
    _bob, b = await harness.join(room, "participant", "Bob")
    router = harness.router()
    await ann.emit("subscribe")
    await ann.emit("hand", {"raised": True})  # a later event, to know the subscribe was handled
    await ann.expect("participant_changed")
    assert router.peers[a["participant_id"]].offers == 0  # an offer without m-sections is invalid SDP
    router.emit(TrackPublished(b["participant_id"], "t1", "video", "camera"))
    router.peers[a["participant_id"]].mids = {"0": "t1"}
    router.emit(SubscriberNeedsOffer(a["participant_id"]))
    assert await ann.expect("subscribe_offer") == {"sdp": "offer 1", "tracks": {"0": "t1"}}


async def test_tracks_active_speaker_and_video_size(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, a = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    router = harness.router()
    router.emit(TrackPublished(b["participant_id"], "t1", "video", "camera"))
    changed = await ann.expect("participant_changed")
    assert changed["participant"]["tracks"] == [{"track_id": "t1", "kind": "video", "source": "camera"}]
    await ann.emit("video_size", {"track_id": "t1", "width": 320, "height": 180})
    await ann.emit("video_size", {"track_id": "nope", "width": 320, "height": 180})
    assert (await ann.expect("error"))["code"] == "not_found"
    assert router.peers[a["participant_id"]].sizes == {"t1": (320, 180)}
    router.emit(ActiveSpeakerChanged(b["participant_id"]))
    assert (await ann.expect("active_speaker"))["participant_id"] == b["participant_id"]
    router.emit(TrackUnpublished(b["participant_id"], "t1"))
    assert (await bob.expect("participant_changed"))["participant"]["tracks"] == [
        {"track_id": "t1", "kind": "video", "source": "camera"}
    ]
    assert (await bob.expect("participant_changed"))["participant"]["tracks"] == []


async def test_publisher_is_told_which_simulcast_layers_are_watched(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _ = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    router = harness.router()
    router.emit(LayersWanted(b["participant_id"], "t1", "1", ("q", "h")))
    assert await bob.expect("publish_layers") == {"mid": "1", "rids": ["q", "h"]}
    router.emit(LayersWanted("gone", "t2", "0", ("q",)))  # a publisher who left meanwhile: nobody to tell
    await ann.emit("hand", {"raised": True})
    assert (await bob.expect("participant_changed"))["participant"]["hand_raised"] is True
    assert [name for name, _ in bob.seen].count("publish_layers") == 1  # only to the track's publisher
    assert "publish_layers" not in [name for name, _ in ann.seen + ann.drain()]


async def test_guest_joins_with_meeting_number_and_passcode(harness: Harness) -> None:
    room = harness.store.add_room()
    await harness.join(room, "host", "Ann")
    guest = await harness.guest(room, "Carol")
    joined = await guest.expect("joined")
    assert joined["role"] == "participant"
    with pytest.raises(Refused) as refused:
        await harness.guest(room, "Mallory", passcode="0000")
    assert refused.value.code == "wrong_passcode"
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"meeting_number": "999", "passcode": "4321", "display_name": "X"})
    assert refused.value.code == "no_such_meeting"
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"token": "not-a-token"})
    assert refused.value.code == "bad_token"
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"meeting_number": 5})
    assert refused.value.code == "bad_auth"


async def test_capacity_refuses_the_next_participant_but_not_a_viewer(harness: Harness) -> None:
    room = harness.store.add_room(capacity=3)
    for name in ("A", "B", "C"):
        await harness.join(room, "participant", name)
    with pytest.raises(Refused) as refused:
        await harness.join(room, "participant", "D")
    assert refused.value.code == "full"
    _viewer, joined = await harness.join(room, "viewer", "Watcher")
    assert joined["role"] == "viewer"
    assert harness.store.attendance[-1].kind == "viewer"


async def test_booking_window_is_enforced(harness: Harness) -> None:
    window = Window(opens_at=T0 + timedelta(minutes=10), closes_at=T0 + timedelta(hours=1), booking_end=T0)
    room = harness.store.add_room(window=window)
    with pytest.raises(Refused) as refused:
        await harness.join(room)
    assert refused.value.code == "not_open"


async def test_time_limit_warns_then_ends_and_closes_every_attendance(harness: Harness) -> None:
    room = harness.store.add_room(max_session=timedelta(minutes=30))
    ann, joined = await harness.join(room, "host", "Ann")
    bob, _ = await harness.join(room, "participant", "Bob")
    assert joined["meeting"]["ends_at"] == "2026-11-21T09:30:00Z"
    harness.clock.advance(24 * 60)
    assert bob.drain() == []
    harness.clock.advance(60)
    warning = await bob.expect("meeting_warning")
    assert warning == {"ends_at": "2026-11-21T09:30:00Z", "seconds_left": 300}
    harness.clock.advance(4 * 60)
    assert (await ann.expect("meeting_warning"))["seconds_left"] == 300
    assert (await ann.expect("meeting_warning"))["seconds_left"] == 60
    harness.clock.advance(60)
    assert await bob.expect("meeting_ended") == {"reason": "time_limit"}
    (meeting,) = harness.store.meetings.values()
    async with __import__("asyncio").timeout(5):
        await meeting.ended.wait()
    assert meeting.end_reason == "time_limit"
    assert meeting.ended_at == T0 + timedelta(minutes=30)
    assert all(a.left_at == meeting.ended_at for a in harness.store.attendance)
    assert {a.leave_reason for a in harness.store.attendance} == {"meeting_ended"}
    await bob.disconnected.wait()
    assert harness.router().closed
    assert harness.server.conferences() == []


async def test_an_empty_meeting_ends_after_the_grace_period(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, joined = await harness.join(room, "host", "Ann")
    viewer, _ = await harness.join(room, "viewer", "Watcher")
    await ann.emit("leave")
    await harness.store.wait_left(joined["participant_id"])
    harness.clock.advance(harness.settings.empty_meeting_grace_seconds - 1)
    bob, b = await harness.join(room, "participant", "Bob")  # a join within the grace keeps the meeting
    harness.clock.advance(5)
    assert harness.store.meetings[100].ended_at is None
    await bob.emit("leave")
    await harness.store.wait_left(b["participant_id"])
    harness.clock.advance(harness.settings.empty_meeting_grace_seconds)
    assert await viewer.expect("meeting_ended") == {"reason": "empty"}
    (meeting,) = harness.store.meetings.values()
    await meeting.ended.wait()
    assert meeting.end_reason == "empty"


async def test_lobby_host_admits_and_rejects(harness: Harness) -> None:
    room = harness.store.add_room(lobby=True)
    host, _ = await harness.join(room, "host", "Ann")
    guest = await harness.guest(room, "Carol")
    waiting = await guest.expect("lobby_waiting")
    assert waiting == {"meeting_number": room.meeting_number, "room_name": room.name}
    lobby = await host.expect("lobby_changed")
    (entry,) = lobby["waiting"]
    assert entry["display_name"] == "Carol"
    await guest.emit("chat_send", {"text": "let me in"})
    assert (await guest.expect("error"))["code"] == "bad_state"
    await host.emit("moderate", {"action": "admit", "participant_id": entry["participant_id"]})
    joined = await guest.expect("joined")
    assert joined["participant_id"] == entry["participant_id"]
    assert (await host.expect("lobby_changed"))["waiting"] == []
    other = await harness.guest(room, "Dave")
    await other.expect("lobby_waiting")
    entry = (await host.expect("lobby_changed"))["waiting"][0]
    await host.emit("moderate", {"action": "reject", "participant_id": entry["participant_id"]})
    assert (await other.expect("lobby_rejected"))["code"] == "rejected"
    await other.disconnected.wait()
    assert [a.display_name for a in harness.store.attendance] == ["Ann", "Carol"]


async def test_a_guest_waits_before_any_host_and_can_leave(harness: Harness) -> None:
    room = harness.store.add_room(lobby=True)
    guest = await harness.guest(room, "Carol")
    await guest.expect("lobby_waiting")
    assert harness.store.meetings == {}
    (conference,) = harness.server.conferences()
    (waiting,) = conference.lobby()
    await guest.drop()
    await waiting.close(LeaveReason.LEFT)  # idempotent: returns once the drop has been handled
    assert harness.server.conferences() == []
    _host, joined = await harness.join(room, "host", "Ann")
    assert joined["lobby"] == []


async def test_reconnect_within_grace_keeps_identity_and_others_see_nothing(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _a = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    await ann.expect("participant_joined")
    await bob.emit("hand", {"raised": True})
    await ann.expect("participant_changed")
    await bob.drop()
    harness.clock.advance(harness.settings.reconnect_grace_seconds - 1)
    again = await harness.sio.connect({"reconnect_token": b["reconnect_token"]})
    joined = await again.expect("joined")
    assert joined["reconnected"] is True
    assert joined["participant_id"] == b["participant_id"]
    assert joined["role"] == "participant"
    me = next(p for p in joined["participants"] if p["participant_id"] == b["participant_id"])
    assert me["hand_raised"] is True
    assert joined["reconnect_token"] != b["reconnect_token"]
    harness.clock.advance(10)  # past the first grace deadline: the cancelled timer must not fire
    await again.emit("chat_send", {"text": "back"})
    assert (await ann.expect("chat"))["entry"]["text"] == "back"
    assert [e for e, _ in ann.seen if e in ("participant_left", "participant_joined")] == [
        "participant_joined"
    ]
    assert harness.router().removed == [b["participant_id"]]  # the old peer was replaced
    assert all(a.left_at is None for a in harness.store.attendance)
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"reconnect_token": b["reconnect_token"]})
    assert refused.value.code == "reconnect_expired"


async def test_after_the_grace_period_a_leave_is_recorded(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _ = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    await bob.drop()
    harness.clock.advance(harness.settings.reconnect_grace_seconds)
    left = await ann.expect("participant_left")
    assert left == {"participant_id": b["participant_id"], "reason": "connection_lost"}
    row = await harness.store.wait_left(b["participant_id"])
    assert row.leave_reason == "connection_lost"
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"reconnect_token": b["reconnect_token"]})
    assert refused.value.code == "reconnect_expired"


async def test_chat_public_private_history_length_and_rate(tmp_path: Path) -> None:
    h = Harness(tmp_path, chat_max_length=20, chat_rate_count=3, chat_history_size=2)
    try:
        room = h.store.add_room()
        ann, _a = await h.join(room, "host", "Ann")
        bob, b = await h.join(room, "participant", "Bob")
        await ann.emit("chat_send", {"text": "one"})
        await ann.emit("chat_send", {"text": "two"})
        await ann.emit("chat_send", {"text": "secret", "to": b["participant_id"]})
        texts = [(await bob.expect("chat"))["entry"]["text"] for _ in range(3)]
        assert texts == ["one", "two", "secret"]
        await ann.emit("chat_send", {"text": "four"})
        assert (await ann.expect("error"))["code"] == "rate_limited"
        h.clock.advance(h.settings.chat_rate_window_seconds)
        await ann.emit("chat_send", {"text": "x" * 21})
        assert (await ann.expect("error"))["code"] == "too_long"
        await ann.emit("chat_send", {"text": "three"})
        await ann.emit("chat_send", {"text": "hi", "to": "nobody"})
        assert (await ann.expect("error"))["code"] == "not_found"
        _carol, c = await h.join(room, "participant", "Carol")
        assert [e["text"] for e in c["chat"]] == ["two", "three"]  # bounded; private messages excluded
        assert all(e["to"] is None for e in c["chat"])
    finally:
        await h.server.close()


async def test_hands_and_reactions(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _a = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    await bob.emit("hand", {"raised": True})
    assert (await ann.expect("participant_changed"))["participant"]["hand_raised"] is True
    await bob.emit("reaction", {"reaction": "clap"})
    assert await ann.expect("reaction") == {"participant_id": b["participant_id"], "reaction": "clap"}
    await bob.emit("reaction", {"reaction": "poop"})
    assert (await bob.expect("error"))["code"] == "bad_payload"


async def test_protocol_errors_are_reported_then_the_client_is_disconnected(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_protocol_errors=3)
    try:
        room = h.store.add_room()
        ann, a = await h.join(room, "host", "Ann")
        await ann.emit("no_such_event", {})
        assert await ann.expect("error") == {
            "code": "unknown_event",
            "message": "unknown event 'no_such_event'",
            "event": "no_such_event",
        }
        await ann.emit("hand", "not an object")
        assert (await ann.expect("error"))["code"] == "bad_payload"
        await ann.emit_raw(42, 1, 2)
        await ann.disconnected.wait()
        row = await h.store.wait_left(a["participant_id"])
        assert row.leave_reason == "protocol_errors"
    finally:
        await h.server.close()


async def test_a_failed_negotiation_is_reported_and_the_participant_stays(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _ = await harness.join(room, "host", "Ann")
    await ann.emit("publish_offer", {"sdp": "fail", "sources": {}})
    assert (await ann.expect("error"))["code"] == "negotiation_failed"
    await ann.emit("subscribe_answer", {"sdp": "unsolicited"})
    assert (await ann.expect("error"))["code"] == "bad_state"
    await ann.emit("chat_send", {"text": "still here"})
    assert (await ann.expect("chat"))["entry"]["text"] == "still here"


async def test_viewer_cannot_publish(harness: Harness) -> None:
    room = harness.store.add_room()
    viewer, joined = await harness.join(room, "viewer", "Watcher")
    assert harness.router().peers[joined["participant_id"]].publish is False
    await viewer.emit("publish_offer", {"sdp": "v=0", "sources": {}})
    assert (await viewer.expect("error"))["code"] == "not_allowed"


async def test_server_close_ends_every_meeting(harness: Harness) -> None:
    room = harness.store.add_room()
    ann, _ = await harness.join(room, "host", "Ann")
    await harness.server.close()
    assert await ann.expect("meeting_ended") == {"reason": "server_shutdown"}
    (meeting,) = harness.store.meetings.values()
    assert meeting.end_reason == "server_shutdown"
    with pytest.raises(Refused) as refused:
        await harness.join(room, "host", "Ann")
    assert refused.value.code == "server_closing"


HOUR = timedelta(hours=1)


async def test_a_logged_in_organizer_joins_as_host(harness: Harness) -> None:
    room = harness.store.add_room(lobby=True)
    for user in (UserView(3, room.account_id, "organizer", ""), UserView(4, 99, "organizer", "")):
        harness.store.users[user.user_id] = user
    harness.store.users[5] = UserView(5, None, "admin", "")
    mine, _ = mint_access_token(
        SECRET, user_id=3, account_id=room.account_id, role="organizer", now=T0, ttl=HOUR
    )
    other, _ = mint_access_token(SECRET, user_id=4, account_id=99, role="organizer", now=T0, ttl=HOUR)
    admin, _ = mint_access_token(SECRET, user_id=5, account_id=None, role="admin", now=T0, ttl=HOUR)
    client = await harness.sio.connect({"meeting_number": room.meeting_number, "access_token": mine})
    assert (await client.expect("joined"))["role"] == "host"  # hosts skip the lobby
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"meeting_number": room.meeting_number, "access_token": other})
    assert refused.value.code == "not_authorised"
    client = await harness.sio.connect({"meeting_number": room.meeting_number, "access_token": admin})
    assert (await client.expect("joined"))["role"] == "host"
    with pytest.raises(Refused) as refused:
        await harness.sio.connect({"meeting_number": room.meeting_number, "access_token": "x"})
    assert refused.value.code == "bad_token"


async def test_a_store_failure_disconnects_with_an_internal_error(harness: Harness) -> None:
    room = harness.store.add_room()

    async def broken(*args: object, **kwargs: object) -> int:
        raise OSError("database is down")

    harness.store.start_meeting = broken  # type: ignore[method-assign]
    client = await harness.sio.connect({"token": join_token(room, "host", "Ann")})
    assert (await client.expect("error"))["code"] == "internal"
    await client.disconnected.wait()
    assert harness.server.conferences() == []


async def test_the_sweeper_removes_expired_files(tmp_path: Path) -> None:
    h = Harness(tmp_path, file_retention_seconds=600)
    try:
        file_id, part = h.server.files.create(100)
        part.write_bytes(b"hello")
        h.server.files.commit(100, file_id, name="a.txt", uploader_id="p", now=T0)
        h.clock.timer_added.clear()
        h.server.start()
        async with asyncio.timeout(5):
            await h.clock.timer_added.wait()  # first sweep done, next one scheduled
        assert h.server.files.lookup(100, file_id) is not None
        h.clock.timer_added.clear()
        h.clock.advance(600)
        async with asyncio.timeout(5):
            await h.clock.timer_added.wait()
        assert h.server.files.lookup(100, file_id) is None
    finally:
        await h.server.close()


async def test_a_client_that_stops_reading_is_disconnected_without_stalling_others(tmp_path: Path) -> None:
    h = Harness(tmp_path, outbox_limit=10)
    try:
        room = h.store.add_room()
        ann, _ = await h.join(room, "host", "Ann")
        slow, s = await h.join(room, "participant", "Slow")
        stuck = asyncio.Event()
        real_emit = h.sio.emit

        async def emit(event: str, data: object = None, to: str | None = None) -> None:
            if to == slow.sid:
                await stuck.wait()  # this client never reads again
            await real_emit(event, data, to)

        h.sio.emit = emit  # type: ignore[method-assign]
        for i in range(12):
            h.clock.advance(1)  # one toggle a second stays within the hand's rate limit
            await ann.emit("hand", {"raised": i % 2 == 0})
            await ann.expect("participant_changed")  # Ann keeps reading; Slow does not
        left = await ann.expect("participant_left")
        assert left == {"participant_id": s["participant_id"], "reason": "slow_client"}
        async with asyncio.timeout(1):  # hung up at once, not after a drain timeout
            await slow.disconnected.wait()
        row = await h.store.wait_left(s["participant_id"])
        assert row.leave_reason == "slow_client"
    finally:
        await h.server.close()

"""Start and stop recording in a live meeting (signaling/recording.py) on the real Socket.IO server.

The port is a small fake that seats the server's recorder through Conference.join_recorder, as
yunhui/recordings.py does; the engine behind it is tested in its own files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from rooms.models import Attendance, Room
from signaling.conference import Conference
from signaling.messages import LeaveReason
from signaling.participant import Participant
from signaling.recording import RecordingUnavailable
from tests.signaling.live_server import Client, Live, start_live


class FakeRecordings:
    def __init__(self) -> None:
        self.recorders: dict[int, Participant] = {}
        self.started_by: list[str] = []
        self.left: list[int] = []
        self.fail: str | None = None
        self.link: str | None = None

    async def start(self, conference: Conference, *, started_by: str) -> None:
        if self.fail is not None:
            raise RecordingUnavailable(self.fail)
        recorder = conference.join_recorder("Recorder")
        assert await recorder.wait_joined()
        assert conference.meeting_id is not None
        self.recorders[conference.meeting_id] = recorder
        self.started_by.append(started_by)

    async def stop(self, meeting_id: int) -> None:
        recorder = self.recorders.pop(meeting_id, None)
        if recorder is not None:
            await recorder.close(LeaveReason.LEFT)

    def recorder_left(self, meeting_id: int) -> str | None:
        self.left.append(meeting_id)
        return self.link


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:  # capacity 3, empty-meeting grace 60 s
        yield state


async def _recording(client: Client) -> bool:
    changed = await client.expect("meeting_changed")
    flag: bool = changed["meeting"]["recording"]
    return flag


async def _error(client: Client) -> tuple[str, str]:
    error = await client.expect("error")
    return error["code"], error["event"]


async def test_the_host_starts_and_stops_and_everyone_sees_the_indicator(live: Live) -> None:
    port = FakeRecordings()
    live.server.recordings = port
    ann, _ = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    carol, _ = await live.join("participant", "Carol")  # the room's capacity: the recorder is not counted

    await bob.sio.emit("start_recording", {})
    assert await _error(bob) == ("not_allowed", "start_recording")

    await ann.sio.emit("start_recording", {})
    for client in (ann, bob, carol):
        assert await _recording(client) is True
    assert port.started_by == ["Ann"]
    await ann.sio.emit("start_recording", {})
    assert await _error(ann) == ("bad_state", "start_recording")

    (conference,) = live.server.conferences()
    assert conference.view().present == 3  # the recorder does not count toward capacity
    await bob.sio.emit("stop_recording", {})
    assert await _error(bob) == ("not_allowed", "stop_recording")
    await ann.sio.emit("stop_recording", {})
    for client in (ann, bob, carol):
        assert await _recording(client) is False
    assert port.left == [conference.meeting_id]
    await ann.sio.emit("stop_recording", {})
    assert await _error(ann) == ("bad_state", "stop_recording")

    async with live.db.session() as session:
        rows = (await session.scalars(select(Attendance).where(Attendance.kind == "recorder"))).all()
    assert [(r.display_name, r.leave_reason, r.device_class) for r in rows] == [
        ("Recorder", "left", "system")
    ]


async def test_a_late_joiner_is_told_and_a_cohost_may_stop(live: Live) -> None:
    port = FakeRecordings()
    live.server.recordings = port
    ann, _ = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    await ann.sio.emit("start_recording", {})
    assert await _recording(bob) is True
    _dave, joined = await live.join("participant", "Dave")
    assert joined["meeting"]["recording"] is True  # the consent notice of a late joiner comes from this
    assert "rec-" in " ".join(p["participant_id"] for p in joined["participants"])

    await ann.sio.emit("moderate", {"action": "make_cohost", "participant_id": joined["participant_id"]})
    await _dave.expect("participant_changed")
    await _dave.sio.emit("stop_recording", {})
    assert await _recording(_dave) is False


async def test_refusals_when_the_server_cannot_record(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    await ann.sio.emit("start_recording", {})  # no port: this server does not record
    code, _ = await _error(ann)
    assert code == "recording_failed"
    port = FakeRecordings()
    port.fail = "the recordings directory is not writable"
    live.server.recordings = port
    (conference,) = live.server.conferences()
    conference.recording._port = port  # the conference was made before the port was set
    await ann.sio.emit("start_recording", {})
    error = await ann.expect("error")
    assert (error["code"], error["message"]) == (
        "recording_failed",
        "the recordings directory is not writable",
    )


async def test_a_meeting_with_only_its_recorder_left_ends_after_the_grace(live: Live) -> None:
    port = FakeRecordings()
    live.server.recordings = port
    ann, _ = await live.join("host", "Ann")
    await ann.sio.emit("start_recording", {})
    assert await _recording(ann) is True
    (conference,) = live.server.conferences()
    await ann.sio.emit("leave")
    await ann.gone.wait()
    live.clock.advance(59)
    assert not conference.ending  # the recorder does not keep it alive, nor does it end it early
    live.clock.advance(1)
    await conference.close()
    assert port.left == [conference.meeting_id]  # the recorder left with the meeting: the port finishes


async def test_a_room_that_records_automatically_starts_with_its_meeting(live: Live) -> None:
    async with live.db.session() as session:
        await session.execute(update(Room).values(auto_record=True))
        await session.commit()
    port = FakeRecordings()
    live.server.recordings = port
    view = await live.server._store.room_by_id(live.room.room_id, now=live.clock.now())
    assert view is not None and view.auto_record
    live.room = view
    ann, joined = await live.join("host", "Ann")
    if not joined["meeting"]["recording"]:
        assert await _recording(ann) is True
    assert port.started_by == ["auto"]


async def test_when_recording_stops_the_moderators_get_the_watch_link(live: Live) -> None:
    port = FakeRecordings()
    port.link = "/recordings/watch?token=signed"
    live.server.recordings = port
    ann, _ = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    await ann.sio.emit("start_recording", {})
    assert await _recording(bob) is True
    await ann.sio.emit("stop_recording", {})
    assert (await ann.expect("recording_link")) == {"url": "/recordings/watch?token=signed"}
    assert await _recording(bob) is False
    await bob.sio.emit("hand", {"raised": True})  # a later event, to show none came before it
    changed = await bob.expect("participant_changed")
    assert changed["participant"]["hand_raised"] is True
    assert "recording_link" not in bob.seen

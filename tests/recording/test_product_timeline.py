"""The recording's timeline follows the meeting after the recorder joined: joins, mutes, leaves.

Real Socket.IO clients on the live server; the port seats the recorder as yunhui/recordings.py does and hands
the meeting's broadcasts to the same MeetingTimeline, over a recorder that keeps the events it is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from recording.recorder import Recorder
from signaling.conference import Conference
from signaling.messages import LeaveReason
from signaling.participant import Participant
from tests.signaling.live_server import Live, start_live
from yunhui.recording_timeline import MeetingTimeline


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


class TimelinePort:
    def __init__(self) -> None:
        self.recorder = Events()
        self.names: dict[str, str] = {}
        self.seated: Participant | None = None

    async def start(self, conference: Conference, *, started_by: str) -> None:
        self.seated = conference.join_recorder("Recorder")
        assert await self.seated.wait_joined()
        timeline = MeetingTimeline(cast(Recorder, self.recorder), self.names)
        for p in conference.participants():
            timeline.present(p.info())
        conference.watch(timeline)

    async def stop(self, meeting_id: int) -> None:
        if self.seated is not None:
            await self.seated.close(LeaveReason.LEFT)

    def recorder_left(self, meeting_id: int) -> str | None:
        return None


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


async def test_later_joins_mutes_and_leaves_reach_the_timeline(live: Live) -> None:
    port = TimelinePort()
    live.server.recordings = port
    ann, ann_joined = await live.join("host", "Ann")
    await ann.sio.emit("start_recording", {})
    await ann.expect("meeting_changed")
    bob, bob_joined = await live.join("participant", "Bob")
    await bob.sio.emit("media_state", {"source": "mic", "muted": True})
    await ann.expect("participant_changed")
    await bob.sio.emit("media_state", {"source": "mic", "muted": False})
    await ann.expect("participant_changed")
    await bob.sio.emit("leave", {})
    await ann.expect("participant_left")

    ann_id, bob_id = ann_joined["participant_id"], bob_joined["participant_id"]
    assert [(e, f.get("participant"), f.get("source")) for e, f in port.recorder.events] == [
        ("joined", ann_id, None),  # present when the recording started
        ("joined", bob_id, None),
        ("muted", bob_id, "mic"),
        ("unmuted", bob_id, "mic"),
        ("left", bob_id, None),
    ]
    assert port.recorder.events[-1][1]["reason"] == "left"
    assert port.names == {ann_id: "Ann", bob_id: "Bob"}  # the recorder itself is not in the timeline

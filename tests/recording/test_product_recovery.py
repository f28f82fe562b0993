"""A crash mid-recording is finished at the next start, and "recording ready" is queued with the ready state.

The recorder runs in a child process that is killed with SIGKILL (a real crash: no close, no finalise); the
app's start-up recovery then finalises its files, renders the composite and makes the recording ready, with
the e-mail to the account's admin in the outbox in the same transaction.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from rooms.models import Meeting
from rooms.outbox.models import Notification
from rooms.recordings import store
from rooms.recordings.models import Recording
from tests.recording.test_api_recordings import Env, env

__all__ = ["env"]

# A Recorder that writes its timeline and then waits to be killed.
CHILD = """
import sys, time
from pathlib import Path
from recording.recorder import Recorder
from recording.settings import RecordingSettings
recorder = Recorder(Path(sys.argv[1]), RecordingSettings(), meeting_id=sys.argv[2])
recorder.event("joined", participant="p1", name="Ann")
time.sleep(1.5)  # the recording's length: its last event
recorder.event("speaker", participant="p1")
time.sleep(0.2)  # the writer thread's tick: the event is on disk (fsync) before the kill
print("recording", flush=True)
time.sleep(600)
"""


async def _crashed_recording(env: Env, *, meeting_ended: bool) -> int:
    async with env.db.session() as session:
        meeting = Meeting(
            account_id=env.ids["account_a"],
            room_id=env.ids["room_a"],
            started_at=env.clock.now,
            ended_at=env.clock.now if meeting_ended else None,
        )
        session.add(meeting)
        await session.commit()
    directory = f"{meeting.id}-crashed"
    recording_id = await store.create(
        env.db, account_id=env.ids["account_a"], meeting_id=meeting.id, room_id=env.ids["room_a"],
        directory=directory, started_by="Ann", now=env.clock.now,
    )  # fmt: skip
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(env.root / directory), str(meeting.id),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert child.stdout is not None
    async with asyncio.timeout(60):
        assert await child.stdout.readline() == b"recording\n"
    child.send_signal(signal.SIGKILL)
    await child.wait()
    return recording_id


async def _state(env: Env, recording_id: int) -> Recording:
    async with env.db.session() as session:
        recording = await session.get(Recording, recording_id)
    assert recording is not None
    return recording


async def test_a_recording_killed_mid_way_is_finished_at_the_next_start(env: Env) -> None:
    crashed = await _crashed_recording(env, meeting_ended=True)
    live = await _crashed_recording(env, meeting_ended=False)  # another worker's live meeting: left alone
    assert (await _state(env, crashed)).state == "recording"

    assert await env.recordings.recover() == 1
    for _ in range(2400):  # a bounded poll of the render (ffmpeg in a subprocess): 120 s
        recording = await _state(env, crashed)
        if recording.state in ("ready", "failed"):
            break
        await asyncio.sleep(0.05)
    assert recording.state == "ready", recording.error
    assert recording.composite_path == "composite.mp4" and recording.progress == 100
    assert {f.kind for f in recording.files} == {"timeline", "composite"}
    assert all(f.checksum.startswith("sha256:") for f in recording.files if f.kind == "composite")
    timeline = (env.root / recording.directory / "timeline.jsonl").read_text()
    assert '"recording_stopped"' in timeline and '"recovered": true' in timeline
    assert (await _state(env, live)).state == "recording"

    async with env.db.session() as session:
        mails = (
            await session.scalars(select(Notification).where(Notification.kind == "recording_ready"))
        ).all()
    assert [(m.recipient, m.channel, m.account_id) for m in mails] == [
        ("admin@a.example", "email", env.ids["account_a"])
    ]
    assert mails[0].variables["title"] == "Room a"
    assert mails[0].variables["url"].endswith(f"/admin/recordings?meeting={recording.meeting_id}")
    # The organiser need not be an admin: the mail's watch link plays the composite with no session.
    watch = mails[0].variables["watch_url"]
    assert "/recordings/watch?token=" in watch
    token = watch.split("token=", 1)[1]
    status, state = await env.call("GET", f"/recordings/watch?token={token}", who=None)
    assert status == 200 and (state["state"], state["progress"], state["title"]) == ("ready", 100, "Room a")
    async with env.http.get(f"{env.url}/api/v1/{state['video_url']}") as resp:
        assert resp.status == 200 and resp.content_type == "video/mp4"
        assert (await resp.read())[4:8] == b"ftyp"
    status, _ = await env.call("GET", f"/recordings/watch?token={token[:-2]}x", who=None)
    assert status == 404  # an altered link names nothing
    assert mails[0].variables["watch_until"] == (env.clock.now + timedelta(days=7)).isoformat(
        timespec="minutes"
    )

    # Recovering again finds nothing to do, and queues no second mail.
    assert await env.recordings.recover() == 0
    async with env.db.session() as session:
        count = len((await session.scalars(select(Notification))).all())
    assert count == 1

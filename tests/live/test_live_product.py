"""Live channels through the whole app on 127.0.0.1 (yunhui/live.py): a meeting source fed by a real aiortc
publisher over WHIP in H.264 (copied, not transcoded) through rehearsal, go-live and stop; the meeting page
publishing H.264 when its room feeds a channel; the recovery of channels a crashed run left on air whose
files cannot be continued (ended; tests/live/test_live_resume.py resumes those that can)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from sqlalchemy import select

from rooms.database import Database
from rooms.live.models import LiveChannel
from rooms.live.videos import NORMAL_NAME, LiveVideo
from rooms.models import Account, Room, User
from rooms.tokens import mint_access_token, mint_join_token
from tests.conftest import SECRET_KEY, RunningServer
from tests.live.live_engine_media import make_item
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack
from tests.signaling.live_server import Client
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.live import LIVE_ENGINES
from yunhui.settings import Settings

pytestmark = pytest.mark.timeout(120)


class Env:
    def __init__(self, server: RunningServer, room: Room, token: str, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.db: Database = server.app[DATABASE]
        self.room = room
        self.token = token
        self.http = http
        self.clients: list[Client] = []
        self.pcs: list[RTCPeerConnection] = []

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(
            method, f"{self.server.url}/api/v1{path}", json=body, headers=headers
        ) as r:
            return r.status, await r.json() if r.content_type == "application/json" else await r.text()

    def join_token(self, role: str, name: str) -> str:
        token, _ = mint_join_token(
            SECRET_KEY, room_id=self.room.id, meeting_number=self.room.meeting_number,
            account_id=self.room.account_id, role=role, display_name=name, now=datetime.now(UTC),
            ttl=timedelta(hours=1),
        )  # fmt: skip
        return token

    async def start_meeting(self) -> None:
        client = Client()
        self.clients.append(client)
        await client.connect(self.server.url, {"token": self.join_token("host", "Host")})
        await client.expect("joined")

    async def publish_h264(self) -> RTCPeerConnection:
        """An encoder over WHIP (a participant of the meeting) sending H.264 and Opus."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.addTrack(ToneAudioTrack(0.2))
        video = pc.addTransceiver(CounterVideoTrack(0, fps=15), direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
        await pc.setLocalDescription(await pc.createOffer())
        headers = {
            "Content-Type": "application/sdp",
            "Authorization": f"Bearer {self.join_token('host', 'OBS')}",
        }
        async with self.http.post(
            f"{self.server.url}/rtc/whip", data=pc.localDescription.sdp, headers=headers
        ) as r:
            answer = await r.text()
            assert r.status == 201, answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return pc


@pytest.fixture
async def env(server: RunningServer) -> AsyncIterator[Env]:
    db: Database = server.app[DATABASE]
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id, name="Studio", meeting_number="777000222", capacity=10, created_at=now
        )
        user = User(
            account_id=account.id, email="live@acme.example", password_hash="x", role="admin", created_at=now
        )
        session.add_all([room, user])
        await session.commit()
    token, _ = mint_access_token(SECRET_KEY, user_id=user.id, account_id=account.id, role="admin", now=now,
                                 ttl=timedelta(hours=1))  # fmt: skip
    async with aiohttp.ClientSession() as http:
        state = Env(server, room, token, http)
        try:
            yield state
        finally:
            for client in state.clients:
                await client.close()
            for pc in state.pcs:
                await pc.close()


async def _until(predicate: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_meeting_source_goes_from_rehearsal_to_live_and_its_replay_has_no_rehearsal(env: Env) -> None:
    body = {"title": "Town hall", "language": "zh-CN", "source_kind": "meeting", "room_id": env.room.id}
    status, channel = await env.call("POST", "/live", body)
    assert status == 201, channel
    cid = channel["id"]  # a channel started before its meeting: tests/live/test_live_attach.py

    # The meeting page of a room that feeds a channel publishes H.264 (copied by the channel, no transcode).
    async with env.http.get(f"{env.server.url}/m/{env.room.meeting_number}") as r:
        assert 'data-video-codec="h264"' in await r.text()

    await env.start_meeting()
    await env.publish_h264()
    status, channel = await env.call("POST", f"/live/{cid}/rehearse")
    assert status == 200 and channel["state"] == "rehearsal", channel
    assert channel["meeting_id"] is not None
    engines = env.server.app[LIVE_ENGINES]
    engine = engines.engine(cid)
    assert engine is not None
    await _until(lambda: engine.status().segments >= 2, 40)
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200 and channel["state"] == "live"
    assert engines.engine(cid) is engine, "going live needs no restart"
    await _until(lambda: engine.status().public_segments >= 2, 40)
    status, channel = await env.call("GET", f"/live/{cid}")
    assert channel["engine"]["on_air"] == "primary" and channel["engine"]["transcoding"] is False, channel
    rehearsal_segments = engine.status().segments - engine.status().public_segments

    # An interpreter's channel on the same meeting: the same video, only the interpreter's microphone.
    router = next(iter(env.server.app[LIVE_ENGINES]._sfu.routers.values()))
    publisher = next(t.participant_id for t in router.tracks.values() if t.kind == "audio")
    body = {"title": "Town hall (en)", "language": "en", "source_kind": "meeting", "room_id": env.room.id,
            "audio_participant": "interpreter-not-here"}  # fmt: skip
    _, english = await env.call("POST", "/live", body)
    status, english = await env.call("POST", f"/live/{english['id']}/go-live")
    assert status == 200, english
    zh_run, en_run = engines._runs[cid], engines._runs[english["id"]]
    assert en_run.video_track == zh_run.video_track is not None, "one meeting's video on both channels"
    assert zh_run.audio and en_run.audio == (), "the English channel takes no one else's microphone"
    source = {"source_kind": "meeting", "room_id": env.room.id, "audio_participant": publisher}
    status, english = await env.call("PUT", f"/live/{english['id']}/source", source)
    assert status == 200 and en_run.audio == zh_run.audio, "now the interpreter (the publisher) is its audio"
    await env.call("POST", f"/live/{english['id']}/stop")
    # An encoder channel on the room: the WHIP publisher's tracks (the OBS of the event), with its own engine.
    body = {"title": "Encoder", "language": "en", "source_kind": "encoder", "room_id": env.room.id}
    _, encoder = await env.call("POST", "/live", body)
    status, encoder = await env.call("POST", f"/live/{encoder['id']}/go-live")
    assert status == 200, encoder
    encoder_run = engines._runs[encoder["id"]]
    assert encoder_run.encoder and encoder_run.video_track == zh_run.video_track and encoder_run.audio
    await env.call("POST", f"/live/{encoder['id']}/stop")

    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "ended"
    assert engines.engine(cid) is None
    async with env.db.session() as session:
        row = await session.get(LiveChannel, cid)
        assert row is not None and row.directory
    run = env.server.settings.paths.var_dir / "live" / row.directory
    replay = m3u8.load(str(run / "event.m3u8"))
    assert replay.is_endlist, "the replay is complete when stop returns"
    assert len(replay.segments) >= 2
    first = int(replay.segments[0].uri.removeprefix("seg-").removesuffix(".ts"))
    assert first == rehearsal_segments + 1, "the replay starts at the first public segment"

    async with env.http.get(f"{env.server.url}/m/{env.room.meeting_number}") as r:
        assert "data-video-codec" not in await r.text(), "an ended channel no longer asks for H.264"


async def test_a_crashed_run_is_recovered_at_the_next_start(settings: Settings, tmp_path: Path) -> None:
    first = await create_app(settings, secret_key=SECRET_KEY)
    db: Database = first[DATABASE]
    await db.upgrade()
    root = settings.paths.var_dir / "live"
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        live = LiveChannel(account_id=account.id, title="On air", language="en", state="live",
                           source_kind="encoder", directory="1-crashed", created_at=now, started_at=now,
                           updated_at=now)  # fmt: skip
        rehearsing = LiveChannel(account_id=account.id, title="Rehearsing", language="en", state="rehearsal",
                                 source_kind="encoder", directory="2-crashed", created_at=now,
                                 updated_at=now)  # fmt: skip
        session.add_all([live, rehearsing])
        await session.commit()
    (root / "1-crashed").mkdir(parents=True)
    (root / "1-crashed" / "event.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg-000001.ts\n"
    )
    (root / "1-crashed" / "seg-000001.ts").write_bytes(b"G" * 188)
    (root / "2-crashed").mkdir()
    await db.close()

    app = await create_app(settings, secret_key=SECRET_KEY)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # runs the cleanup contexts' start: the recovery
    try:
        async with app[DATABASE].session() as session:
            rows = {c.title: c for c in (await session.scalars(select(LiveChannel))).all()}
        assert rows["On air"].state == "ended" and rows["On air"].ended_at is not None
        assert rows["Rehearsing"].state == "draft" and rows["Rehearsing"].directory is None
        assert (root / "1-crashed" / "event.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")
        assert not (root / "2-crashed").exists()
    finally:
        await runner.cleanup()


async def test_a_video_standby_goes_on_air_when_the_channel_has_no_primary(env: Env, tmp_path: Path) -> None:
    """The console's standby: a ready backup video, looped by the engine; the override forces it or not."""
    videos_root = env.server.settings.paths.var_dir / "live" / "videos"
    (videos_root / "backup-1").mkdir(parents=True)
    make_item(videos_root / "backup-1" / NORMAL_NAME, 4.0, (40, 200, 40), size=(320, 180))
    now = datetime.now(UTC)
    async with env.db.session() as session:
        video = LiveVideo(account_id=env.room.account_id, name="backup.mp4", state="ready", size_bytes=1,
                          directory="backup-1", created_at=now, updated_at=now)  # fmt: skip
        waiting = LiveVideo(account_id=env.room.account_id, name="late.mp4", state="uploading", size_bytes=9,
                            directory="late-1", created_at=now, updated_at=now)  # fmt: skip
        session.add_all([video, waiting])
        await session.commit()
    body = {"title": "Standby", "language": "en", "source_kind": "playlist", "standby_kind": "video",
            "standby_video_id": waiting.id}  # fmt: skip
    status, answer = await env.call("POST", "/live", body)
    assert status == 409 and answer["error"]["field"] == "standby_video_id", answer
    status, channel = await env.call("POST", "/live", {**body, "standby_video_id": video.id})
    assert status == 201 and channel["standby_video_id"] == video.id, channel
    cid = channel["id"]
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200, channel
    engine = env.server.app[LIVE_ENGINES].engine(cid)
    assert engine is not None
    # No encoder publishes: after standby_after_s the backup video is on air and segments are cut.
    await _until(lambda: engine.status().on_air == "standby" and engine.status().public_segments >= 1, 30)
    status, channel = await env.call("PUT", f"/live/{cid}/standby", {"override": "primary"})
    assert status == 200 and channel["standby_override"] == "primary"
    await _until(lambda: engine.status().override == "off", 5)
    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "ended"

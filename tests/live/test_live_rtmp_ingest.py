"""RTMP ingest (issue #18): a real ffmpeg pushes a lavfi testsrc + sine over RTMP into a channel's listener.

A wrong stream key is refused (the push fails, nothing reaches the channel); the right one is copied into the
segmenter without a transcode; the encoder disconnects and reconnects, and the second connection starts
after a DISCONTINUITY. The playlists parse (m3u8), every segment starts with a keyframe, and ffprobe through
the replay playlist counts every frame pushed. Real time: the encoder pushes at its own pace (-re).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import m3u8  # type: ignore[import-untyped]
import pytest

from recording.live.channel import EVENT, INDEX, LiveChannel
from recording.live.ingest import RtmpIngestInput, is_idr, listen_argv
from recording.live.settings import LiveSettings
from recording.live.sources import RtmpIngestSource
from rooms.database import Database
from rooms.live.models import LiveChannel as ChannelRow
from rooms.models import Account, User
from rooms.tokens import mint_access_token
from tests.conftest import SECRET_KEY, RunningServer
from tests.live.live_engine_media import ffprobe, wait_for
from web.keys import DATABASE
from yunhui.live import LIVE_ENGINES
from yunhui.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(120)

KEY = "k3y-0123456789abcdef"
FPS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def push(port: int, key: str, seconds: float, pattern: str = "testsrc") -> int:
    """An encoder: H.264 with a keyframe every 2 s and AAC over RTMP; its exit code."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", f"{pattern}=size=640x360:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(2 * FPS),
        "-keyint_min", str(2 * FPS), "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-threads", "1",
        "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(proc.wait(), 60)


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port` (read from /proc: a probe connection would be the
    listener's one connection)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return True
    return False


async def push_when_listening(port: int, key: str, seconds: float, pattern: str = "testsrc") -> int:
    """The listener restarts after each connection: an encoder waits until it is back (as OBS retries)."""
    await wait_for(lambda: listening(port), 20)
    return await push(port, key, seconds, pattern)


def test_listener_argv_and_keyframes() -> None:
    argv = listen_argv("ffmpeg", RtmpIngestSource(1935, "abc", bind="0.0.0.0"))
    assert argv[argv.index("-listen") + 1] == "1"
    assert "rtmp://0.0.0.0:1935/live/abc" in argv and argv[argv.index("-c") + 1] == "copy"
    assert "abc" not in repr(RtmpIngestSource(1935, "abc"))  # the key stays out of logs
    assert is_idr(b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88")
    assert not is_idr(b"\x00\x00\x00\x01\x41\x9a")


async def test_rtmp_ingest_wrong_key_refused_copy_and_reconnect(tmp_path: Path) -> None:
    port = free_port()
    channel = LiveChannel(tmp_path / "ch", LiveSettings(), channel_id="rtmp")
    try:
        channel.set_source(RtmpIngestSource(port, KEY))
        channel.go_live()
        await channel.drain()
        ingest = channel._pipeline.inputs["primary"]
        assert isinstance(ingest, RtmpIngestInput)

        assert await push_when_listening(port, "wrong-key", 1.5) != 0  # dropped at publish
        await wait_for(lambda: ingest.refused == 1, 10)
        assert ingest.connections == 0 and channel.status().segments == 0

        assert await push_when_listening(port, KEY, 4.0) == 0
        assert await push_when_listening(port, KEY, 3.0, "testsrc2") == 0  # the encoder reconnects
        await wait_for(lambda: ingest.connections == 2, 10)
        await asyncio.sleep(0)  # let the worker pull what is due
        await wait_for(lambda: not ingest._units, 10)
        status = await channel.end()
    finally:
        await channel.close()
    assert not status.transcoding

    directory = tmp_path / "ch"
    event = m3u8.load(str(directory / EVENT))
    live = m3u8.load(str(directory / INDEX))
    assert event.is_endlist and live.is_endlist
    # RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer is at most the target duration (the
    # segment before the reconnect also spans the gap up to the next connection's first keyframe)
    assert all(round(s.duration) <= event.target_duration for s in event.segments), event.dumps()
    flags = [s.discontinuity for s in event.segments]
    assert flags.count(True) == 1 and not flags[0], flags  # the reconnect, and only it
    for segment in event.segments:
        first = ffprobe(directory / segment.uri, "-select_streams", "v", "-show_frames",
                        "-read_intervals", "%+#1", "-show_entries", "frame=key_frame")  # fmt: skip
        assert first["frames"][0]["key_frame"] == 1, segment.uri
    probe = ffprobe(directory / EVENT, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames")
    counts = {s["codec_name"]: int(s["nb_read_frames"]) for s in probe["streams"]}
    assert counts["h264"] == 7 * FPS, counts  # every frame pushed, copied
    assert counts["aac"] > 0
    errors = await asyncio.to_thread(
        subprocess.run, ["ffmpeg", "-v", "error", "-i", str(directory / EVENT), "-f", "null", "-"],
        check=False, capture_output=True, timeout=60,
    )  # fmt: skip
    assert errors.stderr.decode() == ""


# ------------------------------------------------------------------------------------------ through the app
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    port = free_port()  # a one-port range: every RTMP channel of this test listens there
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "live": {"rtmp_ingest_port_min": port, "rtmp_ingest_port_max": port,
                     "rtmp_ingest_bind": "127.0.0.1"},
        }
    )  # fmt: skip


async def test_an_rtmp_channel_through_the_app_key_rotation_and_refusals(server: RunningServer) -> None:
    db: Database = server.app[DATABASE]
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        user = User(account_id=account.id, email="rtmp@acme.example", password_hash="x", role="admin",
                    created_at=now)  # fmt: skip
        session.add(user)
        await session.commit()
    token, _ = mint_access_token(SECRET_KEY, user_id=user.id, account_id=account.id, role="admin", now=now,
                                 ttl=timedelta(hours=1))  # fmt: skip
    port = server.settings.live.rtmp_ingest_port_min
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, f"{server.url}/api/v1{path}", json=body) as r:
                return r.status, await r.json()

        status, channel = await call("POST", "/live", {"title": "Keynote", "language": "en",
                                                        "source_kind": "rtmp"})  # fmt: skip
        assert status == 201, channel
        cid = channel["id"]
        assert "ingest_key" not in channel and "stream_key" not in channel  # the key only on its own route
        status, first = await call("GET", f"/live/{cid}/ingest")
        assert status == 200, first
        assert first["server_url"] == f"rtmp://127.0.0.1:{port}/live" and len(first["stream_key"]) >= 20
        assert first["url"] == f"{first['server_url']}/{first['stream_key']}"
        status, error = await call("POST", "/live", {"title": "x", "language": "en", "source_kind": "rtmp",
                                                      "room_id": 1})  # fmt: skip
        assert status == 422 and error["error"]["field"] == "room_id", error  # an RTMP source takes no room
        status, other = await call("POST", "/live", {"title": "Playlist", "language": "en",
                                                      "source_kind": "playlist"})  # fmt: skip
        status, error = await call("GET", f"/live/{other['id']}/ingest")
        assert status == 409 and error["error"]["code"] == "not_rtmp", error

        status, channel = await call("POST", f"/live/{cid}/rehearse")
        assert status == 200 and channel["state"] == "rehearsal", channel
        status, rotated = await call("POST", f"/live/{cid}/ingest/key")
        assert status == 200 and rotated["stream_key"] != first["stream_key"], rotated
        engine = server.app[LIVE_ENGINES].engine(cid)
        assert engine is not None
        status, channel = await call("POST", f"/live/{cid}/go-live")
        assert status == 200 and channel["state"] == "live", channel

        assert await push_when_listening(port, first["stream_key"], 1.5) != 0  # the old key is refused
        assert await push_when_listening(port, rotated["stream_key"], 3.0) == 0
        ingest = engine._pipeline.inputs["primary"]
        assert isinstance(ingest, RtmpIngestInput)
        await wait_for(lambda: ingest.connections == 1 and not ingest.connected, 20)  # all of it read
        assert ingest.refused == 1
        status, channel = await call("GET", f"/live/{cid}")
        assert channel["engine"]["source"] == "rtmp" and not channel["engine"]["transcoding"], channel
        status, channel = await call("POST", f"/live/{cid}/stop")
        assert status == 200 and channel["state"] == "ended", channel
    async with db.session() as session:
        row = await session.get(ChannelRow, cid)
        assert row is not None and row.directory is not None
    replay = server.app[LIVE_ENGINES].root / row.directory / EVENT
    probe = ffprobe(replay, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames")
    counts = {s["codec_name"]: int(s["nb_read_frames"]) for s in probe["streams"]}
    assert counts["h264"] == 3 * FPS, counts  # the right key's push, all of it; nothing of the refused one

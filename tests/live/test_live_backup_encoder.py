"""A backup encoder as the hot standby: two WHIP encoders (tapped Tracks, copied H.264) on one channel, the
primary and the standby. The primary stops: the backup encoder is on air within standby_after_s + one
segment; the primary comes back and takes over after the hold; the console's manual override still pins
either. Injected clock (the engine style of test_live_standby_engine.py): 30 s of channel in seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import m3u8  # type: ignore[import-untyped]
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from recording.live.channel import EncoderSource, LiveChannel
from recording.live.settings import LiveSettings
from tests.live import test_live_attach
from tests.live.live_engine_media import FakeClock, FakeRouter, Publisher, decode, joined, run
from tests.live.test_live_product import Env, _until
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack
from yunhui.live import LIVE_ENGINES

settings = test_live_attach.settings  # a quick standby
meeting_env = test_live_attach.meeting_env  # the whole app on 127.0.0.1 with a room and an admin

pytestmark = pytest.mark.timeout(120)

BLUE = (41, 240, 110)


def is_backup(u: np.ndarray) -> bool:
    return float(u[u.shape[0] // 2 :].mean()) > 200


async def test_a_backup_encoder_takes_over_and_hands_back(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = LiveSettings(window_segments=60, standby_after_s=2.0, standby_hold_s=5.0)
    channel = LiveChannel(tmp_path / "ch", settings, clock=clock)
    router = FakeRouter()
    main = Publisher(router, pid="main", width=160, height=96)
    backup = Publisher(router, pid="backup", width=160, height=96, colour=BLUE)
    changes: list[tuple[float, str]] = []
    start = clock.now
    dies, returns = start + 6.0, start + 14.0

    def script(now: float) -> None:
        on_air = channel.status().on_air
        if not changes or changes[-1][1] != on_air:
            changes.append((now, on_air))

    try:
        channel.set_source(EncoderSource(router.tap, main.video_id, (main.audio_id,), label="encoder"))
        channel.set_standby(EncoderSource(router.tap, backup.video_id, (backup.audio_id,), label="backup"))
        channel.go_live()
        main.begin(start)
        backup.begin(start)
        await run(channel, clock, dies, [main, backup], at=script, step=0.2)
        await run(channel, clock, returns, [backup], at=script, step=0.2)  # the primary encoder stopped
        main.begin(returns)
        await run(channel, clock, start + 26.0, [main, backup], at=script, step=0.2)
        if changes[0][1] == "none":
            changes.pop(0)
        roles = [(round(t - start, 2), role) for t, role in changes]
        assert [r for _, r in roles] == ["primary", "standby", "primary"], roles
        standby_at = changes[1][0]
        assert settings.standby_after_s - 0.2 <= standby_at - dies, roles
        assert standby_at - dies <= settings.standby_after_s + settings.segment_seconds, roles
        back_at = changes[2][0]
        assert settings.standby_hold_s <= back_at - returns <= settings.standby_hold_s + 1.0, roles
        assert channel.status().source == "encoder"

        # The manual override: "on" puts the backup encoder on air though the primary is healthy.
        channel.standby_override("on")
        await run(channel, clock, start + 28.0, [main, backup], step=0.2)
        assert channel.status().on_standby and channel.status().source == "backup"
        channel.standby_override("auto")
        await run(channel, clock, start + 30.0, [main, backup], step=0.2)
        assert channel.status().on_air == "primary"
        await channel.end()

        playlist = m3u8.load(str(tmp_path / "ch" / "event.m3u8"))
        assert sum(1 for s in playlist.segments if s.discontinuity) >= 4  # every switch marked
        video = decode(joined(tmp_path / "ch", [s.uri for s in playlist.segments], tmp_path / "all.ts")).video
        on_air: list[tuple[str, float, float]] = []
        for t, y, u in video:
            if float(y[y.shape[0] // 2 :].mean()) > 200:
                continue  # a flash (white): either encoder's
            kind = "backup" if is_backup(u) else "main"
            if not on_air or on_air[-1][0] != kind:
                on_air.append((kind, t, t))
            else:
                on_air[-1] = (kind, on_air[-1][1], t)
        assert [k for k, _, _ in on_air] == ["main", "backup", "main", "backup", "main"], on_air
        assert on_air[1][1] - on_air[0][2] <= settings.standby_after_s + settings.segment_seconds
    finally:
        await channel.close()


async def _whip(env: Env, name: str) -> RTCPeerConnection:
    """An encoder publishing H.264 and Opus over WHIP into the room, its join token named ``name``."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    env.pcs.append(pc)
    pc.addTrack(ToneAudioTrack(0.2))
    video = pc.addTransceiver(CounterVideoTrack(0, fps=15), direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("video").codecs
    video.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {env.join_token('host', name)}"}
    async with env.http.post(
        f"{env.server.url}/rtc/whip", data=pc.localDescription.sdp, headers=headers
    ) as r:
        answer = await r.text()
        assert r.status == 201, answer
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc


async def test_the_rooms_backup_encoder_is_the_channels_standby(meeting_env: Env) -> None:
    """Through the app: the WHIP encoder named like settings.live.backup_encoder_name is the standby, the
    other the primary; the primary stops and the backup encoder goes on air."""
    env = meeting_env
    body = {"title": "Main stage", "language": "en", "source_kind": "encoder", "room_id": env.room.id,
            "standby_kind": "encoder"}  # fmt: skip
    status, channel = await env.call("POST", "/live", body)
    assert status == 201, channel
    cid = channel["id"]
    await env.start_meeting()
    primary = await _whip(env, "OBS")
    await _whip(env, "Backup")
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200, channel
    engines = env.server.app[LIVE_ENGINES]
    run_ = engines._runs[cid]
    await _until(lambda: bool(run_.backup and run_.backup[0] and run_.video_track), 30)
    assert run_.backup is not None and run_.video_track != run_.backup[0], "two encoders, two roles"
    engine = engines.engine(cid)
    assert engine is not None
    await _until(lambda: engine.status().on_air == "primary" and engine.status().public_segments >= 1, 30)
    await primary.close()  # the primary encoder stops
    await _until(lambda: engine.status().on_air == "standby" and engine.status().source == "backup", 30)
    status, channel = await env.call("PUT", f"/live/{cid}/standby", {"override": "primary"})
    assert status == 200
    await asyncio.wait_for(engine.drain(), 10)
    assert engine.status().override == "off"
    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "ended"

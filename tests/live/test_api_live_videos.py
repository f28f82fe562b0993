"""Pre-recorded videos over REST on the whole app (real server on 127.0.0.1, the real job with Debian's
ffprobe/ffmpeg): a resumable upload across a dropped connection, refusals with a named reason, a crash
mid-normalisation redone at the next start, the playlist's rules over the API and the hand-over to the
engine (started/ended callbacks mark items; a skip of the item on air cuts it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recording.live.sources import PlaylistEvent
from rooms.live.videos import NORMAL_NAME, SOURCE_NAME, LiveVideo
from tests.conftest import require_tool
from tests.live.videos_env import Env, make_clip, start_env
from yunhui.settings import Settings

SMALL_PROFILE = {"width": 320, "height": 180, "fps": 25, "video_bitrate_k": 300}


def _settings(settings: Settings, **videos: Any) -> Settings:
    live = settings.live.model_copy(
        update={
            "videos": settings.live.videos.model_copy(update=videos),
            "profile": settings.live.profile.model_copy(update=SMALL_PROFILE),
        }
    )
    return settings.model_copy(update={"live": live})


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    require_tool("ffmpeg")
    async for state in start_env(_settings(settings, max_size_bytes=2 * 1024 * 1024, max_duration_s=3.0)):
        yield state


async def _start_chunk(env: Env, video_id: int, offset: int, body: bytes, sent: int) -> asyncio.StreamWriter:
    """A PATCH declaring the whole ``body`` that sends ``sent`` bytes of it; closing the writer drops it."""
    host, port = env.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"PATCH /api/v1/live/videos/{video_id}/upload HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {env.tokens['admin_a']}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[:sent])
    await writer.drain()
    return writer


async def test_resumable_upload_across_a_dropped_connection(env: Env, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    data = clip.read_bytes()
    status, video = await env.call("POST", "/live/videos", json={"name": "Opening", "size_bytes": len(data)})
    assert status == 201 and video["state"] == "uploading" and video["received_bytes"] == 0, video
    video_id = video["id"]
    assert video["upload_url"] == f"live/videos/{video_id}/upload"
    half = len(data) // 2
    status, headers = await env.patch(video_id, 0, data[:half])
    assert status == 204 and headers["Upload-Offset"] == str(half)
    # A half upload is not a video: it cannot be played, and nothing checks it.
    channel_id = await env.channel()
    status, body = await env.call("POST", f"/live/{channel_id}/playlist", json={"video_id": video_id})
    assert status == 409 and body["error"]["code"] == "not_ready", body
    # The next chunk's connection drops a third of the way through. The client asks where to resume and goes
    # on from there; while the dropped PATCH still stores what it had written, the offset it gets may be
    # stale and its PATCH is refused (offset_mismatch): it asks again.
    writer = await _start_chunk(env, video_id, half, data[half:], sent=(len(data) - half) // 3)
    writer.close()
    await writer.wait_closed()
    for _ in range(5):
        status, headers = await env.call("HEAD", f"/live/videos/{video_id}/upload")
        assert status == 204 and headers["Upload-Length"] == str(len(data))
        offset = int(headers["Upload-Offset"])
        assert half <= offset <= len(data)
        status, answer = await env.patch(video_id, offset, data[offset:])
        if status == 204:
            break
        assert status == 409 and answer["error"]["code"] in ("offset_mismatch", "bad_state"), answer
    assert status == 204 and answer["Upload-Offset"] == str(len(data))
    source = env.videos.root / (await _directory(env, video_id)) / SOURCE_NAME
    assert source.read_bytes() == data  # byte for byte, nothing doubled or lost at the drop
    video = await env.settle(video_id)
    assert video["state"] == "ready" and video["progress"] == 100, video
    assert video["reason"] is None and all(c["ok"] for c in video["checks"]), video["checks"]
    assert {c["name"] for c in video["checks"]} >= {"container", "audio", "decode", "loudness"}
    assert video["probe"]["width"] == 320 and video["probe"]["audio_codec"] == "aac"
    assert 1900 <= video["duration_ms"] <= 2100 and video["upload_url"] is None
    normal = source.with_name(NORMAL_NAME)
    assert normal.stat().st_size == video["normal_size_bytes"] > 0
    # A complete upload takes no more bytes.
    status, body = await env.patch(video_id, len(data), b"x")
    assert status == 409 and body["error"]["code"] == "bad_state"


async def test_bad_chunks_and_bad_uploads_answer_4xx_with_a_reason(env: Env, tmp_path: Path) -> None:
    status, body = await env.call("POST", "/live/videos", json={"name": "Big", "size_bytes": 3 * 1024 * 1024})
    assert status == 422 and body["error"]["code"] == "too_large" and body["error"]["field"] == "size_bytes"
    status, body = await env.call("POST", "/live/videos", json={"name": "", "size_bytes": 10})
    assert status == 422 and body["error"]["field"] == "name"
    status, video = await env.call("POST", "/live/videos", json={"name": "x", "size_bytes": 10})
    assert status == 201
    path = f"/live/videos/{video['id']}/upload"
    status, body = await env.call(
        "PATCH", path, data=b"12345", headers={"Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert status == 415 and body["error"]["code"] == "bad_content_type"
    status, body = await env.patch(video["id"], 3, b"12345")
    assert status == 409 and body["error"]["code"] == "offset_mismatch"
    status, body = await env.call(
        "PATCH", path, data=b"1", headers={"Content-Type": "application/offset+octet-stream"}
    )
    assert status == 400 and body["error"]["code"] == "bad_offset"
    status, body = await env.patch(video["id"], 0, b"0123456789ABC")
    assert status == 422 and body["error"]["code"] == "too_large"
    # Another account sees nothing of it.
    for method in ("GET", "DELETE"):
        status, _ = await env.call(method, f"/live/videos/{video['id']}", "admin_b")
        assert status == 404
    status, _ = await env.call("HEAD", path, "admin_b")
    assert status == 404
    status, body = await env.patch(video["id"], 0, b"0123456789", "admin_b")
    assert status == 404
    # An audio-less clip is refused by the checks, with its reason and the check that failed.
    silent_id = await env.upload(make_clip(tmp_path / "mute.mp4", audio=False), "Mute")
    refused = await env.settle(silent_id)
    assert (refused["state"], refused["reason"]) == ("refused", "no_audio"), refused
    failed = [c for c in refused["checks"] if c["ok"] is False]
    assert [(c["name"], c["reason"]) for c in failed] == [("audio", "no_audio")]
    assert [c["name"] for c in refused["checks"] if c["ok"] is None] == ["decode", "loudness"]
    too_long = await env.upload(make_clip(tmp_path / "long.mp4", seconds=4.0), "Long")
    refused = await env.settle(too_long)
    assert (refused["state"], refused["reason"]) == ("refused", "too_long"), refused
    status, rows = await env.call("GET", "/live/videos?state=refused")
    assert status == 200 and {r["id"] for r in rows} == {silent_id, too_long}
    status, rows = await env.call("GET", "/live/videos", "admin_b")
    assert status == 200 and rows == []
    # Deleting removes the row and the files.
    directory = env.videos.root / (await _directory(env, silent_id))
    assert directory.is_dir()
    status, _ = await env.call("DELETE", f"/live/videos/{silent_id}")
    assert status == 204 and not directory.exists()
    status, _ = await env.call("GET", f"/live/videos/{silent_id}")
    assert status == 404
    # An upload left unfinished past live.videos.upload_ttl_seconds is purged, bytes and all.
    stale = env.videos.root / (await _directory(env, video["id"]))
    assert stale.is_dir()
    assert await env.videos.purge() == 0
    env.clock.now += timedelta(days=1, seconds=1)
    assert await env.videos.purge() == 1
    status, _ = await env.call("GET", f"/live/videos/{video['id']}")
    assert status == 404 and not stale.exists()


async def _directory(env: Env, video_id: int) -> str:
    async with env.db.session() as session:
        video = await session.get(LiveVideo, video_id)
        assert video is not None
        return video.directory


async def _ready_video(env: Env, name: str, clip: Path) -> int:
    """A ready video without the job: the checks and normalisation are tested above, the playlist here."""
    status, video = await env.call("POST", "/live/videos", json={"name": name, "size_bytes": 1})
    assert status == 201
    async with env.db.writer() as session:
        row = await session.get(LiveVideo, video["id"])
        assert row is not None
        row.state, row.received_bytes, row.progress, row.duration_ms = "ready", 1, 100, 2000
        row.upload_expires_at = None
        folder = env.videos.root / row.directory
        await session.commit()
    await asyncio.to_thread(shutil.copyfile, clip, folder / NORMAL_NAME)
    return int(video["id"])


async def test_playlist_order_insert_skip_and_the_hand_over(env: Env, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0)
    red, green, blue, white = [await _ready_video(env, n, clip) for n in ("red", "green", "blue", "white")]
    channel_id = await env.channel()
    url = f"/live/{channel_id}/playlist"
    for video_id in (red, green, blue):
        status, items = await env.call("POST", url, json={"video_id": video_id})
        assert status == 201, items
    ids = {i["video_name"]: i["id"] for i in items}
    applied: list[tuple[list[str], bool]] = []
    feed = env.videos.feed(
        channel_id, apply=lambda paths, cut: applied.append(([p.parent.name for p in paths], cut))
    )
    try:
        source = await feed.source()
        dirs = {v: await _directory(env, v) for v in (red, green, blue, white)}
        assert [p.parent.name for p in source.items] == [dirs[red], dirs[green], dirs[blue]]
        assert all(p.name == NORMAL_NAME and p.is_file() for p in source.items)
        # The operator moves blue first; a stale order (missing an item) is refused.
        status, body = await env.call("PUT", f"{url}/order", json={"item_ids": [ids["blue"], ids["red"]]})
        assert status == 409 and body["error"]["code"] == "stale_order"
        status, items = await env.call(
            "PUT", f"{url}/order", json={"item_ids": [ids["blue"], ids["red"], ids["green"]]}
        )
        assert status == 200 and [i["video_name"] for i in items] == ["blue", "red", "green"]
        await feed.drain()
        assert applied[-1] == ([dirs[blue], dirs[red], dirs[green]], False)
        # The engine plays blue: it is playing, then played.
        feed.on_event(PlaylistEvent(0, source.items[2], "started", 0.0))
        await feed.drain()
        _, items = await env.call("GET", url)
        assert (items[0]["video_name"], items[0]["state"]) == ("blue", "playing")
        feed.on_event(PlaylistEvent(0, source.items[2], "ended", 2.0))
        await feed.drain()
        # White is inserted to play next, before red; the engine starts red... and the operator skips it.
        status, items = await env.call("POST", url, json={"video_id": white, "next": True})
        assert status == 201
        assert [(i["video_name"], i["state"]) for i in items] == [
            ("blue", "played"), ("white", "queued"), ("red", "queued"), ("green", "queued"),
        ]  # fmt: skip
        await feed.drain()
        assert applied[-1] == ([dirs[white], dirs[red], dirs[green]], False)
        ids = {i["video_name"]: i["id"] for i in items}
        status, items = await env.call("POST", f"{url}/{ids['white']}/skip")
        assert status == 200 and [i["state"] for i in items][1] == "skipped"
        await feed.drain()
        feed.on_event(PlaylistEvent(1, env.videos.root / dirs[red] / NORMAL_NAME, "started", 2.0))
        await feed.drain()
        status, body = await env.call("DELETE", f"{url}/{ids['red']}")
        assert status == 409 and body["error"]["code"] == "bad_state"  # playing: skip it first
        status, items = await env.call("POST", f"{url}/{ids['red']}/skip")
        assert status == 200 and [i["state"] for i in items] == ["played", "skipped", "skipped", "queued"]
        await feed.drain()
        assert applied[-1] == ([dirs[green]], True)  # cut: the engine skips the item on air
        # The engine's "ended" for the cut item leaves it skipped.
        feed.on_event(PlaylistEvent(1, env.videos.root / dirs[red] / NORMAL_NAME, "ended", 3.0))
        await feed.drain()
        status, body = await env.call("POST", f"{url}/{ids['red']}/skip")
        assert status == 409 and body["error"]["code"] == "bad_state"
        status, _ = await env.call("DELETE", f"{url}/{ids['white']}")
        assert status == 204
        _, items = await env.call("GET", url)
        assert [(i["video_name"], i["state"]) for i in items] == [
            ("blue", "played"), ("red", "skipped"), ("green", "queued"),
        ]  # fmt: skip
        # Bad input: a before-item that is done, an unknown video, another account's channel.
        status, body = await env.call("POST", url, json={"video_id": white, "before_item_id": ids["blue"]})
        assert status == 409 and body["error"]["code"] == "bad_state"
        status, body = await env.call("POST", url, json={"video_id": 999999})
        assert status == 422 and body["error"]["field"] == "video_id"
        other = await env.channel("b")
        for method, path, json in (
            ("GET", f"/live/{other}/playlist", None),
            ("POST", f"/live/{other}/playlist", {"video_id": red}),
            ("PUT", f"/live/{other}/playlist/order", {"item_ids": []}),
        ):
            status, _ = await env.call(method, path, json=json)
            assert status == 404, (method, path)
        status, body = await env.call("POST", f"/live/{other}/playlist", "admin_b", json={"video_id": red})
        assert status == 422 and body["error"]["field"] == "video_id"  # a's video is not in b's account
    finally:
        await feed.close()


async def _crashed(env: Env, clip: Path, name: str, owner: str, lease: timedelta) -> tuple[int, Path]:
    """A video as a kill -9 mid-normalisation leaves it: normalising under ``owner``'s lease, its upload, a
    partial output of the dead ffmpeg, no normalised file (the real kill: test_live_videos_crash.py)."""
    async with env.db.writer() as session:
        row = LiveVideo(
            account_id=env.ids["account_a"], name=name, state="normalising", size_bytes=1, received_bytes=1,
            progress=40, directory=f"crashed-{name}", normal_size_bytes=0, created_by="", duration_ms=2000,
            lease_owner=owner, lease_until=env.clock.now + lease, created_at=env.clock.now,
            updated_at=env.clock.now,
        )  # fmt: skip
        session.add(row)
        await session.commit()
    directory = env.videos.root / row.directory
    directory.mkdir()
    shutil.copyfile(clip, directory / SOURCE_NAME)
    (directory / f".{NORMAL_NAME}.part.mp4").write_bytes(b"half written")
    return row.id, directory


async def test_a_dead_runs_video_is_redone_at_once_and_another_workers_after_its_lease(
    env: Env, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    # This worker's own lease, held far into the future: a previous run of this worker (which this run
    # proves dead) left it, so it is redone at once, from the beginning.
    mine, directory = await _crashed(env, clip, "mine", "main", timedelta(hours=1))
    # A video leased by another worker, which may still be alive: left alone until its lease runs out.
    theirs, _ = await _crashed(env, clip, "theirs", "worker-2", timedelta(minutes=2))
    video = await env.settle(mine)
    assert video["state"] == "ready" and video["progress"] == 100
    assert sorted(p.name for p in directory.iterdir()) == [NORMAL_NAME, SOURCE_NAME]
    async with env.db.session() as session:
        held = await session.get(LiveVideo, theirs)
        assert held is not None and (held.state, held.lease_owner) == ("normalising", "worker-2")
    env.clock.now += timedelta(minutes=3)
    taken = await env.settle(theirs)
    assert taken["state"] == "ready"
    probe = await asyncio.to_thread(
        subprocess.run,
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0",
         str(directory / NORMAL_NAME)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert probe.stdout.split() == ["h264,320,180", "aac"]
    async with env.db.session() as session:
        leases = (await session.scalars(select(LiveVideo.lease_owner))).all()
        assert set(leases) == {None}


async def test_three_items_play_in_order_on_the_running_channel(env: Env, tmp_path: Path) -> None:
    """The playlist on air in the real engine (yunhui/live.py runs it): items are marked as it plays them."""
    clips = [make_clip(tmp_path / f"{c}.mp4", seconds=1.0, color=c) for c in ("red", "green", "blue")]
    ids = [await env.upload(clip, clip.stem) for clip in clips]
    for video_id in ids:
        assert (await env.settle(video_id))["state"] == "ready"
    status, channel = await env.call(
        "POST", "/live", json={"title": "Launch", "language": "en", "source_kind": "playlist"}
    )
    assert status == 201, channel
    url = f"/live/{channel['id']}/playlist"
    status, body = await env.call("POST", f"{url}/play")
    assert status == 409 and body["error"]["code"] == "empty"
    for video_id in ids:
        await env.call("POST", url, json={"video_id": video_id})
    status, body = await env.call("POST", f"{url}/play")
    assert status == 409 and body["error"]["code"] == "not_live"
    status, body = await env.call("POST", f"/live/{channel['id']}/rehearse")
    assert status == 200, body
    try:
        status, body = await env.call("POST", f"{url}/play")
        assert status == 204, body
        feed = env.videos.on_air(channel["id"])
        assert feed is not None
        await asyncio.wait_for(feed.wait_marked(6), 60)  # three started, three ended
        _, items = await env.call("GET", url)
        assert [(i["video_name"], i["state"]) for i in items] == [
            ("red", "played"), ("green", "played"), ("blue", "played"),
        ]  # fmt: skip
        starts = [i["started_at"] for i in items]
        assert starts == sorted(starts) and all(i["ended_at"] for i in items)
    finally:
        await env.call("POST", f"/live/{channel['id']}/stop")


def _ffmpeg_on(directory: Path) -> list[str]:
    """Command lines of running processes that name ``directory`` (our ffmpeg)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        if any(str(directory).encode() in a for a in argv):
            found.append(" ".join(a.decode(errors="replace") for a in argv))
    return found


async def test_deleting_a_video_mid_normalisation_stops_its_ffmpeg(
    settings: Settings, tmp_path: Path
) -> None:
    require_tool("ffmpeg")
    clip = make_clip(tmp_path / "long.mp4", seconds=6.0)
    async for env in start_env(settings):  # the default 720p profile: the normalisation lasts a while
        video_id = await env.upload(clip, "Long")
        directory = env.videos.root / (await _directory(env, video_id))
        async with asyncio.timeout(60):
            while True:  # a bounded poll of ffmpeg's progress (another process's work)
                _, video = await env.call("GET", f"/live/videos/{video_id}")
                if video["state"] == "normalising" and video["progress"] > 0:
                    break
                await asyncio.sleep(0.02)
        assert await asyncio.to_thread(_ffmpeg_on, directory)
        done = env.videos.jobs_done
        status, _ = await env.call("DELETE", f"/live/videos/{video_id}")
        assert status == 204
        await asyncio.wait_for(env.videos.wait_jobs(done + 1), 30)  # the cancelled job has ended
        assert await asyncio.to_thread(_ffmpeg_on, directory) == []
        assert not directory.exists()
        # The job goes on with the next video.
        next_id = await env.upload(make_clip(tmp_path / "short.mp4"), "Short")
        assert (await env.settle(next_id))["state"] == "ready"

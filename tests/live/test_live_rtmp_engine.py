"""Acceptance 9 (research/recording.md §5): the channel pushed over RTMP into a local ``ffmpeg -listen 1``
receiver — H.264 + AAC, every frame of the segments pushed, lip sync within 40 ms — and the push resumes
within 10 s after the receiver is restarted (short back-off settings). The channel plays a normalised item on
an injected clock that the test moves along with real time while the push runs."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest

from recording.live.channel import LiveChannel, PlaylistSource
from recording.live.rtmp import next_backoff, push_argv
from recording.live.settings import LiveSettings
from tests.live.live_engine_media import (
    FakeClock,
    av_offsets,
    decode,
    ffprobe,
    make_item,
    read_counter,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def receiver(url: str, out: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-analyzeduration", "500000", "-probesize", "32768",
        "-listen", "1", "-f", "flv", "-i", url, "-c", "copy", "-flush_packets", "1", "-f", "flv", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)  # ffmpeg finishes its file on SIGINT
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def frames_in(path: Path) -> dict[str, int]:
    if not path.exists() or not path.stat().st_size:
        return {}
    probe = ffprobe(path, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames")
    return {s["codec_name"]: int(s.get("nb_read_frames", 0)) for s in probe["streams"]}


def test_backoff_doubles_and_starts_over_after_a_healthy_run() -> None:
    s = LiveSettings(rtmp_backoff_min_s=1.0, rtmp_backoff_max_s=8.0, rtmp_healthy_s=30.0)
    waits = [0.0]
    for _ in range(5):
        waits.append(next_backoff(waits[-1], 1.0, s))
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert next_backoff(8.0, 31.0, s) == 1.0
    argv = push_argv("ffmpeg", "rtmp://h/live/k")
    assert argv[0] == "ffmpeg" and argv[-1] == "rtmp://h/live/k" and "copy" in argv and "flv" in argv


async def test_rtmp_push_into_a_local_receiver_and_resume_after_it_restarts(tmp_path: Path) -> None:
    item = make_item(tmp_path / "item.mp4", 30.0, (110, 128, 128))
    url = f"rtmp://127.0.0.1:{free_port()}/live/x"
    settings = LiveSettings(rtmp_backoff_min_s=0.2, rtmp_backoff_max_s=0.5, rtmp_healthy_s=5.0)
    clock = FakeClock()
    channel = LiveChannel(tmp_path / "ch", settings, clock=clock, rtmp_url=url)
    pushed: list[str] = []
    channel.on_segment(lambda segment, path: pushed.append(segment.name))
    first = await receiver(url, tmp_path / "first.flv")
    second: asyncio.subprocess.Process | None = None
    ticking = True

    async def tick() -> None:  # the channel clock runs 3x real time while the push runs
        while ticking:
            clock.now += 0.15
            await channel.drain()
            await asyncio.sleep(0.05)

    ticker: asyncio.Task[None] | None = None
    try:
        channel.set_source(PlaylistSource((item,)))
        channel.go_live()
        await channel.start_rtmp()
        ticker = asyncio.create_task(tick())
        await wait_for(lambda: len(pushed) >= 4, 30)
        ticking = False
        await ticker
        rtmp = channel._rtmp
        assert rtmp is not None
        await wait_for(lambda: rtmp.segments_pushed >= len(pushed) and rtmp.state == "pushing", 30)
        counts = [frames_in(tmp_path / "ch" / name).get("h264", 0) for name in pushed]
        # The receiver has written every frame pushed but the last segment's tail, which ffmpeg holds to
        # interleave it with what comes next (polled: nothing signals it).
        sent = sum(counts[:-1])
        await wait_for(lambda: frames_in(tmp_path / "first.flv").get("h264", 0) >= sent, 20, every=0.3)
        await stop(first)
        starts = rtmp.starts

        ticking = True
        ticker = asyncio.create_task(tick())
        await wait_for(lambda: rtmp.starts > starts, 20)  # the push noticed and is retrying
        second = await receiver(url, tmp_path / "second.flv")
        restarted = asyncio.get_running_loop().time()
        resumed_by = len(pushed)
        await wait_for(lambda: rtmp.state == "pushing" and len(pushed) > resumed_by, 20)
        resumed = asyncio.get_running_loop().time() - restarted
        assert resumed <= 10.0, resumed
        await asyncio.sleep(1.0)
        ticking = False
        await ticker
        await channel.end()  # the push ends its stream: the receiver finishes its file
        await asyncio.wait_for(second.wait(), 15)

        received = frames_in(tmp_path / "first.flv")
        assert set(received) == {"h264", "aac"}
        assert sent <= received["h264"] <= sum(counts), (received, counts)
        decoded = decode(tmp_path / "first.flv")
        # every frame, in order, none lost or repeated
        assert [read_counter(y) for _, y, _ in decoded.video] == list(range(received["h264"]))
        offsets = sorted(av_offsets(decoded))
        assert len(offsets) >= 5, offsets
        assert abs(offsets[len(offsets) // 2]) <= 0.040, offsets
        again = frames_in(tmp_path / "second.flv")
        assert again.get("h264", 0) >= 30, again  # the push resumed into the restarted receiver
    finally:
        ticking = False
        if ticker is not None:
            await ticker
        await channel.close()
        await stop(first)
        if second is not None:
            await stop(second)

"""Pre-recorded videos without the app: the playlist rules (pure), the checks on tiny lavfi clips made at test
time (each refusal's named reason), and the normalised output against the profile (ffprobe)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from recording.ffmpeg import progress_percent
from recording.live.media_check import (
    CHECKS,
    REASONS,
    ProbeSummary,
    check_video,
    decode_argv,
    evaluate,
    loudness_argv,
    parse_loudness,
    parse_probe,
)
from recording.live.normalize import normalize, normalize_argv
from recording.live.settings import LiveProfile
from recording.live.video_settings import VideoSettings
from rooms.errors import Conflict, InvalidInput
from rooms.live.videos import Item, check_removable, ended, insert, next_item, queue, reorder, skip, started
from tests.conftest import require_tool
from tests.live.videos_env import make_clip, make_corrupt

LIMITS = VideoSettings(max_size_bytes=400_000, max_duration_s=3.0)


# --- the playlist rules ----------------------------------------------------------------------------------


def _apply(items: list[Item], positions: dict[int, int]) -> list[Item]:
    return [Item(i.id, positions[i.id], i.state) for i in items]


def test_three_items_play_in_order_and_the_operator_reorders_inserts_and_skips() -> None:
    items = _apply([Item(1, 0, "queued")], insert([], 1))
    for new in (2, 3):
        items = _apply([*items, Item(new, 0, "queued")], insert(items, new))
    assert [i.id for i in queue(items)] == [1, 2, 3]
    assert next_item(items) == Item(1, 1, "queued")
    # 1 plays and ends; 3 is moved before 2.
    items = [Item(1, 1, ended(Item(1, 1, started(items[0])))), *items[1:]]
    assert items[0].state == "played" and next_item(items) == Item(2, 2, "queued")
    items = _apply(items, reorder(items, [3, 2]))
    assert [(i.id, i.position) for i in sorted(items, key=lambda i: i.position)] == [(1, 1), (3, 2), (2, 3)]
    # A stale order (an item missing, or twice, or a played one) is refused, not merged.
    for stale in ([3], [3, 2, 2], [1, 3, 2], [2, 3, 4]):
        with pytest.raises(Conflict):
            reorder(items, stale)
    # 4 is inserted to play next, 5 before 2, 6 at the end.
    items = _apply([*items, Item(4, 0, "queued")], insert(items, 4, play_next=True))
    items = _apply([*items, Item(5, 0, "queued")], insert(items, 5, before=2))
    items = _apply([*items, Item(6, 0, "queued")], insert(items, 6))
    assert [i.id for i in queue(items)] == [4, 3, 5, 2, 6]
    with pytest.raises(Conflict):
        insert(items, 7, before=1)  # played: nothing goes before history
    with pytest.raises(InvalidInput):
        insert(items, 7, before=99)
    with pytest.raises(InvalidInput):
        insert(items, 7, before=2, play_next=True)
    # Skips: queued and playing items can be; a skipped item stays skipped when the engine reports it.
    four = next(i for i in items if i.id == 4)
    assert skip(four) == "skipped"
    playing = Item(3, 2, started(Item(3, 2, "queued")))
    assert playing.state == "playing" and skip(playing) == "skipped"
    with pytest.raises(Conflict):
        check_removable(playing)
    cut = Item(3, 2, "skipped")
    assert ended(cut) == "skipped" and started(cut) == "skipped"
    for done in (Item(1, 1, "played"), cut):
        with pytest.raises(Conflict):
            skip(done)
    # Reordering never moves the played item; the queued ones keep their slots.
    items = [Item(i.id, i.position, "skipped" if i.id == 4 else i.state) for i in items]
    positions = reorder(items, [6, 2, 5, 3])
    assert positions[1] == 1 and positions[4] == 2
    assert [i.id for i in queue(_apply(items, positions))] == [6, 2, 5, 3]
    assert next_item([Item(1, 1, "played")]) is None


# --- the checks --------------------------------------------------------------------------------------------


def test_argv_are_lists_and_the_parsers_read_ffmpeg() -> None:
    path = Path("/v/a b;rm -rf.mp4")
    assert decode_argv("ffmpeg", path)[-5:] == ["-i", str(path), "-f", "null", "-"]
    assert "-xerror" in decode_argv("ffmpeg", path)
    assert "ebur128=framelog=verbose" in loudness_argv("ffmpeg", path)
    stderr = "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -21.8 LUFS\n"
    assert parse_loudness("t: 1 M: -20 S: -120.7 I: -19.0 LUFS\n" + stderr) == -21.8
    assert parse_loudness("Summary:\n  I:         -inf LUFS") == -70.0
    assert parse_loudness("nothing") is None
    with pytest.raises(ValueError):
        parse_probe('{"streams": []}')
    summary = parse_probe(
        json.dumps(
            {
                "format": {"format_name": "matroska,webm", "duration": "12.5", "size": "1000"},
                "streams": [
                    {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
                    {"codec_type": "video", "codec_name": "vp9", "width": 640, "height": 360,
                     "avg_frame_rate": "0/0", "r_frame_rate": "30000/1001"},
                    {"codec_type": "audio", "codec_name": "opus", "sample_rate": "48000", "channels": 2},
                ],
            }
        )
    )  # fmt: skip
    assert summary == ProbeSummary(
        "matroska,webm", 12.5, 1000, None, "vp9", 640, 360, 29.97, "opus", 48000, 2
    )
    checks = evaluate(summary, 1000, LIMITS)
    assert [c.name for c in checks] == list(CHECKS[:7])
    failed = [(c.name, c.reason) for c in checks if c.ok is False]
    assert failed == [("duration", "too_long")]
    vfr = evaluate(ProbeSummary("gif", 2.0, 10, None, "h264", 1920, 1080, 120.0, "aac"), 10, LIMITS)
    assert [(c.name, c.reason) for c in vfr if c.ok is False] == [("container", "container"), ("fps", "fps")]


async def test_bad_files_are_refused_with_a_named_reason(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    clips = await asyncio.to_thread(
        lambda: {
            "ok": make_clip(tmp_path / "ok.mp4"),
            "no_audio": make_clip(tmp_path / "mute.mp4", audio=False),
            "too_long": make_clip(tmp_path / "long.mp4", seconds=4.0),
            "too_large": make_clip(tmp_path / "big.mkv", seconds=2.0, size="1280x720", fmt="matroska"),
            "resolution": make_clip(tmp_path / "tiny.mp4", size="160x90"),
            "corrupt": make_corrupt(tmp_path / "bad.ts"),
        }
    )
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 100)
    clips["unreadable"] = tmp_path / "notes.mp4"
    reports = {name: await check_video(path, LIMITS) for name, path in clips.items()}
    ok = reports.pop("ok")
    assert ok.refusal is None and all(c.ok for c in ok.checks), ok.checks
    assert ok.summary.width == 320 and ok.summary.audio_codec == "aac" and ok.loudness_lufs is not None
    assert [c.name for c in ok.checks] == list(CHECKS)
    for expected, report in reports.items():
        refusal = report.refusal
        assert refusal is not None and refusal.reason == expected, (expected, report.checks)
        assert refusal.reason in REASONS and refusal.detail, refusal
    assert "shorter" not in reports["too_long"].refusal.detail  # type: ignore[union-attr]
    assert reports["corrupt"].refusal.name == "decode"  # type: ignore[union-attr]
    # Decode and loudness are not run once a structural check failed (ok None: not run).
    assert [c.name for c in reports["no_audio"].checks if c.ok is None] == ["decode", "loudness"]


# --- normalisation -----------------------------------------------------------------------------------------


def _ffprobe(path: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, check=True, text=True, timeout=30,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


async def test_normalised_output_matches_the_profile(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    # 4:3 at 25 fps, mono 44.1 kHz in: the output is the profile whatever came in.
    source = tmp_path / "in.mp4"
    await asyncio.to_thread(
        subprocess.run,
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3", "-ac", "1",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(source)],
        check=True, timeout=60,
    )  # fmt: skip
    profile = LiveProfile()
    progress: list[float] = []
    result = await normalize(
        source, tmp_path / "normal.mp4", profile, duration_s=3.0, progress=progress.append
    )
    assert (
        progress[0] == 0.0 and progress[-1] == 100.0 and progress == sorted(progress) and len(progress) >= 3
    )
    assert result.size_bytes == (tmp_path / "normal.mp4").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "normal.mp4"]  # noqa: ASYNC240 (no part file left)
    info = await asyncio.to_thread(_ffprobe, result.path, "-show_streams", "-show_format")
    streams = {s["codec_type"]: s for s in info["streams"]}  # type: ignore[attr-defined]
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["profile"], video["width"], video["height"]) == (
        "h264",
        "Main",
        1280,
        720,
    )
    assert (
        video["r_frame_rate"] == "30/1"
        and video["pix_fmt"] == "yuv420p"
        and video["sample_aspect_ratio"] == "1:1"
    )
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
    assert info["format"]["format_name"].startswith("mov,mp4")  # type: ignore[index]
    # A keyframe every 2 s and nowhere else (the segmenter cuts there): frames 0 and 60 of 90.
    frames = await asyncio.to_thread(
        _ffprobe, result.path, "-select_streams", "v", "-show_entries", "frame=key_frame"
    )
    keys = [n for n, f in enumerate(frames["frames"]) if f["key_frame"] == 1]  # type: ignore[attr-defined]
    assert keys == [0, 60] and len(frames["frames"]) == 90  # type: ignore[arg-type]
    argv = normalize_argv(
        "ffmpeg", source, tmp_path / "x.mp4", profile.model_copy(update={"h264_profile": "baseline"})
    )
    assert argv[argv.index("-profile:v") + 1] == "baseline"
    assert progress_percent("out_time_us=1500000", 3e6) == 50.0
    assert progress_percent("out_time_us=9000000", 3e6) == 99.0
    assert progress_percent("frame=10", 3e6) is None


async def test_a_cancelled_normalisation_leaves_no_file(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    source = await asyncio.to_thread(make_clip, tmp_path / "in.mp4", seconds=6.0)
    started = asyncio.Event()

    def report(value: float) -> None:
        if value > 0:
            started.set()

    task = asyncio.create_task(
        normalize(source, tmp_path / "normal.mp4", LiveProfile(), duration_s=6.0, progress=report, nice=0)
    )
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # noqa: ASYNC240 (the test's listing)

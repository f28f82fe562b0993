"""Normalisation of an accepted video to the channel profile, so that playout copies packets, never encodes.

H.264 (constrained baseline or main) at the profile's size and rate, a keyframe every ``gop_seconds`` and
nowhere else (the HLS segmenter cuts there), AAC at 48 kHz stereo brought to the profile's loudness by
``loudnorm``, in an MP4 with its index in front. One niced ffmpeg process on few threads (live channels on the
same machine keep their CPU); progress from ``-progress pipe:1`` (``out_time_us``) as a growing percentage.
The output is written beside its target and renamed over it when ffmpeg succeeded: a failed, cancelled or
killed run leaves no half file, and is simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recording.errors import RecordingError
from recording.live.settings import LiveProfile

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


class NormalizeError(RecordingError):
    """ffmpeg could not normalise the video; the message has its last words."""


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    path: Path
    size_bytes: int


def video_filter(profile: LiveProfile) -> str:
    """Fit inside the profile's frame keeping the aspect ratio, pad the rest black, fix the rate."""
    w, h = profile.width, profile.height
    return (
        f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,fps={profile.fps},format=yuv420p"
    )


def audio_filter(profile: LiveProfile) -> str:
    # loudnorm works at 192 kHz internally: resample to the profile's rate after it.
    return (
        f"loudnorm=I={profile.loudness_lufs:g}:TP={profile.true_peak_db:g}:LRA={profile.loudness_range_lu:g},"
        f"aresample={profile.audio_rate}"
    )


def normalize_argv(
    ffmpeg: str, source: Path, target: Path, profile: LiveProfile, *, threads: int = 1
) -> list[str]:
    """The ffmpeg command that writes ``source`` normalised to ``profile`` into ``target`` (MP4)."""
    gop = round(profile.fps * profile.gop_seconds)
    kbps = profile.video_bitrate_k
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", str(threads),
        "-i", str(source),
        "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "-1", "-sn", "-dn",
        "-vf", video_filter(profile), "-af", audio_filter(profile),
        "-c:v", "libx264", "-preset", profile.preset, "-profile:v", profile.h264_profile,
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{profile.gop_seconds:g})",
        "-x264-params", f"threads={threads}",
        "-c:a", "aac", "-b:a", f"{profile.audio_bitrate_k}k", "-ar", str(profile.audio_rate),
        "-ac", str(profile.audio_channels),
        "-movflags", "+faststart", "-f", "mp4",
        "-progress", "pipe:1", "-nostats", str(target),
    ]  # fmt: skip


def niced(argv: list[str], nice: int) -> list[str]:
    return ["nice", "-n", str(nice), *argv] if nice > 0 else argv


def progress_of(line: str, duration_s: float) -> float | None:
    """The percentage a ``-progress`` line reports (``out_time_us``), at most 99 until ffmpeg has exited."""
    key, _, value = line.strip().partition("=")
    if key != "out_time_us" or not value.lstrip("-").isdigit() or duration_s <= 0:
        return None
    return max(0.0, min(int(value) / (duration_s * 1_000_000) * 100, 99.0))


async def normalize(
    source: Path,
    target: Path,
    profile: LiveProfile,
    *,
    duration_s: float,
    progress: Progress | None = None,
    ffmpeg: str = "ffmpeg",
    nice: int = 19,
    threads: int = 1,
) -> NormalizeResult:
    """Normalise ``source`` into ``target``; ``progress(percent)`` gets 0, growing values, then 100.

    Cancelling kills ffmpeg and removes the partial output.
    """
    tmp = target.with_name(f".{target.name}.part.mp4")
    argv = niced(normalize_argv(ffmpeg, source, tmp, profile, threads=threads), nice)
    reported = -1.0

    def report(value: float) -> None:
        nonlocal reported
        if value > reported and progress is not None:
            reported = value
            try:
                progress(round(value, 1))
            except Exception:
                log.exception("normalising %s: the progress callback failed", source)

    report(0.0)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise NormalizeError(f"ffmpeg cannot be run: {exc}") from exc
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        async for raw in process.stdout:
            value = progress_of(raw.decode(errors="replace"), duration_s)
            if value is not None:
                report(value)
        code = await process.wait()
        stderr = (await errors).decode(errors="replace").strip()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        errors.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await errors
        await asyncio.to_thread(tmp.unlink, True)
        raise
    if code != 0 or not await asyncio.to_thread(tmp.is_file):
        await asyncio.to_thread(tmp.unlink, True)
        last = " / ".join(stderr.splitlines()[-3:]) or f"exit status {code}"
        raise NormalizeError(f"ffmpeg failed: {last}")
    await asyncio.to_thread(os.replace, tmp, target)
    size = await asyncio.to_thread(lambda: target.stat().st_size)
    report(100.0)
    return NormalizeResult(target, size)

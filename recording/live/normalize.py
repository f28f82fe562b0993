"""Normalisation of an accepted video to the channel profile, so that playout copies packets, never encodes.

H.264 (constrained baseline or main) at the profile's size and rate, a keyframe every ``gop_seconds`` and
nowhere else (the HLS segmenter cuts there), AAC at 48 kHz stereo brought to the profile's loudness by
``loudnorm``, in an MP4 with its index in front. One niced ffmpeg process on few threads (live channels on the
same machine keep their CPU); progress from ``-progress pipe:1`` (``out_time_us``) as a growing percentage.
The run, its progress and its all-or-nothing output are recording.ffmpeg.run_to_file's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from recording.errors import RecordingError
from recording.ffmpeg import Progress, niced, run_to_file
from recording.live.settings import LiveProfile


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
    await run_to_file(
        argv,
        tmp,
        target,
        total_us=duration_s * 1_000_000,
        progress=progress,
        error=NormalizeError,
        what=f"normalising {source}",
    )
    size = await asyncio.to_thread(lambda: target.stat().st_size)
    return NormalizeResult(target, size)

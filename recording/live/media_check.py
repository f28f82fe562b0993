"""The checks of an uploaded video: ffprobe's view of it, a full decode, its loudness; each refusal named.

Pure argv builders and a pure ``evaluate`` over the probe, then ``check_video`` that runs the three programs
(Debian's ffprobe/ffmpeg, argv lists, never a shell). A refusal carries a stable reason code; the admin UI
shows the text of ``livevideo.reason.<code>`` from its catalogues, the API an English detail with the values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from recording.errors import RecordingError
from recording.live.video_settings import VideoSettings

log = logging.getLogger(__name__)

# Every reason a video is refused for, in the order the checks run.
REASONS = (
    "too_large",  # the file is bigger than live.videos.max_size_bytes
    "unreadable",  # ffprobe cannot read it: not a media file, or its header is broken
    "container",  # a container we do not take
    "no_video",
    "video_codec",
    "no_audio",
    "audio_codec",
    "resolution",
    "fps",
    "too_short",
    "too_long",
    "corrupt",  # the decode test met an error
    "silent",  # integrated loudness below live.videos.min_loudness_lufs
)
CHECKS = ("size", "container", "video", "audio", "resolution", "fps", "duration", "decode", "loudness")
SUMMARY_LOUDNESS = re.compile(r"Summary:.*?I:\s+(-?inf|-?[0-9.]+)\s+LUFS", re.DOTALL)
STDERR_TAIL = 3


class MediaCheckError(RecordingError):
    """A check could not be run at all (ffprobe or ffmpeg missing): not the video's fault."""


@dataclass(frozen=True, slots=True)
class ProbeSummary:
    """What ffprobe says of a file (the first video and the first audio stream)."""

    format_name: str = ""
    duration_s: float | None = None
    size_bytes: int = 0
    bit_rate: int | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """One check's result: ``ok`` None when it was not run (an earlier check refused the video)."""

    name: str
    ok: bool | None
    reason: str | None = None
    detail: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class CheckReport:
    summary: ProbeSummary
    checks: tuple[Check, ...]
    loudness_lufs: float | None = None

    @property
    def refusal(self) -> Check | None:
        """The first failed check: the reason the video is refused; None when it passed."""
        return next((c for c in self.checks if c.ok is False), None)


# --- argv builders (pure) ----------------------------------------------------------------------------------


def probe_argv(ffprobe: str, path: Path) -> list[str]:
    return [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]


def decode_argv(ffmpeg: str, path: Path, *, threads: int = 1) -> list[str]:
    """Decode every stream to nothing; -xerror stops at the first error, which -v error prints."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-threads", str(threads),
        "-i", str(path), "-f", "null", "-",
    ]  # fmt: skip


def loudness_argv(ffmpeg: str, path: Path) -> list[str]:
    """EBU R128 of the first audio stream; the summary (integrated loudness) is logged at info level."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", str(path),
        "-map", "0:a:0", "-vn", "-af", "ebur128=framelog=verbose", "-f", "null", "-",
    ]  # fmt: skip


def niced(argv: list[str], nice: int) -> list[str]:
    return ["nice", "-n", str(nice), *argv] if nice > 0 else argv


# --- parsing (pure) ----------------------------------------------------------------------------------------


def _rate(text: object) -> float | None:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if value > 0 else None


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: object) -> int | None:
    value = _number(text)
    return int(value) if value is not None else None


def parse_probe(raw: str) -> ProbeSummary:
    """The summary of ffprobe's JSON (-show_format -show_streams); ValueError if it is not that JSON."""
    data: Any = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("format"), dict):
        raise ValueError("ffprobe printed no format")
    fmt: dict[str, Any] = data["format"]
    streams = [s for s in data.get("streams", []) if isinstance(s, dict)]
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _number(fmt.get("duration"))
    if duration is None and video is not None:
        duration = _number(video.get("duration"))
    fps = None
    if video is not None:
        fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    return ProbeSummary(
        format_name=str(fmt.get("format_name", "")),
        duration_s=duration,
        size_bytes=_int(fmt.get("size")) or 0,
        bit_rate=_int(fmt.get("bit_rate")),
        video_codec=str(video.get("codec_name")) if video is not None else None,
        width=_int(video.get("width")) if video is not None else None,
        height=_int(video.get("height")) if video is not None else None,
        fps=round(fps, 3) if fps is not None else None,
        audio_codec=str(audio.get("codec_name")) if audio is not None else None,
        audio_rate=_int(audio.get("sample_rate")) if audio is not None else None,
        audio_channels=_int(audio.get("channels")) if audio is not None else None,
    )


def parse_loudness(stderr: str) -> float | None:
    """Integrated loudness (LUFS) from ebur128's summary; -inf (digital silence) is -70, the gate."""
    found = SUMMARY_LOUDNESS.findall(stderr)
    if not found:
        return None
    value = found[-1]
    return -70.0 if value.endswith("inf") else float(value)


def _tail(stderr: str) -> str:
    return " / ".join(line.strip() for line in stderr.strip().splitlines()[-STDERR_TAIL:])


# --- the rules (pure) --------------------------------------------------------------------------------------


def evaluate(summary: ProbeSummary, size_bytes: int, settings: VideoSettings) -> list[Check]:
    """The structural checks of a probed file, in CHECKS order (without decode and loudness)."""
    s = settings
    checks: list[Check] = []
    mib = size_bytes / 1024**2
    if size_bytes > s.max_size_bytes:
        limit = s.max_size_bytes / 1024**2
        checks.append(
            Check("size", False, "too_large", f"{mib:.1f} MiB is over {limit:.0f} MiB", f"{mib:.1f}")
        )
    else:
        checks.append(Check("size", True, value=f"{mib:.1f} MiB"))
    if summary.format_name not in s.containers:
        checks.append(
            Check(
                "container", False, "container", f"{summary.format_name!r} is not taken", summary.format_name
            )
        )
    else:
        checks.append(Check("container", True, value=summary.format_name))
    if summary.video_codec is None:
        checks.append(Check("video", False, "no_video", "the file has no video stream"))
    elif summary.video_codec not in s.video_codecs:
        checks.append(
            Check(
                "video",
                False,
                "video_codec",
                f"{summary.video_codec} video is not taken",
                summary.video_codec,
            )
        )
    else:
        checks.append(Check("video", True, value=summary.video_codec))
    if summary.audio_codec is None:
        checks.append(Check("audio", False, "no_audio", "the file has no audio stream"))
    elif summary.audio_codec not in s.audio_codecs:
        checks.append(
            Check(
                "audio",
                False,
                "audio_codec",
                f"{summary.audio_codec} audio is not taken",
                summary.audio_codec,
            )
        )
    else:
        rate = f" {summary.audio_rate} Hz" if summary.audio_rate else ""
        checks.append(Check("audio", True, value=f"{summary.audio_codec}{rate}"))
    if summary.width is not None and summary.height is not None:
        size = f"{summary.width}x{summary.height}"
        small = summary.width < s.min_width or summary.height < s.min_height
        large = summary.width > s.max_width or summary.height > s.max_height
        if small or large:
            bounds = f"{s.min_width}x{s.min_height} to {s.max_width}x{s.max_height}"
            checks.append(Check("resolution", False, "resolution", f"{size} is outside {bounds}", size))
        else:
            checks.append(Check("resolution", True, value=size))
    else:
        checks.append(Check("resolution", None))
    if summary.video_codec is not None:
        if summary.fps is None or not s.min_fps <= summary.fps <= s.max_fps:
            shown = f"{summary.fps:g}" if summary.fps is not None else "unknown"
            detail = f"{shown} fps is outside {s.min_fps:g} to {s.max_fps:g}"
            checks.append(Check("fps", False, "fps", detail, shown))
        else:
            checks.append(Check("fps", True, value=f"{summary.fps:g}"))
    else:
        checks.append(Check("fps", None))
    duration = summary.duration_s
    if duration is None or duration < s.min_duration_s:
        shown = f"{duration:.1f} s" if duration is not None else "unknown"
        checks.append(
            Check("duration", False, "too_short", f"{shown} is shorter than {s.min_duration_s:g} s", shown)
        )
    elif duration > s.max_duration_s:
        detail = f"{duration:.1f} s is longer than {s.max_duration_s:g} s"
        checks.append(Check("duration", False, "too_long", detail, f"{duration:.1f} s"))
    else:
        checks.append(Check("duration", True, value=f"{duration:.1f} s"))
    return checks


def loudness_check(lufs: float | None, settings: VideoSettings) -> Check:
    if lufs is None:
        return Check("loudness", False, "silent", "no loudness could be measured")
    if lufs < settings.min_loudness_lufs:
        detail = f"{lufs:.1f} LUFS is quieter than {settings.min_loudness_lufs:g} LUFS"
        return Check("loudness", False, "silent", detail, f"{lufs:.1f} LUFS")
    return Check("loudness", True, value=f"{lufs:.1f} LUFS")


# --- the runner --------------------------------------------------------------------------------------------


async def run(argv: list[str]) -> tuple[int, str, str]:
    """Run a program to its end (killed if the caller is cancelled): exit status, stdout, stderr."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise MediaCheckError(f"{argv[0]} cannot be run: {exc}") from exc
    try:
        out, err = await process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def check_video(path: Path, settings: VideoSettings) -> CheckReport:
    """Run every check on ``path``; the report's ``refusal`` is the first that failed (None: accepted)."""
    try:
        size = await asyncio.to_thread(lambda: path.stat().st_size)
    except FileNotFoundError:
        missing = Check("container", False, "unreadable", "the uploaded file is missing")
        return CheckReport(
            ProbeSummary(), (Check("size", None), missing, *(Check(n, None) for n in CHECKS[2:]))
        )
    code, out, err = await run(probe_argv(settings.ffprobe, path))
    try:
        summary = parse_probe(out) if code == 0 else None
    except ValueError:
        summary = None
    if summary is None:
        detail = _tail(err) or "ffprobe found no media in the file"
        size_check = evaluate(ProbeSummary(), size, settings)[0]
        unread = Check("container", False, "unreadable", detail)
        rest = tuple(Check(name, None) for name in CHECKS[2:])
        return CheckReport(ProbeSummary(size_bytes=size), (size_check, unread, *rest))
    checks = evaluate(summary, size, settings)
    if any(c.ok is False for c in checks):
        return CheckReport(summary, (*checks, Check("decode", None), Check("loudness", None)))
    code, _, err = await run(
        niced(decode_argv(settings.ffmpeg, path, threads=settings.threads), settings.nice)
    )
    if code != 0 or err.strip():
        checks.append(Check("decode", False, "corrupt", _tail(err) or f"ffmpeg exit status {code}"))
        return CheckReport(summary, (*checks, Check("loudness", None)))
    checks.append(Check("decode", True))
    code, _, err = await run(niced(loudness_argv(settings.ffmpeg, path), settings.nice))
    lufs = parse_loudness(err) if code == 0 else None
    checks.append(loudness_check(lufs, settings))
    log.debug("checked %s: %s", path, [c.name for c in checks if c.ok is False] or "accepted")
    return CheckReport(summary, tuple(checks), lufs)

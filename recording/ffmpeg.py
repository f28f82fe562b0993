"""Argv lists for Debian's ffmpeg and ffprobe, built by pure functions (never a shell string).

Our own builders rather than ffmpeg-python (docs/decisions.md): ffmpeg-python 0.2.0 is unmaintained since 2019
and its graph DSL hides the argv a test wants to read; these are short lists that unit tests check directly.
The composite's filter graph is built in recording/layout.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from recording.errors import RecordingError

log = logging.getLogger(__name__)


def remux(ffmpeg: str, source: Path, target: Path) -> list[str]:
    """Copy every stream into a fresh file: the muxer writes the duration and the Cues a live file lacks."""
    fmt = "webm" if target.suffix == ".webm" else "matroska"
    # -copyts: the timestamps are the recording's clock (a track that starts late starts late), not from 0.
    head = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-copyts", "-i", str(source)]
    return [*head, "-map", "0", "-c", "copy", "-f", fmt, str(target)]


def probe(ffprobe: str, path: Path) -> list[str]:
    """Start, duration and streams of one file as JSON."""
    entries = "format=start_time,duration:stream=codec_type,codec_name,width,height,start_time"
    return [ffprobe, "-v", "error", "-show_entries", entries, "-of", "json", str(path)]


def niced(argv: list[str], nice: int) -> list[str]:
    """Run at a lower CPU priority (nice is in Debian's coreutils)."""
    return ["nice", "-n", str(nice), *argv] if nice > 0 else argv


Progress = Callable[[float], None]


async def run_to_file(
    argv: list[str],
    tmp: Path,
    out: Path,
    *,
    total_us: float,
    progress: Progress | None,
    error: type[RecordingError],
    what: str,
) -> None:
    """Run an ffmpeg that writes ``tmp`` with ``-progress pipe:1``; rename it over ``out`` when it succeeded.

    ``progress(percent)`` gets 0, values that only grow (99 at most until ffmpeg has exited: an MP4 with
    faststart is finished only then), then 100. A failure raises ``error`` with ffmpeg's last words; a failed,
    cancelled or killed run leaves no half file and can simply be run again.
    """
    reported = -1.0

    def report(value: float) -> None:
        nonlocal reported
        value = max(0.0, min(100.0, value))
        if value > reported and progress is not None:
            reported = value
            try:
                progress(round(value, 1))
            except Exception:
                log.exception("%s: the progress callback failed", what)

    report(0.0)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise error(f"ffmpeg cannot be run: {exc}") from exc
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        async for raw in process.stdout:
            value = progress_percent(raw.decode(errors="replace"), total_us)
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
        raise error(f"ffmpeg failed: {last}")
    await asyncio.to_thread(os.replace, tmp, out)
    report(100.0)


def progress_percent(line: str, total_us: float) -> float | None:
    """The percentage a ``-progress`` line reports (``out_time_us``: microseconds, whatever ``out_time_ms``
    claims), at most 99."""
    key, _, value = line.strip().partition("=")
    if key != "out_time_us" or not value.lstrip("-").isdigit() or total_us <= 0:
        return None
    return max(0.0, min(int(value) / total_us * 100, 99.0))

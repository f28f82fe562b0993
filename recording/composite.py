"""render: the composite MP4 (H.264/AAC, grid or speaker layout, mixed audio) of a finished recording.

One niced ffmpeg process on one thread (live meetings on the same machine keep their CPU); progress from
``-progress pipe:1`` (``out_time_us``: microseconds, whatever ``out_time_ms`` claims) as a percentage that
only grows, 100 at the end. The output is written beside `out` and renamed over it when ffmpeg succeeded, so
a failed or cancelled render leaves no half file; a failure raises RenderError with ffmpeg's last words and
can be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recording.errors import RenderError
from recording.layout import LAYOUTS, Layout, composite_argv, plan
from recording.settings import RecordingSettings
from recording.timeline import read_timeline

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class CompositeResult:
    path: Path
    duration_s: float
    intervals: int  # layouts the render went through


async def render(
    directory: Path,
    layout: Layout,
    out: Path,
    progress: Progress | None = None,
    *,
    settings: RecordingSettings | None = None,
) -> CompositeResult:
    """Render the recording in `directory` (finalised: its timeline has recording_stopped) into `out`.

    `progress(percent)` is called with 0, then growing values, then 100 on success (on the event loop).
    """
    settings = settings or RecordingSettings()
    if layout not in LAYOUTS:
        raise RenderError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    events = read_timeline(directory)
    if not events:
        raise RenderError(f"{directory}: no timeline, nothing was recorded")
    if not any(e.event == "recording_stopped" for e in events):
        raise RenderError(f"{directory}: the recording is not finished (no recording_stopped)")
    p = plan(events, layout, settings)
    if p.frames <= 0:
        raise RenderError(f"{directory}: the recording is empty")
    missing = [s.file for s in (*p.videos, *p.audios) if not (directory / s.file).is_file()]
    if missing:
        raise RenderError(f"{directory}: files missing: {', '.join(missing)}")
    tmp = out.with_name(f".{out.name}.rendering.mp4")
    argv = composite_argv(p, directory, tmp, settings)
    total_us = p.frames / p.fps * 1_000_000
    reported = -1.0

    def report(value: float) -> None:
        nonlocal reported
        value = max(0.0, min(100.0, value))
        if value > reported and progress is not None:
            reported = value
            try:
                progress(round(value, 1))
            except Exception:
                log.exception("composite of %s: the progress callback failed", directory)

    report(0.0)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise RenderError(f"ffmpeg cannot be run: {exc}") from exc
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        async for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                # 99 % at most until ffmpeg has exited: the mp4 is finished (faststart) only then.
                report(min(int(value) / total_us * 100, 99.0))
        code = await process.wait()
        stderr = (await errors).decode(errors="replace").strip()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        errors.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await errors
        tmp.unlink(missing_ok=True)
        raise
    if code != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = " / ".join(stderr.splitlines()[-3:]) or f"exit status {code}"
        raise RenderError(f"ffmpeg failed: {last}")
    os.replace(tmp, out)
    report(100.0)
    return CompositeResult(out, p.frames / p.fps, len(p.intervals))

"""render: the composite MP4 (H.264/AAC, grid or speaker layout, mixed audio) of a finished recording.

One niced ffmpeg process on one thread (live meetings on the same machine keep their CPU); progress from
``-progress pipe:1`` (``out_time_us``: microseconds, whatever ``out_time_ms`` claims) as a percentage that
only grows, 100 at the end. The output is written beside `out` and renamed over it when ffmpeg succeeded, so
a failed or cancelled render leaves no half file; a failure raises RenderError with ffmpeg's last words and
can be retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recording.errors import RenderError
from recording.ffmpeg import Progress, run_to_file
from recording.layout import LAYOUTS, Layout, composite_argv, plan
from recording.settings import RecordingSettings
from recording.timeline import read_timeline


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
    await run_to_file(
        argv,
        tmp,
        out,
        total_us=p.frames / p.fps * 1_000_000,
        progress=progress,
        error=RenderError,
        what=f"composite of {directory}",
    )
    return CompositeResult(out, p.frames / p.fps, len(p.intervals))

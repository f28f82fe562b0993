"""The composite's plan and ffmpeg argv, as pure functions of the timeline (research/recording.md §3.3).

The meeting is cut into intervals in which the set of tiles does not change (a video track starts or ends,
the speaker changes in the speaker layout); each interval is an xstack of its tiles, and the intervals are
joined by the concat filter in the same ffmpeg run (one encode: no gaps or drift at the joins). Every video
input is put on the meeting's clock once (``setpts=PTS-STARTPTS`` then ``tpad`` by its first frame's time),
every audio input by ``adelay``; the files do not start at 0, and treating them as if they did is the bug the
A/V-sync test catches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recording.settings import RecordingSettings
from recording.timeline import TimelineEvent

Layout = Literal["grid", "speaker"]
LAYOUTS: tuple[Layout, ...] = ("grid", "speaker")


@dataclass(frozen=True, slots=True)
class Span:
    """One per-track file on the meeting's clock (ms)."""

    file: str
    participant: str
    kind: str
    source: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Tile:
    file: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Interval:
    """A stretch of constant layout, in frames of the output rate: [start, end)."""

    start: int
    end: int
    tiles: tuple[Tile, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    duration_ms: int
    fps: int
    width: int
    height: int
    intervals: tuple[Interval, ...]
    videos: tuple[Span, ...]
    audios: tuple[Span, ...]

    @property
    def frames(self) -> int:
        return self.intervals[-1].end if self.intervals else 0


def spans(events: Sequence[TimelineEvent]) -> tuple[list[Span], int]:
    """The files the timeline names, with their start and end, and the meeting's length (ms)."""
    stop = max((e.t for e in events if e.event == "recording_stopped"), default=None)
    last = max((e.t for e in events), default=0)
    duration = stop if stop is not None else last
    ends: dict[str, int] = {}
    for e in events:
        if e.event == "track_ended" and isinstance(e.fields.get("file"), str):
            ends[e.fields["file"]] = e.t
    out = []
    for e in events:
        f = e.fields
        if e.event != "track_started" or not isinstance(f.get("file"), str):
            continue
        end = min(ends.get(f["file"], duration), duration)
        if end > e.t:
            out.append(
                Span(
                    f["file"],
                    str(f.get("participant", "")),
                    str(f.get("kind", "")),
                    str(f.get("source", "")),
                    e.t,
                    end,
                )
            )
    return out, duration


def grid(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Tile rectangles (x, y, w, h) of a grid of `count` (even sizes, rows filled left to right)."""
    if count <= 0:
        return []
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    w, h = (width // cols) & ~1, (height // rows) & ~1
    return [((i % cols) * w, (i // cols) * h, w, h) for i in range(count)]


def _speakers(events: Sequence[TimelineEvent]) -> list[tuple[int, str]]:
    return [(e.t, str(e.fields.get("participant") or "")) for e in events if e.event == "speaker"]


def plan(events: Sequence[TimelineEvent], layout: Layout, settings: RecordingSettings) -> Plan:
    """What the composite shows when: the intervals and their tiles."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: {layout!r} is not one of {LAYOUTS}")
    fps, width, height = settings.composite_fps, settings.composite_width, settings.composite_height
    all_spans, duration = spans(events)
    videos = [s for s in all_spans if s.kind == "video"]
    audios = [s for s in all_spans if s.kind == "audio"]

    def frame(ms: int) -> int:
        return round(ms * fps / 1000)

    speakers = _speakers(events) if layout == "speaker" else []
    cuts = {0, frame(duration)}
    for s in videos:
        cuts.update((frame(s.start), frame(s.end)))
    cuts.update(frame(t) for t, _ in speakers)
    points = sorted(c for c in cuts if 0 <= c <= frame(duration))
    intervals: list[Interval] = []
    for a, b in itertools.pairwise(points):
        if b <= a:
            continue
        visible = [s for s in videos if frame(s.start) <= a and frame(s.end) >= b]
        if layout == "speaker":
            visible = _speaker_view(visible, speakers, a * 1000 / fps)
        rects = grid(len(visible), width, height)
        tiles = tuple(Tile(s.file, *r) for s, r in zip(visible, rects, strict=True))
        if intervals and intervals[-1].tiles == tiles:  # a cut that changed nothing shown
            intervals[-1] = Interval(intervals[-1].start, b, tiles)
        else:
            intervals.append(Interval(a, b, tiles))
    return Plan(duration, fps, width, height, tuple(intervals), tuple(videos), tuple(audios))


def _speaker_view(visible: list[Span], speakers: list[tuple[int, str]], at_ms: float) -> list[Span]:
    """One tile: a screen share if any, else the current speaker's camera, else the first camera."""
    screens = [s for s in visible if s.source == "screen"]
    if screens:
        return screens[:1]
    speaker = next((p for t, p in reversed(speakers) if t <= at_ms + 1), None)
    mine = [s for s in visible if s.participant == speaker]
    return (mine or visible)[:1]


def filter_graph(p: Plan, settings: RecordingSettings) -> tuple[list[str], str]:
    """The inputs (file names, in -i order) and the -filter_complex text producing [v] and [a]."""
    fps, width, height = p.fps, p.width, p.height
    used = [s for s in p.videos if any(t.file == s.file for i in p.intervals for t in i.tiles)]
    inputs = [s.file for s in used] + [s.file for s in p.audios]
    index = {s.file: k for k, s in enumerate(used)}
    total = p.frames / fps
    parts: list[str] = []
    copies: dict[str, list[str]] = {}
    for s in used:
        k = index[s.file]
        n = sum(1 for i in p.intervals for t in i.tiles if t.file == s.file)
        labels = [f"v{k}c{j}" for j in range(n)]
        copies[s.file] = labels
        outs = "".join(f"[{x}]" for x in labels)
        parts.append(
            f"[{k}:v]setpts=PTS-STARTPTS,fps={fps},tpad=start_duration={s.start / 1000:.3f}:"
            f"stop_mode=clone:stop_duration={total + 1:.3f},split={n}{outs}"
        )
    segments = []
    for j, interval in enumerate(p.intervals):
        a, b = interval.start / fps, interval.end / fps
        label = f"i{j}"
        if not interval.tiles:
            parts.append(f"color=c=black:s={width}x{height}:r={fps}:d={b - a:.6f},setsar=1[{label}]")
        else:
            tiles = []
            for m, tile in enumerate(interval.tiles):
                src = copies[tile.file].pop(0)
                out = f"t{j}_{m}"
                parts.append(
                    f"[{src}]trim=start={a:.6f}:end={b:.6f},setpts=PTS-STARTPTS,"
                    f"scale={tile.width}:{tile.height}:force_original_aspect_ratio=decrease,"
                    f"pad={tile.width}:{tile.height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1[{out}]"
                )
                tiles.append(out)
            if len(tiles) == 1:
                t = interval.tiles[0]
                parts.append(f"[{tiles[0]}]pad={width}:{height}:{t.x}:{t.y}:color=black,setsar=1[{label}]")
            else:
                grid_layout = "|".join(f"{t.x}_{t.y}" for t in interval.tiles)
                parts.append(
                    "".join(f"[{t}]" for t in tiles) + f"xstack=inputs={len(tiles)}:layout={grid_layout}"
                    f",pad={width}:{height}:0:0:color=black,setsar=1[{label}]"
                )
        segments.append(f"[{label}]")
    if segments:
        parts.append("".join(segments) + f"concat=n={len(segments)}:v=1:a=0,format=yuv420p[v]")
    else:
        parts.append(
            f"color=c=black:s={width}x{height}:r={fps}:d={max(total, 1 / fps):.6f},format=yuv420p[v]"
        )
    audio_labels = []
    for m, s in enumerate(p.audios):
        k = len(used) + m
        parts.append(
            f"[{k}:a]asetpts=PTS-STARTPTS,aresample=48000:async=1:first_pts=0,"
            f"aformat=sample_rates=48000:channel_layouts=stereo,adelay=delays={s.start}:all=1[a{m}]"
        )
        audio_labels.append(f"[a{m}]")
    if audio_labels:
        mixed = "".join(audio_labels) + f"amix=inputs={len(audio_labels)}:normalize=0:duration=longest,"
    else:
        mixed = "anullsrc=r=48000:cl=stereo,"
    parts.append(mixed + f"apad,atrim=end={total:.6f}[a]")
    return inputs, ";".join(parts)


def composite_argv(p: Plan, directory: Path, out: Path, settings: RecordingSettings) -> list[str]:
    """The whole ffmpeg command (progress on stdout), niced and on one thread."""
    inputs, graph = filter_graph(p, settings)
    argv = [settings.ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y"]
    for name in inputs:
        argv += ["-threads", "1", "-i", str(directory / name)]
    argv += [
        "-filter_complex",
        graph,
        "-filter_complex_threads",
        "1",
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        settings.composite_preset,
        "-crf",
        str(settings.composite_crf),
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(p.fps),
        "-g",
        str(2 * p.fps),
        "-c:a",
        "aac",
        "-b:a",
        f"{settings.composite_audio_bitrate_k}k",
        "-ar",
        "48000",
        "-t",
        f"{p.frames / p.fps:.6f}",
        "-threads",
        str(settings.composite_threads),
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-nostats",
        "-f",
        "mp4",
        str(out),
    ]
    return (["nice", "-n", str(settings.composite_nice)] if settings.composite_nice else []) + argv

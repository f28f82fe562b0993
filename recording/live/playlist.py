"""HLS media playlists (RFC 8216): the live window and the EVENT playlist (the replay), written atomically.

Rendering is a pure function of the segment list. The live window's MEDIA-SEQUENCE and
DISCONTINUITY-SEQUENCE count what slid out of it, so a player polling it never loses its place; from go-live
on it starts at the first public segment (rehearsal segments are never public). Every segment carries its
PROGRAM-DATE-TIME (players measure latency by it; the replay shows wall times).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Segment:
    """One written segment file: its media sequence number, duration and wall time of its first frame."""

    sequence: int
    name: str
    duration: float
    wall: float  # time.time() of its first frame
    discontinuity: bool  # a source switch (or a size change) before it; never on the channel's first
    public: bool  # cut after go-live
    start: float = 0.0  # output time of its first frame (seconds since the channel's start)


def program_date_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def target_duration(segment_seconds: float) -> int:
    """EXT-X-TARGETDURATION: the segment length aimed at, rounded up (segments are cut by then)."""
    return max(1, math.ceil(segment_seconds - 1e-9))


def render(
    segments: list[Segment],
    *,
    target: int,
    media_sequence: int,
    discontinuity_sequence: int,
    event: bool = False,
    ended: bool = False,
) -> str:
    """One media playlist. `media_sequence` is the first segment's number (or the next one when empty)."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}",
    ]
    if event:
        lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
    for seg in segments:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{program_date_time(seg.wall)}")
        lines.append(f"#EXTINF:{seg.duration:.3f},")
        lines.append(seg.name)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Previous:
    """What a run's playlist says (parse): its segments, DISCONTINUITY-SEQUENCE and whether it ended."""

    segments: tuple[Segment, ...]
    discontinuity_sequence: int
    public: bool  # the EVENT playlist (the run was live), not the rehearsal's live window
    ended: bool


def parse(text: str, *, public: bool) -> Previous:
    """Read back a playlist ``render`` wrote (pure; a line it does not know is skipped). ValueError when
    it is not an HLS media playlist."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U)")
    sequence, disc_sequence, ended = 1, 0, False
    segments: list[Segment] = []
    duration, wall, discontinuity = 0.0, 0.0, False
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            sequence = int(value)
        elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
            disc_sequence = int(value)
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            wall = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        elif tag == "#EXTINF":
            duration = float(value.split(",", 1)[0])
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            segments.append(Segment(sequence, line, duration, wall, discontinuity, public))
            sequence += 1
            duration, wall, discontinuity = 0.0, 0.0, False
    return Previous(tuple(segments), disc_sequence, public, ended)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class PlaylistWriter:
    """Keeps the channel's segment list and rewrites index.m3u8 and event.m3u8 on every change."""

    def __init__(self, directory: Path, *, segment_seconds: float, window: int) -> None:
        self.directory = directory
        self.target = target_duration(segment_seconds)
        self.window = window
        self.segments: list[Segment] = []
        self.first_public: int | None = None  # index into segments of the first public one
        self.ended = False
        self.writes = 0
        # DISCONTINUITY-SEQUENCE of the first segment kept (a resumed run continues the playlist's count).
        self.discontinuity_base = 0

    @property
    def public(self) -> list[Segment]:
        return [] if self.first_public is None else self.segments[self.first_public :]

    def add(self, segment: Segment) -> None:
        if self.ended:
            return
        if segment.public and self.first_public is None:
            self.first_public = len(self.segments)
        self.segments.append(segment)
        self.write()

    def end(self) -> None:
        """ENDLIST on both playlists (idempotent): the EVENT playlist is now the replay."""
        if not self.ended:
            self.ended = True
            self.write()

    def live_window(self) -> tuple[list[Segment], int, int]:
        """The window's segments, its media sequence and its discontinuity sequence."""
        start = max(0, len(self.segments) - self.window)
        if self.first_public is not None:
            start = max(start, self.first_public)
        return self.segments[start:], self._sequence_at(start), self._discontinuities_before(start)

    def _sequence_at(self, index: int) -> int:
        if index < len(self.segments):
            return self.segments[index].sequence
        return self.segments[-1].sequence + 1 if self.segments else 1

    def _discontinuities_before(self, index: int) -> int:
        # EXT-X-DISCONTINUITY-SEQUENCE: the tags that slid out of the playlist before its first segment.
        return self.discontinuity_base + sum(1 for s in self.segments[:index] if s.discontinuity)

    def resume(self, previous: Previous) -> None:
        """Continue the playlists a crashed run left (their segments, their sequences); the next segment
        the new run cuts carries a DISCONTINUITY (the segmenter is told so)."""
        self.segments = list(previous.segments)
        self.discontinuity_base = previous.discontinuity_sequence
        self.first_public = 0 if previous.public and self.segments else None

    def write(self) -> None:
        window, sequence, disc = self.live_window()
        self._write(
            "index.m3u8",
            render(
                window,
                target=self.target,
                media_sequence=sequence,
                discontinuity_sequence=disc,
                ended=self.ended,
            ),
        )
        if self.first_public is not None:
            public = self.public
            self._write(
                "event.m3u8",
                render(
                    public,
                    target=self.target,
                    media_sequence=public[0].sequence,
                    discontinuity_sequence=self._discontinuities_before(self.first_public),
                    event=True,
                    ended=self.ended,
                ),
            )
        self.writes += 1

    def _write(self, name: str, text: str) -> None:
        write_atomically(self.directory / name, text)

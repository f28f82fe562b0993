"""timeline.jsonl: one JSON object per line, `t` in ms on the recording's clock and `event`, fsync per event.

It is the composite's input (who was seen when, which track is in which file) and survives a crash: every
line is on disk before the next is written; a line cut short by a kill -9 is ignored when read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TIMELINE = "timeline.jsonl"

# The events a timeline holds (research/recording.md §2.7) and what the composite reads of them.
EVENTS = frozenset(
    {
        "recording_started",
        "recording_stopped",
        "joined",
        "left",
        "track_started",
        "track_ended",
        "muted",
        "unmuted",
        "speaker",
        "screen_share",
        "layout",
        "hole",
        "recovered",
    }
)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    t: int  # ms since the recording started
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return json.dumps({"t": self.t, "event": self.event, **self.fields}, ensure_ascii=False) + "\n"


class TimelineWriter:
    """Appends events to timeline.jsonl with one fsync each; used by the writer thread only."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / TIMELINE
        torn = False
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (owned, closed in close())
        if torn:  # a line a crash cut short must not swallow the first event appended after it
            self._file.write("\n")

    def write(self, event: TimelineEvent) -> None:
        self._file.write(event.line())
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_timeline(directory: Path) -> list[TimelineEvent]:
    """The events of a recording directory in file order (a torn last line is skipped)."""
    return list(_read(directory / TIMELINE))


def _read(path: Path) -> Iterator[TimelineEvent]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            t, event = int(item.pop("t")), str(item.pop("event"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s:%d: not a timeline event, skipped", path, number)
            continue
        yield TimelineEvent(t, event, item)

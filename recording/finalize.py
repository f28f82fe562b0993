"""Finalising a recording directory: remux each live-written file (duration and Cues), probe and checksum it.

The same steps run on a clean stop (Recorder.close) and at the next start after a crash (recover): a file
still named "<stem>.part.<ext>" was not finalised. Remuxing writes "<stem>.<ext>.tmp" and renames it over the
final name, then removes the part file, so a crash during finalising leaves either the part file or the final
file, never a half-written one under the final name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from recording import ffmpeg
from recording.errors import RecordingError
from recording.settings import RecordingSettings
from recording.timeline import TIMELINE, TimelineEvent, TimelineWriter, read_timeline
from recording.track import PART

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """One per-track file of a finished recording."""

    name: str  # relative to the recording directory
    track_id: str
    participant_id: str
    kind: str
    source: str
    codec: str
    size: int  # bytes
    start_s: float  # its first frame on the recording's clock
    duration_s: float  # from its first frame to its last
    sha256: str


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """What a recording left in its directory: the files, the timeline, its length."""

    directory: Path
    files: tuple[RecordedFile, ...]
    timeline: str  # file name of the timeline
    duration_s: float  # from recording_started to recording_stopped
    recovered: bool  # finalised after a crash
    dropped_packets: int = 0
    holes: int = 0
    keyframe_requests: int = 0

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise RecordingError(f"{argv[0]}: cannot be run: {exc}") from exc
    out, err = await process.communicate()
    return process.returncode or 0, out, err


async def probe(settings: RecordingSettings, path: Path) -> tuple[float, float]:
    """Start and duration (seconds) of a media file by ffprobe; RecordingError when it is not readable."""
    code, out, err = await _run(ffmpeg.probe(settings.ffprobe, path))
    if code != 0:
        raise RecordingError(f"{path.name}: ffprobe failed: {err.decode(errors='replace').strip()[-300:]}")
    fmt = json.loads(out or b"{}").get("format", {})
    try:
        start = float(fmt.get("start_time", 0.0))
        duration = float(fmt.get("duration", 0.0))
    except (TypeError, ValueError):
        start, duration = 0.0, 0.0
    return start, duration


async def remux(settings: RecordingSettings, part: Path, final: Path) -> None:
    """The part file copied into `final` with duration and Cues; the part file is removed after the rename."""
    tmp = final.with_name(final.name + ".tmp" + final.suffix)
    code, _, err = await _run(ffmpeg.remux(settings.ffmpeg, part, tmp))
    if code != 0:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    if code != 0 or not await asyncio.to_thread(_settle, tmp, part, final):
        raise RecordingError(f"{part.name}: remux failed: {err.decode(errors='replace').strip()[-300:]}")


def _settle(tmp: Path, part: Path, final: Path) -> bool:
    """Rename the remuxed file over the final name, then drop the part file; False when there is none."""
    if not tmp.exists():
        return False
    os.replace(tmp, final)
    part.unlink(missing_ok=True)
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_name(final: str) -> str:
    stem, _, ext = final.rpartition(".")
    return f"{stem}{PART}.{ext}"


async def finalise(
    directory: Path, settings: RecordingSettings, *, recovered: bool = False, stopped_at: int | None = None
) -> RecordingResult:
    """Remux what is not final yet and describe every file (the timeline says which track each file holds).

    `recovered`: after a crash; the timeline then gets the track_ended and recording_stopped lines the crash
    cut off (at each file's end), with "recovered": true.
    """
    events = read_timeline(directory)
    started = {e.fields.get("file"): e for e in events if e.event == "track_started"}
    ended = {e.fields.get("file") for e in events if e.event == "track_ended"}
    appended: list[TimelineEvent] = []
    files: list[RecordedFile] = []
    for name, event in started.items():
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            continue
        final, part = directory / name, directory / part_name(name)
        if part.exists():
            try:
                await remux(settings, part, final)
            except RecordingError:
                if not final.exists():
                    log.exception("recording %s: %s lost", directory, name)
                    continue
        if not final.exists():
            continue
        start, duration = await probe(settings, final)
        f = event.fields
        files.append(
            RecordedFile(
                name=name,
                track_id=str(f.get("track", "")),
                participant_id=str(f.get("participant", "")),
                kind=str(f.get("kind", "")),
                source=str(f.get("source", "")),
                codec=str(f.get("codec", "")),
                size=final.stat().st_size,
                start_s=start,
                duration_s=max(duration - start, 0.0),
                sha256=await asyncio.to_thread(_sha256, final),
            )
        )
        if name not in ended:
            appended.append(
                TimelineEvent(
                    round(duration * 1000),
                    "track_ended",
                    {"file": name, "track": f.get("track"), "recovered": True},
                )
            )
    last = max([e.t for e in events] + [e.t for e in appended] + [0])
    stop = next((e for e in events if e.event == "recording_stopped"), None)
    if stop is None:
        appended.append(
            TimelineEvent(
                stopped_at if stopped_at is not None else last,
                "recording_stopped",
                {"reason": "crash" if recovered else "stopped", "recovered": recovered},
            )
        )
    if appended:
        await asyncio.to_thread(_append, directory, appended)
    end = stop.t if stop is not None else appended[-1].t
    return RecordingResult(directory, tuple(files), TIMELINE, end / 1000, recovered)


def _append(directory: Path, events: list[TimelineEvent]) -> None:
    writer = TimelineWriter(directory)
    try:
        for event in events:
            writer.write(event)
    finally:
        writer.close()


def needs_recovery(directory: Path) -> bool:
    """Whether a recording directory was left by a crash (a part file, or no recording_stopped)."""
    if any(p.name.count(PART + ".") for p in directory.iterdir() if p.is_file()):
        return True
    events = read_timeline(directory)
    return bool(events) and not any(e.event == "recording_stopped" for e in events)


async def recover(directory: Path, settings: RecordingSettings | None = None) -> RecordingResult | None:
    """Finalise a recording a crash left unfinished (None when there is nothing to do): call at start-up for
    each recording directory that is not marked finished."""
    settings = settings or RecordingSettings()
    if not await asyncio.to_thread(lambda: directory.is_dir() and needs_recovery(directory)):
        return None
    log.warning("recording %s: finalising after a crash", directory)
    return await finalise(directory, settings, recovered=True)

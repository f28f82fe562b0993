"""PlayoutInput: a playlist of normalised files played on the channel's clock by packet copy (worker thread).

Files are normalised to the channel profile beforehand (recording/live/normalize.py: H.264 with a keyframe
every segment, AAC), so the video packets are copied (MP4/Matroska's length-prefixed NAL units become Annex B
through ``h264_mp4toannexb``) and only the audio is decoded to PCM for the channel's one AAC encoder. Item
after item, the next starts where the last frame of the one before ended (no gap, a DISCONTINUITY); skip and
changes to the upcoming items take effect at an item boundary. A file that cannot be read is skipped (and
said so in its ``ended`` event, position 0).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import PlaylistEvent, PlaylistSource
from recording.live.units import AudioUnit, Unit, VideoUnit

log = logging.getLogger(__name__)

Notify = Callable[[Callable[[PlaylistEvent], None], PlaylistEvent], None]


class _Item:
    """One open file: its packets as units timed from `start` (local time of its first frame)."""

    LOOKAHEAD = 1.5

    def __init__(self, path: Path, start: float, profile: LiveProfile) -> None:
        self.path = path
        self.start = start
        self.container: Any = av.open(str(path))
        self.video: Any = self.container.streams.video[0] if self.container.streams.video else None
        self.audio: Any = self.container.streams.audio[0] if self.container.streams.audio else None
        if self.video is None:
            self.container.close()
            raise ValueError(f"{path.name}: no video stream")
        self._bsf = BitStreamFilterContext("h264_mp4toannexb", self.video)
        self._resampler = av.AudioResampler(
            format="fltp", layout="stereo" if profile.audio_channels == 2 else "mono", rate=profile.audio_rate
        )
        streams = [s for s in (self.video, self.audio) if s is not None]
        self._packets: Iterator[Any] = self.container.demux(*streams)
        self._first: float | None = None
        self.end = start  # local time just after its last frame so far
        self.position = 0.0
        self._ahead: list[Unit] = []
        self._eof = False
        self._last_video = -1e9  # local time of the last unit read, per stream
        self._last_audio = -1e9
        self.done = False
        self._first_video = True

    def _time(self, pts: int | None, stream: Any) -> float | None:
        if pts is None:
            return None
        seconds = float(pts * stream.time_base)
        if self._first is None:
            self._first = seconds
        return self.start + seconds - self._first

    def _read(self) -> bool:
        """Demux the next packet into units; False at the end of the file."""
        try:
            packet = next(self._packets)
        except (StopIteration, av.FFmpegError):
            return False
        if packet.stream is self.video:
            for out in self._bsf.filter(packet):
                t = self._time(out.pts, self.video)
                if t is None:
                    continue
                dts = self._time(out.dts, self.video) if out.dts is not None else None
                frame_len = float(out.duration * self.video.time_base) if out.duration else 1 / 30
                self.end = max(self.end, t + frame_len)
                self.position = t - self.start
                first, self._first_video = self._first_video, False
                self._ahead.append(VideoUnit(t, bytes(out), bool(out.is_keyframe), dts, discontinuity=first))
                self._last_video = t
        elif packet.stream is self.audio and packet.size:
            try:
                frames = packet.decode()
            except av.FFmpegError:
                return True
            for frame in frames:
                t = self._time(frame.pts, self.audio)
                if t is None:
                    continue
                for resampled in self._resampler.resample(frame):
                    pcm = np.asarray(resampled.to_ndarray(), dtype=np.float32)
                    self._ahead.append(AudioUnit(t, pcm, "playout"))
                    self._last_audio = t
                    t += resampled.samples / resampled.sample_rate
        return True

    def pull(self, now: float) -> list[Unit]:
        """The units up to `now`, in time order: a file interleaves its streams in chunks (up to a second or
        so apart), so both are read LOOKAHEAD past `now` before anything is handed on."""
        horizon = now + self.LOOKAHEAD
        while not self._eof and (
            self._last_video <= horizon or (self.audio is not None and self._last_audio <= horizon)
        ):
            if not self._read():
                self._eof = True
        self._ahead.sort(key=lambda u: u.t)
        cut = 0
        while cut < len(self._ahead) and self._ahead[cut].t <= now:
            cut += 1
        out, self._ahead = self._ahead[:cut], self._ahead[cut:]
        if self._eof and not self._ahead:
            self.done = True
        return out

    def close(self) -> None:
        with contextlib.suppress(av.FFmpegError):
            self.container.close()


class PlayoutInput:
    """A PlaylistSource in the worker thread; ``index`` is the item on air."""

    kind = "playout"

    def __init__(
        self,
        input_id: int,
        source: PlaylistSource,
        settings: LiveSettings,
        profile: LiveProfile,
        *,
        notify: Notify,
    ) -> None:
        self.input_id = input_id
        self.source = source
        self.items: list[Path] = list(source.items)
        self.settings = settings
        self.profile = profile
        self.label = source.label
        self._notify = notify
        self.index: int | None = None
        self._item: _Item | None = None
        self.played: list[int] = []

    def _event(self, index: int, path: Path, event: str, at: float, position: float) -> None:
        callback = self.source.on_event
        if callback is not None:
            self._notify(callback, PlaylistEvent(index, path, event, at, position))

    def start(self, now: float) -> None:
        """Going on air: the current item (the first one) starts over now."""
        if self._item is not None:
            self._item.close()
            self._item = None
        self._open(self.index or 0, now)

    def _open(self, index: int, at: float) -> None:
        tries = 0
        while tries < max(1, len(self.items)):
            if index >= len(self.items):
                if not self.source.loop or not self.items:
                    self.index = None
                    return
                index = 0
            path = self.items[index]
            try:
                self._item = _Item(path, at, self.profile)
            except (av.FFmpegError, OSError, ValueError) as exc:
                log.warning("playout %s: %s cannot be played: %s", self.label, path, exc)
                self._event(index, path, "ended", at, 0.0)
                index += 1
                tries += 1
                continue
            self.index = index
            self.played.append(index)
            self._event(index, path, "started", at, 0.0)
            return
        self.index = None

    def pull(self, now: float) -> list[Unit]:
        out: list[Unit] = []
        while self._item is not None:
            item = self._item
            out.extend(item.pull(now))
            if not item.done:
                break
            self._finish(item.end)
        return out

    def _finish(self, at: float) -> None:
        item, self._item = self._item, None
        if item is None or self.index is None:
            return
        item.close()
        self._event(self.index, item.path, "ended", at, item.position)
        self._open(self.index + 1, at)

    def skip(self, now: float) -> None:
        """End the item on air now; the next one starts at once."""
        if self._item is not None:
            self._item.done = True
            self._item.end = now
            self._item.position = max(0.0, now - self._item.start)
            self._finish(now)

    def set_upcoming(self, items: tuple[Path, ...]) -> None:
        """The items after the one on air are now `items` (insert, remove, reorder)."""
        current = self.index if self.index is not None else -1
        self.items = [*self.items[: current + 1], *items]

    def stop(self, now: float) -> None:
        """Off air (the primary took over from this standby): the item closes; it starts over next time."""
        if self._item is not None and self.index is not None:
            self._item.close()
            self._event(self.index, self._item.path, "ended", now, self._item.position)
            self._item = None

    def request_keyframe(self) -> None:
        """Normalised files have a keyframe every segment: nothing to ask."""

    def close(self) -> None:
        if self._item is not None:
            self._item.close()
            self._item = None

"""What a live channel can put on air: a meeting, an encoder, a playlist of normalised videos (docs/live.md).

These are descriptions (frozen values); the LiveChannel opens them. A meeting and a WHIP encoder are both
Tracks of a Router, tapped in process (sfu.tap, research/recording.md §2.1): the channel never imports sfu,
it is handed the Router's ``tap`` as a callable, so recording stays a leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class TrackDescription(Protocol):
    """What a tap says about the Track it feeds (sfu.tap.TappedTrack has these attributes)."""

    @property
    def track_id(self) -> str: ...
    @property
    def participant_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def codec(self) -> str: ...
    @property
    def clock_rate(self) -> int: ...


class PacketSink(Protocol):
    """sfu.tap.TapSink, restated so that recording does not import sfu."""

    def packet(  # noqa: PLR0917 (the hot path: plain values)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool: ...
    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None: ...
    def ended(self) -> None: ...


class Closable(Protocol):
    def close(self) -> None: ...


# Router.tap(track_id, sink_for) -> TapSubscription: sink_for is called at once with the Track's description.
Tap = Callable[[str, Callable[[TrackDescription], PacketSink]], Closable]


@dataclass(frozen=True, slots=True)
class MeetingSource:
    """Tracks of a meeting's Router: one video Track (copied when H.264, transcoded when VP8) and the audio
    Tracks that are mixed into the channel's audio (an interpreter's microphone alone for a second language).

    Speaker follow: the wiring calls ``LiveChannel.select_video(track_id)`` on each held speaker change; the
    switch happens at the new Track's keyframe (asked for at once).
    """

    tap: Tap
    video_track: str | None
    audio_tracks: tuple[str, ...] = ()
    label: str = "meeting"


@dataclass(frozen=True, slots=True)
class EncoderSource:
    """A WHIP publisher (OBS, a hardware encoder): the same as a meeting source, named for the console."""

    tap: Tap
    video_track: str | None
    audio_tracks: tuple[str, ...] = ()
    label: str = "encoder"


@dataclass(frozen=True, slots=True)
class PlaylistEvent:
    """An item of a playlist went on air (``started``) or finished (``ended``); ``position`` in seconds."""

    index: int
    path: Path
    event: str  # "started" or "ended"
    at: float  # the channel's clock
    position: float = 0.0


@dataclass(frozen=True, slots=True)
class PlaylistSource:
    """Normalised files (recording/live/normalize.py: the channel profile) played one after the other by
    packet copy; ``loop`` plays the list again from the start (a standby video). ``on_event`` is called on
    the event loop for every item started and ended (the product side shows the progress); skip, insert and
    reorder go through LiveChannel.playlist_* and take effect at the next item boundary."""

    items: tuple[Path, ...]
    loop: bool = False
    on_event: Callable[[PlaylistEvent], None] | None = field(default=None, compare=False)
    label: str = "playlist"


@dataclass(frozen=True, slots=True)
class RtmpIngestSource:
    """An encoder pushing RTMP to ``rtmp://<bind>:<port>/<app>/<stream_key>`` (recording/live/ingest.py): its
    H.264 is copied, never transcoded; a wrong stream key is refused; a reconnect marks a DISCONTINUITY."""

    port: int
    stream_key: str = field(repr=False)
    bind: str = "127.0.0.1"
    app: str = "live"
    label: str = "rtmp"


Source = MeetingSource | EncoderSource | PlaylistSource | RtmpIngestSource


def is_tapped(source: Source) -> bool:
    return isinstance(source, MeetingSource | EncoderSource)

"""The transcoded layout of a meeting channel: the visible publishers composed into a grid or a speaker
layout at the channel profile and encoded to H.264 (worker thread; research/recording.md §3.3).

Used where the speaker copy is not possible (VP8 publishers) or wanted (layout=grid). Each tile's frames
(VP8 or H.264) are decoded as they come and only the latest picture is kept; ``render(t)`` pastes every tile
scaled into its cell on a black canvas and encodes it with x264 as the VP8 transcode does (veryfast,
zerolatency, no B-frames, one thread, an IDR every ``segment_seconds``). The cells are a pure function of the
number of tiles (``grid_cells``, ``speaker_cells``), so a change of the tiles is a new layout from the next
frame on, with no restart of the encoder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import av
import numpy as np

from recording.live.settings import LiveProfile, LiveSettings
from recording.live.units import VideoUnit

log = logging.getLogger(__name__)

RATE = 90000
MAX_TILES = 9  # 3 x 3
Layout = Literal["grid", "speaker"]


@dataclass(frozen=True, slots=True)
class Cell:
    x: int
    y: int
    width: int
    height: int


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def grid_cells(n: int, width: int, height: int) -> list[Cell]:
    """n tiles (1…9) in a grid: 1×1, 2×2 up to 4 tiles, 3×3 up to 9; a short last row is centred."""
    n = max(0, min(n, MAX_TILES))
    if n == 0:
        return []
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    rows = math.ceil(n / cols)
    cw, ch = _even(width / cols), _even(height / rows)
    top = (height - rows * ch) // 2 // 2 * 2
    cells = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        left = (width - in_row * cw) // 2 // 2 * 2
        cells.append(Cell(left + col * cw, top + row * ch, cw, ch))
    return cells


def speaker_cells(n: int, width: int, height: int) -> list[Cell]:
    """The first tile (the speaker) fills the picture above a strip of up to 4 others, a fifth high."""
    n = max(0, min(n, 5))
    if n <= 1:
        return [Cell(0, 0, width, height)] if n else []
    strip = _even(height / 5)
    main_h = height - strip
    cells = [Cell((width - _even(main_h * width / height)) // 2 // 2 * 2, 0, _even(main_h * width / height),
                  main_h)]  # fmt: skip
    tw = _even(width / 4)
    others = n - 1
    left = (width - others * tw) // 2 // 2 * 2
    cells.extend(Cell(left + i * tw, main_h, tw, strip) for i in range(others))
    return cells


class LayoutComposer:
    """The tiles of a layout in, H.264 of the channel profile out (one composer per layout source)."""

    def __init__(self, profile: LiveProfile, settings: LiveSettings, layout: Layout = "grid") -> None:
        self.profile = profile
        self.settings = settings
        self.layout: Layout = layout
        self.tiles: list[str] = []  # track ids in layout order (the speaker first in "speaker")
        self._decoders: dict[str, Any] = {}
        self._pictures: dict[str, Any] = {}  # the latest decoded frame of each tile
        self._encoder: Any = None
        self._next_key: float | None = None
        self.frames_out = 0
        self.errors = 0

    def set_tiles(self, tiles: list[str]) -> None:
        """The visible publishers' video Tracks, in order; the rest are dropped."""
        limit = MAX_TILES if self.layout == "grid" else 5
        self.tiles = list(tiles[:limit])
        for gone in set(self._decoders) - set(self.tiles):
            self._decoders.pop(gone, None)
            self._pictures.pop(gone, None)

    def cells(self) -> list[Cell]:
        p = self.profile
        place = grid_cells if self.layout == "grid" else speaker_cells
        return place(len(self.tiles), p.width, p.height)

    def push(self, track: str, codec: str, data: bytes) -> None:
        """One encoded frame (VP8, or H.264 Annex B) of a tile: decoded now, its picture kept."""
        if track not in self.tiles:
            return
        decoder = self._decoders.get(track)
        if decoder is None:
            decoder = self._decoders[track] = av.CodecContext.create("vp8" if codec == "vp8" else "h264", "r")
        try:
            for frame in decoder.decode(av.Packet(data)):
                self._pictures[track] = frame
        except av.FFmpegError as exc:
            self.errors += 1
            if self.errors <= 3:
                log.warning("layout: a frame of %s could not be decoded: %s", track, exc)

    def compose(self) -> np.ndarray:
        """The canvas (yuv420p planes stacked, as PyAV's to_ndarray has them), every tile in its cell."""
        p = self.profile
        w, h = p.width, p.height
        canvas = np.empty((h * 3 // 2, w), dtype=np.uint8)
        canvas[:h] = 16  # black in limited range
        canvas[h:] = 128
        for track, cell in zip(self.tiles, self.cells(), strict=False):
            picture = self._pictures.get(track)
            if picture is None:
                continue
            planes = picture.reformat(width=cell.width, height=cell.height, format="yuv420p").to_ndarray()
            cw, ch = cell.width, cell.height
            canvas[cell.y : cell.y + ch, cell.x : cell.x + cw] = planes[:ch]
            u, v = (
                planes[ch : ch + ch // 4].reshape(ch // 2, cw // 2),
                planes[ch + ch // 4 :].reshape(ch // 2, cw // 2),
            )
            u_rows = canvas[h : h + h // 4].reshape(h // 2, w // 2)
            v_rows = canvas[h + h // 4 :].reshape(h // 2, w // 2)
            u_rows[cell.y // 2 : (cell.y + ch) // 2, cell.x // 2 : (cell.x + cw) // 2] = u
            v_rows[cell.y // 2 : (cell.y + ch) // 2, cell.x // 2 : (cell.x + cw) // 2] = v
        return canvas

    def render(self, t: float) -> Iterator[VideoUnit]:
        """The output frame at local time `t` (called at the profile's frame rate): composed and encoded."""
        frame = av.VideoFrame.from_ndarray(self.compose(), format="yuv420p")
        if self._encoder is None:
            self._encoder = _open_encoder(self.profile, self.settings)
        frame.pts = round(t * RATE)
        frame.time_base = Fraction(1, RATE)
        if self._next_key is None or t >= self._next_key - 0.5 / self.profile.fps:
            frame.pict_type = av.video.frame.PictureType.I
            self._next_key = max(t, (self._next_key or t)) + self.settings.segment_seconds
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        try:
            packets = self._encoder.encode(frame)
        except av.FFmpegError as exc:
            self.errors += 1
            log.warning("layout: a frame could not be encoded: %s", exc)
            return
        for packet in packets:  # zerolatency: this frame's packet, at once
            self.frames_out += 1
            yield VideoUnit(t, bytes(packet), bool(packet.is_keyframe))

    def close(self) -> None:
        self._encoder = None
        self._decoders.clear()
        self._pictures.clear()


def _open_encoder(profile: LiveProfile, settings: LiveSettings) -> Any:
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = profile.width, profile.height
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, RATE)
    enc.framerate = Fraction(profile.fps, 1)
    enc.bit_rate = profile.video_bitrate_k * 1000
    gop = str(max(1, round(profile.fps * settings.segment_seconds)))
    enc.options = {"preset": profile.preset, "tune": "zerolatency", "bf": "0", "g": gop, "keyint_min": gop,
                   "threads": "1", "forced-idr": "1", "sc_threshold": "0", "profile": "main"}  # fmt: skip
    enc.open()
    return enc

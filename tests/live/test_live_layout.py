"""The transcoded layout (issue #18): grid and speaker cells as pure functions, and the composer on real
VP8 and H.264 tiles (PyAV encoders): every tile lands in its cell, the output is H.264 of the profile with an
IDR every segment and nothing else."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from recording.live.layout import Cell, LayoutComposer, grid_cells, speaker_cells
from recording.live.settings import LiveProfile, LiveSettings

LUMAS = (40, 90, 150, 210)


def tile_frames(codec: str, luma: int, count: int, size: tuple[int, int] = (320, 180)) -> list[bytes]:
    """`count` encoded frames of a flat picture of `luma` (VP8 like a browser, or H.264 Annex B)."""
    enc: Any = av.CodecContext.create("libvpx" if codec == "vp8" else "libx264", "w")
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, 30)
    enc.framerate = Fraction(30, 1)
    if codec == "h264":
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    out: list[bytes] = []
    for i in range(count):
        planes = np.full((size[1] * 3 // 2, size[0]), 128, dtype=np.uint8)
        planes[: size[1]] = luma
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in enc.encode(frame))
    out.extend(bytes(p) for p in enc.encode(None))
    return out


def overlaps(a: Cell, b: Cell) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height


@pytest.mark.parametrize("n", range(1, 10))
def test_grid_cells_fit_do_not_overlap_and_are_even(n: int) -> None:
    cells = grid_cells(n, 1280, 720)
    assert len(cells) == n
    for i, c in enumerate(cells):
        assert c.x >= 0 and c.y >= 0 and c.x + c.width <= 1280 and c.y + c.height <= 720
        assert c.x % 2 == c.y % 2 == c.width % 2 == c.height % 2 == 0
        assert not any(overlaps(c, d) for d in cells[i + 1 :])
    expected = {1: (1280, 720), 4: (640, 360), 9: (426, 240)}
    if n in expected:
        assert {(c.width, c.height) for c in cells} == {expected[n]}
    assert len(grid_cells(12, 1280, 720)) == 9  # 3 x 3 at most


def test_speaker_cells_put_the_speaker_large_above_the_others() -> None:
    cells = speaker_cells(4, 1280, 720)
    speaker, *others = cells
    assert speaker.height == 720 - 144 and all(o.y == speaker.height and o.height == 144 for o in others)
    assert all(speaker.width * speaker.height > 4 * o.width * o.height for o in others)
    assert speaker_cells(1, 1280, 720) == [Cell(0, 0, 1280, 720)]


def test_a_2x2_grid_of_vp8_and_h264_tiles_is_composed_and_encoded() -> None:
    profile, settings = LiveProfile(), LiveSettings()
    composer = LayoutComposer(profile, settings, "grid")
    tracks = ["a", "b", "c", "d"]
    codecs = ["vp8", "vp8", "h264", "h264"]
    composer.set_tiles(tracks)
    streams = {t: tile_frames(c, y, 8) for t, c, y in zip(tracks, codecs, LUMAS, strict=True)}
    decoder: Any = av.CodecContext.create("h264", "r")
    keyframes, decoded = [], []
    for i in range(61):  # 2 s at 30 fps and one frame: IDRs at 0 and 2 s only
        for track, codec in zip(tracks, codecs, strict=True):
            frames = streams[track]
            composer.push(track, codec, frames[i % len(frames)])
        for unit in composer.render(i / 30):
            if unit.keyframe:
                keyframes.append(i)
            decoded.extend(decoder.decode(av.Packet(unit.data)))
    composer.close()
    assert keyframes == [0, 60], keyframes
    assert composer.frames_out == 61 and composer.errors == 0
    last = decoded[-1]
    assert (last.width, last.height) == (1280, 720)
    y = last.to_ndarray(format="yuv420p")[:720].astype(float)
    for cell, luma in zip(grid_cells(4, 1280, 720), LUMAS, strict=True):
        inner = y[cell.y + 20 : cell.y + cell.height - 20, cell.x + 20 : cell.x + cell.width - 20]
        assert abs(inner.mean() - luma) < 6, (cell, inner.mean(), luma)


def test_a_tile_that_leaves_leaves_its_cell_black_and_a_bad_frame_is_counted() -> None:
    composer = LayoutComposer(LiveProfile(width=640, height=360), LiveSettings(), "speaker")
    composer.set_tiles(["a", "b"])
    for data in tile_frames("vp8", 200, 2):
        composer.push("a", "vp8", data)
        composer.push("b", "vp8", data)
    composer.push("b", "vp8", b"\x00garbage")  # a broken frame: counted, the last picture kept
    assert composer.errors >= 1
    canvas = composer.compose()
    assert canvas[:288].mean() > 150  # the speaker
    composer.set_tiles(["a"])  # b left: one tile, the whole picture
    assert composer.cells() == [Cell(0, 0, 640, 360)]
    assert composer.compose()[:360].mean() > 150

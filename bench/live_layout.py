"""CPU of the transcoded 2x2 grid (issue #18): four VP8 publishers at 640x360 decoded, composed at 1280x720
and encoded with x264 veryfast (recording/live/layout.py), one thread, as the channel's worker does.

``python -m bench.live_layout --seconds 10 [--out docs/benchmarks.md]``: the VP8 tiles are encoded first (not
measured); then the composer's CPU time (time.process_time of this one-thread process) per second of output.
Each tile is a quarter noise, three quarters flat, moving, like bench/live_packaging.py's picture.
"""

from __future__ import annotations

import argparse
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.sections import merge_into
from recording.live.layout import LayoutComposer
from recording.live.settings import LiveProfile, LiveSettings

FPS = 30


def vp8_tile(seed: int, frames: int, width: int = 640, height: int = 360) -> list[bytes]:
    enc: Any = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    enc.bit_rate = 800_000
    rng = np.random.default_rng(seed)
    out: list[bytes] = []
    for i in range(frames):
        planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
        planes[:height] = 60 + 40 * seed
        planes[: height // 2, : width // 2] = rng.integers(0, 255, (height // 2, width // 2), dtype=np.uint8)
        x = (i * 8) % (width - 64)
        planes[height // 2 : height // 2 + 64, x : x + 64] = 235
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = i
        out.extend(bytes(p) for p in enc.encode(frame))
    out.extend(bytes(p) for p in enc.encode(None))
    return out


def measure(seconds: float) -> dict[str, float]:
    frames = round(seconds * FPS)
    tiles = {f"t{k}": vp8_tile(k, frames) for k in range(4)}
    composer = LayoutComposer(LiveProfile(), LiveSettings(), "grid")
    composer.set_tiles(list(tiles))
    start = time.process_time()
    for i in range(frames):
        for track, data in tiles.items():
            composer.push(track, "vp8", data[min(i, len(data) - 1)])
        for _ in composer.render(i / FPS):
            pass
    cpu = time.process_time() - start
    composer.close()
    return {"core": cpu / seconds, "ms_per_frame": 1000 * cpu / frames, "frames": composer.frames_out}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    r = measure(args.seconds)
    load = os.getloadavg()[0]
    lines = [
        "### The transcoded 2×2 grid (720p30)",
        "",
        f"`python -m bench.live_layout --seconds {args.seconds:g}` on {os.uname().nodename} (2 cores, load "
        f"average {load:.1f} while it ran). Four VP8 publishers at 640x360 (a quarter noise, a moving block) "
        "decoded, composed into 1280x720 and encoded with x264 veryfast, zerolatency, one thread "
        "(recording/live/layout.py); CPU time of that one thread per second of output.",
        "",
        "| layout | % of one core | CPU ms per output frame |",
        "|---|---|---|",
        f"| 2×2 grid of VP8 tiles → H.264 720p30 | {100 * r['core']:.1f} % | {r['ms_per_frame']:.1f} |",
        "",
        "The budget of research/recording.md §3.3 (composite 4×360p → 720p veryfast) was 33 % of a core.",
    ]
    print("\n".join(lines))
    if args.out is not None:
        merge_into(args.out, "live-layout", lines)


if __name__ == "__main__":
    main()

"""CPU of the SIP transcode (sfu/plain_transcode.py): VP8 decode + libx264 encode per frame, in its thread.

Feeds the Transcoder's worker VP8 frames (libvpx, a moving test pattern) at 640x360 and 1280x720 and reports
the worker's thread CPU per frame and as a share of one core at 30 and 15 fps. Run:
``.venv/bin/python -m bench.sip_transcode`` (prints one line per size).
"""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.plain_transcode import TranscodeFormat, _Worker

FRAMES = 150


def vp8_frames(width: int, height: int, count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.bit_rate = 1_500_000
    out = []
    for i in range(count):
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:, :, 0] = (np.arange(width)[None, :] + 4 * i) % 256
        image[:, :, 1] = (np.arange(height)[:, None] + 2 * i) % 256
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.append(b"".join(bytes(p) for p in encoder.encode(frame)))
    return [f for f in out if f]


def measure(width: int, height: int) -> tuple[float, int]:
    frames = vp8_frames(width, height, FRAMES)
    codec = RTCRtpCodecParameters(
        mimeType="video/H264", clockRate=90000, payloadType=109, parameters={"packetization-mode": "1"}
    )
    emitted: list[int] = []
    worker = _Worker("vp8", TranscodeFormat(codec=codec), lambda ts, au, key: emitted.append(len(au)))
    worker.start()
    for i, data in enumerate(frames):
        worker.inbox.put((i * 3000, data, i == 0))
    worker.stop()
    worker.join(120)
    return worker.cpu_seconds / max(worker.frames, 1), len(emitted)


def main() -> None:
    for width, height in ((640, 360), (1280, 720)):
        started = time.perf_counter()
        per_frame, emitted = measure(width, height)
        print(
            f"{width}x{height}: {per_frame * 1000:.1f} ms CPU a frame ({emitted} frames), "
            f"{per_frame * 30 * 100:.0f} % of a core at 30 fps, {per_frame * 15 * 100:.0f} % at 15 fps "
            f"({time.perf_counter() - started:.1f} s)"
        )


if __name__ == "__main__":
    main()

"""Media of the "sip" scenario (bench/sip.py): a terminal's H.264 camera and 20 ms audio frames per codec.

The camera is libx264 640x360 Constrained Baseline at constant quality on a noisy moving picture (about
750 kbit/s at 15 fps; a flat synthetic picture would be a few hundred bytes a frame), packetized as RFC 6184
mode 1; the audio is a 440 Hz tone encoded like a terminal would (PCMU, PCMA, G.722, Opus).
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from aiortc.codecs.h264 import H264Encoder

PT = {"pcmu": 0, "pcma": 8, "g722": 9, "opus": 111}
RATES = {"pcmu": (8000, 160, "pcm_mulaw"), "pcma": (8000, 160, "pcm_alaw"), "g722": (16000, 160, "g722")}
RATES["opus"] = (48000, 960, "libopus")


def video_packets(frames: int, fps: int) -> list[list[bytes]]:
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = 640, 360, "yuv420p"
    codec.time_base = Fraction(1, 90000)
    codec.gop_size = fps * 4
    # Constant quality on noisy content gives a camera's bit rate (ABR starves a synthetic picture).
    codec.options = {"profile": "baseline", "tune": "zerolatency", "preset": "ultrafast", "crf": "36"}
    out = []
    for i in range(frames):
        # A moving gradient under noise: a camera's bit rate (a flat picture would be a few hundred bytes).
        noise = np.random.default_rng(i).integers(0, 40, (360, 640))
        y = ((np.arange(640)[None, :] + np.arange(360)[:, None] + 4 * i + noise) % 256).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(y, format="gray").reformat(format="yuv420p")
        frame.pts = i * (90000 // fps)
        frame.time_base = Fraction(1, 90000)
        data = b"".join(bytes(p) for p in codec.encode(frame))
        out.append(H264Encoder._packetize(H264Encoder._split_bitstream(data)))
    return out


def audio_frames(codec: str, count: int) -> list[bytes]:
    rate, _, name = RATES[codec]
    encoder = av.CodecContext.create(name, "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate, encoder.layout, encoder.format = rate, "mono", "s16"
    per = rate // 50
    out: list[bytes] = []
    n = 0
    while len(out) < count:
        t = (n + np.arange(per)) / rate
        pcm = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, n
        n += per
        out += [bytes(p) for p in encoder.encode(frame)]
    return out[:count]

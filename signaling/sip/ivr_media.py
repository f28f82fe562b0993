"""What the IVR sends: its prompts encoded per terminal codec, and the H.264 slate. Made once, at start.

The prompts ship as small Ogg Opus files (signaling/sip/prompts/, made by make_prompts.py with espeak-ng);
here they are decoded and encoded with PyAV into 20 ms RTP payloads for every codec a leg can have, so
playing one costs nothing but sending. The slate is one 640x360 IDR from libx264 (Constrained Baseline,
which every terminal decodes): room systems show black or even drop a call that gets no video.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

logger = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).parent / "prompts"
LegCodec = Literal["pcmu", "pcma", "g722", "opus"]
CODECS: tuple[LegCodec, ...] = ("pcmu", "pcma", "g722", "opus")
# codec -> (PyAV encoder, sample rate, RTP clock ticks per 20 ms). G.722's RTP clock is 8 kHz (RFC 3551).
_ENCODERS: dict[LegCodec, tuple[str, int, int]] = {
    "pcmu": ("pcm_mulaw", 8000, 160),
    "pcma": ("pcm_alaw", 8000, 160),
    "g722": ("g722", 16000, 160),
    "opus": ("libopus", 48000, 960),
}
_RATE = 48000
_GAP_S = 0.3  # between the languages of one prompt
SLATE_WIDTH, SLATE_HEIGHT = 640, 360


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    """A prompt as 20 ms payloads; each advances the RTP timestamp by ``samples``."""

    frames: tuple[bytes, ...]
    samples: int

    @property
    def seconds(self) -> float:
        return len(self.frames) * 0.02


def codec_of(name: str) -> LegCodec | None:
    """The leg codec of an SDP encoding name ("PCMU", "G722", "opus" ...); None if the IVR cannot speak it."""
    return {"pcmu": "pcmu", "pcma": "pcma", "g722": "g722", "opus": "opus"}.get(name.lower())  # type: ignore[return-value]


class PromptLibrary:
    """Every prompt, spoken in ``languages`` one after the other (zh-CN, then en), encoded per codec on the
    codec's first use (``prepare`` encodes them all ahead: about 0.7 s a codec, run it in a thread)."""

    def __init__(self, languages: Sequence[str] = ("zh-CN", "en"), *, directory: Path = PROMPTS_DIR) -> None:
        names = sorted({p.name.split(".", 1)[0] for p in directory.glob("*.opus")})
        if not names:
            raise FileNotFoundError(f"no IVR prompts in {directory}")
        gap = np.zeros(int(_RATE * _GAP_S), dtype=np.int16)
        self._pcm: dict[str, np.ndarray] = {}
        for name in names:
            parts: list[np.ndarray] = []
            for language in languages:
                path = directory / f"{name}.{language}.opus"
                if path.exists():
                    parts.extend([_decode(path), gap])
            if parts:
                self._pcm[name] = np.concatenate(parts)
        self._encoded: dict[LegCodec, dict[str, EncodedPrompt]] = {}
        self._silence: dict[LegCodec, bytes] = {}

    def prepare(self, codecs: Iterable[LegCodec] = CODECS) -> None:
        for codec in codecs:
            self._prompts_in(codec)

    def get(self, name: str, codec: LegCodec) -> EncodedPrompt:
        try:
            return self._prompts_in(codec)[name]
        except KeyError:
            raise KeyError(f"no IVR prompt {name!r}") from None

    def names(self) -> set[str]:
        return set(self._pcm)

    def silence(self, codec: LegCodec) -> bytes:
        """One 20 ms frame of silence (comfort silence while nothing else plays)."""
        self._prompts_in(codec)
        return self._silence[codec]

    def _prompts_in(self, codec: LegCodec) -> dict[str, EncodedPrompt]:
        prompts = self._encoded.get(codec)
        if prompts is None:
            prompts = {name: _encode(pcm, codec) for name, pcm in self._pcm.items()}
            self._silence[codec] = _silence(codec)
            self._encoded[codec] = prompts
        return prompts


def _decode(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def _encode(pcm48: np.ndarray, codec: LegCodec) -> EncodedPrompt:
    name, rate, ticks = _ENCODERS[codec]
    context = av.CodecContext.create(name, "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = rate
    context.layout = "mono"
    context.format = "s16"
    context.time_base = fractions.Fraction(1, rate)
    if codec == "opus":
        context.bit_rate = 32000
    context.open()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    source = av.AudioFrame.from_ndarray(pcm48.reshape(1, -1), format="s16", layout="mono")
    source.sample_rate = _RATE
    resampled = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in [*resampler.resample(source), *resampler.resample(None)]]
    )
    step = rate // 50
    resampled = np.pad(resampled, (0, -len(resampled) % step))
    frames: list[bytes] = []
    for i, start in enumerate(range(0, len(resampled), step)):
        frame = av.AudioFrame.from_ndarray(
            resampled[start : start + step].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = i * step
        frames.extend(bytes(p) for p in context.encode(frame))
    frames.extend(bytes(p) for p in context.encode(None))
    return EncodedPrompt(tuple(frames), ticks)


def _silence(codec: LegCodec) -> bytes:
    frames = _encode(np.zeros(_RATE // 50 * 3, dtype=np.int16), codec).frames
    return frames[len(frames) // 2]


def make_slate(width: int = SLATE_WIDTH, height: int = SLATE_HEIGHT) -> bytes:
    """One H.264 IDR access unit (Annex B, SPS and PPS in band) of the waiting picture."""
    yuv = _slate_picture(width, height)
    context = av.CodecContext.create("libx264", "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width, context.height = width, height
    context.pix_fmt = "yuv420p"
    context.time_base = fractions.Fraction(1, 15)
    context.options = {
        "preset": "ultrafast",
        "tune": "stillimage",
        "profile": "baseline",
        "x264-params": "keyint=1:repeat-headers=1:annexb=1",
    }
    context.open()
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*context.encode(frame), *context.encode(None)])
    if not data:
        raise RuntimeError("libx264 produced no slate")
    return data


def _slate_picture(width: int, height: int) -> np.ndarray:
    """A calm picture without text (no font is needed): a dark blue field and a lighter band with a ring,
    the shape of the product's logo. yuv420p as one (h * 3/2, w) plane array."""
    y = np.full((height, width), 41, dtype=np.uint8)
    u = np.full((height // 2, width // 2), 150, dtype=np.uint8)
    v = np.full((height // 2, width // 2), 110, dtype=np.uint8)
    y[height * 5 // 12 : height * 7 // 12, :] = 70
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot(yy - height / 2, xx - width / 2)
    y[(r > height / 6) & (r < height / 6 + 10)] = 200
    return np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)]).reshape(height * 3 // 2, width)

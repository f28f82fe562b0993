"""What every input hands the pipeline: H.264 access units and PCM blocks timed on the channel's clock."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class VideoUnit:
    """One H.264 access unit (Annex B) at local time `t` (the channel's clock, seconds); `dts` when the
    source has B-frames (a file), else None; `discontinuity`: the first frame of a playlist item."""

    t: float
    data: bytes
    keyframe: bool
    dts: float | None = None
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class AudioUnit:
    """PCM (channels × samples, float32, the profile's rate) starting at local time `t`; `track` keys the
    mix (one voice per Track)."""

    t: float
    pcm: np.ndarray
    track: str = ""


Unit = VideoUnit | AudioUnit

"""AudioMix: the audio Tracks of the source on air summed into one PCM stream on the output timeline.

Each Track's blocks are placed where their time says, taken as continuous with that Track's previous block
when they are within 20 ms of it (timing jitter is not a gap); the sum is released up to a time that every
Track's frames have reached by then (the pipeline releases in time order), silence where nobody spoke.
"""

from __future__ import annotations

import numpy as np


class AudioMix:
    TOLERANCE = 0.02

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self._base: int | None = None  # output sample index of _buf[:, 0]
        self._buf = np.zeros((channels, 0), dtype=np.float32)
        self._cursors: dict[str, int] = {}
        self.late = 0  # samples that came after their time was released

    def add(self, track: str, t: float, pcm: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """One Track's block at output time `t`; the mix that is complete up to 0.1 s before it."""
        if pcm.shape[0] != self.channels:
            pcm = np.repeat(pcm[:1], self.channels, axis=0) if pcm.shape[0] == 1 else pcm[: self.channels]
        start = round(t * self.rate)
        cursor = self._cursors.get(track)
        if cursor is not None and abs(start - cursor) <= self.TOLERANCE * self.rate:
            start = cursor
        n = pcm.shape[1]
        self._cursors[track] = start + n
        if self._base is None:
            self._base = start
        if start < self._base:
            cut = min(self._base - start, n)
            self.late += cut
            pcm, start = pcm[:, cut:], start + cut
            n = pcm.shape[1]
        if n:
            offset = start - self._base
            need = offset + n - self._buf.shape[1]
            if need > 0:
                self._buf = np.concatenate((self._buf, np.zeros((self.channels, need), np.float32)), axis=1)
            self._buf[:, offset : offset + n] += pcm
        return self.advance(t - 0.1)

    def advance(self, t: float) -> list[tuple[float, np.ndarray]]:
        """The mix from where it was released up to output time `t` (silence where there was nothing)."""
        end = round(t * self.rate)
        if self._base is None:
            self._base = end
            return []
        count = end - self._base
        if count <= 0:
            return []
        have = self._buf.shape[1]
        if have >= count:
            out, self._buf = self._buf[:, :count], self._buf[:, count:]
        else:
            out = np.concatenate((self._buf, np.zeros((self.channels, count - have), np.float32)), axis=1)
            self._buf = np.zeros((self.channels, 0), np.float32)
        start = self._base
        self._base = end
        return [(start / self.rate, np.clip(out, -1.0, 1.0))]

    def reset(self) -> None:
        """A source switch: the old source's unreleased audio goes; the timeline continues."""
        self._buf = np.zeros((self.channels, 0), np.float32)
        self._cursors.clear()

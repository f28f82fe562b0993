"""SpeakerDetector: the active speaker from RFC 6464 audio levels, with hysteresis (pure, time injected)."""

from __future__ import annotations

from collections import deque


class SpeakerDetector:
    """Audio levels are summed per participant and sampled every `tick` seconds into a short window.

    A participant's score is the mean loudness (127 - dBov, silence = 0) over the window. A challenger takes
    over only when its score is above the threshold and beats the current speaker's by `margin` for
    `switch_after` seconds in a row, so a brief noise does not make the speaker flap. Silence keeps the last
    speaker.
    """

    def __init__(
        self,
        *,
        threshold: float,
        margin: float,
        switch_after: float,
        window: int = 5,
    ) -> None:
        self.threshold = threshold
        self.margin = margin
        self.switch_after = switch_after
        self.window = window
        self.speaker: str | None = None
        self._sums: dict[str, list[float]] = {}
        self._history: dict[str, deque[float]] = {}
        self._challenger: str | None = None
        self._challenger_since = 0.0

    def observe(self, participant_id: str, level: int) -> None:
        """One audio packet's level (0 = loudest, 127 = silence), from the audio-level extension."""
        acc = self._sums.get(participant_id)
        if acc is None:
            acc = self._sums[participant_id] = [0.0, 0.0]
        acc[0] += 127 - (level & 0x7F)
        acc[1] += 1

    def remove(self, participant_id: str) -> str | bool | None:
        """Forget a participant; returns False, or the new speaker (None) when it was the speaker."""
        self._sums.pop(participant_id, None)
        self._history.pop(participant_id, None)
        if self._challenger == participant_id:
            self._challenger = None
        if self.speaker == participant_id:
            self.speaker = None
            return None
        return False

    def scores(self) -> dict[str, float]:
        return {pid: sum(h) / len(h) for pid, h in self._history.items() if h}

    def tick(self, now: float) -> str | bool | None:
        """Close one sampling interval; returns False when unchanged, else the new speaker (or None)."""
        for pid, acc in self._sums.items():
            history = self._history.get(pid)
            if history is None:
                history = self._history[pid] = deque(maxlen=self.window)
            history.append(acc[0] / acc[1] if acc[1] else 0.0)
            acc[0] = acc[1] = 0.0
        scores = self.scores()
        if not scores:
            return False
        best = max(scores, key=lambda pid: scores[pid])
        current = scores.get(self.speaker, 0.0) if self.speaker is not None else 0.0
        if best == self.speaker or scores[best] < self.threshold or scores[best] < current + self.margin:
            self._challenger = None
            return False
        if self._challenger != best:
            self._challenger = best
            self._challenger_since = now
        if now - self._challenger_since < self.switch_after:
            return False
        self.speaker = best
        self._challenger = None
        return best

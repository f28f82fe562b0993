"""AudioSelection: in a large meeting only the most recent speakers' audio is forwarded (pure, time injected).

Forwarding every microphone to every subscriber grows with the square of the meeting: 50 people are 2,450
audio copies, and most of them carry silence or background noise. Past ``start_at`` publishers, a
subscriber gets the audio of at most ``size`` of them: those who spoke most recently, as Jitsi's last-N
does. A participant joins the set on the first packet whose level says it speaks, so its first syllable
is not clipped by a sampling interval; a member leaves only to make room, and only after ``hold`` seconds
without speaking, so a speaker who pauses for breath is not cut off, and more than ``size`` people talking
at once do not make the set flap. Levels are RFC 6464 audio levels: nothing is decoded.
"""

from __future__ import annotations


class AudioSelection:
    def __init__(self, *, size: int, start_at: int, speech_dbov: int, hold: float) -> None:
        # size 0 turns the selection off: every microphone is forwarded.
        self.size = size
        self.start_at = start_at
        self.speech_dbov = speech_dbov
        self.hold = hold
        self.active = False
        self._last_spoke: dict[str, float] = {}

    @property
    def selected(self) -> frozenset[str]:
        return frozenset(self._last_spoke)

    def forwards(self, participant_id: str) -> bool:
        return not self.active or participant_id in self._last_spoke

    def publishers_changed(self, count: int) -> bool:
        """The number of participants publishing audio changed; True when the selection turned on or off."""
        active = 0 < self.size < count and count >= self.start_at
        if active == self.active:
            return False
        self.active = active
        return True

    def observe(self, participant_id: str, level: int, now: float) -> str | None:
        """One audio packet's level (0 = loudest, 127 = silence).

        Returns the participant it displaced when ``participant_id`` just joined the set (or "" when a free
        place took it), else None: the caller then forwards the newcomer and stops the one displaced.
        """
        if not self.active or (level & 0x7F) > self.speech_dbov:
            return None
        members = self._last_spoke
        if participant_id in members:
            members[participant_id] = now
            return None
        if len(members) < self.size:
            members[participant_id] = now
            return ""
        quietest = min(members, key=members.__getitem__)
        if now - members[quietest] < self.hold:
            return None  # everyone in the set spoke recently: the newcomer waits for a place
        del members[quietest]
        members[participant_id] = now
        return quietest

    def remove(self, participant_id: str) -> None:
        self._last_spoke.pop(participant_id, None)

"""The meeting's life as the recording's timeline sees it: joins, leaves, mutes and screen shares.

The recorder taps the media; what people do comes from the messages the meeting broadcasts
(``Conference.watch``), so the timeline holds what every participant saw, when they saw it.
"""

from __future__ import annotations

from recording.recorder import Recorder
from signaling.messages import (
    SYSTEM_ROLES,
    ParticipantChanged,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    ServerMessage,
    Source,
)


class MeetingTimeline:
    """Turns one meeting's broadcasts into timeline events of one recorder (one per recording)."""

    def __init__(self, recorder: Recorder, names: dict[str, str]) -> None:
        self._recorder = recorder
        self._names = names  # shared with the session: participant id -> display name
        self._muted: dict[str, frozenset[Source]] = {}
        self._sharing: set[str] = set()

    def present(self, info: ParticipantInfo) -> None:
        """Someone already in the meeting when the recording starts."""
        self._joined(info)

    def __call__(self, message: ServerMessage) -> None:
        match message:
            case ParticipantJoined(participant=info):
                self._joined(info)
            case ParticipantChanged(participant=info) if info.participant_id in self._muted:
                self._changed(info)
            case ParticipantLeft(participant_id=pid, reason=reason) if pid in self._muted:
                del self._muted[pid]
                if pid in self._sharing:
                    self._sharing.discard(pid)
                    self._recorder.event("screen_share", participant=pid, on=False)
                self._recorder.event("left", participant=pid, reason=str(reason))
            case _:
                pass

    def _joined(self, info: ParticipantInfo) -> None:
        if info.role in SYSTEM_ROLES or info.participant_id in self._muted:
            return
        pid = info.participant_id
        self._names[pid] = info.display_name
        self._muted[pid] = frozenset()
        self._recorder.event("joined", participant=pid, name=info.display_name)
        self._changed(info)

    def _changed(self, info: ParticipantInfo) -> None:
        pid = info.participant_id
        before = self._muted[pid]
        now = frozenset(info.muted) | frozenset(info.held)
        for source in sorted(now - before):
            self._recorder.event("muted", participant=pid, source=str(source))
        for source in sorted(before - now):
            self._recorder.event("unmuted", participant=pid, source=str(source))
        self._muted[pid] = now
        sharing = any(track.source == Source.SCREEN for track in info.tracks)
        if sharing != (pid in self._sharing):
            if sharing:
                self._sharing.add(pid)
            else:
                self._sharing.discard(pid)
            self._recorder.event("screen_share", participant=pid, on=sharing)

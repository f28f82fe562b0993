"""Recording in a live meeting: who may start and stop it, and the port the composition root fills in.

The recorder itself is a system participant (Role.RECORDER) that the port joins through
``Conference.join_recorder``: it is not counted, does not keep the meeting alive, and while it is in the
meeting everyone's ``meeting.recording`` is true (the indicator and the consent notice of late joiners).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from signaling.errors import ErrorCode, ProtocolError, SignalingError
from signaling.messages import JSON, MODERATOR_ROLES, RecordingLink, Role

if TYPE_CHECKING:
    from signaling.conference import Conference
    from signaling.participant import Participant

logger = logging.getLogger(__name__)


class RecordingUnavailable(SignalingError):
    """The port could not start (or stop) recording; ``message`` says why, for the moderator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecordingPort(Protocol):
    """Recording as the composition root provides it (yunhui/recordings.py)."""

    async def start(self, conference: Conference, *, started_by: str) -> None:
        """Start recording the conference's meeting; returns once the recorder has joined.
        Raises RecordingUnavailable."""
        ...

    async def stop(self, meeting_id: int) -> None:
        """Stop recording the meeting (idempotent): the recorder leaves, the files are finalised and the
        composite is rendered afterwards."""
        ...

    def recorder_left(self, meeting_id: int) -> str | None:
        """The meeting's recorder left (the meeting ended, or it was stopped): finish the recording.
        Synchronous: the port runs the work in a task it owns. Returns the watch page's URL for the
        moderators, or None."""
        ...


class RecordingControl:
    """One conference's start and stop: the rules, and one change at a time."""

    def __init__(self, conference: Conference, port: RecordingPort | None) -> None:
        self._conference = conference
        self._port = port
        self._busy = False  # a start or stop is under way: a second request is refused, not interleaved
        self._auto: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._port is not None

    def active(self) -> bool:
        return any(p.role is Role.RECORDER and not p.closing for p in self._conference.participants())

    def _check(self, actor: Participant | None, starting: bool) -> RecordingPort:
        if actor is not None and actor.role not in MODERATOR_ROLES:
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "only the host and co-hosts start or stop recording")
        if self._port is None:
            raise ProtocolError(ErrorCode.RECORDING_FAILED, "this server does not record meetings")
        if self._busy:
            raise ProtocolError(ErrorCode.BAD_STATE, "recording is being started or stopped; wait a moment")
        if self._conference.ending or self._conference.meeting_id is None:
            raise ProtocolError(ErrorCode.BAD_STATE, "the meeting is ending")
        if starting and self.active():
            raise ProtocolError(ErrorCode.BAD_STATE, "the meeting is already being recorded")
        if not starting and not self.active():
            raise ProtocolError(ErrorCode.BAD_STATE, "the meeting is not being recorded")
        return self._port

    async def start(self, actor: Participant | None, *, started_by: str | None = None) -> None:
        """Start recording (``actor`` None: the server, e.g. a room that records automatically or REST)."""
        port = self._check(actor, starting=True)
        self._busy = True
        try:
            who = started_by if started_by is not None else (actor.display_name if actor else "")
            await port.start(self._conference, started_by=who)
        except RecordingUnavailable as exc:
            raise ProtocolError(ErrorCode.RECORDING_FAILED, exc.message) from None
        finally:
            self._busy = False

    async def stop(self, actor: Participant | None) -> None:
        port = self._check(actor, starting=False)
        assert self._conference.meeting_id is not None
        self._busy = True
        try:
            await port.stop(self._conference.meeting_id)
        except RecordingUnavailable as exc:
            raise ProtocolError(ErrorCode.RECORDING_FAILED, exc.message) from None
        finally:
            self._busy = False

    def meeting_started(self, *, auto_record: bool) -> None:
        """The meeting has started: a room that records automatically starts its recorder now."""
        if auto_record and self._port is not None and self._auto is None:
            self._auto = asyncio.create_task(self._start_auto(), name="recording-auto-start")

    async def _start_auto(self) -> None:
        try:
            await self.start(None, started_by="auto")
        except ProtocolError as exc:
            self._conference.log.warning("automatic recording did not start: %s", exc.message)

    def recorder_left(self) -> None:
        if self._port is not None and self._conference.meeting_id is not None:
            url = self._port.recorder_left(self._conference.meeting_id)
            if url is not None:
                self._conference.to_moderators(RecordingLink(url))

    async def close(self) -> None:
        """Wait for an automatic start still under way (the meeting is ending)."""
        if self._auto is not None and not self._auto.done():
            await asyncio.gather(self._auto, return_exceptions=True)


class NoTransport:
    """The recorder's transport: it has no connection, so there is nothing to send or hang up."""

    async def emit(self, event: str, data: dict[str, JSON], sid: str) -> None:
        return None

    async def disconnect(self, sid: str) -> None:
        return None

    def unsent_bytes(self, sid: str) -> int:
        return 0

    async def abort(self, sid: str) -> None:
        return None

"""Live meetings as they run (issue #20): the live status of every worker, and an admin's mute and remove.

The meetings are objects in some worker's memory; this module asks the composition root's ``LiveControl``
(yunhui/internal.py), which answers for this process and, in a cluster, forwards to the meeting's owner
and gathers every worker's list. A worker that does not answer is reported as such, never a 500.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel

from rooms.models import Meeting
from web.api.base import DB, Api, ApiError, owned, path_id, principal, send

api = Api()

# Participant ids are signaling's ("p-" or a kind's prefix and 16 hex digits); anything else names nobody.
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_:-]{1,64}")


class LiveParticipantOut(BaseModel):
    id: str
    display_name: str
    kind: str
    role: str
    mic_muted: bool  # muted by the participant or held by a moderator
    mic_held: bool  # held by a moderator (only a moderator releases it)


class LiveMeetingOut(BaseModel):
    meeting_id: int
    room_id: int
    account_id: int
    room_name: str
    worker: str  # the worker the meeting lives in ("main" for the single process)
    participants: list[LiveParticipantOut]


class LiveWorkerOut(BaseModel):
    worker: str
    reachable: bool
    meetings: int
    error: str | None = None  # why the worker did not answer


class LiveStatusOut(BaseModel):
    meetings: list[LiveMeetingOut]
    workers: list[LiveWorkerOut]


class ParticipantAction(StrEnum):
    MUTE = "mute"  # hold the microphone: the SFU stops forwarding it until a moderator releases it
    REMOVE = "remove"  # out of the meeting, and not back in with the same credentials


class ActionOutcome(StrEnum):
    DONE = "done"
    NO_MEETING = "no_meeting"  # the meeting is not live in any worker
    NO_PARTICIPANT = "no_participant"


class ParticipantActionOut(BaseModel):
    meeting_id: int
    participant_id: str
    action: ParticipantAction


class LiveControl(Protocol):
    """What the API may ask of the live meetings of the whole service (the composition root provides it)."""

    async def status(self) -> LiveStatusOut:
        """Every worker's live meetings; a worker that does not answer in time is listed as unreachable."""
        ...

    async def act(
        self, meeting_id: int, participant_id: str, action: ParticipantAction, *, user_id: int
    ) -> ActionOutcome:
        """Apply the action of the admin ``user_id`` in the worker the meeting lives in."""
        ...


LIVE_CONTROL = web.AppKey("live_control", LiveControl)


def _control(request: web.Request) -> LiveControl:
    control = request.app.get(LIVE_CONTROL)
    if control is None:
        raise ApiError(409, "not_live", "no meetings run in this process")
    return control


@api.op(
    "GET",
    "/live-meetings",
    summary="The meetings live now in every worker, with who is in them (admin)",
    tag="meetings",
    response=LiveStatusOut,
)
async def live_status(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    status = await _control(request).status()
    if who.account_id is not None:
        mine = [m for m in status.meetings if m.account_id == who.account_id]
        status = LiveStatusOut(meetings=mine, workers=status.workers)
    return send(status)


async def _act(request: web.Request, action: ParticipantAction) -> web.Response:
    who = principal(request)
    meeting_id = path_id(request, "meeting_id")
    participant_id = request.match_info["participant"]
    async with request.app[DB].session() as session:
        meeting = await owned(session, Meeting, meeting_id, who)
    who.require_admin()  # after owned(): another account's meeting is 404 to everyone
    if meeting.ended_at is not None:
        raise ApiError(409, "already_ended", "the meeting has already ended")
    if _PARTICIPANT_ID.fullmatch(participant_id) is None:
        raise ApiError(404, "not_found", "no such participant in the meeting", "participant_id")
    outcome = await _control(request).act(meeting_id, participant_id, action, user_id=who.user.id)
    if outcome is ActionOutcome.NO_MEETING:
        raise ApiError(409, "not_live", "the meeting is not live in any worker")
    if outcome is ActionOutcome.NO_PARTICIPANT:
        raise ApiError(404, "not_found", "no such participant in the meeting", "participant_id")
    return send(ParticipantActionOut(meeting_id=meeting_id, participant_id=participant_id, action=action))


@api.op(
    "POST",
    "/meetings/{meeting_id}/participants/{participant}/mute",
    summary="Hold a participant's microphone in a live meeting (admin)",
    tag="meetings",
    response=ParticipantActionOut,
    errors=(502, 503),
)
async def mute_participant(request: web.Request) -> web.Response:
    return await _act(request, ParticipantAction.MUTE)


@api.op(
    "POST",
    "/meetings/{meeting_id}/participants/{participant}/remove",
    summary="Remove a participant from a live meeting (admin)",
    tag="meetings",
    response=ParticipantActionOut,
    errors=(502, 503),
)
async def remove_participant(request: web.Request) -> web.Response:
    return await _act(request, ParticipantAction.REMOVE)

"""Gateway: the SIP core's CallHandler — owns every Call (signaling/sip/call.py) and each meeting's Mixer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rooms.database import Database
from rooms.models import Endpoint
from rooms.sip.endpoints import endpoint_by_id
from signaling.clock import Scheduler
from signaling.server import MeetingServer
from signaling.sip.api import DialRefused, DialState, SipCall
from signaling.sip.call import Call, _describe, _router
from signaling.sip.dialout import Dialler, Dialling, DialOut
from signaling.sip.ivr_media import LegCodec, PromptLibrary
from signaling.sip.mixer import Mixer

if TYPE_CHECKING:
    from sfu.plain import PlainPeer
    from sfu.sfu import Sfu
    from signaling.participant import Participant
    from signaling.ports import RouterPort
    from signaling.sip.sdp import SrtpPolicy

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A call in progress, as the REST API and the admin UI show it."""

    call_id: str
    endpoint_id: int | None
    display_name: str
    state: str  # ringing, ivr, lobby, joined
    meeting_number: str | None
    participant_id: str | None
    remote: str
    transport: str
    audio_codec: str
    video_codec: str
    srtp: bool
    started_at: datetime
    direction: str = "inbound"  # outbound: dialled out from the meeting (signaling/sip/dialout.py)


class Gateway:
    """Implements signaling.sip.api.CallHandler; ``close()`` ends every call and mixer (idempotent)."""

    def __init__(
        self,
        *,
        meetings: MeetingServer,
        sfu: Sfu,
        db: Database,
        scheduler: Scheduler,
        prompts: PromptLibrary,
        slate: bytes,
        media_host: str,
        sip_host: str,
        srtp_policy: SrtpPolicy = "best_effort",
        silence_timeout: timedelta = timedelta(seconds=30),
        ivr_rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.meetings = meetings
        self.sfu = sfu
        self.db = db
        self.scheduler = scheduler
        self.prompts = prompts
        self.slate = slate
        self.media_host = media_host
        self.sip_host = sip_host
        self.srtp_policy: SrtpPolicy = srtp_policy
        self.silence_timeout = silence_timeout
        self.ivr_rules: dict[str, Any] = dict(ivr_rules or {})
        self._calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._mixers: dict[str, tuple[Mixer, set[str]]] = {}  # meeting id (router) -> mixer, legs
        self._leg_meeting: dict[str, str] = {}  # participant id -> meeting id
        self._closing = False
        # The SIP core for dial-out (set by yunhui/sip.py once the SipServer exists); None: dial-out is off.
        self.dialler: Dialler | None = None
        # This run's Worker row (rooms.workers), written on each call record; None without the registry.
        self.worker_id: int | None = None
        # A dial-out that rings this long unanswered is cancelled (a UAC waits forever after a 180 otherwise).
        self.ring_timeout = timedelta(seconds=60)

    async def on_invite(self, call: SipCall) -> None:
        if self._closing:
            await call.reject(503, "Service Unavailable")
            return
        self._start(Call(self, call))

    def _start(self, leg: Call) -> None:
        self._calls[leg.id] = leg
        task = asyncio.create_task(self._run(leg), name=f"sip-call:{leg.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dial_out(
        self,
        meeting_id: int,
        endpoint_id: int,
        *,
        now: datetime,
        notify: Callable[[DialState], None] | None = None,
    ) -> LiveCall:
        """Call a registered Endpoint of the meeting's account into the live meeting; returns it ringing.

        Raises DialRefused (the status and code the REST API and the moderators get) when it cannot start."""
        if self.dialler is None or self._closing:
            raise DialRefused(503, "unavailable", "the SIP gateway is not running")
        conference = self.meetings.conference_by_meeting(meeting_id)
        if conference is None or conference.ending:
            raise DialRefused(409, "not_live", "the meeting is not live")
        facts = await endpoint_by_id(self.db, endpoint_id, now=now)
        if facts is None or facts.account_id != conference.room.account_id:
            raise DialRefused(404, "no_such_endpoint", "no such endpoint in this meeting's account")
        if facts.refusal is not None:
            raise DialRefused(403, facts.refusal.value, facts.refusal_text or "the endpoint may not join")
        if any(c.endpoint_id == endpoint_id and c.state != "ended" for c in self._calls.values()):
            raise DialRefused(409, "busy", "this endpoint is already in a call")
        binding = self.dialler.binding(str(endpoint_id))
        if binding is None:
            raise DialRefused(409, "not_registered", "the endpoint is not registered")
        view = conference.view()
        if view.locked:
            raise DialRefused(409, "locked", "the meeting is locked")
        if view.present >= conference.room.terms.capacity:
            raise DialRefused(409, "full", "the meeting is full")
        leg = DialOut(
            self,
            Dialling(self.dialler, endpoint_id, binding),
            endpoint_id=endpoint_id,
            display_name=facts.display_name,
            meeting_number=conference.room.meeting_number,
            notify=notify,
        )
        self._start(leg)
        return self._live(leg)

    def hang_up(self, call_id: str, *, meeting_number: str | None = None) -> bool:
        """End a call (BYE, or CANCEL while it rings); False if there is none (of that meeting)."""
        leg = self._calls.get(call_id)
        if leg is None or (meeting_number is not None and leg.meeting_number != meeting_number):
            return False
        leg.finish("hangup")
        return True

    async def _run(self, leg: Call) -> None:
        try:
            await leg.run()
        finally:
            if self._calls.get(leg.id) is leg:
                del self._calls[leg.id]

    def live_calls(self) -> list[LiveCall]:
        return [self._live(c) for c in list(self._calls.values())]

    def _live(self, c: Call) -> LiveCall:
        answer = c.answer
        return LiveCall(
            call_id=c.id,
            endpoint_id=c.endpoint_id,
            display_name=c.display_name,
            state=c.state,
            meeting_number=c.meeting_number,
            participant_id=None if c.participant is None else c.participant.id,
            remote=f"{c.sip.remote[0]}:{c.sip.remote[1]}",
            transport=c.sip.transport,
            audio_codec=_describe(answer.audio) if answer else "",
            video_codec=_describe(answer.video) if answer else "",
            srtp=bool(answer and answer.encrypted),
            started_at=c.started_at,
            direction="outbound" if isinstance(c, DialOut) else "inbound",
        )

    async def endpoint_name(self, endpoint_id: int) -> str:
        async with self.db.session() as session:
            endpoint = await session.get(Endpoint, endpoint_id)
        return endpoint.display_name if endpoint is not None else "SIP"

    # --- the meetings' mixers (one per Router with SIP legs) ---

    def mix(self, router: RouterPort, participant_id: str, codec: LegCodec, peer: PlainPeer) -> None:
        meeting = getattr(router, "meeting_id", str(id(router)))
        entry = self._mixers.get(meeting)
        if entry is None:
            entry = self._mixers[meeting] = (Mixer(_router(router)), set())
        mixer, legs = entry
        mixer.add_leg(participant_id, codec, peer.send_audio, peer.publish_audio)
        legs.add(participant_id)
        self._leg_meeting[participant_id] = meeting

    def audio_in(self, participant: Participant, payload: bytes, pt: int, timestamp: int) -> None:
        meeting = self._leg_meeting.get(participant.id)
        entry = None if meeting is None else self._mixers.get(meeting)
        if entry is not None:
            entry[0].receive(participant.id, payload, pt, timestamp)

    def unmix(self, participant: Participant) -> None:
        meeting = self._leg_meeting.pop(participant.id, None)
        entry = None if meeting is None else self._mixers.get(meeting)
        if entry is None or meeting is None:
            return
        mixer, legs = entry
        mixer.remove_leg(participant.id)
        legs.discard(participant.id)
        if not legs:
            del self._mixers[meeting]
            task = asyncio.create_task(mixer.close(), name=f"sip-mixer-close:{meeting}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        # Calls hang up (BYE) and write their records; one that does not end in time is cancelled.
        for leg in list(self._calls.values()):
            leg.finish("shutdown")
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        mixers, self._mixers = [m for m, _ in self._mixers.values()], {}
        await asyncio.gather(*(m.close() for m in mixers), return_exceptions=True)

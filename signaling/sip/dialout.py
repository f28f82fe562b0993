"""DialOut: a moderator calls a registered room system into a live meeting (the UAC leg of a Call).

The shape is a delayed offer turned around: our offer goes in the INVITE, the terminal's answer comes in its
200. The leg is made in a Router of its own while the terminal rings (nothing is billed and the browsers see
nobody until it answers); once answered and ACKed, the call is admitted like a dial-in (Attendance kind sip,
capacity counted, the invitation standing in for the passcode and the lobby) and its PlainPeer moves into the
meeting's Router, as after the IVR. The record is written with direction "outbound".
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from rooms.sip import calls as records
from signaling.admission import check_capacity
from signaling.errors import JoinRefused
from signaling.participant import Admitted
from signaling.server import SipJoin
from signaling.sip.api import (
    CallEnded,
    CallGone,
    DialState,
    EndpointCredentials,
    Registration,
    Transport,
)
from signaling.sip.call import Call

if TYPE_CHECKING:
    from signaling.sip.gateway import Gateway
    from signaling.sip.outgoing import OutgoingCall

__all__ = ["DialOut", "Dialler", "Dialling"]


class Dialler(Protocol):
    """What a dial-out needs of the SIP core (signaling.sip.server.SipServer)."""

    def binding(self, endpoint_id: str) -> Registration | None: ...

    async def invite(
        self, endpoint_id: str, sdp_offer: str, *, call_id: str | None = None
    ) -> OutgoingCall: ...


class Dialling:
    """The SipCall of a dial-out: ``answer(our offer)`` sends the INVITE and returns the terminal's answer;
    once it answered, everything else is the OutgoingCall's. Hanging up while it rings sends CANCEL."""

    offer: str | None = None
    endpoint: EndpointCredentials | None = None

    def __init__(self, dialler: Dialler, endpoint_id: int, binding: Registration) -> None:
        self._dialler = dialler
        self._endpoint_id = endpoint_id
        self.call_id = f"{secrets.token_hex(12)}@yunhui"
        self.request_user = ""
        self.remote: tuple[str, int] = binding.source
        self.transport: Transport = binding.transport
        self.user_agent = binding.user_agent or ""
        self.on_info: Callable[[str, bytes], None] | None = None
        self.on_reinvite: Callable[[str], Awaitable[str]] | None = None
        self.on_end: Callable[[CallEnded], None] | None = None
        self._inviting: asyncio.Task[OutgoingCall] | None = None
        self._call: OutgoingCall | None = None
        self._ended: CallEnded | None = None

    async def answer(self, sdp: str) -> str | None:
        if self._ended is not None:
            raise CallGone(self._ended)
        self._inviting = asyncio.create_task(
            self._dialler.invite(str(self._endpoint_id), sdp, call_id=self.call_id),
            name=f"sip-dial:{self.call_id}",
        )
        try:
            await asyncio.wait([self._inviting])
        except asyncio.CancelledError:
            self._inviting.cancel()  # dial() sends CANCEL
            raise
        if self._inviting.cancelled():
            raise CallGone("cancel")
        call = self._inviting.result()  # CallGone("unanswered"), LookupError: the binding went
        call.on_info, call.on_reinvite, call.on_end = self.on_info, self.on_reinvite, self.on_end
        self._call = call
        if self._ended is not None:  # hung up in the moment it answered
            await call.hangup()
            raise CallGone(self._ended)
        return call.offer

    async def ringing(self) -> None:
        return None

    async def reject(self, status: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        await self.hangup()

    async def send_info(self, content_type: str, body: bytes) -> int:
        return 481 if self._call is None else await self._call.send_info(content_type, body)

    async def reinvite(self, sdp: str) -> str | None:
        if self._call is None:
            raise CallGone("hangup")
        return await self._call.reinvite(sdp)

    async def hangup(self) -> None:
        if self._call is not None:
            await self._call.hangup()
            return
        if self._ended is None:
            self._ended = "hangup"
        if self._inviting is not None and not self._inviting.done():
            self._inviting.cancel()

    async def wait_ended(self) -> CallEnded:
        if self._call is not None:
            return await self._call.wait_ended()
        return self._ended or "hangup"


class DialOut(Call):
    """One dial-out leg, from the INVITE to the hang-up; ``run()`` is its task (owned by the Gateway)."""

    def __init__(
        self,
        gateway: Gateway,
        call: Dialling,
        *,
        endpoint_id: int,
        display_name: str,
        meeting_number: str,
        notify: Callable[[DialState], None] | None = None,
    ) -> None:
        super().__init__(gateway, call)
        self.endpoint_id = endpoint_id
        self.display_name = display_name
        self.meeting_number = meeting_number
        self.direction = "outbound"
        self._notify = notify

    def _tell(self, state: str, reason: str | None = None) -> None:
        if self._notify is not None:
            try:
                self._notify(DialState(self.id, self.endpoint_id or 0, self.display_name, state, reason))
            except Exception:
                self.log.exception("telling the moderators about the dial-out failed")

    async def run(self) -> None:
        self._tell("ringing")
        try:
            await super().run()
        finally:
            reason = self._ended.result() if self._ended.done() else "error"
            self._tell("ended", reason)

    async def _cleanup(self, reason: str) -> None:
        # A hang-up or the ring timeout while it rang ends the INVITE with CANCEL: the record keeps why.
        await super()._cleanup(self._ended.result() if self._ended.done() else reason)

    async def _run(self) -> str:
        gw, call, now = self.gateway, self.sip, self.gateway.scheduler.now()
        assert self.meeting_number is not None and self.endpoint_id is not None
        self.record_id = await records.open_call(
            gw.db,
            records.CallStart(
                "outbound",
                call.call_id,
                self.meeting_number,
                call.transport,
                f"{call.remote[0]}:{call.remote[1]}",
                call.user_agent,
                self.endpoint_id,
                gw.worker_id,
            ),
            now=now,
        )
        call.on_info = self._on_info
        call.on_reinvite = self._on_reinvite
        call.on_end = self._on_end
        # The leg rings in a Router of its own; _move_leg adopts it into the meeting's once admitted.
        self._ivr_router = gw.sfu.router(f"sip-dial:{self.id}")
        self.peer = await self._ivr_router.add_plain_peer("dial", host=gw.media_host)
        self.answer = self._negotiate(self.peer)  # no offer: ours goes in the INVITE
        ring = gw.scheduler.call_at(now + gw.ring_timeout, lambda: self.finish("no_answer"))
        try:
            await self._answer_and_start()
        finally:
            ring.cancel()
        await self._record_answer()
        try:
            participant = await gw.meetings.admit_sip(self._dial_join())
        except JoinRefused as exc:
            self.log.info("dial-out answered but not admitted: %s", exc.code.value)
            await self._hangup()
            return f"refused:{exc.code.value}"
        self._seated(participant)
        if participant.in_lobby:
            # A moderator invited it: admitted at once, as a moderator's admit would (capacity checked).
            conference = participant.conference
            try:
                check_capacity(participant.identity, conference.view())
            except JoinRefused as exc:
                await self._hangup()
                return f"refused:{exc.code.value}"
            conference.admit(participant)
            participant.post(Admitted())
        if not await participant.wait_joined():
            if self.state != "ended":
                await self._hangup()
            return "join_failed"
        await self._joined()
        self._tell("joined")
        return await self._wait_end()

    def _dial_join(self) -> SipJoin:
        return replace(self._join_request(None, True), invited=True)

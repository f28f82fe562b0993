"""A moderator's "call a room system" over Socket.IO: sip_dial / sip_hangup in, sip_call to the moderators.

The SIP gateway (signaling/sip/gateway.py, set on MeetingServer.sip_dialer by yunhui/sip.py) does the call;
this module only checks the actor and translates the gateway's refusals into the ``error`` event.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from signaling.errors import ErrorCode, ProtocolError
from signaling.messages import MODERATOR_ROLES, SipCallState, SipDial, SipHangup
from signaling.sip.api import DialRefused, DialState

if TYPE_CHECKING:
    from collections.abc import Callable

    from signaling.participant import Participant


class SipDialPort(Protocol):
    """What a meeting asks of the SIP gateway (signaling.sip.gateway.Gateway implements it)."""

    async def dial_out(
        self, meeting_id: int, endpoint_id: int, *, now: datetime, notify: Callable[[DialState], None] | None
    ) -> object: ...

    def hang_up(self, call_id: str, *, meeting_number: str | None = None) -> bool: ...


async def dial(actor: Participant, message: SipDial | SipHangup) -> None:
    """Start or end a dial-out from ``actor``'s meeting; ProtocolError (the ``error`` event) if it cannot."""
    conference = actor.conference
    if actor.role not in MODERATOR_ROLES:
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "only the host and co-hosts call room systems")
    port = conference.sip_dialer
    if port is None:
        raise ProtocolError(ErrorCode.SIP_DIAL_FAILED, "this server has no SIP gateway")
    if isinstance(message, SipHangup):
        if not port.hang_up(message.call_id, meeting_number=conference.room.meeting_number):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such call in this meeting")
        return
    if conference.meeting_id is None or conference.ending:
        raise ProtocolError(ErrorCode.BAD_STATE, "the meeting is ending")

    def tell(state: DialState) -> None:
        conference.to_moderators(
            SipCallState(state.call_id, state.endpoint_id, state.display_name, state.state, state.reason)
        )

    try:
        await port.dial_out(
            conference.meeting_id, message.endpoint_id, now=conference.scheduler.now(), notify=tell
        )
    except DialRefused as refused:
        raise ProtocolError(ErrorCode.SIP_DIAL_FAILED, refused.message) from None

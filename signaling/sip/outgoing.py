"""OutgoingCall: dial-out from a meeting to a registered Endpoint (the UAC side of one INVITE)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

from signaling.sip.api import CallGone
from signaling.sip.dialog import ALLOW, SUPPORTED, Dialog, SessionTimer
from signaling.sip.message import Headers, SipRequest, SipResponse
from signaling.sip.session import CallHost, Session
from signaling.sip.transaction import new_branch, new_tag
from signaling.sip.transport import Source
from signaling.sip.uri import NameAddr, SipUri, Via, parse_params

__all__ = ["OutgoingCall", "invite_request"]


def invite_request(
    target: str,
    dest: Source,
    contact: str,
    sdp: str,
    *,
    caller: str,
    session_expires: int,
    user_agent: str,
    path: tuple[str, ...] = (),
    call_id: str | None = None,
) -> SipRequest:
    """The initial INVITE of a dial-out to ``target`` (a registered Contact)."""
    host, _, port = contact.removeprefix("sip:").split(";", 1)[0].rpartition(":")
    via = Via(
        dest.transport.upper(),
        host,
        int(port) if port.isdigit() else None,
        {"branch": new_branch(), "rport": ""},
    )
    return SipRequest(
        method="INVITE",
        uri=target,
        headers=Headers.of(
            [
                ("Via", str(via)),
                ("Max-Forwards", "70"),
                ("From", str(NameAddr(caller, params={"tag": new_tag()}))),
                ("To", f"<{target}>"),
                ("Call-ID", call_id or secrets.token_hex(12)),
                ("CSeq", "1 INVITE"),
                *(("Route", hop) for hop in path),
                ("Contact", f"<{contact}>"),
                ("Allow", ", ".join(ALLOW)),
                ("Supported", ", ".join(SUPPORTED)),
                ("Session-Expires", str(session_expires)),
                ("User-Agent", user_agent),
                ("Content-Type", "application/sdp"),
            ]
        ),
        body=sdp.encode(),
    )


class OutgoingCall(Session):
    """A dial-out leg once the terminal answered 2xx; ``offer`` holds the terminal's SDP answer."""

    def __init__(
        self, host: CallHost, request: SipRequest, response: SipResponse, dest: Source, endpoint_id: str
    ):
        contact = NameAddr.parse(request.headers.get("Contact") or "").uri
        dialog = Dialog.as_uac(request, response, dest, contact)
        super().__init__(
            host,
            dialog,
            request_user=SipUri.parse(request.uri).user if request.uri.startswith("sip") else "",
            source=dest,
            endpoint=None,
            user_agent=response.headers.get("Server") or response.headers.get("User-Agent") or "",
        )
        self.endpoint_id = endpoint_id
        self._our_role = "uac"
        self.local_sdp = request.body.decode(errors="replace")
        self.offer = response.body.decode(errors="replace") if response.body else None
        self.remote_sdp = self.offer
        self.session_timer = _timer_of(response)

    def acknowledge(self) -> None:
        """Send the ACK of the 2xx and start the session timer."""
        self._send_ack(self.dialog.local_seq)
        self._arm_session_timer()

    async def answer(self, sdp: str) -> str | None:
        raise RuntimeError("an outgoing call is answered by the terminal")

    async def ringing(self) -> None:
        raise RuntimeError("an outgoing call does not ring here")

    async def reject(self, status: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        await self.hangup()


def _timer_of(response: SipResponse) -> SessionTimer | None:
    """The session timer the terminal chose in its 2xx (RFC 4028 §7.2), or None."""
    value = response.headers.get("Session-Expires")
    if value is None:
        return None
    number, _, params = value.partition(";")
    if not number.strip().isdigit():
        return None
    refresher = parse_params(params).get("refresher", "uac").lower()
    return SessionTimer(int(number), "uas" if refresher == "uas" else "uac", False)


async def dial(host: CallHost, request: SipRequest, dest: Source, endpoint_id: str) -> OutgoingCall:
    """Send ``request`` and wait for the final answer; CANCEL when the waiting task is cancelled."""
    transaction = host.request(request, dest)
    calls: list[OutgoingCall] = []
    # 2xx retransmissions (our ACK was lost) are ACKed again.
    transaction.on_2xx = lambda response: calls[0].resend_ack(response) if calls else None
    try:
        response = await asyncio.shield(transaction.response)
    except asyncio.CancelledError:
        via = request.vias[0]
        cancel = SipRequest(
            method="CANCEL",
            uri=request.uri,
            headers=Headers.of(
                [
                    ("Via", via),
                    ("Max-Forwards", "70"),
                    ("From", request.headers.get("From") or ""),
                    ("To", request.headers.get("To") or ""),
                    ("Call-ID", request.call_id),
                    ("CSeq", f"{request.cseq[0]} CANCEL"),
                ]
            ),
        )
        host.request(cancel, dest)
        host.spawn(_hang_up_late(host, request, transaction.response, dest, endpoint_id))
        raise
    if not 200 <= response.status < 300:
        raise CallGone("unanswered")
    call = OutgoingCall(host, request, response, dest, endpoint_id)
    calls.append(call)
    return call


async def _hang_up_late(
    host: CallHost, request: SipRequest, response: asyncio.Future[SipResponse], dest: Source, endpoint_id: str
) -> None:
    """The CANCEL crossed the terminal's 2xx: ACK it and BYE at once (RFC 3261 §9.1)."""
    final = await response
    if 200 <= final.status < 300:
        call = OutgoingCall(host, request, final, dest, endpoint_id)
        call.acknowledge()
        await call.hangup()

"""IncomingCall: the UAS side of an INVITE a terminal sent us, until answered, rejected or cancelled."""

from __future__ import annotations

from collections.abc import Sequence

from signaling.sip.api import CallGone, EndpointCredentials
from signaling.sip.dialog import Dialog, SessionTimer
from signaling.sip.session import CallHost, Session
from signaling.sip.transaction import ServerTransaction
from signaling.sip.uri import SipUri

__all__ = ["IncomingCall"]


class IncomingCall(Session):
    """One INVITE from a terminal, authenticated (or an allowed guest); see api.SipCall for the contract."""

    def __init__(
        self,
        host: CallHost,
        transaction: ServerTransaction,
        dialog: Dialog,
        endpoint: EndpointCredentials | None,
        session_timer: SessionTimer | None,
    ) -> None:
        request = transaction.request
        try:
            user = SipUri.parse(request.uri).user
        except ValueError:
            user = ""
        super().__init__(
            host,
            dialog,
            request_user=user,
            source=transaction.source,
            endpoint=endpoint,
            user_agent=request.headers.get("User-Agent") or "",
        )
        self.offer = request.body.decode(errors="replace") if request.body else None
        self.remote_sdp = self.offer
        self.session_timer = session_timer
        self.invite = transaction
        self.answered = False

    async def ringing(self) -> None:
        if not self.answered and self.ended_reason is None:
            self.invite.reply(180, to_tag=self.dialog.local.tag)

    async def answer(self, sdp: str) -> str | None:
        if self.ended_reason is not None:
            raise CallGone(self.ended_reason)
        if self.answered:
            raise RuntimeError("answer() called twice")
        self.answered = True
        self.local_sdp = sdp
        ack = await self._send_2xx(self.invite, sdp)
        if self.offer is None:
            # Delayed offer: our 200 carried the offer, the ACK carries the answer.
            self.remote_sdp = ack.body.decode(errors="replace") if ack.body else None
            return self.remote_sdp
        return None

    async def reject(self, status: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        if self.answered or self.ended_reason is not None:
            return
        if not 300 <= status <= 699:
            raise ValueError(f"{status} is not a final error status")
        self.invite.reply(status, reason, headers=tuple(headers), to_tag=self.dialog.local.tag)
        self.end("rejected")

    def cancelled(self) -> None:
        """CANCEL arrived (already answered 200 by the transaction layer): 487 unless we answered."""
        if self.answered or self.ended_reason is not None:
            return
        self.invite.reply(487, to_tag=self.dialog.local.tag)
        self.end("cancel")

    async def hangup(self) -> None:
        if not self.answered:
            if self.ended_reason is None:
                self.invite.reply(480, to_tag=self.dialog.local.tag)
                self.end("hangup")
            return
        await super().hangup()

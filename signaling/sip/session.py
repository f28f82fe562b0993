"""What every SIP leg does once its dialog exists: BYE, INFO, re-INVITE/UPDATE, session timers, 2xx resend."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

from signaling.clock import Scheduler, Timer
from signaling.sip.api import CallEnded, CallGone, EndpointCredentials, OfferRefused, Transport
from signaling.sip.dialog import (
    ALLOW,
    SUPPORTED,
    Dialog,
    IntervalTooSmall,
    SessionTimer,
    negotiate_session_timer,
)
from signaling.sip.message import SipRequest, SipResponse
from signaling.sip.settings import SipSettings
from signaling.sip.transaction import ClientTransaction, ServerTransaction
from signaling.sip.transport import Source

__all__ = ["CallHost", "Resender", "Session", "sleep_on"]

logger = logging.getLogger(__name__)


class CallHost(Protocol):
    """What a leg needs from its SipServer (which owns every leg, task and timer)."""

    clock: Scheduler
    settings: SipSettings
    t1: float
    t2: float

    def send(self, data: bytes, dest: Source) -> bool: ...

    def request(self, request: SipRequest, dest: Source) -> ClientTransaction: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...

    def ended(self, session: Session) -> None: ...


def sleep_on(clock: Scheduler, seconds: float) -> asyncio.Future[None]:
    """A future that resolves after ``seconds`` on the injected clock."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fire() -> None:
        if not future.done():
            future.set_result(None)

    clock.call_at(clock.now() + timedelta(seconds=seconds), fire)
    return future


class Resender:
    """§13.3.1.4: resend a 2xx at T1, 2T1, 4T1 … capped at T2, until ACK; give up at 64·T1."""

    def __init__(
        self, host: CallHost, data: bytes, dest: Source, cseq: int, give_up: Callable[[], None]
    ) -> None:
        self.cseq = cseq
        self.sent_at: list[float] = []
        self._host = host
        self._data = data
        self._dest = dest
        self._interval = host.t1
        clock = host.clock
        self._tick: Timer | None = clock.call_at(clock.now() + timedelta(seconds=host.t1), self._resend)
        self._give_up: Timer | None = clock.call_at(clock.now() + timedelta(seconds=64 * host.t1), give_up)

    def _resend(self) -> None:
        self._host.send(self._data, self._dest)
        self._interval = min(2 * self._interval, self._host.t2)
        clock = self._host.clock
        self._tick = clock.call_at(clock.now() + timedelta(seconds=self._interval), self._resend)

    def stop(self) -> None:
        for timer in (self._tick, self._give_up):
            if timer is not None:
                timer.cancel()
        self._tick = self._give_up = None


class Session:
    """One leg with a dialog; subclasses add the INVITE that created it (incoming or outgoing)."""

    def __init__(
        self,
        host: CallHost,
        dialog: Dialog,
        *,
        request_user: str,
        source: Source,
        endpoint: EndpointCredentials | None,
        user_agent: str,
    ) -> None:
        self.request_user = request_user
        self.remote = source.address
        self.transport: Transport = source.transport
        self.endpoint = endpoint
        self.offer: str | None = None
        self.call_id = dialog.call_id
        self.user_agent = user_agent
        self.on_info: Callable[[str, bytes], None] | None = None
        self.on_reinvite: Callable[[str], Awaitable[str]] | None = None
        self.on_end: Callable[[CallEnded], None] | None = None
        self.dialog = dialog
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.session_timer: SessionTimer | None = None
        self._host = host
        self._reason: CallEnded | None = None
        self._ended = asyncio.Event()
        self._resender: Resender | None = None
        self._ack: asyncio.Future[SipRequest] | None = None
        self._timer: Timer | None = None
        self._incoming_invite: ServerTransaction | None = None
        self._outgoing_invite = False
        self._last_ack: tuple[int, bytes] | None = None
        self._bye_after_ack = False
        # Which side of RFC 4028's refresher parameter we are: the UAS of an incoming call.
        self._our_role = "uas"

    @property
    def ended_reason(self) -> CallEnded | None:
        return self._reason

    async def wait_ended(self) -> CallEnded:
        await self._ended.wait()
        assert self._reason is not None
        return self._reason

    # -- ending -------------------------------------------------------------------------------------

    def end(self, reason: CallEnded) -> None:
        """End the leg once: timers off, waiters fail with CallGone, ``on_end`` told."""
        if self._reason is not None:
            return
        self._reason = reason
        if self._resender is not None:
            self._resender.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._ack is not None and not self._ack.done():
            self._ack.set_exception(CallGone(reason))
            self._ack.exception()  # retrieved here so an unawaited future does not warn
        self._ended.set()
        self._host.ended(self)
        if self.on_end is not None:
            try:
                self.on_end(reason)
            except Exception:
                logger.exception("sip: on_end of %s failed", self.call_id)

    def _send_bye(self, reason: CallEnded) -> None:
        """Send BYE (fire and forget: its transaction retransmits on its own) and end."""
        if self._reason is not None:
            return
        self._host.request(self.dialog.request("BYE"), self.dialog.source)
        self.end(reason)

    async def hangup(self) -> None:
        if self._reason is not None:
            return
        if self._resender is not None:
            # §15: no BYE before the ACK of our 2xx (or its give-up, which sends the BYE itself).
            self._bye_after_ack = True
            await self._ended.wait()
            return
        transaction = self._host.request(self.dialog.request("BYE"), self.dialog.source)
        self.end("hangup")
        await asyncio.shield(transaction.response)

    async def send_info(self, content_type: str, body: bytes) -> int:
        if self._reason is not None:
            raise CallGone(self._reason)
        request = self.dialog.request("INFO", [("Content-Type", content_type)], body)
        response = await self._host.request(request, self.dialog.source).response
        if response.status in (408, 481):
            self._dialog_failed(response.status)
        return response.status

    def _dialog_failed(self, status: int) -> None:
        """RFC 3261 §12.2.1.2: 481 means the terminal has no dialog left; 408, it does not answer at all."""
        if status == 481:
            self.end("bye")
        else:
            self._send_bye("transport")

    # -- 2xx and ACK --------------------------------------------------------------------------------

    def _send_2xx(self, transaction: ServerTransaction, sdp: str | None) -> asyncio.Future[SipRequest]:
        """Send 200 for an INVITE with our Contact, session timer and SDP; resend it until the ACK."""
        headers: list[tuple[str, str]] = [
            ("Contact", f"<{self.dialog.contact}>"),
            ("Allow", ", ".join(ALLOW)),
            ("Supported", ", ".join(SUPPORTED)),
            ("Server", self._host.settings.user_agent),
        ]
        if self.session_timer is not None:
            headers += self.session_timer.headers()
        body = b""
        if sdp is not None:
            headers.append(("Content-Type", "application/sdp"))
            body = sdp.encode()
        response = transaction.reply(200, headers=tuple(headers), to_tag=self.dialog.local.tag, body=body)
        self._ack = asyncio.get_running_loop().create_future()
        if transaction.state == "terminated":
            # The flow is gone (a closed TCP/TLS connection): nobody will ever ACK.
            self.end("transport")
            return self._ack
        self._resender = Resender(
            self._host, response.serialize(), transaction.source, transaction.request.cseq[0], self._no_ack
        )
        self._arm_session_timer()
        return self._ack

    def _no_ack(self) -> None:
        self._resender = None
        self._send_bye("no_ack")

    def ack(self, request: SipRequest) -> None:
        """An ACK for one of our 2xx (the transaction layer passed it up)."""
        resender = self._resender
        if resender is None or request.cseq[0] != resender.cseq:
            return
        resender.stop()
        self._resender = None
        if self._ack is not None and not self._ack.done():
            self._ack.set_result(request)
        if request.body:
            self.remote_sdp = request.body.decode(errors="replace")
        if self._bye_after_ack:
            self._send_bye("hangup")

    def resend_ack(self, response: SipResponse) -> None:
        """A retransmitted 2xx to our INVITE: the ACK is resent (§13.2.2.4)."""
        if self._last_ack is not None and response.cseq[0] == self._last_ack[0]:
            self._host.send(self._last_ack[1], self.dialog.source)

    def _send_ack(self, cseq: int, body: bytes = b"") -> None:
        headers = [("Content-Type", "application/sdp")] if body else []
        ack = self.dialog.request("ACK", headers, body, cseq=cseq).serialize()
        self._last_ack = (cseq, ack)
        self._host.send(ack, self.dialog.source)

    # -- session timer ------------------------------------------------------------------------------

    def _arm_session_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        timer = self.session_timer
        if timer is None or self._reason is not None:
            return
        clock = self._host.clock
        if timer.refresher == self._our_role:
            at = clock.now() + timedelta(seconds=timer.refresh_after)
            self._timer = clock.call_at(at, lambda: self._host.spawn(self._refresh()))
        else:
            at = clock.now() + timedelta(seconds=timer.bye_after)
            self._timer = clock.call_at(at, lambda: self._send_bye("timer"))

    async def _refresh(self) -> None:
        """We are the refresher: a re-INVITE with the same SDP (same o= version) keeps the session."""
        if self._reason is not None or self.local_sdp is None:
            return
        try:
            await self.reinvite(self.local_sdp)
        except CallGone:
            return
        except OfferRefused:
            self._send_bye("timer")

    # -- in-dialog requests -------------------------------------------------------------------------

    def in_dialog(self, request: SipRequest, transaction: ServerTransaction) -> None:
        if self._reason is not None and request.method != "BYE":
            transaction.reply(481)
            return
        if not self.dialog.accepts_cseq(request):
            transaction.reply(500, "CSeq out of order")
            return
        method = request.method
        if method == "BYE":
            transaction.reply(200)
            self.end("bye")
        elif method == "INFO":
            transaction.reply(200)
            if self.on_info is not None:
                try:
                    self.on_info(request.headers.get("Content-Type") or "", request.body)
                except Exception:
                    logger.exception("sip: on_info of %s failed", self.call_id)
        elif method == "OPTIONS":
            transaction.reply(200, headers=(("Allow", ", ".join(ALLOW)), ("Supported", ", ".join(SUPPORTED))))
        elif method in ("INVITE", "UPDATE"):
            self._offer(request, transaction)
        else:
            transaction.reply(405, headers=(("Allow", ", ".join(ALLOW)),))

    def _offer(self, request: SipRequest, transaction: ServerTransaction) -> None:
        if self._outgoing_invite:
            transaction.reply(491)  # §14.2: glare with our own re-INVITE
            return
        if request.method == "INVITE" and (self._incoming_invite is not None or self._resender is not None):
            # §14.2: an INVITE while the previous one is unanswered or un-ACKed.
            transaction.reply(500, headers=(("Retry-After", str(random.randint(0, 10))),))
            return
        try:
            timer = negotiate_session_timer(
                request.headers, self._host.settings.min_se, self._host.settings.session_expires
            )
        except IntervalTooSmall as small:
            transaction.reply(422, headers=(("Min-SE", str(small.min_se)),))
            return
        except ValueError:
            transaction.reply(400, "bad Session-Expires")
            return
        if timer is not None:
            self.session_timer = timer
        if request.method == "INVITE":
            self._incoming_invite = transaction
        self._host.spawn(self._answer_offer(request, transaction))

    async def _answer_offer(self, request: SipRequest, transaction: ServerTransaction) -> None:
        offer = request.body.decode(errors="replace") if request.body else None
        answer = self.local_sdp
        try:
            if offer is not None:
                self.remote_sdp = offer
                if self.on_reinvite is not None:
                    answer = await self.on_reinvite(offer)
                    self.local_sdp = answer
        except Exception as error:
            # The handler refuses the new offer (e.g. no common codec): the old session stays.
            logger.info("sip: re-offer of %s not accepted: %r", self.call_id, error)
            self._incoming_invite = None
            transaction.reply(488)
            return
        if self._reason is not None:
            self._incoming_invite = None
            transaction.reply(481)
            return
        if request.method == "INVITE" and transaction.state != "proceeding":
            # CANCELled (487 sent) while the handler worked on it: nothing to answer.
            self._incoming_invite = None
            return
        if request.method == "UPDATE":
            headers: list[tuple[str, str]] = [("Contact", f"<{self.dialog.contact}>")]
            if self.session_timer is not None:
                headers += self.session_timer.headers()
            body = b""
            if offer is not None and answer is not None:
                headers.append(("Content-Type", "application/sdp"))
                body = answer.encode()
            transaction.reply(200, headers=tuple(headers), body=body)
            self._arm_session_timer()
            return
        self._incoming_invite = None
        ack = self._send_2xx(transaction, answer)
        try:
            await ack
        except CallGone:
            return

    async def reinvite(self, sdp: str) -> str | None:
        """Send a re-INVITE with ``sdp``; return the terminal's answer. Retries after a 491 (§14.1)."""
        for attempt in range(3):
            if self._reason is not None:
                raise CallGone(self._reason)
            if self._incoming_invite is not None or self._resender is not None or self._outgoing_invite:
                await sleep_on(self._host.clock, self._host.t1)
                continue
            self._outgoing_invite = True
            headers: list[tuple[str, str]] = [
                ("Content-Type", "application/sdp"),
                ("Supported", ", ".join(SUPPORTED)),
            ]
            if self.session_timer is not None:
                headers.append(
                    (
                        "Session-Expires",
                        f"{self.session_timer.interval};refresher={self.session_timer.refresher}",
                    )
                )
            request = self.dialog.request("INVITE", headers, sdp.encode())
            try:
                response = await self._host.request(request, self.dialog.source).response
            finally:
                self._outgoing_invite = False
            if 200 <= response.status < 300:
                self._send_ack(request.cseq[0])
                self.local_sdp = sdp
                self.remote_sdp = response.body.decode(errors="replace") if response.body else self.remote_sdp
                self._arm_session_timer()
                return self.remote_sdp
            if response.status == 491 and attempt < 2:
                # Not the Call-ID owner (the terminal made it): 0-2 s; as owner (dial-out) 2.1-4 s.
                await sleep_on(self._host.clock, random.uniform(0.0, 2.0))
                continue
            if response.status in (408, 481):
                self._dialog_failed(response.status)
                raise CallGone(self._reason or "bye")
            raise OfferRefused(response.status)
        raise OfferRefused(491)

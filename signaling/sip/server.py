"""SipServer: the listeners, transaction layer, registrar and dialogs of the gateway, owned as one object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from signaling.clock import Scheduler
from signaling.sip.api import (
    CallEnded,
    CallGone,
    CallHandler,
    Credentials,
    EndpointCredentials,
    Registration,
    Transport,
)
from signaling.sip.auth import Digest
from signaling.sip.dialog import (
    ALLOW,
    KNOWN_NOT_ALLOWED,
    SUPPORTED,
    Dialog,
    IntervalTooSmall,
    negotiate_session_timer,
    unsupported_requirements,
)
from signaling.sip.gatekeeper import Gatekeeper
from signaling.sip.incoming import IncomingCall
from signaling.sip.message import SipParseError, SipRequest, SipResponse
from signaling.sip.outgoing import OutgoingCall, dial, invite_request
from signaling.sip.registrar import Registrar
from signaling.sip.session import Session
from signaling.sip.settings import SipSettings
from signaling.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer, new_tag
from signaling.sip.transport import SipTransport, Source
from signaling.sip.uri import NameAddr, SipUri

__all__ = [
    "CallEnded",
    "CallGone",
    "CallHandler",
    "Credentials",
    "EndpointCredentials",
    "IncomingCall",
    "OutgoingCall",
    "Registration",
    "SipServer",
    "Transport",
]

logger = logging.getLogger(__name__)


def contact_host(settings: SipSettings, request_uri: str | None) -> str:
    """Our host for Contact: the advertised one, else the bound address, else (bound to all
    interfaces) the host the terminal dialled, which is one it can reach."""
    if settings.advertised_host:
        return settings.advertised_host
    if settings.host not in ("0.0.0.0", "::"):
        return settings.host
    if request_uri is not None:
        with contextlib.suppress(SipParseError):
            return SipUri.parse(request_uri).host
    return "127.0.0.1"


class SipServer:
    """RFC 3261 UAS and registrar for room terminals.

    ``start()`` binds the listeners of ``settings`` (port 0 = ephemeral; see ``ports``); every
    INVITE that passes digest (or is an allowed guest) goes to ``handler.on_invite`` as a SipCall.
    ``close()`` ends every call with "shutdown", closes the listeners and cancels every timer.
    """

    def __init__(
        self,
        settings: SipSettings,
        clock: Scheduler,
        credentials: Credentials,
        handler: CallHandler,
        *,
        state_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.t1 = settings.t1_ms / 1000
        self.t2 = settings.t2_ms / 1000
        self._credentials = credentials
        self._handler = handler
        self._state_dir = state_dir
        self._transport = SipTransport(settings, clock, self._received)
        self._layer = TransactionLayer(
            t1=self.t1,
            t2=self.t2,
            t4=settings.t4_ms / 1000,
            clock=clock,
            transport=self._transport,
            user=self,
        )
        secret = (
            settings.nonce_secret.get_secret_value().encode()
            if settings.nonce_secret
            else secrets.token_bytes(32)
        )
        self._digest = Digest(
            settings.realm,
            secret,
            lambda: clock.now().timestamp(),
            settings.nonce_ttl_seconds,
            settings.digest_algorithms,
        )
        self._gatekeeper = Gatekeeper(settings, self._digest, credentials, self._transport.limits, self.host)
        self.registrar = Registrar(
            clock, settings.min_expires, settings.max_expires, settings.default_expires
        )
        self._sessions: dict[tuple[str, str, str], Session] = {}
        self._invites: dict[int, IncomingCall] = {}
        # INVITEs outside a dialog by (Call-ID, From tag, CSeq): the same on another branch is a loop or a
        # fork merged back to us (RFC 3261 §8.2.2.2), answered 482.
        self._initial: dict[tuple[str, str, int], ServerTransaction] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    def _received(self, message: SipRequest | SipResponse, source: Source) -> None:
        self._layer.received(message, source)

    @property
    def ports(self) -> dict[Transport, int]:
        """The bound port of each running transport, e.g. {"udp": 40211, "tcp": 40212, "tls": 40213}."""
        return dict(self._transport.ports)

    @property
    def transport(self) -> SipTransport:
        return self._transport

    @property
    def host(self) -> str:
        """The host we put in Contact and Warning."""
        return contact_host(self.settings, None)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._transport.start(self._state_dir)
        logger.info("sip: listening on %s %s", self.settings.host, self.ports)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for session in list(self._sessions.values()):
            if isinstance(session, IncomingCall) and not session.answered:
                session.invite.reply(503, "Shutting down", to_tag=session.dialog.local.tag)
                session.end("shutdown")
            elif session.ended_reason is None:
                self._layer.request(session.dialog.request("BYE"), session.dialog.source)
                session.end("shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        self._layer.close()
        self.registrar.close()
        await self._transport.close()

    def registrations(self) -> list[Registration]:
        """A snapshot of the live bindings (expired ones excluded), for REST and the admin UI."""
        return self.registrar.snapshot()

    @property
    def transactions(self) -> tuple[int, int]:
        """(server, client) transactions alive; tests check that a finished call leaves none."""
        return self._layer.counts

    def calls(self) -> list[IncomingCall | OutgoingCall]:
        """The calls in progress (answered or not, both directions), for REST and the admin UI."""
        return [
            s
            for s in self._sessions.values()
            if isinstance(s, IncomingCall | OutgoingCall) and s.ended_reason is None
        ]

    def binding(self, endpoint_id: str) -> Registration | None:
        """The newest live binding of an Endpoint (the one ``invite`` dials), or None."""
        bindings = self.registrar.bindings(endpoint_id)
        return bindings[0].snapshot() if bindings else None

    async def invite(self, endpoint_id: str, sdp_offer: str, *, call_id: str | None = None) -> OutgoingCall:
        """Dial out to a registered Endpoint's newest binding and wait for its final answer.

        LookupError when the Endpoint has no binding; CallGone when the terminal refuses or never
        answers. On return the call is established and its ``offer`` holds the terminal's SDP answer
        (``answer()``/``reject()`` are not used on an outgoing call). Cancelling the wait sends CANCEL.
        """
        bindings = self.registrar.bindings(endpoint_id)
        if not bindings:
            raise LookupError(f"endpoint {endpoint_id} is not registered")
        binding = bindings[0]
        dest = binding.source
        if dest.transport != "udp" and (dest.flow is None or dest.flow.closed):
            # The terminal's own connection is gone: open one to its Contact.
            uri = SipUri.parse(binding.contact)
            default = 5061 if dest.transport == "tls" else 5060
            dest = await self._transport.connect(dest.transport, uri.host, uri.port or default)
        port = self.ports.get(dest.transport, 5060)
        our_host = contact_host(self.settings, binding.registrar_uri or None)
        request = invite_request(
            binding.contact,
            dest,
            f"sip:{our_host}:{port};transport={dest.transport}",
            sdp_offer,
            caller=f"sip:yunhui@{self.settings.domain}",
            session_expires=self.settings.session_expires,
            user_agent=self.settings.user_agent,
            path=binding.path,
            call_id=call_id,
        )
        call = await dial(self, request, dest, endpoint_id)
        self._sessions[call.dialog.key] = call
        call.acknowledge()
        return call

    # -- CallHost -----------------------------------------------------------------------------------

    def send(self, data: bytes, dest: Source) -> bool:
        return self._transport.send(data, dest)

    def request(self, request: SipRequest, dest: Source) -> ClientTransaction:
        return self._layer.request(request, dest)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sip: task failed", exc_info=task.exception())

    def ended(self, session: Session) -> None:
        if self._sessions.get(session.dialog.key) is session:
            del self._sessions[session.dialog.key]
        if isinstance(session, IncomingCall):
            self._invites.pop(id(session.invite), None)

    # -- TransactionUser ----------------------------------------------------------------------------

    def on_request(self, request: SipRequest, transaction: ServerTransaction) -> None:
        method = request.method
        try:
            SipUri.parse(request.uri)
            to_tag = NameAddr.parse(request.headers.get("To") or "").tag
            from_tag = NameAddr.parse(request.headers.get("From") or "").tag
        except SipParseError as error:
            transaction.reply(error.status, str(error)[:60])
            return
        forwards = request.headers.get("Max-Forwards")
        if forwards is not None and forwards.strip() == "0" and method != "OPTIONS":
            transaction.reply(483)
            return
        unsupported = unsupported_requirements(request)
        if unsupported:
            transaction.reply(420, headers=(("Unsupported", ", ".join(unsupported)),))
            return
        if to_tag:
            session = self._sessions.get((request.call_id, to_tag, from_tag))
            if session is None:
                transaction.reply(481)
            else:
                session.in_dialog(request, transaction)
            return
        if method == "REGISTER":
            self.spawn(self._register(request, transaction))
        elif method == "INVITE":
            if self._merged(request, from_tag, transaction):
                transaction.reply(482, "Loop Detected")
                return
            self.spawn(self._invite(request, transaction))
        elif method == "OPTIONS":
            transaction.reply(
                200,
                headers=(
                    ("Allow", ", ".join(ALLOW)),
                    ("Supported", ", ".join(SUPPORTED)),
                    ("Accept", "application/sdp"),
                    ("Server", self.settings.user_agent),
                ),
                to_tag=new_tag(),
            )
        elif method in ("BYE", "INFO", "UPDATE"):
            transaction.reply(481)
        elif method in KNOWN_NOT_ALLOWED:
            transaction.reply(405, headers=(("Allow", ", ".join(ALLOW)),))
        else:
            transaction.reply(501)

    def _merged(self, request: SipRequest, from_tag: str | None, transaction: ServerTransaction) -> bool:
        """Whether this initial INVITE is one still in progress here that came again on another branch."""
        self._initial = {k: t for k, t in self._initial.items() if t.state == "proceeding"}
        key = (request.call_id, from_tag or "", request.cseq[0])
        earlier = self._initial.get(key)
        if earlier is not None and earlier is not transaction:
            return True
        self._initial[key] = transaction
        return False

    def on_ack(self, request: SipRequest, source: Source) -> None:
        try:
            to_tag = NameAddr.parse(request.headers.get("To") or "").tag
            from_tag = NameAddr.parse(request.headers.get("From") or "").tag
        except SipParseError:
            return
        session = self._sessions.get((request.call_id, to_tag, from_tag))
        if session is not None:
            session.ack(request)

    def on_cancel(self, invite: ServerTransaction) -> None:
        call = self._invites.get(id(invite))
        if call is not None:
            call.cancelled()
        else:
            # Still authenticating: _invite sees the final response and stops.
            invite.reply(487, to_tag=new_tag())

    def on_stray_response(self, response: SipResponse, source: Source) -> None:
        try:
            local = NameAddr.parse(response.headers.get("From") or "").tag
            remote = NameAddr.parse(response.headers.get("To") or "").tag
        except SipParseError:
            return
        session = self._sessions.get((response.call_id, local, remote))
        if session is not None:
            session.resend_ack(response)

    # -- REGISTER and INVITE ------------------------------------------------------------------------

    async def _register(self, request: SipRequest, transaction: ServerTransaction) -> None:
        ok, endpoint = await self._gatekeeper.check(request, transaction, guest_ok=False)
        if not ok or endpoint is None:
            return
        result = self.registrar.register(endpoint.endpoint_id, request, transaction.source)
        transaction.reply(result.status, result.reason, headers=result.headers, to_tag=new_tag())

    async def _invite(self, request: SipRequest, transaction: ServerTransaction) -> None:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if request.body and content_type != "application/sdp":
            transaction.reply(415, headers=(("Accept", "application/sdp"),), to_tag=new_tag())
            return
        try:
            timer = negotiate_session_timer(
                request.headers, self.settings.min_se, self.settings.session_expires
            )
        except IntervalTooSmall as small:
            transaction.reply(422, headers=(("Min-SE", str(small.min_se)),), to_tag=new_tag())
            return
        except ValueError:
            transaction.reply(400, "bad Session-Expires", to_tag=new_tag())
            return
        ok, endpoint = await self._gatekeeper.check(request, transaction, guest_ok=True)
        if not ok or transaction.state != "proceeding" or self._closed:
            return
        source = transaction.source
        port = self.ports.get(source.transport, 5060)
        contact = f"sip:{contact_host(self.settings, request.uri)}:{port};transport={source.transport}"
        dialog = Dialog.as_uas(request, source, new_tag(), contact)
        call = IncomingCall(self, transaction, dialog, endpoint, timer)
        self._sessions[dialog.key] = call
        self._invites[id(transaction)] = call
        self.spawn(self._hand_over(call))

    async def _hand_over(self, call: IncomingCall) -> None:
        try:
            await self._handler.on_invite(call)
        except CallGone:
            pass
        except Exception:
            logger.exception("sip: the call handler failed on %s", call.call_id)
            if not call.answered:
                await call.reject(500)

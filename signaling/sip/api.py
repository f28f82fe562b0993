"""The SIP core's contract with the calls layer: credentials in, calls out (re-exported by server.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = [
    "CallEnded",
    "CallGone",
    "CallHandler",
    "Credentials",
    "DialRefused",
    "DialState",
    "EndpointCredentials",
    "OfferRefused",
    "Registration",
    "SipCall",
    "Transport",
]

Transport = Literal["udp", "tcp", "tls"]

# Why a call ended, as ``wait_ended()`` and ``on_end`` report it.
CallEnded = Literal[
    "bye",  # the terminal sent BYE
    "hangup",  # we sent BYE (hangup())
    "cancel",  # CANCEL before the answer
    "rejected",  # reject() was called
    "timer",  # session timer expired without a refresh (RFC 4028)
    "no_ack",  # our 2xx was never ACKed within 64*T1
    "unanswered",  # dial-out: the terminal refused (4xx-6xx) or never answered (408)
    "transport",  # the TCP/TLS connection died or sending failed
    "shutdown",  # the server closed
]


class CallGone(Exception):
    """The call ended while an operation on it waited (CANCEL, no ACK, BYE, shutdown)."""

    def __init__(self, reason: CallEnded) -> None:
        super().__init__(reason)
        self.reason: CallEnded = reason


class OfferRefused(Exception):
    """The terminal refused our re-INVITE with a final ``status`` (e.g. 488); the call goes on."""

    def __init__(self, status: int) -> None:
        super().__init__(f"re-INVITE refused with {status}")
        self.status = status


@dataclass(frozen=True)
class EndpointCredentials:
    """What the core needs to authenticate one Endpoint; ``refusal`` comes from rooms.policy.

    ``refusal`` is a human-readable reason (e.g. "Site suspended: unpaid invoice"); when set, REGISTER
    and INVITE from this Endpoint get 403 with ``Warning: 399 <host> "<refusal>"`` after digest.
    """

    endpoint_id: str
    site_id: str
    account_id: str
    ha1_md5: str
    ha1_sha256: str | None = None
    refusal: str | None = None


class Credentials(Protocol):
    """Looks Endpoints up by SIP username (implemented over rooms/ by the calls layer)."""

    async def lookup(self, username: str) -> EndpointCredentials | None: ...


@dataclass(frozen=True)
class Registration:
    """One binding of an Endpoint, as the REST API and the admin UI show it."""

    endpoint_id: str
    contact: str
    transport: Transport
    source: tuple[str, int]
    expires_at: datetime
    instance_id: str | None = None
    user_agent: str | None = None


class SipCall(Protocol):
    """One SIP leg (incoming INVITE, or dial-out) as the calls layer sees it.

    Callbacks (plain attributes the handler sets, all optional):
    ``on_info(content_type, body)`` for INFO requests in the dialog (answered 200 by the core),
    ``on_reinvite(sdp) -> Awaitable[str]`` for a re-INVITE or refresh with an offer (returns our answer;
    an identical offer must get an identical answer, same o= version: the handler's job),
    ``on_end(reason)`` once, when the call ends for any reason.
    """

    request_user: str
    remote: tuple[str, int]
    transport: Transport
    endpoint: EndpointCredentials | None
    offer: str | None
    call_id: str
    user_agent: str
    on_info: Callable[[str, bytes], None] | None
    on_reinvite: Callable[[str], Awaitable[str]] | None
    on_end: Callable[[CallEnded], None] | None

    async def answer(self, sdp: str) -> str | None:
        """Send 200 OK with ``sdp``, resend it until the ACK; return the ACK's SDP (delayed offer) or None.

        Raises CallGone("cancel") if CANCEL came first, CallGone("no_ack") after 64*T1 without ACK
        (the core then sends BYE), CallGone("transport") when the flow died.
        """
        ...

    async def ringing(self) -> None:
        """Send 180 Ringing (optional; 100 Trying is sent by the core at once)."""
        ...

    async def reject(self, status: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer the INVITE with a final error (e.g. 403, 404, 486, 488); the call ends "rejected"."""
        ...

    async def send_info(self, content_type: str, body: bytes) -> int:
        """Send INFO in the dialog (e.g. picture_fast_update); returns the final status (408 on timeout)."""
        ...

    async def reinvite(self, sdp: str) -> str | None:
        """Send a re-INVITE with our new ``sdp`` (hold, a new m-line); return the terminal's answer.

        Glare (491) is retried after the random wait of RFC 3261 §14.1; OfferRefused on another final
        error (the old session stays), CallGone if the dialog is gone (481/408: the call ends).
        """
        ...

    async def hangup(self) -> None:
        """Send BYE (or CANCEL/487 before answer); idempotent; the call ends "hangup"."""
        ...

    async def wait_ended(self) -> CallEnded:
        """Wait until the call is over and return why."""
        ...


class CallHandler(Protocol):
    """The calls layer: gets each authenticated (or allowed guest) INVITE and answers or rejects it."""

    async def on_invite(self, call: SipCall) -> None: ...


class DialRefused(Exception):
    """A dial-out that cannot start; ``code`` is machine-readable, the message says why to a person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class DialState:
    """A dial-out's progress as moderators see it: ringing, joined, or ended with a reason."""

    call_id: str
    endpoint_id: int
    display_name: str
    state: str
    reason: str | None = None

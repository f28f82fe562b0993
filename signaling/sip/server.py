"""SipServer: the listeners, transaction layer, registrar and dialogs of the gateway, owned as one object."""

from __future__ import annotations

import logging

from signaling.clock import Scheduler
from signaling.sip.api import (
    CallEnded,
    CallGone,
    CallHandler,
    Credentials,
    EndpointCredentials,
    Registration,
    SipCall,
    Transport,
)
from signaling.sip.settings import SipSettings

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

# The calls layer types its variables with these names; both are SipCall.
IncomingCall = SipCall
OutgoingCall = SipCall


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
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._credentials = credentials
        self._handler = handler
        self._ports: dict[Transport, int] = {}
        self._closed = False

    @property
    def ports(self) -> dict[Transport, int]:
        """The bound port of each running transport, e.g. {"udp": 40211, "tcp": 40212, "tls": 40213}."""
        return dict(self._ports)

    async def start(self) -> None:
        raise NotImplementedError("SIP core in progress (issue #16)")

    async def close(self) -> None:
        self._closed = True

    def registrations(self) -> list[Registration]:
        """A snapshot of the live bindings (expired ones excluded), for REST and the admin UI."""
        return []

    def calls(self) -> list[SipCall]:
        """The calls in progress (answered or not), for REST and the admin UI."""
        return []

    async def invite(self, endpoint_id: str, sdp_offer: str) -> SipCall:
        """Dial out to a registered Endpoint's newest binding and wait for its final answer.

        LookupError when the Endpoint has no binding; CallGone when the terminal refuses or never
        answers. On return the call is established and its ``offer`` holds the terminal's SDP answer
        (``answer()``/``reject()`` are not used on an outgoing call).
        """
        raise NotImplementedError("dial-out comes after the core (issue #16)")

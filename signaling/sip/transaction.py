"""RFC 3261 §17 transactions (with RFC 6026's Accepted state) on an injected clock.

Timers: A/B/D (INVITE client), E/F/K (non-INVITE client), G/H/I/L (INVITE server), J (non-INVITE
server). T1, T2 and T4 come from settings; on reliable transports the retransmit timers are off and
the wait timers are zero, as §17 says.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from signaling.clock import Scheduler, Timer
from signaling.sip.message import Headers, SipRequest, SipResponse, response_to
from signaling.sip.transport import Source
from signaling.sip.uri import NameAddr, Via

__all__ = [
    "ClientTransaction",
    "Sender",
    "ServerTransaction",
    "TransactionLayer",
    "TransactionUser",
    "new_branch",
    "new_tag",
]

logger = logging.getLogger(__name__)

MAGIC = "z9hG4bK"


def new_branch() -> str:
    return MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


class Sender(Protocol):
    """The transport as transactions see it (SipTransport; a recording fake in tests)."""

    def send(self, data: bytes, dest: Source) -> bool: ...


class TransactionUser(Protocol):
    """The layer above (SipServer): new requests, ACKs for 2xx and stray 2xx retransmissions."""

    def on_request(self, request: SipRequest, transaction: ServerTransaction) -> None: ...

    def on_ack(self, request: SipRequest, source: Source) -> None: ...

    def on_cancel(self, invite: ServerTransaction) -> None: ...

    def on_stray_response(self, response: SipResponse, source: Source) -> None: ...


class _Timers:
    """Named one-shot timers of one transaction over the injected clock."""

    def __init__(self, clock: Scheduler) -> None:
        self._clock = clock
        self._timers: dict[str, Timer] = {}

    def start(self, name: str, seconds: float, callback: Callable[[], None]) -> None:
        self.stop(name)

        def fire() -> None:
            self._timers.pop(name, None)
            callback()

        self._timers[name] = self._clock.call_at(self._clock.now() + timedelta(seconds=seconds), fire)

    def stop(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def stop_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


def _server_key(request: SipRequest) -> tuple[str, ...]:
    via = Via.parse(request.vias[0])
    method = "INVITE" if request.method == "ACK" else request.method
    if via.branch.startswith(MAGIC):
        return (via.branch, f"{via.host}:{via.port}", method)
    # RFC 2543 peers: no usable branch, match on the dialog-ish fields (§17.2.3).
    from_tag = NameAddr.parse(request.headers.get("From") or "").tag
    return (request.call_id, from_tag, str(request.cseq[0]), str(via), method)


class ServerTransaction:
    """One received request and the responses we send to it, retransmitted as §17.2 says."""

    def __init__(
        self, layer: TransactionLayer, request: SipRequest, source: Source, key: tuple[str, ...]
    ) -> None:
        self.request = request
        self.source = source
        self.key = key
        self.state = "trying" if request.method != "INVITE" else "proceeding"
        self.last: bytes | None = None
        self.final: SipResponse | None = None
        self.cancelled = False
        self.acked = asyncio.Event()
        self._layer = layer
        self._timers = _Timers(layer.clock)
        self._interval = 0.0

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def reliable(self) -> bool:
        return self.source.transport != "udp"

    def respond(self, response: SipResponse) -> None:
        """Send ``response`` (provisional or final); later calls after a final one are ignored."""
        if self.state in ("completed", "confirmed", "accepted", "terminated"):
            return
        data = response.serialize()
        self.last = data
        if not self._layer.transport.send(data, self.source):
            self._terminate()
            return
        if response.status < 200:
            self.state = "proceeding"
            return
        self.final = response
        t1 = self._layer.t1
        if self.method == "INVITE":
            if response.status < 300:
                # RFC 6026: the dialog resends the 2xx; we only absorb INVITE retransmissions.
                self.state = "accepted"
                self._timers.start("L", 64 * t1, self._terminate)
            else:
                self.state = "completed"
                if not self.reliable:
                    self._interval = t1
                    self._timers.start("G", t1, self._timer_g)
                self._timers.start("H", 64 * t1, self._terminate)
        else:
            self.state = "completed"
            self._timers.start("J", 0 if self.reliable else 64 * t1, self._terminate)

    def reply(
        self,
        status: int,
        reason: str = "",
        *,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
        body: bytes = b"",
    ) -> SipResponse:
        """Build and send a response to this transaction's request."""
        response = response_to(self.request, status, reason, headers=headers, body=body, to_tag=to_tag)
        self.respond(response)
        return response

    def _timer_g(self) -> None:
        if self.state != "completed" or self.last is None:
            return
        self._layer.transport.send(self.last, self.source)
        self._interval = min(2 * self._interval, self._layer.t2)
        self._timers.start("G", self._interval, self._timer_g)

    def retransmitted(self) -> None:
        if self.state in ("proceeding", "completed") and self.last is not None:
            self._layer.transport.send(self.last, self.source)

    def ack(self) -> None:
        if self.state == "completed" and self.method == "INVITE":
            self.state = "confirmed"
            self.acked.set()
            self._timers.stop("G")
            self._timers.stop("H")
            self._timers.start("I", 0 if self.reliable else self._layer.t4, self._terminate)

    def _terminate(self) -> None:
        self.state = "terminated"
        self._timers.stop_all()
        self._layer.forget_server(self)


class ClientTransaction:
    """One request we send; ``response`` resolves with the final response (408/503 synthesised)."""

    def __init__(self, layer: TransactionLayer, request: SipRequest, dest: Source) -> None:
        self.request = request
        self.dest = dest
        self.branch = Via.parse(request.vias[0]).branch
        self.state = "calling" if request.method == "INVITE" else "trying"
        loop = asyncio.get_running_loop()
        self.response: asyncio.Future[SipResponse] = loop.create_future()
        self.on_provisional: Callable[[SipResponse], None] | None = None
        self.on_2xx: Callable[[SipResponse], None] | None = None
        self._layer = layer
        self._timers = _Timers(layer.clock)
        self._data = request.serialize()
        self._interval = layer.t1
        self._ack: bytes | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.branch, self.request.method

    @property
    def reliable(self) -> bool:
        return self.dest.transport != "udp"

    def start(self) -> None:
        if not self._layer.transport.send(self._data, self.dest):
            self._finish(503, "Service Unavailable")
            return
        t1 = self._layer.t1
        if not self.reliable:
            self._timers.start("A/E", t1, self._retransmit)
        self._timers.start("B/F", 64 * t1, lambda: self._finish(408, "Request Timeout"))

    def _retransmit(self) -> None:
        if self.state not in ("calling", "trying", "proceeding"):
            return
        if self.request.method == "INVITE" and self.state == "proceeding":
            return
        self._layer.transport.send(self._data, self.dest)
        if self.request.method == "INVITE":
            self._interval = 2 * self._interval
        else:
            self._interval = min(2 * self._interval, self._layer.t2)
            if self.state == "proceeding":
                self._interval = self._layer.t2
        self._timers.start("A/E", self._interval, self._retransmit)

    def _finish(self, status: int, reason: str) -> None:
        if not self.response.done():
            self.response.set_result(response_to(self.request, status, reason))
        self._terminate()

    def _terminate(self) -> None:
        self.state = "terminated"
        self._timers.stop_all()
        self._layer.forget_client(self)

    def received(self, response: SipResponse) -> None:
        status = response.status
        if status < 200:
            if self.state in ("calling", "trying", "proceeding"):
                self.state = "proceeding"
                if self.on_provisional is not None:
                    self.on_provisional(response)
            return
        if status < 300 and self.request.method == "INVITE":
            if self.state != "accepted":
                self.state = "accepted"
                self._timers.stop_all()
                self._timers.start("M", 64 * self._layer.t1, self._terminate)
                if not self.response.done():
                    self.response.set_result(response)
            if self.on_2xx is not None:
                self.on_2xx(response)
            return
        if self.state == "completed":
            if self._ack is not None:
                self._layer.transport.send(self._ack, self.dest)
            return
        if self.state in ("accepted", "terminated"):
            return
        self.state = "completed"
        self._timers.stop_all()
        if not self.response.done():
            self.response.set_result(response)
        if self.request.method == "INVITE":
            self._ack = self._non2xx_ack(response).serialize()
            self._layer.transport.send(self._ack, self.dest)
            self._timers.start("D", 0 if self.reliable else 32.0, self._terminate)
        else:
            self._timers.start("K", 0 if self.reliable else self._layer.t4, self._terminate)

    def _non2xx_ack(self, response: SipResponse) -> SipRequest:
        """§17.1.1.3: same branch, Request-URI and Route set, To from the response."""
        request = self.request
        headers = Headers.of(
            [
                ("Via", request.vias[0]),
                ("Max-Forwards", "70"),
                ("From", request.headers.get("From") or ""),
                ("To", response.headers.get("To") or ""),
                ("Call-ID", request.call_id),
                ("CSeq", f"{request.cseq[0]} ACK"),
                *(("Route", r) for r in request.headers.get_all("Route")),
            ]
        )
        return SipRequest(method="ACK", uri=request.uri, headers=headers)

    def cancel_timers(self) -> None:
        self._timers.stop_all()


class TransactionLayer:
    """Matches messages to transactions, creates server transactions, absorbs retransmissions."""

    def __init__(
        self,
        *,
        t1: float,
        t2: float,
        t4: float,
        clock: Scheduler,
        transport: Sender,
        user: TransactionUser,
    ) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.clock = clock
        self.transport = transport
        self._user = user
        self._servers: dict[tuple[str, ...], ServerTransaction] = {}
        self._clients: dict[tuple[str, str], ClientTransaction] = {}

    def received(self, message: SipRequest | SipResponse, source: Source) -> None:
        """The transport's receiver."""
        if isinstance(message, SipResponse):
            self._response(message, source)
        else:
            self._request(message, source)

    def _request(self, request: SipRequest, source: Source) -> None:
        key = _server_key(request)
        existing = self._servers.get(key)
        if request.method == "ACK":
            if existing is not None and existing.state in ("completed", "confirmed"):
                existing.ack()
                return
            self._user.on_ack(request, source)
            return
        if existing is not None:
            existing.retransmitted()
            return
        transaction = ServerTransaction(self, request, source, key)
        self._servers[key] = transaction
        if request.method == "CANCEL":
            invite = self._servers.get((*key[:-1], "INVITE"))
            if invite is None or invite.state != "proceeding":
                transaction.reply(481)
                return
            transaction.reply(200)
            invite.cancelled = True
            self._user.on_cancel(invite)
            return
        if request.method == "INVITE":
            # Sent at once so the terminal stops retransmitting while digest and admission run.
            transaction.reply(100)
        self._user.on_request(request, transaction)

    def _response(self, response: SipResponse, source: Source) -> None:
        vias = response.vias
        if not vias:
            return
        branch = Via.parse(vias[0]).branch
        client = self._clients.get((branch, response.cseq[1]))
        if client is not None:
            client.received(response)
            return
        if 200 <= response.status < 300 and response.cseq[1] == "INVITE":
            self._user.on_stray_response(response, source)

    def request(self, request: SipRequest, dest: Source) -> ClientTransaction:
        """Start a client transaction for ``request`` (its top Via has a fresh branch)."""
        transaction = ClientTransaction(self, request, dest)
        self._clients[transaction.key] = transaction
        transaction.start()
        return transaction

    def forget_server(self, transaction: ServerTransaction) -> None:
        if self._servers.get(transaction.key) is transaction:
            del self._servers[transaction.key]

    def forget_client(self, transaction: ClientTransaction) -> None:
        if self._clients.get(transaction.key) is transaction:
            del self._clients[transaction.key]

    def close(self) -> None:
        for server in list(self._servers.values()):
            server._terminate()
        for client in list(self._clients.values()):
            client._finish(503, "Service Unavailable")

    @property
    def counts(self) -> tuple[int, int]:
        """(server, client) transactions alive: tests check that nothing leaks."""
        return len(self._servers), len(self._clients)

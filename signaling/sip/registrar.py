"""The registrar (RFC 3261 §10.3): bindings per Endpoint, in memory, expiring on the injected clock.

A restart loses every binding; terminals re-register within their interval (docs/sip.md says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from signaling.clock import Scheduler, Timer
from signaling.sip.api import Registration
from signaling.sip.message import SipParseError, SipRequest
from signaling.sip.transport import Source
from signaling.sip.uri import NameAddr

__all__ = ["Binding", "RegisterResult", "Registrar"]


@dataclass(frozen=True)
class Binding:
    """One Contact of one Endpoint, with the flow it registered over (dial-out reuses it)."""

    endpoint_id: str
    contact: str
    source: Source
    expires_at: datetime
    call_id: str
    cseq: int
    instance_id: str | None
    user_agent: str | None
    # RFC 3327: the proxies between us and the terminal (Kamailio in front); dial-out routes through them.
    path: tuple[str, ...] = ()
    # The REGISTER's Request-URI: the address the terminal reaches us at (our Contact when dialling out).
    registrar_uri: str = ""

    def snapshot(self) -> Registration:
        return Registration(
            endpoint_id=self.endpoint_id,
            contact=self.contact,
            transport=self.source.transport,
            source=self.source.address,
            expires_at=self.expires_at,
            instance_id=self.instance_id,
            user_agent=self.user_agent,
        )


@dataclass(frozen=True)
class RegisterResult:
    """What to answer: ``status`` with ``headers`` (Contact list with expires, or Min-Expires)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    reason: str = ""


class Registrar:
    """Bindings of every Endpoint; ``register`` applies one authenticated REGISTER."""

    def __init__(self, clock: Scheduler, min_expires: int, max_expires: int, default_expires: int) -> None:
        self._clock = clock
        self._min = min_expires
        self._max = max_expires
        self._default = default_expires
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._timers: dict[tuple[str, str], Timer] = {}

    def register(self, endpoint_id: str, request: SipRequest, source: Source) -> RegisterResult:
        headers = request.headers
        try:
            contacts = [NameAddr.parse(c) for c in headers.get_all("Contact")]
        except SipParseError as error:
            return RegisterResult(400, reason=str(error)[:60])
        expires_header = headers.get("Expires")
        if expires_header is not None and not expires_header.strip().isdigit():
            return RegisterResult(400, reason="bad Expires")
        default = int(expires_header) if expires_header is not None else self._default
        now = self._clock.now()
        current = self._bindings.setdefault(endpoint_id, {})
        call_id, cseq = request.call_id, request.cseq[0]

        if any(c.uri == "*" for c in contacts):
            # §10.3 step 6: "*" only alone and with Expires: 0.
            if len(contacts) != 1 or default != 0:
                return RegisterResult(400, reason="wildcard Contact needs Expires: 0")
            for uri in list(current):
                self._remove(endpoint_id, uri)
            return RegisterResult(200)

        wanted: list[tuple[NameAddr, int]] = []
        for contact in contacts:
            raw = contact.params.get("expires")
            if raw is not None and not raw.isdigit():
                return RegisterResult(400, reason="bad expires parameter")
            expires = int(raw) if raw is not None else default
            if 0 < expires < self._min:
                return RegisterResult(423, headers=(("Min-Expires", str(self._min)),))
            wanted.append((contact, min(expires, self._max)))

        for contact, _ in wanted:
            old = current.get(contact.uri)
            # §10.3 step 7: an older CSeq of the same Call-ID is out of order.
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                return RegisterResult(500, reason="out of order REGISTER")

        agent = headers.get("User-Agent")
        path = tuple(headers.get_all("Path"))
        for contact, expires in wanted:
            if expires == 0:
                self._remove(endpoint_id, contact.uri)
                continue
            instance = contact.params.get("+sip.instance")
            binding = Binding(
                endpoint_id=endpoint_id,
                contact=contact.uri,
                source=source,
                expires_at=now + timedelta(seconds=expires),
                call_id=call_id,
                cseq=cseq,
                instance_id=instance.strip("<>") if instance else None,
                user_agent=agent,
                path=path,
                registrar_uri=request.uri,
            )
            self._put(binding)
        echoed = tuple(("Path", p) for p in path) if "path" in headers.tokens("Supported") else ()
        return RegisterResult(200, headers=self._contact_headers(endpoint_id, now) + echoed)

    def _contact_headers(self, endpoint_id: str, now: datetime) -> tuple[tuple[str, str], ...]:
        return tuple(
            ("Contact", f"<{b.contact}>;expires={max(0, int((b.expires_at - now).total_seconds()))}")
            for b in self._bindings.get(endpoint_id, {}).values()
        )

    def _put(self, binding: Binding) -> None:
        key = (binding.endpoint_id, binding.contact)
        self._bindings.setdefault(binding.endpoint_id, {})[binding.contact] = binding
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = self._clock.call_at(binding.expires_at, lambda: self._expire(binding))

    def _expire(self, binding: Binding) -> None:
        current = self._bindings.get(binding.endpoint_id, {})
        if current.get(binding.contact) is binding:
            self._timers.pop((binding.endpoint_id, binding.contact), None)
            self._remove(binding.endpoint_id, binding.contact)

    def _remove(self, endpoint_id: str, contact: str) -> None:
        current = self._bindings.get(endpoint_id)
        if current is None:
            return
        current.pop(contact, None)
        if not current:
            del self._bindings[endpoint_id]
        timer = self._timers.pop((endpoint_id, contact), None)
        if timer is not None:
            timer.cancel()

    def bindings(self, endpoint_id: str) -> list[Binding]:
        """Live bindings of one Endpoint, newest expiry first."""
        now = self._clock.now()
        live = [b for b in self._bindings.get(endpoint_id, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: b.expires_at, reverse=True)

    def snapshot(self) -> list[Registration]:
        now = self._clock.now()
        return [b.snapshot() for per in self._bindings.values() for b in per.values() if b.expires_at > now]

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._bindings.clear()

"""Dialogs (RFC 3261 §12): identity, route set, CSeq rules, in-dialog requests; session timers (RFC 4028)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from signaling.sip.message import Headers, SipRequest, SipResponse
from signaling.sip.transaction import new_branch
from signaling.sip.transport import Source
from signaling.sip.uri import NameAddr, Via, parse_params

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "Dialog",
    "IntervalTooSmall",
    "SessionTimer",
    "negotiate_session_timer",
    "unsupported_requirements",
]

# What we answer in Allow and Supported (OPTIONS, 200 to INVITE, 405).
ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "REGISTER")
# Not "outbound": RFC 5626 flow tokens and STUN keep-alives are not implemented (CRLF keep-alives are).
SUPPORTED = ("timer", "path")
# Methods we know but never accept: 405 with Allow rather than 501.
KNOWN_NOT_ALLOWED = frozenset({"SUBSCRIBE", "NOTIFY", "MESSAGE", "PUBLISH", "REFER", "PRACK"})


def unsupported_requirements(request: SipRequest) -> list[str]:
    """Option tags in Require that we do not support (§8.2.2.3: answer 420 with Unsupported)."""
    supported = set(SUPPORTED)
    return [tag for tag in request.headers.get_all("Require") if tag.lower() not in supported]


class IntervalTooSmall(Exception):
    """Session-Expires below our Min-SE: answer 422 with ``Min-SE: min_se``."""

    def __init__(self, min_se: int) -> None:
        super().__init__(f"Session-Expires below {min_se}")
        self.min_se = min_se


@dataclass(frozen=True)
class SessionTimer:
    """The negotiated session timer: who refreshes, how often, and whether our 2xx says Require: timer."""

    interval: int
    refresher: Literal["uac", "uas"]
    require: bool

    def headers(self) -> list[tuple[str, str]]:
        out = [("Session-Expires", f"{self.interval};refresher={self.refresher}")]
        if self.require:
            out.append(("Require", "timer"))
        return out

    @property
    def bye_after(self) -> float:
        """Without a refresh, BYE this long after the last one (RFC 4028 §10)."""
        return self.interval - min(32.0, self.interval / 3)

    @property
    def refresh_after(self) -> float:
        """When we are the refresher: refresh at half the interval (§7.4)."""
        return self.interval / 2


def negotiate_session_timer(headers: Headers, min_se: int, preferred: int) -> SessionTimer | None:
    """The UAS side of RFC 4028 §9 for an INVITE, re-INVITE or UPDATE; raises IntervalTooSmall (422).

    None means no session timer at all (the UAC neither supports nor asks for one).
    """
    supports = "timer" in headers.tokens("Supported") or "timer" in headers.tokens("Require")
    value = headers.get("Session-Expires")
    if value is None:
        if not supports:
            return None
        return SessionTimer(max(preferred, min_se), "uac", True)
    number, _, params = value.partition(";")
    if not number.strip().isdigit():
        raise ValueError("bad Session-Expires")
    interval = int(number)
    if interval < min_se:
        raise IntervalTooSmall(min_se)
    refresher = parse_params(params).get("refresher", "").lower()
    if refresher not in ("uac", "uas"):
        refresher = "uac" if supports else "uas"
    # Require: timer only when the UAC supports it (§9: never require what the UAC cannot do).
    return SessionTimer(interval, "uac" if refresher == "uac" else "uas", supports)


class Dialog:
    """One dialog as UAS (created from an INVITE) or UAC (dial-out): the fields of §12.1."""

    def __init__(
        self,
        *,
        call_id: str,
        local: NameAddr,
        remote: NameAddr,
        remote_target: str,
        route_set: list[str],
        local_seq: int,
        remote_seq: int | None,
        source: Source,
        contact: str,
    ) -> None:
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        # In-dialog requests go back over the flow the dialog came on (NAT; proxies are in the route set).
        self.source = source
        self.contact = contact

    @classmethod
    def as_uas(cls, request: SipRequest, source: Source, local_tag: str, contact: str) -> Dialog:
        contacts = request.headers.get_all("Contact")
        target = (
            NameAddr.parse(contacts[0]).uri
            if contacts
            else NameAddr.parse(request.headers.get("From") or "").uri
        )
        return cls(
            call_id=request.call_id,
            local=NameAddr.parse(request.headers.get("To") or "").with_tag(local_tag),
            remote=NameAddr.parse(request.headers.get("From") or ""),
            remote_target=target,
            route_set=request.headers.get_all("Record-Route"),
            local_seq=0,
            remote_seq=request.cseq[0],
            source=source,
            contact=contact,
        )

    @classmethod
    def as_uac(cls, request: SipRequest, response: SipResponse, source: Source, contact: str) -> Dialog:
        contacts = response.headers.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local=NameAddr.parse(request.headers.get("From") or ""),
            remote=NameAddr.parse(response.headers.get("To") or ""),
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq[0],
            remote_seq=None,
            source=source,
            contact=contact,
        )

    @property
    def key(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): how in-dialog requests find us."""
        return self.call_id, self.local.tag, self.remote.tag

    def accepts_cseq(self, request: SipRequest) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (500); a higher one is remembered."""
        number = request.cseq[0]
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def request(
        self,
        method: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        cseq: int | None = None,
        branch: str | None = None,
    ) -> SipRequest:
        """A new in-dialog request (§12.2.1.1); ``cseq`` given for ACK/CANCEL, else the next number."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        host, port = self._via_host()
        fields: list[tuple[str, str]] = [
            (
                "Via",
                str(
                    Via(
                        self.source.transport.upper(),
                        host,
                        port,
                        {"branch": branch or new_branch(), "rport": ""},
                    )
                ),
            ),
            ("Max-Forwards", "70"),
            ("From", str(self.local)),
            ("To", str(self.remote)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            *(("Route", route) for route in self.route_set),
        ]
        if method in ("INVITE", "UPDATE"):
            fields.append(("Contact", f"<{self.contact}>"))
        fields.extend(headers)
        return SipRequest(method=method, uri=self.remote_target, headers=Headers.of(fields), body=body)

    def _via_host(self) -> tuple[str, int | None]:
        uri = self.contact.removeprefix("sips:").removeprefix("sip:")
        hostport = uri.split(";", 1)[0]
        if hostport.startswith("["):
            end = hostport.find("]")
            tail = hostport[end + 2 :]
            return hostport[: end + 1], int(tail) if tail.isdigit() else None
        host, _, port = hostport.partition(":")
        return host, int(port) if port.isdigit() else None

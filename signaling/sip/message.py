"""SIP messages (RFC 3261 §7): one parse point, one serialise point, immutable values."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "REASONS",
    "Headers",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "parse",
]


class SipParseError(ValueError):
    """The bytes are not a SIP message we accept; ``status`` is the response a request deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# RFC 3261 §7.3.3 and the registries since: compact form -> full name.
COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Canonical spellings where title-casing gets it wrong; everything else is title-cased.
_CANONICAL = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "Min-SE",
        "MIME-Version",
        "RSeq",
        "RAck",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Identity-Info",
        "Max-Forwards",
        "Record-Route",
    )
}

# Headers whose values contain commas that do not separate list elements.
_SINGLE = frozenset(
    {
        "www-authenticate",
        "authorization",
        "proxy-authenticate",
        "proxy-authorization",
        "authentication-info",
        "date",
        "retry-after",
        "warning",
        "subject",
        "user-agent",
        "server",
        "organization",
    }
)

REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_CSEQ = re.compile(r"^(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)$")


def canonical_name(name: str) -> str:
    """The full, canonically spelt header name (compact forms expanded)."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT:
        return COMPACT[lower]
    if lower in _CANONICAL:
        return _CANONICAL[lower]
    return "-".join(part.capitalize() for part in lower.split("-"))


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas in quotes and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


@dataclass(frozen=True)
class Headers:
    """Ordered, multi-valued, case-insensitive header fields; names stored in canonical form."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple((canonical_name(n), v.strip()) for n, v in pairs))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field of ``name`` as written (one field may hold a comma list)."""
        key = canonical_name(name).lower()
        for n, v in self.items:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``: all fields, comma lists split (not for auth headers)."""
        key = canonical_name(name).lower()
        out: list[str] = []
        for n, v in self.items:
            if n.lower() == key:
                out.extend([v] if key in _SINGLE else split_list(v))
        return out

    def tokens(self, name: str) -> set[str]:
        """Lower-cased option tags of a list header such as Require, Supported, Allow."""
        return {v.lower() for v in self.get_all(name)}

    def without(self, *names: str) -> Headers:
        keys = {canonical_name(n).lower() for n in names}
        return Headers(tuple((n, v) for n, v in self.items if n.lower() not in keys))

    def with_(self, *pairs: tuple[str, str]) -> Headers:
        """Append fields (existing fields of the same name are kept)."""
        return Headers(self.items + tuple((canonical_name(n), v) for n, v in pairs))

    def set(self, name: str, value: str) -> Headers:
        """Replace every field of ``name`` with one."""
        return self.without(name).with_((name, value))


class _Message:
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) of the CSeq header (validated by ``parse``)."""
        match = _CSEQ.match(self.headers.get("CSeq") or "")
        if match is None:
            return 0, ""
        return int(match.group(1)), match.group(2).upper()

    @property
    def vias(self) -> list[str]:
        return self.headers.get_all("Via")

    def _serialize(self, start: str) -> bytes:
        lines = [start]
        lines += [f"{n}: {v}" for n, v in self.headers.items if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class SipRequest(_Message):
    """A request; ``uri`` is the Request-URI as written."""

    method: str = ""
    uri: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def serialize(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} SIP/2.0")


@dataclass(frozen=True)
class SipResponse(_Message):
    """A response; ``reason`` defaults to the standard phrase of ``status``."""

    status: int = 200
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def serialize(self) -> bytes:
        reason = self.reason or REASONS.get(self.status, "Unknown")
        return self._serialize(f"SIP/2.0 {self.status} {reason}")


_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


def parse(data: bytes, *, max_header_bytes: int = 16384, head_only: bool = False) -> SipRequest | SipResponse:
    """Parse one whole message (a datagram, or one framed stream message).

    Strict where sloppiness is dangerous (start line, CSeq, Content-Length, required headers),
    tolerant where real terminals differ (header-name case, compact forms, line folding, LF ends).
    ``head_only``: the body may be missing (to answer a request whose body we refuse to read).
    """
    head_end = data.find(b"\r\n\r\n")
    sep = 4
    if head_end < 0:
        head_end = data.find(b"\n\n")
        sep = 2
    if head_end < 0:
        raise SipParseError("no end of headers")
    if head_end > max_header_bytes:
        raise SipParseError("headers too large", status=513)
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    if "\x00" in head:
        raise SipParseError("NUL in headers")
    body = data[head_end + sep :]
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not pairs:
                raise SipParseError("continuation line before any header")
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.match(name):
            raise SipParseError(f"malformed header line {line[:40]!r}")
        pairs.append((name, value.strip()))
    headers = Headers.of(pairs)

    length = headers.get("Content-Length")
    if length is not None:
        if not length.isdigit():
            raise SipParseError("bad Content-Length")
        n = int(length)
        if n > len(body) and not head_only:
            raise SipParseError("body shorter than Content-Length")
        body = body[:n]

    message: SipRequest | SipResponse
    if start.startswith("SIP/"):
        version, _, rest = start.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != "SIP/2.0":
            raise SipParseError("unsupported SIP version", status=505)
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError("bad status code")
        message = SipResponse(status=int(code), reason=reason.strip(), headers=headers, body=body)
    else:
        parts = start.split(" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]):
            raise SipParseError("bad request line")
        method, uri, version = parts
        if version != "SIP/2.0":
            raise SipParseError("unsupported SIP version", status=505)
        if ":" not in uri:
            raise SipParseError("bad Request-URI")
        message = SipRequest(method=method.upper(), uri=uri, headers=headers, body=body)

    for name in _REQUIRED:
        if headers.get(name) is None:
            raise SipParseError(f"missing {name}")
    if _CSEQ.match(headers.get("CSeq") or "") is None:
        raise SipParseError("bad CSeq")
    if isinstance(message, SipRequest) and message.cseq[1] != message.method:
        raise SipParseError("CSeq method does not match the request")
    return message


def response_to(
    request: SipRequest,
    status: int,
    reason: str = "",
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    to_tag: str | None = None,
) -> SipResponse:
    """A response to ``request`` (RFC 3261 §8.2.6): Via, From, To, Call-ID, CSeq copied."""
    copied: list[tuple[str, str]] = [("Via", v) for v in request.headers.get_all("Via")]
    to = request.headers.get("To") or ""
    if to_tag is not None and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    copied += [
        ("From", request.headers.get("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", request.headers.get("CSeq") or ""),
    ]
    if 100 < status < 300:
        copied += [("Record-Route", v) for v in request.headers.get_all("Record-Route")]
    return SipResponse(
        status=status,
        reason=reason,
        headers=Headers.of([*copied, *headers]),
        body=body,
    )

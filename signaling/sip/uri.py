"""SIP URIs, name-addr values (From, To, Contact, Route) and Via (RFC 3261 §19, §20.42)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from signaling.sip.message import SipParseError, split_list

__all__ = ["NameAddr", "SipUri", "Via", "parse_params"]

_URI = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[^@;?]*)(?::(?P<password>[^@;?]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?::(?P<port>\d{1,5}))?"
    r"(?P<params>(?:;[^?]*)?)(?P<headers>\?.*)?$"
)


def parse_params(text: str) -> dict[str, str]:
    """``;a=b;c`` -> {"a": "b", "c": ""}; names lower-cased."""
    params: dict[str, str] = {}
    for raw in text.split(";"):
        part = raw.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def _format_params(params: dict[str, str]) -> str:
    return "".join(f";{k}={v}" if v else f";{k}" for k, v in params.items())


@dataclass(frozen=True)
class SipUri:
    """A sip: or sips: URI."""

    scheme: str
    user: str
    host: str
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        match = _URI.match(text.strip())
        if match is None:
            raise SipParseError(f"not a SIP URI: {text[:60]!r}", status=416)
        port = match.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise SipParseError("bad port in URI")
        return cls(
            scheme=match.group("scheme").lower(),
            user=match.group("user") or "",
            host=match.group("host").lower(),
            port=int(port) if port else None,
            params=parse_params(match.group("params") or ""),
        )

    @property
    def transport(self) -> str:
        if self.scheme == "sips":
            return "tls"
        return self.params.get("transport", "udp").lower()

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}{_format_params(self.params)}"


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` or a bare ``uri;params`` (header params such as tag, expires)."""

    uri: str
    display: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if text == "*":
            return cls(uri="*")
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError("unclosed < in address")
            display = text[:lt].strip().strip('"')
            return cls(uri=text[lt + 1 : gt].strip(), display=display, params=parse_params(text[gt + 1 :]))
        # Without brackets, parameters after the URI belong to the header (RFC 3261 §20.10).
        uri, _, rest = text.partition(";")
        if not uri:
            raise SipParseError("empty address")
        return cls(uri=uri.strip(), params=parse_params(rest))

    @property
    def tag(self) -> str:
        return self.params.get("tag", "")

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display, {**self.params, "tag": tag})

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


@dataclass(frozen=True)
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=…;rport``."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        sent, _, rest = text.strip().partition(" ")
        protocol = sent.split("/")
        if len(protocol) != 3 or protocol[0].upper() != "SIP" or protocol[1] != "2.0":
            raise SipParseError("bad Via protocol")
        by, _, params = rest.strip().partition(";")
        by = by.strip()
        host, port = by, None
        if by.startswith("["):
            end = by.find("]")
            host, tail = by[: end + 1], by[end + 1 :]
            if tail.startswith(":") and tail[1:].isdigit():
                port = int(tail[1:])
        elif ":" in by:
            host, _, p = by.partition(":")
            if not p.isdigit() or not 0 < int(p) < 65536:
                raise SipParseError("bad Via port")
            port = int(p)
        if not host:
            raise SipParseError("Via without host")
        return cls(protocol[2].upper(), host.lower(), port, parse_params(params))

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{_format_params(self.params)}"


def first_via(vias: list[str]) -> Via:
    if not vias:
        raise SipParseError("missing Via")
    return Via.parse(vias[0])


def addresses(values: list[str]) -> list[NameAddr]:
    """Parse each element of a Contact/Route list."""
    return [NameAddr.parse(v) for v in values for v in split_list(v)]

"""SDP text to sections and the pieces the answer policy reads (signaling/sip/sdp.py); pure, no I/O."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from signaling.sip.sdp_model import (
    AUDIO_PREFERENCE,
    SUITES,
    VIDEO_FEEDBACK,
    Codec,
    Direction,
    H264Params,
    SdpError,
    SrtpSuite,
)

REVERSE: dict[str, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
MAX_SDP = 64 * 1024


@dataclass(slots=True)
class Section:
    media: str = ""
    port: int = 0
    proto: str = ""
    formats: list[str] = field(default_factory=list)
    connection: str = ""
    bandwidth: dict[str, int] = field(default_factory=dict)
    attributes: list[tuple[str, str]] = field(default_factory=list)

    def attrs(self, name: str) -> list[str]:
        return [v for k, v in self.attributes if k == name]

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attributes)


@dataclass(slots=True)
class Session:
    session: Section
    media: list[Section]


def parse(text: str) -> Session:
    if len(text) > MAX_SDP:
        raise SdpError("SDP: larger than 64 KiB")
    session = Section()
    media: list[Section] = []
    current = session
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"SDP: malformed line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"SDP: malformed m-line {value[:40]!r}")
            try:
                port = int(parts[1].split("/")[0])
            except ValueError:
                raise SdpError(f"SDP: bad port in m-line {value[:40]!r}") from None
            if not 0 <= port <= 65535:
                raise SdpError(f"SDP: port {port} out of range")
            current = Section(media=parts[0], port=port, proto=parts[2], formats=parts[3:])
            media.append(current)
        elif kind == "c":
            parts = value.split()
            if len(parts) >= 3:
                current.connection = parts[2].split("/")[0]
        elif kind == "b":
            name, _, amount = value.partition(":")
            if amount.strip().isdigit():  # anything else is ignored, as RFC 8866 §5.8 asks
                current.bandwidth[name.upper()] = int(amount)
        elif kind == "a":
            name, _, attr = value.partition(":")
            current.attributes.append((name.strip().lower(), attr.strip()))
    if not media:
        raise SdpError("SDP: no m-line")
    return Session(session, media)


def rtpmaps(section: Section) -> dict[int, Codec]:
    fmtps: dict[int, tuple[tuple[str, str], ...]] = {}
    for value in section.attrs("fmtp"):
        pt_text, _, params = value.partition(" ")
        if not pt_text.isdigit():
            continue
        pairs = []
        for item in params.split(";"):
            key, eq, val = item.strip().partition("=")
            if key:
                pairs.append((key.strip().lower(), val.strip()) if eq else ("", key.strip()))
        fmtps[int(pt_text)] = tuple(pairs)
    codecs: dict[int, Codec] = {}
    for value in section.attrs("rtpmap"):
        pt_text, _, encoding = value.partition(" ")
        parts = encoding.strip().split("/")
        if not pt_text.isdigit() or len(parts) < 2 or not parts[1].isdigit():
            continue
        pt = int(pt_text)
        channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
        codecs[pt] = Codec(pt, parts[0], int(parts[1]), channels, fmtps.get(pt, ()))
    static = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
    for fmt in section.formats:
        if fmt.isdigit() and int(fmt) in static and int(fmt) not in codecs:
            name, rate = static[int(fmt)]
            codecs[int(fmt)] = Codec(int(fmt), name, rate, 1, fmtps.get(int(fmt), ()))
    offered = [int(f) for f in section.formats if f.isdigit()]
    return {pt: codecs[pt] for pt in offered if pt in codecs}


def feedback(section: Section, pt: int) -> frozenset[str]:
    found = set()
    for value in section.attrs("rtcp-fb"):
        target, _, kind = value.partition(" ")
        if target in ("*", str(pt)):
            normal = " ".join(kind.split()).lower()
            if normal in VIDEO_FEEDBACK:
                found.add(normal)
    return frozenset(found)


def direction(section: Section, session: Section) -> Direction:
    names: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
    for name in names:
        if section.has(name):
            return name
    for name in names:
        if session.has(name):
            return name
    return "sendrecv"


def h264(codec: Codec) -> H264Params:
    def number(name: str) -> int:
        value = codec.param(name)
        return int(value) if value.isdigit() else 0

    profile = codec.param("profile-level-id", "42000a").lower()
    if len(profile) != 6 or any(c not in "0123456789abcdef" for c in profile):
        profile = "42000a"
    mode = codec.param("packetization-mode", "0")
    return H264Params(
        profile_level_id=profile,
        packetization_mode=int(mode) if mode.isdigit() else -1,
        max_fs=number("max-fs"),
        max_mbps=number("max-mbps"),
        max_br=number("max-br"),
    )


def crypto(section: Section) -> tuple[int, SrtpSuite, bytes] | None:
    """The first `a=crypto` line we can honour: AES_CM_128 80/32, one inline key, no MKI, lifetime ≤ 2^48, no
    session parameters beyond a window size hint."""
    for value in section.attrs("crypto"):
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in SUITES:
            continue
        if any(not p.upper().startswith("WSH=") for p in parts[3:]):
            continue  # UNENCRYPTED_SRTCP, KDR, FEC_ORDER ... we cannot honour them
        if ";" in parts[2] or not parts[2].startswith("inline:"):
            continue  # several keys
        key_text, *extra = parts[2][len("inline:") :].split("|")
        if any(":" in x for x in extra):
            continue  # an MKI: pylibsrtp takes none
        if extra and not lifetime_ok(extra[0]):
            continue
        try:
            key = base64.b64decode(key_text + "=" * (-len(key_text) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(key) != 30:
            continue
        suite: SrtpSuite = "AES_CM_128_HMAC_SHA1_80" if parts[1].endswith("80") else "AES_CM_128_HMAC_SHA1_32"
        return int(parts[0]), suite, key
    return None


def lifetime_ok(text: str) -> bool:
    if text.startswith("2^"):
        return text[2:].isdigit() and int(text[2:]) <= 48
    return text.isdigit() and 0 < int(text) <= 2**48


def inline(key: bytes) -> str:
    return "inline:" + base64.b64encode(key).decode()


def choose_audio(codecs: dict[int, Codec]) -> Codec | None:
    by_name: dict[str, Codec] = {}
    for codec in codecs.values():
        name = codec.name.lower()
        if name == "opus" and codec.clock_rate != 48000:
            continue
        if name in ("pcmu", "pcma", "g722") and codec.clock_rate != 8000:
            continue
        by_name.setdefault(name, codec)
    return next((by_name[n] for n in AUDIO_PREFERENCE if n in by_name), None)


def choose_video(codecs: dict[int, Codec]) -> Codec | None:
    """H.264 only (never H.265, SVC, H.263, polycom LPR): mode 1 before mode 0, Baseline family before Main
    and High, the offer's order otherwise."""
    candidates = []
    for order, codec in enumerate(codecs.values()):
        if codec.name.upper() != "H264" or codec.clock_rate != 90000:
            continue
        params = h264(codec)
        if params.packetization_mode not in (0, 1):
            continue
        candidates.append((params.packetization_mode != 1, not params.baseline_family, order, codec))
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None

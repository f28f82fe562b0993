"""SDP offer/answer for room terminals (research/sip-gateway.md §3.2): pure functions, no I/O.

`answer(offer, policy)` answers a terminal's offer, `offer(policy)` makes ours (delayed offer, dial-out) and
`parse_answer(answer, offer, policy)` reads the terminal's answer to it. What was negotiated comes back typed
(`MediaLine` per m-line) and converts to the SFU's plain values with `SdpAnswer.plain_media()`.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sfu.plain_media import PlainCodec, PlainMedia, PlainSrtp, PlainStream

SrtpPolicy = Literal["off", "best_effort", "mandatory"]
SignallingTransport = Literal["udp", "tcp", "tls"]
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
SrtpSuite = Literal["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]

SUITES: tuple[SrtpSuite, ...] = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
# Audio codecs we decode and encode (PyAV), best first; G.722 is advertised at 8000 but runs at 16 kHz.
AUDIO_PREFERENCE = ("opus", "g722", "pcmu", "pcma")
# Offered subset we answer (RFC 4585/5104); anything else (ccm pan, goog-remb, transport-cc) is dropped.
VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir", "ccm tmmbr")
_REVERSE: dict[str, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_MAX_SDP = 64 * 1024


def _fresh_key() -> bytes:
    return os.urandom(30)


@dataclass(frozen=True, slots=True)
class SdpPolicy:
    """How we answer: our media address and ports, the SRTP policy, the signalling transport.

    `audio_port`/`video_port` are PlainPeer.local_ports (the RTP port; RTCP is the next one unless the
    terminal offers rtcp-mux). SDES keys travel in the SDP, so they are accepted only over TLS unless
    `sdes_without_tls` (a site that knows its network) is set.
    """

    address: str
    audio_port: int
    video_port: int = 0  # 0: no video socket, every video line gets port 0
    transport: SignallingTransport = "udp"
    srtp: SrtpPolicy = "best_effort"
    sdes_without_tls: bool = False
    video_tias: int = 2_000_000  # b=TIAS we announce on video (bits per second)
    session_id: int = 0  # 0: derived from the clock
    session_version: int = 1
    key: Callable[[], bytes] = field(default=_fresh_key, compare=False)  # 30 bytes per call

    @property
    def may_sdes(self) -> bool:
        return self.srtp != "off" and (self.transport == "tls" or self.sdes_without_tls)


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type as negotiated (the offerer's number)."""

    pt: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str = "") -> str:
        for key, value in self.fmtp:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class H264Params:
    """The H.264 fmtp of the chosen payload type (RFC 6184 §8.1): max-fs/max-mbps raise the level's limits."""

    profile_level_id: str = "42e01f"
    packetization_mode: int = 0
    max_fs: int = 0
    max_mbps: int = 0
    max_br: int = 0

    @property
    def profile_idc(self) -> int:
        return int(self.profile_level_id[:2], 16)

    @property
    def level_idc(self) -> int:
        return int(self.profile_level_id[4:6], 16)

    @property
    def baseline_family(self) -> bool:
        return self.profile_idc == 0x42


@dataclass(frozen=True, slots=True)
class Crypto:
    """The SDES crypto attribute chosen on one m-line: the terminal's key and our fresh one."""

    tag: int
    suite: SrtpSuite
    remote_key: bytes  # 30 bytes: what the terminal protects with (we unprotect with it)
    local_key: bytes  # 30 bytes: what we protect with (in our answer)


@dataclass(frozen=True, slots=True)
class MediaLine:
    """One m-line of the offer and what our answer says about it (rejected lines: port 0, `reason`)."""

    index: int
    media: str  # "audio", "video", "application", ...
    proto: str
    accepted: bool
    reason: str = ""  # why it got port 0
    local_port: int = 0
    remote_address: str = ""
    remote_port: int = 0
    remote_rtcp_port: int = 0  # 0: remote_port + 1
    rtcp_mux: bool = False
    direction: Direction = "sendrecv"  # ours, as written in the answer
    codecs: tuple[Codec, ...] = ()  # the chosen one first
    telephone_event_pt: int | None = None
    rtcp_fb: frozenset[str] = frozenset()  # subset of VIDEO_FEEDBACK
    h264: H264Params | None = None
    tias: int = 0  # the terminal's b=TIAS (bits per second), or b=AS * 1000
    crypto: Crypto | None = None
    content: str = ""  # a=content (RFC 4796): "main", "slides", ""
    label: str = ""  # a=label (RFC 4574)


@dataclass(frozen=True, slots=True)
class SdpAnswer:
    """Our answer text and what it negotiated, one MediaLine per offered m-line in the offer's order."""

    sdp: str
    lines: tuple[MediaLine, ...]

    @property
    def audio(self) -> MediaLine | None:
        return next((x for x in self.lines if x.accepted and x.media == "audio"), None)

    @property
    def video(self) -> MediaLine | None:
        return next((x for x in self.lines if x.accepted and x.media == "video"), None)

    @property
    def encrypted(self) -> bool:
        return any(x.crypto is not None for x in self.lines if x.accepted)

    def plain_media(self, signalling_host: str = "", *, latch_any: bool = False) -> PlainMedia:
        """The SFU's view of this negotiation (for PlainPeer.start)."""
        streams = []
        for line in (self.audio, self.video):
            if line is None:
                continue
            codec = line.codecs[0]
            feedback = tuple(tuple(x.split(" ", 1)) if " " in x else (x, "") for x in sorted(line.rtcp_fb))
            plain = PlainCodec(
                pt=codec.pt,
                name=codec.name,
                clock_rate=codec.clock_rate,
                channels=codec.channels,
                parameters=codec.fmtp,
                rtcp_feedback=feedback,  # type: ignore[arg-type]
            )
            srtp = (
                PlainSrtp(line.crypto.suite, line.crypto.local_key, line.crypto.remote_key)
                if line.crypto is not None
                else None
            )
            streams.append(
                PlainStream(
                    kind="audio" if line.media == "audio" else "video",
                    remote_host=line.remote_address,
                    remote_port=line.remote_port,
                    codecs=(plain,),
                    remote_rtcp_port=line.remote_rtcp_port,
                    rtcp_mux=line.rtcp_mux,
                    direction=line.direction,
                    telephone_event_pt=line.telephone_event_pt,
                    srtp=srtp,
                    max_fs=line.h264.max_fs if line.h264 else 0,
                    max_mbps=line.h264.max_mbps if line.h264 else 0,
                    tias=line.tias,
                    content=line.content or "main",
                )
            )
        return PlainMedia(tuple(streams), signalling_host=signalling_host, latch_any=latch_any)


@dataclass(frozen=True, slots=True)
class SdpRejection:
    """The offer cannot be answered: send `status` (488 Not Acceptable Here) with `reason` as a Warning."""

    reason: str
    status: int = 488


class SdpError(ValueError):
    """The SDP text is malformed (the caller answers 400 or 488)."""


# ----------------------------------------------------------------------------------------------- parsing
@dataclass(slots=True)
class _Section:
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
class _Session:
    session: _Section
    media: list[_Section]


def _parse(text: str) -> _Session:
    if len(text) > _MAX_SDP:
        raise SdpError("SDP: larger than 64 KiB")
    session = _Section()
    media: list[_Section] = []
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
            current = _Section(media=parts[0], port=port, proto=parts[2], formats=parts[3:])
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
    return _Session(session, media)


def _rtpmaps(section: _Section) -> dict[int, Codec]:
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


def _feedback(section: _Section, pt: int) -> frozenset[str]:
    found = set()
    for value in section.attrs("rtcp-fb"):
        target, _, kind = value.partition(" ")
        if target in ("*", str(pt)):
            normal = " ".join(kind.split()).lower()
            if normal in VIDEO_FEEDBACK:
                found.add(normal)
    return frozenset(found)


def _direction(section: _Section, session: _Section) -> Direction:
    names: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
    for name in names:
        if section.has(name):
            return name
    for name in names:
        if session.has(name):
            return name
    return "sendrecv"


def _h264(codec: Codec) -> H264Params:
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


def _crypto(section: _Section) -> tuple[int, SrtpSuite, bytes] | None:
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
        if extra and not _lifetime_ok(extra[0]):
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


def _lifetime_ok(text: str) -> bool:
    if text.startswith("2^"):
        return text[2:].isdigit() and int(text[2:]) <= 48
    return text.isdigit() and 0 < int(text) <= 2**48


def _inline(key: bytes) -> str:
    return "inline:" + base64.b64encode(key).decode()


# ----------------------------------------------------------------------------------------------- answer
def answer(offer: str, policy: SdpPolicy) -> SdpAnswer | SdpRejection:
    """Answer a terminal's offer: same m-lines in the same order, port 0 for what we do not take.

    One audio codec (Opus > G.722 > PCMU > PCMA) plus the offered telephone-event; one H.264 video,
    packetization-mode 1 preferred (0 accepted), Baseline family first; BFCP, slides, H.224, ix and any second
    audio/video line get port 0. SRTP as `policy` says. No usable audio → SdpRejection (488).
    """
    try:
        parsed = _parse(offer)
    except SdpError as exc:
        return SdpRejection(str(exc))
    session = parsed.session
    lines: list[MediaLine] = []
    have_audio = have_video = False
    for index, section in enumerate(parsed.media):
        rejected = _reject_reason(section, have_audio=have_audio, have_video=have_video, policy=policy)
        if rejected is None:
            negotiated = _negotiate(index, section, session, policy)
            if isinstance(negotiated, SdpRejection):
                if section.media == "audio":
                    return negotiated
                rejected = negotiated.reason
            else:
                lines.append(negotiated)
                have_audio = have_audio or section.media == "audio"
                have_video = have_video or section.media == "video"
                continue
        lines.append(
            MediaLine(
                index=index,
                media=section.media,
                proto=section.proto,
                accepted=False,
                reason=rejected,
                content=(section.attrs("content") or [""])[0],
                label=(section.attrs("label") or [""])[0],
            )
        )
    if not have_audio:
        reasons = "; ".join(x.reason for x in lines if x.media == "audio") or "no audio m-line"
        return SdpRejection(f"no acceptable audio: {reasons}")
    return SdpAnswer(_write(parsed, lines, policy), tuple(lines))


def _reject_reason(section: _Section, *, have_audio: bool, have_video: bool, policy: SdpPolicy) -> str | None:
    if section.port == 0:
        return "disabled in the offer"
    if section.media not in ("audio", "video"):
        return f"{section.media} {section.proto} is not supported"
    if not section.proto.upper().startswith("RTP/"):
        return f"{section.proto} is not RTP"
    content = (section.attrs("content") or ["main"])[0].lower()
    if section.media == "video" and content not in ("main", ""):
        return f"content:{content} needs BFCP (phase 2)"
    if (section.media == "audio" and have_audio) or (section.media == "video" and have_video):
        return f"a second {section.media} line"
    if section.media == "video" and not policy.video_port:
        return "no video socket"
    return None


def _negotiate(
    index: int, section: _Section, session: _Section, policy: SdpPolicy
) -> MediaLine | SdpRejection:
    proto = section.proto.upper()
    secure = proto in ("RTP/SAVP", "RTP/SAVPF")
    crypto: Crypto | None = None
    if secure:
        if policy.srtp == "off":
            return SdpRejection(f"{section.proto}: SRTP is off for this site")
        if not policy.may_sdes:
            return SdpRejection(f"{section.proto}: SDES keys only over TLS, not {policy.transport}")
        chosen = _crypto(section)
        if chosen is None:
            return SdpRejection(f"{section.proto}: no usable a=crypto (AES_CM_128_HMAC_SHA1_80/32 only)")
        crypto = Crypto(chosen[0], chosen[1], chosen[2], policy.key())
    elif policy.srtp == "mandatory":
        return SdpRejection(f"{section.proto}: this site requires SRTP (RTP/SAVP)")
    codecs = _rtpmaps(section)
    telephone_event: int | None = None
    rtcp_fb: frozenset[str] = frozenset()
    h264: H264Params | None = None
    if section.media == "audio":
        chosen_codec = _choose_audio(codecs)
        if chosen_codec is None:
            return SdpRejection("audio: no common codec (Opus, G.722, PCMU, PCMA)")
        events = [c for c in codecs.values() if c.name.lower() == "telephone-event"]
        matching = [c for c in events if c.clock_rate == chosen_codec.clock_rate]
        if matching or events:
            telephone_event = (matching or events)[0].pt
        chosen_list = (chosen_codec, *(c for c in events if c.pt == telephone_event))
    else:
        video = _choose_video(codecs)
        if video is None:
            return SdpRejection("video: no H.264 in packetization-mode 0 or 1")
        chosen_list = (video,)
        h264 = _h264(video)
        rtcp_fb = _feedback(section, video.pt)
    remote = section.connection or session.connection
    rtcp_attr = (section.attrs("rtcp") or [""])[0].split()
    bandwidth = section.bandwidth.get("TIAS") or section.bandwidth.get("AS", 0) * 1000
    return MediaLine(
        index=index,
        media=section.media,
        proto=section.proto,
        accepted=True,
        local_port=policy.audio_port if section.media == "audio" else policy.video_port,
        remote_address=remote,
        remote_port=section.port,
        remote_rtcp_port=int(rtcp_attr[0]) if rtcp_attr and rtcp_attr[0].isdigit() else 0,
        rtcp_mux=section.has("rtcp-mux"),
        direction=_REVERSE[_direction(section, session)],
        codecs=chosen_list,
        telephone_event_pt=telephone_event,
        rtcp_fb=rtcp_fb,
        h264=h264,
        tias=bandwidth,
        crypto=crypto,
        content=(section.attrs("content") or [""])[0],
        label=(section.attrs("label") or [""])[0],
    )


def _choose_audio(codecs: dict[int, Codec]) -> Codec | None:
    by_name: dict[str, Codec] = {}
    for codec in codecs.values():
        name = codec.name.lower()
        if name == "opus" and codec.clock_rate != 48000:
            continue
        if name in ("pcmu", "pcma", "g722") and codec.clock_rate != 8000:
            continue
        by_name.setdefault(name, codec)
    return next((by_name[n] for n in AUDIO_PREFERENCE if n in by_name), None)


def _choose_video(codecs: dict[int, Codec]) -> Codec | None:
    """H.264 only (never H.265, SVC, H.263, polycom LPR): mode 1 before mode 0, Baseline family before Main
    and High, the offer's order otherwise."""
    candidates = []
    for order, codec in enumerate(codecs.values()):
        if codec.name.upper() != "H264" or codec.clock_rate != 90000:
            continue
        params = _h264(codec)
        if params.packetization_mode not in (0, 1):
            continue
        candidates.append((params.packetization_mode != 1, not params.baseline_family, order, codec))
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None


# ----------------------------------------------------------------------------------------------- writing
def _origin(policy: SdpPolicy) -> str:
    session_id = policy.session_id or int(time.time())
    return f"o=yunhui {session_id} {policy.session_version} IN IP4 {policy.address}"


def _codec_lines(codec: Codec) -> list[str]:
    encoding = f"{codec.name}/{codec.clock_rate}" + (f"/{codec.channels}" if codec.channels > 1 else "")
    out = [f"a=rtpmap:{codec.pt} {encoding}"]
    if codec.fmtp:
        out.append(f"a=fmtp:{codec.pt} " + ";".join(f"{k}={v}" if k else v for k, v in codec.fmtp))
    return out


def _answer_fmtp(codec: Codec) -> Codec:
    if codec.name.upper() != "H264":
        return codec
    # What we can receive: the offered profile and limits as they are (we decode nothing, browsers do).
    keep = ("profile-level-id", "packetization-mode", "max-fs", "max-mbps", "max-br", "max-fps")
    fmtp = tuple((k, v) for k, v in codec.fmtp if k in keep)
    if not any(k == "packetization-mode" for k, _ in fmtp):
        fmtp += (("packetization-mode", "0"),)
    return Codec(codec.pt, codec.name, codec.clock_rate, codec.channels, fmtp)


def _write(parsed: _Session, lines: list[MediaLine], policy: SdpPolicy) -> str:
    out = ["v=0", _origin(policy), "s=Yunhui", f"c=IN IP4 {policy.address}", "t=0 0"]
    for line, section in zip(lines, parsed.media, strict=True):
        if not line.accepted:
            formats = " ".join(section.formats) or "0"
            out.append(f"m={section.media} 0 {section.proto} {formats}")
            continue
        pts = " ".join(str(c.pt) for c in line.codecs)
        out.append(f"m={line.media} {line.local_port} {section.proto} {pts}")
        if line.media == "video":
            out.append(f"b=AS:{policy.video_tias // 1000}")
            out.append(f"b=TIAS:{policy.video_tias}")
        for codec in line.codecs:
            out.extend(_codec_lines(_answer_fmtp(codec)))
        if line.media == "audio":
            out.append("a=ptime:20")
        for fb in sorted(line.rtcp_fb):
            out.append(f"a=rtcp-fb:{line.codecs[0].pt} {fb}")
        if line.rtcp_mux:
            out.append("a=rtcp-mux")
        if line.crypto is not None:
            out.append(f"a=crypto:{line.crypto.tag} {line.crypto.suite} {_inline(line.crypto.local_key)}")
        if line.content:
            out.append(f"a=content:{line.content}")
        if line.label:
            out.append(f"a=label:{line.label}")
        out.append(f"a={line.direction}")
    return "\r\n".join(out) + "\r\n"


# ----------------------------------------------------------------------------------------------- our offer
def offer(policy: SdpPolicy, *, video: bool = True) -> str:
    """Our offer (delayed offer in the 200, or dial-out): PCMU, PCMA, G.722, Opus and telephone-event;
    H.264 42e01f in mode 1 and mode 0 with `nack pli` and `ccm fir`. RTP/SAVP with a fresh key when the
    policy makes SRTP mandatory and SDES may be used; plain RTP/AVP otherwise."""
    secure = policy.srtp == "mandatory" and policy.may_sdes
    proto = "RTP/SAVP" if secure else "RTP/AVP"
    out = ["v=0", _origin(policy), "s=Yunhui", f"c=IN IP4 {policy.address}", "t=0 0"]
    out.append(f"m=audio {policy.audio_port} {proto} 0 8 9 111 101")
    out += [
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
    ]
    if secure:
        out.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 {_inline(policy.key())}")
    out.append("a=sendrecv")
    if video and policy.video_port:
        out.append(f"m=video {policy.video_port} {proto} 96 97")
        out.append(f"b=AS:{policy.video_tias // 1000}")
        out.append(f"b=TIAS:{policy.video_tias}")
        out += [
            "a=rtpmap:96 H264/90000",
            "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1",
            "a=rtpmap:97 H264/90000",
            "a=fmtp:97 profile-level-id=42e01f;packetization-mode=0",
            "a=rtcp-fb:* nack",
            "a=rtcp-fb:* nack pli",
            "a=rtcp-fb:* ccm fir",
        ]
        if secure:
            out.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 {_inline(policy.key())}")
        out.append("a=content:main")
        out.append("a=sendrecv")
    return "\r\n".join(out) + "\r\n"


def parse_answer(answer_sdp: str, our_offer: str, policy: SdpPolicy) -> SdpAnswer | SdpRejection:
    """The terminal's answer (in the ACK or the 200) to `our_offer`: what it chose, with our offered keys.

    The returned SdpAnswer's `sdp` is `our_offer` (what we sent); its lines describe the terminal's choice.
    """
    try:
        ours, theirs = _parse(our_offer), _parse(answer_sdp)
    except SdpError as exc:
        return SdpRejection(str(exc))
    if len(ours.media) != len(theirs.media):
        return SdpRejection(f"answer has {len(theirs.media)} m-lines, the offer {len(ours.media)}")
    lines: list[MediaLine] = []
    for index, (mine, section) in enumerate(zip(ours.media, theirs.media, strict=True)):
        if section.port == 0:
            lines.append(MediaLine(index, section.media, section.proto, False, reason="rejected"))
            continue
        codecs = _rtpmaps(section)
        offered = _rtpmaps(mine)
        codecs = {pt: offered.get(pt, c) if c.name.lower() != "h264" else c for pt, c in codecs.items()}
        crypto: Crypto | None = None
        if section.proto.upper() in ("RTP/SAVP", "RTP/SAVPF"):
            theirs_crypto, ours_crypto = _crypto(section), _crypto(mine)
            if theirs_crypto is None or ours_crypto is None:
                return SdpRejection(f"m-line {index}: SRTP without a usable a=crypto")
            crypto = Crypto(theirs_crypto[0], theirs_crypto[1], theirs_crypto[2], ours_crypto[2])
        elif policy.srtp == "mandatory" and policy.may_sdes:
            return SdpRejection(f"m-line {index}: the terminal answered without SRTP")
        h264 = None
        rtcp_fb: frozenset[str] = frozenset()
        telephone_event = next((c.pt for c in codecs.values() if c.name.lower() == "telephone-event"), None)
        if section.media == "audio":
            chosen = _choose_audio(codecs)
            if chosen is None:
                return SdpRejection("audio: the answer has no codec we offered")
            chosen_list = (chosen,)
        else:
            video_codec = _choose_video(codecs)
            if video_codec is None:
                lines.append(MediaLine(index, section.media, section.proto, False, reason="no H.264"))
                continue
            chosen_list, h264 = (video_codec,), _h264(video_codec)
            rtcp_fb = _feedback(section, video_codec.pt)
        rtcp_attr = (section.attrs("rtcp") or [""])[0].split()
        lines.append(
            MediaLine(
                index=index,
                media=section.media,
                proto=section.proto,
                accepted=True,
                local_port=mine.port,
                remote_address=section.connection or theirs.session.connection,
                remote_port=section.port,
                remote_rtcp_port=int(rtcp_attr[0]) if rtcp_attr and rtcp_attr[0].isdigit() else 0,
                rtcp_mux=section.has("rtcp-mux"),
                direction=_REVERSE[_direction(section, theirs.session)],
                codecs=chosen_list,
                telephone_event_pt=telephone_event if section.media == "audio" else None,
                rtcp_fb=rtcp_fb,
                h264=h264,
                tias=section.bandwidth.get("TIAS") or section.bandwidth.get("AS", 0) * 1000,
                crypto=crypto,
                content=(section.attrs("content") or [""])[0],
                label=(section.attrs("label") or [""])[0],
            )
        )
    if not any(x.accepted and x.media == "audio" for x in lines):
        return SdpRejection("the answer accepts no audio")
    return SdpAnswer(our_offer, tuple(lines))

"""What an SDP negotiation with a room terminal settles, as typed values (signaling/sip/sdp.py makes them)."""

from __future__ import annotations

import os
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

"""PlainMedia: what a plain-RTP peer (a SIP room terminal) negotiated, as plain values (no SIP types here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["audio", "video"]
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]


@dataclass(frozen=True, slots=True)
class PlainCodec:
    """One negotiated payload type of an m-line, with the terminal's payload type number."""

    pt: int
    name: str  # "H264", "PCMU", "PCMA", "G722", "opus"
    clock_rate: int
    channels: int = 1
    parameters: tuple[tuple[str, str], ...] = ()
    # ("nack", ""), ("nack", "pli"), ("ccm", "fir"), ("ccm", "tmmbr"), ("goog-remb", "") ...
    rtcp_feedback: tuple[tuple[str, str], ...] = ()

    def parameter(self, name: str, default: str = "") -> str:
        for key, value in self.parameters:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class PlainSrtp:
    """SDES keys of one m-line (RFC 4568): `local_key` protects what we send, `remote_key` unprotects."""

    suite: Literal["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    local_key: bytes  # 30 bytes: 16 key + 14 salt
    remote_key: bytes


@dataclass(frozen=True, slots=True)
class PlainStream:
    """One accepted m-line: where to send, what codecs, which keyframe requests the terminal understands."""

    kind: MediaKind
    remote_host: str
    remote_port: int
    codecs: tuple[PlainCodec, ...]  # preferred first: the first one is what we send
    remote_rtcp_port: int = 0  # 0: remote_port + 1 (or remote_port with rtcp_mux)
    rtcp_mux: bool = False
    direction: Direction = "sendrecv"  # ours, as in the answer
    telephone_event_pt: int | None = None  # audio: RFC 4733 digits on this payload type (mirrored)
    srtp: PlainSrtp | None = None
    max_fs: int = 0  # H.264 macroblocks per frame the terminal can decode (0: level default)
    max_mbps: int = 0  # macroblocks per second
    tias: int = 0  # b=TIAS in bits per second (0: not given)
    content: str = "main"

    @property
    def main(self) -> PlainCodec:
        return self.codecs[0]

    @property
    def feedback(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.main.rtcp_feedback)

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


@dataclass(frozen=True, slots=True)
class PlainMedia:
    """Everything PlainPeer.start() needs: the accepted streams (at most one audio, one video main)."""

    streams: tuple[PlainStream, ...]
    # Symmetric RTP: packets are taken only from this host (the SIP peer's address) unless latch_any is set.
    signalling_host: str = ""
    latch_any: bool = False

    def stream(self, kind: MediaKind) -> PlainStream | None:
        for stream in self.streams:
            if stream.kind == kind:
                return stream
        return None

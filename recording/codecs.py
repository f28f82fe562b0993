"""What the recorder reads in RTP payloads: frame starts, keyframes, picture sizes; depayloading.

Depayloading itself is aiortc's (pinned to one version like sfu/hook_points.py pins its hooks): VP8 strips
the payload descriptor, H.264 turns single NAL units, STAP-A and FU-A into Annex B. The rules of what starts
a frame are ours (research/recording.md §2.3): the second slice of a multi-slice H.264 IDR is a single NAL
unit too, so "not an FU-A continuation" is not a frame start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload

Depayload = Callable[[bytes], bytes]

# H.264 NAL unit types
_SLICE, _IDR, _SEI, _SPS, _PPS, _AUD, _STAP_A, _FU_A = 1, 5, 6, 7, 8, 9, 24, 28


@dataclass(frozen=True, slots=True)
class CodecRules:
    """One codec's reading of RTP payloads (video: frame start and keyframe; audio: every packet a frame)."""

    name: str
    video: bool
    depayload: Depayload
    is_start: Callable[[bytes], bool]
    is_keyframe: Callable[[bytes], bool]
    # Width and height from a keyframe (depayloaded), None when it does not say.
    size: Callable[[bytes], tuple[int, int] | None]


# ------------------------------------------------------------------------------------------------ VP8
def _vp8_descriptor_len(p: bytes) -> int:
    """Length of the VP8 payload descriptor (RFC 7741 §4.2), 0 when the payload is too short."""
    if not p:
        return 0
    n = 1
    if p[0] & 0x80:
        if len(p) < 2:
            return 0
        x = p[1]
        n = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(p) <= n:
                return 0
            n += 2 if p[n] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            n += 1
        if x & 0x30:  # T or K
            n += 1
    return n if n < len(p) else 0


def vp8_is_start(p: bytes) -> bool:
    """S=1 and partition 0: the first packet of a frame."""
    return bool(p) and (p[0] & 0x10) != 0 and (p[0] & 0x07) == 0 and _vp8_descriptor_len(p) > 0


def vp8_is_keyframe(p: bytes) -> bool:
    """The first packet of a keyframe (P bit of the VP8 payload header clear)."""
    n = _vp8_descriptor_len(p)
    return n > 0 and vp8_is_start(p) and (p[n] & 0x01) == 0


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height of a depayloaded VP8 keyframe (frame tag, start code, 14-bit sizes)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = (frame[6] | (frame[7] << 8)) & 0x3FFF
    height = (frame[8] | (frame[9] << 8)) & 0x3FFF
    return (width, height) if width and height else None


# ------------------------------------------------------------------------------------------------ H.264
def _first_nal(p: bytes) -> tuple[int, bytes] | None:
    """The type of the first NAL unit a packet starts (None for an FU-A continuation) and its body."""
    if not p:
        return None
    kind = p[0] & 0x1F
    if kind == _STAP_A:
        return (p[3] & 0x1F, p[4:]) if len(p) > 4 else None
    if kind == _FU_A:
        if len(p) < 2 or not p[1] & 0x80:
            return None
        return p[1] & 0x1F, p[2:]
    return kind, p[1:]


def h264_is_start(p: bytes) -> bool:
    """SPS, PPS, SEI or AUD first, or a slice with first_mb_in_slice == 0 (its first exp-Golomb bit is 1)."""
    first = _first_nal(p)
    if first is None:
        return False
    kind, body = first
    if kind in (_SPS, _PPS, _SEI, _AUD):
        return True
    return kind in (_SLICE, _IDR) and bool(body) and (body[0] & 0x80) != 0


def _nal_types(p: bytes) -> list[int]:
    if not p:
        return []
    kind = p[0] & 0x1F
    if kind == _STAP_A:
        types, i = [], 1
        while i + 2 < len(p):
            size = (p[i] << 8) | p[i + 1]
            types.append(p[i + 2] & 0x1F)
            i += 2 + size
        return types
    if kind == _FU_A:
        return [p[1] & 0x1F] if len(p) > 1 else []
    return [kind]


def h264_is_keyframe(p: bytes) -> bool:
    """A packet of an IDR picture (or the SPS that leads one)."""
    return any(t in (_IDR, _SPS) for t in _nal_types(p))


class _Bits:
    """Exp-Golomb reader over an RBSP (emulation prevention bytes removed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]  # IndexError past the end: the caller gives up
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def h264_sps_size(sps: bytes) -> tuple[int, int] | None:
    """Width and height (cropped) from an SPS NAL unit (with its NAL header byte)."""
    try:
        b = _Bits(sps[1:])
        profile = b.u(8)
        b.u(16)  # constraint flags, level
        b.ue()  # seq_parameter_set_id
        chroma = 1
        if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
            chroma = b.ue()
            if chroma == 3:
                b.u(1)
            b.ue()
            b.ue()
            b.u(1)
            if b.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if b.u(1):
                        last = nxt = 8
                        for _ in range(16 if i < 6 else 64):
                            if nxt:
                                nxt = (last + b.se() + 256) % 256
                            last = nxt or last
        b.ue()  # log2_max_frame_num_minus4
        poc_type = b.ue()
        if poc_type == 0:
            b.ue()
        elif poc_type == 1:
            b.u(1)
            b.se()
            b.se()
            for _ in range(b.ue()):
                b.se()
        b.ue()  # max_num_ref_frames
        b.u(1)
        width_mbs = b.ue() + 1
        height_units = b.ue() + 1
        frame_mbs_only = b.u(1)
        if not frame_mbs_only:
            b.u(1)
        b.u(1)
        left = right = top = bottom = 0
        if b.u(1):
            left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
    except (IndexError, ValueError):
        return None
    unit_x = 1 if chroma in (0, 3) else 2
    unit_y = (2 - frame_mbs_only) * (2 if chroma == 1 else 1)
    width = width_mbs * 16 - unit_x * (left + right)
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (top + bottom)
    return (width, height) if width > 0 and height > 0 else None


def h264_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from the first SPS of an Annex B access unit."""
    for nal in frame.split(b"\x00\x00\x01"):
        if nal and nal[0] & 0x1F == _SPS:
            return h264_sps_size(nal.rstrip(b"\x00"))
    return None


def h264_depayload_safe(p: bytes) -> bytes:
    """aiortc's depayloader; STAP-B, MTAP and FU-B (never sent by WebRTC) give nothing instead of raising."""
    try:
        return h264_depayload(p)
    except ValueError:
        return b""


def _audio_rule(p: bytes) -> bool:
    return True


def _no_size(frame: bytes) -> tuple[int, int] | None:
    return None


def rules_for(codec: str) -> CodecRules:
    """The rules of a codec (lower-case name as negotiated); ValueError for one we cannot record."""
    if codec == "vp8":
        return CodecRules("vp8", True, vp8_depayload, vp8_is_start, vp8_is_keyframe, vp8_size)
    if codec == "h264":
        return CodecRules("h264", True, h264_depayload_safe, h264_is_start, h264_is_keyframe, h264_size)
    if codec in ("opus", "pcmu", "pcma", "g722"):
        return CodecRules(codec, False, bytes, _audio_rule, _audio_rule, _no_size)
    raise ValueError(f"codec {codec!r} cannot be recorded (opus, pcmu, pcma, g722, vp8, h264)")

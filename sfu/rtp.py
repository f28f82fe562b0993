"""Pure functions over RTP bytes: the forwarding hot path allocates nothing beyond its output packet."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

RTP_HEADER = struct.Struct("!BBHII")
EXT_HEADER = struct.Struct("!HH")
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"


_NO_BODY = memoryview(b"")


class RtpHeader:
    """The fields of one parsed RTP packet; bounds index into the original bytes.

    Besides the header it carries what every subscriber of the packet would otherwise recompute: the
    arrival time (one clock read per input packet) and, once ``split_payload`` ran, the payload cut into the
    part a subscriber rewrites (the VP8 descriptor) and the shared rest (``body``, a view, never copied).
    """

    __slots__ = (
        "arrival",
        "body",
        "ext_end",
        "ext_profile",
        "ext_start",
        "marker",
        "payload_end",
        "payload_start",
        "pt",
        "seq",
        "split",
        "ssrc",
        "ts",
        "vp8",
    )

    def __init__(self) -> None:
        self.pt = self.marker = self.seq = self.ts = self.ssrc = 0
        self.payload_start = self.payload_end = 0
        self.ext_start = self.ext_end = self.ext_profile = 0
        self.arrival = 0.0  # time.monotonic() at arrival; 0.0 when unknown
        self.split = -1  # -1 until split_payload; then where the shared part of the payload starts
        self.body = _NO_BODY
        self.vp8 = Vp8Descriptor()


def parse_rtp(data: bytes, h: RtpHeader) -> bool:
    """Fill `h` from `data`; False when the packet is malformed (the caller drops it)."""
    if len(data) < 12:
        return False
    b0, b1, h.seq, h.ts, h.ssrc = RTP_HEADER.unpack_from(data)
    pos = 12 + ((b0 & 0x0F) << 2)
    h.ext_start = h.ext_end = h.ext_profile = 0
    if b0 & 0x10:
        if pos + 4 > len(data):
            return False
        h.ext_profile, length = EXT_HEADER.unpack_from(data, pos)
        h.ext_start = pos + 4
        pos = h.ext_end = h.ext_start + (length << 2)
    end = len(data) - (data[-1] if b0 & 0x20 else 0)
    if pos > end:
        return False
    h.pt = b1 & 0x7F
    h.marker = b1 >> 7
    h.payload_start = pos
    h.payload_end = end
    h.split = -1
    h.arrival = 0.0
    return True


def split_payload(data: bytes, h: RtpHeader, codec_name: str) -> None:
    """Cut the payload once per input packet: [payload_start, split) is rewritten per subscriber (a VP8
    descriptor with a picture id), ``h.body`` = data[split:payload_end] is shared by all of them.

    Call after any change to ``h.payload_start`` (RTX unwrap). A memoryview, because slicing bytes would
    copy the payload once more per packet; the output packet is the only copy.
    """
    split = h.payload_start
    if codec_name == "vp8" and parse_vp8(data, split, h.payload_end, h.vp8) and h.vp8.pid_bits:
        split += h.vp8.header_len
    h.split = split
    h.body = memoryview(data)[split : h.payload_end]


def get_extension(data: bytes, h: RtpHeader, ext_id: int) -> bytes | None:
    """One header-extension element by id (RFC 8285, one- and two-byte forms)."""
    if not ext_id or not h.ext_start:
        return None
    i, end = h.ext_start, h.ext_end
    if h.ext_profile == 0xBEDE:
        while i < end:
            b = data[i]
            if b == 0:
                i += 1
                continue
            xid = b >> 4
            if xid == 15:
                return None
            length = (b & 0x0F) + 1
            if xid == ext_id:
                return data[i + 1 : i + 1 + length]
            i += 1 + length
    elif (h.ext_profile & 0xFFF0) == 0x1000:
        while i + 1 < end:
            xid = data[i]
            if xid == 0:
                i += 1
                continue
            length = data[i + 1]
            if xid == ext_id:
                return data[i + 2 : i + 2 + length]
            i += 2 + length
    return None


def build_extensions(items: list[tuple[int, bytes]]) -> bytes:
    """A one-byte-header extension block from (id, value) pairs (ids 1..14, values 1..16 bytes)."""
    body = b"".join(bytes(((xid << 4) | (len(v) - 1),)) + v for xid, v in items)
    body += b"\x00" * (-len(body) % 4)
    return EXT_HEADER.pack(0xBEDE, len(body) >> 2) + body


class ExtensionTemplate:
    """A pre-built extension block [mid][one variable element]: per packet only the value is spliced in."""

    __slots__ = ("bare", "head", "tail", "value_len")

    def __init__(self, mid_id: int, mid: str, value_id: int, value_len: int) -> None:
        prefix = b""
        if mid_id and mid:
            raw = mid.encode()
            prefix = bytes(((mid_id << 4) | (len(raw) - 1),)) + raw
        self.value_len = value_len if value_id else 0
        if self.value_len:
            prefix += bytes(((value_id << 4) | (value_len - 1),))
        n = len(prefix) + self.value_len
        pad = -n % 4
        if n == 0:
            self.head = self.tail = b""
        else:
            self.head = EXT_HEADER.pack(0xBEDE, (n + pad) >> 2) + prefix
            self.tail = b"\x00" * pad
        # The block without the variable element (e.g. audio from a publisher that sends no level): built
        # once here, not once per copy.
        self.bare = _without_value(self.head) if self.value_len else self.head + self.tail

    def render(self, value: bytes | None) -> bytes:
        """The block with `value` filled in; without a value the variable element is left out."""
        if self.value_len and value is not None and len(value) == self.value_len:
            return self.head + value + self.tail
        return self.bare


def _without_value(head: bytes) -> bytes:
    body = head[4:-1]
    if not body:
        return b""
    body += b"\x00" * (-len(body) % 4)
    return EXT_HEADER.pack(0xBEDE, len(body) >> 2) + body


def abs_send_time(now: float | None = None) -> bytes:
    """24-bit 6.18 fixed-point seconds of `now` (time.monotonic()); receivers only use deltas, so the epoch
    does not matter, and the monotonic clock is the one the hot path already read for the packet."""
    t = time.monotonic() if now is None else now
    return U32.pack(int(t * 262144) & 0xFFFFFF)[1:]


def rtx_wrap(packet: bytes, header_len: int, rtx_pt: int, rtx_seq: int, rtx_ssrc: int) -> bytes:
    """RFC 4588 retransmission of an already rewritten packet: new PT/seq/SSRC, OSN before the payload."""
    b1 = (packet[1] & 0x80) | rtx_pt
    return (
        bytes((packet[0], b1))
        + U16.pack(rtx_seq)
        + packet[4:8]
        + U32.pack(rtx_ssrc)
        + packet[12:header_len]
        + packet[2:4]
        + packet[header_len:]
    )


# ---------------------------------------------------------------------------------------------- VP8
class Vp8Descriptor:
    """Where the picture id and TL0PICIDX sit in one VP8 payload descriptor (RFC 7741)."""

    __slots__ = ("header_len", "picture_id", "pid_bits", "pid_offset", "start", "tl0", "tl0_offset")

    def __init__(self) -> None:
        self.picture_id = self.pid_offset = self.pid_bits = 0
        self.tl0 = self.tl0_offset = -1
        self.header_len = 0
        self.start = False


def parse_vp8(payload: bytes, pos: int, end: int, d: Vp8Descriptor) -> bool:
    """Fill `d` for the descriptor at payload[pos:end]; offsets are absolute. False when malformed."""
    if end - pos < 1:
        return False
    b0 = payload[pos]
    i = pos + 1
    d.pid_bits = 0
    d.tl0_offset = -1
    d.start = bool(b0 & 0x10) and (b0 & 0x07) == 0
    if b0 & 0x80:
        if i >= end:
            return False
        x = payload[i]
        i += 1
        if x & 0x80:
            if i >= end:
                return False
            d.pid_offset = i
            if payload[i] & 0x80:
                if i + 1 >= end:
                    return False
                d.picture_id = ((payload[i] & 0x7F) << 8) | payload[i + 1]
                d.pid_bits = 15
                i += 2
            else:
                d.picture_id = payload[i]
                d.pid_bits = 7
                i += 1
        if x & 0x40:
            if i >= end:
                return False
            d.tl0_offset = i
            d.tl0 = payload[i]
            i += 1
        if x & 0x30:
            i += 1
    if i > end:
        return False
    d.header_len = i - pos
    return True


def vp8_is_keyframe(payload: bytes, pos: int, end: int) -> bool:
    d = Vp8Descriptor()
    if not parse_vp8(payload, pos, end, d) or not d.start:
        return False
    i = pos + d.header_len
    return i < end and not (payload[i] & 0x01)


def vp8_keyframe_size(payload: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's first packet (frame tag, start code, 14-bit sizes)."""
    d = Vp8Descriptor()
    if not parse_vp8(payload, pos, end, d) or not d.start:
        return None
    i = pos + d.header_len
    if end - i < 10 or payload[i] & 0x01 or payload[i + 3 : i + 6] != b"\x9d\x01\x2a":
        return None
    width = (payload[i + 6] | (payload[i + 7] << 8)) & 0x3FFF
    height = (payload[i + 8] | (payload[i + 9] << 8)) & 0x3FFF
    return width, height


# ---------------------------------------------------------------------------------------------- H.264
def h264_is_keyframe(payload: bytes, pos: int, end: int) -> bool:
    if end <= pos:
        return False
    nal = payload[pos] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A
        i = pos + 1
        while i + 2 < end:
            size = U16.unpack_from(payload, i)[0]
            if (payload[i + 2] & 0x1F) in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28 and end - pos > 1:  # FU-A: the first fragment of an IDR
        return bool(payload[pos + 1] & 0x80) and (payload[pos + 1] & 0x1F) == 5
    return False


# ---------------------------------------------------------------------------------------------- VP9, AV1
def vp9_is_keyframe(payload: bytes, pos: int, end: int) -> bool:
    """The first packet of a VP9 key picture (RFC 9628 §4.2): B (start of frame) set, P (inter-picture
    predicted) clear, and the base spatial layer when layer indices are present."""
    if end <= pos:
        return False
    b = payload[pos]
    if b & 0x40 or not b & 0x08:  # P set, or not the beginning of a frame
        return False
    if not b & 0x20:  # no layer indices: a single spatial layer
        return True
    i = pos + 1
    if b & 0x80:  # picture id, 7 or 15 bits (M)
        if i >= end:
            return False
        i += 2 if payload[i] & 0x80 else 1
    return i < end and (payload[i] >> 1) & 0x07 == 0  # SID


def av1_is_keyframe(payload: bytes, pos: int, end: int) -> bool:
    """The first packet of a new coded video sequence (AV1 RTP spec §4.4, aggregation header N bit): what
    an encoder sends for a keyframe asked for by PLI."""
    return end > pos and bool(payload[pos] & 0x08)


KeyframeDetector = Callable[[bytes, int, int], bool]
KEYFRAME_DETECTORS: dict[str, KeyframeDetector] = {
    "vp8": vp8_is_keyframe,
    "h264": h264_is_keyframe,
    "vp9": vp9_is_keyframe,
    "av1": av1_is_keyframe,
}


def seq_newer(a: int, b: int) -> bool:
    """True when 16-bit sequence number `a` comes after `b` (RFC 3550 wrap-around)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000

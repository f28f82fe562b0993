"""Transport-wide congestion control feedback for publishers (draft-holmer-rmcat-transport-wide-cc-ext).

With REMB alone a browser publisher starts blind and ramps up by its loss-based control only. Told the
arrival time of every packet (the transport-wide sequence number in a header extension, and an RTCP
transport-feedback packet from us about every 100 ms), Chrome runs its delay-based estimator, probes, and
backs off before a bottleneck drops anything. aiortc has none of it: the SFU adds the extension and the
``transport-cc`` feedback to the publish answer (``answer_with_transport_cc``) and builds the feedback here.
Pure: arrivals come in with their time.
"""

from __future__ import annotations

import struct

URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

FEEDBACK_INTERVAL_S = 0.1
_TICK_US = 250  # receive deltas are in 250 µs
_REFERENCE_US = 64_000  # the reference time is in 64 ms
_MAX_PACKETS = 400  # per feedback packet: about 800 bytes at most, well under any MTU
_RECEIVED_SMALL, _RECEIVED_LARGE, _NOT_RECEIVED = 1, 2, 0
_RTPFB, _FMT_TRANSPORT_CC = 205, 15
# Arrivals kept while waiting to be reported: a publisher's packets of a few seconds, then the oldest go.
_MAX_PENDING = 8192


class TransportFeedback:
    """Arrivals of one publish connection's packets; ``build`` returns the RTCP packets that report them."""

    def __init__(self) -> None:
        self._arrivals: dict[int, int] = {}  # unwrapped sequence number -> arrival (µs)
        self._highest: int | None = None  # unwrapped
        self._next: int | None = None  # the first sequence number not yet reported
        self._count = 0  # feedback packet count, 8 bits
        self.last_sent = 0.0

    def record(self, sequence: int, arrival_us: int) -> None:
        """One packet's transport-wide sequence number (16 bits) and its arrival time."""
        if self._highest is None:
            unwrapped = sequence
        else:
            delta = (sequence - self._highest) & 0xFFFF
            unwrapped = self._highest + delta if delta < 0x8000 else self._highest + delta - 0x10000
        if self._next is not None and unwrapped < self._next:
            return  # already reported (as lost): too late to count
        self._arrivals.setdefault(unwrapped, arrival_us)
        if self._highest is None or unwrapped > self._highest:
            self._highest = unwrapped
        if self._next is None:
            self._next = unwrapped
        if len(self._arrivals) > _MAX_PENDING:
            self._next = self._highest - _MAX_PENDING // 2
            self._arrivals = {s: t for s, t in self._arrivals.items() if s >= self._next}

    def build(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Feedback for every packet since the last call (each sequence number is reported once)."""
        packets: list[bytes] = []
        while self._next is not None and self._highest is not None and self._next <= self._highest:
            first = min((s for s in self._arrivals if s >= self._next), default=None)
            if first is None:
                break
            # From the first one not reported: the packets lost before the first that arrived are said too.
            base = self._next if first - self._next < _MAX_PACKETS // 2 else first
            last = min(self._highest, base + _MAX_PACKETS - 1)
            packet, reported_to = self._packet(base, first, last, sender_ssrc, media_ssrc)
            packets.append(packet)
            for seq in range(self._next, reported_to + 1):
                self._arrivals.pop(seq, None)
            self._next = reported_to + 1
        return packets

    def _packet(
        self, base: int, first: int, last: int, sender_ssrc: int, media_ssrc: int
    ) -> tuple[bytes, int]:
        reference = self._arrivals[first] // _REFERENCE_US
        previous = reference * (_REFERENCE_US // _TICK_US)
        symbols: list[int] = []
        deltas = bytearray()
        reported_to = base
        for seq in range(base, last + 1):
            arrival = self._arrivals.get(seq)
            if arrival is None:
                symbols.append(_NOT_RECEIVED)
                reported_to = seq
                continue
            ticks = (arrival + _TICK_US // 2) // _TICK_US
            delta = ticks - previous
            if 0 <= delta <= 0xFF:
                symbols.append(_RECEIVED_SMALL)
                deltas.append(delta)
            elif -0x8000 <= delta <= 0x7FFF:
                symbols.append(_RECEIVED_LARGE)
                deltas += struct.pack("!h", delta)
            else:
                break  # more than 8 s apart: the rest goes in the next packet, with its own reference
            previous = ticks
            reported_to = seq
        while symbols and symbols[-1] == _NOT_RECEIVED:
            symbols.pop()  # trailing losses are said later, once a packet after them arrives
            reported_to -= 1
        chunks = bytearray()
        for i in range(0, len(symbols), 7):
            group = symbols[i : i + 7]
            group += [_NOT_RECEIVED] * (7 - len(group))
            chunk = 0xC000  # status vector chunk of 2-bit symbols
            for n, symbol in enumerate(group):
                chunk |= symbol << (12 - 2 * n)
            chunks += struct.pack("!H", chunk)
        body = (
            struct.pack(
                "!IIHHI",
                sender_ssrc,
                media_ssrc,
                base & 0xFFFF,
                len(symbols),
                ((reference & 0xFFFFFF) << 8) | self._count,
            )
            + chunks
            + deltas
        )
        self._count = (self._count + 1) & 0xFF
        padding = -(4 + len(body)) % 4
        if padding:
            body += bytes(padding - 1) + bytes([padding])
        header = struct.pack(
            "!BBH", 0x80 | (0x20 if padding else 0) | _FMT_TRANSPORT_CC, _RTPFB, (4 + len(body)) // 4 - 1
        )
        return header + body, reported_to


def parse_feedback(packet: bytes) -> tuple[int, list[tuple[int, int | None]]]:
    """The feedback count and (sequence number, arrival µs or None) of one of our packets (for tests)."""
    first, pt, _ = struct.unpack_from("!BBH", packet)
    if pt != _RTPFB or first & 0x1F != _FMT_TRANSPORT_CC:
        raise ValueError("not a transport-cc feedback packet")
    end = len(packet) - (packet[-1] if first & 0x20 else 0)
    _, _, base, count, word = struct.unpack_from("!IIHHI", packet, 4)
    reference, feedback_count = word >> 8, word & 0xFF
    if reference & 0x800000:
        reference -= 0x1000000
    offset = 20
    symbols: list[int] = []
    while len(symbols) < count:
        (chunk,) = struct.unpack_from("!H", packet, offset)
        offset += 2
        if chunk & 0x8000 == 0:  # run length
            symbols += [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
        elif chunk & 0x4000:
            symbols += [(chunk >> (12 - 2 * n)) & 0x3 for n in range(7)]
        else:
            symbols += [(chunk >> (13 - n)) & 0x1 for n in range(14)]
    ticks = reference * (_REFERENCE_US // _TICK_US)
    result: list[tuple[int, int | None]] = []
    for n, symbol in enumerate(symbols[:count]):
        seq = (base + n) & 0xFFFF
        if symbol == _NOT_RECEIVED:
            result.append((seq, None))
            continue
        if symbol == _RECEIVED_SMALL:
            ticks += packet[offset]
            offset += 1
        else:
            ticks += struct.unpack_from("!h", packet, offset)[0]
            offset += 2
        result.append((seq, ticks * _TICK_US))
    if offset > end:
        raise ValueError("feedback packet shorter than its deltas")
    return feedback_count, result


def offered_extension_id(offer_sdp: str) -> int:
    """The id the offer gives the transport-wide sequence number extension (0: not offered)."""
    for line in offer_sdp.splitlines():
        if line.startswith("a=extmap:") and line.split()[1:2] == [URI_TRANSPORT_CC]:
            try:
                value = int(line[9:].split()[0].split("/")[0])
            except ValueError:
                return 0
            return value if 1 <= value <= 255 else 0
    return 0


def answer_with_transport_cc(offer_sdp: str, answer_sdp: str) -> str:
    """Add the transport-wide sequence number extension and ``transport-cc`` feedback to the answer's
    m-sections whose offer has them, with the offer's extension id (aiortc answers neither)."""
    offered: dict[
        str, tuple[str | None, set[str]]
    ] = {}  # mid -> (extmap id, payload types with the feedback)
    mid: str | None = None
    ext_id: str | None = None
    pts: set[str] = set()
    for line in [*offer_sdp.splitlines(), "m="]:
        if line.startswith("m="):
            if mid is not None:
                offered[mid] = (ext_id, pts)
            mid, ext_id, pts = None, None, set()
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=extmap:") and line.split()[1:2] == [URI_TRANSPORT_CC]:
            ext_id = line[9:].split()[0].split("/")[0]
        elif line.startswith("a=rtcp-fb:") and line.split()[1:2] == ["transport-cc"]:
            pts.add(line[10:].split()[0])
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        section_mid = next((x[6:].strip() for x in section if x.startswith("a=mid:")), None)
        ext, feedback = offered.get(section_mid or "", (None, set()))
        extra: list[str] = []
        if ext is not None:
            extra.append(f"a=extmap:{ext} {URI_TRANSPORT_CC}")
        answered = [x.split()[0][9:] for x in section if x.startswith("a=rtpmap:")]
        extra += [f"a=rtcp-fb:{pt} transport-cc" for pt in answered if pt in feedback]
        if ext is None:
            extra = []  # feedback without the extension means nothing
        out.extend(section + extra)
        section.clear()

    for line in answer_sdp.splitlines():
        if line.startswith("m=") and section:
            flush()
        if line.startswith("m=") or section:
            section.append(line)
        else:
            out.append(line)
    if section:
        flush()
    return "\r\n".join(out) + "\r\n"

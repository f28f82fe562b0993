"""SMS segmentation: how a text is encoded and split into parts, as the carriers count and bill them.

GSM-7 (GSM 03.38 with its extension table) when every character is in it, else UCS-2. One SMS holds 160
septets or 70 UTF-16 units; a concatenated message's parts carry a 6-octet UDH (8-bit reference) and hold
153 septets or 67 units. An extension character is an escape plus a code (two septets) and a character
outside the BMP is a surrogate pair: neither is ever split between parts. Pure functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 basic table in septet order; 0x1B is the escape to the extension table, never a character.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E}
_EXTENSION |= {"|": 0x40, "€": 0x65}
ESCAPE = 0x1B
GSM_BASIC = {char: code for code, char in enumerate(_BASIC) if code != ESCAPE}
GSM_EXTENSION = dict(_EXTENSION)
_DECODE_BASIC = {code: char for char, code in GSM_BASIC.items()}
_DECODE_EXTENSION = {code: char for char, code in GSM_EXTENSION.items()}

MAX_PARTS = 255


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """The SMPP data_coding of the encoding (0: the SMSC default alphabet, GSM-7 here; 8: UCS-2)."""
        return 0 if self is Encoding.GSM7 else 8

    @property
    def single_limit(self) -> int:
        return 160 if self is Encoding.GSM7 else 70

    @property
    def part_limit(self) -> int:
        return 153 if self is Encoding.GSM7 else 67


class SmsTooLong(ValueError):
    """The text needs more than 255 parts (or is empty): no carrier accepts it."""


@dataclass(frozen=True)
class Segmentation:
    """A text's encoding and parts; `units` counts septets (GSM-7) or UTF-16 units (UCS-2)."""

    encoding: Encoding
    parts: tuple[str, ...]
    units: int

    @property
    def count(self) -> int:
        return len(self.parts)

    @property
    def characters(self) -> int:
        return sum(len(part) for part in self.parts)


def is_gsm7(text: str) -> bool:
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def char_units(char: str, encoding: Encoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of one character."""
    if encoding is Encoding.GSM7:
        return 2 if char in GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def text_units(text: str, encoding: Encoding) -> int:
    return sum(char_units(char, encoding) for char in text)


def segment(text: str) -> Segmentation:
    """Split `text` into the parts it is sent (and billed) as; raises SmsTooLong past 255 parts."""
    if not text:
        raise SmsTooLong("an SMS needs at least one character")
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    total = text_units(text, encoding)
    if total <= encoding.single_limit:
        return Segmentation(encoding, (text,), total)
    limit = encoding.part_limit
    parts: list[str] = []
    current: list[str] = []
    used = 0
    # Python strings hold code points, so a surrogate pair (and an escape plus its code) is one item here
    # and is moved whole into the next part when it does not fit.
    for char in text:
        size = char_units(char, encoding)
        if used + size > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += size
    parts.append("".join(current))
    if len(parts) > MAX_PARTS:
        raise SmsTooLong(f"the text needs {len(parts)} parts; at most {MAX_PARTS} can be concatenated")
    return Segmentation(encoding, tuple(parts), total)


def encode_text(text: str, encoding: Encoding) -> bytes:
    """GSM-7 unpacked (one octet per septet, as SMPP carries data_coding 0), or UTF-16BE for UCS-2."""
    if encoding is Encoding.UCS2:
        return text.encode("utf-16-be")
    out = bytearray()
    for char in text:
        if char in GSM_BASIC:
            out.append(GSM_BASIC[char])
        elif char in GSM_EXTENSION:
            out += bytes((ESCAPE, GSM_EXTENSION[char]))
        else:
            raise ValueError(f"{char!r} is not in the GSM 03.38 alphabet")
    return bytes(out)


def decode_text(data: bytes, encoding: Encoding) -> str:
    if encoding is Encoding.UCS2:
        return data.decode("utf-16-be")
    chars: list[str] = []
    escaped = False
    for octet in data:
        if escaped:
            chars.append(_DECODE_EXTENSION.get(octet, " "))
            escaped = False
        elif octet == ESCAPE:
            escaped = True
        else:
            chars.append(_DECODE_BASIC.get(octet, " "))
    return "".join(chars)


def udh(reference: int, total: int, seq: int) -> bytes:
    """The concatenation header with an 8-bit reference: 05 00 03 ref total seq."""
    if not (0 <= reference <= 255 and 1 <= seq <= total <= MAX_PARTS):
        raise ValueError(f"bad concatenation header ref={reference} total={total} seq={seq}")
    return bytes((5, 0, 3, reference, total, seq))


@dataclass(frozen=True)
class Pdu:
    """One part ready for submit_sm: its short_message octets and whether they start with a UDH."""

    seq: int
    total: int
    text: str
    short_message: bytes
    data_coding: int
    udhi: bool


def pdus(segmentation: Segmentation, reference: int) -> tuple[Pdu, ...]:
    """The submit_sm payloads of a segmentation; a single part carries no UDH."""
    encoding = segmentation.encoding
    total = segmentation.count
    out = []
    for seq, text in enumerate(segmentation.parts, start=1):
        body = encode_text(text, encoding)
        header = udh(reference, total, seq) if total > 1 else b""
        out.append(Pdu(seq, total, text, header + body, encoding.data_coding, total > 1))
    return tuple(out)


@dataclass(frozen=True)
class ParsedPart:
    """What an SMSC sees in one submit_sm: the concatenation header (if any) and the text."""

    reference: int | None
    total: int
    seq: int
    text: str


def parse_short_message(short_message: bytes, *, data_coding: int, udhi: bool) -> ParsedPart:
    """Read a submit_sm's payload back (the test SMSC and receipts of MO concatenations use it)."""
    encoding = Encoding.UCS2 if data_coding == 8 else Encoding.GSM7
    if not udhi:
        return ParsedPart(None, 1, 1, decode_text(short_message, encoding))
    length = short_message[0]
    header = short_message[1 : 1 + length]
    reference: int | None = None
    total = seq = 1
    i = 0
    while i + 1 < len(header):
        ie, size = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + size]
        if ie == 0x00 and size == 3:
            reference, total, seq = value[0], value[1], value[2]
        elif ie == 0x08 and size == 4:
            reference, total, seq = int.from_bytes(value[:2], "big"), value[2], value[3]
        i += 2 + size
    return ParsedPart(reference, total, seq, decode_text(short_message[1 + length :], encoding))


@dataclass(frozen=True)
class Preview:
    """What an admin sees before saving or sending: the signed text's size and part count."""

    characters: int
    encoding: Encoding
    units: int
    parts: int
    part_limit: int


def preview(text: str, signature: str = "") -> Preview:
    """The part count of `text` as sent, with the signature (e.g. 【云会】) carriers prepend and count."""
    signed = f"{signature}{text}"
    seg = segment(signed)
    limit = seg.encoding.single_limit if seg.count == 1 else seg.encoding.part_limit
    return Preview(len(signed), seg.encoding, seg.units, seg.count, limit)

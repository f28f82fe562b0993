"""What an SMSC sends us in deliver_sm: delivery receipts (one per part) and MO messages (opt-outs).

Parsed from the raw PDU, not from the client library's decoded object: receipt formats vary by SMSC (SMPP
3.4 Appendix B is informative only), so the text and the TLVs are both read and the TLVs win.
Pure functions only.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from notify.sms import Encoding, decode_text, parse_short_message

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
HEADER = 16
UDHI = 0x40
TON_INTERNATIONAL = 1

# The MO replies that stop reminder SMS to the sender's number (MIIT: an easy way to refuse, honoured).
OPT_OUT_WORDS = frozenset({"T", "TD", "STOP", "退订", "UNSUBSCRIBE"})


class ReceiptState(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    ENROUTE = "enroute"  # an intermediate notice: nothing changes


# SMPP 3.4 stat words (Appendix B) and message_state values (5.3.2.35).
_STAT = {
    "DELIVRD": ReceiptState.DELIVERED,
    "UNDELIV": ReceiptState.FAILED,
    "REJECTD": ReceiptState.FAILED,
    "EXPIRED": ReceiptState.FAILED,
    "DELETED": ReceiptState.FAILED,
    "ACCEPTD": ReceiptState.UNKNOWN,
    "UNKNOWN": ReceiptState.UNKNOWN,
    "ENROUTE": ReceiptState.ENROUTE,
}
_MESSAGE_STATE = {
    1: ReceiptState.ENROUTE,
    2: ReceiptState.DELIVERED,
    3: ReceiptState.FAILED,
    4: ReceiptState.FAILED,
    5: ReceiptState.FAILED,
    6: ReceiptState.UNKNOWN,
    7: ReceiptState.UNKNOWN,
    8: ReceiptState.FAILED,
}
_STAT_NAMES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD"}
_STAT_NAMES |= {7: "UNKNOWN", 8: "REJECTD"}


class MalformedPdu(ValueError):
    """A deliver_sm that cannot be read; it is acknowledged and logged, never raised further."""


@dataclass(frozen=True)
class DeliverSm:
    """The fields of a deliver_sm that matter here."""

    source_addr: str
    source_ton: int
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_receipt(self) -> bool:
        return (self.esm_class & 0b0011_1100) == 0b0000_0100


@dataclass(frozen=True)
class Receipt:
    """The final (or intermediate) state of one accepted part, matched by the SMSC's message id."""

    message_id: str
    state: ReceiptState
    stat: str
    error: str | None = None
    done_at: datetime | None = None


@dataclass(frozen=True)
class MoMessage:
    """A message a handset sent to our source address."""

    sender: str  # E.164 when the number is international or recognisable
    text: str

    @property
    def is_opt_out(self) -> bool:
        return is_opt_out(self.text)


def _cstring(data: bytes, i: int, limit: int = 65) -> tuple[str, int]:
    end = data.find(b"\x00", i, i + limit + 1)
    if end < 0:
        raise MalformedPdu("a C-octet string has no terminator")
    return data[i:end].decode("latin-1"), end + 1


def _byte(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data):
        raise MalformedPdu("the PDU ends inside its mandatory fields")
    return data[i], i + 1


def parse_deliver_sm(pdu: bytes) -> DeliverSm:
    """Read a whole deliver_sm PDU (header included)."""
    if len(pdu) < HEADER:
        raise MalformedPdu("shorter than a PDU header")
    length = struct.unpack_from("!I", pdu)[0]
    if length != len(pdu):
        raise MalformedPdu("command_length does not match the PDU")
    i = HEADER
    _service_type, i = _cstring(pdu, i, 6)
    source_ton, i = _byte(pdu, i)
    _source_npi, i = _byte(pdu, i)
    source, i = _cstring(pdu, i, 21)
    _dest_ton, i = _byte(pdu, i)
    _dest_npi, i = _byte(pdu, i)
    destination, i = _cstring(pdu, i, 21)
    esm_class, i = _byte(pdu, i)
    i += 2  # protocol_id, priority_flag
    _schedule, i = _cstring(pdu, i, 17)
    _validity, i = _cstring(pdu, i, 17)
    i += 2  # registered_delivery, replace_if_present_flag
    data_coding, i = _byte(pdu, i)
    i += 1  # sm_default_msg_id
    sm_length, i = _byte(pdu, i)
    if i + sm_length > len(pdu):
        raise MalformedPdu("short_message runs past the PDU")
    short_message = pdu[i : i + sm_length]
    i += sm_length
    tlvs: dict[int, bytes] = {}
    while i + 4 <= len(pdu):
        tag, size = struct.unpack_from("!HH", pdu, i)
        tlvs[tag] = pdu[i + 4 : i + 4 + size]
        i += 4 + size
    return DeliverSm(source, source_ton, destination, esm_class, data_coding, short_message, tlvs)


def decode_message(message: DeliverSm) -> str:
    """The text of a deliver_sm in its data_coding (UDH removed); unknown codings read as Latin-1."""
    udhi = bool(message.esm_class & UDHI)
    if message.data_coding in (0, 8):
        return parse_short_message(message.short_message, data_coding=message.data_coding, udhi=udhi).text
    body = message.short_message
    if udhi and body:
        body = body[1 + body[0] :]
    if message.data_coding == 1:
        return body.decode("ascii", "replace")
    return body.decode("latin-1")


_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):", re.IGNORECASE)


def receipt_fields(text: str) -> dict[str, str]:
    """The `key:value` fields of an Appendix B receipt text (`text:` runs to the end)."""
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for n, match in enumerate(matches):
        key = match.group(1).lower()
        end = len(text) if key == "text" or n + 1 == len(matches) else matches[n + 1].start()
        fields.setdefault(key, text[match.end() : end].strip())
    return fields


def _smpp_time(value: str | None) -> datetime | None:
    # YYMMDDhhmm, or YYMMDDhhmmss as many SMSCs send; the SMSC's clock is taken as UTC.
    if value is None or not value.isdigit() or len(value) not in (10, 12):
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def parse_receipt(message: DeliverSm) -> Receipt | None:
    """The receipt carried by a deliver_sm, or None when it names no message id."""
    text = decode_text(message.short_message, Encoding.GSM7) if message.data_coding == 0 else ""
    if not text:
        text = message.short_message.decode("latin-1")
    fields = receipt_fields(text)
    raw_id = message.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    message_id = raw_id.rstrip(b"\x00").decode("latin-1") if raw_id else fields.get("id", "")
    if not message_id:
        return None
    state_tlv = message.tlvs.get(TLV_MESSAGE_STATE)
    if state_tlv:
        code = state_tlv[0]
        state = _MESSAGE_STATE.get(code, ReceiptState.UNKNOWN)
        stat = _STAT_NAMES.get(code, f"state {code}")
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
        state = _STAT.get(stat, ReceiptState.UNKNOWN)
    error = fields.get("err")
    network = message.tlvs.get(TLV_NETWORK_ERROR_CODE)
    if network and len(network) == 3:
        error = f"network {network[0]}:{int.from_bytes(network[1:], 'big')}"
    if error is not None and error.strip("0") == "":
        error = None
    if state is not ReceiptState.DELIVERED and error is None and state is ReceiptState.FAILED:
        error = stat
    return Receipt(message_id, state, stat, error, _smpp_time(fields.get("done date")))


def normalize_number(addr: str, ton: int, default_country_code: str) -> str:
    """A handset's number as E.164: international numbers get their +, national ones the default code."""
    digits = "".join(c for c in addr if c.isdigit())
    if addr.startswith("+") or ton == TON_INTERNATIONAL:
        return f"+{digits}"
    if default_country_code and digits.startswith(default_country_code) and len(digits) > 11:
        return f"+{digits}"
    if default_country_code:
        return f"+{default_country_code}{digits.lstrip('0')}"
    return digits


def is_opt_out(text: str) -> bool:
    """True for an opt-out reply: T, TD, STOP, 退订 … in any case, width or surrounding punctuation."""
    word = unicodedata.normalize("NFKC", text).strip().strip("。.!！ \t\r\n").upper()
    return word in OPT_OUT_WORDS


def classify(pdu: bytes, *, default_country_code: str) -> Receipt | MoMessage | None:
    """A deliver_sm as a receipt or an MO message; None for a receipt without a message id."""
    message = parse_deliver_sm(pdu)
    if message.is_receipt:
        return parse_receipt(message)
    sender = normalize_number(message.source_addr, message.source_ton, default_country_code)
    return MoMessage(sender, decode_message(message))

"""DTMF from a SIP leg: RFC 4733 packets (decoded in sfu/dtmf.py, PlainPeer.on_dtmf) and SIP INFO bodies."""

from __future__ import annotations

from sfu.dtmf import EVENTS, DigitCollector, TelephoneEvent, parse_event

__all__ = ["EVENTS", "DigitCollector", "TelephoneEvent", "info_digit", "parse_event"]


def info_digit(content_type: str, body: str) -> str | None:
    """The digit of a SIP INFO: `application/dtmf-relay` (``Signal=5``) or `application/dtmf` (``5``)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == "application/dtmf-relay":
        for line in body.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                return _digit(value.strip())
        return None
    if kind == "application/dtmf":
        return _digit(body.strip())
    return None


def _digit(text: str) -> str | None:
    if text.isdigit() and len(text) > 1 and int(text) < len(EVENTS):
        return EVENTS[int(text)]  # "10" is *, "11" is #
    text = text.upper()
    return text if len(text) == 1 and text in EVENTS else None

"""RFC 4733 digits from a terminal's audio socket (PT mirrored from its offer, end retransmits counted once)
and the SIP INFO forms."""

from __future__ import annotations

import asyncio
import struct

import pytest

from sfu.dtmf import DigitCollector, parse_event
from signaling.sip.dtmf import info_digit
from tests.sfu.conftest import Meeting
from tests.sip.test_sip_plain import Terminal

pytestmark = pytest.mark.timeout(30)


def _event(digit: int, *, end: bool, duration: int) -> bytes:
    return struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)


def _rtp(pt: int, seq: int, ts: int, payload: bytes, *, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, 0xD7AF0001) + payload


def _digit_packets(digit: int, seq: int, ts: int, pt: int) -> list[bytes]:
    """One key press as a terminal sends it: start (marker), updates, then the end packet three times."""
    packets = [_rtp(pt, seq, ts, _event(digit, end=False, duration=160), marker=True)]
    packets += [_rtp(pt, seq + i, ts, _event(digit, end=False, duration=160 * (i + 1))) for i in (1, 2)]
    packets += [_rtp(pt, seq + 3 + i, ts, _event(digit, end=True, duration=640)) for i in range(3)]
    return packets


def test_collector_counts_each_event_once() -> None:
    collector = DigitCollector()
    digits = []
    for ts, digit in ((1000, 4), (2000, 11), (3000, 4)):  # 4, #, 4 again: a new event, a new timestamp
        for packet in _digit_packets(digit, 0, ts, 101):
            found = collector.packet(packet[12:], ts)
            if found is not None:
                digits.append(found)
    assert digits == ["4", "#", "4"]
    assert parse_event(b"\x01") is None
    event = parse_event(_event(16, end=True, duration=10))
    assert event is not None and event.digit is None  # a flash hook, not a digit


async def test_digits_from_the_terminals_socket_on_its_own_payload_type() -> None:
    meeting = Meeting()
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join(te_pt=119)
        assert terminal.answer is not None and terminal.answer.audio is not None
        assert terminal.answer.audio.telephone_event_pt == 119
        digits: list[str] = []
        audio: list[int] = []
        got = asyncio.Event()

        def on_dtmf(digit: str) -> None:
            digits.append(digit)
            got.set()

        peer.on_dtmf = on_dtmf
        peer.on_audio = lambda payload, pt, ts: audio.append(pt)
        terminal.audio.send(_rtp(9, 1, 160, b"\x00" * 160))  # G.722 speech: not a digit
        seq = 10
        for ts, digit in ((8000, 4), (9600, 11)):
            for packet in _digit_packets(digit, seq, ts, 119):
                terminal.audio.send(packet)
            seq += 6
        terminal.audio.send(_rtp(101, seq, 20000, _event(7, end=True, duration=640)))  # not the negotiated PT
        while len(digits) < 2:
            got.clear()
            await asyncio.wait_for(got.wait(), 5)
        for _ in range(20):
            await asyncio.sleep(0.01)  # later datagrams would add a wrong digit: let them arrive
        assert digits == ["4", "#"]
        assert audio == [9]
    finally:
        terminal.close()
        await meeting.close()


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", "Signal= #\r\nDuration= 250", "#"),
        ("application/dtmf-relay", "Signal=11\r\nDuration=160", "#"),
        ("Application/DTMF", "*", "*"),
        ("application/dtmf", "10", "*"),
        ("application/dtmf-relay", "Duration=160", None),
        ("application/dtmf-relay", "Signal=X", None),
        ("text/plain", "5", None),
    ],
)
def test_info_bodies(content_type: str, body: str, digit: str | None) -> None:
    assert info_digit(content_type, body) == digit

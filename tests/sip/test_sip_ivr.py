"""The IVR lobby as a state machine on an injected clock, the INFO digit formats, and its media."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import av
import pytest

from signaling.sip.dialplan import Direct, Lobby
from signaling.sip.ivr import Attempt, DigitCollector, Goodbye, Ivr, Play, Refusal, Step, info_digit
from signaling.sip.ivr_media import CODECS, PromptLibrary, make_slate

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def type_digits(ivr: Ivr, digits: str, start: float) -> list[object]:
    actions: list[object] = []
    for i, d in enumerate(digits):
        actions += ivr.digit(d, at(start + i * 0.3))
    return actions


def test_lobby_collects_the_meeting_number_until_pound() -> None:
    ivr = Ivr(Lobby())
    assert ivr.start(at(0)) == [Play("welcome")]
    assert type_digits(ivr, "12345", 1) == []
    assert ivr.digit("#", at(3)) == [Attempt("12345", None)]
    assert ivr.step is Step.CHECKING
    assert ivr.digit("9", at(4)) == []  # ignored while the attempt is out
    assert ivr.joined() == []
    assert ivr.deadline() is None and not ivr.collecting


def test_five_seconds_between_digits_ends_the_input() -> None:
    ivr = Ivr(Lobby())
    ivr.start(at(0))
    type_digits(ivr, "123", 1)
    assert ivr.deadline() == at(1.6 + 5)
    assert ivr.tick(at(6.5)) == []
    assert ivr.tick(at(6.6)) == [Attempt("123", None)]


def test_silence_reprompts_and_three_wrong_numbers_say_goodbye() -> None:
    ivr = Ivr(Lobby())
    ivr.start(at(0))
    assert ivr.tick(at(15)) == [Play("welcome")]  # nothing typed: asked again (attempt 1)
    type_digits(ivr, "1#", 16)
    assert ivr.refused(Refusal.NO_SUCH_MEETING, at(17)) == [Play("unknown_meeting")]  # attempt 2
    type_digits(ivr, "2#", 18)
    assert ivr.refused(Refusal.NO_SUCH_MEETING, at(19)) == [Goodbye("ivr_failed", "unknown_meeting")]
    assert ivr.step is Step.DONE and ivr.deadline() is None


def test_meeting_at_prompts_for_the_passcode_three_tries() -> None:
    ivr = Ivr(Direct("123456789"))
    assert ivr.start(at(0)) == [Attempt("123456789", None)]
    assert ivr.refused(Refusal.WRONG_PASSCODE, at(0.1)) == [Play("passcode")]
    assert type_digits(ivr, "11#", 1) == [Attempt("123456789", "11")]
    assert ivr.refused(Refusal.WRONG_PASSCODE, at(2)) == [Play("wrong_passcode")]
    assert type_digits(ivr, "22#", 3) == [Attempt("123456789", "22")]
    assert ivr.refused(Refusal.WRONG_PASSCODE, at(4)) == [Play("wrong_passcode")]
    assert type_digits(ivr, "*9933#", 5) == [Attempt("123456789", "9933")]  # `*` cleared the typing
    assert ivr.refused(Refusal.WRONG_PASSCODE, at(6)) == [Goodbye("ivr_failed", "wrong_passcode")]


def test_meeting_dot_passcode_joins_directly_and_a_wrong_one_counts() -> None:
    ivr = Ivr(Direct("123456789", "4321"))
    assert ivr.start(at(0)) == [Attempt("123456789", "4321")]
    assert ivr.waiting() == [Play("lobby")]
    assert ivr.joined() == []
    wrong = Ivr(Direct("123456789", "0000"))
    wrong.start(at(0))
    assert wrong.refused(Refusal.WRONG_PASSCODE, at(0.1)) == [Play("wrong_passcode")]


def test_an_unknown_direct_meeting_falls_back_to_typing() -> None:
    ivr = Ivr(Direct("999"))
    ivr.start(at(0))
    assert ivr.refused(Refusal.NO_SUCH_MEETING, at(0.1)) == [Play("unknown_meeting")]
    assert type_digits(ivr, "123#", 1) == [Attempt("123", None)]


@pytest.mark.parametrize(
    ("refusal", "prompt"),
    [(Refusal.FULL, "full"), (Refusal.LOCKED, "locked"), (Refusal.TOO_MANY_ATTEMPTS, "try_later")],
)
def test_final_refusals_say_why_then_goodbye(refusal: Refusal, prompt: str) -> None:
    ivr = Ivr(Direct("1", "2"))
    ivr.start(at(0))
    assert ivr.refused(refusal, at(1)) == [Goodbye(refusal.value, prompt)]


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("Application/DTMF-Relay; charset=x", b"signal= #\r\nDuration=250", "#"),
        ("application/dtmf", b"*", "*"),
        ("application/dtmf", b"11", "#"),
        ("application/dtmf", b"", None),
        ("application/dtmf-relay", b"Duration=160", None),
        ("application/media_control+xml", b"<picture_fast_update/>", None),
        ("application/dtmf", b"\xff\xfe", None),
    ],
)
def test_info_digits(content_type: str, body: bytes, digit: str | None) -> None:
    assert info_digit(content_type, body) == digit


def test_one_press_sent_both_ways_counts_once() -> None:
    collector = DigitCollector()
    assert collector.digit("4", "rtp", at(0))
    assert not collector.digit("4", "info", at(0.05))
    assert collector.digit("4", "rtp", at(0.5))  # a second press
    assert collector.digit("#", "info", at(0.6))
    assert collector.digit("#", "info", at(0.65))  # the same path twice is two presses


@pytest.fixture(scope="module")
def library() -> PromptLibrary:
    return PromptLibrary(("en",))  # one language keeps the encoding short


def test_prompts_exist_in_every_codec(library: PromptLibrary) -> None:
    assert {"welcome", "passcode", "unknown_meeting", "wrong_passcode", "lobby", "goodbye"} <= library.names()
    g711 = library.get("goodbye", "pcmu")
    assert g711.samples == 160 and all(len(f) == 160 for f in g711.frames)
    assert 0.5 < g711.seconds < 5
    # The Opus frames decode back to speech of the same length.
    decoder = av.CodecContext.create("opus", "r")
    decoded = 0
    for payload in library.get("goodbye", "opus").frames:
        decoded += sum(f.samples for f in decoder.decode(av.Packet(payload)))
    assert abs(decoded / 48000 - g711.seconds) < 0.1
    assert all(library.silence(c) for c in CODECS)


def test_slate_is_one_decodable_idr() -> None:
    slate = make_slate()
    assert len(slate) < 30_000
    nal_types = {slate[i + 3] & 0x1F for i in range(len(slate) - 4) if slate[i : i + 3] == b"\x00\x00\x01"}
    assert {7, 8, 5} <= nal_types  # SPS, PPS, IDR
    decoder = av.CodecContext.create("h264", "r")
    frames = [*decoder.decode(av.Packet(slate)), *decoder.decode(None)]
    assert len(frames) == 1 and (frames[0].width, frames[0].height) == (640, 360)
    assert frames[0].key_frame

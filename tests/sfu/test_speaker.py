"""Active speaker from RFC 6464 audio levels: the pure detector, then real peers."""

from __future__ import annotations

import time

import pytest

from sfu.events import ActiveSpeakerChanged
from sfu.speaker import SpeakerDetector
from tests.sfu.conftest import Meeting

LOUD, QUIET, SILENT = 9, 60, 127  # audio-level values: -dBov


def _feed(detector: SpeakerDetector, levels: dict[str, int], now: float, ticks: int) -> list[object]:
    changes = []
    for i in range(ticks):
        for pid, level in levels.items():
            for _ in range(5):  # 5 packets of 20 ms per 100 ms tick
                detector.observe(pid, level)
        result = detector.tick(now + i * 0.1)
        if result is not False:
            changes.append(result)
    return changes


def test_detector_picks_the_loud_participant_and_ignores_a_short_noise() -> None:
    detector = SpeakerDetector(threshold=30, margin=6, switch_after=0.3)
    assert _feed(detector, {"a": LOUD, "b": QUIET, "c": SILENT}, 0.0, 10) == ["a"]
    # c shouts for 200 ms while a keeps talking: no flap.
    changes = _feed(detector, {"a": LOUD, "b": QUIET, "c": 0}, 1.0, 2)
    changes += _feed(detector, {"a": LOUD, "b": QUIET, "c": SILENT}, 1.2, 10)
    assert changes == []
    # a stops, b talks: b takes over after the hold time, not before.
    changes = _feed(detector, {"a": SILENT, "b": LOUD, "c": SILENT}, 3.0, 3)
    assert changes == []
    assert _feed(detector, {"a": SILENT, "b": LOUD, "c": SILENT}, 3.3, 10) == ["b"]


def test_detector_keeps_the_last_speaker_in_silence_and_forgets_leavers() -> None:
    detector = SpeakerDetector(threshold=30, margin=6, switch_after=0.3)
    _feed(detector, {"a": LOUD}, 0.0, 10)
    assert _feed(detector, {"a": SILENT, "b": SILENT}, 1.0, 20) == []
    assert detector.speaker == "a"
    assert detector.remove("b") is False
    assert detector.remove("a") is None
    assert detector.speaker is None


@pytest.mark.slow
async def test_louder_participant_becomes_active_speaker(meeting: Meeting) -> None:
    clients = {pid: await meeting.client(pid) for pid in ("a", "b", "c")}
    for client in clients.values():
        await client.publish(video_start=None, amplitude=0.0)
    await meeting.wait_tracks(3)
    audio = {pid: c.audio for pid, c in clients.items()}
    assert all(a is not None for a in audio.values())
    assert audio["a"] is not None and audio["b"] is not None and audio["c"] is not None

    def speakers() -> list[str | None]:
        return [e.participant_id for e in meeting.events if isinstance(e, ActiveSpeakerChanged)]

    audio["b"].amplitude = 0.005
    started = time.monotonic()
    audio["a"].amplitude = 0.5
    await meeting.wait_event(lambda: speakers() == ["a"], within=3)
    assert time.monotonic() - started < 1.0
    assert meeting.router.active_speaker == "a"

    # A 200 ms shout from c while a keeps talking does not take the floor.
    audio["c"].burst(10, 0.9)
    await audio["a"].frames_sent(audio["a"].sent + 75)  # 1.5 s more
    assert speakers() == ["a"]

    # a stops, b talks louder: the floor moves, within a second.
    started = time.monotonic()
    audio["a"].amplitude = 0.0
    audio["b"].amplitude = 0.5
    await meeting.wait_event(lambda: speakers() == ["a", "b"], within=3)
    assert time.monotonic() - started < 1.0

    await meeting.leave("b")
    await meeting.wait_event(lambda: speakers() == ["a", "b", None], within=3)

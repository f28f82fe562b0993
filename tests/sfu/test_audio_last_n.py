"""Audio last-N: past a meeting size only the most recent speakers' audio reaches subscribers, a new
speaker from its first loud packet, a speaker who pauses keeps its place for the hold time."""

from __future__ import annotations

import time

import pytest

from sfu.audio_selection import AudioSelection
from sfu.settings import SfuSettings
from tests.sfu.conftest import Client, Meeting

SPEECH, NOISE, SILENCE = 20, 60, 127  # audio-level values (-dBov)


def _selection(**kw: float) -> AudioSelection:
    options: dict[str, float] = {"size": 2, "start_at": 3, "speech_dbov": 50, "hold": 1.0, **kw}
    selection = AudioSelection(**options)  # type: ignore[arg-type]
    selection.publishers_changed(4)
    return selection


def test_below_its_size_a_meeting_forwards_everyone() -> None:
    selection = AudioSelection(size=2, start_at=5, speech_dbov=50, hold=1.0)
    assert selection.publishers_changed(4) is False and not selection.active
    assert selection.forwards("anyone") and selection.observe("a", SPEECH, 0.0) is None
    assert selection.publishers_changed(5) is True and selection.active
    assert not selection.forwards("a")
    assert selection.publishers_changed(4) is True and selection.forwards("a")
    # size 0 is off, whatever the meeting's size; a meeting of size publishers needs no selection.
    off = AudioSelection(size=0, start_at=2, speech_dbov=50, hold=1.0)
    assert off.publishers_changed(50) is False and off.forwards("a")
    assert AudioSelection(size=4, start_at=2, speech_dbov=50, hold=1.0).publishers_changed(4) is False


def test_speech_takes_a_free_place_at_once_noise_and_silence_do_not() -> None:
    selection = _selection()
    assert selection.observe("a", NOISE, 0.0) is None
    assert selection.observe("a", SILENCE, 0.0) is None
    assert selection.observe("a", SPEECH, 0.0) == ""
    assert selection.observe("a", SPEECH, 0.02) is None  # already in
    assert selection.observe("b", SPEECH, 0.02) == ""
    assert selection.selected == {"a", "b"}


def test_a_newcomer_waits_while_everyone_selected_spoke_within_the_hold() -> None:
    selection = _selection()
    selection.observe("a", SPEECH, 0.0)
    selection.observe("b", SPEECH, 0.5)
    # c speaks 0.9 s after a last spoke: a keeps its place (a breath is not the end of a sentence).
    assert selection.observe("c", SPEECH, 0.9) is None
    assert selection.selected == {"a", "b"}
    # a has been quiet for the hold: c takes the place of the one who spoke least recently.
    assert selection.observe("c", SPEECH, 1.0) == "a"
    assert selection.selected == {"b", "c"}
    # b still talking keeps b; a back at once waits until c or b pause.
    selection.observe("b", SPEECH, 1.4)
    assert selection.observe("a", SPEECH, 1.5) is None
    assert selection.observe("a", SPEECH, 2.0) == "c"
    selection.remove("b")
    assert selection.observe("d", SPEECH, 2.0) == ""


@pytest.mark.slow
async def test_only_the_recent_speakers_reach_a_subscriber_and_a_new_one_at_once() -> None:
    # One m-section per microphone (no slots), so what the listener decodes per m-section is one person's.
    settings = SfuSettings(
        audio_last_n=2, audio_last_n_from=4, audio_last_n_hold_ms=400, audio_last_n_slots=False
    )
    meeting = Meeting(settings)
    try:
        speakers = {f"p{i}": await meeting.client(f"p{i}") for i in range(5)}
        for client in speakers.values():
            await client.publish(video_start=None, amplitude=0.0)
        listener = await meeting.client("listener")
        await meeting.wait_tracks(5)
        await listener.subscribe()
        await listener.wait_until(lambda: len(listener.sub_pc.getTransceivers()) == 5, 20)  # type: ignore[union-attr]
        assert listener.peer is not None and listener.peer._subscribe is not None
        owners = {tid: t.participant_id for tid, t in meeting.router.tracks.items()}
        mids = {owners[tid]: mid for mid, tid in listener.peer._subscribe.mids().items()}
        assert meeting.router.audio_selected == frozenset()

        def heard(client: Client, pid: str) -> int:
            return client.audio_frames.get(mids[pid], 0)

        # Five open microphones in silence: nothing is forwarded to the listener.
        await speakers["p0"].audio.frames_sent(speakers["p0"].audio.sent + 50)  # type: ignore[union-attr]
        assert all(heard(listener, pid) == 0 for pid in speakers)

        # p0 and p1 speak: the listener hears them, within 300 ms of their first loud frame.
        for pid in ("p0", "p1"):
            started = time.monotonic()
            speakers[pid].audio.amplitude = 0.5  # type: ignore[union-attr]
            await listener.wait_until(lambda pid=pid: heard(listener, pid) > 0, 5)
            assert time.monotonic() - started < 0.3
        # p2 speaks while both talk on: not heard.
        speakers["p2"].audio.amplitude = 0.5  # type: ignore[union-attr]
        await speakers["p2"].audio.frames_sent(speakers["p2"].audio.sent + 40)  # type: ignore[union-attr]
        assert heard(listener, "p2") == 0 and meeting.router.audio_selected == {"p0", "p1"}
        # p0 stops: after the hold, p2 takes its place; p0's silence no longer reaches the listener.
        speakers["p0"].audio.amplitude = 0.0  # type: ignore[union-attr]
        started = time.monotonic()
        await listener.wait_until(lambda: heard(listener, "p2") > 0, 5)
        assert time.monotonic() - started < 0.4 + 0.3
        assert meeting.router.audio_selected == {"p1", "p2"}
        before = heard(listener, "p0")
        await speakers["p1"].audio.frames_sent(speakers["p1"].audio.sent + 25)  # type: ignore[union-attr]
        assert heard(listener, "p0") - before <= 3  # what was in flight
        assert heard(listener, "p3") == heard(listener, "p4") == 0

        # Two leave: three publishers are under the threshold, so everyone is forwarded again.
        await meeting.leave("p3")
        await meeting.leave("p4")
        assert meeting.router.audio_selected is None
        await listener.wait_until(lambda: heard(listener, "p0") > before + 10, 5)
    finally:
        await meeting.close()

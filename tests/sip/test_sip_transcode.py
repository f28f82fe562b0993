"""The transcode for terminals (sfu/plain_transcode.py): a camera published in VP8 only reaches a terminal
as decodable H.264 (an IDR first), re-encoded once for every terminal that needs it, in a worker thread, and
stopped when no terminal needs it; a speaker switch between two VP8 cameras still brings the new one's IDR
within a second, on one SSRC with continuous sequence numbers."""

from __future__ import annotations

import itertools
import time

import pytest

from sfu.events import ActiveSpeakerChanged
from sfu.plain_transcode import output_size, transcodes
from tests.sfu.conftest import Client, Meeting
from tests.sip.plain_terminal import H264Sink, wait_for
from tests.sip.test_sip_plain import Terminal, meeting

pytestmark = pytest.mark.timeout(60)
__all__ = ["meeting"]  # the fixture, used here

Received = list[tuple[float, int, int, int, int, bool, bytes]]


def _decode(received: Received) -> H264Sink:
    sink = H264Sink()
    for _, _, _, ts, _, marker, payload in received:
        sink.feed(ts, marker, payload)
    return sink


async def _vp8_client(meeting: Meeting, pid: str, start: int, amplitude: float) -> Client:
    client = await meeting.client(pid)
    await client.publish(video_start=start, amplitude=amplitude)
    return client


def _vp8_track(meeting: Meeting, pid: str) -> None:
    video = [t for t in meeting.router.tracks.values() if t.participant_id == pid and t.kind == "video"]
    assert [t.codec_name for t in video] == ["vp8"]


def test_output_size_fits_the_terminal() -> None:
    assert output_size(1280, 720, 0) == (1280, 720)
    assert output_size(1920, 1080, 0) == (1280, 720)
    w, h = output_size(1280, 720, 1344)  # 1344 macroblocks (the Tandberg class): about 768x432
    assert -(-w // 16) * -(-h // 16) <= 1344 and w >= 700 and abs(w / h - 16 / 9) < 0.02
    assert output_size(320, 240, 3600) == (320, 240)  # never scaled up


async def test_vp8_camera_reaches_terminals_as_h264(meeting: Meeting) -> None:
    await _vp8_client(meeting, "a", 10_000, 0.5)
    await meeting.wait_tracks(2)
    _vp8_track(meeting, "a")
    first, second = Terminal(meeting, "sip-1"), Terminal(meeting, "sip-2")
    try:
        peer = await first.join()
        await second.join()
        got = first.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 10, 20, "transcoded video")
        sink = _decode(got.rtp)
        assert sink.idrs >= 1 and all(c >= 10_000 for c in sink.counters[:3])
        assert {pt for *_, pt, _, _ in got.rtp} == {109}  # the terminal's own payload type
        assert len({ssrc for _, ssrc, *_ in got.rtp}) == 1
        await wait_for(
            second.video.got, lambda: len(_decode(second.video.got.rtp).counters) >= 5, 20, "second terminal"
        )
        active = transcodes(meeting.router).active()
        assert len(active) == 1  # one re-encode for both terminals of the same format
        transcoder = active[0]
        assert transcoder.source.participant_id == "a" and transcoder.cpu_seconds > 0
        assert transcoder.keyframes_out >= 1
        # A terminal's PLI asks the encoder, not the VP8 publisher, for the next IDR (asked again while it
        # waits: a request within 0.5 s of the last one, the second terminal's, rides on that one's IDR).
        idrs = _decode(got.rtp).idrs

        def asked_idr() -> bool:
            peer.keyframe_wanted_by_terminal()
            return _decode(got.rtp).idrs > idrs

        await wait_for(got, asked_idr, 10, "an IDR on the terminal's request")
    finally:
        for terminal in (first, second):
            if terminal.peer is not None:
                await meeting.router.remove_peer(terminal.id)
            terminal.close()
    assert transcodes(meeting.router).active() == []
    assert transcoder.closed and transcoder.output.subscriptions == ()


async def test_speaker_switch_between_vp8_cameras(meeting: Meeting) -> None:
    changes: list[tuple[float, str | None]] = []
    meeting.router.add_listener(
        lambda e: (
            changes.append((time.monotonic(), e.participant_id))
            if isinstance(e, ActiveSpeakerChanged)
            else None
        )
    )
    a = await _vp8_client(meeting, "a", 10_000, 0.5)
    b = await _vp8_client(meeting, "b", 20_000, 0.0)
    terminal = Terminal(meeting)
    try:
        await meeting.wait_tracks(4)
        await terminal.join()
        await meeting.wait_event(lambda: meeting.router.active_speaker == "a", within=10)
        got = terminal.video.got
        await wait_for(got, lambda: any(c >= 10_000 for c in _decode(got.rtp).counters), 20, "a's video")
        assert a.audio is not None and b.audio is not None
        a.audio.amplitude, b.audio.amplitude = 0.0, 0.5
        await meeting.wait_event(lambda: meeting.router.active_speaker == "b", within=10)
        switched = next(t for t, pid in changes if pid == "b")
        await wait_for(got, lambda: any(c >= 20_000 for c in _decode(got.rtp).counters), 20, "b's video")
        sink = H264Sink()
        arrived = 0.0
        for t, _, _, ts, _, marker, payload in got.rtp:
            sink.feed(ts, marker, payload)
            if any(c >= 20_000 for c in sink.counters):
                arrived = t
                break
        assert arrived - switched < 1.0
        assert len({ssrc for _, ssrc, *_ in got.rtp}) == 1
        steps = {(y - x) & 0xFFFF for x, y in itertools.pairwise(seq for _, _, seq, *_ in got.rtp)}
        assert steps == {1}, f"sequence steps {steps}"
        # a's transcoder was let go with the switch: only b's runs.
        await wait_for(
            got,
            lambda: [t.source.participant_id for t in transcodes(meeting.router).active()] == ["b"],
            5,
            "a's transcoder stopped",
        )
    finally:
        terminal.close()


def test_mode_0_h264_is_receivable_by_mode_1_only_one_way() -> None:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from sfu.track import codec_key, receivable_key

    def h264(mode: str, profile: str = "42e01f") -> RTCRtpCodecParameters:
        parameters: dict[str, int | str | None] = {"packetization-mode": mode, "profile-level-id": profile}
        return RTCRtpCodecParameters(
            mimeType="video/H264", clockRate=90000, payloadType=96, parameters=parameters
        )

    # A terminal's mode-0 camera (single NAL units) reaches browsers that negotiated mode 1 ...
    assert receivable_key(h264("0", "42801f")) == codec_key(h264("1"))
    # ... but a browser's mode-1 camera (FU-A, STAP-A) is not for a mode-0 terminal: that one is transcoded.
    assert receivable_key(h264("1")) != codec_key(h264("0"))


async def test_mode_0_terminal_gets_an_h264_camera_in_single_nal_units(
    meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A terminal that offers only packetization-mode 0 cannot take a browser's FU-A/STAP-A: the camera is
    re-encoded with every NAL unit small enough for one packet, and sent as single NAL units."""
    import tests.sip.test_sip_plain as plain

    offer = plain.terminal_offer
    monkeypatch.setattr(
        plain,
        "terminal_offer",
        lambda *a, **k: offer(*a, **k).replace("packetization-mode=1", "packetization-mode=0"),
    )
    await plain._h264_client(meeting, "a", 30_000, 0.5)
    terminal = Terminal(meeting)
    try:
        await meeting.wait_tracks(2)
        await terminal.join()
        got = terminal.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 10, 20, "the camera in mode 0")
        (transcoder,) = transcodes(meeting.router).active()
        assert transcoder.source.codec_name == "h264" and transcoder.format.mode == 0
        assert {payload[0] & 0x1F for *_, payload in got.rtp} <= set(range(1, 24))  # no STAP-A, no FU-A
        assert max(len(payload) for *_, payload in got.rtp) <= 1200
        assert _decode(got.rtp).idrs >= 1
    finally:
        terminal.close()

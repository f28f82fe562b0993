"""The recording engine's pure rules: frame starts, reassembly, unwrapping, timing, the timeline."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import pytest
from aiortc.codecs.h264 import H264Encoder

from recording.clock import ParticipantClock, StreamClock
from recording.codecs import h264_is_keyframe, h264_is_start, h264_size, rules_for, vp8_size
from recording.errors import RecordingError
from recording.recorder import Recorder
from recording.rtp import FrameAssembler, Unwrap
from recording.timeline import TIMELINE, TimelineEvent, TimelineWriter, read_timeline
from recording.track import TrackInfo
from tests.recording.engine_media import draw, read_counter


def two_slice_idr() -> tuple[bytes, list[bytes]]:
    """An H.264 IDR access unit in two slices (Annex B) and its RTP payloads as aiortc packetizes them."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.options = {"slices": "2", "tune": "zerolatency", "preset": "ultrafast", "profile": "baseline"}
    frame = draw(7, 160, 120, flash=False, colour=(110, 128, 128))
    frame.pts = 0
    data = b"".join(bytes(p) for p in enc.encode(frame))
    nals = list(H264Encoder._split_bitstream(data))
    slices = [n for n in nals if n[0] & 0x1F == 5]
    # parameter sets aggregated in a STAP-A, each slice in its own packet, as a browser sends a big IDR
    head = H264Encoder._packetize([n for n in nals if n[0] & 0x1F != 5])
    return data, head + [p for s in slices for p in H264Encoder._packetize([s])]


def test_the_second_slice_of_an_idr_is_not_a_frame_start_and_a_reordered_idr_reassembles() -> None:
    annexb, payloads = two_slice_idr()
    kinds = [p[0] & 0x1F for p in payloads]
    assert kinds == [24, 5, 5], kinds  # STAP-A (SPS, PPS, SEI), then each slice in its own packet
    assert [h264_is_start(p) for p in payloads] == [True, True, False]
    assert all(h264_is_keyframe(p) for p in payloads)
    assert h264_size(annexb) == (160, 120)
    assembler = FrameAssembler(rules_for("h264"), max_wait=1.6, keyframe_after=0.4)
    ts = 0xFFFFFF00
    # jitter delivers the second slice first: it must not be taken for a frame of its own
    assert assembler.push(65535, ts, False, payloads[0], 1.0) == []
    assert assembler.push(1, ts, True, payloads[2], 1.001) == []
    frames = assembler.push(0, ts, False, payloads[1], 1.002)
    assert len(frames) == 1 and frames[0].keyframe
    ctx = av.CodecContext.create("h264", "r")
    decoded = list(ctx.decode(av.Packet(frames[0].data))) + list(ctx.decode(None))
    assert len(decoded) == 1 and (decoded[0].width, decoded[0].height) == (160, 120)
    y = decoded[0].to_ndarray(format="gray")
    assert read_counter(y) == 7 and abs(float(y[90:].mean()) - 110) < 6, "both slices, in their order"


def test_vp8_keyframes_say_their_size() -> None:
    from aiortc.codecs.vpx import Vp8Encoder

    rules = rules_for("vp8")
    frame = draw(1, 176, 144, flash=False, colour=(110, 128, 128))
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 30)
    payloads, _ = Vp8Encoder().encode(frame, force_keyframe=True)
    assert rules.is_start(payloads[0]) and rules.is_keyframe(payloads[0])
    assert not any(rules.is_start(p) for p in payloads[1:])
    assert vp8_size(b"".join(rules.depayload(p) for p in payloads)) == (176, 144)
    with pytest.raises(ValueError, match="cannot be recorded"):
        rules_for("av1")


def test_an_audio_hole_is_skipped_after_the_reordering_wait() -> None:
    assembler = FrameAssembler(rules_for("opus"), max_wait=1.6, keyframe_after=0.4, audio_wait=0.1)
    assert len(assembler.push(10, 0, True, b"a", 0.0)) == 1
    assert assembler.push(12, 1920, True, b"c", 0.04) == []  # 11 is missing: wait
    assert len(assembler.push(11, 960, True, b"b", 0.05)) == 2  # it came, in time
    assert assembler.push(14, 3840, True, b"e", 0.08) == []
    assert [f.data for f in assembler.poll(0.2)] == [b"e"]  # 13 never came
    assert assembler.holes == 1 and assembler.keyframe_requests == 0
    assert assembler.push(13, 2880, True, b"d", 0.3) == [] and assembler.dropped_packets == 1


def test_unwrapping_and_sender_report_timing() -> None:
    seq = Unwrap(16)
    values = [seq(x) for x in (65534, 65535, 0, 65533, 1, 2)]
    assert [v - values[0] for v in values] == [0, 1, 2, -1, 3, 4]
    clock = StreamClock(90000)
    assert not clock.mapped
    clock.report(0, 0)  # aiortc's first report, before any packet: ignored
    assert not clock.mapped
    ntp = int(500.0 * (1 << 32))
    clock.report(
        ntp + int(0.03 * (1 << 32)), 0xFFFFFFFF - 89999
    )  # 30 ms late (aiortc's last-packet RTP time)
    clock.report(ntp + (1 << 32), 0xFFFFFFFF - 89999 + 90000 - (1 << 32))  # exact, one second later, wrapped
    # the earliest instant of the two wins: the late one does not move frames
    assert clock.sender_time(0xFFFFFFFF - 89999) == pytest.approx(500.0, abs=1e-6)
    assert clock.sender_time(45000) == pytest.approx(501.5, abs=1e-6)  # across the 32-bit wrap
    participant = ParticipantClock()
    participant.observe(500.0, 10.02)
    participant.observe(500.5, 10.505)
    assert participant.local(501.0) == pytest.approx(11.005)


async def test_the_timeline_is_fsynced_lines_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    recorder_dir = tmp_path / "rec"
    recorder = Recorder(recorder_dir, clock=lambda: 5.0)
    with pytest.raises(RecordingError, match="is not one of"):
        recorder.event("confetti")
    with pytest.raises(RecordingError, match="cannot be recorded"):
        recorder.attach(TrackInfo("t", "p", "video", "camera", "av1", 90000))
    sink = recorder.attach(TrackInfo("t", "p", "video", "camera", "vp8", 90000))
    with pytest.raises(RecordingError, match="already recorded"):
        recorder.attach(TrackInfo("t", "p", "video", "camera", "vp8", 90000))
    recorder.event("joined", participant="p", name="张三")
    await recorder.drain()
    events = read_timeline(recorder_dir)
    assert [e.event for e in events] == ["recording_started", "joined"]
    assert events[1].fields == {"participant": "p", "name": "张三"}
    result = await recorder.close()
    assert result.files == () and sink.closed
    assert await recorder.close() is result
    with pytest.raises(RecordingError, match="already holds a recording"):
        Recorder(recorder_dir)


def test_events_appended_after_a_torn_line_are_kept(tmp_path: Path) -> None:
    (tmp_path / TIMELINE).write_text('{"t": 0, "event": "recording_started"}\n{"t": 9, "event": "jo')
    writer = TimelineWriter(tmp_path)
    writer.write(TimelineEvent(10, "recording_stopped", {"reason": "crash"}))
    writer.close()
    assert [e.event for e in read_timeline(tmp_path)] == ["recording_started", "recording_stopped"]

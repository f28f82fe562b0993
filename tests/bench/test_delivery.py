"""Loss is expected minus received per subscriber, a step that is not clean says why, the soak starts near
the wraps: all in-process, no SFU."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from aiortc import RTCRtpCodecParameters, rtcrtpsender
from aiortc.rtcrtpsender import RTCRtpSender

from bench.delivery import Delivery
from bench.load_spec import LoadSpec
from bench.loadgen import in_join_order
from bench.media import AccessUnit, VideoFileTrack
from bench.probe import SubscriberProbe
from bench.report import render, summary_rows
from bench.rtp_origin import RtpOrigin
from bench.scenarios import LOADGEN_CPU_LIMIT_PCT, Plan, Run, load, save, soak_spec
from bench.soak import section


def rtp(seq: int, ssrc: int = 7) -> bytes:
    return struct.pack("!BBHII", 0x80, 102, seq & 0xFFFF, 0, ssrc) + b"x" * 20


def snapshot(sent: int, packets: list[int], gaps: list[int] | None = None) -> dict[str, object]:
    return {"sent": [sent], "packets": packets, "gaps": gaps or [0] * len(packets)}


def test_a_contiguous_output_with_packets_missing_is_loss() -> None:
    # The SFU forwarded 740 of the publisher's 1,000 packets and renumbered them without a hole (as both
    # SFUs rewrite sequence numbers): the probe sees no gap, expected minus received still finds the loss.
    probe = SubscriberProbe()
    for seq in range(65_300, 65_300 + 740):  # across the wrap, contiguous
        probe.on_rtp(rtp(seq))
    assert probe.gaps() == 0
    delivery = Delivery.of_window(snapshot(5_000, [0, 0]), snapshot(6_000, [1_000, probe.packets]))
    assert delivery.expected == (1_000, 1_000)
    assert delivery.lost == (0, 260)
    assert delivery.ratios == (1.0, 0.74)
    (problem,) = delivery.problems()
    assert problem.startswith("loss 26.0% > 1% at subscriber 2 (740 of 1,000 packets)")


def test_extra_packets_at_one_subscriber_do_not_hide_loss_at_another() -> None:
    delivery = Delivery((1_010, 900), (1_000, 1_000), (0, 0))
    assert delivery.lost == (0, 100)
    assert delivery.problems()[0].startswith("loss 10.0% > 1% at subscriber 2")


def test_the_counters_skew_is_tolerated_and_a_gap_is_not() -> None:
    assert Delivery((995,), (1_000,), (0,)).problems() == []  # half a keyframe burst of skew
    (gap,) = Delivery((995, 995), (1_000, 1_000), (3, 3)).problems()
    assert gap == "3 packets missing from the output numbering at subscriber 1 and 1 more"


def test_subscribers_come_back_in_join_order() -> None:
    # Two workers joined subscribers 0, 2, 4 and 1, 3 (round robin).
    assert in_join_order([[10, 12, 14], [11, 13]], 5) == [10, 11, 12, 13, 14]


def measured(**changes: object) -> Run:
    run = Run("yunhui", "fanout", 0, 1, 4, ready=4, forwarded_pps=2_272, expected_pps=2_272)
    run.received, run.expected, run.gaps = [4_000] * 4, [4_000] * 4, [0] * 4
    run.loadgen_cpu_pct, run.sfu_cpu_pct, run.latency_p99_ms = 30.0, 20.0, 5.0
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def test_a_step_that_is_not_clean_names_why() -> None:
    clean = measured()
    assert clean.valid and clean.loss_free and clean.reasons == []
    # The 32,768-packet bug: every subscriber short by a quarter, no gap, no error.
    stalled = measured(received=[2_944, 2_940, 2_944, 2_944], lost=4_228, sfu_cpu_pct=99.0)
    assert stalled.valid and not stalled.loss_free
    assert stalled.reasons == [
        "loss 26.5% > 1% at subscriber 2 (2,940 of 4,000 packets) and 3 more of 4",
        "SFU CPU saturated (99% of its core)",
    ]
    busy = measured(loadgen_cpu_pct=LOADGEN_CPU_LIMIT_PCT + 5, loadgen_drops=3)
    assert not busy.valid
    assert busy.reasons == [
        "load generator at 85% of its core (limit 80%)",
        "load generator dropped 3 datagrams at its sockets",
    ]
    late = measured(latency_p99_ms=900.0)
    assert late.reasons == ["p99 latency 900 ms > 400 ms"]
    short = measured(ready=3, received=[4_000, 4_000, 4_000, 0])
    assert short.reasons[:2] == [
        "1 of 4 subscribers got no keyframe",
        "loss 100.0% > 1% at subscriber 4 (0 of 4,000 packets)",
    ]
    # A result without per-subscriber counts (an older results.jsonl) still says why.
    old = Run("janus", "fanout", 0, 1, 2, ready=2, forwarded_pps=418, expected_pps=568)
    assert old.reasons == ["forwarded 418 of 568 pkt/s expected"]
    for run in (stalled, busy, late, short, old):
        assert run.reasons and not (run.valid and run.loss_free)


def test_the_soak_starts_just_before_both_wraps_and_wraps_twice() -> None:
    (step,) = Plan.full(("soak",), 3).steps("soak")
    assert step.soak is not None and step.publishers == 1 and step.subscribers >= 4
    spec = LoadSpec(
        backend="yunhui", url="", sfu_pid=0, video="", audio="", ice_address="", **soak_spec(step.soak)
    )
    assert spec.origin is not None
    assert 65_536 - 1_000 <= spec.origin.sequence < 65_536
    assert 2**32 - 90_000 * 60 <= spec.origin.timestamp < 2**32
    assert spec.window_video_packets > 2 * 65_536 and step.soak.min_wraps == 2
    assert spec.video_speed >= 5  # the rate goes up instead of the duration
    origin = RtpOrigin(65_000, 0)
    assert [origin.wraps(n) for n in (0, 536, 537, 536 + 65_536, 537 + 65_536)] == [0, 0, 1, 1, 2]
    no_wrap = measured(scenario="soak", seq_wraps=1, min_wraps=2)
    assert no_wrap.reasons == ["1 sequence wraps in the window (the soak needs 2)"]


class _Wire:
    """An RTCDtlsTransport stand-in: keeps what the sender sends."""

    state = "connected"

    def __init__(self, wanted: int) -> None:
        self.packets: list[bytes] = []
        self.enough = asyncio.Event()
        self._wanted = wanted

    async def _send_rtp(self, data: bytes) -> None:
        self.packets.append(data)
        if len(self.packets) >= self._wanted:
            self.enough.set()


async def test_the_soak_publisher_numbers_its_stream_from_the_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("random32", "random_sequence_number"):
        monkeypatch.setattr(rtcrtpsender, name, getattr(rtcrtpsender, name))  # restored after the test
    RtpOrigin(65_535, 2**32 - 1_500).install()
    unit = AccessUnit(b"\x00\x00\x00\x01\x65" + b"\x88" * 40, keyframe=True, slice_offset=0)
    wire = _Wire(wanted=2)
    senders = [RTCRtpSender(VideoFileTrack([unit]), wire) for _ in range(2)]
    assert senders[0]._ssrc != senders[1]._ssrc  # SSRCs are still drawn at random
    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90_000, payloadType=102)
    task = asyncio.create_task(senders[0]._run_rtp(codec))
    await asyncio.wait_for(wire.enough.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    (_, _, seq0, ts0, _), (_, _, seq1, ts1, _) = (struct.unpack_from("!BBHII", p) for p in wire.packets[:2])
    assert (seq0, ts0) == (65_535, 2**32 - 1_500)
    assert (seq1, ts1) == (0, 1_500)  # the next frame, 3,000 ticks later: both numbers wrapped


def test_the_report_has_a_soak_table_with_every_subscriber(tmp_path: Path) -> None:
    runs = []
    for sfu, received in (("janus", [150_000, 150_000]), ("yunhui", [110_400, 150_000])):
        run = measured(sfu=sfu, scenario="soak", subscribers=2, ready=2, received=received)
        run.expected, run.gaps = [150_000, 150_000], [0, 0]
        run.video_sent, run.seq_wraps, run.min_wraps, run.window_s = 134_000, 2, 2, 58.0
        run.seq_start, run.timestamp_start, run.video_speed = 65_000, 2**32 - 15 * 90_000, 10.0
        runs.append(run)
    save(runs, tmp_path / "results.jsonl")
    assert load(tmp_path / "results.jsonl") == runs
    table = "\n".join(section(runs))
    assert "| yunhui | 1 | 110,400 | 150,000 | 0.7360 | 0 | 134,000 (2) | 58 | no: loss 26.4% > 1%" in table
    assert "| janus | 2 | 150,000 | 150,000 | 1.0000 |" in table
    row = {r.metric: r for r in summary_rows(runs)}["soak: worst received ÷ expected"]
    assert (row.janus, row.yunhui) == (1.0, 0.736)
    text = render(runs, plot_name=None, machine=[], versions=[], command="x", plan_text="", extra_sections=[])
    assert "## Soak" in text and "`python -m bench --scenario soak`" in text

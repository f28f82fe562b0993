"""The bench's pure parts: frame tags, the subscriber probe, the summary table and the profile summary."""

from __future__ import annotations

import struct

from bench.hotspots import summarise_collapsed
from bench.media import make_tag
from bench.probe import SubscriberProbe
from bench.report import capacity, half_capacity_k, reference_k, summary_rows
from bench.scenarios import Run


def rtp(seq: int, payload: bytes, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 102, seq, seq * 3000, ssrc) + payload


def test_probe_counts_gaps_latency_and_first_keyframe() -> None:
    keyframes: list[int] = []
    probe = SubscriberProbe(on_all_keyframes=lambda: keyframes.append(1))
    sent_ns = probe.join_ns  # the frame left as the subscriber joined: latency >= 0
    frame = b"\x7c\x85" + make_tag(7, sent_ns, keyframe=False) + b"\x00" * 200
    key = b"\x7c\x85" + make_tag(8, sent_ns, keyframe=True) + b"\x00" * 200
    for seq, payload in ((65534, frame), (65535, b"x" * 20), (1, key), (2, key)):  # 0 lost across the wrap
        probe.on_rtp(rtp(seq, payload))
    assert probe.packets == 4
    assert probe.gaps() == 1
    assert len(probe.latencies_ms) == 3 and all(ms >= 0 for ms in probe.latencies_ms)
    assert probe.all_keyframes_ns == probe.first_keyframe_ns >= probe.first_rtp_ns > 0
    assert keyframes == [1]


def run(sfu: str, k: int, *, pps: float, cpu: float, lost: int = 0, repeat: int = 0) -> Run:
    r = Run(sfu, "fanout", repeat, 1, k, ready=k, forwarded_pps=pps, expected_pps=pps, lost=lost)
    r.sfu_cpu_pct = cpu
    r.cpu_s_per_mpkt = cpu / 100 / pps * 1e6
    r.loadgen_cpu_pct = 20.0
    r.latency_p50_ms = 2.0 if sfu == "janus" else 4.0
    return r


def test_summary_uses_the_largest_step_clean_for_both_and_flags_lower_bounds() -> None:
    baseline = Run("direct", "baseline", 0, 1, 1, ready=1, latency_p50_ms=0.5, latency_p99_ms=1.0)
    runs = [
        baseline,
        run("janus", 10, pps=2870, cpu=5),
        run("janus", 40, pps=11480, cpu=20),
        run("yunhui", 10, pps=2870, cpu=10),
        run("yunhui", 40, pps=9000, cpu=100, lost=500),
    ]
    assert reference_k(runs) == 10
    rows = {row.metric: row for row in summary_rows(runs)}
    cpu = rows["SFU CPU per forwarded packet"]
    assert cpu.ratio is not None and abs(cpu.ratio - 2.0) < 1e-9
    assert capacity(runs, "yunhui") == (2870, False)  # saturated: a real figure
    assert capacity(runs, "janus") == (11480, True)  # never lost anything: only a lower bound
    assert rows["loss-free forwarded packets/s, SFU on one core"].at_least == frozenset({"janus"})
    added = rows["one-way latency p50 added by the SFU"]
    assert added.janus == 1.5 and added.yunhui == 3.5  # 2.0 and 4.0 measured, 0.5 without an SFU


def test_added_latency_is_reported_at_half_of_capacity() -> None:
    baseline = Run("direct", "baseline", 0, 1, 1, ready=1, latency_p50_ms=0.5, latency_p99_ms=1.0)
    runs = [baseline]
    for sfu in ("janus", "yunhui"):
        for k, pps in ((10, 2870), (50, 14200), (80, 22700)):
            runs.append(run(sfu, k, pps=pps, cpu=pps / 300))
        runs.append(run(sfu, 120, pps=20000, cpu=100, lost=9000))
    assert reference_k(runs) == 80  # CPU and memory: the largest step clean for both
    assert half_capacity_k(runs) == 50  # 14,200 pkt/s is the step nearest 22,700 / 2
    rows = {row.metric: row for row in summary_rows(runs)}
    assert rows["one-way latency p50 added by the SFU"].note.startswith("fan-out K=50")
    assert rows["SFU CPU per forwarded packet"].note == "fan-out K=80"
    assert "projected packets/s at 100 % of one core" not in rows  # both ladders ended on a loss


def test_capacity_is_projected_when_the_ladder_ends_before_a_loss() -> None:
    runs = [run("janus", 10, pps=3000, cpu=10), run("yunhui", 10, pps=3000, cpu=5)]
    rows = {row.metric: row for row in summary_rows(runs)}
    projected = rows["projected packets/s at 100 % of one core"]
    assert (projected.janus, projected.yunhui) == (30000, 60000)


def test_collapsed_stacks_sum_self_time_by_function_and_package() -> None:
    text = (
        "process 1:main;run (asyncio/runners.py:118);forward (sfu/subscription.py:170) 6\n"
        "process 1:main;run (asyncio/runners.py:118);send_data (aioice/ice.py:300) 3\n"
        "process 1:main;run (asyncio/runners.py:118) 1\n"
    )
    own, inclusive, packages, total = summarise_collapsed(text)
    assert total == 10
    assert own["forward (sfu/subscription.py)"] == 6
    assert inclusive["run (asyncio/runners.py)"] == 10
    assert packages == {"sfu": 6, "aioice": 3, "asyncio": 1}


def test_probe_is_complete_only_with_a_keyframe_from_every_publisher() -> None:
    probe = SubscriberProbe(video_streams=2)
    key = b"\x7c\x85" + make_tag(1, probe.join_ns, keyframe=True) + b"\x00" * 200
    probe.on_rtp(rtp(1, key, ssrc=1))
    probe.on_rtp(rtp(2, key, ssrc=1))
    assert probe.first_keyframe_ns and not probe.all_keyframes_ns
    probe.on_rtp(rtp(7, key, ssrc=2))
    assert probe.all_keyframes_ns >= probe.first_keyframe_ns


def test_a_step_that_queues_instead_of_dropping_is_not_clean() -> None:
    prompt = run("yunhui", 40, pps=11480, cpu=60)
    late = run("yunhui", 40, pps=11480, cpu=60)
    late.latency_p99_ms = 1500.0  # everything delivered, but far too late to be played
    assert prompt.valid and prompt.loss_free
    assert not late.loss_free

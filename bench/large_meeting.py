"""The ``large-meeting`` scenario: 50 participants, 3 speaking, 47 muted as the SDK mutes, each subscriber
showing a 3x3 page, through a real Router at the packet level (bench/large_meeting_rtp.py).

What it measures is the SFU's own decision and copy work: ingress parsing, last-N, allocation, the per-copy
rewrite (the Python path; the C loop and SRTP/UDP are not in it, see the forwarding scenarios for those) and
the join-time work of placing a participant (publishing its two tracks, its first subscribe plan, everybody
else's renegotiations). Janus has no counterpart of a packet-level harness, so this one runs on Yunhui only.

    python -m bench --scenario large-meeting --runs 3 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

from bench import sections
from bench.large_meeting_rtp import SyntheticMeeting
from bench.recording import load_line
from sfu.settings import SfuSettings

SIZE, SPEAKERS, PAGE = 50, 3, 9
SECONDS = 5.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_run() -> dict[str, float]:
    settings = SfuSettings()  # the defaults: last-N 4 from 10 publishers, 16 videos at most
    meeting = SyntheticMeeting(0, settings)
    await meeting.start()
    joins: list[float] = []
    for i in range(SIZE):
        started = time.perf_counter()
        await meeting.join(f"p{i:02d}")
        await meeting.renegotiate()  # the others' offers for the newcomer, as the meeting server sends them
        joins.append(time.perf_counter() - started)
    speakers = [f"p{i:02d}" for i in range(SPEAKERS)]
    for pid in speakers:
        meeting.participants[pid].muted = False
        meeting.participants[pid].speaking = True
    # Each subscriber's 3x3 page: itself, the speakers, then the first others in join order; the rest is
    # off the page (0x0), as the meeting UI reports.
    for pid, peer in meeting.router.peers.items():
        others = [p for p in meeting.participants if p != pid]
        page = (speakers + [p for p in others if p not in speakers])[: PAGE - 1]
        for other in others:
            width, height = (320, 180) if other in page and other != pid else (0, 0)
            peer.set_max_size(f"{other}:1", width, height)
    await meeting.run(1.0)  # settle: first keyframes, allocation
    packets, octets, cpu = sum(meeting.sent.values()), meeting.octets, meeting.cpu_s
    await meeting.run(SECONDS)
    packets, octets, cpu = sum(meeting.sent.values()) - packets, meeting.octets - octets, meeting.cpu_s - cpu
    videos = [
        sum(1 for (s, t), n in meeting.sent.items() if s == pid and t.endswith(":1") and n)
        for pid in meeting.router.peers
    ]
    audio_m, video_m = zip(*(meeting.m_sections(pid) for pid in meeting.router.peers), strict=True)
    result = {
        "cpu_ms_per_participant_s": 1000 * cpu / SIZE / SECONDS,
        "cpu_share": cpu / SECONDS,
        "pkt_s": packets / SIZE / SECONDS,
        "mbit_s": octets * 8 / SIZE / SECONDS / 1e6,
        "join_50": joins[-1],
        "join_p50": statistics.median(joins[-10:]),
        "join_p95": _percentile(joins[-10:], 0.95),
        "renegotiations_max": max(meeting.renegotiations.values()),
        "videos_max": max(videos),
        "audio_m": max(audio_m),
        "video_m": max(video_m),
    }
    await meeting.close()
    return result


def lines(runs: list[dict[str, float]], args: argparse.Namespace) -> list[str]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    command = f"python -m bench --scenario large-meeting --runs {args.runs} --out docs/benchmarks.md"
    return [
        "## Large meeting (issue #15)",
        "",
        f"`{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"Python {platform.python_version()}; {load_line()} when it ended (a shared machine: other work "
        "ran).",
        "",
        f"{SIZE} participants, each publishing a microphone and a 25 fps camera; {SPEAKERS} speak, "
        f"{SIZE - SPEAKERS} are muted as the SDK mutes (nothing sent); each subscriber shows a 3x3 page (the "
        "speakers and the first others in join order at 320x180, the rest 0x0). Driven at the packet level "
        "through a real Router (bench/large_meeting_rtp.py: real publish and subscribe connections, "
        "synthetic RTP into the ingress, the Router's injected clock): the SFU's decision and copy work, on "
        "the "
        "Python copy path, without SRTP and UDP (the forwarding scenarios measure those). Median of "
        f"{args.runs} runs of {SECONDS:g} simulated seconds. Janus is not run: it has no packet-level "
        "counterpart; the 50 real aiortc peers and the VideoRoom side by side are not measured yet.",
        "",
        "| | median |",
        "|---|---:|",
        f"| SFU CPU per participant | {med('cpu_ms_per_participant_s'):.2f} ms per second |",
        f"| SFU CPU, the whole meeting | {100 * med('cpu_share'):.1f} % of a core |",
        f"| forwarded to each participant | {med('pkt_s'):.0f} pkt/s, {med('mbit_s'):.2f} Mbit/s |",
        f"| videos forwarded to a subscriber, at most | {med('videos_max'):.0f} |",
        f"| a subscriber's m-sections, at most | {med('audio_m'):.0f} audio, {med('video_m'):.0f} video |",
        f"| renegotiations of one subscriber over the 50 joins, at most | {med('renegotiations_max'):.0f} |",
        f"| the 50th join (SFU work: publish, place, everybody's offers) | {1000 * med('join_50'):.1f} ms |",
        f"| joins 41-50, p50 / p95 | {1000 * med('join_p50'):.1f} / {1000 * med('join_p95'):.1f} ms |",
        "",
        "Without the thresholds (every microphone and camera an m-section, every video forwarded) a "
        "subscriber would get 49 videos and 49 microphones, and every join would renegotiate all of them.",
        "",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --scenario large-meeting")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="the benchmarks file its section goes into")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING)
    runs = [asyncio.run(one_run()) for _ in range(args.runs)]
    text = lines(runs, args)
    sections.merge_into(args.out, "large-meeting", text)
    print("\n".join(text))
    return 0


def wanted(argv: list[str]) -> bool:
    """Whether the command line asks for this scenario only (no Janus, no namespace)."""
    scenarios = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--scenario"]
    return scenarios == ["large-meeting"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

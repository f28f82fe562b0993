"""The soak: hours of a camera's RTP numbering in a few minutes, and its section of docs/benchmarks.md.

One publisher, a few subscribers. The publisher's streams start just before both wraps (sequence number
65,000, RTP timestamp 15 s before 2^32) and the video plays ten times faster than real time (about 2,300
packets/s instead of 234), so its 16-bit sequence number wraps at least twice inside the measuring window:
the ~9 minutes a 2 Mb/s 720p30 camera takes to send 131,072 packets pass in about one, and the timestamp
wraps too (a random origin takes up to 13 hours to get there). An SFU that keeps state per sequence number,
timestamp or packet count shows it here as received ÷ expected below 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.rtp_origin import SEQUENCE_SPACE, TIMESTAMP_SPACE

if TYPE_CHECKING:  # scenarios imports this module for its Plan
    from bench.scenarios import Run

COMMAND = "python -m bench --scenario soak"
WHERE = f"`{COMMAND}`"
VIDEO_CLOCK = 90_000


@dataclass(frozen=True)
class Soak:
    subscribers: int
    video_speed: float  # the file played this many times faster than 30 fps
    video_packets: int  # the window lasts until the video has sent this many packets
    min_wraps: int  # sequence wraps the window must contain to count
    seq_start: int = 65_000
    timestamp_start: int = TIMESTAMP_SPACE - 15 * VIDEO_CLOCK

    @classmethod
    def full(cls) -> Soak:
        # 2 wraps = 131,072 packets, wherever in the numbering the window opens, plus a margin.
        return cls(subscribers=4, video_speed=10.0, video_packets=2 * SEQUENCE_SPACE + 2_000, min_wraps=2)

    @classmethod
    def quick(cls) -> Soak:
        # A smoke run: it checks the soak works end to end, not that the SFU survives the wraps.
        return cls(subscribers=2, video_speed=4.0, video_packets=2_500, min_wraps=0)


def worst_ratio(run: Run) -> float | None:
    """The lowest received ÷ expected of a run's subscribers."""
    ratios = [r / e for r, e in zip(run.received, run.expected, strict=True) if e]
    return min(ratios) if ratios else None


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def section(runs: Sequence[Run]) -> list[str]:
    """The soak's table (one row per SFU and subscriber), or nothing without a soak run."""
    soaks = [r for r in runs if r.scenario == "soak"]
    if not soaks:
        return []
    first = soaks[0]
    before_wrap = (TIMESTAMP_SPACE - (first.timestamp_start or 0)) / VIDEO_CLOCK
    lines = [
        "## Soak: the camera's sequence numbers wrap",
        "",
        f"Reproduce: `{COMMAND}`. One publisher (720p H.264 played {first.video_speed:g}× faster + Opus), "
        f"{first.subscribers} subscribers. Every publisher stream starts at sequence number "
        f"{first.seq_start or 0:,}, {before_wrap:g} s of 90 kHz before its RTP timestamp wraps. "
        "*Expected* is what the publisher sent in the window (video + audio), *received* what the "
        "subscriber counted; loss = expected − received.",
        "",
        "| SFU | subscriber | received | expected | received ÷ expected | gaps | video packets "
        "(sequence wraps) in window | window s | clean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in sorted(soaks, key=lambda r: (r.sfu, r.repeat)):
        verdict = "yes" if run.valid and run.loss_free else "no: " + "; ".join(run.reasons)
        wraps = "?" if run.seq_wraps is None else str(run.seq_wraps)
        if not run.received:
            lines.append(f"| {run.sfu} | – | – | – | – | – | – | – | {verdict} |")
        for k, (received, expected) in enumerate(zip(run.received, run.expected, strict=True)):
            ratio = received / expected if expected else None
            lines.append(
                f"| {run.sfu} | {k + 1} | {received:,} | {expected:,} | {_ratio(ratio)} | {run.gaps[k]:,} "
                f"| {run.video_sent:,} ({wraps}) | {run.window_s:.0f} | {verdict if k == 0 else ''} |"
            )
    return [*lines, ""]

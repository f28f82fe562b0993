"""The recording scenario (no Janus, no network namespace): ``python -m bench --scenario recording --out F``.

1. **Tap cost.** Four forwarding worlds of bench/forwarding_micro.py (one VP8 publisher, 4 subscribers, SRTP
   on: the real ingress, fan-out and egress, only the sockets faked), each Track tapped by one Recorder
   (four taps running, one recorded stream each). Reported: CPU µs per forwarded input packet on the
   forwarding thread with and without the taps (what a tap adds to forwarding), the writer thread's CPU per
   recorded packet (reassembly, timing, PyAV muxing, file writes), and the % of one core four recorded
   streams at a camera's ~300 packets/s cost in all.
2. **Composite speed.** Four 640x360 VP8+Opus tracks of `--composite-seconds` (made by Debian's ffmpeg from
   testsrc2 and sine), a 2x2 grid to 1280x720 H.264/AAC by recording.composite.render (veryfast, one
   thread, nice 19): seconds of meeting rendered per second of wall clock, and CPU s per meeting s.

Each figure is the median of `--runs` runs; CPU time, not wall time, so other work on the machine changes
them less (the composite's wall-clock speed does depend on it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import sections
from bench.forwarding_micro import World, make_packets
from recording.composite import render
from recording.recorder import Recorder
from recording.settings import RecordingSettings
from recording.track import TrackInfo
from sfu.tap import TapSubscription

STREAMS = 4
SUBSCRIBERS = 4
PACKETS_PER_S = 300  # bench/forwarding_micro.make_packets: 30 fps, 10 packets a frame


async def tap_cost(packets: int, *, taps: bool, directory: Path) -> tuple[float, float]:
    """(forwarding-thread µs per input packet, writer-thread µs per recorded packet) for four streams."""
    worlds = [World(SUBSCRIBERS, srtp=True) for _ in range(STREAMS)]
    # Frames are timed by arrival (no sender reports in this stream): no wait before writing.
    recorder = Recorder(directory, RecordingSettings(sender_report_wait_ms=0, settle_ms=0)) if taps else None
    subscriptions: list[TapSubscription] = []
    if recorder is not None:
        for n, world in enumerate(worlds):
            track = world.tracks[0]
            info = TrackInfo(f"t{n}", f"p{n}", "video", "camera", "vp8", 90000)
            subscriptions.append(TapSubscription(track, recorder.attach(info)))
    stream = make_packets(packets * 2)
    try:
        for world in worlds:  # warm-up: the first keyframe, the files opened
            for data, arrival in stream[:packets]:
                await world.hook(data, arrival)
        if recorder is not None:
            await recorder.drain()
        gc.collect()
        process0, thread0 = time.process_time(), time.thread_time()
        for data, arrival in stream[packets:]:
            for world in worlds:
                await world.hook(data, arrival)
        thread = time.thread_time() - thread0
        if recorder is not None:
            await recorder.drain()
        writer = time.process_time() - process0 - thread
        if recorder is not None:
            recorded = sum(s.packets for s in subscriptions)
            if recorded != packets * 2 * STREAMS:
                raise RuntimeError(f"{recorded} packets tapped, expected {packets * 2 * STREAMS}")
            if recorder.stats["dropped_packets"] or recorder.stats["errors"]:
                raise RuntimeError(f"the recorder dropped or failed: {recorder.stats}")
    finally:
        for s in subscriptions:
            s.close()
        if recorder is not None:
            await recorder.close()
        for world in worlds:
            await world.close()
    n = packets * STREAMS
    return thread / n * 1e6, (writer / n * 1e6 if recorder is not None else 0.0)


def make_tracks(directory: Path, seconds: float) -> None:
    """Four VP8 and four Opus files and a timeline, as a recording of four participants would leave."""
    lines = [{"t": 0, "event": "recording_started"}]
    for n in range(STREAMS):
        video, audio = f"{n:02d}-p{n}-camera-video.webm", f"{n:02d}-p{n}-mic-audio.webm"
        head = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i"]
        vp8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "800k"]
        source = f"testsrc2=size=640x360:rate=30:d={seconds}"
        subprocess.run([*head, source, *vp8, str(directory / video)], check=True, timeout=600)
        tone = f"sine=frequency={300 + 100 * n}:d={seconds}"
        subprocess.run(
            [*head, tone, "-ac", "2", "-c:a", "libopus", str(directory / audio)], check=True, timeout=600
        )
        for name, kind, source in ((video, "video", "camera"), (audio, "audio", "mic")):
            lines.append({"t": 0, "event": "track_started", "participant": f"p{n}", "kind": kind,
                          "source": source, "file": name})  # fmt: skip
    lines.append({"t": round(seconds * 1000), "event": "recording_stopped"})
    (directory / "timeline.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


async def composite_speed(directory: Path, seconds: float) -> tuple[float, float]:
    """(× real time by wall clock, CPU s per meeting s) of one 2x2 grid render."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    await render(directory, "grid", directory / "composite.mp4")
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds / wall, cpu / seconds


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


async def run(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as scratch:
        root = Path(scratch)
        plain, tapped, writer = [], [], []
        for r in range(args.runs):
            plain.append((await tap_cost(args.packets, taps=False, directory=root / f"p{r}"))[0])
            loop_us, writer_us = await tap_cost(args.packets, taps=True, directory=root / f"t{r}")
            tapped.append(loop_us)
            writer.append(writer_us)
        composite = root / "composite"
        composite.mkdir()
        make_tracks(composite, args.composite_seconds)
        speeds, cpus = [], []
        for _ in range(args.runs):
            speed, cpu = await composite_speed(composite, args.composite_seconds)
            speeds.append(speed)
            cpus.append(cpu)
    p, t, w = statistics.median(plain), statistics.median(tapped), statistics.median(writer)
    added = t - p
    core = (added + w) * PACKETS_PER_S * STREAMS / 1e6 * 100
    command = (
        f"python -m bench --scenario recording --runs {args.runs} --packets {args.packets} "
        f"--composite-seconds {args.composite_seconds:g} --out docs/benchmarks.md"
    )
    return [
        "## Recording (issue #17)",
        "",
        f"`{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"Python {platform.python_version()}; {load_line()} when it ended (a shared machine: other work "
        "ran).",
        "",
        f"Tap cost: {STREAMS} VP8 streams forwarded to {SUBSCRIBERS} subscribers each (SRTP on), each stream "
        "tapped by a Recorder; CPU µs per forwarded input packet, median of "
        f"{args.runs} runs of {args.packets} packets per stream.",
        "",
        "| | µs per packet |",
        "|---|---:|",
        f"| forwarding thread, no taps | {p:.2f} |",
        f"| forwarding thread, four taps | {t:.2f} |",
        f"| **added by a tap on the forwarding path** | **{added:.2f}** |",
        f"| writer thread (reassembly, timing, muxing, file) per recorded packet | {w:.2f} |",
        f"| four recorded streams at {PACKETS_PER_S} packets/s each, all of it | {core:.2f} % of a core |",
        "",
        f"Composite: four 640x360 VP8+Opus tracks of {args.composite_seconds:g} s, 2x2 grid to 1280x720 "
        "H.264/AAC (veryfast, one thread, nice 19).",
        "",
        "| | median |",
        "|---|---:|",
        f"| speed (meeting s per wall-clock s) | {statistics.median(speeds):.2f}x real time |",
        f"| CPU per meeting second | {statistics.median(cpus):.2f} core-s |",
        "",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --scenario recording")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--packets", type=int, default=3000, help="per stream and run (300 a second)")
    parser.add_argument("--composite-seconds", type=float, default=20.0)
    parser.add_argument(
        "--out", type=Path, required=True, help="the benchmarks file its section is merged into (or created)"
    )
    args, _ = parser.parse_known_args(argv)
    lines = asyncio.run(run(args))
    sections.merge_into(args.out, "recording", lines)
    print("\n".join(lines))
    return 0


def wanted(argv: list[str]) -> bool:
    """Whether the command line asks for the recording scenario only (it needs no Janus, no namespace)."""
    scenarios = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--scenario"]
    return scenarios == ["recording"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The load generator: one run of P publishers and K subscribers against one SFU process.

Run as ``python -m bench.loadgen SPEC.json RESULT.json`` (a fresh process per run, pinned away from the SFU).
The parent process publishes (pre-encoded media, no encoder) and measures; subscribers live in forked worker
processes, one asyncio loop each, and never decode (bench/probe.py). Subscribers join at ``join_rate`` per
second in total. The measuring window opens ``warmup_s`` after every subscriber has seen a keyframe and lasts
``window_s`` (or, with ``window_video_packets``, until the video has sent that many packets); over it we take
the SFU's CPU-seconds and memory from /proc, the packets each subscriber received against what the publishers
sent it (bench/delivery.py), the one-way latency of every tagged frame, and the load generator's own CPU and
socket drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.rtcconfiguration import RTCBundlePolicy

from bench import procstat
from bench.backends import Backend, make_backend, wait_connected
from bench.delivery import Delivery
from bench.load_spec import LoadResult, LoadSpec
from bench.media import PROFILE, AudioFileTrack, VideoFileTrack, load_audio, load_video
from bench.probe import SubscriberProbe, install_raw_receive, tap_subscriber


def new_peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def add_publisher_tracks(pc: RTCPeerConnection, video: VideoFileTrack, audio: AudioFileTrack) -> None:
    """Offer the file's codec only: aiortc would put VP8 first and then "pack" our H.264 units as VP8."""
    transceiver = pc.addTransceiver(video, direction="sendonly")
    transceiver.setCodecPreferences(
        [
            codec
            for codec in RTCRtpSender.getCapabilities("video").codecs
            if codec.mimeType.lower() == "video/rtx"
            or (
                codec.mimeType.lower() == "video/h264" and codec.parameters.get("profile-level-id") == PROFILE
            )
        ]
    )
    # A PLI/FIR from the SFU makes the file jump to its next IDR (aiortc would ask its encoder).
    setattr(transceiver.sender, "_send_keyframe", video.request_keyframe)  # noqa: B010
    pc.addTransceiver(audio, direction="sendonly")


def pin_ice(address: str) -> None:
    # aioice gathers every non-loopback address; the bench network has exactly one, say so explicitly.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


class _Channel:
    """A multiprocessing pipe read from an asyncio loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(conn.fileno(), self._readable)

    def _readable(self) -> None:
        while self._conn.poll():
            self._inbox.put_nowait(self._conn.recv())

    def send(self, message: Any) -> None:
        self._conn.send(message)

    async def recv(self) -> Any:
        return await self._inbox.get()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._conn.fileno())


# ============================================================================ subscriber workers
def _worker_main(index: int, conn: Connection, spec: LoadSpec) -> None:
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    pin_ice(spec.ice_address)
    install_raw_receive()
    asyncio.run(_Worker(index, conn, spec).run())


class _Worker:
    def __init__(self, index: int, conn: Connection, spec: LoadSpec) -> None:
        self._index = index
        self._conn = conn
        self._spec = spec
        self._subscribers: list[tuple[SubscriberProbe, RTCPeerConnection]] = []
        self._errors: list[str] = []
        self._all_keyframes = asyncio.Event()
        self._joined = False

    def _check_keyframes(self) -> None:
        if self._joined and all(p.all_keyframes_ns for p, _ in self._subscribers):
            self._all_keyframes.set()

    async def run(self) -> None:
        channel = _Channel(self._conn)
        _, feeds, slots, start = await channel.recv()  # ("go", feeds, [join offsets s], wall start)
        async with aiohttp.ClientSession() as http:
            backend = make_backend(self._spec.backend, self._spec.url)
            await backend.start(http)
            tasks = []
            for offset in slots:
                delay = start + offset - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._subscribe(backend, feeds)))
            await asyncio.gather(*tasks)
            self._joined = True
            self._check_keyframes()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_keyframes.wait(), self._spec.ready_timeout_s)
            ready = sum(1 for p, _ in self._subscribers if p.all_keyframes_ns)
            channel.send(("ready", ready, self._errors[:5]))
            marks: dict[str, list[int]] = {}
            while True:
                message = await channel.recv()
                if message[0] == "snap":
                    marks[message[1]] = [len(p.latencies_ms) for p, _ in self._subscribers]
                    channel.send(("snap", self._totals()))
                else:
                    break
            channel.send(("result", self._result(marks)))
            # The measurement is done: a polite goodbye, but the SFU process is stopped right after anyway.
            closing = asyncio.gather(*(pc.close() for _, pc in self._subscribers), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing, 5)
            await backend.close()
        channel.close()

    async def _subscribe(self, backend: Backend, feeds: list[str]) -> None:
        probe = SubscriberProbe(len(feeds), on_all_keyframes=self._check_keyframes)
        pc = new_peer_connection()
        # Owned by the worker from here: closed with the others at the end, whatever happens now.
        self._subscribers.append((probe, pc))
        try:
            # A saturated SFU can leave a request hanging; the step then counts a failed subscriber.
            await asyncio.wait_for(
                backend.subscribe(pc, feeds, lambda p: tap_subscriber(p, probe)), self._spec.ready_timeout_s
            )
            await wait_connected(pc, self._spec.ready_timeout_s)
        except Exception as exc:  # one failed subscriber is a result, not a crash of the run
            self._errors.append(f"{type(exc).__name__}: {exc}")

    def _totals(self) -> dict[str, Any]:
        probes = [p for p, _ in self._subscribers]
        return {
            "packets": [p.packets for p in probes],
            "bytes": sum(p.bytes for p in probes),
            "gaps": [p.gaps() for p in probes],
        }

    def _result(self, marks: dict[str, list[int]]) -> dict[str, Any]:
        latency: list[float] = []
        start, end = marks.get("t0"), marks.get("t1")
        if start is not None and end is not None:
            for k, (probe, _) in enumerate(self._subscribers):
                latency.extend(probe.latencies_ms[start[k] : end[k]])
        probes = [p for p, _ in self._subscribers]
        return {
            "latency_ms": latency,
            "first_rtp_ms": [(p.first_rtp_ns - p.join_ns) / 1e6 for p in probes if p.first_rtp_ns],
            "first_keyframe_ms": [
                (p.first_keyframe_ns - p.join_ns) / 1e6 for p in probes if p.first_keyframe_ns
            ],
            "errors": self._errors[:5],
        }


# ================================================================= parent: publishers + measurement
class _Publisher:
    def __init__(self, pc: RTCPeerConnection, video: VideoFileTrack, feed: str = "") -> None:
        self.pc = pc
        self.video = video
        self.feed = feed

    async def packets_sent(self, kind: str | None = None) -> int:
        """RTP packets sent since the start (retransmissions excluded), all streams or one kind."""
        total = 0
        for sender in self.pc.getSenders():
            if kind is not None and sender.kind != kind:
                continue
            for stat in (await sender.getStats()).values():
                if stat.type == "outbound-rtp":
                    total += stat.packetsSent
        return total


async def _run(
    spec: LoadSpec, workers: Sequence[tuple[multiprocessing.process.BaseProcess, Connection]]
) -> LoadResult:
    result = LoadResult(spec=asdict(spec))
    units, audio = load_video(Path(spec.video)), load_audio(Path(spec.audio))
    channels = [_Channel(conn) for _, conn in workers]
    loadgen_pids = [os.getpid()] + [p.pid for p, _ in workers if p.pid is not None]
    result.sfu_rss_idle = procstat.rss_bytes(spec.sfu_pid)
    if spec.origin is not None:
        spec.origin.install()  # before any sender starts; the workers were forked already and do not send
    publishers: list[_Publisher] = []
    async with aiohttp.ClientSession() as http:
        backend = make_backend(spec.backend, spec.url)
        await backend.start(http)
        try:
            for n in range(spec.publishers):
                pc = new_peer_connection()
                video = VideoFileTrack(
                    units, keyframe_min_interval=spec.keyframe_min_interval_s, speed=spec.video_speed
                )
                add_publisher_tracks(pc, video, AudioFileTrack(audio))
                publisher = _Publisher(pc, video)
                publishers.append(publisher)
                publisher.feed = await asyncio.wait_for(backend.publish(pc, f"pub{n}"), 30)
            await asyncio.gather(*(backend.wait_published(p.pc, p.feed, 20) for p in publishers))
            published = time.monotonic()
            feeds = [p.feed for p in publishers]
            # Spread the joins over the workers round robin so the total rate is join_rate.
            start = time.time() + 0.2
            for k, channel in enumerate(channels):
                slots = [i / spec.join_rate for i in range(k, spec.subscribers, len(channels))]
                channel.send(("go", feeds, slots, start))
            readies = [await c.recv() for c in channels]
            result.subscribers_ready = sum(r[1] for r in readies)
            result.errors = [e for r in readies for e in r[2]]
            await asyncio.sleep(spec.warmup_s)
            first = await _snapshot(spec, channels, publishers, loadgen_pids, "t0")
            await asyncio.sleep(await _window_s(spec, publishers[0], time.monotonic() - published))
            last = await _snapshot(spec, channels, publishers, loadgen_pids, "t1")
            for channel in channels:
                channel.send(("stop",))
            outcomes = [(await c.recv())[1] for c in channels]
            _fill(result, first=first, last=last, outcomes=outcomes, publishers=publishers, spec=spec)
        finally:
            await asyncio.gather(*(p.pc.close() for p in publishers), return_exceptions=True)
            await backend.close()
            for channel in channels:
                channel.close()
    return result


def in_join_order(per_worker: list[list[int]], subscribers: int) -> list[int]:
    """One value per subscriber in join order, from each worker's list (worker w joined w, w + W, ...)."""
    merged = [0] * subscribers
    for w, values in enumerate(per_worker):
        for j, value in enumerate(values):
            merged[w + j * len(per_worker)] = value
    return merged


async def _window_s(spec: LoadSpec, video: _Publisher, elapsed_s: float) -> float:
    """The window's length: window_s, or long enough for window_video_packets at the rate seen so far."""
    if not spec.window_video_packets:
        return spec.window_s
    rate = await video.packets_sent("video") / max(elapsed_s, 1e-3)
    # 5 % over the count: the rate since the first packet is an estimate (keyframe requests, a busy core).
    return max(spec.window_s, 1.05 * spec.window_video_packets / max(rate, 1.0))


async def _snapshot(
    spec: LoadSpec, channels: list[_Channel], publishers: list[_Publisher], pids: list[int], tag: str
) -> dict[str, Any]:
    # The publishers' counts first and the subscribers' right after, the same way at both ends of the
    # window: their skew (a pipe round trip) then cancels out of expected minus received.
    sent = [await p.packets_sent() for p in publishers]
    for channel in channels:
        channel.send(("snap", tag))
    video = await publishers[0].packets_sent("video") if publishers else 0
    sfu = procstat.cpu_times(spec.sfu_pid)
    snap: dict[str, Any] = {
        "t": time.monotonic(),
        "sfu_user": sfu.user,
        "sfu_system": sfu.system,
        "loadgen_cpu": procstat.cpu_seconds(pids),
        "drops": procstat.udp_drops(pids),
        "busy": procstat.machine_busy_seconds(),
        "sent": sent,
        "video": video,
    }
    totals = [(await c.recv())[1] for c in channels]
    snap["bytes"] = sum(t["bytes"] for t in totals)
    for key in ("packets", "gaps"):
        snap[key] = in_join_order([t[key] for t in totals], spec.subscribers)
    return snap


def _fill(
    result: LoadResult,
    *,
    first: dict[str, Any],
    last: dict[str, Any],
    outcomes: list[dict[str, Any]],
    publishers: list[_Publisher],
    spec: LoadSpec,
) -> None:
    dt = last["t"] - first["t"]
    result.window_s = dt
    sent = [b - a for a, b in zip(first["sent"], last["sent"], strict=True)]
    result.sent_pps = sum(sent) / dt / max(1, len(sent))
    delivery = Delivery.of_window(first, last)
    result.received, result.expected, result.gaps = (
        list(delivery.received), list(delivery.expected), list(delivery.gaps),
    )  # fmt: skip
    result.lost = sum(delivery.lost)
    result.expected_pps = sum(delivery.expected) / dt
    result.forwarded_pps = sum(delivery.received) / dt
    result.forwarded_mbps = (last["bytes"] - first["bytes"]) * 8 / dt / 1e6
    result.video_sent = last["video"] - first["video"]
    if spec.origin is not None:
        result.seq_wraps = spec.origin.wraps(last["video"]) - spec.origin.wraps(first["video"])
    result.sfu_user_s = last["sfu_user"] - first["sfu_user"]
    result.sfu_system_s = last["sfu_system"] - first["sfu_system"]
    result.sfu_cpu_s = result.sfu_user_s + result.sfu_system_s
    result.sfu_rss = procstat.rss_bytes(spec.sfu_pid)
    result.sfu_threads = procstat.threads(spec.sfu_pid)
    result.loadgen_cpu_pct = 100 * (last["loadgen_cpu"] - first["loadgen_cpu"]) / dt
    result.loadgen_drops = last["drops"] - first["drops"]
    result.machine_busy_pct = 100 * (last["busy"] - first["busy"]) / dt / (os.cpu_count() or 1)
    for outcome in outcomes:
        result.latency_ms.extend(outcome["latency_ms"])
        result.first_rtp_ms.extend(outcome["first_rtp_ms"])
        result.first_keyframe_ms.extend(outcome["first_keyframe_ms"])
        # The workers' final lists include what they reported when ready.
        result.errors = [*result.errors, *(e for e in outcome["errors"] if e not in result.errors)]
    result.keyframe_requests = [p.video.keyframe_requests for p in publishers]


def run(spec: LoadSpec) -> LoadResult:
    """Run one load in this process (forks the subscriber workers); the caller's process is the publisher."""
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    pin_ice(spec.ice_address)
    context = multiprocessing.get_context("fork")
    workers = []
    for index in range(spec.workers):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker_main, args=(index, child_end, spec), daemon=True)
        process.start()
        workers.append((process, parent_end))
    try:
        return asyncio.run(_run(spec, workers))
    finally:
        for process, _ in workers:
            process.join(timeout=15)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


def main(argv: list[str]) -> int:
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    result = run(LoadSpec.parse(json.loads(spec_path.read_text())))
    result_path.write_text(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

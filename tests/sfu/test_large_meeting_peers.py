"""The issue's acceptance with real peers: 40 stock aiortc clients (80 RTCPeerConnections over loopback,
no ICE servers) in one meeting on the real Sfu.

37 microphones are muted the way the SDK mutes (``sender.replaceTrack(null)``: nothing is sent), three people
speak at three distinct audio levels (so a subscriber can tell who it hears from the RFC 6464 extension the
SFU forwards), two of them with a camera. The audio last-N is 2: a second speaker is heard at every
subscriber within 300 ms of unmuting, a third one is not heard while both talk on, and takes the place of the
first one once that one has been quiet for the hold. Counters on both sides: the SFU's ingress per track and
copies per subscription, and what each subscriber's transport received per SSRC and level.

The Sfu runs on its own thread and event loop, so its CPU time (``pthread_getcpuclockid``) is its own and not
the 40 clients' encoders and transports; the figure per participant is logged and bounded loosely. Subscribers
count what arrives and drop it before aiortc's jitter buffer and decoders (80 decoders would measure aiortc).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RtpPacket, compute_audio_level_dbov, is_rtcp

from sfu.events import RouterEvent, SubscriberNeedsOffer
from sfu.metrics import METRICS
from sfu.peer import Peer
from sfu.router import Router
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack, dtls_of

log = logging.getLogger(__name__)

T = TypeVar("T")
SIZE, LAST_N, HOLD_S = 40, 2, 0.6
FIRST, SECOND, THIRD = "p00", "p01", "p02"
AMPLITUDES = {FIRST: 0.5, SECOND: 0.25, THIRD: 0.1}
CAMERAS = (FIRST, SECOND)
SILENCE = 127
pytestmark = pytest.mark.slow


async def _level(amplitude: float) -> int:
    """The RFC 6464 level aiortc sends for ToneAudioTrack at this amplitude (-dBov): from its own frame."""
    tone = ToneAudioTrack(amplitude)
    try:
        return abs(int(compute_audio_level_dbov(await tone.recv())))
    finally:
        tone.stop()


class SfuThread:
    """The Sfu on a thread of its own: every call into it runs on its loop."""

    def __init__(self, settings: SfuSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sfu", daemon=True)
        self._thread.start()
        self.settings = settings
        self.sfu: Sfu | None = None
        self.router: Router | None = None

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def run(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()

        return await self.call(wrapped())

    async def start(self, listener: Callable[[RouterEvent], None]) -> Router:
        async def make() -> Router:
            self.sfu = Sfu(self.settings)
            router = self.sfu.router("large")
            router.add_listener(listener)
            return router

        self.router = await self.call(make())
        return self.router

    def cpu_s(self) -> float:
        assert self._thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))

    async def close(self) -> None:
        if self.sfu is not None:
            await self.call(self.sfu.close())
            self.sfu = None
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, 30)
        if not self.loop.is_closed() and not self._thread.is_alive():
            self.loop.close()


class Participant:
    """One stock aiortc client: a publish PC (microphone, maybe a camera) and a subscribe PC that counts."""

    def __init__(self, sfu: SfuThread, pid: str) -> None:
        self.sfu = sfu
        self.id = pid
        self.peer: Peer | None = None
        self.pub: RTCPeerConnection | None = None
        self.sub: RTCPeerConnection | None = None
        self.tone: ToneAudioTrack | None = None
        self.video: CounterVideoTrack | None = None
        # What this subscriber's transport received: packets per SSRC, per audio level, and the first arrival
        # of each audio level since the last mark.
        self.by_ssrc: Counter[int] = Counter()
        self.by_level: Counter[int] = Counter()
        self.first_at: dict[int, float] = {}
        self.changed = asyncio.Event()
        self._renegotiate = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def publish(self, *, camera: bool) -> None:
        router = self.sfu.router
        assert router is not None
        self.peer = await self.sfu.call(router.add_peer(self.id))
        pc = self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("connectionstatechange", self.changed.set)
        self.tone = ToneAudioTrack(AMPLITUDES.get(self.id, 0.0))
        pc.addTrack(self.tone)
        if camera:
            self.video = CounterVideoTrack(fps=15)
            pc.addTrack(self.video)
        await pc.setLocalDescription(await pc.createOffer())
        sources = {str(t.mid): "mic" if t.kind == "audio" else "camera" for t in pc.getTransceivers()}
        answer = await self.sfu.call(self.peer.answer_publish(pc.localDescription.sdp, sources))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if self.id != FIRST:
            self.mute()  # before the connection is up: not one packet of this microphone is sent

    @property
    def _mic(self) -> Any:
        assert self.pub is not None
        return next(s for s in self.pub.getSenders() if s.kind == "audio")

    def mute(self) -> None:
        """As the SDK mutes: the sender keeps its m-section and sends nothing."""
        self._mic.replaceTrack(None)

    def unmute(self) -> None:
        """As the SDK unmutes; `first_sent_at` is when the microphone's first packet after it leaves."""
        assert self.tone is not None and self.pub is not None
        self.first_sent_at: float | None = None
        dtls = dtls_of(self.pub)
        if not getattr(dtls, "_timed", False):
            dtls._timed = True
            original, mic = dtls._send_rtp, self._mic._ssrc.to_bytes(4, "big")

            async def send_rtp(data: bytes) -> None:
                if self.first_sent_at is None and not is_rtcp(data) and data[8:12] == mic:
                    self.first_sent_at = time.monotonic()
                await original(data)

            dtls._send_rtp = send_rtp
        self._mic.replaceTrack(self.tone)

    async def subscribe(self) -> None:
        self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.sub.on("connectionstatechange", self.changed.set)
        await self._negotiate()
        self._task = asyncio.create_task(self._renegotiation_loop())

    def needs_offer(self) -> None:
        self._renegotiate.set()

    async def _renegotiation_loop(self) -> None:
        while True:
            await self._renegotiate.wait()
            # aiortc cannot take a new remote description while its first ICE/DTLS setup still runs.
            await self.wait_until(self.joined, 30)
            self._renegotiate.clear()
            await self._negotiate()

    async def _negotiate(self) -> None:
        assert self.peer is not None and self.sub is not None
        offer = await self.sfu.call(self.peer.create_subscribe_offer())
        await self.sub.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.sub.setLocalDescription(await self.sub.createAnswer())
        await self.sfu.call(self.peer.accept_subscribe_answer(self.sub.localDescription.sdp))
        self._count_arrivals()

    def _count_arrivals(self) -> None:
        """Count RTP as it arrives at this subscriber's transport (decrypted), and drop it there."""
        assert self.sub is not None
        if not self.sub.getTransceivers():
            return
        dtls = dtls_of(self.sub)
        if getattr(dtls, "_counted", False):
            return
        dtls._counted = True

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            ssrc = int.from_bytes(data[8:12], "big")
            self.by_ssrc[ssrc] += 1
            packet = RtpPacket.parse(data, dtls._rtp_header_extensions_map)
            level = packet.extensions.audio_level
            if level is not None:
                value = level[1] if isinstance(level, tuple) else level
                value = abs(int(value))
                self.by_level[value] += 1
                if value not in self.first_at:
                    self.first_at[value] = time.monotonic()
                    self.changed.set()

        dtls._handle_rtp_data = handle_rtp_data

    def connected(self) -> bool:
        return self.sub is not None and self.sub.connectionState == "connected"

    def joined(self) -> bool:
        """Publishing, and receiving whatever there is (an offer without m-sections starts no transport)."""
        published = self.pub is not None and self.pub.connectionState == "connected"
        return published and self.sub is not None and (self.connected() or not self.sub.getTransceivers())

    def hears(self, level: int) -> Callable[[], bool]:
        return lambda: level in self.first_at

    def mark(self) -> None:
        self.first_at.clear()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.id}: not within {within} s; levels {dict(self.by_level)}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.5))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for pc in (self.pub, self.sub):
            if pc is not None:
                await pc.close()


async def _all(coros: list[Awaitable[None]], batch: int = 10) -> None:
    """Bounded concurrency: 40 ICE and DTLS handshakes at once would time out on a loaded 2-core box."""
    for i in range(0, len(coros), batch):
        await asyncio.gather(*coros[i : i + batch])


def _sfu_counters(router: Router) -> dict[str, Any]:
    """On the SFU's thread: ingress per microphone, and copies per subscriber by kind."""
    mics = {
        t.participant_id: sum(layer.packets for layer in t.layers.values())
        for t in router.tracks.values()
        if t.kind == "audio"
    }
    copies: dict[str, Counter[str]] = {}
    for pid, peer in router.peers.items():
        connection = peer.subscribe_connection
        counter: Counter[str] = Counter()
        if connection is not None:
            for s in connection.subscriptions:
                counter[s.kind] += s.packets
        copies[pid] = counter
    return {"mics": mics, "copies": copies, "selected": router.audio_selected}


async def test_forty_aiortc_peers_muted_mics_last_n_and_a_new_speaker() -> None:
    settings = SfuSettings(audio_last_n=LAST_N, audio_last_n_from=10, audio_last_n_hold_ms=int(HOLD_S * 1000))
    sfu = SfuThread(settings)
    people: dict[str, Participant] = {}
    loop = asyncio.get_running_loop()

    def on_event(event: RouterEvent) -> None:  # on the SFU's thread
        if isinstance(event, SubscriberNeedsOffer) and event.participant_id in people:
            loop.call_soon_threadsafe(people[event.participant_id].needs_offer)

    levels = {pid: await _level(a) for pid, a in AMPLITUDES.items()}
    assert len(set(levels.values())) == 3 and SILENCE not in levels.values(), levels
    started = time.monotonic()
    try:
        router = await sfu.start(on_event)
        for i in range(SIZE):
            pid = f"p{i:02d}"
            people[pid] = Participant(sfu, pid)
        await _all([p.publish(camera=p.id in CAMERAS) for p in people.values()])
        await _all([p.subscribe() for p in people.values()])
        everyone = list(people.values())
        for p in everyone:
            await p.wait_until(p.connected, 60)
        joined = time.monotonic() - started
        listeners = [p for p in everyone if p.id != FIRST]

        # FIRST speaks: every other subscriber hears it.
        for p in listeners:
            await p.wait_until(p.hears(levels[FIRST]), 30)
        # Steady state over 2 s: the SFU's CPU, its copies, what arrived.
        before = await sfu.run(lambda: _sfu_counters(router))
        arrived = {p.id: p.by_ssrc.total() for p in everyone}
        cpu, wall = sfu.cpu_s(), time.monotonic()
        await asyncio.sleep(2.0)  # a measurement window, not a wait for an event
        cpu, wall = sfu.cpu_s() - cpu, time.monotonic() - wall
        after = await sfu.run(lambda: _sfu_counters(router))
        cpu_ms = 1000 * cpu / SIZE / wall
        audio_copies = (
            sum(after["copies"][pid]["audio"] - before["copies"][pid]["audio"] for pid in people) / wall
        )
        video_copies = (
            sum(after["copies"][pid]["video"] - before["copies"][pid]["video"] for pid in people) / wall
        )
        received = sum(p.by_ssrc.total() - arrived[p.id] for p in everyone) / wall
        log.info(
            "40 aiortc peers: joined in %.1f s; SFU %.2f ms CPU per participant per second "
            "(%.0f %% of a core); speaker %.0f pkt/s in, audio copies %.0f/s, video copies %.0f/s, "
            "subscribers received %.0f pkt/s",
            joined,
            cpu_ms,
            100 * cpu / wall,
            (after["mics"][FIRST] - before["mics"][FIRST]) / wall,
            audio_copies,
            video_copies,
            received,
        )
        # Muted as the SDK mutes: nothing reached the SFU from 39 microphones, nothing was forwarded of them.
        silent = {pid for pid, n in after["mics"].items() if n == 0}
        assert silent == set(people) - {FIRST}, after["mics"]
        assert after["selected"] == frozenset({FIRST})
        # Each packet of the one speaker copied to the 39 others (not 40 x 39 microphones), a few in flight at
        # the window's ends. Per second about 39 x 50, more while aiortc's pacing catches up after a stall of
        # the loaded machine; every microphone to everyone would be 40 x 39 x 50.
        spoken = (after["mics"][FIRST] - before["mics"][FIRST]) / wall
        assert 38 * spoken <= audio_copies <= 40 * spoken, (audio_copies, spoken)
        assert audio_copies < 0.05 * SIZE * (SIZE - 1) * 50, audio_copies
        assert video_copies > 0
        assert all(set(p.by_level) == {levels[FIRST]} for p in listeners), [
            dict(p.by_level) for p in listeners
        ]
        # Loose on purpose (a shared machine; the figure is logged for the record).
        assert cpu_ms < 25, cpu_ms

        # SECOND unmutes and speaks: a free place, heard everywhere within 300 ms.
        for p in everyone:
            p.mark()
        spoke = time.monotonic()
        people[SECOND].unmute()
        others = [p for p in everyone if p.id != SECOND]
        for p in others:
            await p.wait_until(p.hears(levels[SECOND]), 10)
        last = max(p.first_at[levels[SECOND]] for p in others)
        first_sent = people[SECOND].first_sent_at
        assert first_sent is not None
        heard, unmuted = last - first_sent, last - spoke
        log.info(
            "a new speaker heard at all 39 subscribers %.0f ms after its first packet, %.0f ms after "
            "unmuting",
            1000 * heard,
            1000 * unmuted,
        )
        # From its first packet (what the SFU can act on) to the last of 39 subscribers, which includes the
        # clients' own event loop under load; the client's encoder start is bounded loosely.
        assert heard <= 0.3, heard
        assert unmuted <= 1.0, unmuted

        # THIRD speaks while both talk on: the last-N is full, nobody hears it.
        third = people[THIRD]
        assert third.tone is not None
        third.unmute()
        await third.tone.frames_sent(third.tone.sent + 40)
        assert await sfu.run(lambda: router.audio_selected) == frozenset({FIRST, SECOND})
        assert not any(levels[THIRD] in p.by_level for p in everyone)

        # FIRST falls silent (its microphone stays open): THIRD takes its place once the hold has passed.
        first = people[FIRST]
        assert first.tone is not None
        for p in everyone:
            p.mark()
        quiet = time.monotonic()
        first.tone.amplitude = 0.0
        others = [p for p in everyone if p.id != THIRD]
        for p in others:
            await p.wait_until(p.hears(levels[THIRD]), 10)
        took_over = max(p.first_at[levels[THIRD]] for p in others) - quiet
        log.info(
            "the third speaker heard %.0f ms after the first fell silent (hold %d ms)",
            1000 * took_over,
            1000 * HOLD_S,
        )
        # From the amplitude change, so the bound includes the tone's frames already queued in the client.
        assert HOLD_S - 0.05 <= took_over <= HOLD_S + 0.5, took_over
        assert await sfu.run(lambda: router.audio_selected) == frozenset({SECOND, THIRD})
        # FIRST's open microphone (silence, level 127) is no longer forwarded.
        silence = {p.id: p.by_level[SILENCE] for p in everyone}
        await third.tone.frames_sent(third.tone.sent + 25)
        assert all(p.by_level[SILENCE] - silence[p.id] <= 3 for p in everyone)  # what was in flight
        log.info("forwarded by the SFU since start: %d packets in Python", METRICS.forwarded_packets)
    finally:
        for p in people.values():
            await p.close()
        await sfu.close()
        log.info("whole test %.1f s", time.monotonic() - started)

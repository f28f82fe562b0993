"""Simulcast: a publisher sends three VP8 layers (rid); a subscriber gets what its bandwidth and tile fit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import struct
import time
from fractions import Fraction
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from sfu.hooks import PeerHooks
from sfu.rtp import URI_ABS_SEND_TIME, URI_MID, URI_RID, abs_send_time, build_extensions
from sfu.sdp import announce_address, answer_with_simulcast, offered_rids
from sfu.simulcast import LayerInfo, effective_bandwidth, select_layer
from tests.sfu.conftest import Client, Meeting, draw_counter, dtls_of

FPS = 15
# rid, width, height, encoder bitrate; sent lowest first within each frame.
LAYERS = (("q", 80, 60, 60_000), ("h", 160, 120, 150_000), ("f", 320, 240, 400_000))


def test_select_layer_by_tile_and_bandwidth() -> None:
    layers = [LayerInfo(80, 60, 60_000), LayerInfo(160, 120, 150_000), LayerInfo(320, 240, 400_000)]
    assert select_layer(layers, max_width=0, max_height=0, bandwidth=0) == 2
    assert select_layer(layers, max_width=0, max_height=0, bandwidth=100_000) == 0
    assert select_layer(layers, max_width=0, max_height=0, bandwidth=200_000) == 1
    assert select_layer(layers, max_width=150, max_height=100, bandwidth=0) == 1
    assert select_layer(layers, max_width=1280, max_height=720, bandwidth=10**7) == 2
    assert select_layer(layers, max_width=50, max_height=40, bandwidth=10**7) == 0
    assert select_layer(layers, max_width=0, max_height=0, bandwidth=1) == 0
    assert effective_bandwidth(1_000_000, 0, 400_000) == 1_000_000
    assert effective_bandwidth(1_000_000, 128, 400_000) == 300_000  # 50 % loss on the current layer
    with pytest.raises(ValueError):
        select_layer([], max_width=0, max_height=0, bandwidth=0)


def test_simulcast_sdp_munging() -> None:
    offer = (
        "v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\na=rid:q send\r\na=rid:h send\r\n"
    )
    offer += "a=simulcast:send q;h\r\n"
    assert offered_rids(offer) == {"1": ["q", "h"]}
    assert offered_rids(offer.replace("a=simulcast:send q;h\r\n", "")) == {}
    answer = answer_with_simulcast(
        "v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\n", {"1": ["q", "h"]}
    )
    assert "a=mid:1\r\na=rid:q recv\r\na=rid:h recv\r\na=simulcast:recv q;h\r\n" in answer


def test_announced_address_replaces_host_candidates() -> None:
    sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
    sdp += "a=candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.5 rport 40000\r\n"
    out = announce_address(sdp, "203.0.113.9")
    assert "a=candidate:1 1 udp 2130706431 203.0.113.9 40000 typ host" in out
    assert "198.51.100.7 40000 typ srflx" in out
    assert announce_address(sdp, None) == sdp


class SimulcastPublisher:
    """What a browser does with three encodings: one SSRC per rid, no a=ssrc, rid in a header extension."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.params: Any = None
        self.hooks = PeerHooks(self.pc, on_rtp=self._ignore, on_rtcp=self._on_rtcp, on_send=self._on_send)
        self.encoders = {rid: Vp8Encoder() for rid, *_ in LAYERS}
        for (_, _, _, bitrate), encoder in zip(LAYERS, self.encoders.values(), strict=True):
            encoder.target_bitrate = bitrate
        self.ssrc = {rid: random.getrandbits(32) for rid, *_ in LAYERS}
        self.seq = {rid: random.getrandbits(16) for rid, *_ in LAYERS}
        self.ts_base = {rid: random.getrandbits(32) for rid, *_ in LAYERS}
        self.force_keyframe = {rid: True for rid, *_ in LAYERS}
        self.keyframe_requests = {rid: 0 for rid, *_ in LAYERS}
        self.sent = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _ignore(self, data: bytes, arrival_ms: int) -> None:
        return

    async def _on_rtcp(self, packets: list[Any]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                for rid, ssrc in self.ssrc.items():
                    if ssrc == packet.media_ssrc:
                        self.force_keyframe[rid] = True
                        self.keyframe_requests[rid] += 1

    def _on_send(self, transceiver: Any, params: Any) -> None:
        self.params = params
        self.ready.set()

    async def publish(self, client: Client) -> None:
        assert client.peer is not None
        transceiver = self.pc.addTransceiver("video", direction="sendonly")
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/vp8"]
        transceiver.setCodecPreferences(vp8)
        self.hooks.attach()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        lines = []
        for line in self.pc.localDescription.sdp.splitlines():
            if line.startswith(("a=ssrc:", "a=ssrc-group:")):
                continue  # browsers do not signal SSRCs for simulcast
            lines.append(line)
            if line.startswith("a=mid:"):
                lines += [f"a=rid:{rid} send" for rid, *_ in LAYERS]
                lines.append("a=simulcast:send " + ";".join(rid for rid, *_ in LAYERS))
        offer = "\r\n".join(lines) + "\r\n"
        answer = await client.peer.answer_publish(offer, {transceiver.mid: "camera"})
        assert "a=simulcast:recv q;h;f" in answer
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(self.ready.wait(), 10)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        ids = {x.uri: x.id for x in self.params.headerExtensions}
        pt = next(c.payloadType for c in self.params.codecs if c.mimeType.lower() == "video/vp8")
        started = time.monotonic()
        while True:
            counter = 10_000 + self.sent
            for rid, width, height, _ in LAYERS:
                frame = draw_counter(counter, width, height, moving=True)
                frame.pts = self.sent * (90000 // FPS)
                frame.time_base = Fraction(1, 90000)
                payloads, timestamp = self.encoders[rid].encode(frame, self.force_keyframe[rid])
                self.force_keyframe[rid] = False
                ext = build_extensions(
                    [
                        (ids[URI_MID], self.params.muxId.encode()),
                        (ids[URI_RID], rid.encode()),
                        (ids[URI_ABS_SEND_TIME], abs_send_time()),
                    ]
                )
                for i, payload in enumerate(payloads):
                    self.seq[rid] = (self.seq[rid] + 1) & 0xFFFF
                    marker = 0x80 if i == len(payloads) - 1 else 0
                    header = struct.pack(
                        "!BBHII",
                        0x90,
                        marker | pt,
                        self.seq[rid],
                        (self.ts_base[rid] + timestamp) & 0xFFFFFFFF,
                        self.ssrc[rid],
                    )
                    await self.hooks.send(header + ext + payload)
            self.sent += 1
            delay = started + self.sent / FPS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pc.close()


class BandwidthCap:
    """Emulates the subscriber's bandwidth estimate: every REMB it sends says `bitrate`."""

    def __init__(self, client: Client, bitrate: int) -> None:
        assert client.sub_pc is not None
        self.bitrate = bitrate
        self._dtls = dtls_of(client.sub_pc)
        self._original = self._dtls._send_rtp
        self.ssrcs: list[int] = []
        self._dtls._send_rtp = self._send_rtp

    async def _send_rtp(self, data: bytes) -> None:
        if data[1] == 206 and data[0] & 0x1F == RTCP_PSFB_APP:  # a lone REMB (aiortc sends it alone)
            with contextlib.suppress(ValueError):
                packet = RtcpPacket.parse(data)[0]
                self.ssrcs = unpack_remb_fci(packet.fci)[1]
                packet.fci = pack_remb_fci(self.bitrate, self.ssrcs)
                data = bytes(packet)
        await self._original(data)

    async def announce(self, ssrcs: list[int]) -> None:
        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(self.bitrate, ssrcs))
        await self._original(bytes(remb))


@pytest.mark.slow
async def test_subscriber_layer_follows_bandwidth_and_tile_size(
    meeting: Meeting, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiortc.rtcrtpreceiver")
    owner = await meeting.client("pub")
    publisher = SimulcastPublisher()
    try:
        await publisher.publish(owner)
        await meeting.wait_tracks(1)
        track = next(iter(meeting.router.tracks.values()))
        assert track.simulcast and sorted(track.layers) == ["f", "h", "q"]

        viewer = await meeting.client("viewer")
        await viewer.subscribe()
        assert viewer.sub_pc is not None
        cap = BandwidthCap(viewer, 100_000)
        out_ssrc = meeting.router.peers["viewer"].subscribe_connection.subscriptions[0].ssrc  # type: ignore[union-attr]

        # Wait for the layer bitrates to be measured, then state the cap.
        await viewer.wait_until(lambda: all(layer.bitrate for layer in track.layers.values()), within=10)
        await cap.announce([out_ssrc])
        await viewer.wait_until(lambda: _tail_width(viewer) == 80, within=10)

        # The cap lifts: the estimate is now far above the top layer.
        cap.bitrate = 10_000_000
        await cap.announce([out_ssrc])
        await viewer.wait_until(lambda: _tail_width(viewer) == 320, within=10)

        # The tile shrinks to 160x120: the middle layer is enough.
        meeting.router.peers["viewer"].set_max_size(track.id, 160, 120)
        await viewer.wait_until(lambda: _tail_width(viewer) == 160, within=10)

        widths = [w for w, _ in viewer.decoded_sizes]
        assert widths[0] in (80, 160, 320)
        assert {80, 160, 320} <= set(widths)
        counters = [c for _, c in next(iter(viewer.frames.values()))]
        steps = {b - a for a, b in itertools.pairwise(counters)}
        # One SSRC with continuous numbering: a switch may repeat one frame index (the new layer's keyframe)
        # but never skips one.
        assert steps <= {0, 1}, f"counter steps {sorted(steps)}"
        assert not [r for r in caplog.records if "failed to decode" in r.getMessage()]
        subscription = meeting.router.peers["viewer"].subscribe_connection.subscriptions[0]  # type: ignore[union-attr]
        assert subscription.current is track.layers["h"]
        assert not track.watched(track.layers["q"]) and not track.watched(track.layers["f"])
        assert subscription.switches >= 3
    finally:
        await publisher.close()


def _tail_width(client: Client) -> int:
    """Width of the last few decoded frames when they agree, else 0."""
    tail = client.decoded_sizes[-5:]
    widths = {w for w, _ in tail}
    return widths.pop() if len(tail) == 5 and len(widths) == 1 else 0

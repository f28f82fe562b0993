"""CPU per packet of the SFU's forwarding path, in process: ``python -m bench.forwarding_micro``.

The path measured runs from "decrypted RTP bytes arrive at the publisher hook" (the function ``sfu.hooks``
installs as ``RTCDtlsTransport._handle_rtp_data``) to "SRTP-protected bytes handed to the subscriber's UDP
transport" (aioice's ``StunProtocol.transport.sendto``). Everything in between is the real code: the
``PublishConnection`` ingress (parse, demux, REMB estimate, statistics, NACK tracking), each subscriber's
``Subscription`` rewrite and the egress through ``PeerHooks`` into aiortc's DTLS transport, SRTP protect
(pylibsrtp, AEAD_AES_128_GCM) and aioice's ``Connection``. Only the two ends are fakes: DTLS transports that
are "connected" without a handshake, and a UDP transport whose ``sendto`` only counts.

One publisher sends VP8 video (1200-byte packets, mid + abs-send-time extensions, 10 packets per frame) to
N subscribers. Reported: µs per input packet, per forwarded copy, and the marginal cost of one more
subscriber, with and without SRTP protect; each figure is the median of several runs of many packets.
``--profile`` runs cProfile instead; ``--instructions`` makes one run per N for callgrind (deterministic on a
shared machine, see ``World.run_counted`` and docs/optimizations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import os
import pstats
import statistics
import struct
import sys
import time
from types import SimpleNamespace
from typing import Any

import aioice
import aiortc
import pylibsrtp
from aioice.candidate import Candidate
from aioice.ice import CandidatePair, Connection, StunProtocol
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from pylibsrtp import Policy, Session

from sfu.publish import PublishConnection
from sfu.rtp import URI_ABS_SEND_TIME, URI_MID, build_extensions
from sfu.settings import SfuSettings
from sfu.subscribe import SubscribeConnection
from sfu.track import Track

PAYLOAD_BYTES = 1200
PACKETS_PER_FRAME = 10
PUB_SSRC, PUB_RTX_SSRC = 0x1000, 0x1001
VP8_PT, RTX_PT = 96, 97
FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]


class CountingUdp:
    """Stands in for the asyncio datagram transport under aioice: counts what would go on the wire."""

    def __init__(self) -> None:
        self.packets = 0
        self.octets = 0

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.packets += 1
        self.octets += len(data)


class PassThroughSrtp:
    """A pylibsrtp.Session that does not encrypt: isolates the cost of everything but SRTP."""

    def protect(self, data: bytes) -> bytes:
        return data

    def protect_rtcp(self, data: bytes) -> bytes:
        return data


def connected_dtls(udp: CountingUdp, *, srtp: bool) -> Any:
    """A real RTCDtlsTransport in the CONNECTED state over a real aioice Connection, minus the handshake."""
    connection = Connection(ice_controlling=True)
    protocol = StunProtocol(connection)
    protocol.transport = udp  # type: ignore[assignment]
    protocol.local_candidate = Candidate("1", 1, "udp", 1, "127.0.0.1", 40000, "host")
    pair = CandidatePair(protocol, Candidate("2", 1, "udp", 1, "127.0.0.1", 40001, "host"))
    connection._nominated[1] = pair
    dtls: Any = RTCDtlsTransport.__new__(RTCDtlsTransport)
    dtls._state = State.CONNECTED
    dtls._transport = SimpleNamespace(_send=connection.send, _connection=connection)
    dtls._RTCDtlsTransport__tx_bytes = 0
    dtls._RTCDtlsTransport__tx_packets = 0
    if srtp:
        policy = Policy(
            key=os.urandom(28),
            ssrc_type=Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
        policy.allow_repeat_tx = True
        dtls._tx_srtp = Session(policy)
    else:
        dtls._tx_srtp = PassThroughSrtp()
    return dtls


def publish_params() -> RTCRtpReceiveParameters:
    return RTCRtpReceiveParameters(
        codecs=[
            RTCRtpCodecParameters(
                mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT, rtcpFeedback=FEEDBACK
            ),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=RTX_PT, parameters={"apt": VP8_PT}
            ),
        ],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
            RTCRtpHeaderExtensionParameters(id=2, uri=URI_ABS_SEND_TIME),
        ],
        muxId="0",
        encodings=[
            RTCRtpDecodingParameters(
                ssrc=PUB_SSRC, payloadType=VP8_PT, rtx=RTCRtpRtxParameters(ssrc=PUB_RTX_SSRC)
            )
        ],
    )


def subscribe_params(mid: str) -> RTCRtpSendParameters:
    return RTCRtpSendParameters(
        codecs=[
            RTCRtpCodecParameters(
                mimeType="video/VP8", clockRate=90000, payloadType=97, rtcpFeedback=FEEDBACK
            ),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97}
            ),
        ],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID),
            RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
        ],
        muxId=mid,
        rtcp=RTCRtcpParameters(cname="bench"),
    )


def make_packets(count: int) -> list[tuple[bytes, int]]:
    """(decrypted RTP, arrival ms) of 30 fps VP8, each frame's packets paced 0.3 ms apart (~300 packets/s).

    The first packet starts a keyframe. The REMB estimator's cost depends on how packets group into frames,
    so send and arrival times follow a browser's pacer rather than a uniform spacing.
    """
    packets = []
    body = bytes(range(256)) * (PAYLOAD_BYTES // 256 + 1)
    for i in range(count):
        frame = i // PACKETS_PER_FRAME
        first = i % PACKETS_PER_FRAME == 0
        picture_id = frame & 0x7FFF
        descriptor = bytes((0x90 if first else 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF))
        vp8 = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 360) if i == 0 else b"\x01\x00\x00"
        payload = (descriptor + vp8 + body)[:PAYLOAD_BYTES]
        sent_s = frame / 30 + (i % PACKETS_PER_FRAME) * 0.0003
        arrival_ms = int(sent_s * 1000) + 20
        abs_send = (int(sent_s * 262144) & 0xFFFFFF).to_bytes(3, "big")  # 6.18 fixed-point seconds
        ext = build_extensions([(4, b"0"), (2, abs_send)])
        marker = 0x80 if i % PACKETS_PER_FRAME == PACKETS_PER_FRAME - 1 else 0
        header = struct.pack("!BBHII", 0x90, marker | VP8_PT, i & 0xFFFF, frame * 3000, PUB_SSRC)
        packets.append((header + ext + payload, arrival_ms))
    return packets


class World:
    """One publisher connection with one video track, N subscribe connections forwarding it."""

    def __init__(self, subscribers: int, *, srtp: bool) -> None:
        settings = SfuSettings()
        self.tracks: list[Track] = []
        self.publisher = PublishConnection(
            "pub",
            settings,
            on_track=self.tracks.append,
            on_track_ended=lambda track: None,
            on_audio_level=lambda participant, level: None,
        )
        self.feedback_udp = CountingUdp()
        self.publisher.hooks._install_tap(connected_dtls(self.feedback_udp, srtp=srtp))
        self.publisher._on_receive(SimpleNamespace(kind="video"), publish_params())
        track = self.tracks[0]
        self.udp = CountingUdp()
        self.connections: list[SubscribeConnection] = []
        for n in range(subscribers):
            connection = SubscribeConnection(f"sub{n}", settings, on_needs_offer=lambda: None)
            connection.hooks._install_tap(connected_dtls(self.udp, srtp=srtp))
            transceiver = SimpleNamespace(
                kind="video", mid=str(n), sender=SimpleNamespace(_ssrc=0x2000 + n, _rtx_ssrc=0x3000 + n)
            )
            subscription = connection._add_subscription(transceiver)
            subscription.params = subscribe_params(str(n))
            subscription.bind(track)
            self.connections.append(connection)
        self.hook = self.publisher.hooks._dtls._handle_rtp_data

    async def run(self, packets: list[tuple[bytes, int]]) -> float:
        """CPU seconds of this thread to push `packets` through the hook (immune to other processes)."""
        hook = self.hook
        gc.collect()
        start = time.thread_time()
        for data, arrival_ms in packets:
            await hook(data, arrival_ms)
        return time.thread_time() - start

    def run_counted(self, packets: list[tuple[bytes, int]]) -> int:
        """The same loop, driven synchronously inside ``functools.reduce`` (nothing on the path calls it).

        ``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce`` then counts the
        instructions of exactly this loop: deterministic, unlike time on a shared machine.
        """
        hook = self.hook

        def step(count: int, item: tuple[bytes, int]) -> int:
            coroutine = hook(*item)
            try:
                coroutine.send(None)
            except StopIteration:
                return count + 1
            coroutine.close()
            raise RuntimeError("the forwarding path suspended")

        return functools.reduce(step, packets, 0)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
        await self.publisher.close()


async def measure(subscribers: int, *, srtp: bool, packets: int, runs: int) -> tuple[float, float]:
    """Median and minimum µs per input packet over `runs` runs (one warm-up run first, not counted).

    The machine is shared, so CPU time of this thread (not wall time) is measured; the minimum is the run
    least disturbed by other processes (caches, frequency), the median the typical one.
    """
    world = World(subscribers, srtp=srtp)
    stream = make_packets(packets * (runs + 1))
    try:
        await world.run(stream[:packets])
        times = [await world.run(stream[packets * (r + 1) : packets * (r + 2)]) for r in range(runs)]
        expected = packets * (runs + 1) * subscribers
        if world.udp.packets != expected:
            raise RuntimeError(f"{world.udp.packets} packets forwarded, expected {expected}")
        if world.publisher.hooks.errors:
            raise RuntimeError(f"{world.publisher.hooks.errors} errors in the publisher hook")
    finally:
        await world.close()
    return statistics.median(times) / packets * 1e6, min(times) / packets * 1e6


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}); Python {sys.version.split()[0]}; aiortc {aiortc.__version__},"
        f" aioice {aioice.__version__}, pylibsrtp {pylibsrtp.__version__}"
    )


async def main_async(args: argparse.Namespace) -> None:
    print(machine())
    print(f"1 publisher (VP8, {PAYLOAD_BYTES}-byte payloads) -> N subscribers; median of {args.runs} runs")
    print(f"of {args.packets} packets each. µs of CPU (this thread) per packet.\n")
    print("µs/input pkt: median (min); µs/fwd copy = per input / N; marginal = (N subscribers - none) / N\n")
    print(f"{'SRTP':<6}{'N':>4}{'µs/input pkt':>20}{'µs/fwd copy':>14}{'marginal µs/copy':>19}")
    for srtp in (False, True):
        label = "yes" if srtp else "no"
        base, base_min = await measure(0, srtp=srtp, packets=args.packets, runs=args.runs)
        print(f"{label:<6}{0:>4}{base:>12.2f} ({base_min:5.2f}){'-':>14}{'-':>19}")
        for n in (n for n in args.subscribers if n > 0):  # N=0 is the baseline above
            per_input, per_input_min = await measure(n, srtp=srtp, packets=args.packets, runs=args.runs)
            print(
                f"{label:<6}{n:>4}{per_input:>12.2f} ({per_input_min:5.2f}){per_input / n:>14.2f}"
                f"{(per_input - base) / n:>19.2f}"
            )


async def profile_async(args: argparse.Namespace) -> None:
    n = args.subscribers[-1]
    world = World(n, srtp=True)
    stream = make_packets(args.packets * 2)
    try:
        await world.run(stream[: args.packets])
        profiler = cProfile.Profile()
        profiler.enable()
        await world.run(stream[args.packets :])
        profiler.disable()
    finally:
        await world.close()
    print(f"cProfile, 1 publisher -> {n} subscribers, SRTP on, {args.packets} packets")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


async def instructions_async(args: argparse.Namespace) -> None:
    """One counted run per N (SRTP on): run under callgrind, see ``World.run_counted``."""
    for n in args.subscribers:
        world = World(n, srtp=True)
        stream = make_packets(args.packets * 2)
        try:
            await world.run(stream[: args.packets])
            world.run_counted(stream[args.packets :])
        finally:
            await world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=3000, help="packets per run")
    parser.add_argument("--runs", type=int, default=7, help="timed runs (the median is reported)")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--profile", action="store_true", help="cProfile the largest N instead")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="one counted run per N, to run under callgrind (see World.run_counted)",
    )
    args = parser.parse_args()
    if args.profile:
        asyncio.run(profile_async(args))
    elif args.instructions:
        asyncio.run(instructions_async(args))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

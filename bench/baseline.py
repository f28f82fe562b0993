"""The latency of the clients alone: one publisher connected straight to one subscriber, no SFU in between.

    python -m bench.baseline VIDEO AUDIO ICE_ADDRESS SECONDS RESULT.json [CPU]

The same tagged media, the same raw-receive probe and the same ICE/DTLS-SRTP path as a benchmark step, in one
process. Its latency percentiles are subtracted from each SFU's to give the latency the SFU adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from aiortc import RTCPeerConnection

from bench.backends import wait_connected
from bench.loadgen import add_publisher_tracks, new_peer_connection, pin_ice
from bench.media import AudioFileTrack, VideoFileTrack, load_audio, load_video
from bench.probe import SubscriberProbe, install_raw_receive, tap_subscriber
from bench.stats import percentile


async def measure(video: Path, audio: Path, seconds: float) -> dict[str, float | None]:
    publisher, subscriber = new_peer_connection(), new_peer_connection()
    probe = SubscriberProbe()
    try:
        add_publisher_tracks(publisher, VideoFileTrack(load_video(video)), AudioFileTrack(load_audio(audio)))
        await publisher.setLocalDescription(await publisher.createOffer())
        await subscriber.setRemoteDescription(publisher.localDescription)
        tap_subscriber(subscriber, probe)
        await subscriber.setLocalDescription(await subscriber.createAnswer())
        await publisher.setRemoteDescription(subscriber.localDescription)
        await asyncio.gather(wait_connected(publisher, 20), wait_connected(subscriber, 20))
        await asyncio.sleep(2)  # past the first keyframe and the DTLS start-up
        start = len(probe.latencies_ms)
        await asyncio.sleep(seconds)
        window = probe.latencies_ms[start:]
    finally:
        await asyncio.gather(_close(publisher), _close(subscriber))
    return {"p50": percentile(window, 50), "p99": percentile(window, 99), "frames": float(len(window))}


async def _close(pc: RTCPeerConnection) -> None:
    await pc.close()


def main(argv: list[str]) -> int:
    video, audio, address, seconds, result = argv[:5]
    if len(argv) > 5:
        os.sched_setaffinity(0, {int(argv[5])})
    pin_ice(address)
    install_raw_receive()
    out = asyncio.run(measure(Path(video), Path(audio), float(seconds)))
    Path(result).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The monitor's media check: one audio stream through the process's own SFU and back, over UDP loopback.

A probe publisher (a stock aiortc client) publishes silence into a router of its own; a probe subscriber
receives it through the SFU's forwarding path (hooks, fan-out, SRTP, the media sockets of the configured
port range) and must decode a frame within the timeout. Each check negotiates afresh (ICE, DTLS), so a
media port range that is exhausted or a forwarding path that drops packets fails it; no traffic flows
between checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from sfu.events import RouterEvent, TrackPublished
from sfu.sfu import Sfu

log = logging.getLogger(__name__)

# Meeting ids of real meetings are numbers: this router can never be one of theirs.
PROBE_ROUTER = "monitor-probe"
PUBLISHER = "probe-publisher"
SUBSCRIBER = "probe-subscriber"


class MediaCheckFailed(Exception):
    """The probe's audio did not come back through the SFU."""


class MediaProbe:
    """Callable check; one probe at a time (a second caller waits for the first)."""

    def __init__(self, sfu: Sfu) -> None:
        self._sfu = sfu
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            await self._round_trip()

    async def _round_trip(self) -> None:
        router = self._sfu.router(PROBE_ROUTER)
        published: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_event(event: RouterEvent) -> None:
            if isinstance(event, TrackPublished) and not published.done():
                published.set_result(None)

        router.add_listener(on_event)
        connections: list[RTCPeerConnection] = []
        tasks: list[asyncio.Task[Any]] = []
        try:
            publisher = await router.add_peer(PUBLISHER)
            pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            connections.append(pub)
            pub.addTrack(AudioStreamTrack())
            await pub.setLocalDescription(await pub.createOffer())
            sources = {t.mid: "mic" for t in pub.getTransceivers() if t.mid is not None}
            answer = await publisher.answer_publish(pub.localDescription.sdp, sources)
            await pub.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await published

            subscriber = await router.add_peer(SUBSCRIBER, publish=False)
            sub = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
            connections.append(sub)
            received: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def consume(track: Any) -> None:
                await track.recv()
                if not received.done():
                    received.set_result(None)

            sub.on("track", lambda track: tasks.append(asyncio.create_task(consume(track))))
            offer = await subscriber.create_subscribe_offer()
            await sub.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await sub.setLocalDescription(await sub.createAnswer())
            await subscriber.accept_subscribe_answer(sub.localDescription.sdp)
            await received
        except MediaCheckFailed:
            raise
        except Exception as exc:
            raise MediaCheckFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for pc in connections:
                with contextlib.suppress(Exception):
                    await pc.close()
            await router.close()

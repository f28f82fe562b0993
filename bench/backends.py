"""How the load generator publishes to and subscribes from each SFU (signalling only; media is the same).

Both SFUs get the same exchanges, all non-trickle (every candidate is in the SDP) over plain HTTP on
127.0.0.1:

* publish: the client offers, the SFU answers, one request. Janus: VideoRoom ``joinandconfigure``. Yunhui:
  WHIP (``POST <whip>/<meeting>`` with the SDP offer, 201 + answer + Location), the product's ingest endpoint.
* subscribe: the SFU offers every track of the room in one PeerConnection, the client answers. Janus:
  VideoRoom ``join`` (offer) then ``start`` (answer). Yunhui: the meeting protocol's subscribe exchange
  (``Peer.create_subscribe_offer`` / ``accept_subscribe_answer``, exactly what signaling/ calls) carried over
  two HTTP requests by bench/yunhui_server.py. WHEP is not used for subscribers: Yunhui's WHEP plays the
  active speaker only, so it cannot give a meeting subscriber all four publishers, and its client-offers
  direction would differ from Janus's SFU-offers direction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.janus import JanusHandle, JanusSession

TransportsReady = Callable[[RTCPeerConnection], None]


class Backend(Protocol):
    async def start(self, http: aiohttp.ClientSession) -> None: ...

    async def publish(self, pc: RTCPeerConnection, name: str) -> str:
        """Negotiate pc (which already carries its sendonly tracks); returns the feed id subscribers use."""
        ...

    async def wait_published(self, pc: RTCPeerConnection, feed: str, within_s: float) -> None:
        """Until subscribers can ask for feed."""
        ...

    async def subscribe(
        self, pc: RTCPeerConnection, feeds: list[str], on_transports: TransportsReady
    ) -> None:
        """Negotiate a receive-only pc for feeds; on_transports runs once pc's transports exist."""
        ...

    async def close(self) -> None: ...


async def wait_connected(pc: RTCPeerConnection, within_s: float) -> None:
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        if pc.connectionState in ("connected", "failed", "closed") and not done.done():
            done.set_result(pc.connectionState)

    pc.on("connectionstatechange", check)
    check()
    state = await asyncio.wait_for(done, within_s)
    if state != "connected":
        raise ConnectionError(f"peer connection {state}")


async def _complete_offer(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers all candidates here
    return str(pc.localDescription.sdp)


async def _complete_answer(pc: RTCPeerConnection, offer: str, on_transports: TransportsReady) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    on_transports(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


class JanusBackend:
    """Janus VideoRoom over the HTTP API; one Janus session per load-generator process."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._session: JanusSession | None = None
        self._publishers: dict[str, JanusHandle] = {}

    async def start(self, http: aiohttp.ClientSession) -> None:
        self._session = JanusSession(self._url, http)
        await self._session.create()

    async def publish(self, pc: RTCPeerConnection, name: str) -> str:
        assert self._session is not None
        handle = await self._session.attach()
        feed, answer = await handle.publish(await _complete_offer(pc), name)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self._publishers[str(feed)] = handle
        return str(feed)

    async def wait_published(self, pc: RTCPeerConnection, feed: str, within_s: float) -> None:
        # Janus refuses subscriptions ("No such feed") until it has seen the publisher's DTLS come up.
        await asyncio.wait_for(self._publishers[feed].webrtcup.wait(), within_s)

    async def subscribe(
        self, pc: RTCPeerConnection, feeds: list[str], on_transports: TransportsReady
    ) -> None:
        assert self._session is not None
        handle = await self._session.attach()
        offer = await handle.subscribe([int(f) for f in feeds])
        await handle.start(await _complete_answer(pc, offer, on_transports))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class YunhuiBackend:
    """Yunhui: WHIP to publish, the meeting protocol's subscribe exchange over HTTP (yunhui_server.py)."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        self._http: aiohttp.ClientSession | None = None
        self._resources: list[str] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        self._http = http

    async def _post(self, path: str, body: str, content_type: str) -> tuple[int, str, Any]:
        assert self._http is not None
        async with self._http.post(
            self._url + path, data=body, headers={"Content-Type": content_type}
        ) as response:
            text = await response.text()
            if response.status >= 300:
                raise ConnectionError(f"POST {path}: HTTP {response.status} {text[:200]}")
            return response.status, text, response.headers

    async def publish(self, pc: RTCPeerConnection, name: str) -> str:
        _, answer, headers = await self._post("/sfu/whip", await _complete_offer(pc), "application/sdp")
        location = headers.get("Location", "")
        if location:
            self._resources.append(location)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        return name

    async def wait_published(self, pc: RTCPeerConnection, feed: str, within_s: float) -> None:
        await wait_connected(pc, within_s)

    async def subscribe(
        self, pc: RTCPeerConnection, feeds: list[str], on_transports: TransportsReady
    ) -> None:
        # The SFU offers every track of the meeting (all feeds) in one subscribe PeerConnection.
        _, offer, headers = await self._post("/subscribe", "", "application/sdp")
        location = headers["Location"]
        self._resources.append(location)
        await self._post(location, await _complete_answer(pc, offer, on_transports), "application/sdp")

    async def close(self) -> None:
        if self._http is None:
            return
        for location in self._resources:
            url = location if location.startswith("http") else self._url + location
            try:
                async with self._http.delete(url):
                    pass
            except aiohttp.ClientError:
                pass


def make_backend(kind: str, url: str) -> Backend:
    if kind == "janus":
        return JanusBackend(url)
    if kind == "yunhui":
        return YunhuiBackend(url)
    raise ValueError(f"backend: unknown kind {kind!r}")

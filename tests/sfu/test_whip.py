"""WHIP ingest from one aiortc client and WHEP playback at another, over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from sfu.sdp import media_sections
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from sfu.whip import whip_app
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack, assert_consecutive, read_counter

TOKEN = "Bearer meeting-7-token"


def authorize(request: web.Request) -> str:
    if request.headers.get("Authorization") != TOKEN:
        raise web.HTTPUnauthorized(text="bad token")
    return "meeting-7"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Sfu, str]]:
    async with serving(SfuSettings()) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(settings: SfuSettings) -> AsyncIterator[tuple[Sfu, str]]:
    sfu = Sfu(settings)
    root = web.Application()
    root.add_subapp("/media", whip_app(sfu, authorize))
    runner = web.AppRunner(root)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield sfu, f"http://{host}:{port}/media"
    finally:
        await runner.cleanup()
        await sfu.close()


def test_media_sections() -> None:
    sdp = "v=0\r\nm=audio 9 UDP 0\r\na=mid:a0\r\nm=video 9 UDP 96\r\na=mid:v1\r\n"
    sdp += "m=application 9 x\r\na=mid:d\r\n"
    assert media_sections(sdp) == {"a0": "audio", "v1": "video"}


async def test_whip_rejects_bad_requests(server: tuple[Sfu, str]) -> None:
    _, base = server
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/whip", data="v=0", headers={"Content-Type": "application/sdp"}) as r:
            assert r.status == 401
        headers = {"Authorization": TOKEN}
        async with http.post(
            f"{base}/whip", data="hello", headers={**headers, "Content-Type": "text/plain"}
        ) as r:
            assert r.status == 415
        async with http.post(
            f"{base}/whip", data="hello", headers={**headers, "Content-Type": "application/sdp"}
        ) as r:
            assert r.status == 400
        garbage = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        async with http.post(
            f"{base}/whip", data=garbage, headers={**headers, "Content-Type": "application/sdp"}
        ) as r:
            assert r.status == 400
            assert "offer_sdp" in await r.text()
        async with http.delete(f"{base}/whip/whip-nope", headers=headers) as r:
            assert r.status == 404


@pytest.mark.slow
async def test_publish_with_whip_and_play_with_whep(server: tuple[Sfu, str]) -> None:
    sfu, base = server
    headers = {"Authorization": TOKEN, "Content-Type": "application/sdp"}
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counters: list[int] = []
    frame_seen = asyncio.Event()
    consumers: list[asyncio.Task[None]] = []

    async def consume(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "video":
                counters.append(read_counter(frame))
                frame_seen.set()

    viewer.on("track", lambda track: consumers.append(asyncio.create_task(consume(track))))
    try:
        async with aiohttp.ClientSession() as http:
            publisher.addTrack(ToneAudioTrack(0.0))
            publisher.addTrack(CounterVideoTrack(4000))
            await publisher.setLocalDescription(await publisher.createOffer())
            async with http.post(f"{base}/whip", data=publisher.localDescription.sdp, headers=headers) as r:
                assert r.status == 201, await r.text()
                assert r.content_type == "application/sdp"
                whip_location = r.headers["Location"]
                assert whip_location.startswith("/media/whip/whip-")
                answer = await r.text()
            await publisher.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

            router = sfu.routers["meeting-7"]
            changed = asyncio.Event()
            router.add_listener(lambda event: changed.set())
            deadline = time.monotonic() + 10
            while len(router.tracks) < 2:  # published once the publish connection is up
                changed.clear()
                await asyncio.wait_for(changed.wait(), timeout=deadline - time.monotonic())

            viewer.addTransceiver("audio", direction="recvonly")
            viewer.addTransceiver("video", direction="recvonly")
            await viewer.setLocalDescription(await viewer.createOffer())
            async with http.post(f"{base}/whep", data=viewer.localDescription.sdp, headers=headers) as r:
                assert r.status == 201, await r.text()
                whep_location = r.headers["Location"]
                answer = await r.text()
            await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

            deadline = time.monotonic() + 10
            while len(counters) < 30:
                frame_seen.clear()
                await asyncio.wait_for(frame_seen.wait(), timeout=deadline - time.monotonic())
            assert all(4000 <= c < 5000 for c in counters)
            assert_consecutive(counters, "WHEP viewer <- WHIP publisher")

            base_url = base.rsplit("/media", 1)[0]
            async with http.delete(base_url + whep_location, headers={"Authorization": TOKEN}) as r:
                assert r.status == 200
            async with http.delete(base_url + whip_location, headers={"Authorization": TOKEN}) as r:
                assert r.status == 200
            assert not router.peers
            assert not router.tracks
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await publisher.close()
        await viewer.close()


async def test_sessions_admitted_and_ended_through_callbacks() -> None:
    """With ``admit``/``end`` the caller owns the sessions: body checks come first, every end is reported."""
    sfu = Sfu(SfuSettings())
    admitted: list[str] = []
    ended: list[tuple[str, str]] = []

    async def admit(request: web.Request, kind: str) -> tuple[str, str]:
        if request.headers.get("Authorization") != TOKEN:
            raise web.HTTPUnauthorized(text="bad token")
        session_id = f"{kind}-{len(admitted)}"
        admitted.append(session_id)
        if request.headers.get("X-No-Peer") is None:
            await sfu.router("meeting-7").add_peer(session_id, publish=kind == "whip")
        return session_id, "meeting-7"

    async def end(session_id: str, reason: str) -> None:
        ended.append((session_id, reason))
        await sfu.router("meeting-7").remove_peer(session_id)

    root = web.Application()
    root.add_subapp("/media", whip_app(sfu, authorize, admit=admit, end=end))
    runner = web.AppRunner(root)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}/media"
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sdp = {"Authorization": TOKEN, "Content-Type": "application/sdp"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/whip", data="v=0", headers={**sdp, "Content-Type": "text/plain"}
            ) as r:
                assert r.status == 415
            assert admitted == []  # a malformed request never takes a seat
            garbage = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
            async with http.post(f"{base}/whip", data=garbage, headers=sdp) as r:
                assert r.status == 400
            assert ended == [("whip-0", "error")]
            async with http.post(f"{base}/whip", data=garbage, headers={**sdp, "X-No-Peer": "1"}) as r:
                assert r.status == 503
            assert ended[-1] == ("whip-1", "error")

            viewer.addTransceiver("video", direction="recvonly")
            await viewer.setLocalDescription(await viewer.createOffer())
            async with http.post(f"{base}/whep", data=viewer.localDescription.sdp, headers=sdp) as r:
                assert r.status == 201, await r.text()
                location = r.headers["Location"]
            assert location == "/media/whep/whep-2"
            async with http.delete(f"{base}/whep/whep-2", headers={"Authorization": TOKEN}) as r:
                assert r.status == 200
            assert ended[-1] == ("whep-2", "left")
            assert not sfu.routers["meeting-7"].peers
    finally:
        await viewer.close()
        await runner.cleanup()
        await sfu.close()


async def test_whip_answers_503_when_no_media_port_is_free() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    headers = {"Authorization": TOKEN, "Content-Type": "application/sdp"}
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    try:
        one_port = SfuSettings(udp_port_min=port, udp_port_max=port)
        async with serving(one_port) as (_, base), aiohttp.ClientSession() as http:
            statuses = []
            for pc in pcs:
                pc.addTrack(ToneAudioTrack(0.1))
                await pc.setLocalDescription(await pc.createOffer())
                async with http.post(f"{base}/whip", data=pc.localDescription.sdp, headers=headers) as r:
                    statuses.append((r.status, r.headers.get("Retry-After"), await r.text()))
        assert statuses[0][0] == 201
        assert statuses[1][:2] == (503, "5") and "no UDP port is free for media" in statuses[1][2]
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs))

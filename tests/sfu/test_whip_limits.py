"""WHIP/WHEP limits: the token is checked before the body, offers are capped, WHEP sessions per token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection

from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from sfu.whip import whip_app

TOKENS = ("Bearer token-a", "Bearer token-b")
SDP = "application/sdp"


def authorize(request: web.Request) -> str:
    if request.headers.get("Authorization") not in TOKENS:
        raise web.HTTPUnauthorized(text="bad_token: no")
    return "meeting-7"


@contextlib.asynccontextmanager
async def serving(body_read_at_identify: list[bool]) -> AsyncIterator[tuple[Sfu, str]]:
    sfu = Sfu(SfuSettings())
    admitted = 0

    def identify(request: web.Request) -> str:
        body_read_at_identify.append(request.content.at_eof())
        return authorize(request) and request.headers["Authorization"]

    async def admit(request: web.Request, kind: str) -> tuple[str, str]:
        nonlocal admitted
        admitted += 1
        session_id = f"{kind}-{admitted}"
        await sfu.router("meeting-7").add_peer(session_id, publish=kind == "whip")
        return session_id, "meeting-7"

    async def end(session_id: str, reason: str) -> None:
        await sfu.router("meeting-7").remove_peer(session_id)

    app = whip_app(
        sfu,
        authorize,
        admit=admit,
        end=end,
        identify=identify,
        whep_sessions_per_token=2,
        max_offer_bytes=4096,
    )
    root = web.Application()
    root.add_subapp("/media", app)
    runner = web.AppRunner(root)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield sfu, f"http://{host}:{port}/media"
    finally:
        await runner.cleanup()
        await sfu.close()


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_the_token_is_checked_before_the_body_and_offers_are_capped() -> None:
    seen: list[bool] = []
    async with serving(seen) as (_sfu, base), aiohttp.ClientSession() as http:
        async with http.post(f"{base}/whip", data="v=0\r\n", headers={"Content-Type": SDP}) as r:
            assert r.status == 401
        assert seen == [False]  # identify ran while the body was still unread
        headers = {"Authorization": TOKENS[0], "Content-Type": SDP}
        big = "v=0\r\n" + "a=x\r\n" * 1000
        async with http.post(f"{base}/whip", data=big, headers=headers) as r:
            assert r.status == 413
            assert (await r.text()).startswith("too_large: an SDP offer has at most 4096 bytes")

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"v=0\r\n" + b"a=x\r\n" * 100

        async with http.post(f"{base}/whep", data=chunked(), headers=headers) as r:
            assert r.status == 413  # no Content-Length: refused once the cap is passed


async def test_whep_sessions_per_token_are_limited() -> None:
    pc, offer = await _offer()
    try:
        async with serving([]) as (sfu, base), aiohttp.ClientSession() as http:

            async def play(token: str) -> tuple[int, str, str]:
                headers = {"Authorization": token, "Content-Type": SDP}
                async with http.post(f"{base}/whep", data=offer, headers=headers) as r:
                    return r.status, await r.text(), r.headers.get("Location", "")

            first, second = await play(TOKENS[0]), await play(TOKENS[0])
            assert (first[0], second[0]) == (201, 201)
            status, text, _ = await play(TOKENS[0])
            assert status == 429
            assert text.startswith("too_many_sessions: at most 2 WHEP sessions at once per join token")
            assert (await play(TOKENS[1]))[0] == 201  # another token has its own sessions
            async with http.delete(
                base + first[2].removeprefix("/media"), headers={"Authorization": TOKENS[0]}
            ):
                pass
            assert (await play(TOKENS[0]))[0] == 201  # an ended session frees its slot
            # A session whose connection closes without a DELETE frees its slot too.
            session_id = second[2].rsplit("/", 1)[-1]
            await sfu.routers["meeting-7"].remove_peer(session_id)
            assert (await play(TOKENS[0]))[0] == 201
            assert (await play(TOKENS[0]))[0] == 429
    finally:
        await pc.close()

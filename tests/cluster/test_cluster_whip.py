"""WHIP/WHEP in a cluster (issue #20, research/scale-out.md §4.7): a POST at a non-owner answers 307 to the
owner under /w/k/, and through real nginx the resource Location keeps /w/k so DELETE reaches the owner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Room
from rooms.tokens import mint_join_token
from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, start_nginx, stop_nginx
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack
from tests.signaling.live_server import Client

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

SECRET = "cluster-test-secret-key-0123456789abcdef"  # tests/cluster/conftest.py's [security]
SDP = "application/sdp"


async def _token(database_url: str, role: str) -> str:
    database = await Database.connect(database_url)
    try:
        async with database.session() as session:
            room = (await session.scalars(select(Room).where(Room.meeting_number == NUMBER))).one()
    finally:
        await database.close()
    token, _ = mint_join_token(
        SECRET, room_id=room.id, meeting_number=NUMBER, account_id=room.account_id, role=role,
        display_name="Encoder", now=datetime.now(UTC), ttl=timedelta(hours=1),
    )  # fmt: skip
    return token


async def _offer(kind: str) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if kind == "whip":
        pc.addTrack(ToneAudioTrack(0.2))
        pc.addTrack(CounterVideoTrack(0))
    else:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def test_whip_and_whep_at_a_non_owner_are_redirected_and_their_resources_work_through_nginx(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    async with http.post(f"{first.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as response:
        owner_id = str((await response.json())["worker"])
    owner, other = (first, second) if owner_id == "1" else (second, first)
    other_id = str(other.worker_id)
    # nginx's any-worker route goes to the non-owner: every un-prefixed request enters at the wrong worker.
    nginx = await start_nginx(cluster.tmp_path, cluster.workers, entry=other.worker_id)
    host = Client()
    pcs: list[RTCPeerConnection] = []
    try:
        await host.connect(
            owner.url, {"meeting_number": NUMBER, "passcode": PASSCODE, "display_name": "Host"}
        )
        await host.expect("joined")
        token = await _token(cluster.database_url, "participant")
        bearer = {"Authorization": f"Bearer {token}"}

        # Straight at the non-owner's port: 307 to the owner's path, the offer not read.
        pc = await _offer("whip")
        pcs.append(pc)
        offer = pc.localDescription.sdp
        sdp = {**bearer, "Content-Type": SDP}
        async with http.post(
            f"{other.url}/rtc/whip?x=1", data=offer, headers=sdp, allow_redirects=False
        ) as response:
            assert response.status == 307, await response.text()
            assert response.headers["Location"] == f"/w/{owner_id}/rtc/whip?x=1"
        # Not even the wrong worker's own prefix keeps a session there.
        async with http.post(
            f"{nginx.url}/w/{other_id}/rtc/whip", data=pc.localDescription.sdp,
            headers={**bearer, "Content-Type": SDP}, allow_redirects=False,
        ) as response:  # fmt: skip
            assert response.status == 307 and response.headers["Location"] == f"/w/{owner_id}/rtc/whip"
        # The workers' internal routes are not reachable through nginx, with or without a prefix.
        for path in ("/internal/live", f"/w/{owner_id}/internal/live"):
            async with http.get(f"{nginx.url}{path}") as response:
                assert response.status == 404, path
        # A bad token is refused at once, not redirected.
        async with http.post(
            f"{nginx.url}/rtc/whip", data="v=0", headers={**sdp, "Authorization": "Bearer nope"},
            allow_redirects=False,
        ) as response:  # fmt: skip
            assert response.status == 401

        for kind in ("whip", "whep"):
            pc = await _offer(kind)
            pcs.append(pc)
            # Through nginx's any-worker route (the non-owner): the client follows the 307 with its POST.
            async with http.post(
                f"{nginx.url}/rtc/{kind}", data=pc.localDescription.sdp, headers=sdp
            ) as response:
                assert response.status == 201, await response.text()
                assert [str(r.url) for r in response.history] == [f"{nginx.url}/rtc/{kind}"]
                assert response.history[0].status == 307
                location = response.headers["Location"]
                answer = await response.text()
            assert location.startswith(f"/w/{owner_id}/rtc/{kind}/"), location
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            if kind == "whip":
                joined = await host.expect("participant_joined")
                assert joined["participant"]["participant_id"].startswith("whip-")
            # The resource URL works through nginx: DELETE reaches the owner, which holds the session.
            async with http.delete(f"{nginx.url}{location}", headers=bearer) as response:
                assert response.status == 200, await response.text()
            async with http.delete(f"{nginx.url}{location}", headers=bearer) as response:
                assert response.status == 404  # gone: the first DELETE did end it, on the owner
        # Without the prefix the same DELETE lands on the non-owner, which knows no such session: the
        # prefix is what makes the resource URL work.
        async with http.delete(f"{nginx.url}{location.removeprefix(f'/w/{owner_id}')}", headers=bearer) as r:
            assert r.status in (404, 409)
    finally:
        await asyncio.gather(host.close(), *(pc.close() for pc in pcs), return_exceptions=True)
        await stop_nginx(nginx)

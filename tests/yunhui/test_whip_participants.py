"""WHIP publishers and WHEP viewers are participants of the meeting, through the whole app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account, Attendance, Room
from rooms.tokens import mint_join_token
from tests.conftest import SECRET_KEY, RunningServer
from tests.sfu.conftest import CounterVideoTrack, ToneAudioTrack
from tests.signaling.live_server import Client
from web.keys import DATABASE

SDP = "application/sdp"


class Meeting:
    def __init__(self, server: RunningServer, room: Room, http: aiohttp.ClientSession) -> None:
        self.url = server.url
        self.db: Database = server.app[DATABASE]
        self.room = room
        self.http = http
        self.clients: list[Client] = []
        self.pcs: list[RTCPeerConnection] = []

    def token(self, role: str, name: str) -> str:
        token, _ = mint_join_token(
            SECRET_KEY,
            room_id=self.room.id,
            meeting_number=self.room.meeting_number,
            account_id=self.room.account_id,
            role=role,
            display_name=name,
            now=datetime.now(UTC),
            ttl=timedelta(hours=1),
        )
        return token

    async def join(self, role: str, name: str) -> tuple[Client, Any]:
        client = Client()
        self.clients.append(client)
        await client.connect(self.url, {"token": self.token(role, name)})
        return client, await client.expect("joined")

    async def post(self, path: str, token: str | None, sdp: str) -> tuple[int, str, str]:
        headers = {"Content-Type": SDP, **({"Authorization": f"Bearer {token}"} if token else {})}
        async with self.http.post(self.url + path, data=sdp, headers=headers) as resp:
            return resp.status, await resp.text(), resp.headers.get("Location", "")

    async def delete(self, location: str, token: str) -> int:
        async with self.http.delete(self.url + location, headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status

    async def publish(self, token: str) -> tuple[RTCPeerConnection, str]:
        """An encoder: audio and synthetic video over WHIP; returns its connection and the session URL."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.addTrack(ToneAudioTrack(0.2))
        pc.addTrack(CounterVideoTrack(0))
        await pc.setLocalDescription(await pc.createOffer())
        status, answer, location = await self.post("/rtc/whip", token, pc.localDescription.sdp)
        assert status == 201, answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return pc, location

    async def play(self, token: str) -> tuple[RTCPeerConnection, str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        status, answer, location = await self.post("/rtc/whep", token, pc.localDescription.sdp)
        assert status == 201, answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return pc, location

    async def attendance(self) -> list[Attendance]:
        async with self.db.session() as session:
            return list((await session.scalars(select(Attendance).order_by(Attendance.id))).all())


@pytest.fixture
async def meeting(server: RunningServer) -> AsyncIterator[Meeting]:
    db: Database = server.app[DATABASE]
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id, name="Studio", meeting_number="777000111", capacity=2, created_at=now
        )
        session.add(room)
        await session.commit()
    async with aiohttp.ClientSession() as http:
        state = Meeting(server, room, http)
        try:
            yield state
        finally:
            for client in state.clients:
                await client.close()
            for pc in state.pcs:
                await pc.close()


async def _next_about(client: Client, event: str, participant_id: str) -> Any:
    while True:
        data = await client.expect(event)
        about = data.get("participant", data)
        if about.get("participant_id") == participant_id:
            return data


async def _connected(pc: RTCPeerConnection) -> None:
    state = asyncio.Event()
    pc.on("connectionstatechange", state.set)
    async with asyncio.timeout(10):
        while pc.connectionState != "connected":
            state.clear()
            await state.wait()


def _session_id(location: str) -> str:
    return location.rsplit("/", 1)[-1]


async def _refused(meeting: Meeting, role: str) -> str:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(meeting.url, {"token": meeting.token(role, "Late")})
    code: str = client.refusal["data"]["code"]
    return code


async def test_whip_and_whep_sessions_are_participants(meeting: Meeting) -> None:
    ann, _ = await meeting.join("host", "Ann")

    # An encoder publishes: it joins as a counted participant with its tracks.
    obs_token = meeting.token("participant", "OBS")
    _obs, obs_location = await meeting.publish(obs_token)
    assert obs_location.startswith("/rtc/whip/whip-")
    obs_id = _session_id(obs_location)
    joined = (await _next_about(ann, "participant_joined", obs_id))["participant"]
    assert (joined["display_name"], joined["role"]) == ("OBS", "participant")
    while sorted(t["source"] for t in joined["tracks"]) != ["camera", "mic"]:
        joined = (await _next_about(ann, "participant_changed", obs_id))["participant"]

    # Capacity 2 is reached: neither a browser nor another encoder gets in; a WHEP viewer does.
    assert await _refused(meeting, "participant") == "full"
    status, text, _ = await meeting.post("/rtc/whip", meeting.token("participant", "OBS 2"), "v=0\r\n")
    assert (status, text.split(":")[0]) == (403, "full")
    _player, player_location = await meeting.play(meeting.token("viewer", "Player"))
    player_id = _session_id(player_location)
    assert player_location.startswith("/rtc/whep/whep-")
    assert (await _next_about(ann, "participant_joined", player_id))["participant"]["role"] == "viewer"

    # A moderator mutes the encoder like anyone.
    await ann.sio.emit("moderate", {"action": "mute", "participant_id": obs_id})
    assert (await _next_about(ann, "participant_changed", obs_id))["participant"]["muted"] == ["mic"]

    # DELETE ends the session: the leave is recorded and the seat is free again.
    assert await meeting.delete(obs_location, obs_token) == 200
    assert (await _next_about(ann, "participant_left", obs_id))["reason"] == "left"
    assert await meeting.delete(obs_location, obs_token) == 404
    _bob, _ = await meeting.join("participant", "Bob")

    rows = {row.participant_id: row for row in await meeting.attendance()}
    assert (rows[obs_id].kind, rows[obs_id].device_class, rows[obs_id].leave_reason) == (
        "whip",
        "encoder",
        "left",
    )
    assert rows[player_id].kind == "viewer" and rows[player_id].left_at is None


async def test_lost_connections_removal_and_bans(meeting: Meeting) -> None:
    ann, _ = await meeting.join("host", "Ann")
    player, player_location = await meeting.play(meeting.token("viewer", "Player"))
    player_id = _session_id(player_location)
    await _next_about(ann, "participant_joined", player_id)
    obs_token = meeting.token("participant", "OBS")
    _obs, obs_location = await meeting.publish(obs_token)
    obs_id = _session_id(obs_location)
    await _next_about(ann, "participant_joined", obs_id)

    # The player goes away without a DELETE: its connection closes, and the leave is recorded.
    await _connected(player)
    await player.close()
    assert (await _next_about(ann, "participant_left", player_id))["reason"] == "connection_lost"

    # A removed encoder loses its media and cannot come back with the same token.
    await ann.sio.emit("moderate", {"action": "remove", "participant_id": obs_id})
    assert (await _next_about(ann, "participant_left", obs_id))["reason"] == "removed"
    status, text, _ = await meeting.post("/rtc/whip", obs_token, "v=0\r\n")
    assert (status, text.split(":")[0]) == (403, "removed")
    assert await meeting.delete(obs_location, obs_token) == 404

    rows = {row.participant_id: row for row in await meeting.attendance()}
    assert rows[player_id].leave_reason == "connection_lost"
    assert rows[obs_id].leave_reason == "removed"


async def test_whip_refusals(meeting: Meeting) -> None:
    offer = "v=0\r\n"
    assert (await meeting.post("/rtc/whip", None, offer))[:2] == (
        401,
        "bad_auth: Authorization: Bearer <join token> required",
    )
    status, text, _ = await meeting.post("/rtc/whip", "forged", offer)
    assert (status, text.split(":")[0]) == (401, "bad_token")
    status, text, _ = await meeting.post("/rtc/whip", meeting.token("viewer", "V"), offer)
    assert (status, text.split(":")[0]) == (403, "not_authorised")
    status, text, _ = await meeting.post("/rtc/whip", meeting.token("recorder", "R"), offer)
    assert (status, text.split(":")[0]) == (403, "not_authorised")
    status, _, _ = await meeting.post("/rtc/whip", meeting.token("participant", "P"), "hello")
    assert status == 400  # malformed requests are refused before anyone is admitted
    assert await meeting.attendance() == []


def _sample(body: str, name: str) -> float:
    """The value of one sample line of a Prometheus text exposition (0 when absent)."""
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_metrics_count_the_media_forwarded_and_the_connections(meeting: Meeting) -> None:
    """An encoder's media reaching a viewer through the whole app move the SFU's counters in /metrics."""
    await meeting.join("host", "Ann")

    async def scrape() -> str:
        async with meeting.http.get(meeting.url + "/metrics") as response:
            assert response.status == 200
            return await response.text()

    before = await scrape()
    obs, _ = await meeting.publish(meeting.token("participant", "OBS"))
    player, _ = await meeting.play(meeting.token("viewer", "Player"))
    await _connected(obs)
    await _connected(player)
    video = next(r.track for r in player.getReceivers() if r.track.kind == "video")
    async with asyncio.timeout(15):
        for _ in range(5):  # decoded frames: the copies arrived
            await video.recv()
    # A hostile viewer: one 1,200-byte NACK asking for 5,049 packets (the flood the bounds are for).
    receiver = next(r for r in player.getReceivers() if r.track.kind == "video")
    video_sdp = player.remoteDescription.sdp.split("m=video", 1)[1]
    media_ssrc = int(re.search(r"a=ssrc:(\d+)", video_sdp).group(1))  # type: ignore[union-attr]
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1234, media_ssrc=media_ssrc)
    nack.lost = list(range(1000, 1000 + 297 * 17))
    assert len(bytes(nack)) == 1200
    await receiver._send_rtcp(nack)
    received = "yunhui_sfu_nacks_received_total"
    async with asyncio.timeout(10):  # the counters are per process: what this test moved is the difference
        while _sample(body := await scrape(), received) <= _sample(before, received):
            await video.recv()  # let the event loop carry the NACK to the SFU

    def moved(name: str) -> float:
        return _sample(body, f"yunhui_sfu_{name}_total") - _sample(before, f"yunhui_sfu_{name}_total")

    assert moved("nack_seqs_requested") >= 297 * 17
    assert moved("retransmissions_suppressed") >= moved("nack_seqs_requested") - 64
    forwarded = "yunhui_sfu_forwarded_packets_total"
    assert _sample(body, forwarded) > _sample(before, forwarded)
    assert _sample(body, "yunhui_sfu_forwarded_bytes_total") > 0
    assert _sample(body, 'yunhui_sfu_peer_connections{state="connected"}') >= 2
    for name in ("nacks_received", "keyframe_requests_sent", "runt_datagrams", "media_failed", "hook_errors"):
        assert f"yunhui_sfu_{name}_total " in body, name
    assert 'yunhui_sfu_dropped_copies_total{reason="guard"}' in body

"""The whole app with the SIP gateway enabled, against Debian's sipp as the room terminal (A2, A3).

A3: ``uac_invite_av.xml`` dials ``<meeting>.<passcode>`` with digest on the INVITE (G.711 + H.264 offered),
replays G.711 from a pcap, sends `4#` by RFC 4733 and `#` by INFO, and hangs up; the terminal's media are
sent by the test to the ports of our answer (sipp's pcap play aims at the audio port + 2). The router has
the participant, PyAV decodes an IDR from the Track the gateway published, the CDR names site, meeting
and codecs, and the digits came in order, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from aiohttp import web
from sqlalchemy import select, update

from rooms.database import Database
from rooms.models import Attendance, Site
from rooms.sip import calls as records
from sfu.router import Router
from sfu.rtp import RTP_HEADER
from sfu.tap import TappedTrack
from signaling.sip.gateway import Gateway
from signaling.sip.server import SipServer
from tests.conftest import SECRET_KEY, require_tool
from tests.sip.calls_support import until
from tests.sip.conftest import NOW, Seed, seed
from tests.sip.plain_terminal import H264Source
from yunhui.app import create_app
from yunhui.settings import Settings, load_settings
from yunhui.sip import SIP_GATEWAY, SIP_SERVER

MEDIA = Path(__file__).parent / "media"
pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@dataclass
class App:
    app: web.Application
    db: Database
    sip: SipServer
    gateway: Gateway
    seed: Seed


@pytest.fixture
async def sip_app(tmp_path: Path) -> AsyncIterator[App]:
    settings: Settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "sip": {
                "enabled": True,
                "host": "127.0.0.1",
                "udp_port": 0,
                "tcp_port": 0,
                "tls_port": None,
                "digest_algorithms": ["MD5"],  # sipp answers only the first challenge, in MD5
            },
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY)
    from web.keys import DATABASE

    db = app[DATABASE]
    await db.upgrade()
    s = await seed(db, passcode="4321")
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield App(app, db, app[SIP_SERVER], app[SIP_GATEWAY], s)
    finally:
        await runner.cleanup()


async def _sipp(scenario: Path, port: int, user: str, secret: str, service: str, tmp: Path) -> str:  # noqa: PLR0917
    sipp = require_tool("sipp")
    if os.geteuid() != 0:
        pytest.skip("sipp's pcap play needs root (CAP_NET_RAW)")
    log = tmp / f"sipp-{secrets.token_hex(3)}.log"
    argv = [
        sipp,
        "-sf",
        str(scenario),
        "-s",
        service,
        "-au",
        user,
        "-ap",
        secret,
        "-key",
        "user",
        user,
        "-key",
        "avpcap",
        str(MEDIA / "pcmu_20ms.pcap"),
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-mi",
        "127.0.0.1",
        "-m",
        "1",
        "-nostdin",
        "-aa",  # answers the gateway's INFO (picture_fast_update) and OPTIONS with 200
        "-timeout",
        "40s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(log),
        "-trace_msg",
        "-message_file",
        str(tmp / "a3.msg"),
        f"127.0.0.1:{port}",
    ]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = log.read_text(errors="replace") if log.exists() else ""
    assert process.returncode == 0, output.decode(errors="replace")[-3000:] + errors[-3000:]
    return output.decode(errors="replace")


async def _send_media(audio_port: int, video_port: int) -> None:
    """The terminal's microphone and camera: PCMU every 20 ms and 320x240 H.264 at 15 fps (an IDR every
    second), paced on the loop's clock so a busy machine catches up instead of sending less."""
    loop = asyncio.get_running_loop()
    audio, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    video, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    source = H264Source(pt=96, gop=15)
    start, sent_audio, sent_video = loop.time(), 0, 0
    try:
        while True:
            elapsed = loop.time() - start
            while sent_audio * 0.02 <= elapsed:
                header = RTP_HEADER.pack(0x80, 0, sent_audio & 0xFFFF, sent_audio * 160, 0xA0D10001)
                audio.sendto(header + b"\xff" * 160, ("127.0.0.1", audio_port))
                sent_audio += 1
            while sent_video / 15 <= elapsed:
                for packet in source.next_packets(keyframe=sent_video % 15 == 0):
                    video.sendto(packet, ("127.0.0.1", video_port))
                sent_video += 1
            await asyncio.sleep(0.02)  # the media clock (pacing, not waiting for an event)
    finally:
        audio.close()
        video.close()


class _IdrCounter:
    """A router tap sink: RFC 6184 depacketization, then PyAV decodes; counts decoded keyframes."""

    def __init__(self, info: TappedTrack) -> None:
        self.decoder = av.CodecContext.create("h264", "r")
        self.au = bytearray()
        self.keyframes = 0
        self.frames = 0
        self.packets = 0

    def packet(self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float) -> bool:  # noqa: PLR0917
        self.packets += 1
        kind = payload[0] & 0x1F
        if kind == 28:  # FU-A
            if payload[1] & 0x80:
                self.au += b"\x00\x00\x00\x01" + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
            self.au += payload[2:]
        elif kind == 24:  # STAP-A
            i = 1
            while i + 2 <= len(payload):
                size = int.from_bytes(payload[i : i + 2], "big")
                self.au += b"\x00\x00\x00\x01" + payload[i + 2 : i + 2 + size]
                i += 2 + size
        else:
            self.au += b"\x00\x00\x00\x01" + payload
        if marker:
            data, self.au = bytes(self.au), bytearray()
            try:
                for frame in self.decoder.decode(av.Packet(data)):
                    self.frames += 1
                    self.keyframes += bool(frame.key_frame)
            except av.error.InvalidDataError:
                pass
        return False

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        return None

    def ended(self) -> None:
        return None


async def test_a3_sipp_av_call_with_digest_and_dtmf(sip_app: App, tmp_path: Path) -> None:
    s = sip_app.seed
    port = sip_app.sip.ports["udp"]
    run = asyncio.create_task(
        _sipp(
            MEDIA / "uac_invite_av.xml",
            port,
            s.sip_username,
            s.sip_secret,
            f"{s.meeting_number}.4321",
            tmp_path,
        )
    )
    gateway = sip_app.gateway
    await until(lambda: bool(gateway._calls), "sipp's INVITE reaches the gateway", 20)
    (leg,) = gateway._calls.values()
    await until(lambda: leg.state in ("joined", "ended"), "sipp's call joins", 20)
    assert leg.state == "joined"
    participant = leg.participant
    assert participant is not None
    conference = participant.conference
    router = conference.router
    assert isinstance(router, Router) and participant.id in router._plain
    await until(lambda: f"{participant.id}:video" in router.tracks, "the terminal's video is published", 10)
    sinks: list[_IdrCounter] = []

    def sink_for(info: TappedTrack) -> _IdrCounter:
        sinks.append(_IdrCounter(info))
        return sinks[-1]

    tap = router.tap(f"{participant.id}:video", sink_for)
    assert leg.answer is not None and leg.answer.video is not None
    assert leg.answer.audio is not None
    sender = asyncio.create_task(_send_media(leg.answer.audio.local_port, leg.answer.video.local_port))
    try:
        with contextlib.suppress(AssertionError):
            await until(lambda: bool(sinks) and sinks[0].keyframes >= 1, "an IDR", 15)
        assert sinks and sinks[0].keyframes >= 1, [(k.packets, k.frames, k.keyframes) for k in sinks]
        await run
    finally:
        tap.close()
        sender.cancel()
    await until(lambda: not gateway.live_calls(), "the call ends", 10)
    assert leg.digits == ["4", "#", "#"]
    assert leg.audio_packets >= 250  # 20 ms PCMU for the call's 7 s and more
    (record,) = await records.recent(sip_app.db, account_id=s.account_id)
    assert (record.site_id, record.endpoint_id, record.meeting_number) == (
        s.site_id,
        s.endpoint_id,
        s.meeting_number,
    )
    assert record.audio_codec == "PCMU/8000" and record.video_codec.startswith("H264/90000 42e01f mode 1")
    assert record.end_reason == "bye" and record.transport == "udp"
    async with sip_app.db.session() as session:
        (row,) = (await session.scalars(select(Attendance))).all()
    assert (row.kind, row.endpoint_id, row.site_id, row.display_name) == (
        "sip",
        s.endpoint_id,
        s.site_id,
        "Boardroom X30",
    )


async def test_a2_suspended_site_invite_is_403_with_warning(sip_app: App, tmp_path: Path) -> None:
    s = sip_app.seed
    async with sip_app.db.session() as session:
        await session.execute(update(Site).values(suspended_at=NOW))
        await session.commit()
    sipp = require_tool("sipp")
    scenario = Path(__file__).parent / "scenarios" / "uac_invite_digest.xml"
    if not scenario.exists():
        pytest.skip("the core's uac_invite_digest.xml scenario is missing")
    process = await asyncio.create_subprocess_exec(
        sipp, "-sf", str(scenario), "-s", s.meeting_number, "-au", s.sip_username, "-ap", s.sip_secret,
        "-key", "user", s.sip_username, "-i", "127.0.0.1", "-p", "0", "-m", "1", "-nostdin",
        "-timeout", "15s", "-timeout_error", "-trace_msg", "-message_file", str(tmp_path / "a2.msg"),
        f"127.0.0.1:{sip_app.sip.ports['udp']}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    messages = (tmp_path / "a2.msg").read_text(errors="replace")
    assert "SIP/2.0 403" in messages, output.decode(errors="replace")[-2000:]
    assert "Warning: 399" in messages and "Site suspended: unpaid invoice" in messages
    async with sip_app.db.session() as session:
        assert (await session.scalars(select(Attendance))).all() == []

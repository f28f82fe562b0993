"""Debian's sipp against the whole app's gateway (one app for the module).

A10 delayed offer: an INVITE without SDP gets our offer in the 200 (PCMU, G.722, Opus, telephone-event, H.264
mode 1, ``ccm fir`` and ``nack pli``: the scenario's regexes fail the call if one is missing), the answer
comes in the ACK, and media flow both ways at the ports of that answer.

A18 load smoke: bench/sip_load.py's run with 10 calls (the bench runs 50 at 5/s, 20 at once): every call
succeeds, and once they ended no call, socket or SIP dialog is left."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from bench.sip_load import run_load
from rooms.sip import calls as records
from sfu.rtp import RTP_HEADER
from signaling.sip.gateway import Gateway
from signaling.sip.server import SipServer
from tests.conftest import SECRET_KEY, require_tool
from tests.sip.calls_support import until
from tests.sip.conftest import Seed, seed
from tests.sip.plain_terminal import Line, wait_for
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.settings import load_settings
from yunhui.sip import SIP_GATEWAY, SIP_SERVER

SCENARIO = Path(__file__).parent / "scenarios" / "uac_invite_delayed.xml"
pytestmark = [pytest.mark.timeout(90), pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WAIT = 15.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[SipServer, Gateway, Seed, web.Application]]:
    tmp_path = tmp_path_factory.mktemp("sipp-app")
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "sip": {
                "enabled": True,
                "host": "127.0.0.1",
                "udp_port": 0,
                "tcp_port": None,
                "tls_port": None,
                "digest_algorithms": ["MD5"],  # sipp answers only the first challenge, in MD5
                "calls": {"ivr_languages": ["en"]},
            },
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY)
    await app[DATABASE].upgrade()
    s = await seed(app[DATABASE], passcode="4321", capacity=20)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield app[SIP_SERVER], app[SIP_GATEWAY], s, app
    finally:
        await runner.cleanup()


async def test_a10_delayed_offer(
    gateway: tuple[SipServer, Gateway, Seed, web.Application], tmp_path: Path
) -> None:
    server, gw, s, app = gateway
    audio, video = Line("audio"), Line("video")
    await audio.open()
    await video.open()
    log = tmp_path / f"sipp-{secrets.token_hex(3)}.log"
    argv = [
        require_tool("sipp"), "-sf", str(SCENARIO), "-s", f"{s.meeting_number}.4321",
        "-au", s.sip_username, "-ap", s.sip_secret, "-key", "user", s.sip_username,
        "-key", "audio_port", str(audio.port), "-key", "video_port", str(video.port),
        "-i", "127.0.0.1", "-p", "0", "-m", "1", "-nostdin", "-aa", "-timeout", "40s", "-timeout_error",
        "-trace_err", "-error_file", str(log), "-trace_msg", "-message_file", str(tmp_path / "a10.msg"),
        f"127.0.0.1:{server.ports['udp']}",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path
    )
    try:
        await until(lambda: [c.state for c in gw.live_calls()] == ["joined"], "the call joined", WAIT)
        (leg,) = gw._calls.values()
        assert leg.peer is not None and leg.answer is not None
        # The ACK's answer was taken: PCMU and H.264 mode 1 at the ports the scenario gave.
        assert leg.answer.audio is not None and leg.answer.audio.codecs[0].name.upper() == "PCMU"
        assert leg.answer.video is not None and leg.answer.video.codecs[0].name.upper() == "H264"
        ports = dict(leg.peer.local_ports)
        audio.gateway = ("127.0.0.1", ports["audio"])
        # Media flow: the gateway sends the terminal its audio (comfort silence) and the slate (H.264)...
        await wait_for(audio.got, lambda: len(audio.got.rtp) >= 5, WAIT, "audio from the gateway")
        await wait_for(video.got, lambda: bool(video.got.rtp), WAIT, "the slate")
        assert {pt for *_, pt, _, _ in audio.got.rtp} == {0} and {r[4] for r in video.got.rtp} == {96}
        # ...and takes the terminal's RTP at its offer's audio port.
        for n in range(25):
            audio.send(RTP_HEADER.pack(0x80, 0, n, n * 160, 0xA10A10) + b"\xff" * 160)
        await until(lambda: leg.audio_packets >= 20, "the terminal's audio reached the gateway", WAIT)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        audio.close()
        video.close()
    errors = log.read_text(errors="replace") if log.exists() else ""
    assert process.returncode == 0, output.decode(errors="replace")[-3000:] + errors[-3000:]
    await until(lambda: not gw.live_calls(), "the call ended", WAIT)
    (record,) = await records.recent(app[DATABASE], account_id=s.account_id)
    assert (record.end_reason, record.audio_codec) == ("bye", "PCMU/8000")
    assert record.video_codec.startswith("H264/90000 42e01f mode 1"), record.video_codec


async def test_a18_load_smoke(
    gateway: tuple[SipServer, Gateway, Seed, web.Application], tmp_path: Path
) -> None:
    server, gw, s, _ = gateway
    require_tool("sipp")
    if os.geteuid() != 0:
        pytest.skip("sipp's pcap play needs root (CAP_NET_RAW)")
    await until(lambda: not gw.live_calls() and not server.calls(), "the earlier call is over", WAIT)
    result = await run_load(
        server,
        gw,
        service=f"{s.meeting_number}.4321",
        user=s.sip_username,
        secret=s.sip_secret,
        calls=10,
        rate=10,
        limit=10,
        workdir=tmp_path,
    )
    assert (result.succeeded, result.failed) == (10, 0), (tmp_path / "sipp.out").read_text()[-3000:]
    assert result.gateway_calls_after == 0 and server.calls() == []
    assert result.fds_after <= result.fds_before, result  # every leg's RTP/RTCP sockets closed
    assert result.leg_seconds >= 10 * 5, result  # each call held its 6.5 s

"""SIP calls through the Gateway with the real MeetingServer, SFU and database (the SIP core stood in for by
FakeCall): admission like a browser, Attendance kind sip with endpoint and site, the CDR, the IVR's media."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Attendance
from rooms.sip import calls as records
from sfu.router import Router
from signaling.sip.ivr import info_digit
from tests.sip.calls_support import WAIT, FakeCall, credentials, stack, until
from tests.sip.conftest import seed
from tests.sip.plain_terminal import Line, terminal_offer, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lines() -> AsyncIterator[tuple[Line, Line]]:
    """The terminal's audio and video sockets, closed whatever the test's outcome."""
    audio, video = Line("audio"), Line("video")
    try:
        await audio.open()
        await video.open()
        yield audio, video
    finally:
        audio.close()
        video.close()


def _ports(answer: str) -> dict[str, int]:
    ports = {}
    for line in answer.splitlines():
        if line.startswith("m="):
            kind, port = line[2:].split()[:2]
            ports[kind] = int(port)
    return ports


async def _attendance(db: Database) -> list[Attendance]:
    async with db.session() as session:
        return list((await session.scalars(select(Attendance))).all())


async def test_meeting_dot_passcode_joins_as_a_sip_participant(
    sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]
) -> None:
    s = await seed(sip_db, passcode="4321")
    audio, video = lines
    async with stack(sip_db, tmp_path) as st:
        call = FakeCall(f"{s.meeting_number}.4321", terminal_offer(audio.port, video.port), credentials(s))
        await st.gateway.on_invite(call)
        answer = await asyncio.wait_for(call.answered, WAIT)
        assert "m=audio" in answer and "m=video" in answer and "H264/90000" in answer
        ports = _ports(answer)
        assert ports["audio"] > 0 and ports["video"] > 0
        audio.gateway, video.gateway = ("127.0.0.1", ports["audio"]), ("127.0.0.1", ports["video"])
        (conference,) = st.meetings.conferences()
        (participant,) = conference.participants()
        assert participant.kind.value == "sip" and participant.display_name == "Boardroom X30"
        assert participant.id.startswith("sip-")
        assert isinstance(conference.router, Router) and participant.id in conference.router._plain
        # The slate reaches the terminal while nobody else publishes video: an H.264 IDR (NAL 5 or FU-A of 5).
        await wait_for(video.got, lambda: bool(video.got.rtp), WAIT, "the slate")
        first = video.got.rtp[0][6]
        assert first[0] & 0x1F in (5, 7, 24, 28), first[:2].hex()
        (row,) = await _attendance(sip_db)
        assert (row.kind, row.endpoint_id, row.site_id) == ("sip", s.endpoint_id, s.site_id)
        await until(lambda: [c.state for c in st.gateway.live_calls()] == ["joined"], "the call is joined")
        (live,) = st.gateway.live_calls()
        assert live.meeting_number == s.meeting_number and live.participant_id == participant.id
        call.bye()
        await until(lambda: not conference.participants(), "the participant leaves")
        await until(lambda: not st.gateway.live_calls(), "the call is forgotten")
    (record,) = await records.recent(sip_db, account_id=s.account_id)
    assert record.end_reason == "bye" and record.meeting_id is not None and record.joined_at is not None
    assert record.audio_codec == "G722/8000" and record.video_codec.startswith("H264/90000 428016 mode 1")
    (row,) = await _attendance(sip_db)
    assert row.left_at is not None


async def test_a_suspended_site_is_refused_with_its_reason(sip_db: Database, tmp_path: Path) -> None:
    s = await seed(sip_db)
    async with stack(sip_db, tmp_path) as st:
        call = FakeCall(
            s.meeting_number, terminal_offer(4000, 4002), credentials(s, "Site suspended: unpaid invoice")
        )
        await st.gateway.on_invite(call)
        status, headers = await asyncio.wait_for(call.rejected, WAIT)
        assert status == 403
        assert ("Warning", '399 yunhui.test "Site suspended: unpaid invoice"') in headers
        assert not st.meetings.conferences()
    assert await _attendance(sip_db) == []
    (record,) = await records.recent(sip_db, account_id=s.account_id)
    assert record.end_reason == "rejected:403" and record.site_id == s.site_id


async def test_capacity_counts_sip_legs(sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]) -> None:
    s = await seed(sip_db, capacity=1)
    audio, video = lines
    async with stack(sip_db, tmp_path) as st:
        first = FakeCall(s.meeting_number, terminal_offer(audio.port, video.port), credentials(s))
        await st.gateway.on_invite(first)
        await asyncio.wait_for(first.answered, WAIT)
        second = FakeCall(
            s.meeting_number, terminal_offer(audio.port + 10, video.port + 10), credentials(s), call_id="c2"
        )
        await st.gateway.on_invite(second)
        status, headers = await asyncio.wait_for(second.rejected, WAIT)
        assert status == 486 and any("full" in v for _, v in headers)
        first.bye()


async def test_no_common_codec_is_488(sip_db: Database, tmp_path: Path) -> None:
    s = await seed(sip_db)
    offer = terminal_offer(4000, 4002).replace("G722/8000", "G729/8000").replace("PCMU/8000", "G728/8000")
    offer = offer.replace("m=audio 4000 RTP/AVP 9 0 101", "m=audio 4000 RTP/AVP 18 15 101")
    offer = offer.replace("a=rtpmap:9 G729", "a=rtpmap:18 G729").replace(
        "a=rtpmap:0 G728", "a=rtpmap:15 G728"
    )
    async with stack(sip_db, tmp_path) as st:
        call = FakeCall(s.meeting_number, offer, credentials(s))
        await st.gateway.on_invite(call)
        status, _ = await asyncio.wait_for(call.rejected, WAIT)
        assert status == 488
    assert await _attendance(sip_db) == []


async def test_ivr_answers_at_once_and_plays_the_prompt(
    sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]
) -> None:
    s = await seed(sip_db)
    audio, video = lines
    async with stack(sip_db, tmp_path, ivr_rules={"attempts": 3}) as st:
        call = FakeCall("0", terminal_offer(audio.port, video.port), credentials(s))
        loop = asyncio.get_running_loop()
        await st.gateway.on_invite(call)
        answer = await asyncio.wait_for(call.answered, WAIT)
        answered_at = loop.time()
        ports = _ports(answer)
        audio.gateway, video.gateway = ("127.0.0.1", ports["audio"]), ("127.0.0.1", ports["video"])
        await wait_for(audio.got, lambda: len(audio.got.rtp) >= 5, WAIT, "the prompt's RTP")
        assert audio.got.rtp[0][0] - answered_at < 1.0
        assert {
            pt for *_, pt, _, _ in [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in audio.got.rtp]
        } == {9}
        await wait_for(video.got, lambda: bool(video.got.rtp), WAIT, "the slate")
        (live,) = st.gateway.live_calls()
        assert live.state == "ivr"
        # Three wrong meeting numbers by INFO (the Cisco form): goodbye, then BYE from the gateway.
        assert call.on_info is not None
        (leg,) = st.gateway._calls.values()
        for number in ("111", "222", "333"):
            await until(lambda: leg.ivr_step == "meeting", "the IVR asks for the number")
            for digit in number + "#":
                body = f"Signal={digit}\r\nDuration=160\r\n".encode()
                assert info_digit("application/dtmf-relay", body) == digit
                call.on_info("application/dtmf-relay", body)
            await until(lambda: leg.ivr_step != "meeting", "the number is tried")
        reason = await asyncio.wait_for(call.ended, 30)
        assert reason == "hangup"
    (record,) = await records.recent(sip_db, account_id=s.account_id)
    assert record.end_reason == "ivr_failed" and record.meeting_id is None


async def test_inbound_silence_hangs_up_but_a_quiet_room_does_not(
    sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]
) -> None:
    s = await seed(sip_db)
    audio, video = lines
    async with stack(sip_db, tmp_path, silence_timeout=timedelta(seconds=1)) as st:
        call = FakeCall(s.meeting_number, terminal_offer(audio.port, video.port), credentials(s))
        await st.gateway.on_invite(call)
        await asyncio.wait_for(call.answered, WAIT)
        # The room is empty of anyone else and quiet; only the terminal's own silence ends the call.
        reason = await asyncio.wait_for(call.ended, WAIT)
        assert reason == "hangup"
    (record,) = await records.recent(sip_db, account_id=s.account_id)
    assert record.end_reason == "silence"


def _send_dtmf(line: Line, digit: str, seq: int, timestamp: int) -> int:
    """One RFC 4733 key press as a terminal sends it: a start, then the end packet three times."""
    event = "0123456789*#".index(digit)
    packets = [(event, 0, 160), (event, 0x80, 800), (event, 0x80, 800), (event, 0x80, 800)]
    for i, (ev, end, duration) in enumerate(packets):
        header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 101, seq & 0xFFFF, timestamp, 0x1234)
        line.send(header + struct.pack("!BBH", ev, end | 10, duration))
        seq += 1
    return seq


async def test_ivr_meeting_then_passcode_joins_without_reinvite(
    sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]
) -> None:
    """sip:0@ -> the number by RFC 4733 -> the passcode prompt -> the passcode by INFO -> in the meeting, on
    the ports of the first answer (the leg moved from the IVR's Router into the meeting's)."""
    s = await seed(sip_db, passcode="4321")
    audio, video = lines
    async with stack(sip_db, tmp_path) as st:
        call = FakeCall("0", terminal_offer(audio.port, video.port), credentials(s))
        await st.gateway.on_invite(call)
        ports = _ports(await asyncio.wait_for(call.answered, WAIT))
        audio.gateway, video.gateway = ("127.0.0.1", ports["audio"]), ("127.0.0.1", ports["video"])
        (leg,) = st.gateway._calls.values()
        await until(lambda: leg.ivr_step == "meeting", "the IVR asks for the number")
        seq, timestamp = 1, 1000
        for digit in s.meeting_number + "#":
            seq = _send_dtmf(audio, digit, seq, timestamp)
            timestamp += 1600
        await until(lambda: leg.ivr_step == "passcode", "the IVR asks for the passcode")
        assert call.on_info is not None
        for digit in "4321#":
            call.on_info("application/dtmf", digit.encode())
        await until(lambda: [c.state for c in st.gateway.live_calls()] == ["joined"], "joined")
        (conference,) = st.meetings.conferences()
        (participant,) = conference.participants()
        assert participant.kind.value == "sip"
        assert isinstance(conference.router, Router) and participant.id in conference.router._plain
        assert conference.router._plain[participant.id].local_ports == {
            "audio": ports["audio"],
            "video": ports["video"],
        }
        call.bye()
        await until(lambda: not st.gateway.live_calls(), "the call ends")
    (record,) = await records.recent(sip_db, account_id=s.account_id)
    assert record.end_reason == "bye" and record.meeting_number == s.meeting_number


async def test_a_quiet_room_keeps_the_call_up(
    sip_db: Database, tmp_path: Path, lines: tuple[Line, Line]
) -> None:
    """A16, scaled: the terminal alone in its meeting, talking to nobody, for 3 times the silence timeout.
    It sends RTP, so it stays; the mixer's comfort silence and the slate keep flowing to it."""
    s = await seed(sip_db)
    audio, video = lines
    async with stack(sip_db, tmp_path, silence_timeout=timedelta(seconds=1)) as st:
        call = FakeCall(s.meeting_number, terminal_offer(audio.port, video.port), credentials(s))
        await st.gateway.on_invite(call)
        ports = _ports(await asyncio.wait_for(call.answered, WAIT))
        audio.gateway, video.gateway = ("127.0.0.1", ports["audio"]), ("127.0.0.1", ports["video"])
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(150):  # 3 s of 20 ms G.722 frames (the media clock paces the loop)
            audio.send(struct.pack("!BBHII", 0x80, 9, seq, seq * 160, 0x7E57) + b"\x00" * 160)
            await asyncio.sleep(max(0.0, start + (seq + 1) * 0.02 - loop.time()))
        assert not call.ended.done(), "the call must stay up"
        got_audio = [r for r in audio.got.rtp if r[4] == 9]
        assert len(got_audio) > 50, len(got_audio)  # the mix of nobody: comfort silence, every 20 ms
        slate_idrs = {r[3] for r in video.got.rtp}  # one RTP timestamp per slate
        assert len(slate_idrs) >= 2, slate_idrs
        call.bye()
        await until(lambda: not st.gateway.live_calls(), "the call ends")

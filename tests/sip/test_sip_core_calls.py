"""INVITE dialogs against real sipp: CANCEL (A5), no ACK (A6), session timers (A7), OPTIONS/420/501 (A8),
re-INVITE and glare (A9). Guests are allowed, so the scenarios need no digest (test_sip_register has it)."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import pytest

from signaling.sip.api import SipCall
from signaling.sip.transport import Source
from tests.sip.sip_core_support import (
    SDP,
    RecordingHandler,
    ScaledScheduler,
    run_sipp,
    running_server,
    settings,
)

GUESTS = {"allow_guests": True}


def answers(messages: str) -> list[str]:
    """Bodies of the 200 responses to INVITE that sipp received, in order (retransmissions included)."""
    blocks = re.split(r"-{20,} [^\n]*\n", messages)
    out = []
    for block in blocks:
        if "message received" in block and "SIP/2.0 200" in block and re.search(r"CSeq: \d+ INVITE", block):
            message = block[block.index("SIP/2.0 200") :]
            out.append(message.split("\n\n", 1)[1].strip() if "\n\n" in message else "")
    return out


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_cancel_gets_200_and_487(tmp_path: Path, transport: str) -> None:
    async def never_answer(call: SipCall) -> None:
        await call.wait_ended()

    handler = RecordingHandler(behaviour=never_answer)
    async with running_server(settings(**GUESTS), handler=handler) as server:
        port = server.ports["udp" if transport == "u1" else "tcp"]
        run = await run_sipp(
            "uac_invite_cancel.xml", port, "-s", "123456789", transport=transport, tmp=tmp_path
        )
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
        assert handler.ended == ["cancel"]
        assert handler.calls[0].request_user == "123456789"
        assert handler.calls[0].endpoint is None
        assert server.calls() == []


async def test_missing_ack_resends_the_200_then_byes(tmp_path: Path) -> None:
    sent: list[tuple[float, bytes]] = []
    handler = RecordingHandler(behaviour=None)
    async with running_server(settings(t1_ms=50, t2_ms=400, **GUESTS), handler=handler) as server:
        loop = asyncio.get_running_loop()
        send = server.transport.send

        def recording_send(data: bytes, dest: Source) -> bool:
            sent.append((loop.time(), data))
            return send(data, dest)

        server.transport.send = recording_send  # type: ignore[method-assign]
        run = await run_sipp("uac_invite_noack.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert handler.ended == ["no_ack"]
    oks = [t for t, data in sent if data.startswith(b"SIP/2.0 200") and b"INVITE\r\n" in data]
    gaps = [b - a for a, b in itertools.pairwise(oks)]
    # T1 = 50 ms doubling up to T2 = 400 ms; a loaded machine may be late, never early (the exact
    # schedule is checked on a fake clock in test_sip_core_dialogs).
    expected = [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4]
    assert len(gaps) >= len(expected), gaps
    for gap, want in zip(gaps, expected, strict=False):
        assert want * 0.9 <= gap <= want + 0.5, (gaps, expected)
    assert all(gap <= 0.4 + 0.5 for gap in gaps), gaps
    # The BYE goes out at 64*T1 = 3.2 s after the first 200.
    byes = [t for t, data in sent if data.startswith(b"BYE ")]
    assert byes, "no BYE after the missing ACK"
    assert 3.2 * 0.95 <= byes[0] - oks[0] <= 3.2 + 1.0


async def test_session_timer_without_refresh_ends_in_bye(tmp_path: Path) -> None:
    handler = RecordingHandler()
    clock = ScaledScheduler(30)
    async with running_server(
        settings(t1_ms=500, t2_ms=4000, **GUESTS), handler=handler, clock=clock
    ) as server:
        run = await run_sipp("uac_invite_timer.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert handler.ended == ["timer"]
    assert "Session-Expires: 90;refresher=uac" in run.messages
    assert "Require: timer" in run.messages


async def test_session_timer_refreshed_keeps_the_call(tmp_path: Path) -> None:
    handler = RecordingHandler()
    clock = ScaledScheduler(30)
    async with running_server(
        settings(t1_ms=500, t2_ms=4000, **GUESTS), handler=handler, clock=clock
    ) as server:
        run = await run_sipp("uac_invite_refresh.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    # Three seconds of real time is 90 s of call: without the refreshes the gateway would have sent BYE.
    assert handler.ended == ["bye"]
    assert len(handler.reoffers) == 2


async def test_session_interval_below_min_se_gets_422(tmp_path: Path) -> None:
    handler = RecordingHandler()
    async with running_server(settings(**GUESTS), handler=handler) as server:
        run = await run_sipp("uac_invite_422.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
    assert "Min-SE: 90" in run.messages
    assert handler.calls == []


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_options_unknown_method_and_require(tmp_path: Path, transport: str) -> None:
    handler = RecordingHandler()
    async with running_server(settings(**GUESTS), handler=handler) as server:
        port = server.ports["udp" if transport == "u1" else "tcp"]
        run = await run_sipp("uac_options.xml", port, "-s", "123456789", transport=transport, tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
    assert "Unsupported: foo" in run.messages
    assert handler.calls == []


async def test_reinvite_is_answered_by_the_handler(tmp_path: Path) -> None:
    handler = RecordingHandler()
    async with running_server(settings(**GUESTS), handler=handler) as server:
        run = await run_sipp("uac_reinvite.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert handler.ended == ["bye"]
    assert len(handler.reoffers) == 2
    assert "a=inactive" in handler.reoffers[1]
    bodies = {body.replace("\r\n", "\n") for body in answers(run.messages)}
    # The handler answered the identical offer identically: one distinct answer body, our SDP.
    assert bodies == {SDP.replace("\r\n", "\n").strip()}


async def test_glare_gets_491_and_our_reinvite_completes(tmp_path: Path) -> None:
    outcome: list[str | None] = []

    async def answer_then_reinvite(call: SipCall) -> None:
        await call.answer(SDP)
        outcome.append(await call.reinvite(SDP.replace("o=yunhui 1 1", "o=yunhui 1 2")))

    handler = RecordingHandler(behaviour=answer_then_reinvite)
    async with running_server(settings(**GUESTS), handler=handler) as server:
        run = await run_sipp("uac_glare.xml", server.ports["udp"], "-s", "123456789", tmp=tmp_path)
        assert run.returncode == 0, run.output[-2000:] + run.errors
        await asyncio.wait_for(handler.call_ended.wait(), 5)
    assert "SIP/2.0 491" in run.messages
    assert handler.ended == ["bye"]
    assert outcome and outcome[0] is not None and "m=audio" in outcome[0]
    # The terminal's glaring offer never reached the handler.
    assert handler.reoffers == []

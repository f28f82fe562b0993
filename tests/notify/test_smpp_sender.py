"""SmppSender against a real SMSC (smpp34 on 127.0.0.1, ephemeral port): long SMS as our own UDH parts (N4),
receipts per part and MO (N5, N8), throttling within the contract's TPS (N6), permanent and ambiguous
outcomes (exactly once: a part that may have been taken is never resent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import smpp34

from notify.channel import Ambiguous, Inbound, Message, Receipt, Rejected, RetryLater
from notify.smpp import PartlyAccepted, SmppSender
from notify.smpp_settings import SmppSettings
from notify.sms import preview
from tests.notify.smpp_smsc import Relay, Submitted, TestSmsc, within_tps

HANDSET = "+8613800138000"
Events = list[Receipt | Inbound]


def settings_for(port: int, **changes: Any) -> SmppSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": "yunhui",
        "password": "secret",
        "source_addr": "10690000",
        "tps": 200.0,
        "signature": "",
        "signature_en": "",
        "response_timeout_seconds": 10.0,
        "bind_wait_seconds": 10.0,
    }
    return SmppSettings(**(values | changes))


def sms(n: int, text: str, *, locale: str = "zh-CN", to: str = HANDSET) -> Message:
    return Message(n, "sms", "custom", "custom", locale, to, {"text": text})


Start = Callable[..., Awaitable[tuple[TestSmsc, SmppSender, Events]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    owned: list[TestSmsc | SmppSender] = []

    async def run(smsc: TestSmsc | None = None, **changes: Any) -> tuple[TestSmsc, SmppSender, Events]:
        smsc = smsc or TestSmsc()
        port = await smsc.start()
        owned.append(smsc)
        sender = SmppSender(settings_for(changes.pop("port", port), **changes))
        owned.append(sender)
        events: Events = []

        async def sink(event: Receipt | Inbound) -> None:
            events.append(event)

        await sender.start(sink)
        assert await sender.wait_bound(10)
        return smsc, sender, events

    yield run
    for item in reversed(owned):
        if isinstance(item, SmppSender):
            await item.close()
        else:
            await item.stop()


def texts(submits: list[Submitted]) -> list[str]:
    return [s.part.text for s in submits]


async def test_long_messages_go_as_our_own_udh_parts(start: Start) -> None:
    smsc, sender, _ = await start()
    zh = await sender.submit(sms(1, "会" * 90))
    en = await sender.submit(sms(2, "a" * 200, locale="en"))
    assert (zh.parts, en.parts) == (2, 2)
    first, second = smsc.submits[:2]
    assert [len(t) for t in texts(smsc.submits)] == [67, 23, 153, 47]
    assert (first.data_coding, first.esm_class & 0x40, first.registered_delivery) == (8, 0x40, 1)
    assert first.part.reference == second.part.reference
    assert [(s.part.seq, s.part.total) for s in smsc.submits] == [(1, 2), (2, 2), (1, 2), (2, 2)]
    assert smsc.submits[2].part.reference != first.part.reference
    assert {s.data_coding for s in smsc.submits[2:]} == {0}
    assert first.destination == "8613800138000" and first.source == "10690000"
    # What the outbox records (Accepted.parts) is what the SMSC counted.
    assert [*zh.provider_ids, *en.provider_ids] == [s.message_id for s in smsc.accepted]


async def test_an_escape_at_the_153rd_septet_is_not_split(start: Start) -> None:
    smsc, sender, _ = await start()
    await sender.submit(sms(1, "a" * 152 + "€" + "b" * 10, locale="en"))
    first, second = smsc.submits
    assert len(first.short_message) == 6 + 152  # UDH + septets: never over 153
    assert second.part.text.startswith("€")


async def test_the_signature_is_sent_and_the_preview_counts_what_the_smsc_sees(start: Start) -> None:
    smsc, sender, _ = await start(signature="【云会】")
    text = "通" * 68
    accepted = await sender.submit(sms(1, text))
    assert accepted.parts == preview(text, "【云会】").parts == len(smsc.submits) == 2
    assert smsc.submits[0].part.text.startswith("【云会】")


async def test_receipts_per_part_reach_the_sink_with_the_smscs_ids(start: Start) -> None:
    smsc, sender, events = await start(TestSmsc(receipts="DELIVRD"))
    accepted = await sender.submit(sms(1, "会" * 90))
    await smsc.wait_for(lambda: len(events) == 2)
    assert [(e.provider_message_id, e.status) for e in events if isinstance(e, Receipt)] == [
        (pid, "delivered") for pid in accepted.provider_ids
    ]
    # A text-only receipt, a TLV receipt saying UNDELIV, and one with a 12-digit date (which aiosmpplib's
    # own parser cannot read and would end the session over).
    session = next(iter(smsc.sessions))
    await smsc.receipt(session, "x1", "8613800138000", "UNDELIV", err="034", tlvs=False)
    await smsc.receipt(session, "x2", "8613800138000", "EXPIRED")
    await smsc.receipt(session, "x3", "8613800138000", "DELIVRD", done="261203101530")
    await smsc.wait_for(lambda: len(events) == 5)
    assert [(e.provider_message_id, e.status, e.error) for e in events[2:] if isinstance(e, Receipt)] == [
        ("x1", "failed", "034"),
        ("x2", "failed", "EXPIRED"),
        ("x3", "delivered", None),
    ]
    again = await sender.submit(sms(2, "still bound"))
    assert again.parts == 1 and smsc.binds == 1


async def test_an_mo_reply_reaches_the_sink_as_inbound(start: Start) -> None:
    smsc, _, events = await start()
    await smsc.mo("8613800138000", "退订")
    await smsc.mo("8613900139000", "TD")
    await smsc.wait_for(lambda: len(events) == 2)
    assert events == [Inbound("sms", "+8613800138000", "退订"), Inbound("sms", "+8613900139000", "TD")]


async def test_throttling_backs_off_and_never_exceeds_the_tps(start: Start) -> None:
    tps = 20
    began: list[float] = []

    def throttle_for_a_while(event: smpp34.SubmitSmEvent, index: int) -> int | None:
        now = asyncio.get_running_loop().time()
        if not began:
            began.append(now)
        return smpp34.ESME_RTHROTTLED if now - began[0] < 1.0 else None

    smsc, sender, _ = await start(TestSmsc(policy=throttle_for_a_while), tps=float(tps))
    results = await asyncio.gather(*(sender.submit(sms(i, f"message {i}", locale="en")) for i in range(50)))
    assert all(r.parts == 1 for r in results)
    assert len(smsc.accepted) == 50
    throttled = [s for s in smsc.submits if s.status == smpp34.ESME_RTHROTTLED]
    assert throttled and sender.stats.throttled == len(throttled)
    # Backed off: far fewer refused submits than 1 s at full rate would have sent.
    assert len(throttled) < tps / 2
    assert within_tps([s.at for s in smsc.submits], tps)


async def test_a_bad_number_is_permanent(start: Start) -> None:
    smsc, sender, _ = await start(TestSmsc(policy=lambda e, i: smpp34.ESME_RINVDSTADR))
    with pytest.raises(Rejected, match="ESME_RINVDSTADR"):
        await sender.submit(sms(1, "hello"))
    with pytest.raises(Rejected, match=r"E\.164"):
        await sender.submit(sms(2, "hello", to="13800138000"))
    assert len(smsc.submits) == 1


async def test_a_later_part_refused_is_never_resent(start: Start) -> None:
    smsc, sender, _ = await start(TestSmsc(policy=lambda e, i: smpp34.ESME_RINVMSGLEN if i == 1 else None))
    with pytest.raises(PartlyAccepted) as caught:
        await sender.submit(sms(1, "会" * 90))
    assert caught.value.provider_ids == (smsc.submits[0].message_id,)
    assert isinstance(caught.value, Ambiguous) and not sender.resend_when_ambiguous


async def test_no_response_is_ambiguous(start: Start) -> None:
    smsc, sender, _ = await start(TestSmsc(hold=True), response_timeout_seconds=1.0)
    with pytest.raises(Ambiguous, match="no submit_sm_resp"):
        await sender.submit(sms(1, "hello"))
    assert len(smsc.held) == 1 and sender.stats.lost == 1


async def test_a_dropped_session_makes_in_flight_parts_ambiguous_and_new_ones_wait(start: Start) -> None:
    smsc = TestSmsc(hold=True)
    relay = Relay(await smsc.start())
    try:
        _, sender, _ = await start(smsc, port=await relay.start(), bind_wait_seconds=0.5)
        pending = asyncio.create_task(sender.submit(sms(1, "hello")))
        await smsc.wait_for(lambda: len(smsc.held) == 1)
        await relay.cut()
        # Well before the 10 s response timeout: the session's end settles what was in flight.
        with pytest.raises(Ambiguous, match="session ended"):
            await asyncio.wait_for(pending, 5)
        with pytest.raises(RetryLater, match="not bound"):
            await sender.submit(sms(2, "hello"))
        with pytest.raises(RetryLater, match="unavailable"):  # at once, not after another bind wait
            await sender.submit(sms(4, "hello"))
        assert not sender.bound and len(smsc.held) == 1
        relay.refusing = False
        smsc.hold = False
        assert await sender.wait_bound(15)
        assert (await sender.submit(sms(3, "back"))).parts == 1
        assert texts(smsc.accepted) == ["back"]  # the ambiguous one was not resent
    finally:
        await relay.stop()


async def test_close_is_idempotent_and_a_closed_sender_sends_nothing(start: Start) -> None:
    smsc, sender, _ = await start()
    await sender.close()
    await sender.close()
    with pytest.raises(RetryLater):
        await sender.submit(sms(1, "hello"))
    assert smsc.submits == []


async def test_the_parts_of_a_message_fill_the_window_and_no_more(start: Start) -> None:
    smsc, sender, _ = await start(TestSmsc(hold=True), window=3)
    pending = asyncio.create_task(sender.submit(sms(1, "a" * 153 * 5, locale="en")))
    await smsc.wait_for(lambda: len(smsc.held) == 3)
    # Only three parts entered the window; the other two wait for answers.
    assert (sender.stats.submitted, pending.done()) == (3, False)
    await smsc.release()  # three answers free three slots: the last two parts go out
    await smsc.wait_for(lambda: len(smsc.held) == 2)
    smsc.hold = False
    await smsc.release()
    accepted = await asyncio.wait_for(pending, 10)
    assert accepted.parts == 5
    assert [s.part.seq for s in smsc.submits] == [1, 2, 3, 4, 5]

"""The SMS platform through the whole app (REST → outbox → dispatcher → SmppSender → a real SMSC on
127.0.0.1): real-time and batch sends, receipts per part (N4, N5), opt-out by MO (N8), templates with a
part-count preview (N12), reminders of booked meetings to invitees' phones, statistics and /metrics.
The clock is injected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rooms.outbox.invitations import queue_due_reminders
from rooms.outbox.models import Notification, Suppression
from tests.notify.app_server import App, Clock, running_app, seed, utc
from tests.notify.smpp_smsc import TestSmsc

NOW = utc(2026, 12, 3, 1, 0)  # 09:00 in Asia/Shanghai


@pytest.fixture
async def smsc() -> AsyncIterator[TestSmsc]:
    server = TestSmsc(receipts="DELIVRD")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def app(tmp_path: Path, smsc: TestSmsc) -> AsyncIterator[App]:
    smpp = {"host": "127.0.0.1", "port": smsc.port, "system_id": "yunhui", "password": "secret"}
    smpp |= {"source_addr": "10690000", "tps": 200.0}
    async with running_app(tmp_path, Clock(NOW), None, smpp=smpp) as running:
        yield running


async def settle(app: App, smsc: TestSmsc, condition: Callable[[], bool]) -> None:
    """Wait until the SMSC saw what `condition` asks, its receipts were acknowledged (each after its write),
    and the dispatcher finished the run that sent them (it matches receipts that overtook their own send)."""
    app.dispatcher.wake()
    await smsc.wait_for(condition)
    await smsc.drain()
    await app.dispatcher.wait_for_run(app.dispatcher.runs)


async def rows(app: App) -> list[Notification]:
    async with app.db.session() as session:
        return list((await session.scalars(select(Notification).order_by(Notification.id))).all())


async def admin(app: App) -> tuple[int, str]:
    account_id, _ = await seed(app.db, NOW)
    return account_id, await app.login("admin@acme.example")


async def test_a_real_time_sms_is_sent_in_parts_and_delivered(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    text = "会议通知：" + "请准时参加" * 17  # 90 characters; with 【云会】 94 units: two parts
    status, body = await app.call(
        "POST", f"/accounts/{account_id}/sms", token, {"to": "13800138000", "text": text}
    )
    assert status == 202, body
    assert (body["preview"]["parts"], body["preview"]["encoding"], body["preview"]["signature"]) == (
        2,
        "ucs2",
        "【云会】",
    )
    await settle(app, smsc, lambda: len(smsc.accepted) == 2)
    first, second = smsc.submits
    assert (first.part.total, first.part.seq, second.part.seq) == (2, 1, 2)
    assert first.part.reference == second.part.reference
    assert first.destination == "8613800138000"
    assert first.part.text + second.part.text == "【云会】" + text
    [row] = await rows(app)
    assert (row.status, row.parts, row.billable) == ("delivered", 2, True)
    status, listed = await app.call("GET", f"/accounts/{account_id}/sms", token)
    assert status == 200 and listed[0]["status"] == "delivered" and listed[0]["parts"] == 2
    status, stats = await app.call("GET", f"/accounts/{account_id}/sms/stats?group_by=day", token)
    assert status == 200
    assert stats == [
        {
            "key": "2026-12-03",
            "messages": 1,
            "parts": 2,
            "accepted": 1,
            "delivered": 1,
            "failed": 0,
            "unknown": 0,
            "pending": 0,
        }
    ]
    async with app.http.get(f"{app.url}/metrics") as resp:
        metrics = await resp.text()
    assert "yunhui_sms_parts_total 2.0" in metrics
    assert "yunhui_smpp_bound 1.0" in metrics
    assert 'yunhui_sms_receipts_total{state="delivered"} 2.0' in metrics


async def test_one_undelivered_part_fails_the_message(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    smsc.receipts = None
    status, _ = await app.call(
        "POST",
        f"/accounts/{account_id}/sms",
        token,
        {"to": "+8613800138000", "text": "a" * 200, "locale": "en"},
    )
    assert status == 202
    await settle(app, smsc, lambda: len(smsc.accepted) == 2)
    assert [len(s.part.text) for s in smsc.submits] == [153, 55]  # "Yunhui: " + 200 characters
    session = next(iter(smsc.sessions))
    await smsc.receipt(session, smsc.submits[0].message_id or "", "8613800138000", "DELIVRD")
    [row] = await rows(app)
    assert row.status == "sent"  # delivered only once every part is
    await smsc.receipt(session, smsc.submits[1].message_id or "", "8613800138000", "UNDELIV", err="034")
    [row] = await rows(app)
    assert row.status == "failed" and "034" in (row.last_error or "")


async def test_bad_input_is_refused_with_the_field(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"to": "12", "text": "x"}, "to"),
        ({"to": "abc", "text": "x"}, "to"),
        ({"to": "+8613800138000"}, "text"),
        ({"to": "+8613800138000", "text": "x", "template_key": "reminder"}, "text"),
        ({"to": "+8613800138000", "text": "字" * 2001}, "text"),
        ({"to": "+8613800138000", "text": "Hi ${name}", "variables": {"x": "1"}}, "text"),
        ({"to": "+8613800138000", "template_key": "nope"}, "template_key"),
    ]
    for body, field in cases:
        status, answer = await app.call("POST", f"/accounts/{account_id}/sms", token, body)
        assert status in (404, 422), (body, status, answer)
        assert answer["error"]["field"] == field, (body, answer)
    other = await app.login("li@acme.example")
    status, _ = await app.call(
        "POST", f"/accounts/{account_id + 99}/sms", other, {"to": "+86138", "text": "x"}
    )
    assert status in (403, 404)
    assert smsc.submits == []


async def test_a_batch_from_csv_with_progress_and_cancel(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    csv = (
        "phone,name\n13800138001,李雷\n+8613800138002,韩梅梅\nnot-a-number,x\n"
        "13800138001,again\n13800138003,Lucy\n"
    )
    status, batch = await app.call(
        "POST",
        f"/accounts/{account_id}/sms/batches",
        token,
        {"name": "周会通知", "csv": csv, "text": "${name}您好，周会改到下午三点。"},
    )
    assert status == 202, batch
    assert (batch["total"], batch["skipped"]) == (3, 2)
    assert [(i["line"], i["reason"]) for i in batch["invalid"]] == [
        (4, "not_a_number"),
        (5, "duplicate"),
    ]
    app.clock.now = NOW + timedelta(seconds=1)  # the batch is released at the channel's rate
    await settle(app, smsc, lambda: len(smsc.accepted) == 3)
    assert sorted(texts := [s.part.text for s in smsc.submits]) == sorted(
        [
            "【云会】李雷您好，周会改到下午三点。",
            "【云会】韩梅梅您好，周会改到下午三点。",
            "【云会】Lucy您好，周会改到下午三点。",
        ]
    ), texts
    status, progress = await app.call("GET", f"/accounts/{account_id}/sms/batches/{batch['id']}", token)
    assert (progress["done"], progress["parts"], progress["statuses"]) == (3, 3, {"delivered": 3})
    numbers = "\n".join(f"1390013{n:04d}" for n in range(20))
    status, second = await app.call(
        "POST",
        f"/accounts/{account_id}/sms/batches",
        token,
        {"name": "later", "csv": numbers, "text": "hello", "locale": "en"},
    )
    assert status == 202 and second["total"] == 20
    status, cancelled = await app.call(
        "POST", f"/accounts/{account_id}/sms/batches/{second['id']}/cancel", token
    )
    assert status == 200
    assert cancelled["statuses"].get("cancelled", 0) >= 19 and cancelled["cancelled_at"]
    app.clock.now = NOW + timedelta(minutes=5)
    await app.dispatcher.wait_for_run(app.dispatcher.runs)
    assert len(smsc.submits) <= 4  # at most the first of the cancelled batch went
    status, listed = await app.call("GET", f"/accounts/{account_id}/sms/batches", token)
    assert [b["name"] for b in listed] == ["later", "周会通知"]
    status, by_batch = await app.call("GET", f"/accounts/{account_id}/sms/stats?group_by=batch", token)
    assert {r["key"]: r["messages"] for r in by_batch} == {
        f"sms-batch:{batch['id']}": 3,
        f"sms-batch:{second['id']}": 20,
    }


async def test_an_mo_opt_out_suppresses_the_next_sms_and_it_is_not_billed(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    assert await app.dispatcher.wait_for_run(app.dispatcher.runs)  # the channel is bound
    await smsc.wait_for(lambda: bool(smsc.sessions))
    await smsc.mo("8613800138009", "退订")
    async with app.db.session() as session:
        scopes = set(
            (
                await session.scalars(
                    select(Suppression.scope).where(Suppression.recipient == "+8613800138009")
                )
            ).all()
        )
    assert scopes == {"reminder", "custom"}
    status, _ = await app.call(
        "POST", f"/accounts/{account_id}/sms", token, {"to": "+8613800138009", "text": "x"}
    )
    assert status == 202
    app.dispatcher.wake()
    await app.dispatcher.wait_for_run(app.dispatcher.runs)
    [row] = await rows(app)
    assert (row.status, row.parts) == ("suppressed", 0)
    assert smsc.submits == []


async def test_templates_are_checked_at_save_and_previewed(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    path = f"/accounts/{account_id}/sms/templates/notice"
    variables = [{"name": "name", "max_length": 8}]
    status, bad = await app.call(
        "PUT",
        path,
        token,
        {"texts": {"zh-CN": "${name}，${room}见", "en": "${name}"}, "variables": variables},
    )
    assert (status, bad["error"]["field"]) == (422, "texts.zh-CN") and "${room}" in bad["error"]["message"]
    status, bad = await app.call(
        "PUT", path, token, {"texts": {"zh-CN": "${name}您好"}, "variables": variables}
    )
    assert (status, bad["error"]["field"]) == (422, "texts.en")
    good = {
        "texts": {"zh-CN": "${name}您好，会议改期。", "en": "Hello ${name}, the meeting moved."},
        "variables": variables,
    }
    status, saved = await app.call("PUT", path, token, good)
    assert status == 200, saved
    assert {p["locale"]: p["preview"]["parts"] for p in saved["previews"]} == {"zh-CN": 1, "en": 1}
    status, listed = await app.call("GET", f"/accounts/{account_id}/sms/templates", token)
    assert {t["key"]: t["shipped"] for t in listed} == {"notice": False, "reminder": True}
    # N12: 68 Chinese characters plus 【云会】 are two parts.
    status, shown = await app.call("POST", "/sms/preview", token, {"text": "通" * 68})
    assert (status, shown["characters"], shown["parts"], shown["part_limit"]) == (200, 72, 2, 67)
    status, sent = await app.call(
        "POST",
        f"/accounts/{account_id}/sms",
        token,
        {"to": "+8613800138000", "template_key": "notice", "variables": {"name": "李雷"}},
    )
    assert status == 202, sent
    await settle(app, smsc, lambda: len(smsc.accepted) == 1)
    assert smsc.submits[0].part.text == "【云会】李雷您好，会议改期。"
    status, _ = await app.call("DELETE", path, token)
    assert status == 204
    # The reminder is rendered with the booking's values: other variables are refused at save.
    status, bad = await app.call(
        "PUT",
        f"/accounts/{account_id}/sms/templates/reminder",
        token,
        {
            "texts": {"zh-CN": "${title}${room}", "en": "${title}${room}"},
            "variables": [{"name": "title"}, {"name": "room"}],
        },
    )
    assert (status, bad["error"]["field"]) == (422, "variables") and "room" in bad["error"]["message"]


async def test_a_booked_meeting_reminds_invitees_by_sms_with_the_accounts_template(
    app: App, smsc: TestSmsc
) -> None:
    account_id, token = await admin(app)
    async with app.db.session() as session:
        from rooms.models import Room

        room_id = (await session.scalars(select(Room.id))).one()
    status, _ = await app.call(
        "PUT",
        f"/accounts/{account_id}/sms/templates/reminder",
        token,
        {
            "texts": {
                "zh-CN": "“${title}”${minutes_before}分钟后开始，会议号${meeting_number}",
                "en": "${title} in ${minutes_before} min, meeting ${meeting_number}",
            },
            "variables": [
                {"name": "title", "max_length": 40},
                {"name": "minutes_before", "max_length": 4},
                {"name": "meeting_number", "max_length": 12},
            ],
        },
    )
    assert status == 200
    booking = {
        "room_id": room_id,
        "title": "周会",
        "start": "2026-12-04T10:00:00",
        "end": "2026-12-04T11:00:00",
        "time_zone": "Asia/Shanghai",
        "invitees": [
            {"name": "李雷", "email": "li@example.com", "phone": "+8613800138005"},
            {"name": "Ada", "email": "ada@example.com"},
        ],
    }
    status, created = await app.call("POST", "/bookings", token, booking)
    assert status == 201, created
    app.clock.now = utc(2026, 12, 4, 1, 45)  # 09:45 local: T − 15 min
    async with app.db.writer() as session:
        await queue_due_reminders(session, app.invitations, now=app.clock(), horizon=timedelta(minutes=10))
        await session.commit()
    await settle(app, smsc, lambda: len(smsc.accepted) == 1)
    assert smsc.submits[0].part.text == "【云会】“周会”15分钟后开始，会议号81234567"
    assert smsc.submits[0].destination == "8613800138005"
    reminders = [r for r in await rows(app) if r.channel == "sms"]
    assert [(r.kind, r.status, r.billable) for r in reminders] == [("reminder", "delivered", True)]


async def test_a_number_over_its_daily_cap_is_refused_with_429(app: App, smsc: TestSmsc) -> None:
    account_id, token = await admin(app)
    body = {"to": "+8613800138007", "text": "x", "locale": "en"}
    for _ in range(10):  # notify.smpp.daily_cap_per_number
        status, _ = await app.call("POST", f"/accounts/{account_id}/sms", token, body)
        assert status == 202
    status, refused = await app.call("POST", f"/accounts/{account_id}/sms", token, body)
    assert (status, refused["error"]["code"], refused["error"]["field"]) == (429, "daily_cap", "to")
    assert len(await rows(app)) == 10

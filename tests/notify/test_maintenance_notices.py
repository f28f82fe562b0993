"""Acceptance N11: maintenance windows need 48 h notice (409 naming the field, unless an emergency reason
is given); a window 49 h ahead e-mails each account admin in their language, shows on /api/v1/announcements,
keeps proof of every notice, and reaches a live meeting as a Socket.IO `announcement` at T−60 and T−10 min."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rooms.outbox.maintenance import check_window, notice_ok
from rooms.users import create_user
from tests.notify.app_server import PASSWORD, Clock, running_app, seed, utc
from tests.notify.email_server import smtp_server
from tests.signaling.live_server import Client

NOW = utc(2026, 12, 3, 9, 0)
TEXTS = {
    "title": {"zh-CN": "数据库升级", "en": "Database upgrade"},
    "text": {
        "zh-CN": "会议服务将中断约 30 分钟。",
        "en": "Meetings will be interrupted for about 30 minutes.",
    },
}


def test_the_48_hour_rule_is_a_pure_function() -> None:
    assert notice_ok(NOW + timedelta(hours=48), NOW)
    assert not notice_ok(NOW + timedelta(hours=47, minutes=59), NOW)
    check_window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), now=NOW, emergency_reason="disk failing")


async def test_a_maintenance_window_is_noticed_by_mail_banner_and_announcement(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with smtp_server(tmp_path) as smtp, running_app(tmp_path, clock, smtp.settings()) as app:
        await seed(app.db, NOW)
        await create_user(
            app.db, email="root@example.com", password=PASSWORD, role="admin", account_id=None, now=NOW
        )
        root = await app.login("root@example.com")
        account_admin = await app.login("admin@acme.example")

        def window(hours: float, **extra: object) -> dict[str, object]:
            starts = clock.now + timedelta(hours=hours)
            return {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                **TEXTS,
                **extra,
            }

        status, body = await app.call("POST", "/maintenance", root, window(47))
        assert status == 409, body
        assert (body["error"]["code"], body["error"]["field"]) == ("notice_too_short", "starts_at")
        status, body = await app.call("POST", "/maintenance", account_admin, window(49))
        assert status == 403
        status, body = await app.call("POST", "/maintenance", root, {**window(49), "title": {"en": "x"}})
        assert status == 422, body

        status, created = await app.call("POST", "/maintenance", root, window(49))
        assert status == 201, created
        assert created["notice_hours"] == 49.0 and created["emergency_reason"] is None
        kinds = sorted((n["channel"], n["kind"], n["recipient"]) for n in created["notices"])
        assert kinds == [
            ("announcement", "announcement_t10", "all"),
            ("announcement", "announcement_t60", "all"),
            ("email", "maintenance", "admin@acme.example"),
            ("email", "maintenance", "li@acme.example"),
            ("email", "maintenance_reminder", "admin@acme.example"),
            ("email", "maintenance_reminder", "li@acme.example"),
        ]

        await smtp.handler.wait_for(2)
        mails = {r.recipients[0]: r.message for r in smtp.handler.received}
        assert (
            mails["admin@acme.example"]["Subject"].strip().startswith("Planned maintenance: Database upgrade")
        )
        assert mails["li@acme.example"]["Subject"].strip().startswith("维护通知：数据库升级")
        assert "2026-12-05 18:00" in mails["li@acme.example"].get_body(("plain",)).get_content()  # type: ignore[union-attr]

        # Everyone, signed in or not, sees the banner until the window ends.
        status, banners = await app.call("GET", "/announcements", None)
        assert status == 200
        assert [(b["id"], b["title"]["en"], b["active"]) for b in banners] == [
            (created["id"], "Database upgrade", False)
        ]

        # Proof: what was sent to whom, when.
        await app.dispatcher.wait_for_run(app.dispatcher.runs)
        status, detail = await app.call("GET", f"/maintenance/{created['id']}", root)
        assert status == 200
        sent = {(n["kind"], n["recipient"]): (n["status"], n["sent_at"]) for n in detail["notices"]}
        assert sent[("maintenance", "admin@acme.example")] == ("sent", "2026-12-03T09:00:00Z")
        assert sent[("maintenance", "li@acme.example")] == ("sent", "2026-12-03T09:00:00Z")
        assert sent[("maintenance_reminder", "li@acme.example")] == ("queued", None)

        # A live meeting gets the announcement an hour ahead and again ten minutes ahead.
        starts = NOW + timedelta(hours=49)
        guest = Client()
        await guest.connect(
            app.url, {"meeting_number": "81234567", "passcode": "4321", "display_name": "Guest"}
        )
        try:
            await guest.expect("joined")
            clock.now = starts - timedelta(minutes=60)
            app.dispatcher.wake()
            first = await guest.expect("announcement")
            assert first["id"] == created["id"] and first["kind"] == "maintenance"
            assert first["title"] == TEXTS["title"] and first["starts_at"] == "2026-12-05T10:00:00Z"
            await smtp.handler.wait_for(4)  # the day-before reminders went out on the way
            clock.now = starts - timedelta(minutes=10)
            app.dispatcher.wake()
            second = await guest.expect("announcement")
            assert second["id"] == created["id"]
        finally:
            await guest.close()
        await app.dispatcher.wait_for_run(app.dispatcher.runs)
        root = await app.login("root@example.com")  # two days on, the first token has expired
        status, detail = await app.call("GET", f"/maintenance/{created['id']}", root)
        statuses = {n["kind"]: n["status"] for n in detail["notices"] if n["channel"] == "announcement"}
        assert statuses == {"announcement_t60": "sent", "announcement_t10": "sent"}

        # Short notice is allowed with a reason, which is recorded.
        status, emergency = await app.call(
            "POST", "/maintenance", root, window(2, emergency_reason="disk failing")
        )
        assert status == 201, emergency
        assert emergency["emergency_reason"] == "disk failing"
        # Cancelling takes the banner down and cancels what was not sent.
        status, _ = await app.call("DELETE", f"/maintenance/{emergency['id']}", root)
        assert status == 200
        status, banners = await app.call("GET", "/announcements", None)
        assert [b["id"] for b in banners] == [created["id"]]

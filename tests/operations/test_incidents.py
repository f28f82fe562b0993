"""Incidents over REST against the contract's clocks (2 h response, 4 h solution, 24 h for a major fault)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from notify.templating import Templates
from rooms.incidents.clocks import ClockState, ServiceLevels, resolution_clock, response_clock
from rooms.outbox.models import Notification
from tests.api.conftest import Api, api, template_db

__all__ = ["api", "template_db"]

NINE = datetime(2026, 5, 12, 9, 0, tzinfo=UTC)


def test_the_clocks_run_from_the_opening() -> None:
    levels = ServiceLevels()
    late = response_clock(NINE, NINE + timedelta(hours=2, minutes=30), levels, NINE + timedelta(days=1))
    assert (late.state, late.due_at) == (ClockState.BREACHED, NINE + timedelta(hours=2))
    assert response_clock(NINE, NINE + timedelta(hours=2), levels, NINE).state is ClockState.MET
    running = response_clock(NINE, None, levels, NINE + timedelta(hours=1))
    assert (running.state, running.elapsed) == (ClockState.RUNNING, timedelta(hours=1))
    assert (
        response_clock(NINE, None, levels, NINE + timedelta(hours=2, seconds=1)).state is ClockState.BREACHED
    )
    minor = resolution_clock(NINE, NINE + timedelta(hours=3), "minor", levels, NINE)
    assert (minor.state, minor.due_at) == (ClockState.MET, NINE + timedelta(hours=4))
    major = resolution_clock(NINE, None, "major", levels, NINE + timedelta(hours=23))
    assert (major.state, major.due_at) == (ClockState.RUNNING, NINE + timedelta(hours=24))
    assert (
        resolution_clock(NINE, NINE + timedelta(hours=5), "minor", levels, NINE).state is ClockState.BREACHED
    )


async def test_a_late_answer_breaches_the_response_clock_and_a_3_h_fix_meets_the_4_h_clock(api: Api) -> None:
    account = api.accounts["a"]
    api.clock.now = NINE
    customer = await api.login("admin@a.example")
    staff = await api.login("root@example.com")
    status, slow = await customer.call(
        "POST",
        "/incidents",
        {"title": "Room 3 has no picture", "severity": "minor", "description": "since 8:50"},
    )
    assert status == 201, slow
    assert slow["response"]["due_at"].startswith("2026-05-12T11:00:00")
    assert slow["response"]["state"] == "running"
    api.clock.now = NINE + timedelta(hours=2, minutes=30)
    status, slow = await staff.call(
        "PATCH", f"/incidents/{slow['id']}", {"note": "Looking at the terminal now"}
    )
    assert status == 200, slow
    assert slow["response"]["state"] == "breached"
    assert [e["kind"] for e in slow["events"]] == ["opened", "note"]

    api.clock.now = NINE + timedelta(days=1)
    customer = await api.login("admin@a.example")
    staff = await api.login("root@example.com")
    status, quick = await customer.call("POST", "/incidents", {"title": "Echo in the board room"})
    assert status == 201, quick
    api.clock.now += timedelta(minutes=20)
    status, quick = await staff.call("PATCH", f"/incidents/{quick['id']}", {"status": "in_progress"})
    assert (quick["status"], quick["response"]["state"]) == ("in_progress", "met")
    api.clock.now = NINE + timedelta(days=1, hours=3)
    status, quick = await staff.call(
        "PATCH", f"/incidents/{quick['id']}", {"status": "resolved", "note": "Echo canceller switched on"}
    )
    assert status == 200, quick
    assert quick["resolution"] == {
        "due_at": quick["resolution"]["due_at"],
        "done_at": quick["resolved_at"],
        "state": "met",
        "elapsed_seconds": 3 * 3600,
    }

    api.clock.now = datetime(2026, 7, 1, tzinfo=UTC)
    customer = await api.login("admin@a.example")
    status, report = await customer.call("GET", f"/accounts/{account}/incidents/report?quarter=2026-Q2")
    assert status == 200, report
    assert [(i["id"], i["response"]["state"], i["resolution"]["state"]) for i in report["incidents"]] == [
        (slow["id"], "breached", "breached"),
        (quick["id"], "met", "met"),
    ]
    assert report["response"] == {"met": 1, "breached": 1, "running": 0, "mean_seconds": (150 + 20) * 60 // 2}
    assert (report["response_hours"], report["resolution_hours"], report["major_resolution_hours"]) == (
        2,
        4,
        24,
    )
    status, text = await customer.call(
        "GET", f"/accounts/{account}/incidents/report/csv?quarter=2026-Q2&lang=zh-CN"
    )
    assert status == 200
    rows = text.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("故障单,标题,级别")
    assert len(rows) == 3 and "Room 3 has no picture" in rows[1] and "超时" in rows[1] and "达标" in rows[2]

    # Opened, the first answer and the resolution each queued an e-mail to the account's admin.
    async with api.db.session() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    kinds = [r.kind for r in rows]
    # Each renders from the shipped templates in both languages (the dispatcher sends what renders).
    for row in rows:
        for locale in ("zh-CN", "en"):
            rendered = Templates().render(row.template_key, locale, row.variables)
            assert "Room 3 has no picture" in rendered.subject or "Echo" in rendered.subject
    assert kinds == [
        "incident.opened",
        "incident.responded",
        "incident.opened",
        "incident.responded",
        "incident.resolved",
    ]


async def test_bad_input_and_other_accounts_get_clear_errors(api: Api) -> None:
    customer = await api.login("admin@a.example")
    other = await api.login("admin@b.example")
    staff = await api.login("root@example.com")
    status, incident = await customer.call("POST", "/incidents", {"title": "Line drops"})
    assert status == 201
    path = f"/incidents/{incident['id']}"
    assert (await customer.call("POST", "/incidents", {"title": ""}))[0] == 422
    assert (await customer.call("POST", "/incidents", {"title": "x", "severity": "urgent"}))[0] == 422
    assert (await customer.call("POST", "/incidents", {"title": "x", "account_id": api.accounts["b"]}))[
        0
    ] == 403
    assert (await other.call("GET", path))[0] == 404
    assert (await other.call("PATCH", path, {"note": "mine?"}))[0] == 404
    status, body = await customer.call("PATCH", path, {"status": "resolved"})
    assert status == 403 and body["error"]["field"] == "status"
    assert (await staff.call("PATCH", path, {}))[0] == 422
    assert (await staff.call("PATCH", path, {"assignee_id": 99999}))[0] == 422
    assert (await staff.call("PATCH", path, {"status": "closed"}))[0] == 200
    status, body = await staff.call("PATCH", path, {"status": "open"})
    assert status == 422 and "closed cannot become open" in body["error"]["message"]
    status, body = await customer.call(
        "GET", f"/accounts/{api.accounts['a']}/incidents/report?quarter=2026-Q5"
    )
    assert status == 422
    assert (await other.call("GET", f"/accounts/{api.accounts['a']}/incidents/report"))[0] == 404
    # The platform's incidents (the monitor's) are visible to every account, but only staff write on them.
    status, platform = await staff.call("POST", "/incidents", {"title": "Media path down"})
    assert status == 201 and platform["account_id"] is None
    assert (await customer.call("GET", f"/incidents/{platform['id']}"))[0] == 200
    status, body = await customer.call("PATCH", f"/incidents/{platform['id']}", {"note": "us too"})
    assert status == 403 and body["error"]["field"] == "note"
    # A note by the account's admin is not the provider's response.
    status, fresh = await customer.call("POST", "/incidents", {"title": "No sound"})
    status, fresh = await customer.call("PATCH", f"/incidents/{fresh['id']}", {"note": "still no sound"})
    assert status == 200 and fresh["responded_at"] is None

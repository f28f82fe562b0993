"""The audit log through the real API: who changed what, when and from where, in the change's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from rooms.audit.models import AuditEntry
from rooms.meetings import end_meeting, record_join, record_leave, start_meeting
from tests.api.conftest import START, Api, api, template_db

__all__ = ["api", "template_db"]


async def _entries(api: Api) -> list[AuditEntry]:
    async with api.db.session() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_changes_are_logged_with_actor_time_address_and_fields(api: Api) -> None:
    admin = await api.login("admin@a.example")
    api.clock.now = START + timedelta(minutes=5)
    status, site = await admin.call("POST", "/sites", {"name": "一中会场", "address": "Main St 1"})
    assert status == 201
    api.clock.now = START + timedelta(minutes=6)
    assert (await admin.call("PATCH", f"/sites/{site['id']}", {"name": "二中会场"}))[0] == 200
    status, endpoint = await admin.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "T1"})
    assert status == 201
    assert (await admin.call("DELETE", f"/endpoints/{endpoint['id']}"))[0] == 204

    entries = await _entries(api)
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("create", "site", str(site["id"])),
        ("update", "site", str(site["id"])),
        ("create", "endpoint", str(endpoint["id"])),
        ("delete", "endpoint", str(endpoint["id"])),
    ]
    created, renamed, made, _deleted = entries
    assert created.actor == "admin@a.example" and created.actor_id is not None
    assert created.account_id == api.accounts["a"] and created.address == "127.0.0.1"
    assert created.at == START + timedelta(minutes=5)
    assert created.changes["name"] == "一中会场" and created.changes["address"] == "Main St 1"
    assert renamed.changes == {"name": ["一中会场", "二中会场"]}
    assert renamed.at == START + timedelta(minutes=6)
    assert made.changes["sip_secret"] == "***"  # a secret is never copied into the log
    assert endpoint["sip_secret"] not in str(made.changes)


async def test_a_refused_change_logs_nothing_and_reads_log_nothing(api: Api) -> None:
    admin = await api.login("admin@a.example")
    assert (await admin.call("POST", "/sites", {"name": ""}))[0] == 422
    assert (await admin.call("GET", "/sites"))[0] == 200
    assert (await admin.call("PATCH", "/sites/999", {"name": "x"}))[0] == 404
    assert await _entries(api) == []


async def test_search_filters_paginates_and_keeps_accounts_apart(api: Api) -> None:
    a = await api.login("admin@a.example")
    b = await api.login("admin@b.example")
    root = await api.login("root@example.com")
    for i in range(3):
        api.clock.now = START + timedelta(minutes=i)
        assert (await a.call("POST", "/sites", {"name": f"A{i}"}))[0] == 201
    assert (await b.call("POST", "/sites", {"name": "B0"}))[0] == 201

    status, page = await a.call("GET", "/audit?limit=2")
    assert status == 200 and page["total"] == 3
    assert [e["changes"]["name"] for e in page["entries"]] == ["A2", "A1"]  # newest first
    status, page = await a.call("GET", "/audit?limit=2&offset=2")
    assert [e["changes"]["name"] for e in page["entries"]] == ["A0"]
    # An account admin never sees another account's entries, whatever it asks for.
    status, page = await a.call("GET", f"/audit?account_id={api.accounts['b']}")
    assert page["total"] == 3
    status, page = await b.call("GET", "/audit")
    assert [e["changes"]["name"] for e in page["entries"]] == ["B0"]
    status, page = await root.call("GET", "/audit?object_type=site")
    assert page["total"] == 4
    status, page = await root.call("GET", f"/audit?account_id={api.accounts['b']}&q=admin@b")
    assert page["total"] == 1 and page["entries"][0]["actor"] == "admin@b.example"
    since = (START + timedelta(minutes=1)).isoformat()
    status, page = await a.call("GET", "/audit", params={"since": since, "action": "create"})
    assert page["total"] == 2
    status, body = await a.call("GET", "/audit?since=2026-03-01T00:00:00")
    assert status == 422 and "time zone" in body["error"]["message"]
    organizer = await api.login("org@a.example")
    assert (await organizer.call("GET", "/audit"))[0] == 403


async def test_moderation_and_host_ending_are_logged_by_the_meeting_store(api: Api) -> None:
    admin = await api.login("admin@a.example")
    status, room = await admin.call("POST", "/rooms", {"name": "Board", "capacity": 5})
    assert status == 201, room
    meeting = await start_meeting(api.db, room_id=room["id"], now=START)
    await record_join(api.db, meeting_id=meeting.id, participant_id="p1", display_name="Bob", kind="browser",
                      now=START)  # fmt: skip
    await record_leave(api.db, meeting_id=meeting.id, participant_id="p1", reason="removed", now=START)
    await end_meeting(api.db, meeting.id, reason="host_ended", now=START + timedelta(minutes=1))
    status, page = await admin.call("GET", "/audit?object_type=participant")
    entry: dict[str, Any] = page["entries"][0]
    assert (entry["action"], entry["actor"]) == ("remove", "moderator")
    assert entry["changes"]["display_name"] == "Bob"
    status, page = await admin.call("GET", "/audit?object_type=meeting")
    assert page["entries"][0]["action"] == "end" and page["entries"][0]["changes"]["reason"] == "host_ended"
    async with api.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 3  # + the room

"""Call records (CDR), the Endpoint lookup the gateway's credentials use, and the suspended-site rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from rooms import policy
from rooms.database import Database
from rooms.models import Endpoint, Meeting, Site
from rooms.sip import calls
from rooms.sip.endpoints import endpoint_by_username
from rooms.workers import start_worker
from tests.sip.conftest import NOW, seed


@dataclass(frozen=True)
class _Site:
    suspended_at: datetime | None


def test_endpoint_may_join_gives_the_suspension_reason() -> None:
    assert policy.endpoint_may_join(_Site(None), NOW) is None
    assert policy.endpoint_may_register(_Site(NOW - timedelta(days=1)), NOW) is policy.Reason.SITE_SUSPENDED
    # A suspension dated in the future (entered ahead) is not in force yet.
    assert policy.endpoint_may_join(_Site(NOW + timedelta(days=1)), NOW) is None
    assert policy.endpoint_may_join(_Site(None), NOW, enabled=False) is policy.Reason.ENDPOINT_DISABLED
    assert policy.ENDPOINT_REFUSALS[policy.Reason.SITE_SUSPENDED] == "Site suspended: unpaid invoice"


async def test_endpoint_lookup_follows_the_site(sip_db: Database) -> None:
    s = await seed(sip_db)
    facts = await endpoint_by_username(sip_db, "poly-x30", now=NOW)
    assert facts is not None
    assert (facts.endpoint_id, facts.site_id, facts.account_id) == (s.endpoint_id, s.site_id, s.account_id)
    assert facts.display_name == "Boardroom X30" and facts.refusal is None
    assert await endpoint_by_username(sip_db, "POLY-X30", now=NOW) is None
    async with sip_db.session() as session:
        await session.execute(update(Site).values(suspended_at=NOW - timedelta(hours=1)))
        await session.commit()
    facts = await endpoint_by_username(sip_db, "poly-x30", now=NOW)
    assert facts is not None and facts.refusal_text == "Site suspended: unpaid invoice"


async def test_call_record_lifecycle(sip_db: Database) -> None:
    s = await seed(sip_db)
    start = calls.CallStart(
        "inbound", "abc@host", "123456789", "tls", "127.0.0.1:5062", "PolyX30/4.0", s.endpoint_id
    )
    record_id = await calls.open_call(sip_db, start, now=NOW)
    await calls.answered(
        sip_db, record_id, audio_codec="G722/8000", video_codec="H264 42e01f", srtp=True, now=NOW
    )
    async with sip_db.session() as session:
        meeting = Meeting(account_id=s.account_id, room_id=s.room_id, started_at=NOW)
        session.add(meeting)
        await session.commit()
        meeting_id = meeting.id
    await calls.joined(
        sip_db,
        record_id,
        meeting_id=meeting_id,
        account_id=s.account_id,
        meeting_number=s.meeting_number,
        participant_id="sip-1",
        now=NOW + timedelta(seconds=2),
    )
    await calls.ended(sip_db, record_id, reason="bye", now=NOW + timedelta(minutes=5))
    await calls.ended(sip_db, record_id, reason="hangup", now=NOW + timedelta(minutes=6))
    (record,) = await calls.recent(sip_db, account_id=s.account_id, site_id=s.site_id)
    assert (record.site_id, record.endpoint_id, record.meeting_id) == (s.site_id, s.endpoint_id, meeting_id)
    assert (record.audio_codec, record.video_codec, record.srtp) == ("G722/8000", "H264 42e01f", True)
    assert record.end_reason == "bye" and record.ended_at == NOW + timedelta(minutes=5)
    assert await calls.recent(sip_db, account_id=s.account_id + 1) == []


async def test_a_crash_leaves_no_call_open(sip_db: Database) -> None:
    s = await seed(sip_db)
    start = calls.CallStart("inbound", "x@h", "0", "udp", "127.0.0.1:5062", endpoint_id=s.endpoint_id)
    first = await calls.open_call(sip_db, start, now=NOW)
    second = await calls.open_call(sip_db, start, now=NOW)
    await calls.ended(sip_db, second, reason="bye", now=NOW)
    assert await calls.close_unfinished(sip_db, now=NOW + timedelta(hours=1)) == 1
    assert await calls.close_unfinished(sip_db, now=NOW + timedelta(hours=2)) == 0
    async with sip_db.session() as session:
        rows = (await session.execute(select(calls.CallRecord.id, calls.CallRecord.end_reason))).all()
    reasons = {row[0]: row[1] for row in rows}
    assert reasons == {first: "server_restart", second: "bye"}


async def test_deleting_an_endpoint_keeps_its_calls(sip_db: Database) -> None:
    s = await seed(sip_db)
    start = calls.CallStart("inbound", "x@h", "0", "udp", "127.0.0.1:5062", endpoint_id=s.endpoint_id)
    await calls.open_call(sip_db, start, now=NOW)
    async with sip_db.session() as session:
        await session.delete(await session.get(Endpoint, s.endpoint_id))
        await session.commit()
    (record,) = await calls.recent(sip_db, account_id=s.account_id)
    assert record.endpoint_id is None and record.site_id == s.site_id


async def test_a_restart_closes_only_its_own_slots_calls(sip_db: Database) -> None:
    """Two workers carry calls; worker a restarts: its old run's calls (and unowned ones) close, b's stay."""
    s = await seed(sip_db)
    a1 = await start_worker(sip_db, name="a", now=NOW, stale_after=timedelta(seconds=30))
    b1 = await start_worker(sip_db, name="b", now=NOW, stale_after=timedelta(seconds=30))

    async def open_on(worker_id: int | None) -> int:
        start = calls.CallStart(
            "inbound", "x@h", "0", "udp", "127.0.0.1:5062", endpoint_id=s.endpoint_id, worker_id=worker_id
        )
        return await calls.open_call(sip_db, start, now=NOW)

    on_a, on_b, unowned = await open_on(a1.worker_id), await open_on(b1.worker_id), await open_on(None)
    a2 = await start_worker(
        sip_db, name="a", now=NOW + timedelta(minutes=1), stale_after=timedelta(seconds=30)
    )
    later = NOW + timedelta(minutes=1)
    assert await calls.close_unfinished(sip_db, now=later, worker_id=a2.worker_id) == 2
    assert await calls.close_unfinished(sip_db, now=later, worker_id=a2.worker_id) == 0
    async with sip_db.session() as session:
        rows = (await session.execute(select(calls.CallRecord.id, calls.CallRecord.end_reason))).all()
    assert {row[0]: row[1] for row in rows} == {on_a: "server_restart", on_b: None, unowned: "server_restart"}

"""Issue #14: billing never counts a stay past its meeting's end or the room's maximum session length, and a
live event cut by a server crash gets the crash's outage credit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rooms.billing.metering import (
    Stay,
    counted_end,
    meter_month,
    participant_minutes,
    peak_concurrent_endpoints,
    stay_limit,
)
from rooms.billing.models import InvoiceLineRow
from rooms.billing.run import run_billing
from rooms.billing.store import get_invoice
from rooms.database import Database
from rooms.meetings import record_join, start_meeting
from rooms.models import Room
from rooms.workers import beat, start_worker
from tests.billing.conftest import Seed
from tests.billing.test_billing_store import at, by_number, contract

BASE = datetime(2026, 5, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 6, 1, tzinfo=UTC)
instants = st.integers(0, 40 * 24 * 60).map(lambda m: BASE + timedelta(minutes=m))


def test_stay_limit_is_the_meeting_end_else_its_maximum_session() -> None:
    started = BASE
    assert stay_limit(meeting_started_at=started, meeting_ended_at=None, max_session=None) is None
    limit = stay_limit(meeting_started_at=started, meeting_ended_at=None, max_session=timedelta(hours=2))
    assert limit == started + timedelta(hours=2)
    ended = started + timedelta(minutes=5)
    assert (
        stay_limit(meeting_started_at=started, meeting_ended_at=ended, max_session=timedelta(hours=2))
        == ended
    )


def test_an_open_stay_of_an_ended_meeting_is_billed_to_the_meeting_end_only() -> None:
    ended = BASE + timedelta(minutes=30)
    orphan = Stay("sip", BASE, None, endpoint_id=1, until=ended)
    later = Stay("sip", ended + timedelta(days=2), ended + timedelta(days=2, minutes=1), endpoint_id=1)
    assert participant_minutes([orphan], BASE, MONTH_END) == {"sip": 30}
    # Without the limit the orphan would overlap every later stay of the month.
    assert peak_concurrent_endpoints([orphan, later], BASE, MONTH_END) == 1
    # Next month it is not billed at all (it used to be 43,000 minutes there, every month).
    assert participant_minutes([orphan], MONTH_END, MONTH_END + timedelta(days=30)) == {}


@given(joined=instants, left=st.none() | instants, until=st.none() | instants, now=instants)
def test_a_stay_counts_no_later_than_its_leave_its_limit_or_now(
    joined: datetime, left: datetime | None, until: datetime | None, now: datetime
) -> None:
    stay = Stay("browser", joined, left, until=until)
    end = counted_end(stay, now)
    assert end <= now
    assert left is None or end <= left
    assert until is None or end <= until
    assert end in {t for t in (left, until, now) if t is not None}
    billed = participant_minutes([stay], BASE, now).get("browser", 0)
    span = max(timedelta(0), end - max(joined, BASE))
    assert billed == -(-int(span.total_seconds()) // 60)


@given(joined=instants, length=st.integers(1, 24 * 60), lo=instants, days=st.integers(1, 60))
def test_an_open_stay_bills_exactly_like_one_that_left_at_its_limit(
    joined: datetime, length: int, lo: datetime, days: int
) -> None:
    until = joined + timedelta(minutes=length)
    hi = lo + timedelta(days=days)
    month = lo.date()
    assert meter_month(month, lo, hi, [Stay("sip", joined, None, 1, until=until)]) == meter_month(
        month, lo, hi, [Stay("sip", joined, until, 1)]
    )


async def test_the_run_bills_a_crashed_meeting_to_its_heartbeat_and_credits_its_live_event(
    db: Database, seed: Seed
) -> None:
    prices = [{"kind": "participant_minutes.browser", "unit_price": "0.1"}]
    await contract(db, seed, usage_prices=prices, live_event_fee="1000")
    t0 = datetime(2026, 5, 12, 2, tzinfo=UTC)
    async with db.session() as session:
        room = Room(
            account_id=seed.account_id, name="r", meeting_number="800000009", capacity=50, created_at=t0
        )
        session.add(room)
        await session.commit()
    first = await start_worker(db, name="main", now=t0, stale_after=timedelta(minutes=3))
    meeting = await start_meeting(db, room_id=room.id, now=t0, worker_id=first.worker_id)
    for participant, kind in (("guest", "browser"), ("watcher", "viewer")):
        await record_join(
            db, meeting_id=meeting.id, participant_id=participant, display_name="x", kind=kind, now=t0
        )
    await beat(db, first.worker_id, now=t0 + timedelta(minutes=20))
    # The process is killed; it comes back 10 minutes after its last heartbeat, and recovers.
    await start_worker(db, name="main", now=t0 + timedelta(minutes=30), stale_after=timedelta(minutes=3))

    await run_billing(db, now=at(date(2026, 6, 1)))
    lines = await _lines(db, seed, "000003")
    assert lines["usage", "participant_minutes.browser"].quantity == 20
    assert lines["live_event", ""].amount == Decimal("1000.00")
    # The crash interrupted the event for 10 minutes (>= 60 s): its fee is waived.
    assert lines["event_credit", str(meeting.id)].amount == Decimal("-1000.00")
    assert lines["event_credit", str(meeting.id)].detail == "600 s"


async def test_the_run_bills_a_never_closed_stay_to_the_rooms_maximum_session(
    db: Database, seed: Seed
) -> None:
    prices = [{"kind": "participant_minutes.browser", "unit_price": "0.1"}]
    await contract(db, seed, usage_prices=prices)
    t0 = datetime(2026, 5, 30, 2, tzinfo=UTC)
    async with db.session() as session:
        room = Room(
            account_id=seed.account_id, name="capped", meeting_number="800000010", capacity=50,
            max_session_minutes=45, created_at=t0,
        )  # fmt: skip
        session.add(room)
        await session.commit()
    # Nobody recovered it (the crash happened before recovery existed): open since 30 May.
    meeting = await start_meeting(db, room_id=room.id, now=t0)
    await record_join(db, meeting_id=meeting.id, participant_id="p", display_name="x", kind="browser", now=t0)

    await run_billing(db, now=at(date(2026, 7, 1)))
    assert (await _lines(db, seed, "000003"))["usage", "participant_minutes.browser"].quantity == 45
    # June used to bill the whole month (43,200 minutes) for it.
    assert ("usage", "participant_minutes.browser") not in await _lines(db, seed, "000004")


async def _lines(db: Database, seed: Seed, number: str) -> dict[tuple[str, str], InvoiceLineRow]:
    invoice = (await by_number(db, seed))[number]
    return {
        (line.kind, line.label): line for line in (await get_invoice(db, invoice.id, account_id=None)).lines
    }

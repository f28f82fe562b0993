"""The health monitor under an injected clock: outages it records itself, credited by the billing rules."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rooms.billing.models import InvoiceLineRow, Outage
from rooms.billing.money import quantize
from rooms.billing.periods import quarter_period
from rooms.billing.run import run_billing
from rooms.billing.store import get_invoice
from rooms.database import Database
from rooms.incidents.models import Incident, IncidentEvent, OpenOutage
from rooms.incidents.outages import Scope
from rooms.incidents.store import quarter_availability
from rooms.meetings import end_meeting, record_join, start_meeting
from rooms.models import Room
from tests.billing.conftest import Seed, add_seed, db, postgres_server, seed
from tests.billing.test_billing_store import at, by_number, contract
from yunhui.monitor import Monitor, database_check, listener_url
from yunhui.settings import MonitorSettings, ServerSettings, SettingsError, load_settings

__all__ = ["db", "postgres_server", "seed"]

SETTINGS = MonitorSettings(interval_seconds=5, failures_to_open=2, successes_to_close=2)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Switch:
    """A check that fails while `down` is set."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("probe port closed")


def monitor_for(db: Database, clock: Clock, media: Switch, settings: MonitorSettings = SETTINGS) -> Monitor:
    return Monitor(
        db,
        {"database": database_check(db), "media": media},
        clock=clock,
        settings=settings,
        timeouts={"media": 5},
    )


async def interrupt(monitor: Monitor, clock: Clock, media: Switch, *, start: datetime, seconds: int) -> None:
    """Checks every 5 s; the media path is down from `start` for `seconds` (a multiple of 5)."""
    step = timedelta(seconds=5)
    clock.now = start - 2 * step
    while clock.now <= start + timedelta(seconds=seconds) + 2 * step:
        media.down = start <= clock.now < start + timedelta(seconds=seconds)
        await monitor.check_once()
        clock.now += step


async def monitor_outages(db: Database) -> list[Outage]:
    async with db.session() as session:
        return list(
            (
                await session.scalars(select(Outage).where(Outage.source == "monitor").order_by(Outage.start))
            ).all()
        )


async def live_event(db: Database, seed: Seed, number: str, start: datetime, end: datetime) -> int:
    async with db.session() as session:
        room = Room(
            account_id=seed.account_id, name="Hall", meeting_number=number, capacity=50, created_at=start
        )
        session.add(room)
        await session.commit()
    meeting = await start_meeting(db, room_id=room.id, now=start)
    await record_join(
        db, meeting_id=meeting.id, participant_id="v", display_name="v", kind="viewer", now=start
    )
    await end_meeting(db, meeting.id, reason="host_ended", now=end)
    return meeting.id


async def lines(db: Database, seed: Seed, number: str) -> dict[tuple[str, str], InvoiceLineRow]:
    invoice = (await by_number(db, seed))[number]
    view = await get_invoice(db, invoice.id, account_id=None)
    return {(line.kind, line.label): line for line in view.lines}


async def test_a_45_s_media_failure_is_one_outage_that_halves_the_event_fee_and_65_s_waives_it(
    db: Database, seed: Seed
) -> None:
    await contract(db, seed, live_event_fee="1000")
    clock, media = Clock(at(date(2026, 5, 12))), Switch()
    monitor = monitor_for(db, clock, media)
    first_start = at(date(2026, 5, 12), 3)
    first = await live_event(db, seed, "800000101", first_start, first_start + timedelta(hours=1))
    second_start = at(date(2026, 5, 19), 3)
    second = await live_event(db, seed, "800000102", second_start, second_start + timedelta(hours=1))

    await interrupt(monitor, clock, media, start=first_start + timedelta(minutes=10), seconds=45)
    outages = await monitor_outages(db)
    assert [(o.start, o.end - o.start, o.cause, o.account_id) for o in outages] == [
        (first_start + timedelta(minutes=10), timedelta(seconds=45), "media", None)
    ]
    await interrupt(monitor, clock, media, start=second_start + timedelta(minutes=20), seconds=65)
    assert [o.end - o.start for o in await monitor_outages(db)] == [
        timedelta(seconds=45),
        timedelta(seconds=65),
    ]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OpenOutage)) == 0
        incidents = (await session.scalars(select(Incident).order_by(Incident.id))).all()
        assert [(i.source, i.severity, i.opened_at) for i in incidents] == [
            ("monitor", "major", o.start) for o in outages + (await monitor_outages(db))[1:]
        ]

    await run_billing(db, now=at(date(2026, 6, 1)))
    may = await lines(db, seed, "000003")
    assert may["live_event", ""].amount == Decimal("2000.00")
    assert may["event_credit", str(first)].amount == Decimal("-500.00")
    assert may["event_credit", str(first)].detail == "45 s"
    assert may["event_credit", str(second)].amount == Decimal("-1000.00")


async def test_an_outage_shorter_than_30_s_is_recorded_and_credits_nothing(db: Database, seed: Seed) -> None:
    await contract(db, seed, live_event_fee="1000")
    clock, media = Clock(at(date(2026, 5, 12))), Switch()
    start = at(date(2026, 5, 12), 3)
    meeting = await live_event(db, seed, "800000103", start, start + timedelta(hours=1))
    await interrupt(
        monitor_for(db, clock, media), clock, media, start=start + timedelta(minutes=5), seconds=25
    )
    assert [o.end - o.start for o in await monitor_outages(db)] == [timedelta(seconds=25)]
    await run_billing(db, now=at(date(2026, 6, 1)))
    assert ("event_credit", str(meeting)) not in await lines(db, seed, "000003")


async def test_a_quarter_at_99_4_percent_gets_the_pro_rata_credit(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    hourly = MonitorSettings(interval_seconds=3600, failures_to_open=2, successes_to_close=2)
    clock, media = Clock(at(date(2026, 5, 1))), Switch()
    monitor = monitor_for(db, clock, media, hourly)
    # Q2 2026 is 91 days; 0.6 % of it is 13 h 6 min 14.4 s: checks each hour see the media down 14 h.
    start = at(date(2026, 5, 20), 0)
    clock.now = start - timedelta(hours=1)
    for hour in range(17):
        media.down = 1 <= hour <= 14
        await monitor.check_once()
        clock.now += timedelta(hours=1)
    [outage] = await monitor_outages(db)
    assert outage.end - outage.start == timedelta(hours=14)

    report = await quarter_availability(
        db, account_id=seed.account_id, quarter=quarter_period(date(2026, 4, 1)), now=at(date(2026, 7, 2))
    )
    assert report.meetings.actual == Decimal("99.359")
    assert not report.meetings.met
    # A media outage leaves the management platform up.
    assert report.operations.actual == Decimal("100.000")

    await run_billing(db, now=at(date(2026, 7, 1)))
    june = await lines(db, seed, "000004")
    credit = june["availability_credit", "2026-04-01..2026-06-30"]
    fee = Decimal(credit.detail)
    assert credit.quantity == Decimal("99.359")
    assert credit.amount == -quantize(fee * (Decimal("99.5") - Decimal(credit.quantity)) / 100)
    assert [(c.kind, c.amount) for c in report.credits] == [("availability_credit", -credit.amount)]


async def test_a_restarted_monitor_continues_the_open_outage_and_two_monitors_count_it_once(
    db: Database, seed: Seed
) -> None:
    clock, media = Clock(at(date(2026, 5, 12))), Switch()
    media.down = True
    first = monitor_for(db, clock, media)
    for _ in range(3):
        await first.check_once()
        clock.now += timedelta(seconds=5)
    start = at(date(2026, 5, 12))
    # The process restarts; a second worker's monitor runs too.
    second, third = monitor_for(db, clock, media), monitor_for(db, clock, media)
    for _ in range(3):
        await second.check_once()
        await third.check_once()
        clock.now += timedelta(seconds=5)
    media.down = False
    for _ in range(2):
        await second.check_once()
        await third.check_once()
        clock.now += timedelta(seconds=5)
    outages = await monitor_outages(db)
    assert [(o.start, o.end) for o in outages] == [(start, start + timedelta(seconds=30))]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
        assert await session.scalar(select(func.count()).select_from(OpenOutage)) == 0
        kinds = (await session.scalars(select(IncidentEvent.kind).order_by(IncidentEvent.id))).all()
        assert kinds[0] == "opened" and "monitor" in kinds


def move_all(source: Path, target: Path, *, replace: bool = False) -> None:
    """Move the SQLite database (with its -wal and -shm files) away, or back over the empty one."""
    target.mkdir(exist_ok=True)
    if replace:
        for file in target.glob("yunhui.db*"):
            file.unlink()
    for file in source.glob("yunhui.db*"):
        shutil.move(file, target / file.name)


async def test_a_stopped_database_is_one_45_s_outage_recorded_when_it_is_back_and_halves_the_event_fee(
    tmp_path: Path,
) -> None:
    path = tmp_path / "yunhui.db"
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        seeded = await add_seed(db)
        await contract(db, seeded, live_event_fee="1000")
        event_start = at(date(2026, 5, 12), 3)
        event = await live_event(db, seeded, "800000104", event_start, event_start + timedelta(hours=2))
        clock, media = Clock(at(date(2026, 5, 12))), Switch()
        monitor = monitor_for(db, clock, media)
        await monitor.check_once()
        await db.engine.dispose()
        stopped = tmp_path / "stopped"
        move_all(tmp_path, stopped)
        for _ in range(9):  # 45 s down: the checks at 5 .. 45 s fail, the one at 50 s passes
            clock.now += timedelta(seconds=5)
            [result] = [r for r in await monitor.check_once() if r.name == "database"]
            assert not result.ok
        assert monitor.open_outage(Scope.SERVICE) == at(date(2026, 5, 12)) + timedelta(seconds=5)
        await db.engine.dispose()
        move_all(stopped, tmp_path, replace=True)
        clock.now += timedelta(seconds=5)
        await monitor.check_once()
        clock.now += timedelta(seconds=5)
        await monitor.check_once()
        assert monitor.pending_writes == 0
        outages = await monitor_outages(db)
        assert [(o.end - o.start, o.cause) for o in outages] == [(timedelta(seconds=45), "database")]
        # The live event running then is charged half its fee.
        await run_billing(db, now=at(date(2026, 6, 1)))
        assert (await lines(db, seeded, "000003"))["event_credit", str(event)].amount == Decimal("-500.00")
    finally:
        await db.close()


def test_the_http_check_calls_the_servers_own_listener() -> None:
    assert listener_url(ServerSettings(host="0.0.0.0", port=8080)) == "http://127.0.0.1:8080"
    assert listener_url(ServerSettings(host="::", port=8080)) == "http://[::1]:8080"
    assert listener_url(ServerSettings(host="10.0.0.5", port=80)) == "http://10.0.0.5:80"
    # Port 0 is known only once the site listens: serving_at() adds the check then.
    assert listener_url(ServerSettings(port=0)) is None


def test_bad_monitor_settings_are_refused_with_the_key() -> None:
    with pytest.raises(SettingsError, match=r"monitor\.interval_seconds"):
        load_settings(overrides={"monitor": {"interval_seconds": 0}})
    with pytest.raises(SettingsError, match=r"monitor\.failures_to_open"):
        load_settings(overrides={"monitor": {"failures_to_open": 0}})
    with pytest.raises(ValueError, match="unknown checks"):
        Monitor(None, {"ping": Switch()}, clock=Clock(at(date(2026, 5, 1))), settings=SETTINGS)  # type: ignore[arg-type]

"""The billing run's writes are in the audit log under its name; a rerun that changes nothing logs nothing;
run from an admin's request, they name the admin."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import select

from rooms.audit.models import AuditEntry
from rooms.audit.recorder import Actor, acting
from rooms.billing.run import run_billing
from rooms.database import Database
from tests.billing.conftest import Seed
from tests.billing.test_billing_store import at, contract


async def entries(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(r.actor, r.action, r.object_type) for r in rows]


async def test_the_billing_run_is_logged_under_its_name_and_only_when_it_changes_something(
    db: Database, seed: Seed
) -> None:
    await contract(db, seed)
    before = len(await entries(db))  # the contract, written outside any scope: nothing
    await run_billing(db, now=at(date(2026, 6, 1)))
    logged = (await entries(db))[before:]
    assert logged and {actor for actor, _, _ in logged} == {"system: billing run"}
    assert Counter(kind for _, action, kind in logged if action == "create")["invoice"] == 3

    count = len(await entries(db))
    await run_billing(db, now=at(date(2026, 6, 1)))  # nothing due: no entry
    assert len(await entries(db)) == count

    for day in (date(2026, 7, 1), date(2026, 8, 1), date(2026, 8, 11), date(2026, 8, 31)):
        await run_billing(db, now=at(day))  # May's invoice stays unpaid: notice, then both sites suspended
    assert [e for e in await entries(db) if e[2] == "site"] == [("system: billing run", "update", "site")] * 2


async def test_run_from_an_admins_request_names_the_admin(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    admin = Actor(None, "admin@example.org", seed.account_id, "192.0.2.1")
    with acting(lambda: admin, lambda: datetime(2026, 6, 1, tzinfo=UTC)):
        await run_billing(db, now=at(date(2026, 6, 1)))
    assert {actor for actor, _, _ in await entries(db)} == {"admin@example.org"}

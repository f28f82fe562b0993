"""Property: for random usage, outages and payments, stored invoices add up, are never negative, and
re-running the billing run changes nothing."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rooms.billing.ledger import record_payment
from rooms.billing.models import InvoiceLineRow
from rooms.billing.run import run_billing
from rooms.billing.store import create_contract, list_invoices, record_outage, set_usage
from rooms.database import Database
from tests.billing.conftest import add_seed
from tests.billing.test_billing_store import snapshot

START = date(2026, 3, 16)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)


scenario = st.fixed_dictionaries(
    {
        "rule": st.sampled_from(["next_month", "prorate"]),
        "period": st.sampled_from(["monthly", "quarterly"]),
        "sms": st.lists(st.integers(0, 400), min_size=8, max_size=8),
        "pay_after": st.lists(st.none() | st.integers(0, 90), min_size=8, max_size=8),
        "outage_minutes": st.lists(st.integers(0, 3000), min_size=8, max_size=8),
    }
)


def test_billing_run_property(tmp_path: Path) -> None:
    template = tmp_path / "template.db"

    async def migrate() -> None:
        db = await Database.connect(f"sqlite+aiosqlite:///{template}")
        await db.upgrade()
        await db.close()

    asyncio.run(migrate())
    counter = iter(range(10**6))

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(scenario)
    def check(params: dict[str, object]) -> None:
        path = tmp_path / f"run{next(counter)}.db"
        shutil.copy(template, path)
        asyncio.run(run(path, params))

    check()


async def run(path: Path, params: dict[str, object]) -> None:
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        seed = await add_seed(db)
        terms = {
            "currency": "CNY",
            "fee_per_endpoint_year": "12850",
            "start": START.isoformat(),
            "change_rule": params["rule"],
            "payment_period": params["period"],
            "usage_prices": [{"kind": "sms", "unit_price": "0.038", "included_per_year": "1000"}],
            "live_event_fee": "100",
        }
        await create_contract(
            db,
            account_id=seed.account_id,
            terms=terms,
            sites=[{"site_id": s} for s in seed.site_ids],
            now=at(START),
        )
        sms = params["sms"]
        pay_after = params["pay_after"]
        outages = params["outage_minutes"]
        assert isinstance(sms, list) and isinstance(pay_after, list) and isinstance(outages, list)
        # A timeline of checkpoints (1st and 16th of each month): usage is entered and outages are
        # recorded during their month, each issued invoice is paid `pay_after` days after issue (or never).
        paid: set[int] = set()
        for i in range(8):
            month = date(2026, 4, 1) + relativedelta(months=i)
            for day in (month, month + timedelta(days=15)):
                now = at(day)
                if day.day == 16:
                    await set_usage(
                        db, account_id=seed.account_id, kind="sms", month=month, quantity=sms[i], now=now
                    )
                    if outages[i]:
                        start = at(month + timedelta(days=2))
                        end = start + timedelta(minutes=outages[i])
                        await record_outage(
                            db, start=start, end=end, account_id=None, source="monitor", note="", now=now
                        )
                await run_billing(db, now=now)
                for invoice in await list_invoices(db, account_id=seed.account_id):
                    delay = pay_after[invoice.period_start.month % 8]
                    if invoice.state == "paid" or invoice.id in paid or delay is None:
                        continue
                    paid_on = invoice.issue_date + timedelta(days=delay)
                    if paid_on <= day:
                        await record_payment(
                            db, invoice.id, amount=str(invoice.amount_due), paid_on=paid_on, now=now
                        )
                        paid.add(invoice.id)
        month = date(2026, 12, 1)
        final = at(month + timedelta(days=5))
        await run_billing(db, now=final)
        before = await snapshot(db)
        await run_billing(db, now=final)
        assert await snapshot(db) == before
        async with db.session() as session:
            for invoice in await list_invoices(db, account_id=seed.account_id):
                lines = (
                    await session.scalars(
                        select(InvoiceLineRow).where(InvoiceLineRow.invoice_id == invoice.id)
                    )
                ).all()
                assert invoice.total == sum((line.amount for line in lines), Decimal(0))
                assert invoice.total >= 0
                assert invoice.carry_forward >= 0
    finally:
        await db.close()

"""Acceptance N9, the seed SMS contract as a worked example: an account at 299,990 parts in its contract year
sends 20 more and the invoice's SMS line bills 10 × 0.038 = 0.38. Parts are those the SMSC took (the outbox's
`parts` of billable rows); maintenance notices are not counted, nor parts sent in the free trial."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from rooms.billing.invoice import LineKind
from rooms.billing.models import Invoice, UsageRecord
from rooms.billing.run import run_billing
from rooms.billing.store import create_contract, get_invoice, set_usage
from rooms.database import Database
from rooms.outbox.models import Notification
from tests.billing.conftest import add_seed

TERMS: dict[str, Any] = {
    "currency": "CNY",
    "fee_per_endpoint_year": "12850",
    "start": "2026-03-16",  # the trial runs to 15 April
    "usage_prices": [{"kind": "sms", "unit_price": "0.038", "included_per_year": "300000"}],
}


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)  # 12:00 in Asia/Shanghai


def sms(
    account_id: int, n: int, sent: datetime, *, parts: int = 1, billable: bool = True, **kw: Any
) -> Notification:
    return Notification(
        account_id=account_id, channel="sms", kind=kw.pop("kind", "custom"), template_key="custom",
        locale="zh-CN", recipient=f"+86138{n:08d}", variables={"text": "x"}, attachments=[],
        idempotency_key=f"metering:{n}", not_before=sent, expires_at=sent + timedelta(days=1),
        status=kw.pop("status", "delivered"), attempts=1, next_attempt_at=sent, parts=parts,
        billable=billable, created_at=sent, sent_at=kw.pop("sent_at", sent),
    )  # fmt: skip


async def test_the_seed_sms_contract_bills_parts_beyond_the_yearly_pack(db: Database) -> None:
    seed = await add_seed(db)
    account = seed.account_id
    await create_contract(
        db,
        account_id=account,
        terms=TERMS,
        sites=[{"site_id": s} for s in seed.site_ids],
        now=noon(date(2026, 3, 16)),
    )
    # Five months of a gateway's counts entered by hand: 299,988 parts.
    for month, quantity in zip(range(5, 10), ("60000", "60000", "60000", "60000", "59988"), strict=True):
        await set_usage(db, account_id=account, kind="sms", month=f"2026-{month:02d}-01", quantity=quantity,
                        now=noon(date(2026, 3, 16)))  # fmt: skip
    n = 0
    rows: list[Notification] = []
    # In the trial (March, and April up to the 15th) parts are free and do not count towards the pack.
    for day in (date(2026, 3, 20), date(2026, 4, 10)):
        for _ in range(3):
            rows.append(sms(account, (n := n + 1), noon(day), parts=2))
    # After the trial, in April: 2 parts. The year now stands at 299,990.
    rows.append(sms(account, (n := n + 1), noon(date(2026, 4, 20)), parts=2))
    # October: 20 one-part messages; a maintenance notice (not billable); a message left unknown without
    # parts; one still queued.
    for i in range(20):
        rows.append(sms(account, (n := n + 1), noon(date(2026, 10, 1 + i))))
    rows.append(sms(account, (n := n + 1), noon(date(2026, 10, 22)), billable=False, kind="maintenance"))
    rows.append(sms(account, (n := n + 1), noon(date(2026, 10, 23)), parts=0, status="unknown"))
    rows.append(sms(account, (n := n + 1), noon(date(2026, 10, 24)), parts=0, status="queued", sent_at=None))
    async with db.session() as session:
        session.add_all(rows)
        await session.commit()

    await run_billing(db, now=noon(date(2026, 11, 1)))

    async with db.session() as session:
        usage = {
            (u.month, u.source): u.quantity
            for u in (
                await session.scalars(
                    select(UsageRecord).where(UsageRecord.kind == "sms", UsageRecord.account_id == account)
                )
            ).all()
        }  # fmt: skip
        invoices = {
            i.period_start: i.id
            for i in (await session.scalars(select(Invoice).where(Invoice.account_id == account))).all()
        }
    assert usage[(date(2026, 4, 1), "metered")] == Decimal(2)
    assert usage[(date(2026, 10, 1), "metered")] == Decimal(20)
    assert (date(2026, 3, 1), "metered") not in usage
    assert sum(usage.values()) == Decimal(300_010)

    def sms_lines(invoice_id: int) -> Any:
        return [x for x in lines[invoice_id] if x.kind == LineKind.USAGE.value and x.label == "sms"]

    lines = {i: (await get_invoice(db, i, account_id=None)).lines for i in invoices.values()}
    [line] = sms_lines(invoices[date(2026, 10, 1)])
    assert (line.quantity, line.unit_price, line.amount) == (Decimal(10), Decimal("0.038"), Decimal("0.38"))
    # No month before October went over the pack.
    assert all(not sms_lines(invoices[m]) for m in invoices if m < date(2026, 10, 1))

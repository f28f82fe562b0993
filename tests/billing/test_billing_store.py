"""The billing run and store on a real database: the seed contract end to end, idempotence, retention and
bad input that writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from rooms.billing.errors import BillingConflict, BillingInputError, BillingNotFound
from rooms.billing.ledger import account_standing, issue_credit_note, record_payment
from rooms.billing.models import Contract, Invoice, InvoiceLineRow, Payment, SiteServiceChange, UsageRecord
from rooms.billing.run import run_billing
from rooms.billing.store import (
    create_contract,
    get_invoice,
    give_notice,
    list_invoices,
    record_outage,
    set_usage,
)
from rooms.database import Database
from rooms.models import Attendance, Endpoint, Meeting, Room, Site
from tests.billing.conftest import Seed

SEED_TERMS: dict[str, Any] = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"}


def at(day: date, hour: int = 4) -> datetime:
    # 04:00 UTC is noon in Asia/Shanghai, the seed contract's time zone.
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def contract(db: Database, seed: Seed, **terms: Any) -> Contract:
    return await create_contract(
        db,
        account_id=seed.account_id,
        terms={**SEED_TERMS, **terms},
        sites=[{"site_id": s} for s in seed.site_ids],
        now=at(date(2026, 3, 16)),
    )


async def snapshot(db: Database) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        rows: list[tuple[Any, ...]] = []
        for model in (Contract, Invoice, InvoiceLineRow, Payment, SiteServiceChange, UsageRecord):
            for row in (await session.scalars(select(model).order_by(model.id))).all():
                rows.append(
                    tuple(sorted((k, repr(v)) for k, v in vars(row).items() if not k.startswith("_")))
                )
        for site in (await session.scalars(select(Site).order_by(Site.id))).all():
            rows.append((site.id, site.suspended_at))
        return rows


async def by_number(db: Database, seed: Seed) -> dict[str, Invoice]:
    return {i.number or "": i for i in await list_invoices(db, account_id=seed.account_id)}


async def test_seed_contract_end_to_end(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    report = await run_billing(db, now=at(date(2026, 6, 1)))
    assert report.issued == ["000001", "000002", "000003"]
    invoices = await by_number(db, seed)
    assert [(i.period_start, i.total, i.state) for i in invoices.values()] == [
        (date(2026, 3, 1), Decimal("0.00"), "paid"),
        (date(2026, 4, 1), Decimal("0.00"), "paid"),
        (date(2026, 5, 1), Decimal("2141.66"), "issued"),
    ]
    may = await get_invoice(db, invoices["000003"].id, account_id=seed.account_id)
    assert [(line.kind, line.site_id, line.amount) for line in may.lines] == [
        ("site_fee", seed.site_ids[0], Decimal("1070.83")),
        ("site_fee", seed.site_ids[1], Decimal("1070.83")),
    ]
    with pytest.raises(BillingNotFound):
        await get_invoice(db, invoices["000003"].id, account_id=seed.other_account_id)

    # Paid 45 days after the 1 June issue: 5 days past the 40-day term.
    await record_payment(
        db, invoices["000003"].id, amount="2141.66", paid_on="2026-07-16", now=at(date(2026, 7, 16))
    )
    with pytest.raises(BillingConflict, match="already paid"):
        await record_payment(
            db, invoices["000003"].id, amount="2141.66", paid_on="2026-07-16", now=at(date(2026, 7, 16))
        )
    await run_billing(db, now=at(date(2026, 7, 1)))
    await run_billing(db, now=at(date(2026, 8, 1)))
    invoices = await by_number(db, seed)
    june, july = invoices["000004"], invoices["000005"]
    assert (june.period_start, june.total, june.due_date) == (
        date(2026, 6, 1),
        Decimal("2141.66"),
        date(2026, 8, 10),
    )
    july_lines = (await get_invoice(db, july.id, account_id=None)).lines
    assert [(line.kind, line.label, line.amount) for line in july_lines][-1] == (
        "late_fee",
        "000003",
        Decimal("321.25"),
    )
    assert july.total == Decimal("2462.91")

    # June's bill stays unpaid: notice on 11 August, suspension 20 days later.
    report = await run_billing(db, now=at(date(2026, 8, 11)))
    assert report.notices == ["000004"] and report.suspended == []
    assert (await account_standing(db, seed.account_id)).suspended is False
    report = await run_billing(db, now=at(date(2026, 8, 31)))
    assert report.suspended == ["000004"]
    standing = await account_standing(db, seed.account_id)
    assert standing.suspended and "000004" in standing.reason
    async with db.session() as session:
        sites = (await session.scalars(select(Site).where(Site.account_id == seed.account_id))).all()
        assert all(site.suspended_at == at(date(2026, 8, 31)) for site in sites)

    # Paying reinstates the sites at once; the late fee (26 days) lands on September's invoice.
    await record_payment(db, june.id, amount="2141.66", paid_on="2026-09-05", now=at(date(2026, 9, 5)))
    assert (await account_standing(db, seed.account_id)).suspended is False
    async with db.session() as session:
        sites = (await session.scalars(select(Site).where(Site.account_id == seed.account_id))).all()
        assert all(site.suspended_at is None for site in sites)
    await run_billing(db, now=at(date(2026, 10, 1)))
    september = (await by_number(db, seed))["000007"]
    lines = (await get_invoice(db, september.id, account_id=None)).lines
    assert ("late_fee", "000004", Decimal("1670.49")) in [
        (line.kind, line.label, line.amount) for line in lines
    ]


async def test_rerunning_the_billing_run_changes_nothing(db: Database, seed: Seed) -> None:
    await contract(db, seed, live_event_fee="100")
    await set_usage(
        db,
        account_id=seed.account_id,
        kind="sms",
        month="2026-06-01",
        quantity="400000",
        now=at(date(2026, 6, 2)),
    )
    now = at(date(2026, 9, 15))
    await run_billing(db, now=now)
    before = await snapshot(db)
    again = await run_billing(db, now=now)
    assert again.issued == again.notices == again.suspended == [] and again.purged == 0
    assert await snapshot(db) == before


async def test_invoice_numbers_have_no_gaps_across_accounts(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    async with db.session() as session:
        site = Site(
            account_id=seed.other_account_id, name="HQ", suspended_at=None, created_at=at(date(2026, 3, 1))
        )
        session.add(site)
        await session.commit()
    await create_contract(
        db,
        account_id=seed.other_account_id,
        terms={**SEED_TERMS, "start": "2026-04-01", "trial_months": 0},
        sites=[{"site_id": site.id, "endpoints": 3}],
        now=at(date(2026, 4, 1)),
    )
    await run_billing(db, now=at(date(2026, 8, 1)))
    ours = await list_invoices(db, account_id=seed.account_id)
    theirs = await list_invoices(db, account_id=seed.other_account_id)
    assert len(ours) == 5 and len(theirs) == 4
    assert sorted(int(i.number or "") for i in ours + theirs) == list(range(1, 10))
    assert theirs[0].total == Decimal("3212.50")  # 3 endpoints x 12850 / 12


async def test_endpoint_added_later_is_counted_by_the_run_from_next_month(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    async with db.session() as session:
        session.add(
            Endpoint(
                account_id=seed.account_id,
                site_id=seed.site_ids[0],
                sip_username="added",
                sip_secret="s",
                display_name="Added",
                enabled=True,
                created_at=at(date(2026, 6, 17)),
            )
        )
        await session.commit()
    # No run between the 17th and 1 August: the change is dated by the endpoint's creation all the same.
    await run_billing(db, now=at(date(2026, 8, 1)))
    async with db.session() as session:
        synced = (
            await session.scalars(select(SiteServiceChange).where(SiteServiceChange.source == "endpoints"))
        ).all()
        assert [(c.on, c.endpoints) for c in synced] == [(date(2026, 6, 17), 2)]
    invoices = await by_number(db, seed)
    june = (await get_invoice(db, invoices["000004"].id, account_id=None)).lines
    july = (await get_invoice(db, invoices["000005"].id, account_id=None)).lines
    assert june[0].amount == Decimal("1070.83")
    assert july[0].amount == Decimal("2141.67")


async def test_records_past_retention_are_purged_and_nothing_younger(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 8, 1)))
    numbers = set(await by_number(db, seed))
    assert numbers == {"000001", "000002", "000003", "000004", "000005"}
    # March's records are kept 5 whole months after March: through August.
    report = await run_billing(db, now=at(date(2026, 8, 31)))
    assert report.purged == 0
    report = await run_billing(db, now=at(date(2026, 9, 1)))
    assert report.purged == 1
    assert "000001" not in await by_number(db, seed)
    assert {"000002", "000003", "000004", "000005", "000006"} <= set(await by_number(db, seed))
    # Unpaid invoices are never purged, however old.
    report = await run_billing(db, now=at(date(2026, 12, 1)))
    remaining = await by_number(db, seed)
    assert "000003" in remaining and remaining["000003"].state == "suspended"
    assert "000002" not in remaining


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"fee_per_endpoint_year": "-12850"}, "terms.fee_per_endpoint_year"),
        ({"currency": "ABC"}, "terms.currency"),
        ({"retention_months": 3}, "terms.retention_months"),
    ],
)
async def test_bad_contract_input_writes_nothing(
    db: Database, seed: Seed, terms: dict[str, Any], field: str
) -> None:
    before = await snapshot(db)
    with pytest.raises(BillingInputError) as caught:
        await contract(db, seed, **terms)
    assert caught.value.field == field
    assert await snapshot(db) == before


async def test_overlapping_contracts_are_refused_and_write_nothing(db: Database, seed: Seed) -> None:
    first = await contract(db, seed)
    before = await snapshot(db)
    with pytest.raises(BillingConflict, match="overlaps contract"):
        await contract(db, seed, start="2027-01-01")
    assert await snapshot(db) == before
    # After notice, a contract starting when the first one ends is fine.
    ended = await give_notice(db, first.id, on="2026-12-01", now=at(date(2026, 12, 1)))
    assert ended.end == date(2027, 3, 16)
    await contract(db, seed, start="2027-03-16")


async def test_site_of_another_account_is_refused(db: Database, seed: Seed) -> None:
    async with db.session() as session:
        other_site = Site(
            account_id=seed.other_account_id, name="x", suspended_at=None, created_at=at(date(2026, 3, 1))
        )
        session.add(other_site)
        await session.commit()
    with pytest.raises(BillingInputError) as caught:
        await create_contract(
            db,
            account_id=seed.account_id,
            terms=SEED_TERMS,
            sites=[{"site_id": other_site.id}],
            now=at(date(2026, 3, 16)),
        )
    assert caught.value.field == "sites[0].site_id"


async def test_payment_must_match_and_writes_nothing_when_wrong(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 6, 1)))
    may = (await by_number(db, seed))["000003"]
    before = await snapshot(db)
    with pytest.raises(BillingInputError) as caught:
        await record_payment(db, may.id, amount="2000", paid_on="2026-06-02", now=at(date(2026, 6, 2)))
    assert caught.value.field == "amount"
    with pytest.raises(BillingInputError) as caught:
        await record_payment(db, may.id, amount="2141.66", paid_on="2026-07-02", now=at(date(2026, 6, 2)))
    assert caught.value.field == "paid_on"
    with pytest.raises(BillingConflict, match="already paid"):
        await record_payment(
            db,
            (await by_number(db, seed))["000001"].id,
            amount="0",
            paid_on="2026-04-02",
            now=at(date(2026, 6, 2)),
        )
    with pytest.raises(BillingNotFound):
        await record_payment(db, 9999, amount="1", paid_on="2026-06-02", now=at(date(2026, 6, 2)))
    assert await snapshot(db) == before


async def test_usage_of_a_billed_month_cannot_change(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 6, 1)))
    with pytest.raises(BillingConflict, match="already billed"):
        await set_usage(
            db,
            account_id=seed.account_id,
            kind="sms",
            month="2026-05-01",
            quantity="5",
            now=at(date(2026, 6, 2)),
        )


async def test_credit_notes_correct_issued_invoices_without_changing_them(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 6, 1)))
    may = (await by_number(db, seed))["000003"]
    lines_before = [(r.kind, r.amount) for r in (await get_invoice(db, may.id, account_id=None)).lines]
    # On the unpaid invoice: the amount due drops, the invoice and its lines stay as issued.
    note = await issue_credit_note(
        db, may.id, amount="141.66", reason="wrong site count", now=at(date(2026, 6, 5))
    )
    assert (note.number, note.settles) == ("000004", True)
    may = (await by_number(db, seed))["000003"]
    assert (may.total, may.amount_due) == (Decimal("2141.66"), Decimal("2000.00"))
    assert [
        (r.kind, r.amount) for r in (await get_invoice(db, may.id, account_id=None)).lines
    ] == lines_before
    with pytest.raises(BillingInputError) as caught:
        await record_payment(db, may.id, amount="2141.66", paid_on="2026-06-06", now=at(date(2026, 6, 6)))
    assert caught.value.field == "amount"
    await record_payment(db, may.id, amount="2000.00", paid_on="2026-06-06", now=at(date(2026, 6, 6)))
    # On the paid invoice: credited on the next invoice, numbered in the same gapless sequence.
    with pytest.raises(BillingInputError) as caught:
        await issue_credit_note(db, may.id, amount="2000.01", reason="too much", now=at(date(2026, 6, 7)))
    assert caught.value.field == "amount"
    later = await issue_credit_note(
        db, may.id, amount="100", reason="outage goodwill", now=at(date(2026, 6, 7))
    )
    assert (later.number, later.settles) == ("000005", False)
    await run_billing(db, now=at(date(2026, 7, 1)))
    june = (await by_number(db, seed))["000006"]
    lines = (await get_invoice(db, june.id, account_id=None)).lines
    assert [(line.kind, line.label, line.amount) for line in lines][-1] == (
        "credit_note",
        "000005",
        Decimal("-100"),
    )
    assert june.total == Decimal("2041.66")
    # Applied once only.
    await run_billing(db, now=at(date(2026, 8, 1)))
    july = (await by_number(db, seed))["000007"]
    assert july.total == Decimal("2141.66")


async def test_a_credit_note_for_the_whole_amount_due_settles_the_invoice(db: Database, seed: Seed) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 8, 31)))
    may = (await by_number(db, seed))["000003"]
    assert may.state == "suspended"
    await issue_credit_note(db, may.id, amount="2141.66", reason="waived", now=at(date(2026, 9, 1)))
    may = (await by_number(db, seed))["000003"]
    assert (may.state, may.paid_on, may.amount_due) == ("paid", date(2026, 9, 1), Decimal("0.00"))
    # June's invoice is still unpaid and suspended too: the sites stay suspended for it alone.
    standing = await account_standing(db, seed.account_id)
    assert standing.suspended and standing.reason.endswith("invoice 000004")


async def test_run_meters_attendance_and_credits_interrupted_live_events(db: Database, seed: Seed) -> None:
    prices = [
        {"kind": "peak_endpoints", "unit_price": "100"},
        {"kind": "participant_minutes.browser", "unit_price": "0.1"},
    ]
    await contract(db, seed, usage_prices=prices, live_event_fee="1000")
    t0 = datetime(2026, 5, 12, 2, tzinfo=UTC)

    def minutes(n: float) -> datetime:
        return t0 + timedelta(minutes=n)

    async with db.session() as session:
        room = Room(
            account_id=seed.account_id, name="r", meeting_number="800000001", capacity=50, created_at=t0
        )
        session.add(room)
        await session.flush()
        meeting = Meeting(account_id=seed.account_id, room_id=room.id, started_at=t0, ended_at=minutes(120))
        session.add(meeting)
        await session.flush()
        endpoints = (
            await session.scalars(select(Endpoint).where(Endpoint.account_id == seed.account_id))
        ).all()
        stays = [
            ("sip", endpoints[0].id, 0, 60),
            ("sip", endpoints[1].id, 30, 90),
            ("sip", endpoints[0].id, 60, 120),  # back to back with its first stay: not concurrent
            ("browser", None, 0, 10.5),
            ("viewer", None, 5, 100),
        ]
        for i, (kind, endpoint_id, start, end) in enumerate(stays):
            session.add(
                Attendance(
                    account_id=seed.account_id,
                    meeting_id=meeting.id,
                    participant_id=f"p{i}",
                    display_name="x",
                    kind=kind,
                    endpoint_id=endpoint_id,
                    site_id=None,
                    device_class="room-system" if kind == "sip" else "desktop",
                    joined_at=minutes(start),
                    left_at=minutes(end),
                )
            )
        await session.commit()
    # A 45 s interruption during the live event halves its fee.
    await record_outage(
        db,
        start=minutes(50),
        end=minutes(50.75),
        account_id=None,
        source="monitor",
        note="",
        now=minutes(200),
    )
    await run_billing(db, now=at(date(2026, 6, 1)))
    may = (await by_number(db, seed))["000003"]
    lines = {(line.kind, line.label): line for line in (await get_invoice(db, may.id, account_id=None)).lines}
    assert lines["usage", "peak_endpoints"].quantity == 2
    assert lines["usage", "peak_endpoints"].amount == Decimal("200.00")
    assert lines["usage", "participant_minutes.browser"].quantity == 11
    assert lines["live_event", ""].amount == Decimal("1000.00")
    assert lines["event_credit", str(meeting.id)].amount == Decimal("-500.00")
    assert may.total == Decimal("2141.66") + Decimal("200.00") + Decimal("1.10") + Decimal(
        "1000.00"
    ) - Decimal("500.00")


async def test_endpoint_created_inside_a_billed_period_counts_from_the_first_unbilled_day(
    db: Database, seed: Seed
) -> None:
    await contract(db, seed)
    await run_billing(db, now=at(date(2026, 7, 1)))  # June is billed with one endpoint per site
    async with db.session() as session:
        session.add(
            Endpoint(
                account_id=seed.account_id,
                site_id=seed.site_ids[1],
                sip_username="backdated",
                sip_secret="s",
                display_name="Backdated",
                enabled=True,
                created_at=at(date(2026, 6, 10)),
            )
        )
        disabled = await session.scalar(select(Endpoint).where(Endpoint.site_id == seed.site_ids[0]))
        assert disabled is not None
        disabled.enabled = False
        await session.commit()
    await run_billing(db, now=at(date(2026, 7, 20)))
    async with db.session() as session:
        synced = (
            await session.scalars(select(SiteServiceChange).where(SiteServiceChange.source == "endpoints"))
        ).all()
        # The increase cannot reach back into billed June; the decrease has no date but today.
        assert sorted((c.site_id, c.on, c.endpoints) for c in synced) == [
            (seed.site_ids[0], date(2026, 7, 20), 0),
            (seed.site_ids[1], date(2026, 7, 1), 2),
        ]
    await run_billing(db, now=at(date(2026, 8, 1)))
    july = (await by_number(db, seed))["000005"]
    lines = [(line.site_id, line.amount) for line in (await get_invoice(db, july.id, account_id=None)).lines]
    # Both changes are billed from July under the next-month rule: site A still 1, site B 2 already (1 July).
    assert lines == [(seed.site_ids[0], Decimal("1070.83")), (seed.site_ids[1], Decimal("2141.67"))]

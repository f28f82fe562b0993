"""The pure billing inputs of a contract and period, read from the database (no writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.charges import ServiceChange, ServiceChangeKind
from rooms.billing.contract import ContractTerms
from rooms.billing.credits import LiveEvent
from rooms.billing.credits import Outage as OutageFact
from rooms.billing.invoice import BillingInputs, CreditNoteFact, SettledInvoice, SiteInfo
from rooms.billing.metering import Stay, Usage, stay_limit
from rooms.billing.models import Contract, CreditNote, Invoice, Outage, SiteServiceChange, UsageRecord
from rooms.billing.money import ZERO
from rooms.billing.periods import Period, local_midnight
from rooms.models import Attendance, Meeting, Room, Site
from rooms.workers import SERVER_CRASH


async def changes_of(session: AsyncSession, account_id: int) -> list[ServiceChange]:
    rows = (
        await session.scalars(
            select(SiteServiceChange)
            .where(SiteServiceChange.account_id == account_id)
            .order_by(SiteServiceChange.on, SiteServiceChange.id)
        )
    ).all()
    return [ServiceChange(r.site_id, r.on, ServiceChangeKind(r.kind), r.endpoints) for r in rows]


def _max_session(minutes: int | None) -> timedelta | None:
    return None if minutes is None else timedelta(minutes=minutes)


async def stays_of(session: AsyncSession, account_id: int, lo: datetime, hi: datetime) -> list[Stay]:
    """The account's stays overlapping [lo, hi), each bounded by its meeting's end or maximum session."""
    rows = (
        await session.execute(
            select(Attendance, Meeting.started_at, Meeting.ended_at, Room.max_session_minutes)
            .join(Meeting, Meeting.id == Attendance.meeting_id)
            .join(Room, Room.id == Meeting.room_id)
            .where(
                Attendance.account_id == account_id,
                Attendance.joined_at < hi,
                (Attendance.left_at.is_(None)) | (Attendance.left_at > lo),
            )
        )
    ).all()
    return [
        Stay(
            r.kind,
            r.joined_at,
            r.left_at,
            r.endpoint_id,
            r.meeting_id,
            until=stay_limit(
                meeting_started_at=started, meeting_ended_at=ended, max_session=_max_session(minutes)
            ),
        )
        for r, started, ended, minutes in rows
    ]


def _event_end(
    meeting: Meeting, max_session: timedelta | None, outages: Sequence[OutageFact], hi: datetime
) -> datetime:
    """When a live event ended as the event credits see it: its meeting's end, or while it has none the
    earlier of `hi` and its maximum session. A crash closes the meeting at its last heartbeat, where the
    crash's outage begins: such an event counts until the service came back, so the interruption is credited
    against it."""
    end = meeting.ended_at
    if end is None:
        limit = stay_limit(
            meeting_started_at=meeting.started_at, meeting_ended_at=None, max_session=max_session
        )
        return hi if limit is None else min(hi, limit)
    if meeting.end_reason == SERVER_CRASH:
        end = max([end, *(o.end for o in outages if o.start <= end <= o.end)])
    return end


async def gather_inputs(
    session: AsyncSession, contract: Contract, terms: ContractTerms, period: Period
) -> BillingInputs:
    account_id = contract.account_id
    changes = await changes_of(session, account_id)
    site_ids = sorted({c.site_id for c in changes})
    sites = (await session.scalars(select(Site).where(Site.id.in_(site_ids)))).all() if site_ids else []
    usage_rows = (
        await session.scalars(
            select(UsageRecord).where(UsageRecord.account_id == account_id, UsageRecord.month < period.end)
        )
    ).all()
    lo, hi = local_midnight(period.start, terms.timezone), local_midnight(period.end, terms.timezone)
    # Quarterly availability looks back over the whole quarter that ends in this period.
    quarter_lo = local_midnight(period.start - relativedelta(months=3), terms.timezone)
    outages = (
        await session.scalars(
            select(Outage).where(
                (Outage.account_id.is_(None)) | (Outage.account_id == account_id),
                Outage.start < hi,
                Outage.end > quarter_lo,
            )
        )
    ).all()
    viewed = (
        select(Attendance.meeting_id)
        .where(Attendance.account_id == account_id, Attendance.kind == "viewer")
        .distinct()
    )
    meetings = (
        await session.execute(
            select(Meeting, Room.max_session_minutes)
            .join(Room, Room.id == Meeting.room_id)
            .where(
                Meeting.account_id == account_id,
                Meeting.started_at >= lo,
                Meeting.started_at < hi,
                Meeting.id.in_(viewed),
            )
        )
    ).all()
    outage_facts = tuple(OutageFact(o.start, o.end, o.account_id) for o in outages)
    settled = (
        await session.scalars(
            select(Invoice).where(
                Invoice.account_id == account_id,
                Invoice.paid_on.is_not(None),
                Invoice.paid_on < period.end,
                Invoice.paid_on > Invoice.due_date,
                Invoice.late_fee_billed_in.is_(None),
            )
        )
    ).all()
    notes = (
        await session.execute(
            select(CreditNote, Invoice.number)
            .join(Invoice, Invoice.id == CreditNote.invoice_id)
            .where(
                CreditNote.account_id == account_id,
                CreditNote.settles.is_(False),
                CreditNote.applied_in.is_(None),
                CreditNote.issued_on < period.end,
            )
        )
    ).all()
    previous = await session.scalar(
        select(Invoice)
        .where(Invoice.contract_id == contract.id, Invoice.period_start < period.start)
        .order_by(Invoice.period_start.desc())
        .limit(1)
    )
    return BillingInputs(
        account_id=account_id,
        sites=tuple(SiteInfo(s.id, s.name) for s in sorted(sites, key=lambda s: s.id)),
        changes=tuple(changes),
        usage=tuple(Usage(r.kind, r.month, r.quantity) for r in usage_rows),
        live_events=tuple(
            LiveEvent(m.id, m.started_at, _event_end(m, _max_session(n), outage_facts, hi))
            for m, n in meetings
        ),
        outages=outage_facts,
        settled=tuple(
            SettledInvoice(i.number or "", i.amount_due, i.due_date, i.paid_on)
            for i in settled
            if i.paid_on is not None
        ),
        credit_notes=tuple(CreditNoteFact(n.number, n.amount, number or "") for n, number in notes),
        carried_credit=previous.carry_forward if previous is not None else ZERO,
        notice_on=contract.notice_on,
    )

"""billing: contracts, site service changes, outages, usage, invoices, lines, payments, credit notes, counters

Revision ID: 0100
Revises: 0001
Create Date: 2026-11-21 08:33:02.483057
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_billing_counters")),
    )
    op.create_table(
        "billing_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("notice_on", sa.Date(), nullable=True),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_contracts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_contracts")),
    )
    with op.batch_alter_table("billing_contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_contracts_account_id"), ["account_id"], unique=False)

    op.create_table(
        "billing_outages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_outages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_outages")),
    )
    with op.batch_alter_table("billing_outages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_outages_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_billing_outages_span", ["start", "end"], unique=False)

    op.create_table(
        "billing_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_usage_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_usage")),
        sa.UniqueConstraint("account_id", "kind", "month", name="uq_billing_usage_account_kind_month"),
    )
    with op.batch_alter_table("billing_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_usage_account_id"), ["account_id"], unique=False)

    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("amount_due", sa.String(length=40), nullable=False),
        sa.Column("carry_forward", sa.String(length=40), nullable=False),
        sa.Column("notice_on", sa.Date(), nullable=True),
        sa.Column("suspended_on", sa.Date(), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("late_fee_billed_in", sa.Integer(), nullable=True),
        sa.Column("purge_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_invoices_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["billing_contracts.id"],
            name=op.f("fk_billing_invoices_contract_id_billing_contracts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoices")),
        sa.UniqueConstraint("contract_id", "period_start", name="uq_billing_invoices_contract_period"),
        sa.UniqueConstraint("number", name=op.f("uq_billing_invoices_number")),
        sa.UniqueConstraint("seq", name=op.f("uq_billing_invoices_seq")),
    )
    with op.batch_alter_table("billing_invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoices_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoices_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoices_purge_on"), ["purge_on"], unique=False)

    op.create_table(
        "billing_site_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("endpoints", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_site_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_billing_site_changes_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_site_changes")),
    )
    with op.batch_alter_table("billing_site_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_site_changes_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_site_changes_site_id"), ["site_id"], unique=False)

    op.create_table(
        "billing_credit_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("settles", sa.Boolean(), nullable=False),
        sa.Column("applied_in", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_credit_notes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_credit_notes_invoice_id_billing_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_credit_notes")),
        sa.UniqueConstraint("number", name=op.f("uq_billing_credit_notes_number")),
        sa.UniqueConstraint("seq", name=op.f("uq_billing_credit_notes_seq")),
    )
    with op.batch_alter_table("billing_credit_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_credit_notes_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_credit_notes_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "billing_invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit_price", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_invoice_lines_invoice_id_billing_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice_lines")),
    )
    with op.batch_alter_table("billing_invoice_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoice_lines_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "billing_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoices.id"],
            name=op.f("fk_billing_payments_invoice_id_billing_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payments")),
    )
    with op.batch_alter_table("billing_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_payments_invoice_id"), ["invoice_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("billing_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_payments_invoice_id"))

    op.drop_table("billing_payments")
    with op.batch_alter_table("billing_invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoice_lines_invoice_id"))

    op.drop_table("billing_invoice_lines")
    with op.batch_alter_table("billing_credit_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_credit_notes_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billing_credit_notes_account_id"))

    op.drop_table("billing_credit_notes")
    with op.batch_alter_table("billing_site_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_site_changes_site_id"))
        batch_op.drop_index(batch_op.f("ix_billing_site_changes_account_id"))

    op.drop_table("billing_site_changes")
    with op.batch_alter_table("billing_invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoices_purge_on"))
        batch_op.drop_index(batch_op.f("ix_billing_invoices_contract_id"))
        batch_op.drop_index(batch_op.f("ix_billing_invoices_account_id"))

    op.drop_table("billing_invoices")
    with op.batch_alter_table("billing_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_usage_account_id"))

    op.drop_table("billing_usage")
    with op.batch_alter_table("billing_outages", schema=None) as batch_op:
        batch_op.drop_index("ix_billing_outages_span")
        batch_op.drop_index(batch_op.f("ix_billing_outages_account_id"))

    op.drop_table("billing_outages")
    with op.batch_alter_table("billing_contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_contracts_account_id"))

    op.drop_table("billing_contracts")
    op.drop_table("billing_counters")

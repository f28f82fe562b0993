"""Parsing contract terms: one parse point, clear errors naming the field, a lossless round trip."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from rooms.billing.contract import (
    ChangeRule,
    ContractTerms,
    FixedFee,
    SiteFee,
    UsagePrice,
    parse_terms,
    terms_to_json,
)
from rooms.billing.errors import BillingInputError
from rooms.billing.money import quantize
from rooms.billing.periods import PaymentPeriod

SEED_JSON: dict[str, Any] = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"}


def test_seed_terms_parse_with_defaults() -> None:
    terms = parse_terms(SEED_JSON)
    assert terms == ContractTerms(
        currency="CNY", fee_per_endpoint_year=Decimal("12850"), start=date(2026, 3, 16)
    )


def test_round_trip_of_every_term() -> None:
    terms = ContractTerms(
        currency="USD",
        fee_per_endpoint_year=Decimal("1000.50"),
        start=date(2026, 1, 31),
        site_fees=(SiteFee(3, Decimal("2000")),),
        timezone="Europe/Berlin",
        payment_period=PaymentPeriod.QUARTERLY,
        change_rule=ChangeRule.PRORATE,
        trial_months=0,
        payment_due_days=30,
        late_fee_rate_per_day=Decimal("0.0005"),
        late_fee_cap=Decimal("0.2"),
        suspension_after_notice_days=10,
        retention_months=24,
        term_months=12,
        renewal_notice_days=60,
        availability_target=Decimal("99.9"),
        live_event_fee=Decimal("300"),
        fixed_fees=(FixedFee("Line rental", Decimal("120")),),
        usage_prices=(UsagePrice("sms", Decimal("0.038"), Decimal(300000)),),
    )
    assert parse_terms(terms_to_json(terms)) == terms


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fee_per_endpoint_year": "-1"}, "fee_per_endpoint_year"),
        ({"fee_per_endpoint_year": 1.5}, "fee_per_endpoint_year"),  # floats are refused
        ({"fee_per_endpoint_year": "abc"}, "fee_per_endpoint_year"),
        ({"currency": "XYZ"}, "currency"),
        ({"start": "2026-02-30"}, "start"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"retention_months": 4}, "retention_months"),
        ({"payment_period": "weekly"}, "payment_period"),
        ({"change_rule": "whenever"}, "change_rule"),
        ({"late_fee_rate_per_day": "-0.03"}, "late_fee_rate_per_day"),
        ({"availability_target": "100.1"}, "availability_target"),
        (
            {"site_fees": [{"site_id": 1, "fee_per_endpoint_year": "-5"}]},
            "site_fees[0].fee_per_endpoint_year",
        ),
        ({"usage_prices": [{"kind": "pizza", "unit_price": "1"}]}, "usage_prices[0].kind"),
        ({"fixed_fees": [{"name": "", "monthly_amount": "1"}]}, "fixed_fees[0].name"),
        ({"bonus": 1}, "bonus"),
        ({"trial_months": True}, "trial_months"),
    ],
)
def test_bad_terms_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(BillingInputError) as caught:
        parse_terms({**SEED_JSON, **change})
    assert caught.value.field == field


def test_missing_required_term() -> None:
    with pytest.raises(BillingInputError) as caught:
        parse_terms({"currency": "CNY", "start": "2026-03-16"})
    assert caught.value.field == "fee_per_endpoint_year"


def test_rounding_is_half_up_to_cents() -> None:
    assert quantize(Decimal("0.125")) == Decimal("0.13")
    assert quantize(Decimal("0.124999")) == Decimal("0.12")
    assert quantize(Decimal("-0.125")) == Decimal("-0.13")

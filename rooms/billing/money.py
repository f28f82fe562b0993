"""Money: Decimal only, quantized to cents with ROUND_HALF_UP at the points the billing rules name."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from rooms.billing.errors import BillingInputError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# ISO 4217 currencies with two minor units that a contract may be written in.
CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD", "MOP", "TWD", "GBP", "SGD", "AUD", "CAD", "CHF"})


def quantize(amount: Decimal) -> Decimal:
    """Round to cents, half up: the single rounding rule of billing."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


MAX_AMOUNT = Decimal(10**12)
MAX_PLACES = 6


def parse_decimal(
    value: object, field: str, *, minimum: Decimal | None = Decimal(0), maximum: Decimal = MAX_AMOUNT
) -> Decimal:
    """Parse an amount or rate given as a string, an int or a Decimal (never a float)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise BillingInputError(field, "must be a decimal number given as a string or an integer")
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError):
        raise BillingInputError(field, f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise BillingInputError(field, "must be a finite number")
    if minimum is not None and result < minimum:
        raise BillingInputError(field, f"must be at least {minimum}")
    if result > maximum:
        raise BillingInputError(field, f"must be at most {maximum}")
    exponent = result.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise BillingInputError(field, f"at most {MAX_PLACES} decimal places")
    return result


def parse_currency(value: object, field: str = "currency") -> str:
    if not isinstance(value, str) or value.upper() not in CURRENCIES:
        raise BillingInputError(field, f"unknown currency {value!r}; one of {', '.join(sorted(CURRENCIES))}")
    return value.upper()

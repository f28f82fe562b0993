"""Settings section of the rooms package (composed by yunhui/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SupplierSettings(BaseModel):
    """The platform operator as the supplier printed on every invoice (YUNHUI_ROOMS__SUPPLIER__TAX_ID, …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_name: str = Field(default="", max_length=200)
    # 纳税人识别号 (the unified social credit code in China).
    tax_id: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    phone: str = Field(default="", max_length=40)
    bank: str = Field(default="", max_length=200)
    bank_account: str = Field(default="", max_length=60)
    # Printed under the payment instructions, e.g. "Quote the invoice number as the transfer reference".
    payment_note: str = Field(default="", max_length=500)


class RoomsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    supplier: SupplierSettings = SupplierSettings()

    # A room admits participants this many minutes before a booked occurrence starts.
    open_before_minutes: int = Field(default=10, ge=0, le=24 * 60)
    # A booked meeting may run this long past the booking's end before it is ended.
    grace_minutes: int = Field(default=5, ge=0, le=24 * 60)
    # The longest single occurrence a booking may have.
    max_booking_minutes: int = Field(default=12 * 60, ge=1)
    # Series are expanded (and checked for overlaps) up to this far ahead; a series must end before it.
    booking_horizon_days: int = Field(default=2 * 366, ge=1)
    max_occurrences: int = Field(default=1000, ge=1)
    default_capacity: int = Field(default=100, ge=1)
    access_token_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    join_token_ttl_seconds: int = Field(default=15 * 60, ge=10)

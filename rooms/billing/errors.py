"""Billing's exception types: subclasses of the rooms package's errors, so the API maps them to 4xx."""

from __future__ import annotations

from rooms.errors import Conflict, InvalidInput, NotFound, RoomsError


class BillingError(RoomsError):
    """Base of every billing error."""

    code = "billing_error"


class BillingInputError(InvalidInput, BillingError):
    """Bad input: names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class BillingConflict(Conflict, BillingError):
    """The request contradicts stored state, e.g. overlapping contracts or a second payment."""


class BillingNotFound(NotFound, BillingError):
    """An id that does not exist, or not in the caller's account."""

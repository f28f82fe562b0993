"""Request and response bodies of the REST API (pydantic): the one parse and serialise point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A new or changed passcode has at least 6 digits: 10^6 guesses against the join limits of
# signaling/attempts.py (4 digits fell in hours). Rooms saved with shorter ones keep them and keep working.
Passcode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,10}$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# auth
class LoginIn(Body):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class UserOut(Out):
    id: int
    email: str
    role: str
    account_id: int | None
    display_name: str
    created_at: datetime
    must_change_password: bool


class PasswordChangeIn(Body):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    new_password: Annotated[str, StringConstraints(min_length=8, max_length=500)]


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


class UserIn(Body):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    password: Annotated[str, StringConstraints(min_length=8, max_length=500)]
    role: Literal["admin", "organizer"]
    display_name: Annotated[str, StringConstraints(max_length=200)] = ""
    account_id: Id | None = None


# accounts
class AccountIn(Body):
    name: Name


class BillingDetails(Body):
    """The customer's details printed on its invoices; empty strings are left off the document."""

    name: Annotated[str, StringConstraints(max_length=200)] = ""
    tax_id: Annotated[str, StringConstraints(max_length=40)] = ""
    address: Annotated[str, StringConstraints(max_length=300)] = ""
    contact: Annotated[str, StringConstraints(max_length=200)] = ""


class AccountPatch(Body):
    name: Name | None = None
    billing: BillingDetails | None = None


class AccountOut(Out):
    id: int
    name: str
    created_at: datetime
    billing: BillingDetails = BillingDetails()


# sites
class SiteIn(Body):
    name: Name
    address: Annotated[str, StringConstraints(max_length=500)] = ""
    account_id: Id | None = None


class SitePatch(Body):
    name: Name | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None


class SiteOut(Out):
    id: int
    account_id: int
    name: str
    address: str
    suspended_at: datetime | None
    created_at: datetime


# endpoints
SipUsername = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{3,64}$")]


class EndpointIn(Body):
    site_id: Id
    display_name: Name
    sip_username: SipUsername | None = None
    enabled: bool = True


class EndpointPatch(Body):
    display_name: Name | None = None
    enabled: bool | None = None


class EndpointOut(Out):
    id: int
    account_id: int
    site_id: int
    sip_username: str
    display_name: str
    enabled: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    sip_secret: str = Field(description="shown only in this response")


# rooms
class RoomIn(Body):
    name: Name
    passcode: Passcode | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_session_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    lobby: bool = False
    auto_record: bool = False
    account_id: Id | None = None


class RoomPatch(Body):
    name: Name | None = None
    passcode: Passcode | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_session_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    lobby: bool | None = None
    auto_record: bool | None = None


class RoomOut(Out):
    id: int
    account_id: int
    name: str
    meeting_number: str
    passcode: str | None
    capacity: int
    max_session_minutes: int | None
    lobby: bool
    auto_record: bool = Field(default=False, description="its meetings are recorded from the start")
    created_at: datetime
    # Only the account's own users see a room (organizers and admins): entered in a meeting to become host.
    host_key: str = Field(description="digits entered in a meeting (claim_host) to become its host")


# bookings
class Invitee(Body):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{3,30}$")] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    # The language of the invitation e-mail; None: the user's with that address, else the platform default.
    locale: Literal["zh-CN", "en"] | None = None


LOCAL_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
# A wall-clock time in the booking's time zone (RFC 3339 without an offset; an offset, if given on input,
# is converted into the time zone). Not "format: date-time", which requires an offset.
LocalTime = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": LOCAL_TIME_PATTERN,
            "description": "wall-clock time in time_zone, e.g. 2026-03-16T09:00:00; an offset is converted",
        }
    ),
]
LocalTimeOut = Annotated[
    datetime,
    PlainSerializer(lambda value: value.replace(tzinfo=None).isoformat(), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$",
            "description": "wall-clock time in the booking's time_zone",
        }
    ),
]


class BookingIn(Body):
    room_id: Id
    title: Name
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    start: LocalTime
    end: LocalTime
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    rrule: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    exdates: Annotated[list[LocalTime], Field(max_length=1000)] = []
    invitees: Annotated[list[Invitee], Field(max_length=500)] = []
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    passcode: Passcode | None = None
    lobby: bool | None = None


class BookingPatch(Body):
    title: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    start: LocalTime | None = None
    end: LocalTime | None = None
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    rrule: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    exdates: Annotated[list[LocalTime], Field(max_length=1000)] | None = None
    invitees: Annotated[list[Invitee], Field(max_length=500)] | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    passcode: Passcode | None = None
    lobby: bool | None = None


class OccurrencePatch(Body):
    title: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    start: LocalTime | None = None
    end: LocalTime | None = None
    invitees: Annotated[list[Invitee], Field(max_length=500)] | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    passcode: Passcode | None = None
    lobby: bool | None = None


class BookingOut(BaseModel):
    id: int
    account_id: int
    room_id: int
    organizer_id: int | None
    parent_id: int | None
    recurrence_id: LocalTimeOut | None
    uid: str
    sequence: int
    title: str
    description: str
    start: LocalTimeOut
    end: LocalTimeOut
    time_zone: str
    rrule: str | None
    exdates: list[LocalTimeOut]
    invitees: list[Invitee]
    capacity: int | None
    passcode: str | None
    lobby: bool | None
    first_start: datetime
    last_end: datetime
    cancelled: bool
    created_at: datetime
    updated_at: datetime


class OccurrenceOut(BaseModel):
    booking_id: int
    recurrence_id: LocalTimeOut
    start: datetime
    end: datetime


class OccurrenceQuery(Body):
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")


class FeedQuery(Body):
    key: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None


class FeedKeyOut(BaseModel):
    key: str
    path: str = Field(description="the feed's path relative to /api/v1, key included")


# join tokens
class JoinTokenIn(Body):
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    role: Literal["host", "participant", "viewer"] = "participant"
    ttl_seconds: Annotated[int, Field(ge=10, le=24 * 3600)] | None = None


class JoinTokenOut(BaseModel):
    token: str
    expires_at: datetime
    meeting_number: str
    room_id: int
    booking_id: int | None


# meetings
class MeetingOut(Out):
    id: int
    account_id: int
    room_id: int
    booking_id: int | None
    occurrence_start: datetime | None
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class AttendanceOut(Out):
    id: int
    meeting_id: int
    participant_id: str
    display_name: str
    kind: str
    endpoint_id: int | None
    site_id: int | None
    device_class: str
    joined_at: datetime
    left_at: datetime | None
    leave_reason: str | None


class ListQuery(Body):
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class RoomFilter(ListQuery):
    room_id: Id | None = None


class AccountFilter(ListQuery):
    account_id: Id | None = None

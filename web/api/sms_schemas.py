"""Wire models of the SMS routes, and what the composition root provides them (SmsTexts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field

from web.api.schemas import Body, Id, ListQuery

Locale = Literal["zh-CN", "en"]
TemplateKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]


class SmsPreviewIn(Body):
    text: Annotated[str, Field(min_length=1, max_length=5000)]
    locale: Locale = "zh-CN"


class SmsPreviewOut(BaseModel):
    """A text as it is sent: the signature is part of it and counted."""

    signature: str
    characters: int
    encoding: Literal["gsm7", "ucs2"]
    units: int
    parts: int
    part_limit: int


class VariableIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    max_length: Annotated[int, Field(ge=1, le=500)] = 40


class TemplateIn(Body):
    texts: dict[str, str]
    variables: list[VariableIn] = Field(default_factory=list, max_length=30)
    # The provider's approved template code (mainland A2P SMS), when there is one.
    provider_code: Annotated[str | None, Field(max_length=100)] = None
    # Values for the preview instead of each variable at its maximum length.
    sample: dict[str, str] | None = None


class TemplatePreviewOut(BaseModel):
    locale: str
    text: str
    preview: SmsPreviewOut


class TemplateOut(BaseModel):
    key: str
    texts: dict[str, str]
    variables: list[VariableIn]
    provider_code: str | None = None
    approval: str = "none"
    shipped: bool = False  # a shipped text, not yet overridden by the account
    previews: list[TemplatePreviewOut] = Field(default_factory=list)
    updated_at: datetime | None = None


class SendIn(Body):
    to: Annotated[str, Field(min_length=3, max_length=32)]
    text: Annotated[str | None, Field(min_length=1, max_length=2000)] = None
    template_key: TemplateKey | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    locale: Locale = "zh-CN"
    # A retried POST with the same key queues nothing new and answers with the first message.
    idempotency_key: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class SendOut(BaseModel):
    id: int
    status: str
    created: bool
    preview: SmsPreviewOut


class MessageQuery(ListQuery):
    batch_id: Id | None = None


class MessageOut(BaseModel):
    id: int
    to: str
    template_key: str
    locale: str
    status: str
    parts: int
    batch_id: str | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class BatchIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    # One number per line, optionally with columns named in a header line (phone,name,...) that fill
    # the text's ${variables}.
    csv: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    text: Annotated[str | None, Field(min_length=1, max_length=2000)] = None
    template_key: TemplateKey | None = None
    locale: Locale = "zh-CN"


class InvalidLine(BaseModel):
    line: int
    value: str
    reason: Literal["not_a_number", "duplicate"]


class BatchOut(BaseModel):
    id: int
    name: str
    template_key: str | None
    locale: str
    total: int
    skipped: int
    done: int
    parts: int
    statuses: dict[str, int]
    created_at: datetime
    cancelled_at: datetime | None
    invalid: list[InvalidLine] = Field(default_factory=list)


class StatsQuery(Body):
    since: datetime | None = None
    until: datetime | None = None
    group_by: Literal["day", "template", "status", "batch"] = "day"
    time_zone: Annotated[str, Field(max_length=64)] = "Asia/Shanghai"


class StatOut(BaseModel):
    key: str
    messages: int
    parts: int
    accepted: int
    delivered: int
    failed: int
    unknown: int
    pending: int


class SmsTexts(Protocol):
    """The SMS text rules, from notify/ through the composition root (web/ may not import notify/).

    Each method raises web.api.base.ApiError (422, naming the field) on a text that cannot be sent."""

    def preview(self, text: str, locale: str) -> SmsPreviewOut: ...

    def check_template(
        self,
        texts: Mapping[str, str],
        variables: Sequence[Mapping[str, Any]],
        sample: Mapping[str, str] | None,
    ) -> list[TemplatePreviewOut]: ...

    def render(self, text: str, values: Mapping[str, str], field: str) -> str: ...

    def shipped(self) -> list[TemplateOut]: ...


SMS_TEXTS = web.AppKey("sms_texts", SmsTexts)
# How far apart a batch's messages are released (seconds): the channel's rate.
SMS_SPACING = web.AppKey("sms_spacing", float)
# At most this many account SMS to one number in 24 hours (0: no cap).
SMS_DAILY_CAP = web.AppKey("sms_daily_cap", int)

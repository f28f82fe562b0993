"""SIP: each Endpoint's registrations and live call, and the call records (CDR) of an account's sites.

The live state comes from the SIP gateway the composition root puts on the app (SIP_STATUS, yunhui/sip.py);
without it (SIP disabled) every endpoint is shown unregistered and idle, and the records still list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.sip import calls as records
from rooms.sip.endpoints import endpoints_of
from web.api.base import DB, Api, ApiError, parse_query, principal, send
from web.api.schemas import AccountFilter, Id, ListQuery, Out

api = Api()
TAG = "sip"


class RegistrationView(Protocol):
    @property
    def endpoint_id(self) -> str: ...
    @property
    def contact(self) -> str: ...
    @property
    def transport(self) -> str: ...
    @property
    def source(self) -> tuple[str, int]: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def user_agent(self) -> str | None: ...


class LiveCallView(Protocol):
    @property
    def call_id(self) -> str: ...
    @property
    def endpoint_id(self) -> int | None: ...
    @property
    def state(self) -> str: ...
    @property
    def meeting_number(self) -> str | None: ...
    @property
    def participant_id(self) -> str | None: ...
    @property
    def remote(self) -> str: ...
    @property
    def transport(self) -> str: ...
    @property
    def audio_codec(self) -> str: ...
    @property
    def video_codec(self) -> str: ...
    @property
    def srtp(self) -> bool: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def direction(self) -> str: ...


class SipStatus(Protocol):
    """What the gateway tells the API (signaling.sip SipServer + Gateway, joined in yunhui/sip.py)."""

    def registrations(self) -> Sequence[RegistrationView]: ...
    def live_calls(self) -> Sequence[LiveCallView]: ...


SIP_STATUS = web.AppKey("sip_status", SipStatus)


class RegistrationOut(BaseModel):
    contact: str
    transport: str
    source: str = Field(description="address:port the binding was registered from")
    expires_at: datetime
    user_agent: str | None


class LiveCallOut(BaseModel):
    call_id: str
    state: Literal["ringing", "ivr", "lobby", "joined"] | str
    meeting_number: str | None
    participant_id: str | None
    remote: str
    transport: str
    audio_codec: str
    video_codec: str
    srtp: bool
    started_at: datetime


class EndpointSipOut(BaseModel):
    endpoint_id: int
    site_id: int
    display_name: str
    sip_username: str
    enabled: bool
    registered: bool
    registrations: list[RegistrationOut]
    calls: list[LiveCallOut]


class EndpointSipQuery(AccountFilter):
    site_id: Id | None = None


class CallRecordOut(Out):
    id: int
    site_id: int | None
    endpoint_id: int | None
    meeting_id: int | None
    direction: str
    dialled: str
    meeting_number: str | None
    participant_id: str | None
    transport: str
    remote: str
    user_agent: str
    audio_codec: str
    video_codec: str
    srtp: bool
    started_at: datetime
    answered_at: datetime | None
    joined_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class CallRecordQuery(ListQuery):
    account_id: Id | None = None
    site_id: Id | None = None


def _status(request: web.Request) -> SipStatus | None:
    return request.app.get(SIP_STATUS)


@api.op(
    "GET",
    "/sip/endpoints",
    summary="Each endpoint's SIP registrations and live call",
    tag=TAG,
    response=EndpointSipOut,
    many=True,
    query=EndpointSipQuery,
)
async def list_endpoint_status(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, EndpointSipQuery)
    account_id = who.account_id if who.account_id is not None else q.account_id
    endpoints = await endpoints_of(request.app[DB], account_id=account_id, site_id=q.site_id)
    endpoints = endpoints[q.offset : q.offset + q.limit]
    status = _status(request)
    registrations = status.registrations() if status is not None else []
    live = status.live_calls() if status is not None else []
    out = []
    for endpoint in endpoints:
        mine = [r for r in registrations if r.endpoint_id == str(endpoint.id)]
        out.append(
            EndpointSipOut(
                endpoint_id=endpoint.id,
                site_id=endpoint.site_id,
                display_name=endpoint.display_name,
                sip_username=endpoint.sip_username,
                enabled=endpoint.enabled,
                registered=bool(mine),
                registrations=[
                    RegistrationOut(
                        contact=r.contact,
                        transport=r.transport,
                        source=f"{r.source[0]}:{r.source[1]}",
                        expires_at=r.expires_at,
                        user_agent=r.user_agent,
                    )
                    for r in mine
                ],
                calls=[_live(c) for c in live if c.endpoint_id == endpoint.id],
            )
        )
    return send(out)


@api.op(
    "GET",
    "/sip/calls",
    summary="SIP call records (newest first)",
    tag=TAG,
    response=CallRecordOut,
    many=True,
    query=CallRecordQuery,
)
async def list_call_records(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, CallRecordQuery)
    if who.account_id is not None and q.account_id not in (None, who.account_id):
        raise ApiError(404, "not_found", "no such account", "account_id")
    account_id = who.account_id if who.account_id is not None else q.account_id
    rows = await records.recent(
        request.app[DB], account_id=account_id, site_id=q.site_id, limit=q.limit, offset=q.offset
    )
    return send([CallRecordOut.model_validate(r) for r in rows])


def _live(call: LiveCallView) -> LiveCallOut:
    return LiveCallOut(
        call_id=call.call_id,
        state=call.state,
        meeting_number=call.meeting_number,
        participant_id=call.participant_id,
        remote=call.remote,
        transport=call.transport,
        audio_codec=call.audio_codec,
        video_codec=call.video_codec,
        srtp=call.srtp,
        started_at=call.started_at,
    )

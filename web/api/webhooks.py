"""Webhooks: per-account subscriptions to events, their delivery log, a test ping and redelivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rooms.webhooks import store
from rooms.webhooks.models import Webhook, WebhookDelivery
from rooms.webhooks.policy import EVENTS, UrlPolicy, check_events, check_url
from web.api.base import CLOCK, DB, Api, ApiError, owned, parse_body, parse_query, path_id, principal, send
from web.api.schemas import AccountFilter, Body, Id, ListQuery, Out

api = Api()
# Which URLs the API accepts; the composition root sets it from the webhook settings (strict if unset).
URL_POLICY = web.AppKey("webhook_url_policy", UrlPolicy)

# EVENTS spelled out, so the OpenAPI document lists them (a test keeps the two equal).
EventName = Literal[
    "meeting.started",
    "meeting.ended",
    "participant.joined",
    "participant.left",
    "recording.ready",
    "live.started",
    "live.ended",
    "invoice.issued",
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=200)]
Events = Annotated[list[EventName], Field(min_length=1, max_length=len(EVENTS))]


class WebhookIn(Body):
    url: Url
    events: Events
    description: Description = ""
    active: bool = True
    account_id: Id | None = None


class WebhookPatch(Body):
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    active: bool | None = None
    rotate_secret: bool = False


class WebhookOut(Out):
    id: int
    account_id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    """The secret that signs the deliveries: shown when the webhook is created or its secret rotated."""

    secret: str


class DeliveryOut(Out):
    id: int
    webhook_id: int
    event: str
    status: str
    attempts: int
    response_code: int | None
    last_error: str
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    body: str


class DeliveryFilter(ListQuery):
    status: Literal["pending", "delivered", "failed"] | None = None


def _policy(request: web.Request) -> UrlPolicy:
    return request.app.get(URL_POLICY) or UrlPolicy()


@api.op(
    "GET",
    "/webhooks",
    summary="List webhooks",
    tag="webhooks",
    response=WebhookOut,
    many=True,
    query=AccountFilter,
)
async def list_webhooks(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    q = parse_query(request, AccountFilter)
    query = select(Webhook).order_by(Webhook.id).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(Webhook.account_id == account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([WebhookOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/webhooks",
    summary="Create a webhook; its signing secret is shown only in this response (admin)",
    tag="webhooks",
    body=WebhookIn,
    response=WebhookCreated,
    status=201,
)
async def create_webhook(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, WebhookIn)
    account_id = who.target_account(body.account_id)
    url = check_url(body.url, _policy(request))
    async with request.app[DB].writer() as session:
        hook = Webhook(
            account_id=account_id,
            url=url,
            secret=store.new_secret(),
            events=check_events(body.events),
            active=body.active,
            description=body.description,
            created_at=request.app[CLOCK](),
        )
        session.add(hook)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise ApiError(404, "not_found", "no such account", "account_id") from exc
    return send(WebhookCreated.model_validate(hook), 201)


@api.op("GET", "/webhooks/{webhook_id}", summary="Get a webhook", tag="webhooks", response=WebhookOut)
async def get_webhook(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    async with request.app[DB].session() as session:
        hook = await owned(session, Webhook, path_id(request, "webhook_id"), who)
    return send(WebhookOut.model_validate(hook))


@api.op(
    "PATCH",
    "/webhooks/{webhook_id}",
    summary="Change a webhook; rotate_secret issues a new secret, shown in the response (admin)",
    tag="webhooks",
    body=WebhookPatch,
    response=WebhookCreated,
)
async def patch_webhook(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    async with request.app[DB].writer() as session:
        hook = await owned(session, Webhook, path_id(request, "webhook_id"), who)
        body = await parse_body(request, WebhookPatch)
        if body.url is not None:
            hook.url = check_url(body.url, _policy(request))
        if body.events is not None:
            hook.events = check_events(body.events)
        if body.description is not None:
            hook.description = body.description
        if body.active is not None:
            hook.active = body.active
        if body.rotate_secret:
            hook.secret = store.new_secret()
        await session.commit()
    out = WebhookCreated.model_validate(hook)
    if not body.rotate_secret:
        out.secret = ""
    return send(out)


@api.op(
    "DELETE",
    "/webhooks/{webhook_id}",
    summary="Delete a webhook and its log (admin)",
    tag="webhooks",
    status=204,
)
async def delete_webhook(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    async with request.app[DB].writer() as session:
        hook = await owned(session, Webhook, path_id(request, "webhook_id"), who)
        await session.delete(hook)
        await session.commit()
    return web.Response(status=204)


@api.op(
    "GET",
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's delivery log, newest first",
    tag="webhooks",
    response=DeliveryOut,
    many=True,
    query=DeliveryFilter,
)
async def list_deliveries(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    q = parse_query(request, DeliveryFilter)
    hook = await store.webhook_of(request.app[DB], path_id(request, "webhook_id"), account_id=who.account_id)
    rows = await store.deliveries(request.app[DB], hook.id, status=q.status, limit=q.limit, offset=q.offset)
    return send([DeliveryOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/webhooks/{webhook_id}/ping",
    summary="Queue a ping event for this webhook (admin)",
    tag="webhooks",
    response=DeliveryOut,
    status=202,
)
async def ping_webhook(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    delivery = await store.ping(
        request.app[DB], path_id(request, "webhook_id"), account_id=who.account_id, now=request.app[CLOCK]()
    )
    return send(DeliveryOut.model_validate(delivery), 202)


@api.op(
    "POST",
    "/webhook-deliveries/{delivery_id}/redeliver",
    summary="Send a delivery's event again, as a new delivery (admin)",
    tag="webhooks",
    response=DeliveryOut,
    status=202,
)
async def redeliver(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    delivery: WebhookDelivery = await store.redeliver(
        request.app[DB], path_id(request, "delivery_id"), account_id=who.account_id, now=request.app[CLOCK]()
    )
    return send(DeliveryOut.model_validate(delivery), 202)

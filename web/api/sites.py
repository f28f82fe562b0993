"""Sites and their endpoints (hardware room terminals)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rooms.models import Endpoint, Site
from rooms.numbers import sip_secret
from web.api.base import CLOCK, DB, Api, ApiError, owned, parse_body, parse_query, path_id, principal, send
from web.api.schemas import (
    AccountFilter,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    SiteIn,
    SiteOut,
    SitePatch,
)

api = Api()


@api.op("GET", "/sites", summary="List sites", tag="sites", response=SiteOut, many=True, query=AccountFilter)
async def list_sites(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, AccountFilter)
    query = select(Site).order_by(Site.id).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(Site.account_id == account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([SiteOut.model_validate(r) for r in rows])


@api.op(
    "POST", "/sites", summary="Create a site (admin)", tag="sites", body=SiteIn, response=SiteOut, status=201
)
async def create_site(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, SiteIn)
    account_id = who.target_account(body.account_id)
    async with request.app[DB].writer() as session:
        site = Site(
            account_id=account_id, name=body.name, address=body.address, created_at=request.app[CLOCK]()
        )
        session.add(site)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise ApiError(404, "not_found", "no such account", "account_id") from exc
    return send(SiteOut.model_validate(site), 201)


@api.op("GET", "/sites/{site_id}", summary="Get a site", tag="sites", response=SiteOut)
async def get_site(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        site = await owned(session, Site, path_id(request, "site_id"), principal(request))
    return send(SiteOut.model_validate(site))


@api.op(
    "PATCH",
    "/sites/{site_id}",
    summary="Change a site (admin)",
    tag="sites",
    body=SitePatch,
    response=SiteOut,
)
async def patch_site(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
        who.require_admin()
        body = await parse_body(request, SitePatch)
        for key, value in body.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(site, key, value)
        await session.commit()
    return send(SiteOut.model_validate(site))


@api.op(
    "DELETE", "/sites/{site_id}", summary="Delete a site and its endpoints (admin)", tag="sites", status=204
)
async def delete_site(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
        who.require_admin()
        await session.delete(site)
        await session.commit()
    return web.Response(status=204)


@api.op(
    "GET",
    "/endpoints",
    summary="List endpoints",
    tag="endpoints",
    response=EndpointOut,
    many=True,
    query=AccountFilter,
)
async def list_endpoints(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, AccountFilter)
    query = select(Endpoint).order_by(Endpoint.id).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(Endpoint.account_id == account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([EndpointOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/endpoints",
    summary="Create an endpoint; the SIP secret is shown only in this response (admin)",
    tag="endpoints",
    body=EndpointIn,
    response=EndpointCreated,
    status=201,
)
async def create_endpoint(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, EndpointIn)
    async with request.app[DB].writer() as session:
        site = await session.get(Site, body.site_id)
        if site is None or (who.account_id is not None and site.account_id != who.account_id):
            raise ApiError(404, "not_found", "no such site", "site_id")
        secret = sip_secret()
        endpoint = Endpoint(
            account_id=site.account_id,
            site_id=site.id,
            sip_username=body.sip_username or f"ep{site.id}x{sip_secret()[:8].lower()}",
            sip_secret=secret,
            display_name=body.display_name,
            enabled=body.enabled,
            created_at=request.app[CLOCK](),
        )
        session.add(endpoint)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise ApiError(409, "conflict", "this SIP username is taken", "sip_username") from exc
    return send(EndpointCreated.model_validate(endpoint), 201)


@api.op(
    "GET",
    "/endpoints/{endpoint_id}",
    summary="Get an endpoint (without its secret)",
    tag="endpoints",
    response=EndpointOut,
)
async def get_endpoint(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        endpoint = await owned(session, Endpoint, path_id(request, "endpoint_id"), principal(request))
    return send(EndpointOut.model_validate(endpoint))


@api.op(
    "PATCH",
    "/endpoints/{endpoint_id}",
    summary="Change an endpoint (admin)",
    tag="endpoints",
    body=EndpointPatch,
    response=EndpointOut,
)
async def patch_endpoint(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        endpoint = await owned(session, Endpoint, path_id(request, "endpoint_id"), who)
        who.require_admin()
        body = await parse_body(request, EndpointPatch)
        for key, value in body.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(endpoint, key, value)
        await session.commit()
    return send(EndpointOut.model_validate(endpoint))


@api.op(
    "DELETE", "/endpoints/{endpoint_id}", summary="Delete an endpoint (admin)", tag="endpoints", status=204
)
async def delete_endpoint(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        endpoint = await owned(session, Endpoint, path_id(request, "endpoint_id"), who)
        who.require_admin()
        await session.delete(endpoint)
        await session.commit()
    return web.Response(status=204)

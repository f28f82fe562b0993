"""Login, the current user, accounts (platform admin) and users."""

from __future__ import annotations

import math
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms import users
from rooms.errors import RoomsError
from rooms.models import Account, User
from rooms.tokens import mint_access_token
from web.api.base import (
    CLOCK,
    DB,
    SECRET_KEY,
    SETTINGS,
    THROTTLE,
    Api,
    ApiError,
    error_response,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.schemas import (
    AccountFilter,
    AccountIn,
    AccountOut,
    AccountPatch,
    ListQuery,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    UserIn,
    UserOut,
)
from web.proxies import client_address

api = Api()


@api.op(
    "POST",
    "/auth/login",
    summary="Log in; returns a bearer token",
    tag="auth",
    body=LoginIn,
    response=LoginOut,
    auth=False,
    errors=(429,),
)
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginIn)
    app = request.app
    # Behind a trusted proxy, the client's address from X-Forwarded-For (web/proxies.py).
    address = client_address(request)
    throttle = app[THROTTLE]
    wait = throttle.begin(body.email, address, app[CLOCK]())
    if wait:
        seconds = max(1, math.ceil(wait.total_seconds()))
        refused = error_response(
            429, "too_many_attempts", f"too many failed logins; try again in {seconds} s"
        )
        refused.headers["Retry-After"] = str(seconds)
        return refused
    success: bool | None = None
    try:
        user = await users.authenticate(app[DB], email=body.email, password=body.password, now=app[CLOCK]())
        success = user is not None
    finally:
        throttle.end(body.email, address, app[CLOCK](), success=success)
    if user is None:
        raise ApiError(401, "bad_credentials", "wrong e-mail or password")
    token, expires_at = mint_access_token(
        app[SECRET_KEY],
        user_id=user.id,
        account_id=user.account_id,
        role=user.role,
        now=app[CLOCK](),
        ttl=timedelta(seconds=app[SETTINGS].access_token_ttl_seconds),
    )
    return send(LoginOut(token=token, expires_at=expires_at, user=UserOut.model_validate(user)))


@api.op(
    "POST",
    "/auth/password",
    summary="Change the current user's password (required first after a one-time password)",
    tag="auth",
    body=PasswordChangeIn,
    response=UserOut,
)
async def change_password(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordChangeIn)
    try:
        user = await users.change_password(
            request.app[DB],
            principal(request).user.id,
            current=body.current_password,
            new=body.new_password,
        )
    except RoomsError as exc:
        if exc.code == "bad_credentials":
            raise ApiError(403, "bad_credentials", exc.message, exc.field) from None
        raise
    return send(UserOut.model_validate(user))


@api.op("GET", "/auth/me", summary="The current user", tag="auth", response=UserOut)
async def me(request: web.Request) -> web.Response:
    return send(UserOut.model_validate(principal(request).user))


@api.op(
    "GET",
    "/accounts",
    summary="List accounts (a user sees their own)",
    tag="accounts",
    response=AccountOut,
    many=True,
    query=ListQuery,
)
async def list_accounts(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, ListQuery)
    query = select(Account).order_by(Account.id).limit(q.limit).offset(q.offset)
    if who.account_id is not None:
        query = query.where(Account.id == who.account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([AccountOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/accounts",
    summary="Create an account (platform admin)",
    tag="accounts",
    body=AccountIn,
    response=AccountOut,
    status=201,
)
async def create_account(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    body = await parse_body(request, AccountIn)
    async with request.app[DB].writer() as session:
        account = Account(name=body.name, created_at=request.app[CLOCK]())
        session.add(account)
        await session.commit()
    return send(AccountOut.model_validate(account), 201)


async def _account(request: web.Request, session: AsyncSession) -> Account:
    who = principal(request)
    account_id = path_id(request, "account_id")
    if who.account_id is not None and who.account_id != account_id:
        raise ApiError(404, "not_found", "no such account")
    return await owned(session, Account, account_id, who)


@api.op("GET", "/accounts/{account_id}", summary="Get an account", tag="accounts", response=AccountOut)
async def get_account(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        return send(AccountOut.model_validate(await _account(request, session)))


@api.op(
    "PATCH",
    "/accounts/{account_id}",
    summary="Rename an account or set its billing details (platform admin)",
    tag="accounts",
    body=AccountPatch,
    response=AccountOut,
)
async def patch_account(request: web.Request) -> web.Response:
    async with request.app[DB].writer() as session:
        account = await _account(request, session)
        principal(request).require_platform_admin()
        body = await parse_body(request, AccountPatch)
        if body.name is not None:
            account.name = body.name
        if body.billing is not None:
            account.billing = body.billing.model_dump()
        await session.commit()
    return send(AccountOut.model_validate(account))


@api.op(
    "DELETE",
    "/accounts/{account_id}",
    summary="Delete an account and everything in it (platform admin)",
    tag="accounts",
    status=204,
)
async def delete_account(request: web.Request) -> web.Response:
    async with request.app[DB].writer() as session:
        account = await _account(request, session)
        principal(request).require_platform_admin()
        await session.delete(account)
        await session.commit()
    return web.Response(status=204)


@api.op("GET", "/users", summary="List users", tag="users", response=UserOut, many=True, query=AccountFilter)
async def list_users(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    q = parse_query(request, AccountFilter)
    query = select(User).order_by(User.id).limit(q.limit).offset(q.offset)
    if who.account_id is not None:
        query = query.where(User.account_id == who.account_id)
    elif q.account_id is not None:
        query = query.where(User.account_id == q.account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([UserOut.model_validate(r) for r in rows])


@api.op(
    "POST", "/users", summary="Create a user (admin)", tag="users", body=UserIn, response=UserOut, status=201
)
async def create_user(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, UserIn)
    account_id = who.account_id if who.account_id is not None else body.account_id
    if who.account_id is not None and body.account_id not in (None, who.account_id):
        raise ApiError(403, "forbidden", "cannot create users in another account", "account_id")
    user = await users.create_user(
        request.app[DB],
        email=body.email,
        password=body.password,
        role=body.role,
        account_id=account_id,
        now=request.app[CLOCK](),
        display_name=body.display_name,
    )
    return send(UserOut.model_validate(user), 201)


@api.op("DELETE", "/users/{user_id}", summary="Delete a user (admin)", tag="users", status=204)
async def delete_user(request: web.Request) -> web.Response:
    who = principal(request)
    user_id = path_id(request, "user_id")
    async with request.app[DB].writer() as session:
        user = await owned(session, User, user_id, who)
        who.require_admin()
        if user.id == who.user.id:
            raise ApiError(409, "conflict", "you cannot delete yourself")
        await session.delete(user)
        await session.commit()
    return web.Response(status=204)

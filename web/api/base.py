"""Shared machinery of the REST API: errors, auth, body parsing, and the operation registry for OpenAPI."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound, RoomsError
from rooms.models import Account, User
from rooms.settings import RoomsSettings
from rooms.tokens import InvalidToken, verify_access_token
from web.api.throttle import LoginThrottle

logger = logging.getLogger(__name__)

DB = web.AppKey("db", Database)
SECRET_KEY = web.AppKey("secret_key", str)
Clock = Callable[[], datetime]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SETTINGS = web.AppKey("rooms_settings", RoomsSettings)
THROTTLE = web.AppKey("login_throttle", LoginThrottle)


class LiveMeetings(Protocol):
    """What the API may ask of the meetings live in this process (the composition root provides it)."""

    async def end(self, meeting_id: int) -> bool:
        """End the meeting for everyone if it is live here and return once it has ended; False if not live."""
        ...


LIVE = web.AppKey("live_meetings", LiveMeetings)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
MAX_ID = 2**31 - 1


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    booking_id: int | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status: int, code: str, message: str, field: str | None = None, booking_id: int | None = None
) -> web.Response:
    detail: dict[str, Any] = {"code": code, "message": message, "field": field}
    if booking_id is not None:
        detail["booking_id"] = booking_id
    return web.json_response({"error": detail}, status=status)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except InvalidInput as exc:
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return error_response(422, exc.code, message, exc.field)
    except NotFound as exc:
        return error_response(404, exc.code, exc.message, exc.field)
    except Conflict as exc:
        return error_response(409, exc.code, exc.message, exc.field, exc.booking_id)
    except InvalidToken as exc:
        return error_response(401, exc.code, exc.message)
    except RoomsError as exc:
        return error_response(400, exc.code, exc.message, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error")


def _field_of(error: dict[str, Any]) -> str | None:
    return ".".join(str(p) for p in error.get("loc", ())) or None


def validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    field_name = _field_of(dict(first))
    message = first.get("msg", "invalid value")
    return ApiError(422, "invalid", f"{field_name}: {message}" if field_name else message, field_name)


async def parse_body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"request body is not JSON: {exc}", "body") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "request body must be a JSON object", "body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from exc


def path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or int(raw) > MAX_ID or int(raw) < 1:
        raise ApiError(404, "not_found", f"no such {name.removesuffix('_id')}", name)
    return int(raw)


def send(model: BaseModel | Sequence[BaseModel], status: int = 200) -> web.Response:
    if isinstance(model, BaseModel):
        body = model.model_dump_json()
    else:
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    return web.Response(body=body, status=status, content_type="application/json")


@dataclass(frozen=True)
class Principal:
    user: User

    @property
    def account_id(self) -> int | None:
        """None for a platform admin: every account."""
        return self.user.account_id

    @property
    def is_platform_admin(self) -> bool:
        return self.user.is_platform_admin

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ApiError(403, "forbidden", "this needs the admin role")

    def require_platform_admin(self) -> None:
        if not self.is_platform_admin:
            raise ApiError(403, "forbidden", "this needs a platform admin")

    def target_account(self, requested: int | None) -> int:
        """The account a new object belongs to: the caller's, or for a platform admin the requested one."""
        if self.account_id is not None:
            if requested is not None and requested != self.account_id:
                raise ApiError(403, "forbidden", "cannot create objects in another account", "account_id")
            return self.account_id
        if requested is None:
            raise ApiError(422, "invalid", "account_id: a platform admin must name the account", "account_id")
        return requested


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    app = request.app
    claims = verify_access_token(app[SECRET_KEY], token.strip(), now=app[CLOCK]())
    async with app[DB].session() as session:
        user = await session.get(User, claims.user_id)
    if user is None or user.account_id != claims.account_id or user.role != claims.role:
        raise ApiError(401, "unauthorized", "the token's user no longer exists or changed")
    return Principal(user)


# What a user with a one-time password may still call.
PASSWORD_CHANGE_PATHS = frozenset({"/auth/me", "/auth/password"})


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    many: bool
    query: type[BaseModel] | None
    auth: bool
    content_type: str
    errors: tuple[int, ...] = ()


@dataclass
class Api:
    """A module's routes, each with what OpenAPI needs to describe it."""

    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    operations: list[Operation] = field(default_factory=list)

    def op(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        many: bool = False,
        query: type[BaseModel] | None = None,
        auth: bool = True,
        content_type: str = "application/json",
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Register a handler; `errors` lists statuses beyond the common 400/401/403/404/409/422."""

        def register(handler: Handler) -> Handler:
            async def wrapped(request: web.Request) -> web.StreamResponse:
                if auth:
                    who = await authenticate(request)
                    if who.user.must_change_password and path not in PASSWORD_CHANGE_PATHS:
                        raise ApiError(
                            403,
                            "password_change_required",
                            "replace the one-time password first: POST /api/v1/auth/password",
                        )
                    request[PRINCIPAL] = who
                return await handler(request)

            self.routes.route(method, path)(wrapped)
            self.operations.append(
                Operation(
                    method,
                    path,
                    summary,
                    tag,
                    body,
                    response,
                    status,
                    many,
                    query,
                    auth,
                    content_type,
                    errors,
                )
            )
            return handler

        return register


PATH_PARAM = re.compile(r"\{([a-z_]+)(?::[^}]*)?\}")


T = TypeVar("T")


async def owned(session: AsyncSession, model: type[T], object_id: int, who: Principal) -> T:
    """The object if it exists and belongs to the caller's account (any account for a platform admin)."""
    found = await session.get(model, object_id)
    # An Account is its own account; every other object names its account in account_id.
    owner = object_id if model is Account else getattr(found, "account_id", None)
    if found is None or (who.account_id is not None and owner != who.account_id):
        raise ApiError(404, "not_found", f"no such {model.__name__.lower()}")
    return found

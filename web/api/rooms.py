"""Rooms, their calendar feed, and join tokens."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rooms import bookings as store
from rooms.ics import feed
from rooms.models import Account, Booking, Room
from rooms.numbers import meeting_number
from rooms.tokens import InvalidToken, mint_feed_token, mint_join_token, verify_feed_token
from web.api.base import (
    CLOCK,
    DB,
    SECRET_KEY,
    SETTINGS,
    Api,
    ApiError,
    Principal,
    authenticate,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.schemas import (
    AccountFilter,
    FeedKeyOut,
    FeedQuery,
    JoinTokenIn,
    JoinTokenOut,
    RoomIn,
    RoomOut,
    RoomPatch,
)

api = Api()
NUMBER_ATTEMPTS = 20


@api.op("GET", "/rooms", summary="List rooms", tag="rooms", response=RoomOut, many=True, query=AccountFilter)
async def list_rooms(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, AccountFilter)
    query = select(Room).order_by(Room.id).limit(q.limit).offset(q.offset)
    account_id = who.account_id if who.account_id is not None else q.account_id
    if account_id is not None:
        query = query.where(Room.account_id == account_id)
    async with request.app[DB].session() as session:
        rows = (await session.scalars(query)).all()
    return send([RoomOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/rooms",
    summary="Create a room with a fresh meeting number (admin)",
    tag="rooms",
    body=RoomIn,
    response=RoomOut,
    status=201,
)
async def create_room(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, RoomIn)
    account_id = who.target_account(body.account_id)
    db = request.app[DB]
    for _ in range(NUMBER_ATTEMPTS):
        async with db.writer() as session:
            room = Room(
                account_id=account_id,
                name=body.name,
                meeting_number=meeting_number(),
                passcode=body.passcode,
                capacity=body.capacity or request.app[SETTINGS].default_capacity,
                max_session_minutes=body.max_session_minutes,
                lobby=body.lobby,
                auto_record=body.auto_record,
                created_at=request.app[CLOCK](),
            )
            session.add(room)
            try:
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                if await session.get(Account, account_id) is None:
                    raise ApiError(404, "not_found", "no such account", "account_id") from exc
                continue  # a meeting number collision: draw again
            return send(RoomOut.model_validate(room), 201)
    raise ApiError(409, "conflict", "could not draw a free meeting number")


@api.op("GET", "/rooms/{room_id}", summary="Get a room", tag="rooms", response=RoomOut)
async def get_room(request: web.Request) -> web.Response:
    async with request.app[DB].session() as session:
        room = await owned(session, Room, path_id(request, "room_id"), principal(request))
    return send(RoomOut.model_validate(room))


@api.op(
    "PATCH",
    "/rooms/{room_id}",
    summary="Change a room (admin)",
    tag="rooms",
    body=RoomPatch,
    response=RoomOut,
)
async def patch_room(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        room = await owned(session, Room, path_id(request, "room_id"), who)
        who.require_admin()
        body = await parse_body(request, RoomPatch)
        for key, value in body.model_dump(exclude_unset=True).items():
            if value is not None or key in ("passcode", "max_session_minutes"):
                setattr(room, key, value)
        if room.capacity is None:
            room.capacity = request.app[SETTINGS].default_capacity
        if room.lobby is None:
            room.lobby = False
        if room.auto_record is None:
            room.auto_record = False
        await session.commit()
    return send(RoomOut.model_validate(room))


@api.op(
    "DELETE",
    "/rooms/{room_id}",
    summary="Delete a room, its bookings and meetings (admin)",
    tag="rooms",
    status=204,
)
async def delete_room(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].writer() as session:
        room = await owned(session, Room, path_id(request, "room_id"), who)
        who.require_admin()
        await session.delete(room)
        await session.commit()
    return web.Response(status=204)


FEED_KEY_TTL = timedelta(days=5 * 366)


@api.op(
    "GET",
    "/rooms/{room_id}/feed.ics",
    summary="The room's bookings as an iCalendar feed (bearer token, or ?key= from feed-key)",
    tag="rooms",
    content_type="text/calendar",
    query=FeedQuery,
    auth=False,
)
async def room_feed(request: web.Request) -> web.Response:
    app = request.app
    room_id = path_id(request, "room_id")
    key = parse_query(request, FeedQuery).key
    if key is None:
        account_id = (await authenticate(request)).account_id
    else:
        try:
            account_id = verify_feed_token(app[SECRET_KEY], key, room_id=room_id, now=app[CLOCK]())
        except InvalidToken as exc:
            raise ApiError(404, "not_found", "no such room") from exc
    async with app[DB].session() as session:
        room = await session.get(Room, room_id)
        if room is None or (account_id is not None and room.account_id != account_id):
            raise ApiError(404, "not_found", "no such room")
        query = (
            select(Booking)
            .where(Booking.room_id == room.id, Booking.cancelled_at.is_(None))
            .order_by(Booking.id)
        )
        bookings = (await session.scalars(query)).all()
    body = feed(room, bookings, now=app[CLOCK]())
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


@api.op(
    "POST",
    "/rooms/{room_id}/feed-key",
    summary="Mint a key for subscribing to the room's feed from a calendar client",
    tag="rooms",
    response=FeedKeyOut,
    status=201,
)
async def room_feed_key(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        room = await owned(session, Room, path_id(request, "room_id"), who)
    key = mint_feed_token(
        request.app[SECRET_KEY],
        room_id=room.id,
        account_id=room.account_id,
        now=request.app[CLOCK](),
        ttl=FEED_KEY_TTL,
    )
    return send(FeedKeyOut(key=key, path=f"rooms/{room.id}/feed.ics?key={key}"), 201)


async def mint(request: web.Request, who: Principal, room: Room, booking: Booking | None) -> web.Response:
    body = await parse_body(request, JoinTokenIn)
    app = request.app
    ttl = timedelta(seconds=body.ttl_seconds or app[SETTINGS].join_token_ttl_seconds)
    token, expires_at = mint_join_token(
        app[SECRET_KEY],
        room_id=room.id,
        meeting_number=room.meeting_number,
        account_id=room.account_id,
        role=body.role,
        display_name=body.display_name,
        now=app[CLOCK](),
        ttl=ttl,
        booking_id=None if booking is None else booking.id,
        user_id=who.user.id,
    )
    return send(
        JoinTokenOut(
            token=token,
            expires_at=expires_at,
            meeting_number=room.meeting_number,
            room_id=room.id,
            booking_id=None if booking is None else booking.id,
        ),
        201,
    )


@api.op(
    "POST",
    "/rooms/{room_id}/join-tokens",
    summary="Mint a signed short-lived join token for a room",
    tag="rooms",
    body=JoinTokenIn,
    response=JoinTokenOut,
    status=201,
)
async def room_join_token(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        room = await owned(session, Room, path_id(request, "room_id"), who)
    return await mint(request, who, room, None)


@api.op(
    "POST",
    "/bookings/{booking_id}/join-tokens",
    summary="Mint a signed short-lived join token for a booking",
    tag="bookings",
    body=JoinTokenIn,
    response=JoinTokenOut,
    status=201,
)
async def booking_join_token(request: web.Request) -> web.Response:
    who = principal(request)
    booking = await store.get_booking(
        request.app[DB], path_id(request, "booking_id"), account_id=who.account_id
    )
    if booking.cancelled_at is not None:
        raise ApiError(409, "booking_cancelled", "the booking is cancelled")
    async with request.app[DB].session() as session:
        room = await owned(session, Room, booking.room_id, who)
    return await mint(request, who, room, booking)

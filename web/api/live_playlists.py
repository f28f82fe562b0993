"""The playlists of live channels: pre-recorded videos in order; reorder, insert, skip, remove.

Each change is one transaction (rooms/live/video_store.py) and is then told to the channel's playout
(web.api.live_videos.VideoService.playlist_changed), which hands the new order to the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from rooms.live import video_store as store
from rooms.live.models import LiveChannel
from rooms.live.videos import LiveVideo, PlaylistItem
from web.api.base import CLOCK, DB, Api, ApiError, owned, parse_body, path_id, principal, send
from web.api.live_videos import LIVE_VIDEOS, require_editor
from web.api.schemas import Body, Id, Out

api = Api()
TAG = "live playlists"


class ItemIn(Body):
    video_id: Id
    before_item_id: Id | None = Field(default=None, description="insert before this queued item")
    next: bool = Field(default=False, description="insert as the next item to play")


class OrderIn(Body):
    item_ids: Annotated[list[Id], Field(max_length=1000)] = Field(
        description="every queued item of the playlist, in the order they are to play"
    )


class ItemOut(Out):
    id: int
    channel_id: int
    video_id: int
    video_name: str
    duration_ms: int | None
    position: int
    state: Literal["queued", "playing", "played", "skipped"]
    started_at: datetime | None
    ended_at: datetime | None


async def _items_out(request: web.Request, channel_id: int) -> list[ItemOut]:
    async with request.app[DB].session() as session:
        rows = (
            await session.execute(
                select(PlaylistItem, LiveVideo)
                .join(LiveVideo, LiveVideo.id == PlaylistItem.video_id)
                .where(PlaylistItem.channel_id == channel_id)
                .order_by(PlaylistItem.position, PlaylistItem.id)
            )
        ).all()
    return [
        ItemOut(
            id=i.id,
            channel_id=i.channel_id,
            video_id=v.id,
            video_name=v.name,
            duration_ms=v.duration_ms,
            position=i.position,
            state=i.state,
            started_at=i.started_at,
            ended_at=i.ended_at,
        )
        for i, v in rows
    ]


async def _channel(request: web.Request, *, edit: bool) -> int:
    who = principal(request)
    channel_id = path_id(request, "channel_id")
    async with request.app[DB].session() as session:
        await owned(session, LiveChannel, channel_id, who)
    if edit:
        require_editor(who)
    return channel_id


def _changed(request: web.Request, channel_id: int, *, cut: bool = False) -> None:
    service = request.app.get(LIVE_VIDEOS)
    if service is not None:
        service.playlist_changed(channel_id, cut=cut)


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/playlist",
    summary="A live channel's playlist, in order",
    tag=TAG,
    response=ItemOut,
    many=True,
)
async def get_playlist(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=False)
    return send(await _items_out(request, channel_id))


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/playlist",
    summary="Add a ready video to the playlist: at the end, before an item, or next",
    tag=TAG,
    body=ItemIn,
    response=ItemOut,
    many=True,
    status=201,
)
async def add_item(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=True)
    body = await parse_body(request, ItemIn)
    await store.add_item(
        request.app[DB], channel_id, body.video_id, before_item_id=body.before_item_id, play_next=body.next,
        now=request.app[CLOCK](),
    )  # fmt: skip
    _changed(request, channel_id)
    return send(await _items_out(request, channel_id), 201)


@api.op(
    "PUT",
    "/live/{channel_id:[0-9]+}/playlist/order",
    summary="Reorder the queued items (every queued item once, in the new order)",
    tag=TAG,
    body=OrderIn,
    response=ItemOut,
    many=True,
)
async def reorder_playlist(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=True)
    body = await parse_body(request, OrderIn)
    await store.reorder_items(request.app[DB], channel_id, body.item_ids)
    _changed(request, channel_id)
    return send(await _items_out(request, channel_id))


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/playlist/{item_id:[0-9]+}/skip",
    summary="Skip a queued item, or cut the playing one and go on with the next",
    tag=TAG,
    response=ItemOut,
    many=True,
)
async def skip_item(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=True)
    item_id = path_id(request, "item_id")
    cut = await store.skip_item(request.app[DB], channel_id, item_id, now=request.app[CLOCK]())
    _changed(request, channel_id, cut=cut)
    return send(await _items_out(request, channel_id))


@api.op(
    "DELETE",
    "/live/{channel_id:[0-9]+}/playlist/{item_id:[0-9]+}",
    summary="Remove an item from the playlist (a playing one is skipped first)",
    tag=TAG,
    status=204,
)
async def remove_item(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=True)
    await store.remove_item(request.app[DB], channel_id, path_id(request, "item_id"))
    _changed(request, channel_id)
    return web.Response(status=204)


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/playlist/play",
    summary="Put the playlist on air in the running channel, from its first queued item",
    tag=TAG,
    status=204,
)
async def play_playlist(request: web.Request) -> web.Response:
    channel_id = await _channel(request, edit=True)
    async with request.app[DB].session() as session:
        rows = await store.playlist(session, channel_id)
    if not any(r.state == "queued" for r in rows):
        raise ApiError(409, "empty", "the playlist has no queued item")
    service = request.app.get(LIVE_VIDEOS)
    if service is None or not await service.play(channel_id):
        raise ApiError(409, "not_live", "the channel is not running: start its rehearsal first")
    return web.Response(status=204)


__all__ = ["api"]

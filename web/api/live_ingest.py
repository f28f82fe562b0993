"""RTMP ingest of live channels: the ingest URL and stream key an encoder (OBS, ffmpeg) is set up with, and
rotating the key. The listener itself is the engine's (recording/live/ingest.py, wired by yunhui/live.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.live import ingest
from rooms.live.models import LiveChannel
from web.api.base import CLOCK, DB, Api, ApiError, owned, path_id, principal, send
from web.api.live import LIVE_SERVICE

api = Api()
TAG = "live"
APP_NAME = "live"  # the RTMP application of the ingest URL: rtmp://host:port/live, the key as stream name


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """The RTMP ingest settings the API needs (live.rtmp_ingest_*; the composition root sets it)."""

    port_min: int = 19350
    port_max: int = 19449
    host: str | None = None


INGEST = web.AppKey("live_ingest_config", IngestConfig)


class IngestOut(BaseModel):
    server_url: str = Field(description="the encoder's server (OBS: Server), rtmp://host:port/live")
    stream_key: str = Field(description="the encoder's stream key (a secret)")
    url: str = Field(description="server_url/stream_key in one (ffmpeg -f flv <url>)")
    port: int


def _require_editor(request: web.Request) -> None:
    if principal(request).user.role not in ("admin", "organizer"):
        raise ApiError(403, "forbidden", "this needs the admin or organizer role")


def _out(request: web.Request, channel: LiveChannel) -> IngestOut:
    if channel.source_kind != "rtmp" or not channel.ingest_key:
        raise ApiError(409, "not_rtmp", "the channel's source is not an RTMP encoder", "source_kind")
    config = request.app.get(INGEST) or IngestConfig()
    port = ingest.ingest_port(channel.id, config.port_min, config.port_max)
    host = config.host or (request.host.rsplit(":", 1)[0] if request.host else "127.0.0.1")
    server = f"rtmp://{host}:{port}/{APP_NAME}"
    return IngestOut(server_url=server, stream_key=channel.ingest_key, url=f"{server}/{channel.ingest_key}",
                     port=port)  # fmt: skip


async def _channel(request: web.Request) -> LiveChannel:
    _require_editor(request)
    async with request.app[DB].session() as session:
        return await owned(session, LiveChannel, path_id(request, "channel_id"), principal(request))


@api.op(
    "GET",
    "/live/{channel_id:[0-9]+}/ingest",
    summary="The RTMP ingest URL and stream key of an RTMP channel",
    tag=TAG,
    response=IngestOut,
)
async def get_ingest(request: web.Request) -> web.Response:
    return send(_out(request, await _channel(request)))


@api.op(
    "POST",
    "/live/{channel_id:[0-9]+}/ingest/key",
    summary="Rotate the stream key of an RTMP channel (a running listener takes the new key at once)",
    tag=TAG,
    response=IngestOut,
)
async def rotate_key(request: web.Request) -> web.Response:
    channel = await _channel(request)
    if channel.source_kind != "rtmp":
        raise ApiError(409, "not_rtmp", "the channel's source is not an RTMP encoder", "source_kind")
    updated = await ingest.rotate_key(request.app[DB], channel.id, now=request.app[CLOCK]())
    service = request.app.get(LIVE_SERVICE)
    if service is not None and updated.state in ("rehearsal", "live"):
        await service.reconfigure(updated)
    return send(_out(request, updated))


__all__ = ["INGEST", "IngestConfig", "api"]

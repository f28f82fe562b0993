"""RTMP ingest wired into live channels: the engine's source of an "rtmp" channel row, and the API's settings.

yunhui/live.py calls ``source_of(channel, settings)`` when an RTMP channel starts (and again when its key is
rotated: the listener restarts with the new key). The port is the channel's (rooms/live/ingest.py); a port
another process holds is refused with a clear 409 before the engine starts.
"""

from __future__ import annotations

import socket

from aiohttp import web

from recording.live.settings import LiveSettings
from recording.live.sources import RtmpIngestSource
from rooms.errors import Conflict
from rooms.live.ingest import ingest_port
from rooms.live.models import LiveChannel as ChannelRow
from web.api.live_ingest import APP_NAME, INGEST, IngestConfig


def source_of(channel: ChannelRow, settings: LiveSettings, *, check_port: bool = True) -> RtmpIngestSource:
    if not channel.ingest_key:
        raise Conflict("the channel has no stream key; rotate it first", code="no_key", field="source_kind")
    port = ingest_port(channel.id, settings.rtmp_ingest_port_min, settings.rtmp_ingest_port_max)
    if check_port:
        with socket.socket() as probe:
            try:
                probe.bind((settings.rtmp_ingest_bind, port))
            except OSError:
                raise Conflict(
                    f"the channel's RTMP port {port} is in use (another channel or program)",
                    code="port_in_use",
                ) from None
    return RtmpIngestSource(port, channel.ingest_key, bind=settings.rtmp_ingest_bind, app=APP_NAME)


def install(api: web.Application, settings: LiveSettings) -> None:
    api[INGEST] = IngestConfig(settings.rtmp_ingest_port_min, settings.rtmp_ingest_port_max,
                               settings.rtmp_ingest_host)  # fmt: skip

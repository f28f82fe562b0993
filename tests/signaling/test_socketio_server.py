"""Pins the python-socketio and python-engineio internals signaling/socketio_server.py relies on.

If one of these fails after an upgrade, re-read the library's dispatch (socketio.AsyncServer._handle_event,
engineio.AsyncSocket._websocket_handler) before adjusting: the real-server tests in test_signaling_ghosts.py
say what must keep holding."""

from __future__ import annotations

import inspect
from pathlib import Path

import engineio
import pytest
import socketio
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

from signaling.server import MeetingServer
from signaling.settings import SignalingSettings
from signaling.socketio_server import RESERVED_EVENTS, SocketIOServer, socketio_server
from tests.signaling.signaling_fakes import SECRET, FakeClock, FakeSfu, FakeStore


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_private_hooks_still_exist_with_the_same_shape() -> None:
    assert sorted(RESERVED_EVENTS) == ["connect", "disconnect"]
    assert _parameters(socketio.AsyncServer._handle_event) == ["self", "eio_sid", "namespace", "id", "data"]
    assert _parameters(socketio.AsyncServer._engineio_server_class) == ["self"]
    assert _parameters(socketio.AsyncManager.sid_from_eio_sid) == ["self", "eio_sid", "namespace"]
    assert _parameters(socketio.AsyncManager.is_connected) == ["self", "sid", "namespace"]
    assert _parameters(engineio_aiohttp.WebSocket.wait) == ["self"]
    assert engineio_aiohttp._async["websocket"] is engineio_aiohttp.WebSocket


def test_engineio_still_cannot_decode_an_empty_frame() -> None:
    # The reason for _DecodableFrames: this error escapes AsyncSocket._websocket_handler.
    for frame in ("", "x", "b1"):
        with pytest.raises(ValueError):
            engineio_packet.Packet(encoded_packet=frame)


def test_our_server_uses_the_checked_websocket_and_leaves_the_driver_alone() -> None:
    sio = socketio_server()
    assert isinstance(sio, SocketIOServer)
    assert isinstance(sio.eio, engineio.AsyncServer)
    checked = sio.eio._async["websocket"]
    assert checked is not engineio_aiohttp.WebSocket and issubclass(checked, engineio_aiohttp.WebSocket)
    assert engineio_aiohttp._async["websocket"] is engineio_aiohttp.WebSocket
    assert socketio.AsyncServer(async_mode="aiohttp").eio._async["websocket"] is engineio_aiohttp.WebSocket


def test_a_plain_asyncserver_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    with pytest.raises(TypeError):
        MeetingServer(
            socketio.AsyncServer(async_mode="aiohttp"),
            sfu=FakeSfu(),
            store=FakeStore(),
            settings=SignalingSettings(files_dir=tmp_path),
            secret_key=SECRET,
            clock=clock.now,
            scheduler=clock,
        )

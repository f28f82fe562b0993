"""Simulcast layers nobody watches are paused at the publishing browser, and resumed when a tile grows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import AdminApi
from tests.browser.test_browser_meeting import join, participant_id, remote_video_width
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Which of the camera's encodings (q, h, f) the browser sends.
ACTIVE = "window.yunhui.client.sender('camera')?.getParameters().encodings.map((e) => e.active) ?? []"


async def test_unwatched_layers_are_paused_at_the_publisher(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room()
    # The host's window is small: the guest's tile needs the lowest layer only.
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    await host.set_viewport_size({"width": 360, "height": 320})
    guest = await join(new_context, site, room, "Guest")
    guest_id = await participant_id(guest)
    assert await remote_video_width(host, guest_id) > 0
    assert await guest.evaluate(ACTIVE) == [True, True, True]  # every layer on at the start

    # After a few seconds the SFU tells the guest's browser to pause what nobody watches.
    await guest.wait_for_function(f"(() => {{ const a = {ACTIVE}; return a[0] && !a[2]; }})()", timeout=20000)
    small = await remote_video_width(host, guest_id)

    # The host's window grows: the guest is told at once to send its top layer again, and the host gets it.
    await host.set_viewport_size({"width": 1280, "height": 800})
    await guest.wait_for_function(f"{ACTIVE}[2] === true", timeout=20000)
    video = f'.tile[data-participant="{guest_id}"][data-source="camera"] video'
    await host.wait_for_function(f"document.querySelector('{video}').videoWidth > {small}", timeout=20000)

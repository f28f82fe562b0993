"""Hard mute and the host key through the meeting UI in real Chromium against a real server: the muted guest
sees that a host muted it and can ask to unmute, the host sees the request and allows it; a guest with the
host key becomes host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import AdminApi
from tests.browser.test_browser_meeting import join, participant_id
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_a_muted_guest_asks_to_unmute_and_the_host_allows_it(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="246800")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest")
    guest_id = await participant_id(guest)

    await host.click("#toggle-people")
    await host.click(f'.people li[data-participant="{guest_id}"] .menu button')
    await host.click('[data-action="mute"]')
    notice = await guest.wait_for_selector("#held-mic")
    assert notice is not None and "A host muted your microphone" in await notice.inner_text()
    await guest.wait_for_selector('#toggle-mic[aria-pressed="true"]')

    # Unmuting oneself does not lift a host's mute: the notice stays and the mic is muted again.
    await guest.click("#toggle-mic")
    await guest.wait_for_selector('#toggle-mic[aria-pressed="true"]')
    assert await guest.locator("#held-mic").count() == 1

    await guest.click("#ask-unmute-mic")
    await guest.wait_for_selector("#asked-mic")
    request = await host.wait_for_selector(f'[data-unmute-request="{guest_id}"]')
    assert request is not None and "Guest asks to unmute" in await request.inner_text()
    await host.click(f'[data-unmute-request="{guest_id}"] button')
    await guest.wait_for_selector("#held-mic", state="detached")
    await host.wait_for_selector(f'[data-unmute-request="{guest_id}"]', state="detached")
    await guest.wait_for_selector("text=A host allowed you to unmute")


async def test_a_guest_with_the_host_key_becomes_host(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="246811")
    assert len(room["host_key"]) == 6
    guest = await join(new_context, site, room, "Guest", locale="zh-CN")
    await guest.click("#toggle-people")
    await guest.fill("#host-key", "000000" if room["host_key"] != "000000" else "111111")
    await guest.click("#claim-host")
    await guest.wait_for_selector("text=主持人密钥错误。")
    await guest.fill("#host-key", room["host_key"])
    await guest.click("#claim-host")
    await guest.wait_for_selector("#mute-all")  # moderator controls appear
    await guest.wait_for_selector("text=你现在是主持人。")

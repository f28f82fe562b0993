"""Meetings through the UI in real Chromium against a real server: media both ways, screen share, moderator
mute, lobby, the end reason, the time-left banner and automatic reconnection."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from playwright.async_api import FilePayload, Page

from tests.browser.conftest import UNNAMED_CONTROLS, AdminApi, artifact
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# The media tests publish the camera in three simulcast layers, as the product does: the SFU forwards only
# layers that carry packets and tells the browser enough bandwidth (REMB) to start its upper layers.
# False publishes one layer (?simulcast=0).
SIMULCAST = True

# Inbound statistics of what this page receives from participant `pid` (`kind` audio or video).
INBOUND = """async ({pid, kind, source}) => {
  const c = window.yunhui.client; const pc = c.subscribePc; if (!pc) return null;
  const mids = new Set([...c.remoteTracks.values()]
    .filter((e) => e.participantId === pid && e.kind === kind && (!source || e.source === source))
    .map((e) => e.mid));
  let out = null;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === kind && mids.has(s.mid)) {
      out = { bytes: s.bytesReceived || 0, frames: s.framesDecoded || 0 };
    }
  });
  return out;
}"""

# A stand-in screen for getDisplayMedia: headless Chromium has no screen to pick.
FAKE_SCREEN = """navigator.mediaDevices.getDisplayMedia = async () => {
  const canvas = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
  const g = canvas.getContext('2d'); let n = 0;
  setInterval(() => { g.fillStyle = `hsl(${(n += 7) % 360} 60% 50%)`; g.fillRect(0, 0, 1280, 720);
    g.fillStyle = '#fff'; g.font = '64px sans-serif'; g.fillText(`slide ${n}`, 80, 360); }, 66);
  return canvas.captureStream(15);
};"""


async def join(
    new_context: Callable[..., Any],
    site: RunningServer,
    room: dict[str, Any],
    name: str,
    *,
    locale: str = "en-US",
    host_token: str | None = None,
    wait_for: str = ".meeting",
    simulcast: bool = SIMULCAST,
) -> Page:
    context = await new_context(locale=locale)
    if host_token is not None:
        await context.add_init_script(f"localStorage.setItem('yunhui.accessToken', {json.dumps(host_token)})")
    await context.add_init_script(FAKE_SCREEN)
    page: Page = await context.new_page()
    params = {"pwd": room["passcode"]} if room.get("passcode") and host_token is None else {}
    if not simulcast:
        params["simulcast"] = "0"
    await page.goto(f"{site.url}/m/{room['meeting_number']}?{urlencode(params)}")
    await page.fill("#display-name", name)
    await page.click("#join:enabled")
    await page.wait_for_selector(wait_for)
    return page


async def participant_id(page: Page) -> str:
    value: str = await page.evaluate("window.yunhui.client.self.id")
    return value


async def inbound(page: Page, pid: str, kind: str, source: str | None = None) -> dict[str, int] | None:
    result: dict[str, int] | None = await page.evaluate(INBOUND, {"pid": pid, "kind": kind, "source": source})
    return result


async def wait_rising(page: Page, pid: str, kind: str, field: str, source: str | None = None) -> int:
    """Wait until `field` of what `page` receives from `pid` is above zero and rising; returns its value."""
    previous = -1
    for _ in range(60):
        stats = await inbound(page, pid, kind, source)
        value = stats[field] if stats else 0
        if value > 0 and previous > 0 and value > previous:
            return value
        previous = value
        await asyncio.sleep(0.5)
    raise AssertionError(f"{kind} {field} from {pid} is not rising (last {previous})")


async def remote_video_width(page: Page, pid: str, source: str = "camera") -> int:
    selector = f'.tile[data-participant="{pid}"][data-source="{source}"] video'
    await page.wait_for_function(f"document.querySelector('{selector}')?.videoWidth > 0", timeout=20000)
    width: int = await page.eval_on_selector(selector, "v => v.videoWidth")
    return width


async def test_two_browsers_see_and_hear_each_other(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(name="董事会议室", passcode="246810")
    host = await join(new_context, site, room, "Alice", host_token=admin.token)
    guest = await join(new_context, site, room, "王小明", locale="zh-CN")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    # The passcode guest joined with its browser's device id (a removal sticks to it).
    device = await guest.evaluate("localStorage.getItem('yunhui.deviceId')")
    assert device and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", device)
    for page, other in ((host, guest_id), (guest, host_id)):
        assert await remote_video_width(page, other) > 0
        await wait_rising(page, other, "video", "frames")
        await wait_rising(page, other, "audio", "bytes")
    # Each side lists both people, with the host's role shown.
    # The SFU is told how large each remote video is shown (it picks the simulcast layer from it).
    sizes = await host.evaluate("[...window.yunhui.client._sentSizes.entries()]")
    assert [track for track, size in sizes if track.startswith(guest_id) and size != "0x0"]
    await guest.click("#toggle-people")
    assert await guest.evaluate(UNNAMED_CONTROLS) == []
    people = await guest.inner_text(".people")
    assert "Alice" in people and "主持人" in people and "王小明" in people
    await guest.click("#toggle-people")
    await host.wait_for_selector("#quality")
    await guest.wait_for_selector("#quality")
    await guest.screenshot(path=artifact("meeting-zh-CN.png"))
    await host.screenshot(path=artifact("meeting-en.png"))


async def test_camera_is_published_in_three_simulcast_layers(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room()
    host = await join(new_context, site, room, "Host", host_token=admin.token, simulcast=True)
    await host.wait_for_function("window.yunhui.client.publishPc?.connectionState === 'connected'")
    offer = await host.evaluate("window.yunhui.client.publishPc.localDescription.sdp")
    answer = await host.evaluate("window.yunhui.client.publishPc.remoteDescription.sdp")
    assert "a=simulcast:send q;h;f" in offer
    assert "a=simulcast:recv q;h;f" in answer
    rids = await host.evaluate(
        "window.yunhui.client.publishPc.getSenders()"
        ".map((s) => s.getParameters().encodings.map((e) => e.rid))"
    )
    assert ["q", "h", "f"] in rids


async def test_screen_share_chat_files_hand_and_moderator_mute(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="135700")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    await wait_rising(host, guest_id, "audio", "bytes")

    # A screen share from the guest is shown large on the host's side.
    await guest.click("#toggle-screen")
    assert await remote_video_width(host, guest_id, "screen") in (640, 1280)
    # Two simulcast layers (the SDK's SCREEN_LAYERS): the large stage gets the full one once it is sent.
    selector = f'.tile[data-participant="{guest_id}"][data-source="screen"] video'
    await host.wait_for_function(f"document.querySelector('{selector}')?.videoWidth === 1280", timeout=20000)
    await host.wait_for_selector(f'.stage .tile.screen[data-participant="{guest_id}"]')
    await wait_rising(host, guest_id, "video", "frames", "screen")

    # Public chat reaches the other side; a private message shows as private.
    await guest.click("#toggle-chat")
    await guest.fill("#chat-text", "hello from the guest")
    await guest.press("#chat-text", "Enter")
    await host.click("#toggle-chat")
    await host.wait_for_selector(".messages >> text=hello from the guest")
    await host.select_option("#chat-to", guest_id)
    await host.fill("#chat-text", "just for you")
    await host.press("#chat-text", "Enter")
    await guest.wait_for_selector(".messages li.private >> text=just for you")

    # A shared file is announced in the chat with a link only participants can use.
    upload = FilePayload(name="notes.txt", mimeType="text/plain", buffer="会议纪要 minutes".encode())
    await guest.set_input_files(".upload input[type=file]", files=[upload])
    link = await host.wait_for_selector(".messages .file a >> text=notes.txt")
    assert link is not None
    href = await link.get_attribute("href")
    assert await host.evaluate("(url) => fetch(url).then((r) => r.text())", href) == "会议纪要 minutes"

    # A raised hand and a reaction reach the host.
    await guest.click("#toggle-hand")
    await host.click("#toggle-people")
    await host.wait_for_selector(f'.people li[data-participant="{guest_id}"] [aria-label="Hand raised"]')
    await host.click("#toggle-people")
    await guest.click("#toggle-reactions")
    await guest.click('[data-reaction="clap"]')
    await host.wait_for_selector(".floating-reaction >> text=Guest")

    # Once the share stops, the grid returns; speaker view puts the other participant on the stage.
    await guest.click("#toggle-screen")
    await host.wait_for_selector(".tile.screen", state="detached")
    assert await host.locator(".layout.grid").count() == 1
    await host.click("text=Speaker view")
    await host.wait_for_selector(f'.stage .tile[data-participant="{guest_id}"][data-source="camera"]')
    await host.click("text=Grid view")

    # The host mutes the guest: the guest's UI shows it and the host stops receiving the guest's audio.
    await host.click("#toggle-people")
    await host.click(f'.people li[data-participant="{guest_id}"] .menu button')
    await host.click('[data-action="mute"]')
    await guest.wait_for_selector('#toggle-mic[aria-pressed="true"]')
    assert await guest.get_attribute("#toggle-mic", "aria-label") == "Unmute"
    await host.wait_for_selector(f'.people li[data-participant="{guest_id}"] [aria-label="Muted"]')
    await asyncio.sleep(1.0)  # packets already in flight when forwarding stopped
    before = await inbound(host, guest_id, "audio")
    await asyncio.sleep(2.0)
    after = await inbound(host, guest_id, "audio")
    assert before is not None and after is not None
    assert after["bytes"] == before["bytes"]

    # Removing the guest ends the meeting for the guest only, with the reason shown.
    await host.click(f'.people li[data-participant="{guest_id}"] .menu button')
    await host.click('[data-action="remove"]')
    await guest.wait_for_selector('#ended-reason[data-reason="removed"]')
    assert await guest.inner_text("#ended-reason") == "A moderator removed you from the meeting."
    await host.wait_for_selector(f'.people li[data-participant="{guest_id}"]', state="detached")
    assert host_id != guest_id


async def test_lobby_admit_then_host_ends_the_meeting_with_a_reason(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="864200", lobby=True)
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Visitor", locale="zh-CN", wait_for="#lobby-title")
    assert "等待主持人" in await guest.inner_text("#lobby-title")
    await host.wait_for_selector(".banner >> text=1 waiting in the lobby")
    await host.click("#toggle-people")
    await host.click('button[aria-label="Admit Visitor"]')
    await guest.wait_for_selector(".meeting")
    await host.wait_for_selector(".people >> text=Visitor")

    # Lock: everyone sees it. Make co-host: the visitor gets the moderator controls.
    await host.click("#lock")
    await guest.wait_for_selector(".pill >> text=已锁定")
    visitor_id = await participant_id(guest)
    await host.click(f'.people li[data-participant="{visitor_id}"] .menu button')
    await host.click('[data-action="make_cohost"]')
    await guest.wait_for_selector("#end-meeting")
    await guest.click("#toggle-people")
    await guest.wait_for_selector("#mute-all")

    host.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await host.click("#end-meeting")
    await guest.wait_for_selector('#ended-reason[data-reason="host_ended"]')
    assert await guest.inner_text("#ended-reason") == "主持人已结束会议。"
    await host.wait_for_selector('#ended-reason[data-reason="host_ended"]')


async def test_time_left_banner_after_the_first_warning(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    # The site warns 59 s before the end (browser_settings): a one-minute room warns a second after it starts.
    room = await admin.room(max_session_minutes=1)
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    banner = await host.wait_for_selector("#time-left", timeout=10000)
    assert banner is not None
    text = await banner.inner_text()
    assert "The meeting ends in" in text


async def test_media_reconnecting_banner_while_the_sdk_replaces_a_connection(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    # The SDK's "media" events (its recovery of a failed PeerConnection) drive a banner, not an overlay:
    # chat and the people list stay usable while audio and video come back.
    room = await admin.room()
    host = await join(new_context, site, room, "Host", host_token=admin.token, locale="zh-CN")
    emit = "([pc, state]) => window.yunhui.client._emit('media', { pc, state })"
    await host.evaluate(emit, ["subscribe", "reconnecting"])
    banner = await host.wait_for_selector("#media-reconnecting")
    assert banner is not None and "正在重新连接" in await banner.inner_text()
    await host.evaluate(emit, ["publish", "reconnecting"])
    await host.evaluate(emit, ["subscribe", "connected"])
    assert await host.locator("#media-reconnecting").count() == 1  # the publish side is still recovering
    await host.evaluate(emit, ["publish", "connected"])
    await host.wait_for_selector("#media-reconnecting", state="detached")


def socketio_server(app: web.Application) -> Any:
    """The python-socketio server attached to the app (found through its Engine.IO route)."""
    for resource in app.router.resources():
        if resource.canonical.startswith("/socket.io"):
            for route in resource:
                engine = getattr(route.handler, "__self__", None)
                connect = getattr(engine, "handlers", {}).get("connect")
                if connect is not None:
                    return connect.__self__
    raise AssertionError("no Socket.IO server in the app")


async def test_reconnects_automatically_after_the_server_drops_the_socket(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="975310")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    await wait_rising(guest, host_id, "video", "frames")
    await guest.evaluate(
        "window.__states = [];"
        "window.yunhui.client.addEventListener('state', (e) => window.__states.push(e.detail))"
    )
    sid = await guest.evaluate("window.yunhui.client._socket.id")
    await socketio_server(site.app).disconnect(sid)

    await guest.wait_for_function(
        "window.__states.includes('reconnecting') && window.yunhui.client.state === 'joined'"
    )
    assert await participant_id(guest) == guest_id  # the same seat, not a new participant
    assert await guest.locator("#reconnecting").count() == 0
    # Media are renegotiated in both directions.
    await wait_rising(guest, host_id, "video", "frames")
    await wait_rising(host, guest_id, "video", "frames")
    assert await host.locator(".people, .tile").filter(has_text="Guest").count() == 1


async def test_passcode_is_asked_for_when_the_room_needs_one(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="55667788")
    page = await (await new_context()).new_page()
    await page.goto(f"{site.url}/m/{room['meeting_number']}?simulcast=0")
    # The page knows beforehand that the room needs one (issue #22): the field is there before any attempt.
    assert await page.locator("#passcode").count() == 1
    await page.fill("#display-name", "Guest")
    await page.fill("#passcode", "11223344")
    await page.click("#join:enabled")
    alert = await page.wait_for_selector("[role=alert]")
    assert alert is not None
    assert "passcode" in await alert.inner_text()
    await page.fill("#passcode", "55667788")
    await page.click("#join:enabled")
    await page.wait_for_selector(".meeting")


async def test_recording_indicator_follows_the_recorder(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    from datetime import UTC, datetime, timedelta

    import socketio

    from rooms.tokens import mint_join_token
    from tests.conftest import SECRET_KEY

    room = await admin.room()
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    assert await host.query_selector("#recording-indicator") is None
    token, _ = mint_join_token(
        SECRET_KEY,
        room_id=room["id"],
        meeting_number=room["meeting_number"],
        account_id=room["account_id"],
        role="recorder",
        display_name="Recorder",
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )
    recorder = socketio.AsyncClient(reconnection=False)
    joined = asyncio.get_running_loop().create_future()
    recorder.on("joined", joined.set_result)
    await recorder.connect(site.url, auth={"token": token}, transports=["websocket"])
    try:
        await asyncio.wait_for(joined, 10)
        indicator = await host.wait_for_selector("#recording-indicator", timeout=10000)
        assert indicator is not None and "Recording" in await indicator.inner_text()
        await recorder.emit("leave")  # gone at once, not after the reconnect grace
        await host.wait_for_selector("#recording-indicator", state="detached", timeout=10000)
    finally:
        await recorder.disconnect()

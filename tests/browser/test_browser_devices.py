"""Devices in a meeting, in real Chromium against a real server: turning the camera off releases it and
turning it on reopens it, a camera that cannot be reopened stays off with a message, and switching the
microphone or the camera swaps the sent track without renegotiating or leaving the meeting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import UNNAMED_CONTROLS, AdminApi, artifact
from tests.browser.test_browser_meeting import INBOUND, inbound, join, participant_id, wait_rising
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CLIENT = "window.yunhui.client"
# The track the camera sender sends right now (null while the camera is off).
CAMERA_SENT = f"{CLIENT}.sender('camera')?.track"
PUBLISH_SDP = f"{CLIENT}.publishPc.localDescription.sdp"


async def wait_video_frames_above(page: Page, pid: str, frames: int) -> None:
    """Wait until `page` has decoded more than `frames` frames of `pid`'s camera."""
    await page.wait_for_function(
        f"""async (n) => {{
          const stats = await ({INBOUND})({{ pid: {json.dumps(pid)}, kind: 'video', source: 'camera' }});
          return stats !== null && stats.frames > n;
        }}""",
        arg=frames,
        timeout=20000,
    )


async def camera_muted_seen_by(page: Page, pid: str, muted: bool) -> None:
    """Wait until `page` shows `pid`'s camera as off (or on): the server relayed the media state."""
    check = "" if muted else "!"
    await page.wait_for_function(
        f"{check}{CLIENT}.participants.get({json.dumps(pid)})?.muted.includes('camera')", timeout=10000
    )


async def test_camera_off_releases_the_camera_and_on_reopens_it(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="432100")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest")
    guest_id = await participant_id(guest)
    await wait_rising(host, guest_id, "video", "frames")
    await guest.wait_for_function(f"{CLIENT}.publishPc?.connectionState === 'connected'")
    first = await guest.evaluate(f"(window.__first = {CAMERA_SENT}).id")
    sdp = await guest.evaluate(PUBLISH_SDP)

    # Off: the capture stops (the camera light goes off) and nothing is sent, without a renegotiation.
    await guest.click("#toggle-camera")
    await guest.wait_for_function(
        f"window.__first.readyState === 'ended' && {CLIENT}.local.camera === null"
        f" && {CLIENT}.sender('camera') !== null && {CAMERA_SENT} === null"
    )
    assert await guest.get_attribute("#toggle-camera", "aria-pressed") == "true"
    await camera_muted_seen_by(host, guest_id, True)
    await host.wait_for_selector(f'.tile[data-participant="{guest_id}"][data-source="camera"] .avatar')
    assert await guest.evaluate(PUBLISH_SDP) == sdp
    stats = await inbound(host, guest_id, "video", "camera")
    assert stats is not None
    frames_while_off = stats["frames"]

    # On: a new live track from the same device, in the same simulcast layers; the host sees video again.
    await guest.click("#toggle-camera")
    await guest.wait_for_function(
        f"(t => t !== null && t !== undefined && t.readyState === 'live' && t.id !== {json.dumps(first)})"
        f"({CAMERA_SENT})"
    )
    assert await guest.evaluate(f"{CAMERA_SENT} === {CLIENT}.local.camera")
    assert await guest.evaluate(
        f"{CAMERA_SENT}.getSettings().deviceId === window.__first.getSettings().deviceId"
    )
    rids = await guest.evaluate(f"{CLIENT}.sender('camera').getParameters().encodings.map((e) => e.rid)")
    assert rids == ["q", "h", "f"]
    assert await guest.evaluate(PUBLISH_SDP) == sdp
    await camera_muted_seen_by(host, guest_id, False)
    await host.wait_for_selector(f'.tile[data-participant="{guest_id}"][data-source="camera"] video')
    await wait_video_frames_above(host, guest_id, frames_while_off + 10)

    # A camera that cannot be reopened (permission revoked) stays off and says why, in the guest's language.
    await guest.click("#toggle-camera")
    await camera_muted_seen_by(host, guest_id, True)
    await guest.evaluate(
        "() => { navigator.mediaDevices.getUserMedia ="
        " () => Promise.reject(new DOMException('revoked', 'NotAllowedError')); }"
    )
    await guest.click("#toggle-camera")
    notice = await guest.wait_for_selector(".banner >> text=Camera access was denied")
    assert notice is not None
    assert await guest.evaluate(f"{CLIENT}.muted.camera && {CLIENT}.local.camera === null")
    assert await guest.get_attribute("#toggle-camera", "aria-pressed") == "true"
    assert await host.evaluate(f"{CLIENT}.participants.get({json.dumps(guest_id)}).muted.includes('camera')")


async def test_switching_devices_keeps_the_meeting_and_the_media_going(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="876500")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest", locale="zh-CN")
    guest_id = await participant_id(guest)
    await wait_rising(host, guest_id, "video", "frames")
    await guest.wait_for_function(f"{CLIENT}.publishPc?.connectionState === 'connected'")
    sdp = await guest.evaluate(PUBLISH_SDP)
    old_mic = await guest.evaluate(f"(window.__mic = {CLIENT}.sender('mic').track).getSettings().deviceId")
    old_camera = await guest.evaluate(f"(window.__camera = {CAMERA_SENT}).id")

    await guest.click("#toggle-devices")
    await guest.wait_for_selector("#device-camera option", state="attached")
    assert await guest.evaluate(UNNAMED_CONTROLS) == []
    assert "音视频设置" in await guest.inner_text(".panel.devices")
    await guest.screenshot(path=artifact("meeting-devices-zh-CN.png"))

    # The microphone moves to another (fake) device: a new track from it is sent, the old one is stopped.
    mics = await guest.eval_on_selector_all("#device-mic option", "(os) => os.map((o) => o.value)")
    other_mic = next(m for m in mics if m and m != old_mic)
    await guest.select_option("#device-mic", other_mic)
    await guest.wait_for_function(
        f"(t => t?.readyState === 'live' && t.getSettings().deviceId === {json.dumps(other_mic)})"
        f"({CLIENT}.sender('mic').track) && window.__mic.readyState === 'ended'"
    )
    stats = await inbound(host, guest_id, "audio")
    assert stats is not None
    await host.wait_for_function(
        f"""async (n) => {{
          const stats = await ({INBOUND})({{ pid: {json.dumps(guest_id)}, kind: 'audio', source: 'mic' }});
          return stats !== null && stats.bytes > n;
        }}""",
        arg=stats["bytes"],
        timeout=20000,
    )

    # Chromium has one fake camera: choosing it again still reopens it as a new track.
    cameras = await guest.eval_on_selector_all("#device-camera option", "(os) => os.map((o) => o.value)")
    stats = await inbound(host, guest_id, "video", "camera")
    assert stats is not None
    await guest.select_option("#device-camera", cameras[-1])
    await guest.wait_for_function(
        f"(t => t?.readyState === 'live' && t.id !== {json.dumps(old_camera)})({CAMERA_SENT})"
        " && window.__camera.readyState === 'ended'"
    )
    await wait_video_frames_above(host, guest_id, stats["frames"] + 10)

    # No renegotiation, still the same participant; a muted camera then reopens the chosen device.
    assert await guest.evaluate(PUBLISH_SDP) == sdp
    assert await participant_id(guest) == guest_id
    assert await guest.evaluate(f"{CLIENT}.state") == "joined"
    await guest.click("#toggle-camera")
    await guest.wait_for_selector(".panel.devices >> text=摄像头已关闭")
    await guest.click("#toggle-camera")
    await guest.wait_for_function(
        f"{CAMERA_SENT}?.readyState === 'live'"
        f" && {CAMERA_SENT}.getSettings().deviceId === {json.dumps(cameras[-1])}"
    )
    saved = await guest.evaluate("JSON.parse(localStorage.getItem('yunhui.devices'))")
    assert saved["mic"] == other_mic and saved["camera"] == cameras[-1]


async def test_joining_with_the_camera_off_publishes_it_without_capturing(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room()
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await (await new_context()).new_page()
    await guest.goto(f"{site.url}/m/{room['meeting_number']}")
    await guest.fill("#display-name", "Guest")
    await guest.wait_for_selector("#join:enabled")  # the pre-join camera is open
    await guest.click('.preview button[aria-label="Stop video"]')
    await guest.click("#join:enabled")
    await guest.wait_for_selector(".meeting")
    guest_id = await participant_id(guest)

    # The camera's m-section is negotiated with nothing to send: turning the camera on needs no new offer.
    await guest.wait_for_function(f"{CLIENT}.publishPc?.connectionState === 'connected'")
    assert await guest.evaluate(f"{CLIENT}.sender('camera') !== null && {CAMERA_SENT} === null")
    assert await guest.evaluate(f"{CLIENT}.local.camera === null")
    await camera_muted_seen_by(host, guest_id, True)
    sdp = await guest.evaluate(PUBLISH_SDP)
    await guest.click("#toggle-camera")
    await guest.wait_for_function(f"{CAMERA_SENT}?.readyState === 'live'")
    await camera_muted_seen_by(host, guest_id, False)
    await wait_video_frames_above(host, guest_id, 10)
    assert await guest.evaluate(PUBLISH_SDP) == sdp


async def test_a_device_that_goes_away_turns_its_source_off_and_says_so(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="864200")
    host = await join(new_context, site, room, "Host", host_token=admin.token)
    guest = await join(new_context, site, room, "Guest")
    guest_id = await participant_id(guest)
    await wait_rising(host, guest_id, "video", "frames")
    # An unplugged camera ends its track ("ended" fires only for the device side, not for our own stop()).
    await guest.evaluate(f"(window.__lost = {CLIENT}.local.camera).dispatchEvent(new Event('ended'))")
    await guest.wait_for_selector(".banner >> text=The camera was disconnected")
    await camera_muted_seen_by(host, guest_id, True)
    assert await guest.evaluate(f"{CLIENT}.local.camera === null && window.__lost.readyState === 'ended'")
    # The same for the microphone: muted, and the others are told.
    await guest.evaluate(f"{CLIENT}.local.mic.dispatchEvent(new Event('ended'))")
    await guest.wait_for_selector(".banner >> text=The microphone was disconnected")
    await host.wait_for_function(
        f"{CLIENT}.participants.get({json.dumps(guest_id)})?.muted.includes('mic')", timeout=10000
    )
    assert await guest.evaluate(f"{CLIENT}.muted.mic")

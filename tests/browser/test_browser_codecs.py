"""VP9 and AV1 through the SFU from real Chromium: a browser that prefers them publishes them, and the other
participant receives and decodes the same codec (the SFU forwards without a codec of its own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Page

from tests.browser.conftest import AdminApi
from tests.browser.test_browser_meeting import participant_id, remote_video_width, wait_rising
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Put `mime` first in every video transceiver's codec preferences, as an application preferring it would
# (VP9 profile 0 before profile 2). Runs before the page's own scripts.
PREFER_CODEC = """(mime) => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (trackOrKind, init) {
    const transceiver = add.call(this, trackOrKind, init);
    const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
    if (kind === 'video') {
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      const wanted = (c) => c.mimeType === mime && !(c.sdpFmtpLine || '').includes('profile-id=2');
      transceiver.setCodecPreferences([...codecs.filter(wanted), ...codecs.filter((c) => !wanted(c))]);
    }
    return transceiver;
  };
}"""

# The codec of what this page receives as video from participant `pid`.
INBOUND_CODEC = """async (pid) => {
  const c = window.yunhui.client; const pc = c.subscribePc; if (!pc) return null;
  const mids = new Set([...c.remoteTracks.values()]
    .filter((e) => e.participantId === pid && e.kind === 'video').map((e) => e.mid));
  const stats = await pc.getStats(); let codecId = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && mids.has(s.mid)) codecId = s.codecId;
  });
  return codecId && stats.get(codecId) ? stats.get(codecId).mimeType : null;
}"""


async def join_preferring(
    new_context: Callable[..., Any], site: RunningServer, room: dict[str, Any], name: str, mime: str
) -> Page:
    context = await new_context()
    await context.add_init_script(f"({PREFER_CODEC})({json.dumps(mime)})")
    page: Page = await context.new_page()
    # One layer: the point is the codec (simulcast is covered with VP8 in test_browser_meeting.py).
    query = urlencode({"pwd": room["passcode"], "simulcast": "0"})
    await page.goto(f"{site.url}/m/{room['meeting_number']}?{query}")
    await page.fill("#display-name", name)
    await page.click("#join:enabled")
    await page.wait_for_selector(".meeting")
    return page


@pytest.mark.parametrize("mime", ["video/VP9", "video/AV1"])
async def test_a_browser_preferring_the_codec_is_forwarded_in_it(
    mime: str, new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="135790")
    sender = await join_preferring(new_context, site, room, "Sender", mime)
    viewer = await join_preferring(new_context, site, room, "Viewer", mime)
    sender_id = await participant_id(sender)
    await sender.wait_for_function("window.yunhui.client.publishPc?.connectionState === 'connected'")
    answer: str = await sender.evaluate("window.yunhui.client.publishPc.remoteDescription.sdp")
    video = answer[answer.index("m=video") :]
    first_pt = video.split("\r\n", 1)[0].split()[3]
    assert f"a=rtpmap:{first_pt} {mime.split('/')[1]}/90000" in video  # the SFU accepted the codec first
    assert await remote_video_width(viewer, sender_id) > 0
    await wait_rising(viewer, sender_id, "video", "frames")
    assert await viewer.evaluate(INBOUND_CODEC, sender_id) == mime

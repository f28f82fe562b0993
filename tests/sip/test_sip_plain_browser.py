"""The SDK's H.264 preference in real Chromium: the camera's offer lists H.264 Constrained Baseline in
packetization-mode 1 first (what SIP terminals decode); the SFU answers with the first codec it takes (the
aiortc publishers of test_sip_plain.py show that half)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import admin, browser_settings, chromium, new_context, site
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
__all__ = ["admin", "browser_settings", "chromium", "new_context", "site"]  # the browser fixtures, used here

# The first video codec of an offer made by the SDK's Publisher logic: with preferH264, and without.
OFFER = r"""async (prefer) => {
  const { preferH264 } = await import("/static/sdk/media.js");
  const pc = new RTCPeerConnection();
  const transceiver = pc.addTransceiver("video", { direction: "sendonly" });
  const applied = prefer ? preferH264(transceiver) : false;
  const offer = await pc.createOffer();
  pc.close();
  const video = offer.sdp.slice(offer.sdp.indexOf("m=video"));
  const pt = video.split("\r\n", 1)[0].split(" ")[3];
  const line = (prefix) => (video.split("\r\n").find((l) => l.startsWith(prefix)) || "");
  return { applied, rtpmap: line(`a=rtpmap:${pt} `), fmtp: line(`a=fmtp:${pt} `) };
}"""


async def test_prefer_h264_puts_constrained_baseline_mode_1_first(
    new_context: Callable[..., Any], site: RunningServer
) -> None:
    page: Page = await (await new_context()).new_page()
    await page.goto(f"{site.url}/")
    default = await page.evaluate(OFFER, False)
    assert "H264" not in default["rtpmap"]  # Chromium's own order starts with VP8
    preferred = await page.evaluate(OFFER, True)
    assert preferred["applied"] is True
    assert preferred["rtpmap"].endswith(" H264/90000")
    assert "packetization-mode=1" in preferred["fmtp"] and "profile-level-id=42e01f" in preferred["fmtp"]

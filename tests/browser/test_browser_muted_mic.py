"""A muted microphone sends nothing at all: the SDK swaps its sender's track out (no renegotiation), so the
browser stops sending packets, and the other side receives none until it is unmuted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import AdminApi
from tests.browser.test_browser_meeting import inbound, join, participant_id, wait_rising
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

OUTBOUND_AUDIO = """async () => {
  const pc = window.yunhui.client.publishPc; let sent = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') sent += s.packetsSent;
  });
  return sent;
}"""


async def _still(read: Callable[[], Any]) -> int:
    """Wait until ``read()`` stops changing over a second (bounded); returns the value it settled at."""
    previous = await read()
    for _ in range(15):
        await asyncio.sleep(1.0)
        value = await read()
        if value == previous:
            return int(value)
        previous = value
    raise AssertionError(f"still changing: {previous}")


async def test_a_muted_microphone_sends_no_packets(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="112233")
    ann = await join(new_context, site, room, "Ann", simulcast=False)
    bob = await join(new_context, site, room, "Bob", simulcast=False)
    ann_id = await participant_id(ann)
    await wait_rising(bob, ann_id, "audio", "bytes")
    renegotiations = await ann.evaluate("window.yunhui.client.publishPc.localDescription.sdp")

    async def sent(page: Page = ann) -> int:
        value: int = await page.evaluate(OUTBOUND_AUDIO)
        return value

    async def received() -> int:
        stats = await inbound(bob, ann_id, "audio")
        return stats["bytes"] if stats else 0

    await ann.click("#toggle-mic")
    stopped_at = await _still(sent)
    await _still(received)
    # Muting swapped the track out: the same offer, no new negotiation.
    assert await ann.evaluate("window.yunhui.client.publishPc.localDescription.sdp") == renegotiations
    await asyncio.sleep(1.0)
    assert await sent() == stopped_at

    await ann.click("#toggle-mic")
    await wait_rising(bob, ann_id, "audio", "bytes")
    assert await sent() > stopped_at


# A silent microphone: an oscillator through a gain of 0 gives a track of continuous zero samples (Chromium's
# fake microphone is never silent enough for DTX, and a WebAudio track with no source sends no frames at all).
SILENT_MIC = """async () => {
  const ctx = new AudioContext(); const dest = ctx.createMediaStreamDestination();
  const osc = ctx.createOscillator(); const gain = ctx.createGain(); gain.gain.value = 0;
  osc.connect(gain).connect(dest); osc.start();
  const sender = window.yunhui.client.publishPc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  await sender.replaceTrack(dest.stream.getAudioTracks()[0]);
}"""


async def test_opus_dtx_is_negotiated_and_silence_costs_few_packets(
    new_context: Callable[..., Any], site: RunningServer, admin: AdminApi
) -> None:
    room = await admin.room(passcode="112233")
    ann = await join(new_context, site, room, "Ann", simulcast=False)
    answer: str = await ann.evaluate("window.yunhui.client.publishPc.remoteDescription.sdp")
    (opus,) = [line for line in answer.splitlines() if line.startswith("a=fmtp:") and "useinbandfec" in line]
    assert "usedtx=1" in opus
    await ann.evaluate(SILENT_MIC)
    await asyncio.sleep(1.0)  # the encoder's hangover before DTX starts
    first = await ann.evaluate(OUTBOUND_AUDIO)
    await asyncio.sleep(3.0)
    rate = (await ann.evaluate(OUTBOUND_AUDIO) - first) / 3.0
    # Without DTX a silent microphone is 50 packets a second (measured here: 50.3); with it, measured 2.5-8.
    assert rate < 15, rate

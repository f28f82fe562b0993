"""A Chromium participant and a room terminal (Debian's baresip) in one meeting see and hear each other.

The whole app runs with the SIP gateway on (UDP on an ephemeral port); Chromium joins through the meeting
page (fake camera and microphone, H.264 preferred because the gateway runs) and baresip registers and dials
``meeting.passcode@`` with an H.264 test pattern and a 440 Hz tone. Chromium's getStats shows the terminal's
video decoded and its audio arriving; baresip decodes the browser's video at its frame rate,
and its recording holds the browser's audio (Chromium's fake microphone beeps) in the mix.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Page

from sfu.plain_transcode import transcodes
from signaling.sip.server import SipServer
from tests.browser.conftest import chromium, new_context, site
from tests.conftest import RunningServer
from tests.sip.baresip_support import MODULES, Account, Baresip, make_clip, peak_frequency, read_wav
from tests.sip.conftest import Seed, seed
from web.keys import DATABASE
from yunhui.settings import Settings, load_settings
from yunhui.sip import SIP_GATEWAY, SIP_SERVER

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]
__all__ = ["chromium", "new_context", "site"]  # the browser fixtures, used here
PASSCODE = "4321"

# What this page receives from participant `pid`: bytes, decoded frames and audio level per kind.
INBOUND = """async (pid) => {
  const c = window.yunhui.client; const pc = c.subscribePc; if (!pc) return null;
  const mids = new Map([...c.remoteTracks.values()]
    .filter((e) => e.participantId === pid).map((e) => [e.mid, e.kind]));
  const out = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && mids.has(s.mid)) {
      out[s.kind] = { bytes: s.bytesReceived || 0, frames: s.framesDecoded || 0,
        level: s.audioLevel || 0, codecId: s.codecId || '' };
    }
  });
  for (const s of Object.values(out)) {
    const codec = s.codecId && (await pc.getStats()).get(s.codecId);
    s.mime = codec ? codec.mimeType : '';
  }
  return out;
}"""
# The other participants of the meeting as the page knows them (the terminal, by its tracks).
# baresip's status line: "... video=<rx>/<tx> (bit/s) efps=<sent>/<decoded>" frames per second.
RX_FPS = re.compile(r"efps=[0-9.]+/([0-9.]+)")
REMOTE_PARTICIPANTS = """() => [...new Set([...window.yunhui.client.remoteTracks.values()]
  .map((e) => e.participantId))]"""


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    """tests/browser/conftest.py's settings with the SIP gateway listening on an ephemeral UDP port."""
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "signaling": {"files_dir": str(tmp_path / "files")},
            "sip": {
                "enabled": True,
                "host": "127.0.0.1",
                "udp_port": 0,
                "tcp_port": None,
                "tls_port": None,
                "calls": {"ivr_languages": ["en"]},
            },
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def seeded(site: RunningServer) -> Seed:
    """An account with a site, its endpoint (baresip's credentials) and a room with a passcode."""
    return await seed(site.app[DATABASE], passcode=PASSCODE)


@pytest_asyncio.fixture(loop_scope="module")
async def terminal(site: RunningServer, seeded: Seed, tmp_path: Path) -> AsyncIterator[Baresip]:
    sip: SipServer = site.app[SIP_SERVER]
    port = sip.ports["udp"]
    clip = await make_clip(tmp_path / "clip.mp4", size="640x360", fps=15)
    account = Account(f"sip:{seeded.sip_username}@127.0.0.1:{port}", password=seeded.sip_secret)
    directory = tmp_path / "baresip"
    # baresip 1.0's aufile cannot play: its sndfile filter writes what it decoded (*-dec.wav) into snd_path.
    extra = "" if "sndfile" in MODULES else f"module\t\tsndfile.so\nsnd_path\t\t{directory}\n"
    baresip = await Baresip.start(directory, account, video_source=f"avformat,{clip}", extra_config=extra)
    try:
        yield baresip
    finally:
        await baresip.close()


async def poll(check: Callable[[], Any], what: str, within: float = 20.0) -> Any:
    """Poll the browser or baresip (bounded) until `check` returns a true value; returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.25)


def rms(samples: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


@pytest.mark.parametrize("codec", ["", "vp8"])
async def test_chromium_and_a_sip_terminal_see_and_hear_each_other(
    new_context: Callable[..., Any], site: RunningServer, seeded: Seed, terminal: Baresip, codec: str
) -> None:
    """codec "": the page publishes H.264 (the gateway runs), forwarded to the terminal as it is; "vp8": a
    page that did not prefer H.264, whose camera the gateway re-encodes for the terminal."""
    sip: SipServer = site.app[SIP_SERVER]
    port = sip.ports["udp"]
    page: Page = await (await new_context()).new_page()
    query = f"pwd={PASSCODE}&simulcast=0" + (f"&codec={codec}" if codec else "")
    await page.goto(f"{site.url}/m/{seeded.meeting_number}?{query}")
    await page.fill("#display-name", "Alice")
    await page.click("#join:enabled")
    await page.wait_for_selector(".meeting")

    await terminal.wait_registered()
    await terminal.dial(f"sip:{seeded.meeting_number}.{PASSCODE}@127.0.0.1:{port}")
    await terminal.wait_type("CALL_ESTABLISHED")

    async def terminal_id() -> str | None:
        others: list[str] = await page.evaluate(REMOTE_PARTICIPANTS)
        return others[0] if others else None

    pid = await poll(terminal_id, "the terminal's tracks in the page")

    # The browser decodes the terminal's H.264 and gets its audio (the gateway publishes it as Opus).
    async def inbound() -> dict[str, dict[str, Any]]:
        stats: dict[str, dict[str, Any]] = await page.evaluate(INBOUND, pid) or {}
        return stats

    first = await poll(
        lambda: _when(inbound(), lambda s: s.get("video", {}).get("frames", 0) > 0),
        "the terminal's video decoded in Chromium",
    )
    later = await poll(
        lambda: _when(
            inbound(),
            lambda s: (
                s["video"]["frames"] > first["video"]["frames"] + 10
                and s.get("audio", {}).get("bytes", 0) > first.get("audio", {}).get("bytes", 0) > 0
            ),
        ),
        "Chromium's frames and audio bytes from the terminal rising",
    )
    assert later["video"]["mime"] == "video/H264"
    assert later["audio"]["mime"] == "audio/opus"
    await poll(
        lambda: _when(inbound(), lambda s: s["audio"]["level"] > 0.01),
        "the terminal's tone heard in Chromium",
    )

    # The terminal decodes the browser's video, forwarded by the gateway as H.264: baresip's status line says
    # how many frames a second it decodes (the slate alone would be 1), and its decoder saw keyframes.
    async def decoded_fps() -> float:
        rates = RX_FPS.findall(terminal.log())
        return float(rates[-1]) if rates else 0.0

    await poll(lambda: _above(decoded_fps(), 5), "baresip decoding the browser's video at its frame rate")
    assert "video: receiving with resolution" in terminal.log()
    (router,) = site.app[SIP_GATEWAY].sfu.routers.values()
    transcoded = [(t.source.codec_name, t.format.mode) for t in transcodes(router).active()]
    if codec == "vp8":
        assert [name for name, _ in transcoded] == ["vp8"]
    else:  # forwarded as it is, unless baresip took only mode 0 (then its single NAL units are made here)
        assert transcoded in ([], [("h264", 0)])

    # ... and hears the browser in its mix: Chromium's fake microphone beeps, well above comfort silence.
    await terminal.hangup()
    await terminal.wait_type("CALL_CLOSED")
    decoded = sorted(terminal.directory.glob("*-dec.wav"))
    assert decoded, f"baresip wrote no decoded audio in {terminal.directory}"
    samples, rate = read_wav(decoded[-1])
    windows = [rms(samples[i : i + rate // 10]) for i in range(0, len(samples) - rate // 10, rate // 10)]
    assert max(windows) > 0.01, (
        f"the browser's audio is not in the terminal's mix (loudest {max(windows):.4f})"
    )
    # N-1: what it hears is the browser (Chromium's beep), not its own 440 Hz tone sent back.
    assert abs(peak_frequency(samples, rate) - 440.0) > 20


async def _when(stats: Any, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    value: dict[str, Any] = await stats
    try:
        return value if predicate(value) else None
    except KeyError:
        return None


async def _above(value: Any, bound: float) -> bool:
    return bool(await value > bound)

"""The ``constrained-uplink`` measurement, run by bench/constrained_uplink.py under pytest (it needs the
browser tests' fixtures: a veth namespace shaped with tbf, the app served on both sides of it, Chromium
inside). Not collected by the suite (bench/ is not a test path).

A Chromium publisher behind a 1 Mbit/s uplink (tbf, 100 ms queue) joins with its camera in three simulcast
layers while a watcher shows it large (so the top layer is wanted). Sampled every 250 ms from the
publisher's getStats: its send-side estimate (availableOutgoingBitrate), the round-trip time and the loss
the SFU's receiver reports carry (remote-inbound-rtp, over every layer). Once with transport-cc, once
REMB-only (``sfu.transport_cc = false``). Results go to the JSON file named by BENCH_UPLINK_OUT.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.browser.conftest import AdminApi
from tests.browser.netns_site import LOOPBACK, SELECTED, TwoAddressServer, serve_twice
from tests.browser.test_browser_transport_cc import _loopback_ice, shaped_chromium, uplink  # noqa: F401
from tests.netns_link import VethNamespace
from yunhui.settings import Settings, load_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

WINDOW_S = float(os.environ.get("BENCH_UPLINK_WINDOW", "30"))
# A shallow tbf queue (latency 20 ms is ~2.5 kB at 1 Mbit/s, one burst of 4 kB): a sender that overshoots
# the link loses packets at once instead of queueing them for 100 ms, as on a real constrained uplink.
BURST, QUEUE = os.environ.get("BENCH_UPLINK_BURST", "4kb"), os.environ.get("BENCH_UPLINK_QUEUE", "20ms")
_TBF = re.compile(r"qdisc tbf .*?Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", re.S)


def tbf_counters(namespace: VethNamespace) -> tuple[int, int]:
    """(sent, dropped) packets of the namespace's tbf: what the shaper let through and threw away."""
    shown = subprocess.run(
        ["ip", "netns", "exec", namespace.name, "tc", "-s", "qdisc", "show"],
        capture_output=True, text=True, check=True, timeout=20,
    ).stdout  # fmt: skip
    match = _TBF.search(shown)
    if match is None:
        raise RuntimeError(f"no tbf in the namespace: {shown}")
    return int(match.group(2)), int(match.group(3))


REMOTE = """async () => {
  const pc = window.yunhui.client.publishPc; if (!pc) return null;
  const stats = await pc.getStats(); let lost = 0, sent = 0, rtts = [];
  stats.forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') sent += s.packetsSent || 0;
    if (s.type === 'remote-inbound-rtp' && s.kind === 'video') {
      lost += s.packetsLost || 0; if (s.roundTripTime) rtts.push(s.roundTripTime);
    }
  });
  return { lost, sent, rtt: rtts.length ? Math.max(...rtts) : null };
}"""


@pytest.fixture(params=[True, False], ids=["transport-cc", "remb-only"])
def browser_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": LOOPBACK, "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True, "transport_cc": request.param},
            "signaling": {"files_dir": str(tmp_path / "files")},
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def site(browser_settings: Settings, uplink: VethNamespace) -> AsyncIterator[TwoAddressServer]:  # noqa: F811
    async with serve_twice(browser_settings, uplink) as server:
        yield server


def _stable_after(samples: list[tuple[float, float]], low: float, high: float, hold: float) -> float | None:
    """The first time from which the estimate stays within [low, high] for `hold` seconds."""
    start = None
    for t, value in samples:
        if low <= value <= high:
            start = t if start is None else start
            if t - start >= hold:
                return start
        else:
            start = None
    return None


async def test_uplink(
    *,
    site: TwoAddressServer,
    admin: AdminApi,
    uplink: VethNamespace,  # noqa: F811
    shaped_chromium: Browser,  # noqa: F811
    new_context: Callable[..., Any],
    browser_settings: Settings,
) -> None:
    room = await admin.room(passcode="515151")
    watcher = await (
        await new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=2)
    ).new_page()
    await watcher.goto(f"{site.url}/m/{room['meeting_number']}?pwd={room['passcode']}")
    await watcher.fill("#display-name", "Watcher")
    await watcher.click("#join:enabled")
    await watcher.wait_for_selector(".meeting")
    uplink.limit("1mbit", burst=BURST, latency=QUEUE)
    try:
        async with uplink.relay(site.veth_port) as url:
            context = await shaped_chromium.new_context(
                viewport={"width": 1280, "height": 800}, bypass_csp=True
            )
            page = await context.new_page()
            await page.goto(f"{url}/m/{room['meeting_number']}?pwd={room['passcode']}")
            await page.fill("#display-name", "Uplink")
            await page.click("#join:enabled")
            await page.wait_for_selector(".meeting")
            started = time.monotonic()
            estimates: list[tuple[float, float]] = []
            rtts: list[float] = []
            first: dict[str, Any] | None = None
            last: dict[str, Any] | None = None
            while time.monotonic() - started < WINDOW_S:
                selected = await page.evaluate(SELECTED, "publish")
                remote = await page.evaluate(REMOTE)
                t = time.monotonic() - started
                if selected and selected.get("availableOutgoingBitrate"):
                    estimates.append((t, float(selected["availableOutgoingBitrate"])))
                if remote and remote["sent"]:
                    first = first or remote
                    last = remote
                    if remote["rtt"] is not None and t > 5:
                        rtts.append(float(remote["rtt"]))
                await asyncio.sleep(0.25)
            sent_pkts, dropped = tbf_counters(uplink)
            await context.close()
    finally:
        uplink.unlimit()
    assert first is not None and last is not None and estimates
    stable = _stable_after(estimates, 600_000, 1_100_000, 3.0)
    rtts.sort()
    result = {
        "transport_cc": browser_settings.sfu.transport_cc,
        "stable_after_s": stable,
        "estimate_last_kbit": round(estimates[-1][1] / 1000),
        "loss": max(0, last["lost"]) / max(1, last["sent"]),  # over the whole stay, every layer
        # Expected minus received at the link: what the shaper dropped of all it was offered (media and the
        # page's signaling, which is a few packets a second).
        "link_loss": dropped / max(1, sent_pkts + dropped),
        "link_dropped": dropped,
        "link_sent": sent_pkts,
        "queue": QUEUE,
        "burst": BURST,
        "rtt_p95_ms": 1000 * rtts[min(len(rtts) - 1, round(0.95 * (len(rtts) - 1)))] if rtts else None,
        "rtt_p50_ms": 1000 * rtts[len(rtts) // 2] if rtts else None,
        "window_s": WINDOW_S,
    }
    out = os.environ.get("BENCH_UPLINK_OUT")
    if out:
        with Path(out).open("a") as f:  # noqa: ASYNC230 - one line at the end of the test
            f.write(json.dumps(result) + "\n")
    print(result)

"""The SDK notices a dead PeerConnection and renegotiates on a new one (units in Chromium, no server)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.browser.test_browser_units import call, page

__all__ = ["page"]  # the module-scoped tab fixture, shared with the other unit tests

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_connection_state_failed_or_long_disconnected_reports_failure(page: Page) -> None:
    seen = await call(
        page,
        "sdk/media.js",
        """(async () => {
          const seen = [];
          const fake = (name) => {
            const pc = new EventTarget();
            pc.connectionState = "new";
            pc.iceConnectionState = "new";
            m.watchConnection(pc, (p, state) => seen.push(`${name}:${state}`), 20);
            return (state) => {
              pc.connectionState = state;
              pc.dispatchEvent(new Event("connectionstatechange"));
            };
          };
          const a = fake("a"), b = fake("b"), c = fake("c");
          a("connected"); a("failed");
          b("disconnected");              // stays disconnected past the grace: failed
          c("disconnected"); c("connected"); // recovers by itself within the grace: not failed
          await new Promise((r) => setTimeout(r, 60));
          return seen;
        })()""",
    )
    assert seen == ["a:connected", "a:failed", "c:connected", "b:failed"]


async def test_a_restart_renegotiates_on_a_new_peer_connection(page: Page) -> None:
    outcome = await call(
        page,
        "sdk/media.js",
        """(async () => {
          const sent = [];
          const send = (event, data) => event === "candidate" || sent.push([event, data.pc ?? null]);
          const p = new m.Publisher({ iceServers: [], simulcast: false, send });
          p.update({ mic: m.HELD, camera: null, screen: null }).catch(() => {});
          while (!sent.length) await new Promise((r) => setTimeout(r, 5));
          const first = p.pc;
          p.answered("not an sdp"); // the first negotiation ends (badly); the chain goes on
          const restarted = p.restart().catch(() => {});
          while (sent.length < 3) await new Promise((r) => setTimeout(r, 5));
          const fresh = p.pc !== first && first.signalingState === "closed";
          p.close(); // no answer will come
          await restarted;

          const s = new m.Subscriber({ iceServers: [], send, onChange: () => {} });
          s.pc = { remoteDescription: { sdp: "v=0\\r\\na=ice-ufrag:dead\\r\\n" }, close() {} };
          s.restart();
          // An offer the server made for the replaced connection arrives late: ignored, not answered.
          const late = "v=0\\r\\na=ice-ufrag:dead\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\na=mid:0\\r\\n";
          await s.offered({ sdp: late }, new Map());
          return { sent, fresh, subscriberPc: s.pc };
        })()""",
    )
    assert outcome["sent"] == [
        ["publish_offer", None],
        ["restart_media", "publish"],
        ["publish_offer", None],
        ["restart_media", "subscribe"],
    ]
    assert outcome["fresh"] is True
    assert outcome["subscriberPc"] is None


async def test_the_client_restarts_each_failed_connection_once(page: Page) -> None:
    outcome = await call(
        page,
        "sdk/yunhui.js",
        """(() => {
          const c = new m.MeetingClient({ url: "http://127.0.0.1:9" });
          const restarts = [];
          const media = [];
          c.addEventListener("media", (e) => media.push(`${e.detail.pc}:${e.detail.state}`));
          c.state = "joined";
          c._publisher = { restart: async () => restarts.push("publish") };
          c._subscriber = { restart: () => restarts.push("subscribe") };
          c._onMedia("subscribe", "failed", false); // our RTCPeerConnection failed
          c._onMedia("subscribe", "failed", true);  // the server's media_failed about the old one: ignored
          c._onMedia("publish", "failed", true);    // the server noticed first
          c._onMedia("subscribe", "connected", false);
          c._onMedia("subscribe", "failed", false); // the new one failed too: once more
          return { restarts, media };
        })()""",
    )
    assert outcome["restarts"] == ["subscribe", "publish", "subscribe"]
    assert outcome["media"] == [
        "subscribe:reconnecting",
        "publish:reconnecting",
        "subscribe:connected",
        "subscribe:reconnecting",
    ]

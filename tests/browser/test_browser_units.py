"""The pure functions of the browser code, run in Chromium against the served modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page

from web import ui

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(chromium: Browser) -> AsyncIterator[Page]:
    """One tab on a server with only the UI routes: the modules and their import map, nothing else."""
    app = web.Application()
    app.add_routes(ui.routes)
    ui.add_static(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    context = await chromium.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(f"http://{host}:{port}/live/units")
        await tab.wait_for_selector("#live-status")
        yield tab
    finally:
        await context.close()
        await runner.cleanup()


async def call(page: Page, module: str, expression: str) -> Any:
    return await page.evaluate(f"import('/static/{module}').then((m) => {expression})")


@pytest.mark.parametrize(
    ("intervals", "peak"),
    [
        ([], 0),
        ([[0, 10]], 1),
        ([[0, 10], [10, 20]], 1),  # one leaves as the other joins: never two at once
        ([[0, 10], [5, 15], [9, 20]], 3),
        ([[0, 100], [10, 20], [30, 40], [35, 50]], 3),
    ],
)
async def test_peak_concurrency(page: Page, intervals: list[list[int]], peak: int) -> None:
    assert await call(page, "admin/reports.js", f"m.peakConcurrency({intervals})") == peak


async def test_report_summary_counts_minutes_peaks_and_devices(page: Page) -> None:
    summary = await call(
        page,
        "admin/reports.js",
        """m.summarize(
          [{id: 1, started_at: '2026-01-01T10:00:00Z', ended_at: '2026-01-01T11:00:00Z'}],
          new Map([[1, [
            {participant_id: 'a', joined_at: '2026-01-01T10:00:00Z', left_at: '2026-01-01T10:30:00Z',
             device_class: 'desktop', kind: 'browser'},
            {participant_id: 'b', joined_at: '2026-01-01T10:10:00Z', left_at: '2026-01-01T10:40:00Z',
             device_class: 'room-system', kind: 'sip'},
            {participant_id: 'a', joined_at: '2026-01-01T10:45:00Z', left_at: null,
             device_class: 'desktop', kind: 'browser'},
          ]]]),
          Date.parse('2026-01-01T11:00:00Z'))""",
    )
    assert summary["meetings"] == 1
    assert summary["participantMinutes"] == 30 + 30 + 15
    assert summary["peak"] == 2
    assert summary["devices"] == {"desktop": 2, "room-system": 1}
    assert summary["kinds"] == {"browser": 2, "sip": 1}
    assert summary["rows"][0]["participants"] == 2
    assert summary["rows"][0]["durationMinutes"] == 60


async def test_csv_escapes_and_starts_with_a_bom(page: Page) -> None:
    text = await call(page, "admin/reports.js", """m.toCsv(['a', 'b'], [['x,y', 'say "hi"'], ['会议', 2]])""")
    assert text == '\ufeffa,b\r\n"x,y","say ""hi"""\r\n会议,2\r\n'


@pytest.mark.parametrize(
    ("form", "rrule"),
    [
        ({"repeat": "none"}, None),
        ({"repeat": "daily", "interval": 1, "endKind": "count", "count": 5}, "FREQ=DAILY;COUNT=5"),
        (
            {"repeat": "weekly", "interval": 2, "days": ["FR", "MO"], "endKind": "count", "count": 3},
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=3",
        ),
        (
            {"repeat": "monthly", "interval": 1, "endKind": "until", "until": "2027-03-31"},
            "FREQ=MONTHLY;UNTIL=20270331T235959Z",
        ),
    ],
)
async def test_recurrence_rule_from_the_booking_form(
    page: Page, form: dict[str, Any], rrule: str | None
) -> None:
    full = {"interval": 1, "days": [], "endKind": "count", "count": 1, "until": "", **form}
    assert (
        await page.evaluate(
            "(form) => import('/static/admin/bookings.js').then((m) => m.buildRrule(form))", full
        )
        == rrule
    )


async def test_invitation_carries_link_number_passcode_and_sip_dial_string(page: Page) -> None:
    text = await call(
        page,
        "admin/bookings.js",
        "m.invitationText({title: 'Board', passcode: null},"
        " {meeting_number: '123456789', passcode: '4321'}, 'soon')",
    )
    origin = await page.evaluate("location.origin")
    assert f"{origin}/m/123456789?pwd=4321" in text
    assert "123456789.4321@127.0.0.1" in text
    assert "Board" in text and "soon" in text


async def test_sdp_sections_and_quality_levels(page: Page) -> None:
    sdp = "\\r\\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "a=sendonly",
            "a=msid:p1 t1",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:1",
            "a=inactive",
        ]
    )
    sections = await call(page, "sdk/yunhui.js", f'm.parseSections("{sdp}")')
    assert sections == [
        {"kind": "audio", "mid": "0", "streamId": "p1", "direction": "sendonly"},
        {"kind": "video", "mid": "1", "streamId": None, "direction": "inactive"},
    ]
    levels = await call(
        page,
        "sdk/yunhui.js",
        "[m.qualityLevel(0.05, 0), m.qualityLevel(0.4, 0.01), m.qualityLevel(0.1, 0.2)]",
    )
    assert levels == ["good", "fair", "poor"]


async def test_a_failed_negotiation_does_not_stop_the_next_ones(page: Page) -> None:
    """The Publisher runs negotiations and layer changes one at a time; a failure is reported to its caller
    and the queue goes on (it used to reject every later step with the first error)."""
    outcome = await call(
        page,
        "sdk/media.js",
        """(async () => {
          const p = new m.Publisher({ iceServers: [], simulcast: true, send: () => {} });
          let runs = 0;
          p._negotiate = async () => { runs += 1; if (runs === 1) throw new Error("no publish answer"); };
          const settle = (promise) => promise.then(() => "ok", (e) => `failed: ${e.message}`);
          const first = await settle(p.update({}));
          const second = await settle(p.update({}));
          const layers = await settle(p.setLayers("1", ["q"]));
          return [first, second, layers, await settle(p.setLayers("1", "q")), runs];
        })()""",
    )
    assert outcome == [
        "failed: no publish answer",
        "ok",
        "ok",
        "failed: publish_layers: rids must be an array",
        2,
    ]


async def test_video_sizes_are_sent_at_most_twice_a_second_per_track(page: Page) -> None:
    """A window being resized reports a size every frame; the server rate-limits video_size (and a client
    over its limits is disconnected), so the SDK sends the first at once and the latest at the interval's
    end, per track."""
    sent = await call(
        page,
        "sdk/yunhui.js",
        """(async () => {
          const c = new m.MeetingClient({});
          c.state = "joined";
          const sent = [];
          c._send = (event, data) => sent.push(`${data.track_id}:${data.width}x${data.height}`);
          for (let i = 1; i <= 60; i++) { c.setVideoSize("a", 100 + i, 50); c.setVideoSize("b", 10, 10); }
          const before = sent.length;
          await new Promise((resolve) => setTimeout(resolve, 700));
          return [before, ...sent];
        })()""",
    )
    assert sent == [2, "a:101x50", "b:10x10", "a:160x50"]

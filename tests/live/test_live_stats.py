"""The pure rules of live channels: statistics (research/recording.md §4 and §5 item 14), devices, states
and tokens, all on injected instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms.errors import Conflict, InvalidInput
from rooms.live.devices import classify
from rooms.live.rules import (
    InvalidViewerToken,
    check_source,
    mask_url,
    next_state,
    sign_staff,
    sign_viewer,
    verify_staff,
    verify_viewer,
    viewer_phase,
)
from rooms.live.stats import (
    Sample,
    Viewing,
    concurrent,
    sample_instant,
    series,
    summarize,
    viewer_minutes,
)
from tests.live.ua_fixtures import FIXTURES

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY = "live-rules-secret-0123456789abcdefghijklmnop"


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def viewing(viewer: str, first: float, last: float, *, phase: str = "live", segments: int = 3,
            device: str = "desktop") -> Viewing:  # fmt: skip
    return Viewing(viewer, phase, s(first), s(last), segments, device)


def test_n_viewers_are_n_concurrent_and_a_stopped_one_leaves_within_15_s() -> None:
    n = 7
    sessions = [viewing(f"v{i}", 0, 10) for i in range(n)]
    assert concurrent(sessions, s(10)) == {"live": n}
    # One stops at 10 s; the others keep fetching. 15 s after its last request it is no longer counted.
    sessions = [viewing(f"v{i}", 0, 24.9) for i in range(n - 1)] + [viewing(f"v{n - 1}", 0, 10)]
    assert concurrent(sessions, s(24.9)) == {"live": n}  # 14.9 s since its last request
    assert concurrent(sessions, s(25)) == {"live": n - 1}  # 15 s: gone
    # The sampler's grid: it is gone by the first sample after 15 s, at most one interval (10 s) later.
    assert sample_instant(s(25)) == s(20) and sample_instant(s(30)) == s(30)
    assert concurrent(sessions, s(30)) == {"live": n - 1}
    assert concurrent(sessions, s(-1)) == {}, "a session not opened yet is not counted"


def test_one_viewer_with_two_sessions_is_one_unique_viewer_and_two_views() -> None:
    sessions = [viewing("ann", 0, 87), viewing("ann", 30, 90), viewing("bob", 0, 5, segments=0)]
    assert concurrent(sessions, s(90)) == {"live": 1}, "two tabs of one person are one concurrent viewer"
    summary = summarize(sessions, [])
    assert summary.unique_viewers == 2  # bob opened the page
    assert summary.views == 2  # but only ann's two sessions played a segment
    assert summary.watch_minutes == 2.5  # 87 s + 60 s


def test_rehearsal_is_excluded_from_public_statistics() -> None:
    sessions = [viewing("staff", 0, 600, phase="rehearsal"), viewing("a", 600, 660), viewing("b", 700, 720,
                phase="replay")]  # fmt: skip
    samples = [Sample(s(10), "rehearsal", 5), Sample(s(610), "live", 1), Sample(s(710), "replay", 1)]
    public = summarize(sessions, samples)
    assert (public.unique_viewers, public.views, public.peak_concurrency) == (2, 2, 1)
    assert public.peak_at == s(610)
    rehearsal = summarize(sessions, samples, phases=frozenset({"rehearsal"}))
    assert (rehearsal.unique_viewers, rehearsal.peak_concurrency) == (1, 5)
    live_only = summarize(sessions, samples, phases=frozenset({"live"}))
    assert live_only.unique_viewers == 1


def test_peak_and_series_in_five_minute_buckets() -> None:
    samples = [Sample(s(t), "live", n) for t, n in ((0, 3), (10, 9), (20, 4), (300, 2), (910, 6))]
    samples.append(Sample(s(10), "replay", 1))  # same instant, another phase: added up
    points = series(samples)
    assert [(p.start, p.peak) for p in points] == [(s(0), 10), (s(300), 2), (s(600), 0), (s(900), 6)]
    summary = summarize([], samples)
    assert summary.peak_concurrency == 10 and summary.peak_at == s(10)
    assert summary.series == points
    assert series([]) == ()


def test_devices_and_views_per_device() -> None:
    sessions = [
        viewing("a", 0, 60, device="phone"),
        viewing("b", 0, 60, device="phone"),
        viewing("c", 0, 60, device="tablet"),
        viewing("d", 0, 60, device="phone", segments=0),
    ]
    assert summarize(sessions, []).devices == {"phone": 2, "tablet": 1}


@pytest.mark.parametrize(("ua", "device", "browser", "system"), FIXTURES)
def test_user_agents_are_classified(ua: str, device: str, browser: str, system: str) -> None:
    found = classify(ua)
    assert (found.device_class, found.browser, found.os) == (device, browser, system)


def test_viewer_minutes_for_billing_clip_to_the_month_and_skip_rehearsal_and_page_loads() -> None:
    lo, hi = s(0), s(3600)
    sessions = [
        viewing("a", -120, 61),  # 61 s inside: 2 minutes (rounded up per session)
        viewing("b", 3500, 3700),  # 100 s inside: 2 minutes
        viewing("c", 100, 400, phase="rehearsal"),  # staff: not billed
        viewing("d", 100, 400, segments=0),  # never played
        viewing("e", 100, 160, phase="replay"),  # 60 s: 1 minute
    ]
    assert viewer_minutes(sessions, lo, hi) == 5


def test_states_move_only_by_the_console_actions() -> None:
    assert next_state("draft", "rehearse") == "rehearsal"
    assert next_state("rehearsal", "go_live") == "live"
    assert next_state("draft", "go_live") == "live"
    assert next_state("rehearsal", "stop") == "draft"
    assert next_state("live", "stop") == "ended"
    assert next_state("ended", "archive") == "archived"
    for state, action in (("live", "rehearse"), ("ended", "go_live"), ("draft", "stop"), ("live", "archive"),
                          ("archived", "go_live")):  # fmt: skip
        with pytest.raises(Conflict) as refused:
            next_state(state, action)
        assert refused.value.code == "bad_state" and state in refused.value.message
    with pytest.raises(InvalidInput):
        next_state("draft", "explode")
    assert [viewer_phase(x) for x in ("draft", "rehearsal", "live", "ended", "archived")] == [
        None, None, "live", "replay", "replay"]  # fmt: skip
    with pytest.raises(InvalidInput):
        check_source("meeting", None)
    with pytest.raises(InvalidInput):
        check_source("encoder", None)
    with pytest.raises(InvalidInput):
        check_source("playlist", 3)
    check_source("meeting", 3)
    check_source("encoder", 3)


def test_tokens_name_one_channel_and_expire() -> None:
    token = sign_viewer(KEY, session_id=5, channel_id=2, phase="live", now=T0)
    assert verify_viewer(KEY, token, channel_id=2, now=s(60)).session_id == 5
    for bad in (lambda: verify_viewer(KEY, token, channel_id=3, now=s(60)),
                lambda: verify_viewer(KEY + "x", token, channel_id=2, now=s(60)),
                lambda: verify_viewer(KEY, token, channel_id=2, now=s(13 * 3600)),
                lambda: verify_viewer(KEY, token[:-3] + "abc", channel_id=2, now=s(60)),
                lambda: verify_staff(KEY, token, channel_id=2, now=s(60))):  # fmt: skip
        with pytest.raises(InvalidViewerToken):
            bad()
    staff, _ = sign_staff(KEY, channel_id=2, user_id=9, now=T0)
    assert verify_staff(KEY, staff, channel_id=2, now=s(1)) == 9
    with pytest.raises(InvalidViewerToken):
        verify_viewer(KEY, staff, channel_id=2, now=s(1))


def test_rtmp_urls_are_masked() -> None:
    assert mask_url("rtmp://live.example.com/app/abcdef123456") == "rtmp://live.example.com/app/********"
    assert mask_url("rtmp://user:pw@live.example.com/app/key") == "rtmp://***@live.example.com/app/***"
    assert mask_url(None) is None

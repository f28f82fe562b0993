"""Statistics from simulated viewers over real HTTP (research/recording.md §5 item 14): bounded aiohttp client
loops fetch the playlist and segments with their session tokens on an injected clock; the sampler (run twice,
as two processes would) writes each sample once; the statistics, the CSV export and billing's live-viewer
minutes come out exact."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from rooms.billing.reports import usage_report
from rooms.live import store
from rooms.live.models import LiveConcurrencySample, LiveViewerSession
from tests.live.conftest import Env, write_hls
from tests.live.ua_fixtures import EDGE_WINDOWS, SAFARI_IPAD, WECHAT_ANDROID, WECHAT_IOS
from web.api.live_activity import ViewerActivity

N = 6


async def _open(env: Env, cid: int, viewer: str, ua: str, **extra: Any) -> str:
    body = {"viewer_id": viewer, **extra}
    status, body = await env.call(
        "POST", f"/live/{cid}/sessions", who=None, json=body, headers={"User-Agent": ua}
    )
    assert status == 201, body
    token: str = body["s"]
    return token


async def _watch(env: Env, cid: int, token: str, *, segments: int = 1) -> None:
    """One player round: the playlist, then its newest segments (what hls.js does every target duration)."""
    status, playlist = await env.call("GET", f"/live/{cid}/playlist.m3u8?s={token}", who=None)
    assert status == 200, playlist
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    for uri in uris[-segments:]:
        status, _ = await env.call("GET", f"/live/{cid}/{uri}", who=None)
        assert status == 200, uri


async def _sample_twice(env: Env) -> None:
    first = await store.sample(env.db, now=env.clock.now)
    second = await store.sample(env.db, now=env.clock.now)
    assert second == 0 < first or first == 0, (first, second)


async def test_simulated_viewers_give_exact_statistics(env: Env) -> None:
    _, channel = await env.call(
        "POST", "/live", json={"title": "Keynote", "language": "en", "source_kind": "playlist"}
    )
    cid = channel["id"]
    await env.call("POST", f"/live/{cid}/rehearse")
    run = env.run_dir(cid)
    write_hls(run, rehearsal=3, public=0)
    _, staff = await env.call("POST", f"/live/{cid}/staff-token")
    staff_s = await _open(env, cid, "staff-member-1", EDGE_WINDOWS, staff_token=staff["token"])
    await _watch(env, cid, staff_s, segments=2)
    await _sample_twice(env)

    env.clock.now += timedelta(seconds=30)
    await env.call("POST", f"/live/{cid}/go-live")
    write_hls(run, rehearsal=3, public=5)
    agents = [WECHAT_IOS, WECHAT_ANDROID, EDGE_WINDOWS, SAFARI_IPAD, EDGE_WINDOWS, WECHAT_IOS]
    tokens = await asyncio.gather(*(_open(env, cid, f"viewer-{i:04d}", agents[i]) for i in range(N)))
    # viewer-0000 opens a second tab: the same person, a second view.
    tokens.append(await _open(env, cid, "viewer-0000", WECHAT_IOS))
    # A page load that never plays: a unique viewer, not a view.
    await _open(env, cid, "viewer-idle-1", SAFARI_IPAD)

    # Bounded loops: every 2 s of the injected clock each player fetches; the sampler runs every 10 s.
    for tick in range(10):  # 20 s
        await asyncio.gather(*(_watch(env, cid, s) for s in tokens))
        if tick % 5 == 0:
            await _sample_twice(env)
        env.clock.now += timedelta(seconds=2)
    stats: dict[str, Any]
    _, stats = await env.call("GET", f"/live/{cid}/statistics")
    assert stats["peak_concurrency"] == N, stats  # N distinct viewers in one sample (two tabs count once)
    assert stats["unique_viewers"] == N + 1 and stats["views"] == N + 1, stats

    # The last viewer (and the idle one) stop; the others go on. It leaves within 15 s + one sample.
    stopped_at = env.clock.now
    watching = [*tokens[: N - 1], tokens[N]]
    counts = []
    for _ in range(13):  # 26 s
        env.clock.now += timedelta(seconds=2)
        await asyncio.gather(*(_watch(env, cid, s) for s in watching))
        await _sample_twice(env)
        async with env.db.session() as session:
            latest = await session.scalar(
                select(LiveConcurrencySample.viewers)
                .where(LiveConcurrencySample.channel_id == cid, LiveConcurrencySample.phase == "live")
                .order_by(LiveConcurrencySample.at.desc())
                .limit(1)
            )
        counts.append((env.clock.now - stopped_at, latest))
    gone = next(elapsed for elapsed, viewers in counts if viewers == N - 1)
    assert gone <= timedelta(seconds=15 + 10), counts
    assert all(viewers == N for elapsed, viewers in counts if elapsed < timedelta(seconds=14)), counts

    _, stats = await env.call("GET", f"/live/{cid}/statistics")
    assert stats["peak_concurrency"] == N
    assert stats["devices"] == {"phone": 4, "desktop": 2, "tablet": 1}, stats
    assert stats["browsers"]["WeChat"] == 4 and stats["browsers"]["Edge"] == 2, stats
    assert "rehearsal" not in stats["phases"]
    assert sum(p["peak"] for p in stats["series"]) >= N
    _, rehearsal = await env.call("GET", f"/live/{cid}/statistics?phase=rehearsal")
    assert (rehearsal["unique_viewers"], rehearsal["views"], rehearsal["peak_concurrency"]) == (1, 1, 1)

    # A second sampler at the same instants wrote nothing twice.
    async with env.db.session() as session:
        rows = (
            await session.execute(
                select(LiveConcurrencySample.phase, LiveConcurrencySample.at, func.count())
                .where(LiveConcurrencySample.channel_id == cid)
                .group_by(LiveConcurrencySample.phase, LiveConcurrencySample.at)
            )
        ).all()
    assert rows and all(n == 1 for _, _, n in rows)

    status, text = await env.call("GET", f"/live/{cid}/statistics/csv")
    assert status == 200
    table = list(csv.reader(io.StringIO(text)))
    summary = {row[0]: row[1] for row in table if len(row) == 2}
    assert summary["peak_concurrency"] == str(N) and summary["views"] == str(N + 1)
    assert summary["device:phone"] == "4"
    assert ["bucket_start_utc", "peak_concurrency"] in table
    assert sum(1 for row in table if row and row[0].startswith("viewer-")) == N + 2
    assert not any("staff-member-1" in row for row in table), "the public export has no rehearsal"


async def test_live_viewer_minutes_are_billed(env: Env) -> None:
    _, channel = await env.call(
        "POST", "/live", json={"title": "Billed", "language": "zh-CN", "source_kind": "playlist"}
    )
    cid = channel["id"]
    await env.call("POST", f"/live/{cid}/go-live")
    write_hls(env.run_dir(cid), rehearsal=0, public=3)
    token = await _open(env, cid, "viewer-billed-1", EDGE_WINDOWS)
    idle = await _open(env, cid, "viewer-billed-2", EDGE_WINDOWS)
    for _ in range(4):  # 90 s of watching (a fetch every 30 s of the clock): two minutes, rounded up
        await _watch(env, cid, token)
        env.clock.now += timedelta(seconds=30)
    await env.call("GET", f"/live/{cid}/playlist.m3u8?s={idle}", who=None)  # never a segment: not billed
    report = await usage_report(env.db, account_id=env.accounts["a"], month=None, now=env.clock.now)
    usage = {row.kind: row.quantity for row in report.usage}
    assert usage["live_viewer_minutes"] == 2, usage
    other = await usage_report(env.db, account_id=env.accounts["b"], month=None, now=env.clock.now)
    assert {row.kind: row.quantity for row in other.usage}.get("live_viewer_minutes", 0) == 0


async def test_a_page_without_storage_is_one_viewer_and_gathered_requests_are_written_together(
    env: Env,
) -> None:
    _, channel = await env.call(
        "POST", "/live", json={"title": "Anon", "language": "en", "source_kind": "playlist"}
    )
    cid = channel["id"]
    await env.call("POST", f"/live/{cid}/go-live")
    write_hls(env.run_dir(cid), rehearsal=0, public=2)
    tokens = []
    for _ in range(2):  # no viewer_id (localStorage blocked): the same address and agent are one viewer
        status, body = await env.call("POST", f"/live/{cid}/sessions", who=None, json={},
                                      headers={"User-Agent": WECHAT_IOS})  # fmt: skip
        assert status == 201, body
        tokens.append(body["s"])
    # The whole app gathers the requests and writes them once a second (web/api/live_activity.py).
    activity = ViewerActivity()
    async with env.db.session() as session:
        ids = [
            r.id
            for r in (
                await session.scalars(select(LiveViewerSession).where(LiveViewerSession.channel_id == cid))
            )
        ]
    activity.add(ids[0], env.clock.now, 1)
    activity.add(ids[0], env.clock.now + timedelta(seconds=4), 1)
    activity.add(ids[1], env.clock.now + timedelta(seconds=2), 1)
    assert await activity.flush(env.db) == 2
    assert await activity.flush(env.db) == 0
    _, stats = await env.call("GET", f"/live/{cid}/statistics")
    assert (stats["unique_viewers"], stats["views"]) == (1, 2), stats
    assert stats["watch_minutes"] == round((4 + 2) / 60, 1)

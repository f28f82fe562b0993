"""The live channels' REST API and HLS serving on a real server (127.0.0.1, injected clock): CRUD with clear
4xx on bad input, account isolation, the console's state machine, rehearsal ("not started" for the public,
staff watch with a staff token), per-viewer tokens on every playlist and segment, the replay without the
rehearsal (research/recording.md §5 item 15), and no way out of the run's directory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

from tests.live.conftest import Env, write_hls

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)


async def _channel(env: Env, **fields: Any) -> dict[str, Any]:
    body = {
        "title": "Product launch",
        "language": "zh-CN",
        "source_kind": "meeting",
        "room_id": env.rooms["a"],
    }
    body.update(fields)
    status, channel = await env.call("POST", "/live", json=body)
    assert status == 201, channel
    assert isinstance(channel, dict)
    return channel


async def _session(env: Env, channel_id: int, viewer: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"viewer_id": viewer, **extra}
    return await env.call("POST", f"/live/{channel_id}/sessions", who=None, json=body,
                          headers={"User-Agent": SAFARI})  # fmt: skip


def _uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


async def test_channels_are_created_listed_changed_and_isolated(env: Env) -> None:
    channel = await _channel(
        env, rtmp_url="rtmp://push.example.com/live/secret-stream-key", show_viewer_count=True
    )
    assert channel["state"] == "draft"
    assert channel["actions"] == ["rehearse", "go_live"]
    assert channel["viewer_url"] == f"/live/{channel['id']}"
    assert "secret-stream-key" not in channel["rtmp_url"], "the stream key is a secret"
    assert channel["rtmp_url"].startswith("rtmp://push.example.com/live/")

    status, rows = await env.call("GET", "/live")
    assert status == 200 and [r["id"] for r in rows] == [channel["id"]]
    status, rows = await env.call("GET", "/live", who="admin@b.example")
    assert status == 200 and rows == []
    status, body = await env.call("GET", f"/live/{channel['id']}", who="admin@b.example")
    assert status == 404, body

    status, changed = await env.call(
        "PATCH", f"/live/{channel['id']}", json={"title": "Launch (en)", "language": "en"}
    )
    assert status == 200 and changed["title"] == "Launch (en)" and changed["language"] == "en"
    # An interpreter's channel: same meeting, another participant's microphone.
    interpreter = {"source_kind": "meeting", "room_id": env.rooms["a"], "audio_participant": "interpreter-1"}
    status, changed = await env.call("PUT", f"/live/{channel['id']}/source", json=interpreter)
    assert status == 200 and changed["audio_participant"] == "interpreter-1"
    status, changed = await env.call("PUT", f"/live/{channel['id']}/source", json={"source_kind": "playlist"})
    assert status == 200 and changed["room_id"] is None and changed["source_kind"] == "playlist"

    status, _ = await env.call("DELETE", f"/live/{channel['id']}", who="org@a.example")
    assert status == 403
    await env.call("POST", f"/live/{channel['id']}/go-live")
    status, answer = await env.call("DELETE", f"/live/{channel['id']}")
    assert status == 409 and answer["error"]["code"] == "bad_state", "not while it runs"
    await env.call("POST", f"/live/{channel['id']}/stop")
    run = env.run_dir(channel)
    status, _ = await env.call("DELETE", f"/live/{channel['id']}")
    assert status == 204
    assert not run.exists() and ("remove", channel["id"]) in env.engines.calls
    status, _ = await env.call("GET", f"/live/{channel['id']}")
    assert status == 404


async def test_bad_input_gets_a_clear_4xx(env: Env) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"title": "x", "language": "fr"}, 422, "language"),
        ({"title": "", "language": "en"}, 422, "title"),
        ({"title": "x", "language": "en", "source_kind": "meeting"}, 422, "room_id"),
        (
            {"title": "x", "language": "en", "source_kind": "playlist", "room_id": env.rooms["a"]},
            422,
            "room_id",
        ),
        ({"title": "x", "language": "en", "room_id": env.rooms["b"]}, 404, "room_id"),
        (
            {"title": "x", "language": "en", "room_id": env.rooms["a"], "rtmp_url": "http://x/y"},
            422,
            "rtmp_url",
        ),
        ({"title": "x", "language": "en", "room_id": env.rooms["a"], "bogus": 1}, 422, "bogus"),
    ]
    for body, status, field in cases:
        got, answer = await env.call("POST", "/live", json=body)
        assert got == status, (body, answer)
        assert answer["error"]["message"] and field in (answer["error"]["field"] or ""), answer
    got, answer = await env.call(
        "POST", "/live", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert got == 400 and answer["error"]["code"] == "malformed_json"
    channel = await _channel(env)
    got, answer = await env.call("POST", f"/live/{channel['id']}/archive")
    assert got == 409 and "cannot archive" in answer["error"]["message"], answer
    got, answer = await env.call("PUT", f"/live/{channel['id']}/standby", json={"override": "standby"})
    assert got == 409 and answer["error"]["code"] == "bad_state"
    got, answer = await env.call("PUT", f"/live/{channel['id']}/standby", json={"override": "sideways"})
    assert got == 422
    got, answer = await env.call("GET", f"/live/{channel['id']}/statistics?phase=nope")
    assert got == 422
    env.engines.refuse = "the room's meeting has not started"
    got, answer = await env.call("POST", f"/live/{channel['id']}/rehearse")
    assert got == 409 and answer["error"]["message"] == "the room's meeting has not started"
    status, again = await env.call("GET", f"/live/{channel['id']}")
    assert again["state"] == "draft", "a refused start changes nothing"
    got, answer = await env.call("POST", "/live/999999/sessions", who=None, json={})
    assert got == 404


async def test_rehearsal_is_staff_only_and_the_replay_excludes_it(env: Env) -> None:
    channel = await _channel(env)
    cid = channel["id"]
    status, channel = await env.call("POST", f"/live/{cid}/rehearse")
    assert status == 200 and channel["state"] == "rehearsal"
    run = env.run_dir(cid)
    write_hls(run, rehearsal=3, public=0)

    # The public: "not started" — on the page, the session and the media URL alike.
    status, public = await env.call("GET", f"/live/{cid}/public", who=None)
    assert status == 200 and public["state"] == "starting_soon"
    status, answer = await _session(env, cid, "viewer-public-1")
    assert status == 409 and answer["error"]["code"] == "not_started", answer

    # Staff watch the rehearsal with a staff token.
    status, staff = await env.call("POST", f"/live/{cid}/staff-token")
    assert status == 201 and staff["url"].startswith(f"/live/{cid}?staff=")
    status, bad = await _session(env, cid, "viewer-staff-01", staff_token=staff["token"] + "x")
    assert status == 403, bad
    status, rehearsal = await _session(env, cid, "viewer-staff-01", staff_token=staff["token"])
    assert status == 201 and rehearsal["phase"] == "rehearsal", rehearsal
    status, text = await env.call("GET", "/" + rehearsal["playlist"], who=None)
    assert status == 200, text
    assert _uris(text) == [f"segments/seg-00000{n}.ts?s={rehearsal['s']}" for n in (1, 2, 3)]
    status, _ = await env.call("GET", f"/live/{cid}/segments/seg-000001.ts?s={rehearsal['s']}", who=None)
    assert status == 200

    # Going live needs no restart: the same run goes public.
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200 and channel["state"] == "live"
    assert env.engines.calls == [("start", cid), ("go_live", cid)]
    assert env.run_dir(cid) == run
    status, answer = await _session(env, cid, "viewer-public-1")
    assert status == 201 and answer["phase"] == "live"
    status, text = await env.call("GET", "/" + answer["playlist"], who=None)
    assert status == 409 and text["error"]["code"] == "not_started", "no public segment yet"
    write_hls(run, rehearsal=3, public=4)
    status, text = await env.call("GET", "/" + answer["playlist"], who=None)
    assert status == 200
    assert [u.split("?")[0] for u in _uris(text)] == [f"segments/seg-00000{n}.ts" for n in (4, 5, 6, 7)]
    s = answer["s"]
    status, body = await env.call("GET", f"/live/{cid}/segments/seg-000005.ts?s={s}", who=None)
    assert status == 200 and body == b"G" + bytes([5]) * 187
    status, _ = await env.call("GET", f"/live/{cid}/segments/seg-000002.ts?s={s}", who=None)
    assert status == 404, "a public session never gets a rehearsal segment"

    # Stop: the EVENT playlist with ENDLIST is the replay, from the first public segment on.
    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "ended" and ("end", cid) in env.engines.calls
    write_hls(run, rehearsal=3, public=4, ended=True)
    status, public = await env.call("GET", f"/live/{cid}/public", who=None)
    assert public["state"] == "replay"
    status, replay = await _session(env, cid, "viewer-replay-1")
    assert status == 201 and replay["phase"] == "replay"
    status, text = await env.call("GET", "/" + replay["playlist"], who=None)
    assert status == 200 and "#EXT-X-ENDLIST" in text and "#EXT-X-PLAYLIST-TYPE:EVENT" in text
    assert [u.split("?")[0] for u in _uris(text)] == [f"segments/seg-00000{n}.ts" for n in (4, 5, 6, 7)]

    status, channel = await env.call("POST", f"/live/{cid}/archive")
    assert status == 200 and channel["state"] == "archived" and channel["actions"] == []
    status, text = await env.call("GET", "/" + replay["playlist"], who=None)
    assert status == 409 and text["error"]["code"] == "archived"


async def test_a_stopped_rehearsal_goes_back_to_draft_and_the_next_run_starts_afresh(env: Env) -> None:
    cid = (await _channel(env))["id"]
    await env.call("POST", f"/live/{cid}/rehearse")
    first = env.run_dir(cid)
    status, channel = await env.call("POST", f"/live/{cid}/stop")
    assert status == 200 and channel["state"] == "draft" and ("discard", cid) in env.engines.calls
    status, channel = await env.call("POST", f"/live/{cid}/go-live")
    assert status == 200 and channel["state"] == "live"
    assert env.run_dir(cid) != first
    status, answer = await env.call("POST", f"/live/{cid}/rehearse")
    assert status == 409 and "cannot rehearse" in answer["error"]["message"]


async def test_tokens_and_names_cannot_reach_anything_else(env: Env) -> None:
    one = (await _channel(env))["id"]
    two = (await _channel(env, title="Second"))["id"]
    for cid in (one, two):
        await env.call("POST", f"/live/{cid}/go-live")
        write_hls(env.run_dir(cid), rehearsal=0, public=3)
    (env.engines.root / "secret.txt").write_text("not a segment")
    status, session = await _session(env, one, "viewer-paths-1")
    assert status == 201
    s = session["s"]
    status, _ = await env.call("GET", f"/live/{two}/playlist.m3u8?s={s}", who=None)
    assert status == 403, "a token of one channel opens no other"
    forged = jwt.encode({"aud": "yunhui-live-viewer", "sid": 1, "ch": one, "ph": "live", "exp": 4102444800},
                        "another-key-0123456789abcdef0123456789", algorithm="HS256")  # fmt: skip
    status, _ = await env.call("GET", f"/live/{one}/playlist.m3u8?s={forged}", who=None)
    assert status == 403
    status, _ = await env.call("GET", f"/live/{one}/playlist.m3u8", who=None)
    assert status == 422
    for name in ("..%2Fsecret.txt", "..%2F..%2Fsecret.txt", "%2E%2E", "seg-000001.ts%00", "index.m3u8",
                 "seg-1.txt", ".seg-000001.ts"):  # fmt: skip
        status, _ = await env.call("GET", f"/live/{one}/segments/{name}?s={s}", who=None)
        assert status == 404, name
    # Expired tokens say so; the page then asks for a new session.
    env.clock.now += timedelta(hours=13)
    status, answer = await env.call("GET", f"/live/{one}/playlist.m3u8?s={s}", who=None)
    assert status == 403 and answer["error"]["code"] == "token_expired"


async def test_the_openapi_document_lists_the_live_routes(env: Env) -> None:
    status, document = await env.call("GET", "/openapi.json", who=None)
    assert status == 200
    tails = ("", "/go-live", "/sessions", "/playlist.m3u8", "/segments/{name}", "/statistics",
             "/statistics/csv", "/standby", "/source", "/staff-token", "/public")  # fmt: skip
    assert "/live" in document["paths"]
    for tail in tails:
        assert "/live/{channel_id}" + tail in document["paths"], tail
    assert "security" not in document["paths"]["/live/{channel_id}/sessions"]["post"]

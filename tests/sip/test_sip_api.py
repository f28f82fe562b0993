"""REST: each endpoint's SIP state (registrations, live call) and the call records, per account and site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms.sip import calls as records
from signaling.sip.api import Registration
from signaling.sip.gateway import LiveCall
from tests.api.conftest import SECRET, Api, Client, api, template_db  # noqa: F401 (fixtures)
from web.api import create_api
from web.api.sip import SIP_STATUS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class _Status:
    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id

    def registrations(self) -> list[Registration]:
        return [
            Registration(
                str(self.endpoint_id),
                "sip:x30@10.0.0.5:5061",
                "tls",
                ("10.0.0.5", 40123),
                NOW,
                None,
                "PolyX30",
            )
        ]

    def live_calls(self) -> list[LiveCall]:
        return [
            LiveCall(
                "c1",
                self.endpoint_id,
                "Boardroom",
                "joined",
                "123456789",
                "sip-1",
                "10.0.0.5:40123",
                "tls",
                "G722/8000",
                "H264/90000 428016 mode 1",
                True,
                NOW,
            )
        ]


async def test_endpoint_status_and_call_records(api: Api) -> None:  # noqa: F811
    admin = await api.login("admin@a.example")
    status, site = await admin.call("POST", "/sites", {"name": "HQ"})
    assert status == 201, site
    status, endpoint = await admin.call(
        "POST", "/endpoints", {"site_id": site["id"], "display_name": "Boardroom"}
    )
    assert status == 201, endpoint
    # Without the gateway (SIP disabled): listed, unregistered, idle.
    status, rows = await admin.call("GET", f"/sip/endpoints?site_id={site['id']}")
    assert status == 200 and [(r["registered"], r["calls"]) for r in rows] == [(False, [])]
    # With it: the binding and the live call of this endpoint.
    start = records.CallStart(
        "inbound", "x@h", "123456789", "tls", "10.0.0.5:40123", "PolyX30", endpoint["id"]
    )
    record_id = await records.open_call(api.db, start, now=NOW)
    await records.ended(api.db, record_id, reason="bye", now=NOW + timedelta(minutes=3))
    status, body = await admin.call("GET", "/sip/calls")
    assert status == 200 and [(c["id"], c["end_reason"], c["site_id"]) for c in body] == [
        (record_id, "bye", site["id"])
    ]
    other = await api.login("admin@b.example")
    assert await other.call("GET", "/sip/calls") == (200, [])
    assert (await other.call("GET", f"/sip/calls?account_id={api.accounts['a']}"))[0] == 404
    assert (await other.call("GET", "/sip/endpoints")) == (200, [])
    assert (await admin.call("GET", "/sip/calls?limit=0"))[0] in (400, 422)


async def test_endpoint_status_from_the_gateway(api: Api) -> None:  # noqa: F811
    admin = await api.login("admin@a.example")
    _, site = await admin.call("POST", "/sites", {"name": "HQ"})
    _, endpoint = await admin.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "Boardroom"})
    # A second API on the same database, with the status port yunhui/sip.py puts on it.
    sub = create_api(api.db, secret_key=SECRET, clock=api.clock)
    sub[SIP_STATUS] = _Status(endpoint["id"])
    root = web.Application()
    root.add_subapp("/api/v1", sub)
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        client = Client(api.http, str(server.make_url("/api/v1")), admin.token)
        status, (row,) = await client.call("GET", "/sip/endpoints")
    finally:
        await server.close()
    assert status == 200 and row["registered"] is True
    assert (
        row["registrations"][0]["source"] == "10.0.0.5:40123"
        and row["registrations"][0]["transport"] == "tls"
    )
    assert row["calls"][0]["state"] == "joined" and row["calls"][0]["srtp"] is True

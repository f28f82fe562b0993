"""The quarterly availability report over REST: JSON, CSV and a PDF whose fonts are all embedded."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rooms.billing.models import Outage
from rooms.billing.store import create_contract
from tests.api.conftest import Api, api, template_db
from tests.api.test_api_contract import _schemathesis
from tests.conftest import require_tool

__all__ = ["api", "template_db"]

JULY = datetime(2026, 7, 2, 4, tzinfo=UTC)


async def seed(api: Api) -> int:
    root = await api.login("root@example.com")
    account = api.accounts["a"]
    status, site = await root.call("POST", "/sites", {"name": "县一中会场", "account_id": account})
    assert status == 201, site
    await root.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "t"})
    await create_contract(
        api.db,
        account_id=account,
        terms={"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-03-16"},
        sites=[{"site_id": site["id"]}],
        now=datetime(2026, 3, 16, 4, tzinfo=UTC),
    )
    may = datetime(2026, 5, 20, tzinfo=UTC)

    def outage(account_id: int | None, start: datetime, hours: int, source: str, cause: str | None) -> Outage:
        end = start + timedelta(hours=hours)
        return Outage(
            account_id=account_id, start=start, end=end, source=source, cause=cause, note="", created_at=may
        )

    async with api.db.session() as session:
        # The media path down 14 h (meetings only), the database 2 h (everything), another account's 5 h.
        session.add_all(
            [
                outage(None, may, 14, "monitor", "media"),
                outage(None, may + timedelta(days=1), 2, "monitor", "database"),
                outage(api.accounts["b"], may, 5, "admin", None),
            ]
        )
        await session.commit()
    return account


async def test_uptime_outages_and_credits_of_a_quarter(api: Api, tmp_path: Path) -> None:
    account = await seed(api)
    api.clock.now = JULY
    customer = await api.login("admin@a.example")
    status, report = await customer.call("GET", f"/accounts/{account}/availability?quarter=2026-Q2")
    assert status == 200, report
    quarter = 91 * 86400
    assert report["meetings"]["downtime_seconds"] == 16 * 3600
    assert Decimal(report["meetings"]["actual"]) == (
        (Decimal(quarter - 16 * 3600) / quarter * 100).quantize(Decimal("0.001"))
    )
    assert (report["meetings"]["target"], report["meetings"]["met"]) == ("99.5", False)
    assert report["operations"]["downtime_seconds"] == 2 * 3600
    assert (report["operations"]["target"], report["operations"]["met"]) == ("99.9", True)
    assert [(o["cause"], o["scope"], o["seconds"]) for o in report["outages"]] == [
        ("media", "meetings", 14 * 3600),
        ("database", "service", 2 * 3600),
    ]
    [credit] = report["credits"]
    assert credit["kind"] == "availability_credit" and Decimal(credit["amount"]) > 0

    status, text = await customer.call(
        "GET", f"/accounts/{account}/availability/csv?quarter=2026-Q2&lang=zh-CN"
    )
    assert status == 200
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0] == "季度,服务,承诺可用率 %,实测可用率 %,中断时长（秒）,达标"
    assert lines[1].startswith("2026-Q2,会议服务,99.5,") and lines[1].endswith(",否")

    async with api.http.get(
        f"{api.url}/accounts/{account}/availability/pdf?quarter=2026-Q2&lang=zh-CN",
        headers={"Authorization": f"Bearer {customer.token}"},
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/pdf"
        body = await response.read()
    assert body.startswith(b"%PDF")
    pdf = tmp_path / "availability.pdf"
    pdf.write_bytes(body)
    process = await asyncio.create_subprocess_exec(
        require_tool("pdffonts"), str(pdf), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    fonts = out.decode().splitlines()[2:]
    assert fonts, out
    # name, type, encoding, emb, sub, uni, object ID: every font is embedded.
    assert all(line.split()[-5] == "yes" for line in fonts), out.decode()


async def test_bad_requests_get_clear_errors(api: Api) -> None:
    customer = await api.login("admin@a.example")
    stranger = await api.login("admin@b.example")
    account = api.accounts["a"]
    status, body = await customer.call("GET", f"/accounts/{account}/availability")
    assert status == 404 and "no contract" in body["error"]["message"]
    await seed(api)
    for bad in ("2026-Q5", "26-Q1", "1999-Q1", "2026Q2"):
        status, body = await customer.call("GET", f"/accounts/{account}/availability?quarter={bad}")
        assert status == 422, (bad, body)
        assert body["error"]["field"] == "quarter"
    assert (await stranger.call("GET", f"/accounts/{account}/availability"))[0] == 404
    assert (await stranger.call("GET", f"/accounts/{account}/availability/pdf"))[0] == 404
    organizer = await api.login("org@a.example")
    assert (await organizer.call("GET", f"/accounts/{account}/availability"))[0] == 403


async def test_schemathesis_on_the_incident_and_availability_routes(api: Api, tmp_path: Path) -> None:
    """As platform staff, so that generated bodies reach status changes and assignments."""
    await seed(api)
    client = await api.login("root@example.com")
    assert client.token is not None
    config = f"""
[parameters]
"path.account_id" = {api.accounts["a"]}
"""
    await _schemathesis(
        api,
        client.token,
        tmp_path,
        "--include-tag",
        "incidents",
        "--include-tag",
        "availability",
        config=config,
    )


def test_quarters_parse() -> None:
    from rooms.incidents.availability import parse_quarter

    assert parse_quarter("2026-Q2").start == date(2026, 4, 1)
    assert parse_quarter("2026-Q4").end == date(2027, 1, 1)
    with pytest.raises(ValueError, match="not a quarter"):
        parse_quarter("2026-Q0")

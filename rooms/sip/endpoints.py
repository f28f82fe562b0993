"""What the SIP gateway needs of an Endpoint: its identity, its secret and whether it may connect now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select

from rooms import policy
from rooms.database import Database
from rooms.models import Endpoint, Site


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """One Endpoint as the gateway sees it at one moment; ``refusal`` None: it may register and call."""

    endpoint_id: int
    site_id: int
    account_id: int
    sip_username: str
    sip_secret: str
    display_name: str
    site_name: str
    refusal: policy.Reason | None

    @property
    def refusal_text(self) -> str | None:
        return None if self.refusal is None else policy.ENDPOINT_REFUSALS[self.refusal]


async def endpoint_by_username(db: Database, username: str, *, now: datetime) -> EndpointFacts | None:
    """The Endpoint whose SIP username is ``username`` (exact match), with its Site's standing at ``now``."""
    return await _facts(db, Endpoint.sip_username == username, now)


async def endpoint_by_id(db: Database, endpoint_id: int, *, now: datetime) -> EndpointFacts | None:
    """The Endpoint ``endpoint_id`` (dial-out), with its Site's standing at ``now``."""
    return await _facts(db, Endpoint.id == endpoint_id, now)


async def _facts(db: Database, where: ColumnElement[bool], now: datetime) -> EndpointFacts | None:
    query = select(Endpoint, Site).join(Site, Site.id == Endpoint.site_id).where(where)
    async with db.session() as session:
        row = (await session.execute(query)).first()
    if row is None:
        return None
    endpoint, site = row
    return EndpointFacts(
        endpoint_id=endpoint.id,
        site_id=site.id,
        account_id=endpoint.account_id,
        sip_username=endpoint.sip_username,
        sip_secret=endpoint.sip_secret,
        display_name=endpoint.display_name,
        site_name=site.name,
        refusal=policy.endpoint_may_join(site, now, enabled=endpoint.enabled),
    )


async def endpoints_of(db: Database, *, account_id: int | None, site_id: int | None = None) -> list[Endpoint]:
    """Endpoints of an account (None: all), optionally of one site, in id order."""
    query = select(Endpoint).order_by(Endpoint.id)
    if account_id is not None:
        query = query.where(Endpoint.account_id == account_id)
    if site_id is not None:
        query = query.where(Endpoint.site_id == site_id)
    async with db.session() as session:
        return list((await session.scalars(query)).all())

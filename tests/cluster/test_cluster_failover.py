"""S3 (in part) and S6 (issue #20, research/scale-out.md §5): two people entering at different workers end
up in the owner and exchange real media on ports of its UDP slice with nothing on the cluster bus; after
``kill -9`` of the owner, locates answer the survivor within lease TTL + 2 s, the people join again there
and media flows again."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp
import aioice.ice
import pytest

from tests.cluster.conftest import NUMBER, PASSCODE, Cluster, Worker
from tests.signaling.test_signaling_media import MediaClient, _tracks_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.postgres]

# aioice's own candidate filters, taken at import (before tests/conftest.py narrows them to 127.0.0.1 for the
# session): the workers are real processes that gather on the machine's interfaces, so these peers must
# accept those candidates and checks.
_ADD_REMOTE = aioice.ice.Connection.add_remote_candidate
_REQUEST_RECEIVED = aioice.ice.Connection.request_received

SLICES = {1: (41000, 41199), 2: (41200, 41399)}
LEASE_TTL = 2.5  # tests/cluster/conftest.py's workers.lease_ttl_seconds
AUTH = {"meeting_number": NUMBER, "passcode": PASSCODE}


async def _locate(http: aiohttp.ClientSession, worker: Worker) -> str:
    async with http.post(f"{worker.url}/api/v1/meetings/locate", json={"meeting_number": NUMBER}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["worker"])


async def _meeting(owner: Worker) -> tuple[MediaClient, MediaClient]:
    """Two people join at the owner, publish and subscribe, until each receives the other's media."""
    ann, bob = MediaClient(), MediaClient()
    await ann.connect(owner.url, {**AUTH, "display_name": "Ann"})
    a = await ann.expect("joined")
    await bob.connect(owner.url, {**AUTH, "display_name": "Bob"})
    b = await bob.expect("joined")
    await ann.publish()
    await bob.publish()
    await _tracks_of(ann, b["participant_id"], 2)
    await _tracks_of(bob, a["participant_id"], 2)
    await ann.subscribe()
    await bob.subscribe()
    for client in (ann, bob):
        # Decoded VP8 frames: the first one decodes only from a keyframe.
        await client.until(lambda c=client: c.received["audio"] >= 25 and c.received["video"] >= 10)
    return ann, bob


def _server_ports(client: MediaClient) -> set[int]:
    ports = set()
    for pc in (client.pub_pc, client.sub_pc):
        assert pc is not None and pc.remoteDescription is not None
        ports |= {
            int(p) for p in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", pc.remoteDescription.sdp)
        }
    return ports


async def test_cross_entry_media_lands_in_the_owner_and_survives_a_killed_owner(
    cluster: Cluster, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioice.ice.Connection, "add_remote_candidate", _ADD_REMOTE)
    monkeypatch.setattr(aioice.ice.Connection, "request_received", _REQUEST_RECEIVED)
    cluster.extra = f'udp_ranges = ["{SLICES[1][0]}-{SLICES[1][1]}", "{SLICES[2][0]}-{SLICES[2][1]}"]\n'
    first, second = await asyncio.gather(cluster.start(1), cluster.start(2))
    # S3: P1 enters at worker 1, P2 at worker 2; both are told the same owner.
    owner_id = await _locate(http, first)
    assert await _locate(http, second) == owner_id
    owner, survivor = (first, second) if owner_id == "1" else (second, first)
    clients: list[MediaClient] = []
    try:
        try:
            ann, bob = await _meeting(owner)
        except TimeoutError:
            print("".join(owner.output)[-6000:])
            raise
        clients += [ann, bob]
        low, high = SLICES[owner.worker_id]
        for client in (ann, bob):
            ports = _server_ports(client)
            assert ports and all(low <= p <= high for p in ports), ports
        for worker in (first, second):  # meeting traffic never crossed the cluster bus
            metrics = await worker.metrics(http)
            assert metrics["yunhui_bus_published_total"] == 0 and metrics["yunhui_bus_received_total"] == 0

        # S6: kill -9 the owner; locates answer the survivor within lease TTL + 2 s.
        owner.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while (found := await _locate(http, survivor)) != str(survivor.worker_id):
            assert time.monotonic() - killed < LEASE_TTL + 2, found
            await asyncio.sleep(0.1)  # polling the locate answer (the bound is the assertion)
        recovered = time.monotonic() - killed
        assert recovered <= LEASE_TTL + 2, recovered
        print(f"S6: locate answered the survivor {recovered:.2f} s after kill -9 of the owner")
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        clients.clear()

        # The people join again at the survivor and media flows again, on its slice.
        ann, bob = await _meeting(survivor)
        clients += [ann, bob]
        low, high = SLICES[survivor.worker_id]
        assert all(low <= p <= high for p in _server_ports(ann) | _server_ports(bob))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

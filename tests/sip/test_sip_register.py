"""Registrar and digest against real sipp (A1, A2 for REGISTER) and raw clients (A19: no enumeration)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from signaling.sip.api import Transport
from signaling.sip.message import SipRequest
from signaling.sip.registrar import RegisterResult
from signaling.sip.settings import SipSettings
from signaling.sip.transport import Source
from tests.signaling.signaling_fakes import FakeClock
from tests.sip.sip_core_support import (
    REALM,
    FakeCredentials,
    UdpClient,
    digest_answer,
    endpoint,
    register_once,
    request_text,
    run_sipp,
    running_server,
    settings,
)

SUSPENDED = "Site suspended: unpaid invoice"


def credentials() -> FakeCredentials:
    return FakeCredentials(
        room101=endpoint("room101", "secret", number=1),
        room202=endpoint("room202", "secret", refusal=SUSPENDED, number=2),
    )


def final_status(messages: str, method: str = "REGISTER") -> list[int]:
    """The final statuses sipp received, in order, for requests of ``method``."""
    statuses = re.findall(rf"SIP/2.0 (\d{{3}}) [^\n]*\n(?:[^\n]+\n)*?CSeq: \d+ {method}", messages)
    return [int(s) for s in statuses if not s.startswith("1")]


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_register_with_digest_binds_then_unregisters(tmp_path: Path, transport: str) -> None:
    creds = credentials()
    async with running_server(settings(), creds) as server:
        port = server.ports["udp" if transport == "u1" else "tcp"]
        run = await run_sipp(
            "uac_register.xml", port, "-key", "user", "room101", "-au", "room101", "-ap", "secret",
            transport=transport, tmp=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-2000:] + run.errors
        assert final_status(run.messages)[:2] == [401, 200]
        assert "room101" in creds.lookups
        # sipp un-REGISTERed at the end: no binding left.
        assert server.registrations() == []


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_binding_is_tied_to_the_endpoint_and_expires_on_the_clock(
    tmp_path: Path, transport: str
) -> None:
    clock = FakeClock()
    async with running_server(settings(), credentials(), clock=clock) as server:
        port = server.ports["udp" if transport == "u1" else "tcp"]
        # The refusal scenario with an acceptable Expires ends at the 200 (it expects 401/403/423 or ends).
        run = await run_sipp(
            "uac_register_refused.xml", port, "-key", "user", "room101", "-au", "room101", "-ap", "secret",
            "-key", "expires", "120", transport=transport, tmp=tmp_path,
        )  # fmt: skip
        assert final_status(run.messages) == [401, 200]
        (binding,) = server.registrations()
        assert binding.endpoint_id == "ep1"
        assert binding.transport == ("udp" if transport == "u1" else "tcp")
        assert binding.source[0] == "127.0.0.1"
        assert (binding.expires_at - clock.now()).total_seconds() == 120
        clock.advance(119)
        assert len(server.registrations()) == 1
        clock.advance(2)
        assert server.registrations() == []


async def test_wrong_password_is_challenged_again(tmp_path: Path) -> None:
    async with running_server(settings(), credentials()) as server:
        run = await run_sipp(
            "uac_register_refused.xml", server.ports["udp"], "-key", "user", "room101", "-au", "room101",
            "-ap", "wrong", "-key", "expires", "300", tmp=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-2000:] + run.errors
        assert final_status(run.messages) == [401, 401]
        assert server.registrations() == []
        # The usual scenario fails on the second 401, as a terminal with a wrong password would.
        failed = await run_sipp(
            "uac_register.xml", server.ports["udp"], "-au", "room101", "-ap", "wrong", tmp=tmp_path, limit=5,
        )  # fmt: skip
        assert failed.returncode != 0


async def test_too_brief_expires_gets_423_with_min_expires(tmp_path: Path) -> None:
    async with running_server(settings(min_expires=60), credentials()) as server:
        run = await run_sipp(
            "uac_register_refused.xml", server.ports["udp"], "-key", "user", "room101", "-au", "room101",
            "-ap", "secret", "-key", "expires", "10", tmp=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-2000:] + run.errors
        assert final_status(run.messages) == [401, 423]
        assert re.search(r"Min-Expires: 60\r?\n", run.messages)
        assert server.registrations() == []


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_suspended_site_gets_403_with_the_reason(tmp_path: Path, transport: str) -> None:
    async with running_server(settings(), credentials()) as server:
        port = server.ports["udp" if transport == "u1" else "tcp"]
        run = await run_sipp(
            "uac_register_refused.xml", port, "-key", "user", "room202", "-au", "room202", "-ap", "secret",
            "-key", "expires", "300", transport=transport, tmp=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-2000:] + run.errors
        assert final_status(run.messages) == [401, 403]
        assert f'Warning: 399 127.0.0.1 "{SUSPENDED}"' in run.messages
        assert server.registrations() == []


async def test_suspended_site_invite_gets_403_with_the_reason(tmp_path: Path) -> None:
    async with running_server(settings(), credentials()) as server:
        run = await run_sipp(
            "uac_invite_digest.xml", server.ports["udp"], "-s", "123456789", "-key", "user", "room202",
            "-au", "room202", "-ap", "secret", tmp=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-2000:] + run.errors
        assert f'Warning: 399 127.0.0.1 "{SUSPENDED}"' in run.messages
        assert server.calls() == []


async def test_unknown_user_and_wrong_password_get_the_same_answer() -> None:
    async with running_server(settings(), credentials()) as server, UdpClient(server.ports["udp"]) as client:
        unknown = await register_once(client, "room909", "secret")
        wrong = await register_once(client, "room101", "wrong", cseq=3)
        right = await register_once(client, "room101", "secret", cseq=5)
    assert unknown == wrong
    assert unknown[0] == 401
    assert right[0] == 200
    # Byte for byte the same length too: the nonce and tags have fixed sizes.
    challenges = [len(raw) for raw in client.raw if raw.startswith(b"SIP/2.0 401")]
    assert len(set(challenges)) == 1


async def test_sha256_is_offered_first_and_accepted() -> None:
    sip = settings(digest_algorithms=("SHA-256", "MD5"))
    async with running_server(sip, credentials()) as server, UdpClient(server.ports["udp"]) as client:
        client.send(request_text("REGISTER", client.port, extra="Expires: 300"))
        challenge = await client.response()
        offered = challenge.headers.get_all("WWW-Authenticate")
        assert ["SHA-256" in offered[0], "MD5" in offered[1]] == [True, True]
        assert all(f'realm="{REALM}"' in value for value in offered)
        authorization = digest_answer(offered[0], "room101", "secret", "REGISTER", "sip:room101@127.0.0.1")
        client.send(
            request_text(
                "REGISTER", client.port, cseq=2, extra=f"Expires: 300\nAuthorization: {authorization}"
            )
        )
        assert (await client.response()).status == 200
        # The same answer again (same nonce and nc) is a replay.
        client.send(
            request_text(
                "REGISTER", client.port, cseq=3, extra=f"Expires: 300\nAuthorization: {authorization}"
            )
        )
        assert (await client.response()).status == 401


async def test_an_old_nonce_is_stale() -> None:
    clock = FakeClock()
    server_context = running_server(settings(nonce_ttl_seconds=60), credentials(), clock=clock)
    async with server_context as server, UdpClient(server.ports["udp"]) as client:
        client.send(request_text("REGISTER", client.port, extra="Expires: 300"))
        value = (await client.response()).headers.get("WWW-Authenticate")
        assert value is not None
        clock.advance(61)
        authorization = digest_answer(value, "room101", "secret", "REGISTER", "sip:room101@127.0.0.1")
        client.send(
            request_text(
                "REGISTER", client.port, cseq=2, extra=f"Expires: 300\nAuthorization: {authorization}"
            )
        )
        again = await client.response()
        assert again.status == 401
        assert "stale=true" in (again.headers.get("WWW-Authenticate") or "")


async def test_failed_digest_answers_block_the_address() -> None:
    clock = FakeClock()
    sip = settings(rate_limits={"auth_failures": 3, "block_seconds": 30})
    async with (
        running_server(sip, credentials(), clock=clock) as server,
        UdpClient(server.ports["udp"]) as client,
    ):
        for attempt in range(3):
            status, _ = await register_once(client, f"guess{attempt}", "x", cseq=2 * attempt + 1)
            assert status == 401
        client.send(request_text("OPTIONS", client.port, cseq=10))
        assert await client.nothing_within(0.5)
        clock.advance(31)
        client.send(request_text("OPTIONS", client.port, cseq=11))
        assert (await client.response()).status == 200


BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:0
net_interface 127.0.0.1
module_path /usr/lib/baresip/modules
module g711.so
module_tmp account.so
"""


@pytest.mark.parametrize(
    ("transport", "algorithms", "registers"),
    [("udp", None, True), ("tcp", None, True), ("tls", None, True), ("udp", ("SHA-256", "MD5"), False)],
)
async def test_baresip_registers_with_the_default_digest(
    tmp_path: Path, transport: Transport, algorithms: tuple[str, ...] | None, registers: bool
) -> None:
    """baresip over each transport; and why MD5 alone is the default: it fails once SHA-256 is offered."""
    sip = settings(tls_port=0, digest_algorithms=algorithms or SipSettings().digest_algorithms)
    async with running_server(sip, credentials()) as server:
        registered = asyncio.Event()
        register = server.registrar.register

        def noting(endpoint_id: str, request: SipRequest, source: Source) -> RegisterResult:
            result = register(endpoint_id, request, source)
            registered.set()
            return result

        server.registrar.register = noting  # type: ignore[method-assign]
        (tmp_path / "config").write_text(BARESIP_CONFIG)
        (tmp_path / "accounts").write_text(
            f"<sip:room101@127.0.0.1:{server.ports[transport]};transport={transport}>"
            ";auth_pass=secret;regint=60\n"
        )
        process = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(tmp_path), "-t", "20", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            if registers:
                await asyncio.wait_for(registered.wait(), 10)
                (binding,) = server.registrations()
                assert (binding.endpoint_id, binding.transport) == ("ep1", transport)
            else:
                output = b""
                while b"Register:" not in output:
                    line = await asyncio.wait_for(process.stdout.readline(), 10)  # type: ignore[union-attr]
                    assert line, "baresip ended without a verdict"
                    output += line
                assert b"Function not implemented" in output
                assert server.registrations() == []
        finally:
            process.kill()
            await process.wait()

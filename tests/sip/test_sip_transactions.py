"""Transaction timers (RFC 3261 §17, RFC 6026) and parsing on a fake clock: no sockets, no waiting."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any

import pytest

from signaling.clock import Scheduler
from signaling.sip.api import CallGone
from signaling.sip.dialog import Dialog
from signaling.sip.incoming import IncomingCall
from signaling.sip.message import Headers, SipParseError, SipRequest, SipResponse, parse, response_to
from signaling.sip.server import contact_host
from signaling.sip.settings import SipSettings
from signaling.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from signaling.sip.transport import Source
from signaling.sip.uri import NameAddr, SipUri, Via
from tests.signaling.signaling_fakes import FakeClock

T1, T2, T4 = 0.5, 4.0, 5.0
PEER = Source("udp", "127.0.0.1", 5099)


class Wire:
    """A Sender that records what would go out, with the fake time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes]] = []
        self.up = True

    def send(self, data: bytes, dest: Source) -> bool:
        self.sent.append(((self.clock.now() - self.start).total_seconds(), data))
        return self.up

    start = FakeClock().now()

    def lines(self) -> list[tuple[float, str]]:
        return [(t, data.split(b"\r\n", 1)[0].decode()) for t, data in self.sent]


class User:
    def __init__(self) -> None:
        self.requests: list[ServerTransaction] = []
        self.acks: list[SipRequest] = []
        self.cancelled: list[ServerTransaction] = []
        self.stray: list[SipResponse] = []

    def on_request(self, request: SipRequest, transaction: ServerTransaction) -> None:
        self.requests.append(transaction)

    def on_ack(self, request: SipRequest, source: Source) -> None:
        self.acks.append(request)

    def on_cancel(self, invite: ServerTransaction) -> None:
        self.cancelled.append(invite)

    def on_stray_response(self, response: SipResponse, source: Source) -> None:
        self.stray.append(response)


def layer() -> tuple[TransactionLayer, Wire, User, FakeClock]:
    clock = FakeClock()
    wire = Wire(clock)
    wire.start = clock.now()
    user = User()
    return TransactionLayer(t1=T1, t2=T2, t4=T4, clock=clock, transport=wire, user=user), wire, user, clock


def request(method: str, *, branch: str = "z9hG4bKabc", cseq: int = 1, to_tag: str = "") -> SipRequest:
    to = "<sip:1234@gw>" + (f";tag={to_tag}" if to_tag else "")
    return SipRequest(
        method=method,
        uri="sip:1234@gw",
        headers=Headers.of(
            [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:5099;branch={branch}"),
                ("From", "<sip:room@x>;tag=f1"),
                ("To", to),
                ("Call-ID", "c1"),
                ("CSeq", f"{cseq} {method}"),
                ("Max-Forwards", "70"),
            ]
        ),
    )


def test_invite_error_is_resent_by_timer_g_until_ack() -> None:
    transactions, wire, user, clock = layer()
    transactions.received(request("INVITE"), PEER)
    assert wire.lines() == [(0.0, "SIP/2.0 100 Trying")]
    (server,) = user.requests
    server.reply(486, to_tag="t1")
    clock.advance(T1 * 0.99)
    assert len(wire.sent) == 2
    clock.advance(8.0)
    times = [t for t, line in wire.lines() if line.startswith("SIP/2.0 486")]
    # Timer G: T1, then doubling, capped at T2.
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [0.5, 1.0, 2.0, 4.0]
    transactions.received(request("ACK", to_tag="t1"), PEER)
    assert server.state == "confirmed"
    count = len(wire.sent)
    clock.advance(30)
    assert len(wire.sent) == count
    assert transactions.counts == (0, 0)
    # The ACK of an error response belongs to the transaction, never to the dialog layer.
    assert user.acks == []


def test_invite_error_without_ack_ends_at_timer_h() -> None:
    transactions, _wire, user, clock = layer()
    transactions.received(request("INVITE"), PEER)
    user.requests[0].reply(603, to_tag="t1")
    clock.advance(64 * T1 - 0.01)
    assert transactions.counts == (1, 0)
    clock.advance(0.02)
    assert transactions.counts == (0, 0)
    assert user.requests[0].state == "terminated"


def test_retransmitted_requests_are_absorbed_and_answered_again() -> None:
    transactions, wire, user, clock = layer()
    transactions.received(request("OPTIONS"), PEER)
    transactions.received(request("OPTIONS"), PEER)
    assert len(user.requests) == 1
    assert wire.sent == []  # "trying": nothing to resend yet
    user.requests[0].reply(200)
    transactions.received(request("OPTIONS"), PEER)
    assert [line for _, line in wire.lines()] == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    # Timer J: 64*T1 over UDP, then a retransmission would be a new request.
    clock.advance(64 * T1 + 0.01)
    transactions.received(request("OPTIONS"), PEER)
    assert len(user.requests) == 2


def test_invite_retransmissions_after_2xx_are_absorbed_for_64_t1() -> None:
    transactions, _wire, user, clock = layer()
    transactions.received(request("INVITE"), PEER)
    user.requests[0].reply(200, to_tag="t1")
    transactions.received(request("INVITE"), PEER)
    assert len(user.requests) == 1
    assert user.requests[0].state == "accepted"
    # The ACK of a 2xx has its own branch and goes to the dialog layer.
    transactions.received(request("ACK", branch="z9hG4bKack", to_tag="t1"), PEER)
    assert len(user.acks) == 1
    clock.advance(64 * T1 + 0.01)
    assert transactions.counts == (0, 0)


def test_cancel_matches_the_invite_and_unknown_cancel_gets_481() -> None:
    transactions, wire, user, _clock = layer()
    transactions.received(request("INVITE"), PEER)
    transactions.received(request("CANCEL"), PEER)
    assert user.cancelled == [user.requests[0]]
    assert wire.lines()[-1][1] == "SIP/2.0 200 OK"
    transactions.received(request("CANCEL", branch="z9hG4bKother"), PEER)
    assert wire.lines()[-1][1] == "SIP/2.0 481 Call/Transaction Does Not Exist"


async def test_non_invite_client_retransmits_by_timer_e_and_times_out_at_f() -> None:
    transactions, wire, _user, clock = layer()
    client = transactions.request(request("BYE", branch="z9hG4bKbye", to_tag="t1"), PEER)
    clock.advance(40.0)
    times = [t for t, _ in wire.sent]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)][:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert client.response.done()
    assert client.response.result().status == 408
    # Timer F at 64*T1 = 32 s: nothing after it.
    assert max(times) <= 64 * T1
    assert transactions.counts == (0, 0)


async def test_invite_client_acks_an_error_and_passes_every_2xx_up() -> None:
    transactions, wire, _user, clock = layer()
    invite = request("INVITE", branch="z9hG4bKinv", to_tag="")
    client = transactions.request(invite, PEER)
    clock.advance(T1 + 0.01)
    assert len(wire.sent) == 2  # Timer A
    busy = response_to(invite, 486, to_tag="r1")
    transactions.received(busy, PEER)
    assert client.response.result().status == 486
    assert wire.lines()[-1][1].startswith("ACK sip:1234@gw")
    transactions.received(busy, PEER)  # a retransmitted error gets the ACK again (Timer D)
    assert [line for _, line in wire.lines()].count("ACK sip:1234@gw SIP/2.0") == 2

    ok_invite = request("INVITE", branch="z9hG4bKinv2", cseq=2)
    second = transactions.request(ok_invite, PEER)
    seen: list[int] = []
    second.on_2xx = lambda response: seen.append(response.status)
    ok = response_to(ok_invite, 200, to_tag="r2")
    transactions.received(ok, PEER)
    transactions.received(ok, PEER)
    assert seen == [200, 200]
    assert second.response.result().status == 200


async def test_transport_failure_fails_the_client_transaction() -> None:
    transactions, wire, _user, _clock = layer()
    wire.up = False
    client = transactions.request(request("INFO", branch="z9hG4bKinfo", to_tag="t"), PEER)
    assert client.response.result().status == 503


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_compact_forms_folding_and_lists() -> None:
    message = parse(
        b"INVITE sip:123456789@gw SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a:5060;branch=z9hG4bK1, SIP/2.0/TCP b\r\n"
        b'f: "Room, A" <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: x\r\n'
        b"Subject: long\r\n  folded\r\n"
        b"cseq: 7 INVITE\r\nk: timer, 100rel\r\nc: application/sdp\r\nl: 3\r\n\r\nabcdef"
    )
    assert isinstance(message, SipRequest)
    assert message.vias == ["SIP/2.0/UDP a:5060;branch=z9hG4bK1", "SIP/2.0/TCP b"]
    assert message.headers.get("subject") == "long folded"
    assert message.headers.tokens("Supported") == {"timer", "100rel"}
    assert message.cseq == (7, "INVITE")
    assert message.body == b"abc"
    assert NameAddr.parse(message.headers.get("From") or "").display == "Room, A"
    assert parse(message.serialize()) == message


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"INVITE sip:a@b SIP/3.0\r\nVia: x\r\n\r\n", 505),
        (b"INVITE sip:a@b SIP/2.0\r\nFrom: a\r\n\r\n", 400),
        (b"garbage\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\n"
         b"Call-ID: 1\r\nCSeq: 1 BYE\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\n"
         b"Call-ID: 1\r\nCSeq: 1 INVITE\r\nContent-Length: 10\r\n\r\nabc", 400),
        (b"SIP/2.0 99 Odd\r\nVia: x\r\n\r\n", 400),
    ],
)  # fmt: skip
def test_parse_rejects_with_a_status(data: bytes, status: int) -> None:
    with pytest.raises(SipParseError) as error:
        parse(data)
    assert error.value.status == status


def test_uri_and_via() -> None:
    uri = SipUri.parse("sips:123456789.4321@meet.example.org:5061;transport=tls")
    assert (uri.user, uri.host, uri.port, uri.transport) == (
        "123456789.4321",
        "meet.example.org",
        5061,
        "tls",
    )
    via = Via.parse("SIP/2.0/tcp [::1]:5070;branch=z9hG4bKx;rport")
    assert (via.transport, via.host, via.port, via.branch, via.params["rport"]) == (
        "TCP",
        "[::1]",
        5070,
        "z9hG4bKx",
        "",
    )
    with pytest.raises(SipParseError):
        SipUri.parse("tel:+861012345678")


class Host:
    """The CallHost of one leg, over the fake wire and clock (no SipServer)."""

    def __init__(self, layer: TransactionLayer, wire: Wire, clock: FakeClock) -> None:
        self.clock: Scheduler = clock
        self.settings = SipSettings()
        self.t1, self.t2 = T1, T2
        self._layer, self._wire = layer, wire
        self.tasks: list[asyncio.Task[None]] = []
        self.gone: list[object] = []

    def send(self, data: bytes, dest: Source) -> bool:
        return self._wire.send(data, dest)

    def request(self, request: SipRequest, dest: Source) -> ClientTransaction:
        return self._layer.request(request, dest)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coroutine))

    def ended(self, session: object) -> None:
        self.gone.append(session)


async def test_answer_on_a_dead_flow_ends_the_call_with_transport() -> None:
    transactions, wire, user, clock = layer()
    transactions.received(request("INVITE"), PEER)
    (invite,) = user.requests
    dialog = Dialog.as_uas(invite.request, PEER, "gw1", "sip:127.0.0.1:5060;transport=udp")
    call = IncomingCall(Host(transactions, wire, clock), invite, dialog, None, None)
    wire.up = False  # the TCP/TLS connection closed while the handler decided
    with pytest.raises(CallGone) as gone:
        await asyncio.wait_for(call.answer("v=0\r\n"), 5)
    assert gone.value.reason == "transport"
    assert await call.wait_ended() == "transport"


def test_contact_host_prefers_advertised_then_bound_then_dialled() -> None:
    dialled = "sip:123456789@192.0.2.10:5060"
    assert contact_host(SipSettings(advertised_host="meet.example.org"), dialled) == "meet.example.org"
    assert contact_host(SipSettings(host="198.51.100.7"), dialled) == "198.51.100.7"
    # Bound to every interface: the address the terminal used to reach us is one it can reach again.
    assert contact_host(SipSettings(host="0.0.0.0"), dialled) == "192.0.2.10"
    assert contact_host(SipSettings(host="0.0.0.0"), None) == "127.0.0.1"

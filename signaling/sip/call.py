"""Call: one SIP leg of a room terminal — the INVITE, admission into a meeting, the media leg and its record.

A call that dialled ``meeting.passcode@`` (or ``meeting@`` of a room without passcode) is admitted before it
is answered: its media leg (sfu.PlainPeer) is made in the meeting's Router when the Participant joins, and
the 200 carries that leg's ports. Every other call is answered at once into the IVR (signaling/sip/ivr.py),
with its leg in a Router of its own, and moves into the meeting's Router once admitted — the terminal keeps
sending to the same ports, so joining needs no re-INVITE.

Admission is the browsers' (MeetingServer.admit_sip: rooms.policy, capacity counting SIP legs, lobby, lock,
passcode attempt limits); the Participant (kind "sip", named after the Endpoint) is what browsers see. The
call hangs up when the terminal's inbound RTP stops for ``silence_timeout`` (not while on hold), when the
participant leaves (removed, meeting ended), or when the terminal hangs up; never because the room is quiet.

NOTE for the media engineer (sfu/): the IVR path needs ``Router.adopt_plain_peer(peer, participant_id)``:
move a started PlainPeer (same sockets, SSRCs, SRTP) from its IVR Router into a meeting's Router, published
there under ``participant_id``. Until it exists, calls that go through the IVR are told the meeting is
unavailable after their digits (the direct dial strings work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from rooms.sip import calls as records
from signaling.errors import JoinRefused, RefusalCode
from signaling.messages import LeaveReason
from signaling.server import SipJoin
from signaling.sip import sdp
from signaling.sip.api import CallEnded, CallGone, SipCall
from signaling.sip.dialplan import Direct, route
from signaling.sip.ivr import Attempt, DigitCollector, Goodbye, Ivr, IvrRules, Play, Refusal, info_digit
from signaling.sip.ivr_media import EncodedPrompt, LegCodec, codec_of

if TYPE_CHECKING:
    from sfu.plain import PlainPeer
    from sfu.router import Router
    from signaling.participant import Participant
    from signaling.ports import PeerPort, RouterPort
    from signaling.sip.gateway import Gateway

logger = logging.getLogger(__name__)

FAST_UPDATE = (
    b'<?xml version="1.0" encoding="utf-8" ?><media_control><vc_primitive><to_encoder>'
    b"<picture_fast_update/></to_encoder></vc_primitive></media_control>"
)
_REFUSALS = {
    RefusalCode.NO_SUCH_MEETING: Refusal.NO_SUCH_MEETING,
    RefusalCode.WRONG_PASSCODE: Refusal.WRONG_PASSCODE,
    RefusalCode.NOT_OPEN: Refusal.NOT_OPEN,
    RefusalCode.CLOSED: Refusal.CLOSED,
    RefusalCode.FULL: Refusal.FULL,
    RefusalCode.LOCKED: Refusal.LOCKED,
    RefusalCode.TOO_MANY_ATTEMPTS: Refusal.TOO_MANY_ATTEMPTS,
}
# A direct dial that cannot get in is answered with an error the terminal shows (with the Warning text);
# refusals the IVR can help with (no such meeting, a passcode to type) go to the IVR instead.
_STATUS = {
    RefusalCode.FULL: (486, "Busy Here"),
    RefusalCode.NOT_OPEN: (480, "Temporarily Unavailable"),
    RefusalCode.MEETING_ENDING: (480, "Temporarily Unavailable"),
    RefusalCode.SERVER_CLOSING: (503, "Service Unavailable"),
    RefusalCode.UNAVAILABLE: (503, "Service Unavailable"),
}
FRAME = 0.02


class Call:
    """One SIP leg, from INVITE to hang-up; ``run()`` is its task (owned by the Gateway)."""

    def __init__(self, gateway: Gateway, call: SipCall) -> None:
        self.gateway = gateway
        self.sip = call
        self.id = call.call_id
        self.record_id: int | None = None
        self.endpoint_id = int(call.endpoint.endpoint_id) if call.endpoint is not None else None
        self.display_name = "SIP"
        self.started_at = gateway.scheduler.now()
        self.state: Literal["ringing", "ivr", "lobby", "joined", "ended"] = "ringing"
        self.meeting_number: str | None = None
        self.participant: Participant | None = None
        self.peer: PlainPeer | None = None
        self.answer: sdp.SdpAnswer | None = None
        self.codec: LegCodec = "pcmu"
        self.on_hold = False
        self._offer = call.offer
        self._our_offer: str | None = None  # delayed offer: ours went in the 200
        self._session = 0
        self._version = 1
        self._ivr_router: Router | None = None
        self._ivr: Ivr | None = None
        self._digits = DigitCollector()
        self.audio_packets = 0  # RTP audio packets from the terminal (DTMF not included)
        self.digits: list[str] = []  # every key press of the call, in order (both paths, each once)
        self._player: asyncio.Task[None] | None = None
        self._prompt: list[bytes] = []
        self._prompt_done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: list[Any] = []
        self._ivr_timer: Any = None
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._last_rtp: datetime | None = None
        self.log = logging.LoggerAdapter(logger, {"sip_call": call.call_id})

    @property
    def ivr_step(self) -> str | None:
        """Where the IVR dialogue is (meeting, passcode, checking, waiting, done); None without one."""
        return None if self._ivr is None else self._ivr.step.value

    # --- the call's task ---

    async def run(self) -> None:
        reason = "error"
        try:
            reason = await self._run()
        except CallGone as exc:
            reason = exc.reason
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        except Exception:
            self.log.exception("SIP call failed")
            await self._hangup()
        finally:
            await self._cleanup(reason)

    async def _run(self) -> str:
        gw, call, now = self.gateway, self.sip, self.gateway.scheduler.now()
        self.record_id = await records.open_call(
            gw.db,
            records.CallStart(
                "inbound",
                call.call_id,
                call.request_user or "",
                call.transport,
                f"{call.remote[0]}:{call.remote[1]}",
                call.user_agent,
                self.endpoint_id,
                gw.worker_id,
            ),
            now=now,
        )
        if call.endpoint is not None and call.endpoint.refusal:
            # The core refuses these after digest; this is the same answer should one get through.
            await self._reject(403, "Forbidden", call.endpoint.refusal)
            return "rejected:403"
        if self.endpoint_id is not None:
            self.display_name = await gw.endpoint_name(self.endpoint_id)
        call.on_info = self._on_info
        call.on_reinvite = self._on_reinvite
        call.on_end = self._on_end
        if self._offer is not None:
            probe = sdp.answer(self._offer, self._policy({"audio": 2, "video": 4}))
            if isinstance(probe, sdp.SdpRejection):
                await self._reject(probe.status, "Not Acceptable Here", probe.reason)
                return f"rejected:{probe.status}"
        destination = route(call.request_user)
        if isinstance(destination, Direct):
            outcome = await self._join_direct(destination)
            if outcome is not None:
                return outcome
        else:
            await self._answer_into_ivr(destination)
        return await self._wait_end()

    async def _join_direct(self, destination: Direct) -> str | None:
        """Admit before answering; None: joined (or moved into the IVR), else the call's end reason."""
        self.meeting_number = destination.meeting_number
        try:
            participant = await self.gateway.meetings.admit_sip(
                self._join_request(destination.passcode, False)
            )
        except JoinRefused as exc:
            if exc.code in (RefusalCode.NO_SUCH_MEETING, RefusalCode.WRONG_PASSCODE):
                await self._answer_into_ivr(destination)
                return None
            status, phrase = _STATUS.get(exc.code, (403, "Forbidden"))
            await self._reject(status, phrase, exc.message)
            return f"rejected:{status}"
        if participant.in_lobby:
            # Waiting needs media now (the lobby prompt, the slate): answer into a leg of our own and move it
            # into the meeting once a moderator admits the terminal.
            await participant.close(LeaveReason.LEFT)
            await self._answer_into_ivr(destination)
            return None
        self._seated(participant)
        joined = await participant.wait_joined()  # the leg is made meanwhile (_make_leg)
        # A delayed offer (INVITE without SDP) has no answer yet: ours goes in the 200, theirs in the ACK.
        negotiated = self.answer is not None or self._our_offer is not None
        if not joined or self.peer is None or not negotiated:
            await self._reject(503, "Service Unavailable", "the meeting could not be joined")
            return "rejected:503"
        await self._answer_and_start()
        await self._record_answer()
        await self._joined()
        return None

    async def _answer_into_ivr(self, destination: Any) -> None:
        gw = self.gateway
        self._ivr_router = gw.sfu.router(f"sip-ivr:{self.id}")
        self.peer = await self._ivr_router.add_plain_peer("ivr", host=gw.media_host)
        self.answer = self._negotiate(self.peer)
        await self._answer_and_start()
        self.state = "ivr"
        self._ivr = Ivr(destination, IvrRules(**gw.ivr_rules))
        self._player = self._spawn(self._play(), "sip-ivr-player")
        self._act(self._ivr.start(gw.scheduler.now()))
        await self._record_answer()

    # --- negotiation ---

    def _policy(self, ports: dict[Any, int]) -> sdp.SdpPolicy:
        gw = self.gateway
        self._session = self._session or int(gw.scheduler.now().timestamp())
        return sdp.SdpPolicy(
            gw.media_host,
            ports.get("audio", 0),
            ports.get("video", 0),
            transport=self.sip.transport,
            srtp=gw.srtp_policy,
            session_id=self._session,
            session_version=self._version,
        )

    def _negotiate(self, peer: PlainPeer) -> sdp.SdpAnswer | None:
        policy = self._policy(dict(peer.local_ports))
        if self._offer is None:
            self._our_offer = sdp.offer(policy)
            return None
        result = sdp.answer(self._offer, policy)
        if isinstance(result, sdp.SdpRejection):
            raise RuntimeError(f"the offer was accepted once and refused now: {result.reason}")
        return result

    async def _answer_and_start(self) -> None:
        assert self.peer is not None
        body = self.answer.sdp if self.answer is not None else self._our_offer
        assert body is not None
        ack_sdp = await self.sip.answer(body)
        self.log.debug("answered; ACK %s an SDP", "with" if ack_sdp else "without")
        if self._our_offer is not None:
            if ack_sdp is None:
                raise CallGone("hangup")
            parsed = sdp.parse_answer(ack_sdp, self._our_offer, self._policy(dict(self.peer.local_ports)))
            if isinstance(parsed, sdp.SdpRejection):
                self.log.warning("the ACK's answer is not acceptable: %s", parsed.reason)
                await self._hangup()
                raise CallGone("hangup")
            self.answer = parsed
        assert self.answer is not None
        audio = self.answer.audio
        self.codec = (codec_of(audio.codecs[0].name) if audio else None) or "pcmu"
        self.peer.on_dtmf = lambda digit: self._digit(digit, "rtp")
        self.peer.on_keyframe_wanted = self._want_keyframe
        self.peer.on_audio = self._on_audio
        await self.peer.start(self.answer.plain_media(self.sip.remote[0]))
        self.log.debug("media started (%s)", self.codec)
        self._last_rtp = self.gateway.scheduler.now()
        self._send_slate()
        self._watch_silence()

    async def _record_answer(self) -> None:
        answer = self.answer
        assert answer is not None
        audio, video = answer.audio, answer.video
        now = self.gateway.scheduler.now()
        if self.record_id is not None:
            await records.answered(
                self.gateway.db,
                self.record_id,
                audio_codec=_describe(audio),
                video_codec=_describe(video),
                srtp=answer.encrypted,
                now=now,
            )

    async def _on_reinvite(self, offer: str) -> str:
        """A re-INVITE (hold, resume, session refresh): the same offer gets the same answer, o= unchanged."""
        if self.peer is None or self.answer is None:
            raise CallGone("hangup")
        if offer == self._offer:
            return self.answer.sdp
        self._version += 1
        result = sdp.answer(offer, self._policy(dict(self.peer.local_ports)))
        if isinstance(result, sdp.SdpRejection):
            self._version -= 1
            return self.answer.sdp  # keep the session as it was rather than drop a running call
        self._offer, self.answer = offer, result
        audio = result.audio
        self.on_hold = audio is None or audio.direction in ("sendonly", "inactive")
        self._last_rtp = self.gateway.scheduler.now()
        await self.peer.start(result.plain_media(self.sip.remote[0]))
        return result.sdp

    # --- joining ---

    def _join_request(self, passcode: str | None, moving: bool) -> SipJoin:
        assert self.meeting_number is not None
        return SipJoin(
            meeting_number=self.meeting_number,
            passcode=passcode,
            display_name=self.display_name,
            address=self.sip.remote[0],
            attach=self._move_leg if moving else self._make_leg,
            endpoint_id=self.endpoint_id,
            user_agent=self.sip.user_agent,
        )

    async def _make_leg(self, router: RouterPort, participant_id: str) -> PeerPort:
        """Participant._join of a direct call: the leg is made in the meeting's Router, then answered."""
        plain = await _router(router).add_plain_peer(participant_id, host=self.gateway.media_host)
        self.peer = plain
        self.answer = self._negotiate(plain)
        return _LegPort(plain)

    async def _move_leg(self, router: RouterPort, participant_id: str) -> PeerPort:
        """Participant._join of a call that went through the IVR: its leg moves into the meeting's Router."""
        target = _router(router)
        adopt: Callable[[PlainPeer, str], Awaitable[PlainPeer]] | None = getattr(
            target, "adopt_plain_peer", None
        )
        if adopt is None or self.peer is None:
            raise RuntimeError("the SFU cannot move a SIP leg into a meeting yet (Router.adopt_plain_peer)")
        self._stop_player()
        self.peer = await adopt(self.peer, participant_id)
        return _LegPort(self.peer)

    def _seated(self, participant: Participant) -> None:
        self.participant = participant
        participant.on_left = self._participant_left

    async def _joined(self) -> None:
        participant, peer = self.participant, self.peer
        assert participant is not None and peer is not None
        self.state = "joined"
        self._stop_player()
        conference = participant.conference
        router = conference.router
        if router is not None:
            self.gateway.mix(router, participant.id, self.codec, peer)
        if self.record_id is not None and conference.meeting_id is not None:
            await records.joined(
                self.gateway.db,
                self.record_id,
                meeting_id=conference.meeting_id,
                account_id=conference.room.account_id,
                meeting_number=conference.room.meeting_number,
                participant_id=participant.id,
                now=self.gateway.scheduler.now(),
            )
        self.log.info("joined meeting %s as %s", conference.room.meeting_number, participant.id)

    def _participant_left(self, reason: LeaveReason) -> None:
        if self.state in ("joined", "lobby"):
            self.finish(f"participant_{reason.value}" if reason is not LeaveReason.LEFT else "left")

    # --- the IVR ---

    def _digit(self, digit: str, path: str) -> None:
        now = self.gateway.scheduler.now()
        if not self._digits.digit(digit, path, now):
            return
        self.digits.append(digit)
        if self._ivr is None:
            return
        if self._ivr.collecting:
            self._prompt = []  # barge-in: typing stops the prompt
        self._act(self._ivr.digit(digit, now))

    def _act(self, actions: list[Any]) -> None:
        for action in actions:
            match action:
                case Play(prompt=prompt):
                    self._play_prompt(self.gateway.prompts.get(prompt, self.codec))
                case Attempt(meeting_number=number, passcode=passcode):
                    self.meeting_number = number
                    self._spawn(self._attempt(passcode), "sip-ivr-attempt")
                case Goodbye(reason=reason, prompt=prompt):
                    self._spawn(self._goodbye(reason, prompt), "sip-ivr-goodbye")
        self._arm_ivr_timer()

    def _arm_ivr_timer(self) -> None:
        if self._ivr_timer is not None:
            self._ivr_timer.cancel()
            self._ivr_timer = None
        deadline = None if self._ivr is None else self._ivr.deadline()
        if deadline is not None:
            self._ivr_timer = self.gateway.scheduler.call_at(deadline, self._ivr_tick)

    def _ivr_tick(self) -> None:
        self._ivr_timer = None
        if self._ivr is not None:
            self._act(self._ivr.tick(self.gateway.scheduler.now()))

    async def _attempt(self, passcode: str | None) -> None:
        assert self._ivr is not None
        try:
            participant = await self.gateway.meetings.admit_sip(self._join_request(passcode, True))
        except JoinRefused as exc:
            self.log.info("IVR attempt refused: %s", exc.code.value)
            self._act(self._ivr.refused(_REFUSALS.get(exc.code, Refusal.OTHER), self.gateway.scheduler.now()))
            return
        self._seated(participant)
        if participant.in_lobby:
            self.state = "lobby"
            self._act(self._ivr.waiting())
        if await participant.wait_joined():
            self._act(self._ivr.joined())
            await self._joined()
        elif self.state != "ended":
            self._act(self._ivr.refused(Refusal.OTHER, self.gateway.scheduler.now()))

    async def _goodbye(self, reason: str, prompt: str | None) -> None:
        for name in [*([prompt] if prompt and prompt != "goodbye" else []), "goodbye"]:
            encoded = self.gateway.prompts.get(name, self.codec)
            self._play_prompt(encoded)
            await self._wait_prompt(encoded)
        self.finish(reason)

    def _play_prompt(self, prompt: EncodedPrompt) -> None:
        self._prompt = list(prompt.frames)
        self._prompt_done.clear()

    async def _wait_prompt(self, prompt: EncodedPrompt) -> None:
        # The player drains self._prompt at 20 ms a frame and says when it is out; the bound covers a player
        # that stopped (the call moved into its meeting meanwhile).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._prompt_done.wait(), prompt.seconds + 1)

    async def _play(self) -> None:
        """Paces the IVR's audio: the current prompt's frames, else comfort silence, every 20 ms."""
        loop = asyncio.get_running_loop()
        silence = self.gateway.prompts.silence(self.codec)
        samples = 960 if self.codec == "opus" else 160
        next_at = loop.time()
        while True:
            peer = self.peer
            if peer is not None:
                frame = self._prompt.pop(0) if self._prompt else silence
                if not self._prompt:
                    self._prompt_done.set()
                peer.send_audio(frame, samples)
            next_at += FRAME
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def _stop_player(self) -> None:
        if self._player is not None:
            self._player.cancel()
            self._player = None
        self._prompt = []

    # --- media events ---

    def _on_audio(self, payload: bytes, pt: int, timestamp: int) -> None:
        self._last_rtp = self.gateway.scheduler.now()
        self.audio_packets += 1
        participant = self.participant
        if self.state == "joined" and participant is not None:
            self.gateway.audio_in(participant, payload, pt, timestamp)

    def _on_info(self, content_type: str, body: bytes) -> None:
        digit = info_digit(content_type, body)
        if digit is not None:
            self._digit(digit, "info")
        elif b"picture_fast_update" in body:
            self._send_slate()
            if self.peer is not None:
                self.peer.keyframe_wanted_by_terminal()

    def _want_keyframe(self) -> None:
        """The SFU needs a keyframe from a terminal that takes neither FIR nor PLI: SIP INFO."""
        self._spawn(self.sip.send_info("application/media_control+xml", FAST_UPDATE), "sip-fpu")

    def _send_slate(self) -> None:
        """The slate while nothing else is forwarded to the terminal (the peer decides), every second."""
        if self.peer is not None and not self.peer.closed:
            self.peer.send_slate(self.gateway.slate)
        scheduler = self.gateway.scheduler
        self._timers.append(scheduler.call_at(scheduler.now() + timedelta(seconds=1), self._slate_tick))

    def _slate_tick(self) -> None:
        self._timers = self._timers[-4:]
        if self.state != "ended":
            self._send_slate()

    def _watch_silence(self) -> None:
        scheduler = self.gateway.scheduler
        timeout = self.gateway.silence_timeout
        check = min(timeout, timedelta(seconds=5))

        def tick() -> None:
            if self.state == "ended":
                return
            now = scheduler.now()
            if self.on_hold or self._last_rtp is None:
                self._last_rtp = now
            elif now - self._last_rtp >= timeout:
                self.log.info("no RTP from the terminal for %s; hanging up", timeout)
                self.finish("silence")
                return
            self._timers.append(scheduler.call_at(now + check, tick))

        self._timers.append(scheduler.call_at(scheduler.now() + check, tick))

    # --- ending ---

    def _on_end(self, reason: CallEnded) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    def finish(self, reason: str) -> None:
        """End the call from our side (BYE); the call's task then cleans up."""
        if not self._ended.done():
            self._ended.set_result(reason)
            self._spawn(self._hangup(), "sip-hangup")

    async def _wait_end(self) -> str:
        ended: asyncio.Future[str] = asyncio.ensure_future(self._sip_ended())
        try:
            await asyncio.wait([ended, self._ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        return self._ended.result() if self._ended.done() else str(ended.result())

    async def _sip_ended(self) -> str:
        return str(await self.sip.wait_ended())

    async def _reject(self, status: int, phrase: str, warning: str) -> None:
        host = self.gateway.sip_host
        text = warning.replace('"', "'")[:200]
        await self.sip.reject(status, phrase, [("Warning", f'399 {host} "{text}"')])

    async def _hangup(self) -> None:
        try:
            await self.sip.hangup()
        except Exception:
            self.log.exception("hanging up failed")

    async def _cleanup(self, reason: str) -> None:
        self.state = "ended"
        if not self._ended.done():
            self._ended.set_result(reason)
        self._stop_player()
        for timer in [*self._timers, self._ivr_timer]:
            if timer is not None:
                timer.cancel()
        if self.record_id is not None:
            # First: the record must say how the call ended even if what follows is cut short.
            try:
                await records.ended(
                    self.gateway.db, self.record_id, reason=reason, now=self.gateway.scheduler.now()
                )
            except Exception:
                self.log.exception("closing the call record failed")
        if self.participant is not None:
            self.gateway.unmix(self.participant)
            await self.participant.close(LeaveReason.LEFT)
        if self._ivr_router is not None:
            await self._ivr_router.close()
        elif self.peer is not None and self.participant is None:
            await self.peer.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            if not task.done() and task.get_name() != "sip-hangup":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.log.info("SIP call ended: %s", reason)

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        async def run() -> Any:
            return await coroutine

        task = asyncio.create_task(run(), name=f"{name}:{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _LegPort:
    """A SIP leg as the Participant's peer: only what the Conference asks of a peer that is not WebRTC."""

    def __init__(self, peer: PlainPeer) -> None:
        self._peer = peer

    async def answer_publish(self, offer_sdp: str, sources: dict[str, str]) -> str:
        raise RuntimeError("a SIP leg negotiates over SIP")

    async def create_subscribe_offer(self) -> str:
        raise RuntimeError("a SIP leg negotiates over SIP")

    def subscribe_mids(self) -> dict[str, str]:
        return {}

    async def accept_subscribe_answer(self, answer_sdp: str) -> None:
        raise RuntimeError("a SIP leg negotiates over SIP")

    async def add_remote_candidate(self, pc: Any, candidate: str, sdp_mid: Any, sdp_mline_index: Any) -> None:
        return None

    def set_forwarding(self, track_id: str, enabled: bool) -> None:
        forwarding = getattr(self._peer, "set_forwarding", None)
        if forwarding is not None:
            forwarding(track_id, enabled)

    async def restart(self, pc: Any) -> None:
        return None

    def set_max_size(self, track_id: str, width: int, height: int) -> None:
        return None

    async def close(self) -> None:
        await self._peer.close()


def _router(router: RouterPort) -> Router:
    from sfu.router import Router

    if not isinstance(router, Router):
        raise TypeError("SIP legs need the SFU's Router")
    return router


def _describe(line: sdp.MediaLine | None) -> str:
    if line is None or not line.codecs:
        return ""
    codec = line.codecs[0]
    text = f"{codec.name}/{codec.clock_rate}"
    if line.h264 is not None:
        text += f" {line.h264.profile_level_id} mode {codec.param('packetization-mode', '0')}"
    return text

"""The IVR lobby: a room terminal types the meeting number (and passcode) on its remote.

``Ivr`` is a state machine on an injected clock: it is fed digits (``DigitCollector`` merges RFC 4733 events
from the PlainPeer and SIP INFO digits) and the outcomes of join attempts, and answers with actions that the
call (signaling/sip/call.py) carries out: play a prompt, try to join, say goodbye and hang up. It never
waits and never touches the network, so every rule (``#`` ends input, 5 s between digits, 3 attempts) is
unit-tested without sleeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from signaling.sip.dialplan import Destination, Direct

__all__ = [
    "Attempt",
    "DigitCollector",
    "Goodbye",
    "Ivr",
    "IvrRules",
    "Play",
    "Refusal",
    "info_digit",
]

MAX_DIGITS = 20
# A digit that arrives by the other path (RFC 4733 and INFO) this soon after the same digit is the same key
# press: some terminals are configured to send both.
_SAME_PRESS = timedelta(milliseconds=200)
_RELAY_SIGNAL = re.compile(r"^\s*signal\s*=\s*(\S)", re.IGNORECASE | re.MULTILINE)
_DIGITS = frozenset("0123456789*#ABCD")


def info_digit(content_type: str, body: bytes) -> str | None:
    """The digit of a SIP INFO request: ``application/dtmf-relay`` ("Signal=5\\r\\nDuration=160", the
    Cisco form) or ``application/dtmf`` (the body is the digit); None for any other INFO."""
    kind = content_type.split(";", 1)[0].strip().lower()
    text = body[:200].decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        match = _RELAY_SIGNAL.search(text)
        digit = match[1].upper() if match else ""
    elif kind == "application/dtmf":
        digit = text.strip().upper()
        # Some send the event number (RFC 4733 numbering) instead of the character.
        digit = {"10": "*", "11": "#"}.get(digit, digit)
    else:
        return None
    return digit if digit in _DIGITS and len(digit) == 1 else None


class DigitCollector:
    """One stream of key presses from both paths, in arrival order, without a press counted twice."""

    def __init__(self) -> None:
        self._last: tuple[str, str, datetime] | None = None  # digit, path, when

    def digit(self, digit: str, path: str, now: datetime) -> bool:
        """True if ``digit`` (from ``path``: "rtp" or "info") is a new key press."""
        last = self._last
        self._last = (digit, path, now)
        return not (last is not None and last[0] == digit and last[1] != path and now - last[2] < _SAME_PRESS)


@dataclass(frozen=True, slots=True)
class IvrRules:
    digit_timeout: timedelta = timedelta(seconds=5)  # between digits: then the input ends as if by `#`
    no_input_timeout: timedelta = timedelta(seconds=15)  # after a prompt, with nothing typed
    attempts: int = 3


class Refusal(StrEnum):
    """Why a join attempt failed, as the call layer reports it (from rooms.policy and signaling)."""

    NO_SUCH_MEETING = "no_such_meeting"
    WRONG_PASSCODE = "wrong_passcode"
    NOT_OPEN = "not_open"
    CLOSED = "closed"
    FULL = "full"
    LOCKED = "locked"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    OTHER = "other"


# Refusals after which typing again cannot help: say why, then goodbye.
_FINAL = {
    Refusal.NOT_OPEN: "not_open",
    Refusal.CLOSED: "closed",
    Refusal.FULL: "full",
    Refusal.LOCKED: "locked",
    Refusal.TOO_MANY_ATTEMPTS: "try_later",
    Refusal.OTHER: "goodbye",
}


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``prompt`` (signaling/sip/prompts/<prompt>.<language>.opus), cutting off the one playing."""

    prompt: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """Try to join ``meeting_number`` with ``passcode`` (None: none typed yet); report with ``joined``,
    ``waiting`` or ``refused``."""

    meeting_number: str
    passcode: str | None


@dataclass(frozen=True, slots=True)
class Goodbye:
    """Play ``prompt`` (if any) and then "goodbye", then hang up; ``reason`` goes into the call record."""

    reason: str
    prompt: str | None = None


Action = Play | Attempt | Goodbye


class Step(StrEnum):
    MEETING = "meeting"  # collecting the meeting number
    PASSCODE = "passcode"  # collecting the passcode
    CHECKING = "checking"  # an Attempt is out
    WAITING = "waiting"  # in the meeting's lobby
    DONE = "done"  # joined, or saying goodbye


@dataclass
class Ivr:
    """The dialogue of one call; start with ``start(now)``."""

    destination: Destination
    rules: IvrRules = field(default_factory=IvrRules)
    step: Step = Step.MEETING
    meeting_number: str | None = None
    _typed: str = ""
    _last_input: datetime | None = None  # the last digit, or the last prompt when nothing was typed since
    _meeting_failures: int = 0
    _passcode_failures: int = 0
    _tried_passcode: str | None = None  # the passcode of the Attempt out (None: none was typed)

    def start(self, now: datetime) -> list[Action]:
        if isinstance(self.destination, Direct):
            self.meeting_number = self.destination.meeting_number
            return self._attempt(self.destination.passcode)
        return self._ask(Step.MEETING, "welcome", now)

    @property
    def collecting(self) -> bool:
        return self.step in (Step.MEETING, Step.PASSCODE)

    def deadline(self) -> datetime | None:
        """When ``tick`` must next be called (None: no timer runs)."""
        if not self.collecting or self._last_input is None:
            return None
        wait = self.rules.digit_timeout if self._typed else self.rules.no_input_timeout
        return self._last_input + wait

    def digit(self, digit: str, now: datetime) -> list[Action]:
        """A key press. ``#`` ends the input, ``*`` clears it; digits outside a prompt are ignored."""
        if not self.collecting:
            return []
        self._last_input = now
        if digit == "#":
            return self._submit(now) if self._typed else []
        if digit == "*":
            self._typed = ""
            return []
        if not digit.isalnum():
            return []
        self._typed += digit
        return self._submit(now) if len(self._typed) >= MAX_DIGITS else []

    def tick(self, now: datetime) -> list[Action]:
        """The clock reached ``deadline()``: end the input typed so far, or re-prompt after silence."""
        due = self.deadline()
        if due is None or now < due:
            return []
        if self._typed:
            return self._submit(now)
        # Nothing typed: the prompt again, counted as a failed attempt so a silent call does end.
        if self.step is Step.MEETING:
            return self._failed_meeting(now, "welcome")
        return self._failed_passcode(now, "passcode")

    # --- outcomes of an Attempt ---

    def joined(self) -> list[Action]:
        self.step = Step.DONE
        return []

    def waiting(self) -> list[Action]:
        """Seated in the meeting's lobby: tell the room why nothing happens yet."""
        self.step = Step.WAITING
        return [Play("lobby")]

    def refused(self, refusal: Refusal, now: datetime) -> list[Action]:
        if self.step not in (Step.CHECKING, Step.WAITING):
            return []
        if refusal is Refusal.NO_SUCH_MEETING:
            return self._failed_meeting(now, "unknown_meeting")
        if refusal is Refusal.WRONG_PASSCODE:
            if self._tried_passcode is None:
                # Dialled `meeting@` (or typed the number) for a room with a passcode: ask for it.
                return self._ask(Step.PASSCODE, "passcode", now)
            return self._failed_passcode(now, "wrong_passcode")
        self.step = Step.DONE
        return [Goodbye(refusal.value, _FINAL[refusal])]

    # --- internals ---

    def _ask(self, step: Step, prompt: str, now: datetime) -> list[Action]:
        self.step = step
        self._typed = ""
        self._last_input = now
        return [Play(prompt)]

    def _submit(self, now: datetime) -> list[Action]:
        typed, self._typed = self._typed, ""
        if self.step is Step.MEETING:
            self.meeting_number = typed
            return self._attempt(None)
        return self._attempt(typed)

    def _attempt(self, passcode: str | None) -> list[Action]:
        assert self.meeting_number is not None
        self.step = Step.CHECKING
        self._tried_passcode = passcode
        return [Attempt(self.meeting_number, passcode)]

    def _failed_meeting(self, now: datetime, prompt: str) -> list[Action]:
        self._meeting_failures += 1
        self.meeting_number = None
        self._passcode_failures = 0
        if self._meeting_failures >= self.rules.attempts:
            self.step = Step.DONE
            return [Goodbye("ivr_failed", prompt)]
        return self._ask(Step.MEETING, prompt, now)

    def _failed_passcode(self, now: datetime, prompt: str) -> list[Action]:
        self._passcode_failures += 1
        if self._passcode_failures >= self.rules.attempts:
            self.step = Step.DONE
            return [Goodbye("ivr_failed", prompt)]
        return self._ask(Step.PASSCODE, prompt, now)

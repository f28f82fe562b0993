"""Debian's baresip 1.0 as a room terminal in tests: a temp config dir, control over its ctrl_tcp module.

``Baresip.start`` writes ``config`` into a fresh directory, starts ``baresip -f DIR`` with its output
captured to ``baresip.log``, waits until the ctrl_tcp port answers and adds the account (``uanew``).
Commands (``dial``, ``hangup``, ``callstat``, ``quit``) go over ctrl_tcp as netstring JSON; the events it
pushes (REGISTER_OK, CALL_ESTABLISHED, CALL_CLOSED, ...) are kept in ``events``. ``close`` asks it to
quit (BYE, un-REGISTER) and kills it by PID if it has not exited after a bound.

Media: ``audio_source aufile,<tone.wav>`` (a sine made here), the sndfile module's ``dump-*-dec.wav``
(``rx_wav``: what baresip decoded, analysed with ``peak_frequency``), ``video_source avformat,<clip.mp4>``
(an ffmpeg test pattern, ``make_clip``) or ``fakevideo``, ``video_display fakevideo`` (decodes, shows
nothing; the decoded frame rate is in its status line, ``status``; its keyframe count in the log when the
call ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import require_tool

MODULES = (
    "g711",
    "g722",
    "opus",
    "aufile",
    "avcodec",
    "avformat",
    "fakevideo",
    "srtp",
    "ctrl_tcp",
    "sndfile",
)
WAIT = 15.0


def make_tone(
    path: Path, frequency: float, seconds: float = 60.0, rate: int = 8000, amplitude: float = 0.3
) -> Path:
    """A mono 16-bit sine wav (baresip's aufile source plays it once, so make it longer than the call)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


async def make_clip(path: Path, size: str = "640x360", fps: int = 15, seconds: int = 20) -> Path:
    """An H.264 test-pattern mp4 (video only: baresip 1.0's avformat aborts on some files with audio)."""
    ffmpeg = require_tool("ffmpeg")
    process = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds), "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps), str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode(errors="replace")
    return path


def read_wav(path: Path) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """(mono samples in [-1, 1], sample rate) of a 16-bit wav baresip's aufile player wrote."""
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data, rate


def peak_frequency(samples: np.ndarray[Any, np.dtype[np.float64]], rate: int) -> float:
    """The strongest frequency of a signal (Hann window, FFT), in Hz."""
    assert len(samples) > rate // 10, f"only {len(samples)} samples"
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[: int(50 * len(samples) / rate)] = 0  # DC and hum
    return float(np.argmax(spectrum) * rate / len(samples))


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _write_config(  # noqa: PLR0917
    directory: Path,
    ctrl_port: int,
    audio_source: Path | None,
    video_source: str,
    video_size: str,
    video_fps: int,
    video_bitrate: int,
    cafile: Path | None,
    extra_config: str,
) -> None:
    """baresip's ``config`` (and an empty ``accounts``) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tone = audio_source or make_tone(directory / "tone.wav", 440.0)
    lines = [
        ("poll_method", "epoll"),
        ("sip_listen", "127.0.0.1:0"),
        ("call_local_timeout", "30"),
        # baresip 1.0's aufile is a source only: the sndfile filter writes what was decoded (*-dec.wav).
        ("snd_path", str(directory)),
        ("audio_source", f"aufile,{tone}"),
        ("audio_alert", "aufile,/dev/null"),
        ("ausrc_srate", "8000"),
        ("ausrc_channels", "1"),
        ("auplay_srate", "8000"),
        ("auplay_channels", "1"),
        ("video_source", video_source),
        ("video_display", "fakevideo,nil"),
        ("video_size", video_size),
        ("video_bitrate", str(video_bitrate)),
        ("video_fps", str(video_fps)),
        ("rtcp_mux", "no"),
        ("net_interface", "127.0.0.1"),
        ("module_path", "/usr/lib/baresip/modules"),
        *[("module", f"{m}.so") for m in MODULES],
        ("module_tmp", "account.so"),
        ("module_app", "menu.so"),
        ("ctrl_tcp_listen", f"127.0.0.1:{ctrl_port}"),
        ("avcodec_h264enc", "libx264"),
        ("avcodec_h264dec", "h264"),
    ]
    if cafile is not None:
        lines.append(("sip_cafile", str(cafile)))
    config = "".join(f"{k}\t\t{v}\n" for k, v in lines) + extra_config
    (directory / "config").write_text(config)
    # The account is added over ctrl_tcp once connected (uanew): then its REGISTER_OK event is seen.
    (directory / "accounts").write_text("")


@dataclass
class Account:
    """One line of baresip's ``accounts`` file."""

    aor: str  # e.g. sip:poly-x30@127.0.0.1:5060;transport=tcp
    password: str | None = None
    regint: int = 300  # 0: no REGISTER
    answermode: str = "manual"  # "auto" for dial-out tests
    mediaenc: str | None = None  # "srtp-mand", "srtp"
    audio_codecs: str = "PCMU,G722/16000/1"
    # None: all of baresip's video codecs. "H264" alone would offer only its first H.264 entry, which is
    # packetization-mode 0 (a browser's mode-1 camera cannot be forwarded to that).
    video_codecs: str | None = None
    outbound: str | None = None  # e.g. sip:127.0.0.1:5061;transport=tls

    def line(self) -> str:
        params = [f"regint={self.regint}", f"answermode={self.answermode}"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.mediaenc is not None:
            params.append(f"mediaenc={self.mediaenc}")
        params.append(f"audio_codecs={self.audio_codecs}")
        if self.video_codecs is not None:
            params.append(f"video_codecs={self.video_codecs}")
        if self.outbound is not None:
            params.append(f'outbound="{self.outbound}"')
        return f"<{self.aor}>;" + ";".join(params)


@dataclass
class Baresip:
    """A running baresip process (use ``start``); ``close`` stops it and is idempotent."""

    directory: Path
    process: asyncio.subprocess.Process
    ctrl_port: int
    events: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _pump: asyncio.Task[None] | None = None
    _responses: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: bool = False

    @property
    def rx_wav(self) -> Path:
        """The audio baresip decoded in its last call (the sndfile module's ``dump-*-dec.wav``)."""
        dumps = sorted(self.directory.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        assert dumps, f"no decoded audio in {self.directory}: {sorted(self.directory.iterdir())}"
        return dumps[-1]

    @property
    def log_path(self) -> Path:
        return self.directory / "baresip.log"

    @classmethod
    async def start(
        cls,
        directory: Path,
        account: Account,
        *,
        audio_source: Path | None = None,
        video_source: str = "fakevideo,nil",
        video_size: str = "640x360",
        video_fps: int = 15,
        video_bitrate: int = 500_000,
        cafile: Path | None = None,
        extra_config: str = "",
    ) -> Baresip:
        """Write the config into ``directory`` (created) and start baresip; returns once ctrl_tcp answers.

        ``video_source`` is a baresip vidsrc value: "avformat,<file>" (see make_clip) or "fakevideo,nil".
        ``cafile``: the CA (or self-signed certificate) baresip verifies a TLS server with."""
        binary = require_tool("baresip")
        ctrl_port = _free_tcp_port()
        _write_config(
            directory, ctrl_port, audio_source, video_source, video_size, video_fps, video_bitrate, cafile,
            extra_config,
        )  # fmt: skip
        log = (directory / "baresip.log").open("wb")
        try:
            process = await asyncio.create_subprocess_exec(
                binary, "-f", str(directory), "-v",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                cwd=directory,
            )  # fmt: skip
        finally:
            log.close()
        terminal = cls(directory, process, ctrl_port)
        try:
            await terminal._connect()
            await terminal.command("uanew", account.line())
        except BaseException:
            await terminal.close()
            raise
        return terminal

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            if self.process.returncode is not None:
                raise AssertionError(f"baresip exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                break
            except OSError:
                if loop.time() > deadline:
                    raise AssertionError(f"baresip's ctrl_tcp did not open:\n{self.log()[-3000:]}") from None
                await asyncio.sleep(0.05)  # polling a port of a process that is starting (bounded)
        self._pump = asyncio.create_task(self._read_messages())

    async def _read_messages(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = int((await self._reader.readuntil(b":"))[:-1])
                body = await self._reader.readexactly(size + 1)  # the netstring's trailing comma
                message = json.loads(body[:-1])
                if message.get("event"):
                    self.events.append(message)
                    self._changed.set()
                elif message.get("response"):
                    self._responses.put_nowait(message)

    async def command(self, command: str, params: str = "") -> str:
        """A menu command over ctrl_tcp (e.g. "dial", "hangup", "callstat"); returns its text output."""
        assert self._writer is not None
        async with self._lock:
            body = json.dumps({"command": command, "params": params, "token": command}).encode()
            self._writer.write(str(len(body)).encode() + b":" + body + b",")
            await self._writer.drain()
            response = await asyncio.wait_for(self._responses.get(), WAIT)
        assert response.get("ok"), f"baresip {command} {params}: {response}"
        return str(response.get("data", ""))

    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def hangup(self) -> None:
        await self.command("hangup")

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, within: float = WAIT
    ) -> dict[str, Any]:
        """The first pushed event (past or future) that ``predicate`` accepts, e.g. type CALL_ESTABLISHED."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            if self.process.returncode is not None:
                raise AssertionError(f"baresip exited before {what}:\n{self.log()[-3000:]}")
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"baresip: no {what} within {within} s; events {self.events}\n{self.log()[-3000:]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_type(self, kind: str, within: float = WAIT) -> dict[str, Any]:
        return await self.wait_event(lambda e: e.get("type") == kind, kind, within)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_registered(self, within: float = WAIT) -> dict[str, Any]:
        """The REGISTER_OK event of the account (its REGISTER got a 200)."""
        return await self.wait_type("REGISTER_OK", within)

    def status(self) -> Status | None:
        """The last status line baresip printed for its call (once a second), None before any."""
        found = _STATUS.findall(self.log())
        if not found:
            return None
        return Status(*(float(x) for x in found[-1]))

    async def callstat(self) -> CallStat:
        return CallStat.parse(await self.command("callstat"))

    async def close(self) -> None:
        """Quit (BYE and un-REGISTER), bounded; then kill by PID. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.process.returncode is None and self._writer is not None:
            with contextlib.suppress(OSError, AssertionError, TimeoutError):
                body = json.dumps({"command": "quit", "token": "quit"}).encode()
                self._writer.write(str(len(body)).encode() + b":" + body + b",")
                await self._writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 3)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


_STREAM = re.compile(
    r"(audio|video)\s+Transmit:\s+Receive:(.*?)(?=\n\s*(?:audio|video)\s+Transmit:|\Z)", re.S
)


_STATUS = re.compile(r"audio=(\d+)/(\d+) video=(\d+)/(\d+) \(bit/s\) efps=([\d.]+)/([\d.]+)")


@dataclass(frozen=True)
class Status:
    """baresip's status line: bit rates (tx/rx) and effective frame rates (tx/rx, decoded frames)."""

    audio_tx: float
    audio_rx: float
    video_tx: float
    video_rx: float
    fps_tx: float
    fps_rx: float


@dataclass(frozen=True)
class CallStat:
    """What ``callstat`` says about the current call (baresip 1.0's call_debug text)."""

    text: str

    @classmethod
    def parse(cls, text: str) -> CallStat:
        return cls(text)

    def number(self, pattern: str) -> int:
        """The first integer after ``pattern`` (a regex) in the text, 0 if absent."""
        match = re.search(pattern + r"\D*(\d+)", self.text)
        return int(match.group(1)) if match else 0

"""RtmpPush: the channel's segments pushed to an RTMP URL by ffmpeg, restarted with back-off when it drops.

ffmpeg reads the segments as one MPEG-TS stream on its stdin (segments are self-contained TS, so their bytes
concatenate into a valid stream) and copies H.264 and AAC into FLV (its flv muxer adds ``aac_adtstoasc``
itself): no second encode, and the push is as late as the HLS segments and no later. When the receiver
drops, ffmpeg exits; the push waits ``rtmp_backoff_min_s`` (doubling up to ``rtmp_backoff_max_s``; a run that
lasted ``rtmp_healthy_s`` starts over at the minimum) and starts again at the next segment, which begins
with a keyframe. The push is one owned task, cancelled and awaited by ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from recording.live.settings import LiveSettings

log = logging.getLogger(__name__)


def push_argv(ffmpeg: str, url: str) -> list[str]:
    """ffmpeg reading MPEG-TS on stdin and pushing it to `url` as FLV, streams copied."""
    return [
        ffmpeg,
        "-hide_banner",
        "-v",
        "error",
        "-analyzeduration",
        "0",
        "-probesize",
        "500000",
        "-f",
        "mpegts",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-c",
        "copy",
        "-f",
        "flv",
        "-flvflags",
        "no_duration_filesize",
        url,
    ]


def next_backoff(current: float, ran_for: float, settings: LiveSettings) -> float:
    """The wait before the next start: doubled after a short run, the minimum again after a healthy one."""
    if ran_for >= settings.rtmp_healthy_s:
        return settings.rtmp_backoff_min_s
    return min(max(current * 2, settings.rtmp_backoff_min_s), settings.rtmp_backoff_max_s)


class RtmpPush:
    """One channel's RTMP push. ``feed(path)`` (on the event loop) for each new segment."""

    def __init__(
        self, url: str, directory: Path, settings: LiveSettings, *, clock: Callable[[], float]
    ) -> None:
        self.url = url
        self.directory = directory
        self.settings = settings
        self._clock = clock
        self._queue: deque[Path] = deque(maxlen=8)  # segments not yet written into ffmpeg
        self._more = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._finishing = False
        self.state = "waiting"
        self.starts = 0
        self.segments_pushed = 0
        self.last_error = ""
        self.backoff = 0.0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"rtmp:{self.directory.name}")

    def feed(self, path: Path) -> None:
        if self._task is not None and not self._finishing:
            self._queue.append(path)
            self._more.set()

    async def finish(self) -> None:
        """The channel ended: push what is queued, then let ffmpeg close the stream (bounded)."""
        self._finishing = True
        self._more.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)

    async def close(self) -> None:
        """Stop the push (idempotent): the task is cancelled and awaited, ffmpeg killed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._kill()
        self.state = "closed"

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff:
                self.state = "waiting"
                self.backoff = backoff
                await asyncio.sleep(backoff)  # the owned task's back-off, not a test's wait
            started = self._clock()
            self.state = "connecting"
            self.starts += 1
            ok = await self._push_once()
            if self._finishing and ok:
                self.state = "ended"
                return
            backoff = next_backoff(backoff, self._clock() - started, self.settings)

    async def _push_once(self) -> bool:
        """One ffmpeg run; True when it ended because the channel ended."""
        # Start at the newest segment: a restart must not replay what the receiver already had.
        while len(self._queue) > 1:
            self._queue.popleft()
        proc = await asyncio.create_subprocess_exec(
            *push_argv(self.settings.ffmpeg, self.url),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        assert proc.stdin is not None
        try:
            while True:
                if not self._queue:
                    if self._finishing:
                        proc.stdin.close()
                        await asyncio.wait_for(proc.wait(), timeout=10)
                        return True
                    self._more.clear()
                    waiter = asyncio.create_task(self._more.wait())
                    exited = asyncio.create_task(proc.wait())
                    done, _ = await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    exited.cancel()
                    if exited in done:
                        break
                    continue
                path = self._queue.popleft()
                try:
                    data = await asyncio.to_thread(path.read_bytes)
                except OSError as exc:
                    log.warning("rtmp %s: %s not read: %s", self.url, path.name, exc)
                    continue
                proc.stdin.write(data)
                await proc.stdin.drain()
                self.segments_pushed += 1
                self.state = "pushing"
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            await self._kill()
            if proc.stderr is not None:
                with contextlib.suppress(Exception):
                    tail = await asyncio.wait_for(proc.stderr.read(2000), timeout=1)
                    self.last_error = tail.decode(errors="replace").strip()[-500:]
        if self.last_error:
            log.warning("rtmp %s: ffmpeg stopped: %s", self.url, self.last_error)
        return False

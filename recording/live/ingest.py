"""RtmpIngestInput: an encoder (OBS, a hardware encoder, ffmpeg) pushing RTMP into a channel (worker thread).

One Debian ``ffmpeg -listen 1`` per channel on the channel's own port (docs/decisions.md, "RTMP ingest"):
ffmpeg speaks RTMP and copies the pushed FLV into MPEG-TS on its stdout (``-c copy``: H.264 and AAC are never
transcoded here); a reader thread demuxes that with PyAV, times every packet on the channel's clock (the
first packet of a connection is "now", the rest follow by their timestamps: the encoder's clock) and queues
units the pipeline pulls. The video access units are copied into the segmenter as they are (Annex B from the
TS muxer); the AAC is decoded to PCM for the channel's one AAC encoder, like every other source's audio, so
the output audio never has a gap or an overlap across switches.

The stream key: ffmpeg's listener only logs "Unexpected stream X, expecting Y" for a wrong stream name and
goes on, so the reader watches ffmpeg's log and kills a listener that met a wrong key before anything of it
is read (ffmpeg logs the publish before it opens its output): the encoder's connection is dropped and
nothing reaches the channel. ffmpeg accepts one connection and exits when it ends, so the listener is
started again at once; the next connection's first frame carries a DISCONTINUITY.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import av
import numpy as np

from recording.live.settings import LiveProfile, LiveSettings
from recording.live.sources import RtmpIngestSource
from recording.live.units import AudioUnit, Unit, VideoUnit

log = logging.getLogger(__name__)

# ffmpeg 5.1's log line for a stream name other than the one it listens for (libavformat/rtmpproto.c).
WRONG_KEY = b"Unexpected stream"
ACCEPTED = b"Input #0"
RETRY_S = 1.0  # a listener that could not start (the port taken) is tried again this often


def listen_argv(ffmpeg: str, source: RtmpIngestSource) -> list[str]:
    """The listener: RTMP in on `source`'s port, the pushed H.264 + AAC copied out as MPEG-TS on stdout."""
    url = f"rtmp://{source.bind}:{source.port}/{source.app}/{source.stream_key}"
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-analyzeduration", "500000", "-probesize", "65536",
        "-listen", "1", "-f", "flv", "-i", url,
        "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy",
        "-flush_packets", "1", "-muxdelay", "0", "-f", "mpegts", "pipe:1",
    ]  # fmt: skip


def is_idr(data: bytes) -> bool:
    """Whether an Annex B access unit holds an IDR slice."""
    return any(part and part[0] & 0x1F == 5 for part in data.split(b"\x00\x00\x01")[1:])


class RtmpIngestInput:
    """An RtmpIngestSource in the worker thread; its listener and reader thread start at once (so the encoder
    can connect before the source is on air) and stop in close()."""

    kind = "rtmp"

    def __init__(
        self,
        input_id: int,
        source: RtmpIngestSource,
        settings: LiveSettings,
        profile: LiveProfile,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.input_id = input_id
        self.source = source
        self.label = source.label
        self.settings = settings
        self.profile = profile
        self._clock = clock
        self._units: deque[Unit] = deque()
        self._limit = settings.queue_packets
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.connections = 0  # encoders accepted
        self.refused = 0  # connections with a wrong stream key
        self.dropped = 0
        self.connected = False
        self._last_t = -1e9  # the latest unit time queued
        self._thread = threading.Thread(target=self._run, name=f"rtmp-ingest:{source.port}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------ the pipeline's side
    def start(self, now: float) -> None:
        """Going on air: an encoder sends keyframes on its own (its GOP); nothing to ask."""

    def request_keyframe(self) -> None:
        """An RTMP encoder cannot be asked for a keyframe: segments are cut at its GOP."""

    def pull(self, now: float) -> list[Unit]:
        """The units due at `now`, in decode order."""
        out: list[Unit] = []
        units = self._units
        while units and _key(units[0]) <= now:
            out.append(units.popleft())
        return out

    def close(self) -> None:
        """Stop the listener and the reader thread (idempotent)."""
        self._stop.set()
        self._kill()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    # ------------------------------------------------------------------------------ the reader thread
    def _kill(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def _run(self) -> None:
        argv = listen_argv(self.settings.ffmpeg, self.source)
        while not self._stop.is_set():
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            except OSError as exc:
                log.error("rtmp ingest on port %s: ffmpeg did not start: %s", self.source.port, exc)
                self._stop.wait(RETRY_S)
                continue
            with self._lock:
                self._proc = proc
            if self._stop.is_set():
                self._kill()
            try:
                self._connection(proc)
            except Exception:
                log.exception("rtmp ingest on port %s: the connection failed", self.source.port)
            finally:
                self.connected = False
                self._kill()
                proc.wait()
                for pipe in (proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()

    def _connection(self, proc: subprocess.Popen[bytes]) -> None:
        accepted = threading.Event()
        wrong = threading.Event()
        tail: deque[bytes] = deque(maxlen=5)
        assert proc.stderr is not None and proc.stdout is not None
        watcher = threading.Thread(target=self._watch, args=(proc.stderr, accepted, wrong, tail), daemon=True)
        watcher.start()
        while not accepted.wait(0.1):
            if proc.poll() is not None or self._stop.is_set():
                watcher.join(2)
                if wrong.is_set():
                    self.refused += 1
                elif not self._stop.is_set():
                    log.warning(
                        "rtmp ingest on port %s: the listener stopped: %s",
                        self.source.port,
                        b" | ".join(tail).decode(errors="replace"),
                    )
                    self._stop.wait(RETRY_S)
                return
        if wrong.is_set():  # logged before "Input #0": nothing of this connection is read
            self.refused += 1
            log.warning("rtmp ingest on port %s: a wrong stream key was refused", self.source.port)
            return
        self.connections += 1
        self.connected = True
        log.info("rtmp ingest on port %s: an encoder is connected", self.source.port)
        self._demux(proc.stdout)
        watcher.join(2)

    def _watch(
        self, stderr: IO[bytes], accepted: threading.Event, wrong: threading.Event, tail: deque[bytes]
    ) -> None:
        for line in stderr:
            tail.append(line.strip())
            if WRONG_KEY in line:
                wrong.set()
                self._kill()
            elif line.startswith(ACCEPTED):
                accepted.set()

    def _demux(self, stdout: IO[bytes]) -> None:
        try:
            container: Any = av.open(stdout, mode="r", format="mpegts", options={"probesize": "32768"})
        except (av.FFmpegError, OSError) as exc:
            log.warning("rtmp ingest on port %s: no stream: %s", self.source.port, exc)
            return
        decoder: Any = av.CodecContext.create("aac", "r")
        resampler = av.AudioResampler(
            format="fltp", layout="stereo" if self.profile.audio_channels == 2 else "mono",
            rate=self.profile.audio_rate,
        )  # fmt: skip
        origin: tuple[float, float] | None = None  # (local time, stream seconds) of the first packet
        first_video = True
        try:
            streams = [s for s in container.streams if s.type in ("video", "audio")]
            for packet in container.demux(*streams):
                if self._stop.is_set():
                    break
                stamp = packet.dts if packet.dts is not None else packet.pts
                if stamp is None or not packet.size:
                    continue
                base = float(packet.time_base)
                if origin is None:
                    # A quick reconnect must not land before what the last connection queued (its units
                    # wait out the listener's probing): the new one starts a frame after it.
                    origin = (max(self._clock(), self._last_t + 1 / self.profile.fps), stamp * base)
                local0, first = origin
                if packet.stream.type == "video":
                    pts = packet.pts if packet.pts is not None else stamp
                    data = bytes(packet)
                    unit: Unit = VideoUnit(
                        local0 + pts * base - first, data, is_idr(data),
                        dts=local0 + stamp * base - first, discontinuity=first_video,
                    )  # fmt: skip
                    first_video = False
                    self._queue(unit)
                else:
                    t = local0 + stamp * base - first
                    for frame in decoder.decode(av.Packet(bytes(packet))):
                        for resampled in resampler.resample(frame):
                            pcm = np.asarray(resampled.to_ndarray(), dtype=np.float32)
                            self._queue(AudioUnit(t, pcm, "rtmp"))
                            t += resampled.samples / resampled.sample_rate
        except (av.FFmpegError, OSError) as exc:
            log.info("rtmp ingest on port %s: the encoder left: %s", self.source.port, exc)
        finally:
            with contextlib.suppress(av.FFmpegError):
                container.close()
        log.info("rtmp ingest on port %s: the encoder disconnected", self.source.port)

    def _queue(self, unit: Unit) -> None:
        if len(self._units) >= self._limit:
            self.dropped += 1
            return
        self._last_t = max(self._last_t, unit.t)
        self._units.append(unit)


def _key(unit: Unit) -> float:
    if isinstance(unit, VideoUnit) and unit.dts is not None:
        return unit.dts
    return unit.t

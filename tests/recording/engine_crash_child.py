"""A recorder in its own process for the crash test: synthetic media in real time, "fed N" each second.

Run as ``python -m tests.recording.engine_crash_child DIRECTORY``; the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from recording.recorder import Recorder
from tests.recording.engine_media import FakeClock, Feeder, Participant


async def main(directory: Path) -> None:
    clock = FakeClock()
    recorder = Recorder(directory, clock=clock)
    feeder = Feeder(recorder, clock, [Participant("alice")])
    second = 0

    async def report() -> None:
        nonlocal second
        while True:
            await asyncio.sleep(0.05)
            fed = int(clock.now - recorder.t0)
            if fed > second:
                second = fed
                print(f"fed {fed}", flush=True)

    reporter = asyncio.create_task(report())
    try:
        await feeder.run(60.0, pace=1.0, drain_every=0.1)
    finally:
        reporter.cancel()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))

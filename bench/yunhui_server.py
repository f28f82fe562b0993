"""Yunhui's SFU alone in a process, driven over HTTP like Janus's VideoRoom (see bench/backends.py).

    python -m bench.yunhui_server --port 8090 --ice-address 198.18.0.1 [--profile out.pstats]

Routes (one meeting, "bench"):
    POST   /sfu/whip                WHIP (sfu/whip.py): SDP offer -> 201 SDP answer, Location /sfu/whip/{id}
    POST   /subscribe               -> 201 the SFU's subscribe offer (every track), Location /subscribe/{id}
    POST   /subscribe/{id}          the client's SDP answer -> 204
    DELETE /sfu/whip/{id}, /subscribe/{id}
    GET    /ready                   200 once the SFU exists

The publish side is the product's WHIP endpoint. The subscribe side makes the calls signaling/ makes for a
meeting participant. The process runs on uvloop like ``yunhui serve``; ``--profile`` runs it under cProfile
and writes the stats on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import logging
import signal
from typing import Any

import aioice.ice
from aiohttp import web

from sfu.errors import BadRequest
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from sfu.whip import whip_app

MEETING = "bench"
_SFU = web.AppKey("sfu", Sfu)
_ids = itertools.count(1)


async def subscribe(request: web.Request) -> web.Response:
    sfu = request.app[_SFU]
    participant = f"sub{next(_ids)}"
    peer = await sfu.router(MEETING).add_peer(participant, publish=False)
    offer = await peer.create_subscribe_offer()
    return web.Response(
        status=201,
        text=offer,
        content_type="application/sdp",
        headers={"Location": f"/subscribe/{participant}"},
    )


async def answer(request: web.Request) -> web.Response:
    sfu = request.app[_SFU]
    peer = sfu.router(MEETING).peers.get(request.match_info["id"])
    if peer is None:
        raise web.HTTPNotFound(text="id: no such subscriber")
    try:
        await peer.accept_subscribe_answer(await request.text())
    except BadRequest as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    await request.app[_SFU].router(MEETING).remove_peer(request.match_info["id"])
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(sfu: Sfu) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[_SFU] = sfu
    # The product's WHIP/WHEP endpoints; every session belongs to the one bench meeting.
    app.add_subapp("/sfu", whip_app(sfu, lambda request: MEETING))
    app.router.add_post("/subscribe", subscribe)
    app.router.add_post("/subscribe/{id}", answer)
    app.router.add_delete("/subscribe/{id}", remove)
    app.router.add_get("/ready", ready)

    async def close_sfu(app: web.Application) -> None:
        await sfu.close()

    app.on_cleanup.append(close_sfu)
    return app


async def serve(port: int) -> None:
    sfu = Sfu(SfuSettings())
    runner = web.AppRunner(build_app(sfu), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.yunhui_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ice-address", required=True, help="the one address ICE host candidates use")
    parser.add_argument("--profile", default="", help="write cProfile stats here on exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Same restriction as Janus's ice_enforce_list: host candidates on the benchmark address only.
    address = args.ice_address

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [address]

    aioice.ice.get_host_addresses = host_addresses
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            runner(serve(args.port))
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
    else:
        runner(serve(args.port))


if __name__ == "__main__":
    main()

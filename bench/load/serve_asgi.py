"""Serve an ASGI app with uvicorn on an inherited socket: `python -m bench.load.serve_asgi APP --fd N`.

(uvicorn's own `--fd` takes the socket for a Unix one; this wraps it as the TCP socket it is.)
Protocol h11 and the asyncio loop: what `pip install uvicorn` gives without its extras.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args()
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(
        args.app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=300,
        ws="none",
    )
    profile = os.environ.get("PAYI_LOAD_PROFILE")
    if not profile:
        uvicorn.Server(config).run(sockets=[sock])
        return
    import cProfile  # diagnosis: the event loop thread's profile, written when the server stops

    # uvicorn re-raises SIGTERM after its graceful shutdown, with the handler found at start: exit cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{os.environ.get('PAYI_LOAD', 'on')}")


if __name__ == "__main__":
    main()

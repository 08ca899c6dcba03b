"""Serve the installed ElevenLabs plugin's loopback fake as its own process.

``python -m bench.fake_server --port 8123 --latency 0.3``: every call is answered after
`latency` seconds; the fake records what it received (``GET /_fake/requests``), which is how
the scale-out scenario counts provider calls.
"""

from __future__ import annotations

import argparse

import uvicorn

from bench.servers import UVICORN_OPTIONS, fake_api


def main() -> None:
    """Parse the options and serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    api = fake_api()
    api.latency = args.latency
    backlog = int(UVICORN_OPTIONS[UVICORN_OPTIONS.index("--backlog") + 1])
    uvicorn.run(
        api,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=backlog,
    )


if __name__ == "__main__":
    main()

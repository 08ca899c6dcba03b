"""The `violation-calls` command: serve, demo, db, trips, templates, call, calls, providers.

Exit codes: 0 ok, 1 the operation failed, 2 bad input or configuration; errors are one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import uvicorn

from . import operator_commands
from .cli_call import add_call_command, run_call_command
from .cli_support import BAD_INPUT, FAILED, OK, fail, safe_url, say, with_database
from .cli_templates import add_template_commands, run_template_command
from .config import StartupError, load_settings
from .database import DEFAULT_DATABASE_URL, upgrade_database
from .schemas import ONE_LINE
from .trips import TripImportError, import_trips_csv

#: Bounds of `calls list --limit` and of ids on the command line (as over HTTP).
MAX_LIST_LIMIT = 200
MAX_ID_LENGTH = 64


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        """Print one line saying what is wrong and where the help is, then exit 2."""
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIST_LIMIT}")
    return int(text)


def _one_line(text: str) -> str:
    if not re.fullmatch(ONE_LINE, text) or len(text) > MAX_ID_LENGTH:
        raise argparse.ArgumentTypeError(f"must be one line of at most {MAX_ID_LENGTH} characters")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineErrorParser(prog="violation-calls", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service against the real providers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    demo = commands.add_parser("demo", help="run the service with simulated providers on loopback")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--database-url",
        default=None,
        help="demo database (default var/demo.sqlite3, never DATABASE_URL)",
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the Alembic migrations")

    trips = commands.add_parser("trips", help="trip data")
    trip_commands = trips.add_subparsers(dest="trips_command", required=True)
    trips_import = trip_commands.add_parser("import", help="load trips from a CSV file")
    trips_import.add_argument("file", type=Path)

    add_template_commands(commands)
    add_call_command(commands)

    calls = commands.add_parser("calls", help="what was done for call attempts")
    call_commands = calls.add_subparsers(dest="calls_command", required=True)
    calls_list = call_commands.add_parser("list", help="recent call attempts, newest first")
    calls_list.add_argument("--driver", type=_one_line, help="only this driverId")
    calls_list.add_argument("--limit", type=_limit, default=20, help="at most N (default 20)")
    calls_show = call_commands.add_parser("show", help="one call attempt by our call_sid")
    calls_show.add_argument("call_sid", type=_one_line)

    commands.add_parser(
        "providers", help="installed providers, configured or not, traffic share, rollout"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        # Every command reads the settings: a refused one is one line, not a traceback.
        settings = load_settings()
    except StartupError as e:
        return fail(str(e), BAD_INPUT)
    if args.command == "serve":
        from .main import create_app

        uvicorn.run(create_app(), host=args.host, port=args.port)
        return OK
    if args.command == "demo":
        from .demo import run_demo

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_demo(host=args.host, port=args.port, database_url=args.database_url))
        return OK
    if args.command == "call":
        return run_call_command(args, settings)
    if args.command == "calls" and args.calls_command == "list":
        return operator_commands.list_calls(settings, driver_id=args.driver, limit=args.limit)
    if args.command == "calls":
        return operator_commands.show_call(settings, call_sid=args.call_sid)
    if args.command == "providers":
        return operator_commands.show_providers(settings)
    url = settings.database_url or DEFAULT_DATABASE_URL
    if args.command == "templates":
        return run_template_command(args, url)
    if args.command == "db":
        upgrade_database(url)
        say(f"database at {safe_url(url)} is up to date")
        return OK
    return _import_trips(url, args.file)


def _import_trips(url: str, path: Path) -> int:
    if not path.is_file():
        return fail(f"{path} is not a file", BAD_INPUT)
    upgrade_database(url)
    try:
        count = with_database(url, lambda sessions: import_trips_csv(sessions, path))
    except TripImportError as e:
        return fail(f"nothing imported from {path}:\n{e}", FAILED)
    say(f"imported {count} trips from {path}")
    return OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

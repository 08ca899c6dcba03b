"""Log configuration and the helpers that keep secrets and phone numbers out of logs.

Two formats: ``text`` (default, for a terminal: timestamp, level, logger, request id and the
``===``-framed message) and ``json`` (one object per line with ``severity``, ``message``,
``logger`` and ``request_id``, which Cloud Logging and similar collectors read as they are).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from voice_providers import mask_phone_number

from .request_ids import current_request_id

LogFormat = Literal["text", "json"]

SEPARATOR = "=" * 60
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
#: What `request_id` says on lines logged outside a request (start-up, the sweep).
NO_REQUEST = "-"
_QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "httpcore")
#: uvicorn's loggers get their own handlers; routing them to ours keeps one format per process.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_PHONE_KEYS = frozenset({"phoneNumber", "to_number", "number", "phone_number", "transfer_to"})
#: Marks the handler `configure_logging` installed, so a second call replaces it.
_OURS = "_violation_calls_handler"


def configure_logging(
    level: str, *, log_format: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Stamp every record with the request id and log in `log_format` to stderr (or `stream`).

    When logging was already configured by someone else (a test runner, an embedding
    application) and no `stream` is given, their handlers are left as they are; records still
    carry `request_id`.
    """
    _stamp_request_ids()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
    if stream is not None or not root.handlers:
        root.addHandler(make_handler(log_format, stream=stream))
        root.setLevel(level.upper())
        for name in _SERVER_LOGGERS:
            server_logger = logging.getLogger(name)
            server_logger.handlers = []
            server_logger.propagate = True
    logging.getLogger("violation_calls").setLevel(level.upper())
    logging.getLogger("voice_providers").setLevel(level.upper())
    # Database drivers log SQL parameters (full phone numbers, stored answers) at DEBUG;
    # they stay at WARNING whatever LOG_LEVEL says.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # httpx's INFO line per provider request says less than the call's own ✅/❌ line and cost
    # a record per call; it shows when LOG_LEVEL is DEBUG.
    debug = level.upper() == "DEBUG"
    logging.getLogger("httpx").setLevel(logging.DEBUG if debug else logging.WARNING)
    # The core logs each retry once, as its 🔁 line with the attempt number; stamina's own
    # "stamina.retry_scheduled" (a WARNING) would say the same thing a second time.
    logging.getLogger("stamina").setLevel(logging.ERROR)


def make_handler(log_format: LogFormat, *, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler writing `log_format` lines (stderr unless `stream` is given)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _text_formatter())
    setattr(handler, _OURS, True)
    return handler


def _text_formatter() -> logging.Formatter:
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": NO_REQUEST})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, severity, logger, request_id, message.

    A traceback goes into `message` after the text (where error reporting tools look for it)
    and is also kept apart in `exception`; newlines are escaped, so a record is one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
            "request_id": _request_id_or_none(record),
            "message": message,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
            entry["message"] = f"{message}\n{entry['exception']}"
        elif record.stack_info:
            entry["message"] = f"{message}\n{self.formatStack(record.stack_info)}"
        return json.dumps(entry, ensure_ascii=False, default=str)


def _request_id_or_none(record: logging.LogRecord) -> str | None:
    request_id = getattr(record, "request_id", None)
    return None if request_id in (None, NO_REQUEST) else str(request_id)


def _stamp_request_ids() -> None:
    """Make every new log record carry the current request's id (once per process).

    A record factory rather than a filter on one handler: records are created in the
    request's context, whichever logger and handler then deal with them.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, _OURS, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id() or NO_REQUEST
        return record

    stamped: Callable[..., logging.LogRecord] = factory
    setattr(stamped, _OURS, True)
    logging.setLogRecordFactory(stamped)


def redact(data: Any, *, full_numbers: bool) -> Any:
    """A copy of `data` with phone numbers masked (unless `full_numbers`) for logging."""
    if full_numbers:
        return data
    # `_mask` builds new dicts and lists and shares only immutable leaves: no copy needed.
    return _mask(data)


def _mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: mask_phone_number(v) if k in _PHONE_KEYS and isinstance(v, str) and v else _mask(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_mask(item) for item in data]
    return data


def as_json(data: Any) -> str:
    """Compact, readable JSON for a log line."""
    return json.dumps(data, ensure_ascii=False, default=str)

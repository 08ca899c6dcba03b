"""Keep URL credentials and query strings out of library log lines (httpx, uvicorn access).

httpx logs every request at INFO with the full URL (``user:password@`` included) and uvicorn's
access log prints the query string, where a client may have put its API key. A filter on those
loggers rewrites the record's arguments before any handler or formatter sees them, so the
redaction holds whatever log format is configured.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import httpx

#: Loggers whose records may carry a URL or a request path.
REDACTED_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
)
REDACTED: Final = "***"

_USERINFO: Final = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#\"']*@")
_QUERY: Final = re.compile(r"\?(?P<query>[^\s\"'#]+)")


def redact_url(text: str) -> str:
    """`text` with every ``user:password@`` and every query-string value replaced by ``***``.

    Query parameter names are kept (``?driver_id=***&limit=***``); a piece without ``=`` is
    replaced whole, since it may itself be a key.
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _QUERY.sub(lambda m: "?" + _redact_query(m["query"]), text)


def _redact_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, sep, _ = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if sep else REDACTED)
    return "&".join(pieces)


def _redact_argument(value: object) -> object:
    if isinstance(value, httpx.URL):
        return redact_url(str(value))
    if isinstance(value, str):
        return redact_url(value)
    return value


class UrlRedactionFilter(logging.Filter):
    """Rewrites a record's message and arguments with `redact_url`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place and keep the record."""
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        if isinstance(record.args, tuple):
            # Same length and order: uvicorn's access formatter unpacks the tuple by position.
            record.args = tuple(_redact_argument(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_argument(arg) for key, arg in record.args.items()}
        return True


_FILTER: Final = UrlRedactionFilter()


def install_url_redaction() -> None:
    """Attach the filter to every library logger that prints URLs; safe to call repeatedly."""
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)

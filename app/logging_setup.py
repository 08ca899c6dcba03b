"""Log configuration and the helpers that keep secrets and phone numbers out of logs."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from voice_providers import mask_phone_number

SEPARATOR = "=" * 60
_QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "httpcore")
_PHONE_KEYS = frozenset({"phoneNumber", "to_number", "number", "phone_number", "transfer_to"})


def configure_logging(level: str) -> None:
    """Plain, timestamped lines on stderr; uvicorn's own loggers keep their handlers."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("violation_calls").setLevel(level.upper())
    logging.getLogger("voice_providers").setLevel(level.upper())
    # Database drivers log SQL parameters (full phone numbers, stored answers) at DEBUG;
    # they stay at WARNING whatever LOG_LEVEL says.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # The core logs each retry once, as its 🔁 line with the attempt number; stamina's own
    # "stamina.retry_scheduled" (a WARNING) would say the same thing a second time.
    logging.getLogger("stamina").setLevel(logging.ERROR)


def redact(data: Any, *, full_numbers: bool) -> Any:
    """A copy of `data` with phone numbers masked (unless `full_numbers`) for logging."""
    if full_numbers:
        return data
    return _mask(copy.deepcopy(data))


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

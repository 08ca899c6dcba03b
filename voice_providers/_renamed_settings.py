"""Settings renamed since the service this one replaces: still read, with a warning."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("voice_providers.settings")


def apply_renamed_settings(data: Any, renamed: Mapping[str, str], *, prefix: str) -> Any:
    """Move values given under an old field name to the new one, warning once per name.

    Meant for a provider settings model's ``mode="before"`` validator; the model declares
    each old name as a field too, so the environment and `.env` are read for it. A value set
    under both names keeps the new one.

    Args:
        data: The raw values the settings sources collected, by field name.
        renamed: Old field name to new field name (without the prefix).
        prefix: The provider's environment prefix (``VAPI_``), for the warning.
    """
    if not isinstance(data, dict):
        return data
    for old, new in renamed.items():
        if old not in data:
            continue
        value = data.pop(old)
        if value in (None, ""):
            continue
        old_name, new_name = f"{prefix}{old}".upper(), f"{prefix}{new}".upper()
        if data.get(new) not in (None, ""):
            logger.warning(
                "%s is ignored because %s is set; delete %s", old_name, new_name, old_name
            )
        else:
            data[new] = value
            logger.warning("%s is deprecated; rename it to %s (same meaning)", old_name, new_name)
    return data

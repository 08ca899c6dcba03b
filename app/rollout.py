"""Gradual rollout: send a stable share of drivers to another provider (`VOICE_PROVIDER_ROLLOUT`).

``elevenlabs:10`` sends 10 % of `/driver_data/call` traffic to ElevenLabs and the rest to the
`VOICE_PROVIDER` flag's provider. The share is chosen per driver, not per request: a driver's
`driverId` is hashed (SHA-256, the same on every machine and every run, unlike Python's
`hash()`) into one of 10 000 buckets, and the buckets below the percentage go to the rollout
provider. So one driver keeps one voice while the setting stays, and raising the percentage
only adds drivers (nobody who already moved goes back).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

logger = logging.getLogger("violation_calls.rollout")

#: Buckets a driver id hashes into: percentages are honoured to 0.01.
BUCKETS = 10_000
_SETTING = re.compile(r"(?P<provider>[a-z0-9][a-z0-9_-]*):(?P<percent>\d{1,3}(?:\.\d{1,2})?)")


class InvalidRolloutError(ValueError):
    """`VOICE_PROVIDER_ROLLOUT` is not ``<provider>:<percent>``; the message says how to fix it."""


@dataclass(frozen=True)
class Rollout:
    """A share of `/driver_data/call` traffic that goes to `provider`.

    Args:
        provider: The provider id drivers are moved to.
        percent: How many drivers in a hundred, 0 to 100, to two decimals.
    """

    provider: str
    percent: float

    @property
    def setting(self) -> str:
        """The setting as it would be written."""
        return f"{self.provider}:{self.percent:g}"

    def includes(self, driver_id: str) -> bool:
        """Whether this driver is in the rollout's share."""
        return driver_bucket(driver_id) < round(self.percent * BUCKETS / 100)


def driver_bucket(driver_id: str) -> int:
    """The driver's bucket in ``[0, BUCKETS)``: a stable hash of the id."""
    digest = hashlib.sha256(driver_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def parse_rollout(value: str) -> Rollout | None:
    """Parse ``<provider>:<percent>``; empty means no rollout.

    Raises:
        InvalidRolloutError: The text is not of that form or the percentage exceeds 100.
    """
    text = value.strip().lower()
    if not text:
        return None
    match = _SETTING.fullmatch(text)
    if match is None:
        raise InvalidRolloutError(
            f"VOICE_PROVIDER_ROLLOUT={value!r} must be <provider>:<percent>, "
            "e.g. elevenlabs:10 (or empty for no rollout)"
        )
    percent = float(match["percent"])
    if percent > 100:
        raise InvalidRolloutError(
            f"VOICE_PROVIDER_ROLLOUT={value!r}: the percentage must be between 0 and 100"
        )
    return Rollout(provider=match["provider"], percent=percent)


@dataclass(frozen=True)
class ProviderRouting:
    """Which provider `/driver_data/call` uses for a driver: the flag's, or the rollout's.

    Args:
        default: The `VOICE_PROVIDER` flag.
        rollout: The share moved elsewhere, if any.
    """

    default: str
    rollout: Rollout | None = None

    def provider_for(self, driver_id: str) -> str:
        """The provider id for this driver's calls."""
        rollout = self.rollout
        if rollout is None or rollout.provider == self.default:
            return self.default
        chosen = rollout.provider if rollout.includes(driver_id) else self.default
        logger.info(
            "rollout %s: driver %s goes to %s (bucket %d of %d)",
            rollout.setting,
            driver_id,
            chosen,
            driver_bucket(driver_id),
            BUCKETS,
        )
        return chosen

    def share(self, provider_id: str) -> float:
        """Percentage of `/driver_data/call` traffic `provider_id` gets."""
        rollout = self.rollout
        moved = rollout.percent if rollout and rollout.provider != self.default else 0.0
        if rollout is not None and provider_id == rollout.provider and moved:
            return moved
        return 100.0 - moved if provider_id == self.default else 0.0

"""Phone numbers: normalise what dispatchers type to E.164, then refuse what we must not dial."""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberType

from ._errors import InvalidPhoneNumberError

DEFAULT_ALLOWED_REGIONS = frozenset({"US", "CA"})

#: Numbers that bill the caller extra; an automated dialler must never ring them.
_COSTLY_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
_MAX_INPUT = 64


def normalize_phone_number(raw: str) -> str:
    """Normalise a phone number the way the specification says, without validating it.

    Digits only; ``+1`` is prefixed when the number has no country code (ten digits); a
    country code the caller gave (eleven digits starting with 1, or a leading ``+``) is kept.

    Raises:
        InvalidPhoneNumberError: The input has no digits or is absurdly long.
    """
    if len(raw) > _MAX_INPUT:
        raise InvalidPhoneNumberError("Phone number is too long")
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        raise InvalidPhoneNumberError("Phone number has no digits")
    if text.startswith("+") or text.startswith("00"):
        return "+" + (digits[2:] if text.startswith("00") else digits)
    if len(digits) == 10:
        return "+1" + digits
    return "+" + digits


def vet_phone_number(raw: str, *, allowed_regions: Iterable[str] = DEFAULT_ALLOWED_REGIONS) -> str:
    """Normalise `raw` and check it is a real, allowed, ordinary-rate number.

    Args:
        raw: The number as the front end sent it, in any common format.
        allowed_regions: ISO 3166 region codes we may dial (default US and CA).

    Returns:
        The number in E.164.

    Raises:
        InvalidPhoneNumberError: Its `code` is ``invalid_phone_number``,
            ``region_not_allowed`` or ``premium_rate_number``.
    """
    e164 = normalize_phone_number(raw)
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as e:
        raise InvalidPhoneNumberError("Phone number is not a valid number") from e
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumberError("Phone number is not a valid number")
    region = phonenumbers.region_code_for_number(parsed)
    allowed = {r.strip().upper() for r in allowed_regions}
    if region not in allowed:
        raise InvalidPhoneNumberError(
            f"Phone number is in region {region or 'unknown'}, which is not allowed "
            f"(allowed: {', '.join(sorted(allowed))})",
            code="region_not_allowed",
        )
    if phonenumbers.number_type(parsed) in _COSTLY_TYPES:
        raise InvalidPhoneNumberError(
            "Phone number is premium-rate or shared-cost", code="premium_rate_number"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone_number(number: str) -> str:
    """Everything but the last four digits hidden, for logs."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "+" + "*" * (len(digits) - 4) + digits[-4:]

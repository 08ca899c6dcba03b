"""Phone numbers: normalise what dispatchers type to E.164, then refuse what we must not dial."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberType

from ._errors import InvalidPhoneNumberError

DEFAULT_ALLOWED_REGIONS = frozenset({"US", "CA"})

#: The only kinds of number a driver's phone can be. Everything else is refused: toll-free
#: lines are businesses, personal-communications (5XX) and premium numbers can bill the caller,
#: VoIP/UAN/pager/voicemail numbers (e.g. Canada's non-geographic 600) are not a driver's phone.
_DRIVER_PHONE_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
#: Why other types are refused: error code and sentence.
_REFUSED_TYPES: dict[int, tuple[str, str]] = {
    PhoneNumberType.PREMIUM_RATE: ("premium_rate_number", "premium-rate"),
    PhoneNumberType.SHARED_COST: ("premium_rate_number", "shared-cost"),
    PhoneNumberType.TOLL_FREE: ("toll_free_number", "toll-free, not a driver's phone"),
    PhoneNumberType.PERSONAL_NUMBER: (
        "personal_number",
        "a personal-communications number (area codes 5XX), which can bill the caller",
    ),
    PhoneNumberType.VOIP: ("non_geographic_number", "a non-geographic (VoIP/service) number"),
    PhoneNumberType.UAN: ("non_geographic_number", "a non-geographic (UAN) number"),
}
#: NANP exchanges (the three digits after the area code) that are not ordinary lines.
_PAY_PER_CALL_EXCHANGES = frozenset({"976"})
_SERVICE_CODE_EXCHANGE = re.compile(r"[2-9]11")
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
    """Normalise `raw` and check it is a real, allowed number a driver's phone can be.

    Only libphonenumber's mobile and fixed-line types pass; in the US and Canada the 976
    pay-per-call and N11 service-code exchanges are refused too.

    Args:
        raw: The number as the front end sent it, in any common format.
        allowed_regions: ISO 3166 region codes we may dial (default US and CA).

    Returns:
        The number in E.164.

    Raises:
        InvalidPhoneNumberError: Its `code` says why: ``invalid_phone_number``,
            ``phone_number_extension``, ``region_not_allowed``, ``premium_rate_number``,
            ``toll_free_number``, ``personal_number``, ``non_geographic_number``,
            ``number_type_not_allowed``, ``pay_per_call_exchange`` or
            ``service_code_exchange``.
    """
    return _vetted(raw, frozenset(r.strip().upper() for r in allowed_regions))


@functools.lru_cache(maxsize=4096)
def _vetted(raw: str, allowed: frozenset[str]) -> str:
    # Cached: a fleet's drivers call from the same numbers all day, and libphonenumber's
    # parse, validity and type checks were a tenth of a call's CPU. Refusals raise, so only
    # numbers that passed are remembered.
    _refuse_extension(raw)
    e164 = normalize_phone_number(raw)
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as e:
        raise InvalidPhoneNumberError("Phone number is not a valid number") from e
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumberError("Phone number is not a valid number")
    region = phonenumbers.region_code_for_number(parsed)
    if region not in allowed:
        raise InvalidPhoneNumberError(
            f"Phone number is in region {region or 'unknown'}, which is not allowed "
            f"(allowed: {', '.join(sorted(allowed))})",
            code="region_not_allowed",
        )
    _refuse_type(parsed)
    if parsed.country_code == 1:
        _refuse_nanp_exchange(str(parsed.national_number))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _refuse_extension(raw: str) -> None:
    """An extension (``x12``, ``ext. 12``, ``#12``, ``;ext=12``) cannot be dialled by an agent.

    Without this check its digits were appended to the number, which then looked foreign.
    """
    try:
        extension = phonenumbers.parse(raw[:_MAX_INPUT], "US").extension
    except phonenumbers.NumberParseException:
        return  # not a number at all: normalising says so
    if extension:
        raise InvalidPhoneNumberError(
            "Phone number has an extension, which an automated call cannot dial; send the "
            "driver's direct number without it",
            code="phone_number_extension",
        )


def _refuse_type(parsed: phonenumbers.PhoneNumber) -> None:
    number_type = phonenumbers.number_type(parsed)
    if number_type in _DRIVER_PHONE_TYPES:
        return
    code, what = _REFUSED_TYPES.get(
        number_type, ("number_type_not_allowed", "not a mobile or landline number")
    )
    raise InvalidPhoneNumberError(f"Phone number is {what}", code=code)


def _refuse_nanp_exchange(national: str) -> None:
    """Exchanges libphonenumber counts as ordinary lines but an automated dialler must not ring."""
    exchange = national[3:6]
    if exchange in _PAY_PER_CALL_EXCHANGES:
        raise InvalidPhoneNumberError(
            "Phone number is on a 976 pay-per-call exchange, which can bill the caller",
            code="pay_per_call_exchange",
        )
    if _SERVICE_CODE_EXCHANGE.fullmatch(exchange):
        raise InvalidPhoneNumberError(
            "Phone number is on an N11 service-code exchange (such as 411 or 911), "
            "not an ordinary line",
            code="service_code_exchange",
        )


def mask_phone_number(number: str) -> str:
    """Everything but the last four digits hidden, for logs."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "+" + "*" * (len(digits) - 4) + digits[-4:]

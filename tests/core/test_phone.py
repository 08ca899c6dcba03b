"""Phone numbers: normalising what dispatchers type, refusing what we must not dial."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from voice_providers import InvalidPhoneNumberError, mask_phone_number, vet_phone_number
from voice_providers._phone import DEFAULT_ALLOWED_REGIONS, normalize_phone_number

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CODES = {
    "invalid_phone_number",
    "region_not_allowed",
    "premium_rate_number",
    "toll_free_number",
    "personal_number",
    "non_geographic_number",
    "number_type_not_allowed",
    "pay_per_call_exchange",
    "service_code_exchange",
    "phone_number_extension",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(312) 555-0147", "+13125550147"),
        ("4155550199", "+14155550199"),
        ("1-415-555-0199", "+14155550199"),
        ("415.555.0199", "+14155550199"),
        ("  +1 (312) 555.0147 ", "+13125550147"),
        ("+1 416 555 0199", "+14165550199"),
        ("001 416 555 0199", "+14165550199"),
        ("+1 613 555 0199", "+16135550199"),
    ],
)
def test_common_formats_normalise_to_e164(raw: str, expected: str) -> None:
    """US and Canadian numbers in common formats come back in E.164."""
    assert vet_phone_number(raw) == expected


def test_canada_is_allowed_by_default() -> None:
    """The default regions are exactly the US and Canada."""
    assert {"US", "CA"} == DEFAULT_ALLOWED_REGIONS
    parsed = phonenumbers.parse(vet_phone_number("+1 416 555 0199"))
    assert phonenumbers.region_code_for_number(parsed) == "CA"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("+1 876 927 1234", "region_not_allowed"),  # Jamaica shares +1 but is abroad
        ("+1 900 234 5678", "premium_rate_number"),
        ("+44 20 7946 0958", "region_not_allowed"),
        ("garbage", "invalid_phone_number"),
        ("", "invalid_phone_number"),
        ("+", "invalid_phone_number"),
        ("00", "invalid_phone_number"),
        ("555-0147", "invalid_phone_number"),
        ("+0 312 555 0147", "invalid_phone_number"),
        ("1" * 65, "invalid_phone_number"),
        ("(312) 555-01479999", "invalid_phone_number"),
    ],
)
def test_unusable_numbers_are_refused_with_a_code(raw: str, code: str) -> None:
    """Foreign, premium-rate and malformed numbers raise with the matching code."""
    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        vet_phone_number(raw)

    assert excinfo.value.code == code


@pytest.mark.parametrize(
    "raw", ["+1 876 927 1234", "+1 900 234 5678", "+44 20 7946 0958", "(312) 555-01479999"]
)
def test_error_message_never_contains_the_number(raw: str) -> None:
    """The user-facing message names the problem, never the digits that were typed."""
    digits = re.sub(r"\D", "", raw)

    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        vet_phone_number(raw)

    text = f"{excinfo.value}{excinfo.value.message}{excinfo.value!r}"
    assert digits not in re.sub(r"\D", "", text)
    assert digits[-7:] not in text


def test_region_refusal_names_the_region() -> None:
    """A foreign number's message says which region it is in and which are allowed."""
    with pytest.raises(InvalidPhoneNumberError, match=r"region JM.*allowed: CA, US"):
        vet_phone_number("+1 876 927 1234")


def test_uk_number_accepted_when_gb_is_allowed() -> None:
    """A UK number passes once `allowed_regions` includes GB (case and spaces ignored)."""
    assert vet_phone_number("+44 20 7946 0958", allowed_regions={"US", " gb "}) == "+442079460958"


def test_us_number_refused_when_only_gb_is_allowed() -> None:
    """`allowed_regions` replaces the defaults rather than adding to them."""
    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        vet_phone_number("(312) 555-0147", allowed_regions=["GB"])

    assert excinfo.value.code == "region_not_allowed"


def test_a_number_vetted_once_is_still_refused_where_its_region_is_not_allowed() -> None:
    """Vetting remembers a number per set of allowed regions, never across them."""
    assert vet_phone_number("(312) 555-0147") == "+13125550147"
    assert vet_phone_number("(312) 555-0147") == "+13125550147"
    with pytest.raises(InvalidPhoneNumberError) as refused:
        vet_phone_number("(312) 555-0147", allowed_regions=["CA"])
    assert refused.value.code == "region_not_allowed"


def test_a_refused_number_is_refused_every_time() -> None:
    """A refusal is not remembered as an answer: the second try is refused the same way."""
    for _ in range(2):
        with pytest.raises(InvalidPhoneNumberError) as refused:
            vet_phone_number("1-800-555-0199")
        assert refused.value.code == "toll_free_number"


def test_invalid_phone_number_is_a_value_error() -> None:
    """The error is a `ValueError`, so schema validators turn it into a 422."""
    assert issubclass(InvalidPhoneNumberError, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(312) 555-0147", "+13125550147"),
        ("13125550147", "+13125550147"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("555-0147", "+5550147"),
    ],
)
def test_normalize_follows_the_specification(raw: str, expected: str) -> None:
    """Normalising keeps digits, adds +1 to ten digits and keeps a given country code."""
    assert normalize_phone_number(raw) == expected


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+13125550147", "+*******0147"),
        ("(312) 555-0147", "+******0147"),
        ("+442079460958", "+********0958"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_keeps_only_the_last_four_digits(number: str, masked: str) -> None:
    """Masking hides every digit but the last four."""
    assert mask_phone_number(number) == masked


@given(st.text(max_size=80))
@example("+1 876 927 1234")
@example("+1 900 234 5678")
@example("٤١٥٥٥٥٠١٩٩")  # Arabic-Indic digits
@example("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10")  # full-width
@example("+" + "9" * 63)
def test_vet_returns_allowed_e164_or_a_documented_error(raw: str) -> None:
    """Any text gives an allowed E.164 number or `InvalidPhoneNumberError` with a known code."""
    try:
        result = vet_phone_number(raw)
    except InvalidPhoneNumberError as e:
        assert e.code in CODES
        return
    assert E164.match(result)
    assert result.isascii()
    region = phonenumbers.region_code_for_number(phonenumbers.parse(result))
    assert region in DEFAULT_ALLOWED_REGIONS


_phoneish = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["", "+", "+1", "1", "00", "001", "+44"]),
    st.text(alphabet="0123456789 ()-.", max_size=20),
)


@given(_phoneish, st.sets(st.sampled_from(["US", "CA", "GB", "JM", "DE", "MX"]), max_size=3))
def test_vet_respects_any_allowed_regions(raw: str, regions: set[str]) -> None:
    """For phone-like text and any allowlist, a result is always in one of those regions."""
    try:
        result = vet_phone_number(raw, allowed_regions=regions)
    except InvalidPhoneNumberError as e:
        assert e.code in CODES
        digits = re.sub(r"\D", "", raw)
        if len(digits) >= 7:
            assert digits not in e.message
        return
    assert E164.match(result)
    assert phonenumbers.region_code_for_number(phonenumbers.parse(result)) in regions


def _valid_us_digits(area: int, exchange: int, line: int) -> str | None:
    digits = f"{area:03d}{exchange:03d}{line:04d}"
    parsed = phonenumbers.parse("+1" + digits)
    if not phonenumbers.is_valid_number(parsed):
        return None
    if phonenumbers.region_code_for_number(parsed) not in DEFAULT_ALLOWED_REGIONS:
        return None
    if phonenumbers.number_type(parsed) not in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }:
        return None
    if exchange == 976 or exchange % 100 == 11:  # pay-per-call and N11 exchanges are refused
        return None
    return digits


_us_digits = st.builds(
    _valid_us_digits,
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
).filter(lambda digits: digits is not None)

_FORMATS = (
    "{a}{e}{l}",
    "({a}) {e}-{l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "{a} {e} {l}",
    "1{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "1 ({a}) {e}-{l}",
    "+1{a}{e}{l}",
    "+1 ({a}) {e}-{l}",
    "+1-{a}-{e}-{l}",
    "+1.{a}.{e}.{l}",
    " +1 {a} {e} {l} ",
)


@given(_us_digits)
def test_every_format_of_a_number_gives_the_same_result(digits: str | None) -> None:
    """A valid ten-digit NANP number gives one identical E.164 result in every common format."""
    assert digits is not None
    a, e, line = digits[:3], digits[3:6], digits[6:]

    results = {vet_phone_number(fmt.format(a=a, e=e, l=line)) for fmt in _FORMATS}

    assert results == {"+1" + digits}

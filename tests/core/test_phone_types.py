"""Phone number types: only what a driver's phone can be is dialled, anything else says why."""

from __future__ import annotations

import phonenumbers
import pytest

from voice_providers import InvalidPhoneNumberError, vet_phone_number

#: Numbers that must be refused, with the error code. 555-01xx lines are fictional.
REFUSED = [
    # toll-free: every NANP toll-free area code
    ("1-800-555-0199", "toll_free_number"),
    ("(888) 555-0123", "toll_free_number"),
    ("+1 877 555 0100", "toll_free_number"),
    ("866.555.0100", "toll_free_number"),
    ("855-555-0100", "toll_free_number"),
    ("844 555 0100", "toll_free_number"),
    ("833-555-0100", "toll_free_number"),
    # personal-communications services: can bill the caller
    ("500-555-0100", "personal_number"),
    ("533-555-0100", "personal_number"),
    ("544-555-0100", "personal_number"),
    ("566-555-0100", "personal_number"),
    ("577-555-0100", "personal_number"),
    ("588-555-0100", "personal_number"),
    # Canadian non-geographic services
    ("+1 600 555 0100", "non_geographic_number"),
    # premium rate
    ("+1 900 555 0100", "premium_rate_number"),
    ("1-900-234-5678", "premium_rate_number"),
    # 976 pay-per-call exchanges, US and Canada
    ("312-976-0147", "pay_per_call_exchange"),
    ("(212) 976-5555", "pay_per_call_exchange"),
    ("+1 416 976 1234", "pay_per_call_exchange"),
    # N11 service-code exchanges
    ("312-911-0147", "service_code_exchange"),
    ("312-411-0147", "service_code_exchange"),
    ("312-211-0147", "service_code_exchange"),
    ("312-611-0147", "service_code_exchange"),
    ("+1 604 511 0100", "service_code_exchange"),
    # extensions: refused for the extension, not as a foreign number
    ("312-555-0147 ext. 12", "phone_number_extension"),
    ("3125550147x12", "phone_number_extension"),
    ("(312) 555-0147 #12", "phone_number_extension"),
    ("+1 312 555 0147;ext=12", "phone_number_extension"),
    ("(312) 555-0147 extension 4", "phone_number_extension"),
    ("416.555.0199 X 4", "phone_number_extension"),
    # foreign and malformed, unchanged
    ("+1 876 555 0100", "region_not_allowed"),
    ("+44 20 7946 0958", "region_not_allowed"),
    ("700-555-0100", "invalid_phone_number"),
    ("555-555-0100", "invalid_phone_number"),
]

#: US and Canadian mobiles and landlines (fictional 555-01xx lines) that must still pass.
ALLOWED = [
    ("(312) 555-0147", "+13125550147"),
    ("312-555-0100", "+13125550100"),
    ("+1 312 555 0199", "+13125550199"),
    ("212-555-0123", "+12125550123"),
    ("(202) 555-0123", "+12025550123"),
    ("415.555.0123", "+14155550123"),
    ("1-718-555-0123", "+17185550123"),
    ("201 555 0123", "+12015550123"),
    ("+1 416 555 0123", "+14165550123"),
    ("647-555-0199", "+16475550199"),
    ("(514) 555-0123", "+15145550123"),
    ("613.555.0199", "+16135550199"),
    ("604-555-0123", "+16045550123"),
    ("403 555 0100", "+14035550100"),
    ("001 416 555 0199", "+14165550199"),
]


@pytest.mark.parametrize(("raw", "code"), REFUSED)
def test_numbers_a_driver_cannot_have_are_refused_with_the_reason(raw: str, code: str) -> None:
    """Toll-free, 5XX, 600, premium, 976, N11, extensions and foreign numbers raise their code."""
    with pytest.raises(InvalidPhoneNumberError) as raised:
        vet_phone_number(raw)
    assert raised.value.code == code
    digits = "".join(c for c in raw if c.isdigit())
    assert digits[-7:] not in raised.value.message


@pytest.mark.parametrize(("raw", "e164"), ALLOWED)
def test_us_and_canadian_lines_still_pass(raw: str, e164: str) -> None:
    """Ordinary US and Canadian mobiles and landlines normalise to E.164."""
    assert vet_phone_number(raw) == e164


@pytest.mark.parametrize(("raw", "e164"), ALLOWED)
def test_allowed_examples_are_lines_for_this_phonenumbers_version(raw: str, e164: str) -> None:
    """The installed libphonenumber data calls every allowed example a mobile or landline."""
    parsed = phonenumbers.parse(e164)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.region_code_for_number(parsed) in {"US", "CA"}
    assert phonenumbers.number_type(parsed) in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }


def test_the_table_is_at_least_forty_numbers() -> None:
    """The phone rules are checked over at least 40 numbers, refused and allowed."""
    assert len(REFUSED) + len(ALLOWED) >= 40
    assert len({raw for raw, _ in REFUSED + ALLOWED}) == len(REFUSED) + len(ALLOWED)


def test_extension_message_speaks_of_the_extension() -> None:
    """A number with an extension is refused for the extension, not as a foreign region."""
    with pytest.raises(InvalidPhoneNumberError) as raised:
        vet_phone_number("312-555-0147 ext. 12")
    assert "extension" in raised.value.message
    assert "region" not in raised.value.message

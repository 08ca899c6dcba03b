"""Provider base URLs: credentials, queries and non-http schemes are refused in one line."""

from __future__ import annotations

import pytest

from voice_providers import check_base_url


@pytest.mark.parametrize(
    "url",
    [
        "https://api.vapi.ai",
        "https://api.elevenlabs.io/v1/convai",
        "http://127.0.0.1:8123/v1/convai",
        "https://eu.residency.example/v1/convai/",
    ],
)
def test_ordinary_base_urls_pass_unchanged(url: str) -> None:
    """An http(s) URL with a host and no credentials comes back as given."""
    assert check_base_url(url, variable="VAPI_BASE_URL") == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:hunter2pw@proxy.test:3128", "must not contain credentials"),
        ("https://hunter2pw@api.vapi.ai", "must not contain credentials"),
        ("https://:hunter2pw@api.vapi.ai", "must not contain credentials"),
        ("https://api.vapi.ai/?token=hunter2pw", "must not contain a query string"),
        ("https://api.vapi.ai/#hunter2pw", "must not contain a query string or fragment"),
        ("ftp://api.vapi.ai", "must be an http:// or https:// URL"),
        ("api.vapi.ai", "must be an http:// or https:// URL"),
        ("https://", "must be an http:// or https:// URL"),
        ("http://[::1", "is not a valid URL"),
    ],
)
def test_unsafe_base_urls_are_refused_in_one_line(url: str, reason: str) -> None:
    """A refused base URL raises a one-line ValueError naming the variable, not the URL."""
    with pytest.raises(ValueError, match=r"^VAPI_BASE_URL ") as raised:
        check_base_url(url, variable="VAPI_BASE_URL")
    message = str(raised.value)
    assert reason in message
    assert "hunter2pw" not in message
    assert "\n" not in message

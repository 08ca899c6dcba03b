"""Provider base URLs: credentials, queries and non-http schemes are refused in one line."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from voice_providers import base_url_check, check_base_url, provider_settings_config


class _ExampleSettings(BaseSettings):
    """A provider's settings as a provider package writes them."""

    model_config = provider_settings_config(env_prefix="EXAMPLE_")

    base_url: Annotated[str, base_url_check("EXAMPLE_BASE_URL")] = "https://api.example.test"


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


def test_settings_helpers_check_the_base_url_and_hide_it_from_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider's settings built from the core helpers refuse a URL with a password, name the
    variable, and never print the value."""
    monkeypatch.setenv("EXAMPLE_BASE_URL", "https://user:hunter2pw@api.example.test")

    with pytest.raises(ValidationError) as raised:
        _ExampleSettings()

    assert "EXAMPLE_BASE_URL must not contain credentials" in str(raised.value)
    assert "hunter2pw" not in str(raised.value)


def test_settings_helpers_read_the_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared options read `<PREFIX>BASE_URL` and pass a good URL unchanged."""
    monkeypatch.setenv("EXAMPLE_BASE_URL", "http://127.0.0.1:8123/v1")

    assert _ExampleSettings().base_url == "http://127.0.0.1:8123/v1"

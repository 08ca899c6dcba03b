"""A provider's configurable base URL, and the settings options every provider shares."""

from __future__ import annotations

import functools

import httpx
from pydantic import AfterValidator
from pydantic_settings import SettingsConfigDict


def check_base_url(url: str, *, variable: str) -> str:
    """Refuse a base URL that would leak or swap credentials, in one line that names `variable`.

    httpx logs every request URL at INFO, so ``user:password@`` in a base URL would be printed
    in clear; for a Bearer-token provider it would also replace the token with Basic auth.
    Proxies belong in the proxy settings (``HTTPS_PROXY``), never in the base URL.

    Args:
        url: The configured value.
        variable: The environment variable it came from, for the message.

    Returns:
        `url`, unchanged.

    Raises:
        ValueError: Not an http(s) URL with a host, or it has credentials, a query or a
            fragment. The message never repeats the URL.
    """
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL:
        raise ValueError(f"{variable} is not a valid URL") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(f"{variable} must be an http:// or https:// URL with a host")
    if parsed.userinfo:
        raise ValueError(
            f"{variable} must not contain credentials (user:password@); configure a proxy "
            "with HTTPS_PROXY instead"
        )
    if parsed.query or parsed.fragment:
        raise ValueError(f"{variable} must not contain a query string or fragment")
    return url


def base_url_check(variable: str) -> AfterValidator:
    """`check_base_url` as a pydantic validator, for ``Annotated[str, base_url_check(...)]``.

    Args:
        variable: The environment variable the field is read from, for the message.
    """
    return AfterValidator(functools.partial(check_base_url, variable=variable))


def provider_settings_config(*, env_prefix: str) -> SettingsConfigDict:
    """The options of a provider's `BaseSettings`: its prefix, `.env`, frozen, extras ignored.

    Inputs are hidden from validation errors because a refused base URL may hold a password.

    Args:
        env_prefix: The provider's variable prefix (``ELEVENLABS_``, ``VAPI_``).
    """
    return SettingsConfigDict(
        env_prefix=env_prefix,
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

"""`JsonPostProvider`'s defaults for reading refusals, for a provider that overrides nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
import respx

from tests.fakes import make_call_request, place
from voice_providers import (
    CallNotDeliveredError,
    CallRejectedError,
    CallRequest,
    JsonPostProvider,
    PlacedCall,
    PreparedCall,
    ProviderAuthError,
    default_timeout,
)

pytestmark = pytest.mark.respx(base_url="https://api.minimal.test")


class MinimalProvider(JsonPostProvider):
    """A provider that says only what `JsonPostProvider` requires."""

    provider_id: ClassVar[str] = "minimal"
    display_name: ClassVar[str] = "Minimal"
    call_path: ClassVar[str] = "/calls"

    def missing_settings(self) -> list[str]:
        """Nothing is required."""
        return []

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The destination only."""
        body = {"to": request.to_number}
        return PreparedCall(provider_id=self.provider_id, call_sid=request.call_sid, body=body)

    def headers(self) -> dict[str, str]:
        """A bearer key."""
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def read_answer(self, status_code: int, body: Any) -> PlacedCall | None:
        """A 201 with an id."""
        if status_code != 201 or not isinstance(body, dict):
            return None
        return self.placed(str(body["id"]), None, None)

    def error_reason(self, body: Any) -> object:
        """No reason."""
        return None


class KeyedProvider(MinimalProvider):
    """The same provider, naming the variable that holds its key."""

    credential_variable: ClassVar[str | None] = "MINIMAL_API_KEY"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client with the app's timeouts; respx intercepts its requests."""
    async with httpx.AsyncClient(timeout=default_timeout()) as c:
        yield c


@pytest.fixture
def route(respx_mock: respx.MockRouter) -> respx.Route:
    """The call endpoint."""
    return respx_mock.post("/calls", name="calls")


async def test_refused_key_without_a_named_variable_stays_a_rejection(
    client: httpx.AsyncClient, route: respx.Route
) -> None:
    """A provider that names no credential variable reports a 401 as a rejection, sent once."""
    route.respond(401)
    provider = MinimalProvider(http_client=client, base_url="https://api.minimal.test")

    with pytest.raises(CallRejectedError):
        await place(provider, make_call_request())

    assert route.call_count == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_key_names_the_variable_the_provider_declares(
    client: httpx.AsyncClient, route: respx.Route, status: int
) -> None:
    """With `credential_variable` set, any 401/403 is `ProviderAuthError` naming it."""
    route.respond(status)
    provider = KeyedProvider(http_client=client, base_url="https://api.minimal.test")

    with pytest.raises(ProviderAuthError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.variable == "MINIMAL_API_KEY"
    assert route.call_count == 1


async def test_a_429_is_a_rate_limit_unless_the_provider_says_otherwise(
    client: httpx.AsyncClient, route: respx.Route
) -> None:
    """By default no answer means "at capacity": a 429 is retried like any rate limit."""
    route.side_effect = [httpx.Response(429), httpx.Response(201, json={"id": "c-1"})]
    provider = MinimalProvider(http_client=client, base_url="https://api.minimal.test")

    placed = await place(provider, make_call_request())

    assert (placed.conversation_id, route.call_count) == ("c-1", 2)
    route.side_effect = [httpx.Response(429)] * 3
    with pytest.raises(CallNotDeliveredError):
        await place(provider, make_call_request())
    assert route.call_count == 5

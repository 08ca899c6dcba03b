"""The OpenAPI schema: request examples, every error response with its codes, tags; /docs."""

from __future__ import annotations

from typing import Any

from app.error_codes import CATALOGUE, WITH_RETRY_AFTER, codes_for
from app.schemas import BatchCallRequest
from tests.app.service_fixtures import make_settings, serve


async def _schema(database_url: str) -> dict[str, Any]:
    async with serve(make_settings(database_url)) as service:
        docs = await service.client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        answer = await service.client.get("/openapi.json")
        # The examples are sendable as they are.
        body = answer.json()["paths"]["/driver_data/call"]["post"]["requestBody"]
        for example in body["content"]["application/json"]["examples"].values():
            sent = await service.call(example["value"])
            assert sent.status_code == 200, sent.text
    schema: dict[str, Any] = answer.json()
    return schema


async def test_call_endpoints_show_examples_and_every_error_code(database_url: str) -> None:
    """Both call routes carry request examples and list each error status with its codes."""
    schema = await _schema(database_url)
    for path in ("/driver_data/call", "/driver_data/call-elevenlabs"):
        operation = schema["paths"][path]["post"]
        examples = operation["requestBody"]["content"]["application/json"]["examples"]
        assert set(examples) == {"trip", "minimal"}
        for example in examples.values():
            BatchCallRequest.model_validate(example["value"])
        assert operation["tags"] == ["calls"]
        for status in (400, 401, 409, 413, 422, 429, 500, 502, 503, 504):
            response = operation["responses"][str(status)]
            listed = response["content"]["application/json"]["examples"]
            assert set(listed) == {e.code for e in codes_for(status, "calls")}
            assert "template_version_conflict" not in listed
            for entry in codes_for(status, "calls"):
                assert f"`{entry.code}`" in response["description"]
            waits = any(e.code in WITH_RETRY_AFTER for e in codes_for(status, "calls"))
            assert ("Retry-After" in response.get("headers", {})) is waits
        assert {s for s in ("429", "503") if "headers" in operation["responses"][s]} == {
            "429",
            "503",
        }


async def test_every_catalogued_code_is_documented_somewhere(database_url: str) -> None:
    """Each error_code of the catalogue appears on at least one operation of the schema."""
    schema = await _schema(database_url)
    listed = {
        code
        for operations in schema["paths"].values()
        for operation in operations.values()
        for response in operation.get("responses", {}).values()
        for code in response.get("content", {}).get("application/json", {}).get("examples", {})
    }
    assert {e.code for e in CATALOGUE} <= listed


async def test_operations_routes_are_tagged_and_need_the_key(database_url: str) -> None:
    """Providers, metrics and health sit under `operations`; the first two answer 401 unkeyed."""
    schema = await _schema(database_url)
    for path in ("/driver_data/providers", "/metrics", "/health"):
        assert schema["paths"][path]["get"]["tags"] == ["operations"]
    for path in ("/driver_data/providers", "/metrics"):
        assert "401" in schema["paths"][path]["get"]["responses"]
    assert [t["name"] for t in schema["tags"]] == ["calls", "templates", "operations"]

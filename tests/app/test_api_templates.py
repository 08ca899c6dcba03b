"""GET/PUT /driver_data/templates: versioned edits behind the API key, and what calls record."""

from __future__ import annotations

from typing import Any

import pytest

from app.default_prompts import DEFAULT_TEMPLATES, TEMPLATE_NAMES
from app.template_store import MAX_POINT_TEMPLATE_CHARS
from tests.app.service_fixtures import (
    API_KEY,
    RunningService,
    assert_safe_error,
    call_body,
    make_settings,
    serve,
)

HEADERS = {"X-API-Key": API_KEY}
FUEL = DEFAULT_TEMPLATES["fuel"]
NEW_FUEL = {
    "text": "Tank at {fuel_percent}, under {required_fuel_percent}. Plan a fuel stop.",
    "unconfirmed_text": "Dispatch flagged fuel, but the trip data here does not confirm it. "
    "Ask what the gauge shows.",
}


async def _put(service: RunningService, name: str, body: dict[str, Any]) -> Any:
    return await service.client.put(f"/driver_data/templates/{name}", json=body, headers=HEADERS)


async def test_list_shows_every_template_with_its_version(database_url: str) -> None:
    """The list has every template's name, kind and current version."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        response = await service.client.get("/driver_data/templates", headers=HEADERS)
    assert response.status_code == 200, response.text
    templates = response.json()["templates"]
    assert [t["name"] for t in templates] == list(TEMPLATE_NAMES)
    fuel = next(t for t in templates if t["name"] == "fuel")
    assert (fuel["kind"], fuel["version"], fuel["created_by"]) == ("data_driven", 1, "built-in")


async def test_get_one_shows_texts_placeholders_and_history(database_url: str) -> None:
    """One template's texts, the placeholders it may use and its versions."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        response = await service.client.get("/driver_data/templates/temperature", headers=HEADERS)
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["text"] == DEFAULT_TEMPLATES["temperature"].text
    assert body["unconfirmed_text"] == DEFAULT_TEMPLATES["temperature"].unconfirmed_text
    assert "temperature_direction" in body["placeholders"]
    assert [h["version"] for h in body["history"]] == [1]


async def test_put_adds_a_version_named_for_the_api_client(database_url: str) -> None:
    """An edit is stored as a new version by the caller's client name; the old one stays."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        response = await _put(service, "fuel", NEW_FUEL)
        old = await service.client.get("/driver_data/templates/fuel?version=1", headers=HEADERS)
        again = await _put(service, "fuel", NEW_FUEL)
    body = response.json()
    assert response.status_code == 200, response.text
    assert (body["version"], body["created_by"], body["changed"]) == (2, "lead", True)
    assert [(h["version"], h["created_by"]) for h in body["history"]] == [
        (2, "lead"),
        (1, "built-in"),
    ]
    assert old.json()["text"] == FUEL.text
    assert (again.json()["version"], again.json()["changed"]) == (2, False)


async def test_a_call_records_its_prompt_and_template_versions(database_url: str) -> None:
    """After an edit, a call's record names the new version and holds the prompt it sent."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        assert (await _put(service, "fuel", NEW_FUEL)).status_code == 200
        body = call_body(
            violations=[{"type": "VIOLATION", "description": "Fuel lower than required"}]
        )
        called = await service.call(body, api_key=API_KEY)
        assert called.status_code == 200, called.text
        call_sid = called.json()["call_sid"]
        record = await service.client.get(f"/driver_data/calls/{call_sid}", headers=HEADERS)
        listed = await service.client.get("/driver_data/calls", headers=HEADERS)
        sent_prompt = service.vapi.history[0].prompt
    stored = record.json()
    assert stored["template_versions"] == {"closing_reminders": 1, "fuel": 2, "system_prompt": 1}
    assert stored["prompt"] == sent_prompt
    assert "Dispatch flagged fuel, but the trip data here does not confirm it." in sent_prompt
    assert listed.json()["calls"][0]["prompt"] is None


async def test_templates_need_the_api_key(database_url: str) -> None:
    """Without the key the templates can be neither read nor changed."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        listed = await service.client.get("/driver_data/templates")
        changed = await service.client.put("/driver_data/templates/fuel", json=NEW_FUEL)
        current = await service.client.get("/driver_data/templates/fuel", headers=HEADERS)
    assert_safe_error(listed, status=401, error_code="unauthorized", call_sid=False)
    assert_safe_error(changed, status=401, error_code="unauthorized", call_sid=False)
    assert current.json()["version"] == 1


async def test_unknown_template_is_404(database_url: str) -> None:
    """Reading or editing a template that does not exist names the real ones."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        read = await service.client.get("/driver_data/templates/fuels", headers=HEADERS)
        edit = await _put(service, "fuels", NEW_FUEL)
        version = await service.client.get("/driver_data/templates/fuel?version=9", headers=HEADERS)
    for response in (read, edit, version):
        assert_safe_error(response, status=404, error_code="template_not_found", call_sid=False)
    assert "system_prompt" in read.json()["detail"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**NEW_FUEL, "text": "Tank at {tank_level}. Stop."}, "{tank_level}"),
        ({**NEW_FUEL, "text": "Tank at {fuel_percent. Stop."}, "unbalanced brace"),
        ({**NEW_FUEL, "text": "Stop. " * MAX_POINT_TEMPLATE_CHARS}, "too long"),
        ({"text": NEW_FUEL["text"]}, "unconfirmed_text: required"),
        ({**NEW_FUEL, "unconfirmed_text": "At {fuel_percent}."}, "every sentence needs"),
    ],
)
async def test_refused_edits_are_422_naming_the_problem(
    database_url: str, body: dict[str, Any], named: str
) -> None:
    """A text the template cannot use is refused with 422 naming it; nothing is stored."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        response = await _put(service, "fuel", body)
        current = await service.client.get("/driver_data/templates/fuel", headers=HEADERS)
    error = assert_safe_error(response, status=422, error_code="invalid_template", call_sid=False)
    assert named in error["detail"]
    assert current.json()["version"] == 1


async def test_missing_or_unknown_body_keys_are_422(database_url: str) -> None:
    """A body without `text`, or with a misspelt key, is refused before anything is checked."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        missing = await _put(service, "fuel", {"unconfirmed_text": "Ask."})
        misspelt = await _put(service, "fuel", {**NEW_FUEL, "unconfirmed": "Ask."})
    assert (
        "text"
        in assert_safe_error(missing, status=422, error_code="invalid_request", call_sid=False)[
            "detail"
        ]
    )
    assert (
        "unconfirmed"
        in assert_safe_error(misspelt, status=422, error_code="invalid_request", call_sid=False)[
            "detail"
        ]
    )


async def test_stale_edit_is_409(database_url: str) -> None:
    """An edit that names an older expected_version does not overwrite a newer one."""
    async with serve(make_settings(database_url, api_keys=f"lead={API_KEY}")) as service:
        assert (await _put(service, "fuel", {**NEW_FUEL, "expected_version": 1})).status_code == 200
        stale = await _put(
            service,
            "fuel",
            {"text": "Other. Text.", "unconfirmed_text": "Ask.", "expected_version": 1},
        )
    assert_safe_error(stale, status=409, error_code="template_version_conflict", call_sid=False)

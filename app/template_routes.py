"""HTTP routes for the prompt templates: list, read, and edit (each edit a new version)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from .default_prompts import DEFAULT_TEMPLATES
from .deps import CallerDep, ServicesDep
from .error_codes import error_responses
from .errors import ApiError
from .schemas import ONE_LINE
from .template_store import (
    InvalidTemplateError,
    StaleTemplateError,
    TemplateVersion,
    UnknownTemplateError,
)

template_router = APIRouter(prefix="/driver_data/templates", tags=["templates"])

TemplateName = Annotated[str, Path(max_length=64, pattern=ONE_LINE)]


class TemplateSummary(BaseModel):
    """A template's current version, without its texts."""

    name: str
    kind: str = Field(description="fixed, data_driven or reminder")
    version: int = Field(description="0 means the built-in text, never edited")
    description: str | None
    created_by: str = Field(description="who saved this version (API client name, cli:<user>)")
    created_at: str | None


class TemplateVersionInfo(BaseModel):
    """One entry of a template's history."""

    version: int
    created_by: str
    created_at: str | None


class TemplateDetail(TemplateSummary):
    """One version of a template with its texts, what it may use, and its history."""

    text: str = Field(description="said when the point is confirmed (or always: reminders, fixed)")
    unconfirmed_text: str | None = Field(
        description="data-driven only: said when the trip data contradicts the point or is missing"
    )
    placeholders: dict[str, str] = Field(description="placeholders this template can fill")
    history: list[TemplateVersionInfo] = Field(description="every version, newest first")
    changed: bool | None = Field(
        default=None, description="after PUT: whether a new version was stored"
    )


class TemplateList(BaseModel):
    """Every template's current version."""

    templates: list[TemplateSummary]


class TemplateUpdate(BaseModel):
    """A new version of a template's texts."""

    model_config = ConfigDict(extra="forbid")

    text: str
    unconfirmed_text: str | None = None
    description: str | None = Field(default=None, description="None keeps the current one")
    expected_version: int | None = Field(
        default=None, description="refuse with 409 unless this is still the current version"
    )


def _when(entry: TemplateVersion) -> str | None:
    return entry.created_at.isoformat() if entry.created_at else None


def _summary(entry: TemplateVersion) -> TemplateSummary:
    return TemplateSummary(
        name=entry.name,
        kind=entry.kind.value,
        version=entry.version,
        description=entry.description,
        created_by=entry.created_by,
        created_at=_when(entry),
    )


def _detail(
    entry: TemplateVersion, history: list[TemplateVersion], changed: bool | None = None
) -> TemplateDetail:
    return TemplateDetail(
        **_summary(entry).model_dump(),
        text=entry.text,
        unconfirmed_text=entry.unconfirmed_text,
        placeholders=dict(DEFAULT_TEMPLATES[entry.name].placeholders),
        history=[
            TemplateVersionInfo(version=h.version, created_by=h.created_by, created_at=_when(h))
            for h in history
        ],
        changed=changed,
    )


def _not_found(error: UnknownTemplateError) -> ApiError:
    return ApiError(404, str(error.args[0]).capitalize(), "template_not_found")


@template_router.get(
    "", response_model=TemplateList, responses=error_responses(401, scope="templates")
)
async def list_templates(_: CallerDep, services: ServicesDep) -> TemplateList:
    """Every template's current version."""
    return TemplateList(templates=[_summary(t) for t in await services.templates.latest()])


@template_router.get(
    "/{name}",
    response_model=TemplateDetail,
    responses=error_responses(401, 404, 422, scope="templates"),
)
async def get_template(
    name: TemplateName,
    _: CallerDep,
    services: ServicesDep,
    version: Annotated[int | None, Query(ge=0)] = None,
) -> TemplateDetail:
    """One template: its current (or a given) version's texts, placeholders and history."""
    try:
        entry = await services.templates.get(name, version)
        history = await services.templates.history(name)
    except UnknownTemplateError as e:
        raise _not_found(e) from e
    return _detail(entry, history)


@template_router.put(
    "/{name}",
    response_model=TemplateDetail,
    responses=error_responses(401, 404, 409, 413, 422, scope="templates"),
)
async def put_template(
    name: TemplateName, body: TemplateUpdate, caller: CallerDep, services: ServicesDep
) -> TemplateDetail:
    """Store a new version of a template; a text it cannot use is refused with 422."""
    try:
        entry, changed = await services.templates.save(
            name,
            text=body.text,
            unconfirmed_text=body.unconfirmed_text,
            description=body.description,
            author=caller,
            expected_version=body.expected_version,
        )
        history = await services.templates.history(name)
    except UnknownTemplateError as e:
        raise _not_found(e) from e
    except InvalidTemplateError as e:
        raise ApiError(422, f"Template {name} refused: {e}", "invalid_template") from e
    except StaleTemplateError as e:
        raise ApiError(409, str(e).capitalize(), "template_version_conflict") from e
    return _detail(entry, history, changed)

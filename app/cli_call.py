"""`violation-calls call FILE.json [--provider P] [--dry-run]`: one call from a terminal.

The request body is the one the HTTP endpoints take. The service runs in this process (same
settings, database and providers as ``serve``), so a call from here is recorded, deduplicated
and limited exactly like one over HTTP; ``--dry-run`` prints the preview instead and dials
nothing. Exit status: 0 placed (or, dry run, would be placed), 1 the call failed, 2 bad input
or configuration. Errors are one line that says what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

from pydantic import ValidationError

from voice_providers import VoiceProviderError

from .cli_support import BAD_INPUT, FAILED, OK, fail, say
from .config import Settings, StartupError
from .deps import Services, routed_provider_id
from .errors import ApiError, api_error_for
from .preview import CallPreview, preview_call
from .schemas import BatchCallRequest

#: Failures that are the operator's to fix (input or configuration), not the call's.
_OPERATOR_ERRORS: Final = frozenset(
    {
        "no_driver_data",
        "invalid_request",
        "invalid_call_request",
        "transfer_number_not_configured",
        "provider_not_configured",
        "provider_not_installed",
        "provider_auth_failed",
    }
)
#: What to do next, by error code.
_HINTS: Final[Mapping[str, str]] = {
    "transfer_number_not_configured": "set DISPATCHER_TRANSFER_NUMBER (E.164) in the "
    "environment or .env",
    "provider_not_configured": "set the variable named above, or pick another --provider",
    "provider_not_installed": "install that provider or pick another --provider",
    "provider_auth_failed": "fix the credential named above",
    "provider_outcome_unknown": "the call may have been placed: check with the driver before "
    "trying again",
    "call_outcome_unknown": "the call may have been placed: check with the driver before "
    "trying again",
    "provider_rejected": "the provider refused the request: check its agent and phone number "
    "settings",
    "number_cooldown": "this number was called recently: wait and try again",
    "provider_unreachable": "nothing was dialled: try again in a little while",
    "provider_unavailable": "nothing was dialled: try again in a little while",
    "provider_rate_limited": "nothing was dialled: try again in a little while",
    "provider_at_capacity": "nothing was dialled: try again in a little while",
    "provider_busy": "nothing was dialled: try again in a few seconds",
    "idempotency_key_in_flight": "the same request is still running: wait for it",
}


def add_call_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``call FILE.json [--provider P] [--dry-run]`` to the command line.

    Args:
        commands: The top-level sub-command collection.
    """
    call = commands.add_parser(
        "call", help="call a driver from a JSON request body (or preview it with --dry-run)"
    )
    call.add_argument("file", type=Path, help="a BatchCallRequest body, as POSTed to the API")
    call.add_argument(
        "--provider",
        default=None,
        help="provider id (default: what /driver_data/call would use for the first driver: "
        "VOICE_PROVIDER, or VOICE_PROVIDER_ROLLOUT's provider if the driver is in its share)",
    )
    call.add_argument(
        "--dry-run", action="store_true", help="print what would be said and sent; dial nothing"
    )
    call.add_argument("-v", "--verbose", action="store_true", help="show the service's log")


def _api_failure(error: ApiError) -> int:
    sid = f", call_sid {error.call_sid}" if error.call_sid else ""
    hint = _HINTS.get(error.error_code)
    if hint is None and error.status_code in (400, 422):
        hint = "fix the request file"
    hint = hint or "see docs/operations.md"
    bad_input = error.error_code in _OPERATOR_ERRORS or error.status_code in (400, 422)
    return fail(
        f"{error.detail} ({error.error_code}{sid}); {hint}", BAD_INPUT if bad_input else FAILED
    )


def _read_request(path: Path) -> BatchCallRequest:
    """The request in `path`; ValueError with one line saying what is wrong."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"cannot read {path}: {reason}") from e
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    try:
        return BatchCallRequest.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in e.errors()[:3]
        )
        raise ValueError(f"{path} is not a call request: {problems}") from e


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ")


def format_preview(preview: CallPreview) -> str:
    """The preview in readable form (what `--dry-run` prints)."""
    lines = [
        "PREVIEW: nothing was dialled, recorded or counted",
        f"provider:   {preview.provider}",
        f"number:     {preview.phone_number or '(refused)'}",
        "trip:       " + (preview.trip_id or "(none found: every data-driven point is no_data)"),
        "would call: " + ("yes" if preview.would_call else "no"),
    ]
    lines += [
        f"  refused: {r.detail} ({r.error_code}, HTTP {r.status_code})" for r in preview.refusals
    ]
    lines += ["", "POINTS"]
    for point in preview.points:
        template = (
            f"{point.template} v{point.template_version}" if point.template else "no template"
        )
        lines.append(f"  {point.number}. [{point.status}] {template}: {point.description}")
        lines.append(_indent(textwrap.fill(point.text, width=92)))
    lines += ["", "PROMPT", _indent(preview.prompt), ""]
    if preview.payload is None:
        lines.append("PAYLOAD: none (the call would be refused before reaching the provider)")
    else:
        lines.append(
            f"PAYLOAD the provider would receive (call_sid {preview.call_sid} is a placeholder)"
        )
        lines.append(_indent(json.dumps(preview.payload, indent=2, ensure_ascii=False)))
    return "\n".join(lines)


async def _run(
    settings: Settings, request: BatchCallRequest, provider_id: str | None, dry_run: bool
) -> int:
    from .main import create_app  # the app (and its providers) only when a call is asked for

    app = create_app(settings=settings)
    async with app.router.lifespan_context(app) as state:
        services = cast(Services, cast(Mapping[str, Any], state)["services"])
        # Without --provider, the one /driver_data/call would use, rollout included.
        chosen = provider_id or routed_provider_id(settings, request)
        if chosen not in services.registry.installed:
            installed = ", ".join(services.registry.installed) or "none"
            return fail(f"unknown provider {chosen!r}; installed: {installed}", BAD_INPUT)
        if dry_run:
            preview = await preview_call(
                service=services.calls,
                registry=services.registry,
                request=request,
                provider_id=chosen,
            )
            say(format_preview(preview))
            return OK if preview.would_call else BAD_INPUT
        try:
            provider = services.registry.get(chosen)
        except VoiceProviderError as e:
            return _api_failure(api_error_for(e))
        outcome = await services.calls.handle(
            request=request, provider=provider, caller=f"cli:{getpass.getuser()}"
        )
        body = outcome.body
        if outcome.status_code != 200:
            return _api_failure(
                ApiError(
                    outcome.status_code,
                    str(body.get("detail", "")),
                    str(body.get("error_code", "")),
                    call_sid=body.get("call_sid"),
                )
            )
        replay = " (a repeat of an earlier request: no new call was placed)" * outcome.replayed
        print(  # noqa: T201 - CLI output
            f"{body['message']}{replay}: call_sid {body['call_sid']}, conversation_id "
            f"{body['conversation_id']}, callSid {body['callSid']}"
        )
        return OK


def run_call_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``call FILE.json``; returns the exit status (0 ok, 1 call failed, 2 bad input).

    Args:
        args: The parsed command line.
        settings: The service's settings (already checked by the caller).
    """
    try:
        request = _read_request(args.file)
    except ValueError as e:
        return fail(
            f"{e}; pass a JSON request body like app/demo_data/call_with_trip.json", BAD_INPUT
        )
    if not args.verbose:
        # One line per error on stderr: the service's own log only when asked for.
        settings = settings.model_copy(update={"log_level": "CRITICAL"})
    try:
        return asyncio.run(_run(settings, request, args.provider, args.dry_run))
    except ApiError as e:
        return _api_failure(e)
    except StartupError as e:
        return fail(f"{e}; fix it in the environment or .env", BAD_INPUT)

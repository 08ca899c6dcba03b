"""`violation-calls templates list|show NAME|edit NAME`: the prompt templates from a terminal.

An edit opens the template in ``$VISUAL``/``$EDITOR`` and is validated exactly like
``PUT /driver_data/templates/{name}``; a refused edit changes nothing and says why in one line.
The edit is saved as a new version by ``cli:<login name>``, and only if nobody saved another
version meanwhile.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from .cli_support import BAD_INPUT, FAILED, OK, fail, say, with_database
from .database import upgrade_database
from .default_prompts import DEFAULT_TEMPLATES, TemplateKind
from .template_store import (
    InvalidTemplateError,
    StaleTemplateError,
    TemplateStore,
    TemplateVersion,
    UnknownTemplateError,
)

TEXT_MARKER: Final = "[text]"
UNCONFIRMED_MARKER: Final = "[unconfirmed_text]"

T = TypeVar("T")


class EditRefusedError(Exception):
    """An edit that cannot be saved; the message is the one line to print."""


def add_template_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``templates list|show|edit`` to the command line.

    Args:
        commands: The top-level sub-command collection.
    """
    templates = commands.add_parser("templates", help="the prompt templates (versioned)")
    actions = templates.add_subparsers(dest="templates_command", required=True)
    actions.add_parser("list", help="every template's current version")
    show = actions.add_parser("show", help="one template's texts and placeholders")
    show.add_argument("name")
    show.add_argument("--version", type=int, default=None, help="an older version")
    edit = actions.add_parser("edit", help="edit a template in $EDITOR; saved as a new version")
    edit.add_argument("name")


def _with_store(url: str, work: Callable[[TemplateStore], Awaitable[T]]) -> T:
    return with_database(url, lambda sessions: work(TemplateStore(session_factory=sessions)))


def _when(entry: TemplateVersion) -> str:
    return entry.created_at.isoformat(timespec="seconds") if entry.created_at else "-"


def _list(store_url: str) -> int:
    latest = _with_store(store_url, lambda store: store.latest())
    width = max(len(entry.name) for entry in latest)
    say(f"{'NAME':<{width}}  {'KIND':<11}  VERSION  BY / WHEN")
    for entry in latest:
        say(
            f"{entry.name:<{width}}  {entry.kind.value:<11}  {entry.version:>7}  "
            f"{entry.created_by} {_when(entry)}"
        )
    return OK


def _describe(entry: TemplateVersion) -> list[str]:
    placeholders = DEFAULT_TEMPLATES[entry.name].placeholders
    lines = [
        f"{entry.name} ({entry.kind.value}), version {entry.version} by {entry.created_by} "
        f"at {_when(entry)}",
        f"about: {entry.description or '-'}",
        "placeholders (a sentence whose value is missing is dropped):",
        *(f"  {{{name}}}: {about}" for name, about in placeholders.items()),
    ]
    return lines


def _show(url: str, name: str, version: int | None) -> int:
    entry = _with_store(url, lambda store: store.get(name, version))
    lines = _describe(entry)
    lines += ["", TEXT_MARKER, entry.text]
    if entry.kind is TemplateKind.DATA_DRIVEN:
        lines += ["", UNCONFIRMED_MARKER, entry.unconfirmed_text or ""]
    say("\n".join(lines))
    return OK


def _edit_file(entry: TemplateVersion) -> str:
    comments = [f"# {line}" if line else "#" for line in _describe(entry)]
    comments += [
        "# Lines starting with '#' are ignored. Keep the section markers. Save and quit to store",
        "# a new version; quit without changes (or empty the file) to keep the current one.",
    ]
    body = [TEXT_MARKER, entry.text]
    if entry.kind is TemplateKind.DATA_DRIVEN:
        comments += [
            "# [text] is said when the trip data confirms the point; [unconfirmed_text] when it",
            "# contradicts the point or has no data: ask the driver, never state it as a fact.",
        ]
        body += ["", UNCONFIRMED_MARKER, entry.unconfirmed_text or ""]
    return "\n".join([*comments, *body]) + "\n"


def _parse_edit(content: str, kind: TemplateKind) -> tuple[str, str | None] | None:
    """The texts in an edited file; None when it was emptied (keep the current version)."""
    lines = [line for line in content.splitlines() if not line.startswith("#")]
    if not any(line.strip() for line in lines):
        return None
    markers = [line.strip() for line in lines if line.strip() in (TEXT_MARKER, UNCONFIRMED_MARKER)]
    wanted = (
        [TEXT_MARKER, UNCONFIRMED_MARKER] if kind is TemplateKind.DATA_DRIVEN else [TEXT_MARKER]
    )
    if markers != wanted:
        raise EditRefusedError(
            f"the file must have the section markers {' and '.join(wanted)}, once each, in "
            "that order"
        )
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.strip() in wanted:
            current = sections.setdefault(line.strip(), [])
        elif current is not None:
            current.append(line.rstrip())
        elif line.strip():
            raise EditRefusedError(f"text before {TEXT_MARKER}: {line.strip()[:40]!r}")
    text = "\n".join(sections[TEXT_MARKER]).strip()
    unconfirmed = sections.get(UNCONFIRMED_MARKER)
    return text, ("\n".join(unconfirmed).strip() if unconfirmed is not None else None)


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise EditRefusedError("set $EDITOR (or $VISUAL) to the editor to use")
    try:
        finished = subprocess.run([*shlex.split(editor), str(path)], check=False)  # noqa: S603
    except OSError as e:
        raise EditRefusedError(f"cannot start the editor {editor!r}: {e.strerror or e}") from e
    if finished.returncode != 0:
        raise EditRefusedError(f"the editor exited with status {finished.returncode}")


def _edit(url: str, name: str) -> int:
    current = _with_store(url, lambda store: store.get(name))
    with tempfile.TemporaryDirectory(prefix="violation-calls-") as folder:
        path = Path(folder) / f"{name}.txt"
        path.write_text(_edit_file(current), encoding="utf-8")
        _run_editor(path)
        edited = _parse_edit(path.read_text(encoding="utf-8"), current.kind)
    if edited is None or edited == (current.text, current.unconfirmed_text):
        say(f"{name}: no change; still version {current.version}")
        return OK
    text, unconfirmed = edited
    author = f"cli:{getpass.getuser()}"
    saved, _ = _with_store(
        url,
        lambda store: store.save(
            name,
            text=text,
            unconfirmed_text=unconfirmed,
            author=author,
            expected_version=current.version,
        ),
    )
    say(f"{name}: saved as version {saved.version} by {author}")
    return OK


def run_template_command(args: argparse.Namespace, url: str) -> int:
    """Run ``templates list|show|edit``.

    Returns:
        0 on success (including an edit that changed nothing), 1 when an edit is refused or
        the editor failed (nothing is saved), 2 for an unknown template.
    """
    upgrade_database(url)
    try:
        if args.templates_command == "list":
            return _list(url)
        if args.templates_command == "show":
            return _show(url, args.name, args.version)
        return _edit(url, args.name)
    except UnknownTemplateError as e:
        return fail(str(e), BAD_INPUT)
    except (EditRefusedError, InvalidTemplateError, StaleTemplateError) as e:
        return fail(f"{args.name} not changed: {e}", FAILED)

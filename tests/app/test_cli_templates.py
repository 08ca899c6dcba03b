"""`violation-calls templates list|show|edit`: the same rules as the API, from a terminal."""

from __future__ import annotations

import getpass
import json
import shlex
import sqlite3
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.default_prompts import DEFAULT_TEMPLATES, TEMPLATE_NAMES

FUEL = DEFAULT_TEMPLATES["fuel"]

#: A real editor process: replaces text as told by $FAKE_EDIT, or exits with $FAKE_EDIT_EXIT.
EDITOR_SCRIPT = """\
import json, os, pathlib, sys
if os.environ.get("FAKE_EDIT_EXIT"):
    sys.exit(int(os.environ["FAKE_EDIT_EXIT"]))
path = pathlib.Path(sys.argv[1])
text = path.read_text(encoding="utf-8")
for old, new in json.loads(os.environ.get("FAKE_EDIT", "[]")):
    assert old in text, old
    text = text.replace(old, new, 1)
path.write_text(text, encoding="utf-8")
"""


@pytest.fixture
def database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATABASE_URL points at a fresh SQLite file; $EDITOR is the scripted editor."""
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR_SCRIPT, encoding="utf-8")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}")
    return path


def _versions(path: Path, name: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as connection:
        return list(
            connection.execute(
                "SELECT version, created_by, text FROM driver_prompts WHERE name = ? "
                "ORDER BY version",
                (name,),
            )
        )


def _all_versions(path: Path) -> list[tuple[str, int, str, str | None]]:
    with sqlite3.connect(path) as connection:
        return list(
            connection.execute(
                "SELECT name, version, text, unconfirmed_text FROM driver_prompts "
                "ORDER BY name, version"
            )
        )


def _edit(monkeypatch: pytest.MonkeyPatch, *replacements: tuple[str, str]) -> None:
    monkeypatch.setenv("FAKE_EDIT", json.dumps(replacements))


def test_list_shows_every_template(database_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`templates list` prints one line per template with kind, version and author."""
    assert main(["templates", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "VERSION"]
    assert [line.split()[0] for line in lines[1:]] == list(TEMPLATE_NAMES)
    fuel = next(line for line in lines if line.startswith("fuel "))
    assert fuel.split()[1:4] == ["data_driven", "1", "built-in"]


def test_show_prints_texts_and_placeholders(
    database_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`templates show NAME` prints both texts and what the template may use."""
    assert main(["templates", "show", "fuel"]) == 0
    out = capsys.readouterr().out
    assert FUEL.text in out
    assert str(FUEL.unconfirmed_text) in out
    assert "{fuel_percent}: the fuel level" in out


def test_show_unknown_template_exits_2(
    database_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown name exits 2 with one line listing the real ones."""
    assert main(["templates", "show", "fuels"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown template 'fuels'")
    assert len(err.splitlines()) == 1


def test_edit_unknown_template_exits_2_and_changes_nothing(
    database_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editing an unknown name exits 2 with one line listing the real ones, before any editor
    starts, and stores nothing."""
    assert main(["db", "upgrade"]) == 0
    before = _all_versions(database_file)
    assert len(before) == len(TEMPLATE_NAMES)
    capsys.readouterr()
    # An editor that did start would fail the command with exit 1 instead.
    monkeypatch.setenv("FAKE_EDIT_EXIT", "3")

    assert main(["templates", "edit", "fuels"]) == 2

    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: unknown template 'fuels'; the templates are: ")
    assert "fuel" in line.split("the templates are: ")[1].split(", ")
    assert captured.out == ""
    assert _all_versions(database_file) == before


def test_edit_saves_a_new_version_by_the_cli_user(
    database_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edit in the editor is stored as the next version, authored cli:<user>."""
    _edit(monkeypatch, ("plan a fuel stop soon", "fuel up within 50 miles"))
    assert main(["templates", "edit", "fuel"]) == 0
    author = f"cli:{getpass.getuser()}"
    assert f"saved as version 2 by {author}" in capsys.readouterr().out
    versions = _versions(database_file, "fuel")
    assert [(v, by) for v, by, _ in versions] == [(1, "built-in"), (2, author)]
    assert "fuel up within 50 miles" in versions[1][2]
    assert main(["templates", "show", "fuel"]) == 0
    assert "version 2 by cli:" in capsys.readouterr().out


def test_edit_without_changes_stores_nothing(
    database_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Quitting the editor without changes keeps the current version."""
    _edit(monkeypatch)
    assert main(["templates", "edit", "seal_pictures"]) == 0
    assert "no change; still version 1" in capsys.readouterr().out
    assert len(_versions(database_file, "seal_pictures")) == 1


@pytest.mark.parametrize(
    ("replacements", "named"),
    [
        ((("{fuel_percent}, below", "{tank}, below"),), "cannot fill {tank}"),
        ((("{fuel_percent}, below", "{fuel_percent, below"),), "unbalanced brace"),
        ((("plan a fuel stop soon", "x" * 2000),), "too long"),
        ((("\n[unconfirmed_text]\n", "\n[unconfirmed]\n"),), "section markers"),
    ],
)
def test_refused_edit_changes_nothing_and_says_why_in_one_line(
    database_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    replacements: tuple[tuple[str, str], ...],
    named: str,
) -> None:
    """An edit the API would refuse exits 1 with one line naming the problem; no version."""
    _edit(monkeypatch, *replacements)
    assert main(["templates", "edit", "fuel"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: fuel not changed: ")
    assert named in err
    assert len(_versions(database_file, "fuel")) == 1


def test_editor_failing_changes_nothing(
    database_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An editor that exits non-zero leaves the template alone and says so."""
    monkeypatch.setenv("FAKE_EDIT_EXIT", "3")
    assert main(["templates", "edit", "fuel"]) == 1
    assert "the editor exited with status 3" in capsys.readouterr().err
    assert len(_versions(database_file, "fuel")) == 1


def test_edit_without_an_editor_says_what_to_set(
    database_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With neither $VISUAL nor $EDITOR set the edit stops before touching anything."""
    monkeypatch.delenv("EDITOR")
    assert main(["templates", "edit", "fuel"]) == 1
    assert "set $EDITOR" in capsys.readouterr().err

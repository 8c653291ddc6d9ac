"""What every importer writes, and how: serialised (never formatted) files, swapped in whole.

* YAML comes from ``yaml.safe_dump`` and is read back before it is written: a value
  from input (a certificate name, an Exchange ``Fqdn``, an LDIF value, a log field)
  stays one scalar whatever it holds (newline, ``: ``, ``#``, quotes, ``---``). Header
  comment lines have every unprintable character escaped, so a newline in a note
  cannot end the comment and start a key.
* CSV comes from the ``csv`` module (quoted where needed).
* The output folder is written whole: the new files and the folder's other files
  (hard links) go to a fresh folder that is swapped in, as ``tlssim run`` does.
* A file the importer wrote before and the user has since edited is not replaced
  without ``--force``: ``.tlssim-import.json`` keeps the SHA-256 of what was written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sim.errors import NO_VALUE, ScenarioError
from sim.files import NotAnOutputFolder, link_or_copy, swap_folder

MARKER = ".tlssim-import.json"


def comment_line(text: str) -> str:
    """``text`` as one YAML comment line: unprintable characters (newline, carriage
    return, NEL, line and paragraph separators, tabs) escaped.

    >>> comment_line("cert CN=a\\nhosts: [{host: evil}]")
    '# cert CN=a\\\\nhosts: [{host: evil}]\\n'
    """
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f"# {safe}\n" if safe else "#\n"


def yaml_text(document: Any, header: Sequence[str] = (), footer: Sequence[str] = ()) -> str:
    """``document`` as YAML under ``header`` comment lines; it reads back to exactly
    ``document`` (checked here, so a serialiser surprise is a bug, never a wrong file).

    Non-ASCII text is written as it is (``Zürich``), except where PyYAML would write a
    character its reader takes for a line break (NEL, U+2028 in some places): then the
    whole file is written with escapes, which always reads back."""
    comments = "".join(comment_line(line) for line in header)
    trailer = "".join(comment_line(line) for line in footer)
    for readable in (True, False):
        text = comments + yaml.safe_dump(document, sort_keys=False, allow_unicode=readable, width=100) + trailer
        if yaml.safe_load(text) == document:
            return text
    raise AssertionError("the YAML written does not read back to the document")


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ImportFolder:
    """The files one import writes into ``--out``, committed together.

    ``add_*`` collect the files; ``commit`` checks that none would replace a file the
    user edited (unless ``force``), then writes the folder whole."""

    def __init__(self, folder: Path, *, force: bool = False) -> None:
        self.folder, self.force = folder, force
        self.files: dict[str, bytes] = {}

    def add_yaml(self, name: str, document: Any, header: Sequence[str] = (), footer: Sequence[str] = ()) -> None:
        self.files[name] = yaml_text(document, header, footer).encode()

    def add_csv(self, name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
        self.files[name] = csv_text(columns, rows).encode()

    def add_text(self, name: str, text: str) -> None:
        self.files[name] = text.encode()

    def written_before(self) -> dict[str, str]:
        """name -> SHA-256 of what tlssim import last wrote into the folder."""
        try:
            recorded = json.loads((self.folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}

    def check(self) -> None:
        """Refuse to replace a file that differs from what the importer last wrote."""
        if self.folder.exists() and not self.folder.is_dir():
            raise ScenarioError(self.folder, "--out", NO_VALUE, "is a file; give a folder (it is made if missing)")
        if self.force:
            return
        before = self.written_before()
        for name in self.files:
            path = self.folder / name
            if not path.exists():
                continue
            if before.get(name) != _digest(path.read_bytes()):
                why = "was edited since tlssim import wrote it" if name in before else "was not written by tlssim"
                raise ScenarioError(path, "", NO_VALUE, f"{why}; use --force to replace it, or another --out folder")

    def commit(self) -> list[Path]:
        """Write the folder whole: carried-over files, the new files and the marker."""
        self.check()
        record = self.written_before()
        record.update({name: _digest(data) for name, data in self.files.items()})

        def write(fresh: Path) -> list[Path]:
            if self.folder.is_dir():
                _carry_over(self.folder, fresh, skip={*self.files, MARKER})
            for name, data in self.files.items():
                (fresh / name).write_bytes(data)
            (fresh / MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            return [fresh / name for name in self.files]

        try:
            return swap_folder(self.folder, write)
        except NotAnOutputFolder as exc:
            raise ScenarioError(self.folder, "--out", NO_VALUE, str(exc)) from None


def _carry_over(source: Path, fresh: Path, skip: set[str]) -> None:
    """The folder's other entries, as hard links (files) and copies (folders, links)."""
    for entry in os.scandir(source):
        if entry.name in skip:
            continue
        target = fresh / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True, copy_function=link_or_copy)
        else:
            link_or_copy(entry.path, str(target))

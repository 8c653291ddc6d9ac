"""The results store of a sweep: one line per finished run, appended durably.

``runs.jsonl`` gets one JSON line per finished run (flushed and fsynced before the next
run is recorded), and ``series.jsonl`` its queue-depth series, written first so that a
run line always has its series. A crash or Ctrl-C at any moment leaves at most one
partial last line, which the reader skips and the next append isolates; everything
before it is intact. ``experiment.json`` records which experiment wrote the folder, so
that a changed experiment cannot mix its results into it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.files import write_atomic

RUNS = "runs.jsonl"
SERIES = "series.jsonl"
IDENTITY = "experiment.json"


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def claim(self, digest: str, name: str, experiment_file: Path, replications: int | None = None) -> None:
        """Make the folder this experiment's, or refuse if another experiment wrote it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        identity = self.folder / IDENTITY
        if identity.exists():
            recorded = json.loads(identity.read_text(encoding="utf-8"))
            if recorded.get("experiment_hash") != digest:
                raise ScenarioError(
                    experiment_file,
                    "--out",
                    str(self.folder),
                    f"holds results of a different experiment ({recorded.get('name')}, hash "
                    f"{str(recorded.get('experiment_hash'))[:12]}); the experiment or a file it uses has changed "
                    "since (accepted: a new --out folder, or the unchanged experiment)",
                )
            return
        payload = {
            "name": name,
            "experiment_hash": digest,
            "experiment_file": str(experiment_file.resolve()),
            "replications_override": replications,
        }
        write_atomic(identity, lambda p: p.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8"))

    def append(self, row: dict[str, Any], series: dict[str, Any]) -> None:
        _append_line(self.folder / SERIES, series)
        _append_line(self.folder / RUNS, row)

    def rows(self) -> list[dict[str, Any]]:
        """Every complete run line, the first for each (point, replication)."""
        seen: set[tuple[str, int]] = set()
        out = []
        for row in _read_lines(self.folder / RUNS):
            key = (row["point"], row["replication"])
            if key not in seen:
                seen.add(key)
                out.append(row)
        return out

    def series(self) -> list[dict[str, Any]]:
        finished = {(r["point"], r["replication"]) for r in self.rows()}
        seen: set[tuple[str, int]] = set()
        out = []
        for record in _read_lines(self.folder / SERIES):
            key = (record["point"], record["replication"])
            if key in finished and key not in seen:
                seen.add(key)
                out.append(record)
        return out


def _append_line(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":  # a crash left half a line: close it off
                handle.write(b"\n")
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the remains of a write cut short
        if isinstance(record, dict):
            records.append(record)
    return records

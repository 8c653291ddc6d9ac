"""The results store of a sweep: one line per finished run, appended durably.

``runs.jsonl`` gets one JSON line per finished run (flushed and fsynced before the next
run is recorded), and ``series.jsonl`` its queue-depth series, written first so that a
run line always has its series. A crash or a kill at any moment leaves at most one
partial last line, which the reader skips and the next append isolates; everything
before it is intact.

Runs are keyed by (run key, replication), the run key being a content hash of the
design point's resolved scenario (``design.run_key``). So an experiment can grow: raise
``replications``, add an axis value, reword a description, and every run already
stored is reused, only what is new is computed. ``experiment.json`` names the
experiment (a folder of another experiment is refused) and where its file is, relative
to the folder so that the folder can be moved; ``history.jsonl`` has one line per
invocation (executor, runs executed, wall time).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.files import write_text_atomic

RUNS = "runs.jsonl"
SERIES = "series.jsonl"
IDENTITY = "experiment.json"
HISTORY = "history.jsonl"

RunId = tuple[str, int]  # (run key, replication)


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Stores written before run keys existed hold rows keyed by point only; they are
        # still reused while the experiment is unchanged (point key -> run key).
        self.legacy: dict[str, str] = {}

    def recorded(self) -> dict[str, Any] | None:
        """``experiment.json``: which experiment last wrote the folder; ``None`` if none did."""
        identity = self.folder / IDENTITY
        return json.loads(identity.read_text(encoding="utf-8")) if identity.exists() else None

    def recognise(self, digest: str, run_keys: dict[str, str]) -> None:
        """Reuse rows written before run keys existed, while the experiment is unchanged."""
        recorded = self.recorded()
        if recorded is not None and recorded.get("experiment_hash") == digest:
            self.legacy = dict(run_keys)

    def claim(
        self, digest: str, name: str, experiment_file: Path, replications: int | None, run_keys: dict[str, str]
    ) -> None:
        """Make the folder this experiment's, or refuse if another experiment wrote it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        recorded = self.recorded()
        if recorded is not None and recorded.get("name") != name:
            raise ScenarioError(
                experiment_file,
                "--out",
                str(self.folder),
                f"holds results of a different experiment ({recorded.get('name')}, not {name}) "
                "(accepted: a new --out folder, or the experiment that wrote it)",
            )
        self.recognise(digest, run_keys)
        relative = os.path.relpath(experiment_file.resolve(), self.folder.resolve())
        payload: dict[str, Any] = {"name": name, "experiment_hash": digest, "experiment_file": relative}
        payload["replications_override"] = replications
        write_text_atomic(self.folder / IDENTITY, json.dumps(payload, indent=2) + "\n")

    def append(self, row: dict[str, Any], series: dict[str, Any]) -> None:
        _append_line(self.folder / SERIES, series)
        _append_line(self.folder / RUNS, row)

    def _key(self, record: dict[str, Any]) -> RunId | None:
        key = record.get("run_key") or self.legacy.get(str(record.get("point")))
        return (key, int(record["replication"])) if key else None

    def rows(self) -> dict[RunId, dict[str, Any]]:
        """Every complete run line, the first for each (run key, replication)."""
        out: dict[RunId, dict[str, Any]] = {}
        for row in _read_lines(self.folder / RUNS):
            key = self._key(row)
            if key is not None and key not in out:
                out[key] = row
        return out

    def series(self) -> dict[RunId, dict[str, Any]]:
        finished = self.rows()
        out: dict[RunId, dict[str, Any]] = {}
        for record in _read_lines(self.folder / SERIES):
            key = self._key(record)
            if key is not None and key in finished and key not in out:
                out[key] = record
        return out

    def log(self, entry: dict[str, Any]) -> None:
        """One line in the history of invocations."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        _append_line(self.folder / HISTORY, {"finished_at": stamp, **entry})

    def history(self) -> list[dict[str, Any]]:
        return _read_lines(self.folder / HISTORY)


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

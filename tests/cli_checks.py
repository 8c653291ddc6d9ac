"""What every user mistake must look like on the command line (shared by the tests)."""

from __future__ import annotations

from typing import Any


def one_error_line(result: Any) -> str:
    """The CLI result is exit 2 with exactly one non-empty line and no traceback; that line."""
    assert result.exit_code == 2, result.output
    text = result.stderr or result.output
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]

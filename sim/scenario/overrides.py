"""Dotted override paths, addressed by name: ``servers.EX1.virtual_servers.default-smtp.outbound_tls``.

A segment picks a mapping key, a list entry by its ``name`` (or ``host``), or a list
entry by index. Names may contain dots (``fabrikam.com``), so at each step the longest
run of segments that names an existing entry wins. A path into a section the file
leaves at its default creates that section (``...default-smtp.delivery.expiration_timeout``
with no ``delivery`` written). The same paths serve as sweep axes.
"""

from __future__ import annotations

from typing import Any

_NAME_KEYS = ("name", "host")


class OverrideError(ValueError):
    """The path does not lead anywhere in the document."""


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path`` inside ``document`` (in place)."""
    segments = path.split(".")
    if not path or any(not s for s in segments):
        raise OverrideError("empty segment in path")
    node: Any = document
    i = 0
    while True:
        step, used = _step(node, segments, i)
        last = i + used == len(segments)
        if last:
            _assign(node, step, value)
            return
        if isinstance(node, dict) and node.get(step) is None:
            # A section the file leaves at its default (absent or null): create it; the
            # schema then decides whether the field inside is allowed.
            node[step] = {}
        node = node[step]
        i += used


def _step(node: Any, segments: list[str], i: int) -> tuple[Any, int]:
    remaining = segments[i:]
    if isinstance(node, dict):
        for used in range(len(remaining), 0, -1):
            key = ".".join(remaining[:used])
            if key in node:
                return key, used
        return remaining[0], 1  # a new key or section: the schema decides whether it is allowed
    if isinstance(node, list):
        for used in range(len(remaining), 0, -1):
            wanted = ".".join(remaining[:used])
            for index, entry in enumerate(node):
                if isinstance(entry, dict) and any(entry.get(k) == wanted for k in _NAME_KEYS):
                    return index, used
        head = remaining[0]
        if head.isdigit() and int(head) < len(node):
            return int(head), 1
        names = [str(e.get("name", e.get("host"))) for e in node if isinstance(e, dict)]
        raise OverrideError(f"no entry named {head!r} (available: {', '.join(names) or 'none'})")
    raise OverrideError(f"{segments[i - 1] if i else 'document'!r} is a value, not a section")


def _assign(node: Any, step: Any, value: Any) -> None:
    if isinstance(node, (dict, list)):
        node[step] = value
    else:
        raise OverrideError("cannot set a field inside a value")


def get_path(document: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` (as :func:`set_path` addresses it); ``OverrideError``
    when the path leads nowhere."""
    segments = path.split(".")
    node: Any = document
    i = 0
    while i < len(segments):
        step, used = _step(node, segments, i)
        if isinstance(node, dict) and step not in node:
            raise OverrideError(f"no field {step!r}")
        node = node[step]
        i += used
    return node

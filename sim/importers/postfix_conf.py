"""Postfix ``main.cf`` / ``postconf -n`` text: logical lines and parameter expansion.

Format (postconf(5)): ``name = value``; a line that starts with white space continues
the previous one (``postconf -nf`` folds long values so); ``#`` at the start of a line
is a comment; a later setting of a name replaces an earlier one. ``service/type/name =
value`` lines are ``postconf -P`` output: master.cf ``-o`` overrides for one service.

Expansion (postconf(5) "$name", Postfix >= 3.0 conditionals): ``$name``, ``${name}``,
``$(name)``; ``${name?value}`` (value when name is non-empty), ``${name:value}`` (value
when it is empty); since 3.x the value may be ``{...}``, and ``${name?{a}:{b}}`` chooses.
Each parameter is expanded once (memoised), so the work is linear in the text; a
parameter that refers back to itself is an error naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import NO_VALUE, ScenarioError
from sim.importers.text import read_text_lines

_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?")  # policyd-spf_time_limit too
_REFERENCE = re.compile(r"\$(?:([A-Za-z0-9_]+)|\{([A-Za-z0-9_]+)([?:])?|\(([A-Za-z0-9_]+)\))")
MAX_EXPANDED = 1_000_000  # characters: a value that expands past this is an error, not a hang

# Built-in defaults that main.cf values commonly refer to (postconf -d, Postfix 3.7).
DEFAULTS = {
    "config_directory": "/etc/postfix",
    "data_directory": "/var/lib/postfix",
    "queue_directory": "/var/spool/postfix",
    "default_transport": "smtp",
    "relay_transport": "relay",
    "local_transport": "local:$myhostname",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "myorigin": "$myhostname",
    "smtpd_banner": "$myhostname ESMTP $mail_name",
    "mail_name": "Postfix",
}


@dataclass
class Postconf:
    """The parameters of one ``postconf -n`` (or main.cf) file."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    _expanded: dict[str, str] = field(default_factory=dict)

    def raw(self, name: str) -> str | None:
        return self.values.get(name)

    def line(self, name: str) -> int:
        return self.lines.get(name, 0)

    def where(self, name: str) -> str:
        return f"line {self.line(name)}: {name}" if self.line(name) else name

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: str = "") -> str:
        """The value of ``name`` with every ``$reference`` expanded."""
        return self._value_of(name, ()) if name in self.values or name in DEFAULTS else default

    def _value_of(self, name: str, stack: tuple[str, ...]) -> str:
        if name in self._expanded:
            return self._expanded[name]
        if name in stack:
            chain = " -> ".join((*stack[stack.index(name) :], name))
            raise ScenarioError(self.path, self.where(name), NO_VALUE, f"refers to itself ({chain})")
        if name == "mydomain" and name not in self.values:
            host = self._value_of("myhostname", (*stack, name))
            return host.partition(".")[2] or "localdomain"
        raw = self.values.get(name, DEFAULTS.get(name, ""))
        value = self._substitute(raw, (*stack, name))
        self._expanded[name] = value
        return value

    def _substitute(self, text: str, stack: tuple[str, ...]) -> str:
        if "$" not in text:
            return text
        out: list[str] = []
        size = 0
        position = 0
        while True:
            match = _REFERENCE.search(text, position)
            if match is None:
                out.append(text[position:])
                break
            out.append(text[position : match.start()])
            simple = match.group(1) or match.group(4)
            if simple is not None:
                out.append(self._value_of(simple, stack))
                position = match.end()
            else:
                name, operator = match.group(2), match.group(3)
                closing = _closing_brace(text, match.end())
                if closing < 0:
                    raise ScenarioError(self.path, self.where(stack[-1]), text[match.start() :][:60], "unclosed ${")
                body = text[match.end() : closing]
                out.append(self._conditional(name, operator, body, stack))
                position = closing + 1
            size += len(out[-1])
            if size > MAX_EXPANDED:
                raise ScenarioError(
                    self.path, self.where(stack[-1]), NO_VALUE, f"expands past {MAX_EXPANDED:,} characters"
                )
        return "".join(out)

    def _conditional(self, name: str, operator: str | None, body: str, stack: tuple[str, ...]) -> str:
        """``${name}``; ``${name?value}``: value when name is set (non-empty), else empty;
        ``${name:value}``: value when name is empty, else empty; ``${name?{a}:{b}}``: a or b."""
        value = self._value_of(name, stack)
        if operator is None:
            return value
        when_set, when_empty = body, ""
        if body.startswith("{"):
            first_end = _closing_brace(body, 1)
            if first_end > 0:
                when_set, rest = body[1:first_end], body[first_end + 1 :].strip()
                if rest.startswith(":{") and rest.endswith("}"):
                    when_empty = rest[2:-1]
        chosen = (when_set if not value else "") if operator == ":" else (when_set if value else when_empty)
        return self._substitute(chosen, stack)


def _closing_brace(text: str, start: int) -> int:
    """The index of the ``}`` that closes a brace opened just before ``start``, or -1."""
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def parse_postconf(path: Path) -> Postconf:
    """The parameters of ``postconf -n`` / ``-nf`` output or a main.cf file."""
    conf = Postconf(path)
    parts: dict[str, list[str]] = {}
    last: str | None = None
    for number, line in read_text_lines(path):
        stripped = line.strip()
        if not stripped or line.startswith("#"):
            continue
        if line[0] in " \t":
            if last is None:
                raise ScenarioError(path, f"line {number}", stripped[:60], "a continuation line before any parameter")
            if not stripped.startswith("#"):
                parts[last].append(stripped)
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or _NAME.fullmatch(name) is None:
            raise ScenarioError(path, f"line {number}", stripped[:60], "not a postconf line (accepted: name = value)")
        parts[name] = [value.strip()] if value.strip() else []
        conf.lines[name] = number
        last = name
    conf.values = {name: " ".join(values) for name, values in parts.items()}
    return conf

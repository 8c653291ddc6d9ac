"""``tlssim import exchange2003``: an LDIFDE export of the SMTP virtual servers and SMTP
connectors from Active Directory -> an organisation file (reference probe-and-import.md
B4). The IIS metabase is a one-way replica of AD, so AD is the source.

LDIF rules (RFC 2849): ``attr: value`` per line, ``attr:: base64``, a line starting
with one space continues the previous one, multi-valued attributes repeat, entries
are separated by blank lines. Timers are in minutes. The attribute names of the
remote-queue timers are NOT VERIFIED against a real export (the KB text is cut off);
they follow the metabase names.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from sim.errors import NO_VALUE, ScenarioError
from sim.importers.postfix import Imported
from sim.importers.text import ascii_int, read_text_lines
from sim.vocabulary import is_domain, normalise_pattern

_NAME = re.compile(r"[^A-Za-z0-9._-]")
TLS_REQUIRED = 4  # msExchSmtpOutboundSecurityFlag bit: the "TLS encryption" box


def read_ldif(path: Path) -> list[tuple[int, dict[str, list[str]]]]:
    """Entries as (first line number, attribute -> values), attribute names lower-cased.

    A value folded over lines (RFC 2849: a line starting with one space continues the
    previous one) is joined first and decoded after, so a base64 value wrapped at 76
    columns, as ldifde writes it, decodes whole; the pieces are collected in a list and
    joined once (linear in the value's length)."""
    entries: list[tuple[int, dict[str, list[str]]]] = []
    current: dict[str, list[str]] = {}
    pending: tuple[str, list[str], bool, int] | None = None  # attribute, pieces, base64?, line
    start = 0

    def finish_value() -> None:
        nonlocal pending
        if pending is None:
            return
        name, pieces, encoded, number = pending
        value = "".join(pieces)
        if encoded:
            try:
                value = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace")
            except ValueError:
                raise ScenarioError(path, f"line {number}", value[:40], "bad base64 value") from None
        current.setdefault(name, []).append(value.strip())
        pending = None

    for number, line in read_text_lines(path, max_line=16 * 1024 * 1024):
        if line.startswith("#"):
            continue
        if line.startswith(" "):
            if pending is None:
                raise ScenarioError(path, f"line {number}", line.strip()[:40], "a continuation line outside an entry")
            pending[1].append(line[1:])
            continue
        finish_value()
        if not line.strip():
            if current:
                entries.append((start, current))
            current = {}
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ScenarioError(path, f"line {number}", line[:60], "not an LDIF line (accepted: attribute: value)")
        if not current:
            start = number
        encoded = value.startswith(":")
        pending = (name.strip().lower(), [value[1:] if encoded else value], encoded, number)
    finish_value()
    if current:
        entries.append((start, current))
    return entries


def _dn_parts(dn: str) -> list[tuple[str, str]]:
    return [(key, value) for key, _, value in (part.partition("=") for part in re.split(r",(?=\w+=)", dn)) if value]


def _virtual_server_of(dn: str) -> tuple[str, str] | None:
    """``CN=1,CN=SMTP,CN=Protocols,CN=<server>,CN=Servers,...`` -> (server, virtual server)."""
    parts = _dn_parts(dn)
    values = [v for _, v in parts]
    for i in range(len(values) - 3):
        if values[i + 1].upper() == "SMTP" and values[i + 2].lower() == "protocols":
            return _NAME.sub("-", values[i + 3]).lstrip("._-")[:63] or "server", f"vs{_NAME.sub('-', values[i])[:60]}"
    return None


def _number(path: Path, line: int, entry: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    """An attribute that holds a number: ASCII digits within [low, high], or exit 2 naming it."""
    values = entry.get(name.lower())
    if not values:
        return None
    found = ascii_int(values[0].strip(), low, high)
    if found is None:
        raise ScenarioError(
            path, f"line {line}: {name}", values[0][:40], f"not a whole number from {low:,} to {high:,}"
        )
    return found


def import_exchange2003(path: Path) -> Imported:
    notes: list[str] = []
    servers: dict[str, dict[str, Any]] = {}
    connectors = []
    for number, entry in read_ldif(path):
        dn = entry.get("dn", [""])[0]
        classes = {c.lower() for c in entry.get("objectclass", [])}
        located = _virtual_server_of(dn)
        if located is not None and ("protocolcfgsmtpserver" in classes or not classes):
            _virtual_server(path, number, entry, located, servers, notes)
        elif "msexchroutingsmtpconnector" in classes or "routinglist" in entry:
            connectors.append((number, entry))
        else:
            notes.append(f"line {number}: entry {dn[:60]} not used")
    if not servers:
        raise ScenarioError(path, "", NO_VALUE, "no SMTP virtual server entries (CN=<n>,CN=SMTP,CN=Protocols,...)")
    document = {
        "organisation": "imported",
        "profile": "exchange2003",
        "routing_groups": [{"name": "rg"}],
        "servers": list(servers.values()),
        "connectors": [_connector(path, number, entry, servers, notes) for number, entry in connectors],
    }
    assumed = ["connector scope: organisation (the export does not hold it)"] if connectors else []
    return Imported(document, notes, assumed)


def _virtual_server(
    path: Path,
    line: int,
    entry: dict[str, list[str]],
    located: tuple[str, str],
    servers: dict[str, dict[str, Any]],
    notes: list[str],
) -> None:
    server_name, vs_name = located
    vs: dict[str, Any] = {"name": vs_name}
    flags = _number(path, line, entry, "msExchSmtpOutboundSecurityFlag", 0, 2**32) or 0
    vs["outbound_tls"] = "required" if flags & TLS_REQUIRED else "off"
    delivery: dict[str, Any] = {}
    retries = entry.get("msexchsmtpremotequeueretries", [""])[0]
    steps = []
    for step in (x.strip() for x in retries.split(",") if x.strip()):
        found = ascii_int(step, 1, 10_000_000)
        if found is None:
            raise ScenarioError(
                path, f"line {line}: msExchSmtpRemoteQueueRetries", retries[:40], "not minutes (1,2,...)"
            )
        steps.append(found * 60)
    for field, value in zip(("first_retry", "second_retry", "third_retry", "subsequent_retry"), steps, strict=False):
        delivery[field] = value
    for attribute, field in (
        ("msExchSmtpRemoteQueueDelayNotification", "delay_notification"),
        ("msExchSmtpRemoteQueueExpirationTimeout", "expiration_timeout"),
    ):
        timer = _number(path, line, entry, attribute, 0, 10_000_000)
        if timer is not None:
            delivery[field] = float(timer) * 60
    if delivery:
        vs["delivery"] = delivery
    for attribute, field in (
        ("msExchSmtpMaxOutgoingConnections", "max_connections"),
        ("msExchSmtpMaxOutgoingConnectionsPerDomain", "max_connections_per_domain"),
    ):
        count = _number(path, line, entry, attribute, 1, 10_000_000)
        if count is not None:
            vs[field] = count
    smart = entry.get("msexchsmtpsmarthost", [""])[0]
    if smart:
        notes.append(f"{server_name}/{vs_name}: smart host {smart}: not imported on the virtual server (add a relay)")
    server = servers.setdefault(server_name, {"name": server_name, "routing_group": "rg", "virtual_servers": []})
    server["virtual_servers"].append(vs)


def _connector(
    path: Path, number: int, entry: dict[str, list[str]], servers: dict[str, dict[str, Any]], notes: list[str]
) -> dict[str, Any]:
    name = _NAME.sub("-", entry.get("cn", [f"connector-{number}"])[0]).lstrip("._-")[:63] or f"connector-{number}"
    spaces = []
    for raw in entry.get("routinglist", []):
        kind, _, rest = raw.partition(":")
        if kind.upper() != "SMTP":
            notes.append(f"{name}: address space {raw} is not SMTP: skipped")
            continue
        pattern, _, cost_text = rest.partition(";")
        cost = ascii_int(cost_text.strip(), 1, 100) if cost_text.strip() else 1
        if cost is None:
            raise ScenarioError(path, f"line {number}: routingList", raw[:60], "cost not a whole number from 1 to 100")
        try:
            spaces.append({"pattern": normalise_pattern(pattern), "cost": cost})
        except ValueError:
            notes.append(f"{name}: address space {raw!r} is not a domain pattern: skipped")
    sources = []
    for dn in entry.get("msexchsourcebridgeheadserversdn", []):
        located = _virtual_server_of(dn)
        if located is not None and located[0] in servers:
            sources.append(f"{located[0]}/{located[1]}")
    if not sources:
        raise ScenarioError(
            path, f"line {number}: msExchSourceBridgeheadServersDN", NO_VALUE, "no source virtual server in the export"
        )
    connector: dict[str, Any] = {"name": name, "source": sources, "address_spaces": spaces}
    flags = _number(path, number, entry, "msExchSmtpOutboundSecurityFlag", 0, 2**32) or 0
    if flags & TLS_REQUIRED:
        connector["tls"] = "required"
    smart = []
    for raw_host in entry.get("msexchsmtpsmarthost", [""])[0].split(";"):
        host = raw_host.strip().strip("[]").lower()
        if host and is_domain(host):
            smart.append(host)
        elif host:
            notes.append(f"{name}: smart host {raw_host.strip()[:60]!r} is not a host name: skipped")
    if smart:
        connector.update(delivery="smart_host", smart_hosts=smart)
        notes.append(f"{name}: smart hosts {', '.join(smart)}: add them to the remote world's hosts")
    return connector

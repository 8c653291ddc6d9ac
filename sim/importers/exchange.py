"""``tlssim import exchange``: ``Export-Clixml`` files of Get-SendConnector,
Get-TransportService and Get-ReceiveConnector -> an organisation file (reference
probe-and-import.md B2).

The CLIXML reader follows the format's rules: namespace
``http://schemas.microsoft.com/powershell/2004/04``; one top-level ``<Obj>`` per object;
properties are the children of ``<Props>`` and ``<MS>`` with an ``N`` attribute;
primitive tags (``S``, ``B``, ``I32``, ``I64``, ``U32``, ``Db``, ``DT``, ``TS``, ``G``,
``Nil``, ``BA``); a complex ``<Obj>`` is a list when it has ``<LST>``, else its
``<ToString>``; ``<Ref RefId>`` refers to an object serialised earlier. Objects are told
apart by their type names (``<TN>``, or the ``<TNRef>`` of an earlier one).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from sim.errors import NO_VALUE, ScenarioError
from sim.importers.postfix import Imported

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
_PRIMITIVES = {"S", "I32", "I64", "U32", "U64", "Db", "DT", "TS", "G", "BA", "C", "By", "SB", "I16", "U16", "D"}
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")
_NAME = re.compile(r"[^A-Za-z0-9._-]")


def read_clixml(path: Path) -> list[tuple[list[str], dict[str, Any]]]:
    """Every top-level object as (type names, properties)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise ScenarioError(
            path, f"line {line} column {column}", NO_VALUE, "not valid XML (Export-Clixml expected)"
        ) from None
    except OSError as exc:
        raise ScenarioError(path, "", NO_VALUE, f"cannot read: {exc.strerror or exc}") from None
    if root.tag != f"{NS}Objs":
        raise ScenarioError(
            path, "", root.tag, "not an Export-Clixml file (accepted: <Objs> in the PowerShell namespace)"
        )
    types: dict[str, list[str]] = {}
    objects: dict[str, Any] = {}
    found = []
    for obj in root.findall(f"{NS}Obj"):
        names = _types(obj, types)
        found.append((names, _properties(obj, types, objects)))
    return found


def _types(obj: ET.Element, types: dict[str, list[str]]) -> list[str]:
    tn = obj.find(f"{NS}TN")
    if tn is not None:
        names = [t.text or "" for t in tn.findall(f"{NS}T")]
        types[tn.get("RefId", "")] = names
        return names
    ref = obj.find(f"{NS}TNRef")
    return types.get(ref.get("RefId", ""), []) if ref is not None else []


def _properties(obj: ET.Element, types: dict[str, list[str]], objects: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for group in ("Props", "MS"):
        holder = obj.find(f"{NS}{group}")
        if holder is None:
            continue
        for child in holder:
            name = child.get("N")
            if name is not None:
                values[name] = _value(child, types, objects)
    return values


def _value(element: ET.Element, types: dict[str, list[str]], objects: dict[str, Any]) -> Any:
    tag = element.tag.removeprefix(NS)
    if tag == "Nil":
        return None
    if tag == "B":
        return (element.text or "").strip().lower() == "true"
    if tag in _PRIMITIVES:
        return element.text or ""
    if tag == "Ref":
        return objects.get(element.get("RefId", ""))
    if tag == "Obj":
        _types(element, types)
        lst = element.find(f"{NS}LST")
        if lst is not None:
            value: Any = [_value(item, types, objects) for item in lst]
        else:
            text = element.find(f"{NS}ToString")
            value = text.text if text is not None else None
        objects[element.get("RefId", "")] = value
        return value
    return element.text


def timespan(value: Any) -> float | None:
    """``[d.]hh:mm:ss`` -> seconds (``2.00:00:00`` is 2 days)."""
    if not isinstance(value, str):
        return None
    match = _TIMESPAN.match(value.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _kind(names: list[str], props: dict[str, Any]) -> str | None:
    joined = " ".join(names)
    if "SendConnector" in joined or "AddressSpaces" in props:
        return "send"
    if "ReceiveConnector" in joined or "Bindings" in props:
        return "receive"
    if "TransportServer" in joined or "TransportService" in joined or "MessageExpirationTimeout" in props:
        return "transport"
    return None


def import_exchange(paths: list[Path]) -> Imported:
    """The organisation of Exchange 2007+ servers and send connectors."""
    notes: list[str] = []
    found: dict[str, list[tuple[Path, dict[str, Any]]]] = {"send": [], "receive": [], "transport": []}
    for path in paths:
        for names, props in read_clixml(path):
            kind = _kind(names, props)
            if kind is None:
                notes.append(f"{path.name}: an object of type {names[:1] or ['?']} was not used")
            else:
                found[kind].append((path, props))
    sends, receives, transports = found["send"], found["receive"], found["transport"]
    if not (sends or receives or transports):
        raise ScenarioError(
            paths[0], "", NO_VALUE, "no Get-SendConnector, Get-TransportService or Get-ReceiveConnector objects"
        )
    servers: dict[str, dict[str, Any]] = {}
    connectors = [_send_connector(path, props, servers, notes) for path, props in sends]
    for _, props in transports:
        _transport(props, _server(servers, str(props.get("Name") or props.get("Identity") or "EX1")), notes)
    for _, props in receives:
        _receive(props, servers, notes)
    if not servers:
        servers["EX1"] = _new_server("EX1")
    document = {
        "organisation": "imported",
        "profile": "exchange2016",
        "routing_groups": [{"name": "site"}],
        "servers": list(servers.values()),
        "connectors": [c for c in connectors if c is not None],
    }
    return Imported(document, notes)


def _new_server(name: str) -> dict[str, Any]:
    # Exchange sends with opportunistic TLS unless a connector says more (2a).
    return {
        "name": name,
        "routing_group": "site",
        "virtual_servers": [{"name": "default", "outbound_tls": "opportunistic"}],
    }


def _server(servers: dict[str, dict[str, Any]], raw: str) -> dict[str, Any]:
    name = _NAME.sub("-", raw.split("\\")[0]) or "EX1"
    return servers.setdefault(name, _new_server(name))


def _send_connector(
    path: Path, props: dict[str, Any], servers: dict[str, dict[str, Any]], notes: list[str]
) -> dict[str, Any] | None:
    name = _NAME.sub("-", str(props.get("Name") or "connector"))
    spaces = []
    for raw in props.get("AddressSpaces") or []:
        text = str(raw)
        if text.lower().startswith("local:"):
            text = text[6:]
        kind, _, rest = text.partition(":") if ":" in text.split(";")[0] else ("SMTP", "", text)
        if kind.upper() != "SMTP":
            notes.append(f"{name}: address space {raw} is not SMTP: skipped")
            continue
        pattern, _, cost = rest.partition(";")
        spaces.append({"pattern": pattern.strip(), "cost": int(cost) if cost.strip().isdigit() else 1})
    if not spaces:
        notes.append(f"{name}: no SMTP address space: skipped")
        return None
    sources = [f"{_server(servers, str(s))['name']}/default" for s in props.get("SourceTransportServers") or []]
    if not sources:
        sources = [f"{_server(servers, 'EX1')['name']}/default"]
    connector: dict[str, Any] = {
        "name": name,
        "source": sources,
        "address_spaces": spaces,
        "enabled": props.get("Enabled", True) is not False,
        "require_tls": bool(props.get("RequireTLS")),
        "ignore_starttls": bool(props.get("IgnoreSTARTTLS")),
    }
    if props.get("IsScopedConnector"):
        connector["scope"] = "routing_group"
    level = props.get("TlsAuthLevel")
    if level in ("EncryptionOnly", "CertificateValidation", "DomainValidation"):
        connector["tls_auth_level"] = level
    smart = [str(h).strip("[]").lower() for h in props.get("SmartHosts") or []]
    if props.get("DNSRoutingEnabled") is False and smart:
        connector.update(delivery="smart_host", smart_hosts=smart)
        notes.append(f"{name}: smart hosts {', '.join(smart)}: add them to the remote world's hosts")
    for field in ("Fqdn", "Port", "TlsDomain", "DomainSecureEnabled", "ErrorPolicies"):
        if props.get(field) not in (None, "", False, "25", "Default"):
            notes.append(f"{name}: {field} = {props[field]} (not modelled)")
    return connector


def _transport(props: dict[str, Any], server: dict[str, Any], notes: list[str]) -> None:
    vs = server["virtual_servers"][0]
    delivery: dict[str, Any] = {}
    for field, target in (
        ("MessageExpirationTimeout", "expiration_timeout"),
        ("DelayNotificationTimeout", "delay_notification"),
        ("TransientFailureRetryInterval", "transient_failure_retry_interval"),
        ("OutboundConnectionFailureRetryInterval", "outbound_connection_failure_retry_interval"),
    ):
        seconds = timespan(props.get(field))
        if seconds is not None:
            delivery[target] = seconds
    count = props.get("TransientFailureRetryCount")
    if str(count).isdigit():
        delivery["transient_failure_retry_count"] = int(str(count))
    if delivery:
        vs["delivery"] = delivery
    per_domain, total = props.get("MaxPerDomainOutboundConnections"), props.get("MaxOutboundConnections")
    if str(per_domain).isdigit():
        vs["max_connections_per_domain"] = int(str(per_domain))
    if str(total).isdigit():
        vs["max_connections"] = int(str(total))
    if props.get("MessageRetryInterval"):
        notes.append(f"{server['name']}: MessageRetryInterval = {props['MessageRetryInterval']} (not modelled)")


def _receive(props: dict[str, Any], servers: dict[str, dict[str, Any]], notes: list[str]) -> None:
    identity = str(props.get("Identity") or props.get("Server") or "EX1")
    bindings = [str(b) for b in props.get("Bindings") or []]
    groups = str(props.get("PermissionGroups") or "")
    if not any(b.endswith(":25") for b in bindings) or "AnonymousUsers" not in groups:
        notes.append(f"{identity}: not the anonymous port-25 receive connector: its TLS is not what senders meet")
        return
    mechanisms = str(props.get("AuthMechanism") or "")
    vs = _server(servers, identity)["virtual_servers"][0]
    offered = "Tls" in [m.strip() for m in mechanisms.split(",")]
    secure = bool(props.get("RequireTLS")) and offered
    vs["inbound"] = {"tls": "offered" if offered else "off", "strength": 128, "require_secure_channel": secure}

"""``tlssim import exchange``: ``Export-Clixml`` files of Get-SendConnector,
Get-TransportService, Get-ReceiveConnector, Get-ExchangeServer and Get-AcceptedDomain ->
an organisation file (reference probe-and-import.md B2).

The CLIXML reader follows the format's rules: namespace
``http://schemas.microsoft.com/powershell/2004/04``; one top-level ``<Obj>`` per object;
properties are the children of ``<Props>`` and ``<MS>`` with an ``N`` attribute;
primitive tags (``S``, ``B``, ``I32``, ``I64``, ``U32``, ``Db``, ``DT``, ``TS``, ``G``,
``Nil``, ``BA``); a complex ``<Obj>`` is a list when it has ``<LST>``, else its
``<ToString>`` (``Unlimited``, ``35 MB (36,700,160 bytes)``, ``2.00:00:00``);
``<Ref RefId>`` refers to an object serialised earlier. Files are UTF-8 with a BOM as
PowerShell writes them. Objects are told apart by their type names (``<TN>``, or the
``<TNRef>`` of an earlier one).

A server's profile follows its build (``AdminDisplayVersion``, "Version 15.2 (Build
986.5)"): 15.0 (2013) and 15.1 (2016) -> ``exchange2016``, 15.2 (2019, SE) ->
``exchange2019``; an Edge Transport server -> ``exchange2016-edge``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from sim.errors import NO_VALUE, ScenarioError
from sim.importers.postfix import Imported
from sim.importers.text import ascii_int
from sim.vocabulary import is_domain, normalise_pattern

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
_PRIMITIVES = {"S", "I32", "I64", "U32", "U64", "Db", "DT", "TS", "G", "BA", "C", "By", "SB", "I16", "U16", "D"}
_TIMESPAN = re.compile(r"(?:([0-9]{1,5})\.)?([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,7})?")
_VERSION = re.compile(r"Version ([0-9]{1,3})\.([0-9]{1,3}) \(Build ([0-9]{1,6})")
_NAME = re.compile(r"[^A-Za-z0-9._-]")
MAX_DEPTH = 64  # nesting of objects in an export: Exchange's are a few levels deep
UNLIMITED_CONNECTIONS = 100_000  # "Unlimited": no cap the model would ever reach


def read_clixml(path: Path) -> list[tuple[list[str], dict[str, Any]]]:
    """Every top-level object as (type names, properties).

    Read incrementally: each top-level ``<Obj>`` is turned into values as its end tag
    arrives and its elements are dropped, so memory holds one object (and the values
    read), not the whole document tree; nesting deeper than the limit is refused as it
    is read."""
    types: dict[str, list[str]] = {}
    objects: dict[str, Any] = {}
    found = []
    depth = 0
    root: ET.Element | None = None
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                    if element.tag != f"{NS}Objs":
                        raise ScenarioError(path, "", element.tag[:60], "not an Export-Clixml file "
                                            "(accepted: <Objs> in the PowerShell namespace)")  # fmt: skip
                elif depth > 2 * MAX_DEPTH + 2:
                    raise ScenarioError(
                        path, f"depth {depth}", element.tag[:60], f"nested deeper than {MAX_DEPTH} levels"
                    )
                continue
            depth -= 1
            if depth == 1 and element.tag == f"{NS}Obj":
                names = _types(element, types)
                found.append((names, _properties(path, element, types, objects, 1)))
                element.clear()
                if root is not None:
                    root.remove(element)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ScenarioError(
            path, f"line {line} column {column}", NO_VALUE, "not valid XML (Export-Clixml expected)"
        ) from None
    except OSError as exc:
        raise ScenarioError(path, "", NO_VALUE, f"cannot read: {exc.strerror or exc}") from None
    return found


def _types(obj: ET.Element, types: dict[str, list[str]]) -> list[str]:
    tn = obj.find(f"{NS}TN")
    if tn is not None:
        names = [t.text or "" for t in tn.findall(f"{NS}T")]
        types[tn.get("RefId", "")] = names
        return names
    ref = obj.find(f"{NS}TNRef")
    return types.get(ref.get("RefId", ""), []) if ref is not None else []


def _properties(
    path: Path, obj: ET.Element, types: dict[str, list[str]], objects: dict[str, Any], depth: int
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for group in ("Props", "MS"):
        holder = obj.find(f"{NS}{group}")
        if holder is None:
            continue
        for child in holder:
            name = child.get("N")
            if name is not None:
                values[name] = _value(path, child, types, objects, depth + 1)
    return values


def _value(path: Path, element: ET.Element, types: dict[str, list[str]], objects: dict[str, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ScenarioError(
            path, "", NO_VALUE, f"objects nested deeper than {MAX_DEPTH} levels: not an Exchange export"
        )
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
            value: Any = [_value(path, item, types, objects, depth + 1) for item in lst]
        else:
            text = element.find(f"{NS}ToString")
            value = text.text if text is not None else None
        objects[element.get("RefId", "")] = value
        return value
    return element.text


def timespan(value: Any) -> float | None:
    """``[d.]hh:mm:ss`` -> seconds (``2.00:00:00`` is 2 days); ASCII digits only."""
    if not isinstance(value, str):
        return None
    match = _TIMESPAN.fullmatch(value.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def profile_of_build(version: str, role: str) -> tuple[str, str] | None:
    """(profile, product) from ``AdminDisplayVersion`` and ``ServerRole``.

    >>> profile_of_build("Version 15.2 (Build 986.5)", "Mailbox")
    ('exchange2019', 'Exchange 2019 (15.2.986)')
    >>> profile_of_build("Version 15.1 (Build 2507.6)", "Edge")
    ('exchange2016-edge', 'Exchange 2016 (15.1.2507)')
    """
    match = _VERSION.search(version or "")
    if match is None:
        return None
    major, minor, build = (int(g) for g in match.groups())
    if (major, minor) >= (15, 2):
        product = "Exchange SE" if build >= 2562 else "Exchange 2019"  # SE RTM is 15.2.2562
        profile = "exchange2019"
    elif major == 15:
        product, profile = ("Exchange 2016" if minor == 1 else "Exchange 2013"), "exchange2016"
    else:
        product, profile = f"Exchange {major}.{minor}", "exchange2016"
    if "edge" in (role or "").lower():
        profile = "exchange2016-edge"
    return profile, f"{product} ({major}.{minor}.{build})"


def _kind(names: list[str], props: dict[str, Any]) -> str | None:
    joined = " ".join(names)
    if "SendConnector" in joined or "AddressSpaces" in props:
        return "send"
    if "ReceiveConnector" in joined or "Bindings" in props:
        return "receive"
    if "AcceptedDomain" in joined:
        return "accepted"
    if "ExchangeServer" in joined or "AdminDisplayVersion" in props:
        return "server"
    if "TransportServer" in joined or "TransportService" in joined or "MessageExpirationTimeout" in props:
        return "transport"
    return None


def import_exchange(paths: list[Path]) -> Imported:
    """The organisation of Exchange 2007+ servers and send connectors."""
    notes: list[str] = []
    assumed: list[str] = []
    found: dict[str, list[tuple[Path, dict[str, Any]]]] = {
        k: [] for k in ("send", "receive", "transport", "server", "accepted")
    }
    for path in paths:
        for names, props in read_clixml(path):
            kind = _kind(names, props)
            if kind is None:
                notes.append(f"{path.name}: an object of type {names[:1] or ['?']} was not used")
            else:
                found[kind].append((path, props))
    if not any(found.values()):
        raise ScenarioError(
            paths[0],
            "",
            NO_VALUE,
            "no Get-SendConnector, Get-TransportService, Get-ReceiveConnector, "
            "Get-ExchangeServer or Get-AcceptedDomain objects",
        )
    servers: dict[str, dict[str, Any]] = {}
    profiles: dict[str, str] = {}
    imported = Imported({}, notes, assumed)
    for _, props in found["server"]:
        _exchange_server(props, servers, profiles, imported)
    connectors = [_send_connector(path, props, servers, notes) for path, props in found["send"]]
    for path, props in found["transport"]:
        _transport(path, props, _server(servers, str(props.get("Name") or props.get("Identity") or "EX1")), notes)
    for _, props in found["receive"]:
        _receive(props, servers, notes)
    if not servers:
        servers["EX1"] = _new_server("EX1")
        assumed.append("no server in the exports: one server EX1")
    if not found["server"]:
        assumed.append("server versions not exported (Get-ExchangeServer): profile exchange2016 (2007-SE defaults)")
    assumed.append("outbound TLS opportunistic unless a connector requires it (Exchange's default)")
    # The most common build; a tie goes to the server exported first (deterministic).
    organisation_profile = Counter(profiles.values()).most_common(1)[0][0] if profiles else "exchange2016"
    for name, server in servers.items():
        if profiles.get(name, organisation_profile) != organisation_profile:
            server["profile"] = profiles[name]
        elif profiles and name not in profiles:
            assumed.append(f"{name}: version not exported: profile {organisation_profile}, as the other servers")
    document: dict[str, Any] = {
        "organisation": "imported",
        "profile": organisation_profile,
        "routing_groups": [{"name": "site"}],
        "servers": list(servers.values()),
        "connectors": [c for c in connectors if c is not None],
    }
    accepted = _accepted(found["accepted"], notes)
    if accepted:
        document["accepted_domains"] = accepted
    imported.document = document
    return imported


def _new_server(name: str) -> dict[str, Any]:
    # Exchange sends with opportunistic TLS unless a connector says more (2a).
    return {
        "name": name,
        "routing_group": "site",
        "virtual_servers": [{"name": "default", "outbound_tls": "opportunistic"}],
    }


def _server(servers: dict[str, dict[str, Any]], raw: str) -> dict[str, Any]:
    name = _NAME.sub("-", raw.split("\\")[0]).lstrip("._-")[:63] or "EX1"
    return servers.setdefault(name, _new_server(name))


def _exchange_server(
    props: dict[str, Any], servers: dict[str, dict[str, Any]], profiles: dict[str, str], imported: Imported
) -> None:
    server = _server(servers, str(props.get("Name") or props.get("Identity") or "EX1"))
    made = profile_of_build(str(props.get("AdminDisplayVersion") or ""), str(props.get("ServerRole") or ""))
    if made is None:
        imported.notes.append(f"{server['name']}: version {str(props.get('AdminDisplayVersion'))[:40]!r} not read")
        return
    profiles[server["name"]], product = made
    imported.configured.append(f"{server['name']}: {product}, role {props.get('ServerRole')}: profile {made[0]}")


def _send_connector(
    path: Path, props: dict[str, Any], servers: dict[str, dict[str, Any]], notes: list[str]
) -> dict[str, Any] | None:
    name = _NAME.sub("-", str(props.get("Name") or "connector")).lstrip("._-")[:63] or "connector"
    spaces = []
    for raw in props.get("AddressSpaces") or []:
        text = str(raw)
        if text.lower().startswith("local:"):
            text = text[6:]
        kind, _, rest = text.partition(":") if ":" in text.split(";")[0] else ("SMTP", "", text)
        if kind.upper() != "SMTP":
            notes.append(f"{name}: address space {raw} is not SMTP: skipped")
            continue
        pattern, _, cost_text = rest.partition(";")
        cost = ascii_int(cost_text.strip(), 1, 100) if cost_text.strip() else 1
        if cost is None:
            raise ScenarioError(path, f"{name}: AddressSpaces", str(raw)[:60], "cost not a whole number from 1 to 100")
        try:
            spaces.append({"pattern": normalise_pattern(pattern), "cost": cost})
        except ValueError:
            notes.append(f"{name}: address space {raw!r} is not a domain pattern: skipped")
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
    if level in ("EncryptionOnly", "CertificateValidation", "DomainValidation") and connector["require_tls"]:
        connector["tls_auth_level"] = level
    smart = []
    for host in props.get("SmartHosts") or []:
        text = str(host).strip().strip("[]").lower()
        if is_domain(text):
            smart.append(text)
        else:
            notes.append(f"{name}: smart host {host!r} is not a host name: skipped")
    if props.get("DNSRoutingEnabled") is False and smart:
        connector.update(delivery="smart_host", smart_hosts=smart)
        notes.append(f"{name}: smart hosts {', '.join(smart)}: add them to the remote world's hosts")
    for field in ("Fqdn", "Port", "TlsDomain", "DomainSecureEnabled", "ErrorPolicies"):
        if props.get(field) not in (None, "", False, "25", "Default"):
            notes.append(f"{name}: {field} = {props[field]} (not modelled)")
    return connector


def _count(path: Path, props: dict[str, Any], field: str, server: str, notes: list[str]) -> int | None:
    value = props.get(field)
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.lower() == "unlimited":
        notes.append(f"{server}: {field} = Unlimited (modelled as {UNLIMITED_CONNECTIONS:,})")
        return UNLIMITED_CONNECTIONS
    found = ascii_int(text, 1, 10_000_000)
    if found is None:
        raise ScenarioError(
            path, f"{server}: {field}", text[:40], "not a count (accepted: ASCII digits 1 to 10,000,000, or Unlimited)"
        )
    return found


def _transport(path: Path, props: dict[str, Any], server: dict[str, Any], notes: list[str]) -> None:
    vs = server["virtual_servers"][0]
    name = server["name"]
    delivery: dict[str, Any] = {}
    for field, target in (
        ("MessageExpirationTimeout", "expiration_timeout"),
        ("DelayNotificationTimeout", "delay_notification"),
        ("TransientFailureRetryInterval", "transient_failure_retry_interval"),
        ("OutboundConnectionFailureRetryInterval", "outbound_connection_failure_retry_interval"),
    ):
        if props.get(field) in (None, ""):
            continue
        seconds = timespan(props.get(field))
        if seconds is None or seconds <= 0:
            raise ScenarioError(
                path,
                f"{name}: {field}",
                str(props[field])[:40],
                "not a time span (accepted: [d.]hh:mm:ss in ASCII digits)",
            )
        delivery[target] = seconds
    if props.get("TransientFailureRetryCount") not in (None, ""):
        text = str(props["TransientFailureRetryCount"]).strip()
        count = ascii_int(text, 0, 15)
        if count is None:
            raise ScenarioError(path, f"{name}: TransientFailureRetryCount", text[:40], "not a count from 0 to 15")
        delivery["transient_failure_retry_count"] = count
    if delivery:
        vs["delivery"] = delivery
    per_domain = _count(path, props, "MaxPerDomainOutboundConnections", name, notes)
    total = _count(path, props, "MaxOutboundConnections", name, notes)
    if per_domain is not None:
        vs["max_connections_per_domain"] = per_domain
    if total is not None:
        vs["max_connections"] = total
    if props.get("MessageRetryInterval"):
        notes.append(f"{name}: MessageRetryInterval = {props['MessageRetryInterval']} (not modelled)")


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


def _accepted(found: list[tuple[Path, dict[str, Any]]], notes: list[str]) -> list[str]:
    domains: dict[str, None] = {}
    for _, props in found:
        text = str(props.get("DomainName") or "").strip().lower().removeprefix("*.")
        if is_domain(text):
            domains[text] = None
        else:
            notes.append(f"accepted domain {str(props.get('DomainName'))[:60]!r} is not a domain name: skipped")
    return list(domains)

"""``tlssim import postfix``: ``postconf -n`` (and the policy and transport tables in their
source form) -> an organisation file (reference probe-and-import.md B1).

Format rules followed: one ``name = value`` per line, continuation lines (leading
white space, as ``postconf -nf`` folds them) joined; ``$name`` references kept as
written; ``service/type/name = value`` lines (``postconf -P``) are master.cf
overrides, not modelled and listed. Time values take each parameter's own default
unit when bare (``maximal_queue_lifetime = 2`` is 2 days). The policy table's keys are
next hops: a bare domain also covers its subdomains through ``.parent`` keys (the
lookup walks parents), ``[host]:port`` is looked up verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.importers.text import read_text_lines
from sim.vocabulary import is_domain

# Bare numbers take these units (postconf.proto; probe-and-import B1).
_DEFAULT_UNIT = {
    "maximal_queue_lifetime": "d",
    "bounce_queue_lifetime": "d",
    "delay_warning_time": "h",
    "minimal_backoff_time": "s",
    "maximal_backoff_time": "s",
    "queue_run_delay": "s",
}
_TIMERS = {
    "maximal_queue_lifetime": "expiration_timeout",
    "delay_warning_time": "delay_notification",
    "minimal_backoff_time": "minimal_backoff_time",
    "maximal_backoff_time": "maximal_backoff_time",
    "queue_run_delay": "queue_run_delay",
}
_COUNTS = {
    "initial_destination_concurrency": "initial_destination_concurrency",
    "default_destination_concurrency_limit": "destination_concurrency_limit",
    "default_destination_concurrency_failed_cohort_limit": "destination_concurrency_failed_cohort_limit",
}
# Parameters that change what a TLS policy does but that tlssim does not model.
_NOTED = (
    "bounce_queue_lifetime",
    "smtp_tls_mandatory_ciphers",
    "smtp_tls_ciphers",
    "smtp_tls_mandatory_protocols",
    "smtp_tls_verify_cert_match",
    "smtp_tls_secure_cert_match",
    "smtp_tls_dane_insecure_mx_policy",
    "smtp_dns_support_level",
    "smtp_connect_timeout",
    "smtp_helo_timeout",
    "smtp_starttls_timeout",
    "smtp_mx_address_limit",
    "smtp_mx_session_limit",
    "smtp_tls_enforce_sts_mx_patterns",
    "smtp_requiretls_policy",
    "default_transport",
    "relay_transport",
)
_LEVELS = {"none": "none", "may": "may", "encrypt": "encrypt", "verify": "verify", "secure": "secure"}
_TIME = re.compile(r"^(\d+)([smhdw]?)$")


@dataclass
class Imported:
    """What an importer made, and what it could not carry over."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def parse_postconf(path: Path) -> dict[str, tuple[str, int]]:
    """``name -> (value, line number)`` from ``postconf -n`` or ``-nf`` output."""
    entries: dict[str, tuple[str, int]] = {}
    last: str | None = None
    for number, line in read_text_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            if last is None:
                raise ScenarioError(path, f"line {number}", line.strip(), "a continuation line before any parameter")
            value, first = entries[last]
            entries[last] = (f"{value} {line.strip()}".strip(), first)
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_./-]+", name):
            raise ScenarioError(
                path, f"line {number}", line.strip()[:60], "not a postconf line (accepted: name = value)"
            )
        entries[name] = (value.strip(), number)
        last = name
    return entries


def _seconds(path: Path, name: str, value: str, number: int) -> float:
    match = _TIME.match(value.strip())
    if match is None:
        raise ScenarioError(
            path, f"line {number}: {name}", value, "not a Postfix time (accepted: 300s, 5m, 4h, 2d, 1w)"
        )
    amount, unit = int(match.group(1)), match.group(2) or _DEFAULT_UNIT.get(name, "s")
    return amount * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]


def _level(path: Path, where: str, value: str, notes: list[str]) -> tuple[str, str | None]:
    """(tlssim level, DANE use or None) for a Postfix security level."""
    if value in _LEVELS:
        return _LEVELS[value], None
    if value == "dane":
        return "may", "opportunistic"
    if value == "dane-only":
        return "may", "mandatory"
    if value == "fingerprint":
        notes.append(f"{where}: level fingerprint is modelled as verify (certificate pinning is not modelled)")
        return "verify", None
    if value == "":
        return "none", None
    raise ScenarioError(
        path,
        where,
        value,
        "not a TLS security level (accepted: none, may, encrypt, dane, dane-only, fingerprint, verify, secure)",
    )


def read_policy_map(path: Path, notes: list[str]) -> dict[str, str]:
    """The ``smtp_tls_policy_maps`` table source: ``next-hop level [attributes]`` per line."""
    policy: dict[str, str] = {}
    for number, line in read_text_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) < 2:
            raise ScenarioError(path, f"line {number}", text, "expected a next hop and a security level")
        key, level = fields[0].lower(), fields[1].lower()
        tlssim_level, dane = _level(path, f"line {number}", level, notes)
        if dane is not None:
            notes.append(f"{path.name} line {number}: per-destination {level} for {key} is modelled as may")
        if len(fields) > 2:
            notes.append(f"{path.name} line {number}: attributes not modelled: {' '.join(fields[2:])}")
        host = _bracketed(key)
        if host is not None:
            key = host  # tlssim looks the relay up by its host name
        if not is_domain(key.lstrip(".")):
            raise ScenarioError(
                path, f"line {number}", fields[0], "not a next hop (accepted: domain, .domain, [host]:port)"
            )
        policy[key] = tlssim_level
    return policy


def _bracketed(key: str) -> str | None:
    """``[host]:port`` or ``[host]`` -> ``host``; else ``None``."""
    match = re.fullmatch(r"\[([^\]]+)\](?::\d+)?", key)
    return match.group(1).lower() if match else None


def read_transport_map(path: Path, notes: list[str]) -> dict[str, list[str]]:
    """The ``transport_maps`` source: ``domain transport:nexthop`` -> next hop -> patterns.

    Only smtp deliveries are connectors; ``[host]:port`` next hops are smart hosts, an
    empty next hop is MX delivery (the key ``""``)."""
    routes: dict[str, list[str]] = {}
    for number, line in read_text_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split(None, 1)
        if len(fields) != 2:
            raise ScenarioError(path, f"line {number}", text, "expected a domain and transport:nexthop")
        key, target = fields[0].lower(), fields[1].strip()
        transport, _, nexthop = target.partition(":")
        if transport not in ("smtp", "relay"):
            notes.append(f"{path.name} line {number}: {key} -> {target}: transport {transport} not modelled, skipped")
            continue
        if key == "*":
            pattern = "*"
        elif key.startswith("."):
            # Postfix ".domain" is the subdomains only; "*.domain" also claims the domain.
            pattern = "*" + key
            notes.append(f"{path.name} line {number}: {key} becomes *{key}, which also claims {key[1:]}")
        else:
            pattern = key
        if pattern != "*" and not is_domain(pattern.removeprefix("*.")):
            raise ScenarioError(
                path, f"line {number}", fields[0], "not a domain (accepted: example.com, .example.com, *)"
            )
        hop = _bracketed(nexthop) or nexthop.split(":")[0].lower()
        routes.setdefault(hop, []).append(pattern)
    return routes


def import_postfix(postconf: Path, policy_map: Path | None = None, transport_map: Path | None = None) -> Imported:
    """The organisation of a Postfix sender, as ``tlssim`` writes it to topology.yaml."""
    entries = parse_postconf(postconf)
    notes: list[str] = []
    level_value, number = entries.get("smtp_tls_security_level", ("", 0))
    level, dane = _level(postconf, f"line {number}: smtp_tls_security_level", level_value.lower(), notes)
    vs: dict[str, Any] = {"name": "smtp", "outbound_tls": level}
    if dane is not None:
        vs["dane"] = dane
    delivery: dict[str, Any] = {}
    for name, target in _TIMERS.items():
        if name in entries:
            value, line = entries[name]
            delivery[target] = _seconds(postconf, name, value, line)
    for name, target in _COUNTS.items():
        if name in entries:
            value, line = entries[name]
            if not value.isdigit():
                raise ScenarioError(postconf, f"line {line}: {name}", value, "not a whole number")
            delivery[target] = int(value)
    if delivery:
        vs["delivery"] = delivery
    versions = _protocols(entries.get("smtp_tls_protocols", ("", 0))[0])
    if versions is not None:
        vs["tls_versions"] = list(versions)
    maps = entries.get("smtp_tls_policy_maps", ("", 0))[0]
    if "socketmap:" in maps:
        vs["mta_sts"] = "apply"
        notes.append("smtp_tls_policy_maps has a socketmap (an MTA-STS plug-in): mta_sts: apply")
    if policy_map is not None:
        vs["tls_policy"] = read_policy_map(policy_map, notes)
    elif maps.strip():
        notes.append("smtp_tls_policy_maps is set: give its source file with --policy-map to import it")
    connectors = _connectors(entries, transport_map, notes, vs)
    for name in _NOTED:
        if name in entries:
            notes.append(f"{name} = {entries[name][0]} (not modelled)")
    notes += [
        f"{name} = {value} (master.cf override, not modelled)" for name, (value, _) in entries.items() if "/" in name
    ]
    host = entries.get("myhostname", ("postfix", 0))[0].split(".")[0] or "postfix"
    server = re.sub(r"[^A-Za-z0-9._-]", "-", host)
    document = {
        "organisation": re.sub(r"[^A-Za-z0-9._-]", "-", entries.get("mydomain", ("imported", 0))[0]) or "imported",
        "profile": "postfix",
        "routing_groups": [{"name": "site"}],
        "servers": [{"name": server, "routing_group": "site", "virtual_servers": [vs]}],
        "connectors": [{**c, "source": [f"{server}/smtp"]} for c in connectors],
    }
    return Imported(document, notes)


def _connectors(
    entries: dict[str, tuple[str, int]], transport_map: Path | None, notes: list[str], vs: dict[str, Any]
) -> list[dict[str, Any]]:
    relay = entries.get("relayhost", ("", 0))[0].strip()
    default: dict[str, Any] = {"name": "default", "address_spaces": [{"pattern": "*"}]}
    if relay:
        host = _bracketed(relay) or relay.split(":")[0].lower()
        default.update(delivery="smart_host", smart_hosts=[host])
        notes.append(f"relayhost {relay}: add host {host} to the remote world's hosts (its TLS as observed)")
    connectors = [default]
    if transport_map is None:
        if entries.get("transport_maps", ("", 0))[0].strip():
            notes.append("transport_maps is set: give its source file with --transport-map to import it")
        return connectors
    for index, (hop, patterns) in enumerate(sorted(read_transport_map(transport_map, notes).items()), start=1):
        if "*" in patterns:
            connectors[0] = {**default, **_delivery(hop)}
            patterns = [p for p in patterns if p != "*"]
        if patterns:
            connectors.append(
                {"name": f"transport-{index}", "address_spaces": [{"pattern": p} for p in patterns], **_delivery(hop)}
            )
            if hop:
                notes.append(f"transport next hop {hop}: add it to the remote world's hosts")
    return connectors


def _delivery(hop: str) -> dict[str, Any]:
    return {"delivery": "smart_host", "smart_hosts": [hop]} if hop else {"delivery": "dns"}


def _protocols(value: str) -> tuple[str, str] | None:
    """``>=TLSv1.2`` / ``<=TLSv1.2`` / ``!TLSv1, !TLSv1.1`` -> (min, max), or None."""
    versions = ["1.0", "1.1", "1.2", "1.3"]
    names = {"tlsv1": "1.0", "tlsv1.1": "1.1", "tlsv1.2": "1.2", "tlsv1.3": "1.3"}
    allowed = list(versions)
    for token in re.split(r"[\s,:]+", value.strip().lower()):
        if token.startswith(">=") and token[2:] in names:
            allowed = [v for v in allowed if v >= names[token[2:]]]
        elif token.startswith("<=") and token[2:] in names:
            allowed = [v for v in allowed if v <= names[token[2:]]]
        elif token.startswith("!") and token[1:] in names:
            allowed = [v for v in allowed if v != names[token[1:]]]
    if not allowed or allowed == versions:
        return None
    return allowed[0], allowed[-1]

"""``tlssim import postfix``: ``postconf -n`` (or main.cf) and the policy, per-site and
transport tables in their source form -> an organisation file (reference
probe-and-import.md B1; Postfix ``smtp_session.c`` for the level and the lookups).

* **Level.** ``smtp_tls_security_level`` when set; else the legacy parameters
  (``smtp_enforce_tls = yes`` -> ``verify``, or ``encrypt`` with
  ``smtp_tls_enforce_peername = no``; ``smtp_use_tls = yes`` -> ``may``); else ``may`` at
  ``compatibility_level`` >= 3.11 (Postfix HISTORY 20250623) and ``none`` below.
  ``postconf -P`` overrides of the service that ``default_transport`` names replace
  main.cf's for that service.
* **Policy keys** are next hops, matched as Postfix matches them: ``[host]:port``,
  ``[host]``, ``host:port`` are looked up once, as written; a bare name also through
  ``.parent`` keys. An entry for a relay's exact next hop becomes tlssim's ``[relay]``;
  one that names no next hop this configuration uses is listed, not applied.
  ``dane`` and ``dane-only`` entries keep their meaning.
* **smtp_tls_per_site** (legacy; ignored by Postfix when ``smtp_tls_policy_maps`` is set):
  NONE -> none, MAY -> may (a stronger global level wins), MUST -> verify,
  MUST_NOPEERMATCH -> encrypt.
* **Times** take each parameter's own unit when bare (``maximal_queue_lifetime = 2``
  is 2 days); counts are ASCII digits within bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.importers.postfix_conf import Postconf, parse_postconf
from sim.importers.text import read_text_lines, whole_number
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
    "relay_transport",
)
# Set, these send some mail another way than the model does: they change the prediction.
_CHANGES_PREDICTION = {
    "sender_dependent_relayhost_maps": "mail from some senders goes to another relay",
    "sender_dependent_default_transport_maps": "mail from some senders uses another transport",
    "smtp_fallback_relay": "mail that cannot reach its MX goes to a fallback relay",
}
_LEVELS = {"none", "may", "encrypt", "verify", "secure", "dane", "dane-only", "fingerprint"}
_PER_SITE = {"none": "none", "may": "may", "must": "verify", "must_nopeermatch": "encrypt"}
_RANK = {"none": 0, "may": 1, "encrypt": 2, "dane": 1, "dane-only": 3, "fingerprint": 3, "verify": 3, "secure": 4}
_TIME = re.compile(r"([0-9]{1,9})([smhdw]?)")
_YES = {"yes", "true", "1"}
_SERVICE_TLS = ("smtp_tls_security_level", "smtp_use_tls", "smtp_enforce_tls", "smtp_tls_enforce_peername")


@dataclass
class Imported:
    """What an importer made, what it assumed, and what it could not carry over."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # in the files, not modelled (or modelled differently)
    assumed: list[str] = field(default_factory=list)  # not in the files: what was taken instead
    configured: list[str] = field(default_factory=list)  # read from the files, worth saying in the header


def _seconds(conf: Postconf, name: str) -> float:
    value = conf.get(name).strip()
    match = _TIME.fullmatch(value)
    if match is None:
        raise ScenarioError(
            conf.path, conf.where(name), value[:40], "not a Postfix time (accepted: 300s, 5m, 4h, 2d, 1w)"
        )
    amount, unit = int(match.group(1)), match.group(2) or _DEFAULT_UNIT.get(name, "s")
    return float(amount * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


def _yes(conf: Postconf, name: str, default: bool, service: dict[str, str]) -> bool:
    value = service.get(name, conf.get(name) if name in conf else "")
    return value.strip().lower() in _YES if value.strip() else default


def security_level(conf: Postconf, service: dict[str, str], assumed: list[str]) -> str:
    """The Postfix level in force (smtp_session.c ``session_tls_init``), by name."""
    level = service.get("smtp_tls_security_level", conf.get("smtp_tls_security_level")).strip().lower()
    if level:
        if level not in _LEVELS:
            raise ScenarioError(
                conf.path,
                conf.where("smtp_tls_security_level"),
                level,
                f"not a TLS security level (accepted: {', '.join(sorted(_LEVELS))})",
            )
        return level
    if _yes(conf, "smtp_enforce_tls", False, service):
        return "verify" if _yes(conf, "smtp_tls_enforce_peername", True, service) else "encrypt"
    if _yes(conf, "smtp_use_tls", False, service):
        return "may"
    compatibility = conf.get("compatibility_level").strip()
    if _version(compatibility) >= (3, 11):
        assumed.append(f"smtp_tls_security_level unset at compatibility_level {compatibility}: Postfix's default may")
        return "may"
    assumed.append("smtp_tls_security_level unset: Postfix's default (none below compatibility_level 3.11)")
    return "none"


def _version(text: str) -> tuple[int, ...]:
    parts = re.findall(r"[0-9]{1,4}", text)
    return tuple(int(p) for p in parts) if parts else (0,)


def _tlssim_level(level: str, where: str, notes: list[str]) -> tuple[str, str | None]:
    """(tlssim vs level, DANE use or None) for a Postfix level (one we know)."""
    if level == "dane":
        return "may", "opportunistic"
    if level == "dane-only":
        return "may", "mandatory"
    if level == "fingerprint":
        notes.append(f"{where}: level fingerprint is modelled as verify (certificate pinning is not modelled)")
        return "verify", None
    return level, None


@dataclass(frozen=True)
class NextHop:
    """A next hop as written (``[relay.example.net]:587``) and the host tlssim sends to."""

    written: str
    host: str
    bracketed: bool


def next_hop(text: str) -> NextHop | None:
    """``[host]:port``, ``[host]``, ``host:port`` or ``host``; None if it names no host."""
    written = text.strip().lower()
    match = re.fullmatch(r"\[([^\]]+)\](?::([0-9]{1,5}))?|([^:\[\]\s]+)(?::([0-9]{1,5}))?", written)
    if match is None:
        return None
    host = (match.group(1) or match.group(3) or "").rstrip(".")
    return NextHop(written, host, match.group(1) is not None) if is_domain(host) else None


def read_policy_map(
    path: Path, hops: dict[str, NextHop], notes: list[str], *, per_site: bool = False
) -> dict[str, str]:
    """A policy table's source (``next-hop level [attributes]``, or per-site ``name VALUE``)
    -> tlssim policy entries, keyed as tlssim looks them up."""
    policy: dict[str, str] = {}
    attributes: dict[str, list[int]] = {}  # attribute name -> lines that set it
    fingerprints: list[int] = []
    for number, line in read_text_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) < 2:
            raise ScenarioError(path, f"line {number}", text[:60], "expected a next hop and a security level")
        value = fields[1].lower()
        if per_site:
            if value not in _PER_SITE:
                raise ScenarioError(
                    path,
                    f"line {number}",
                    fields[1],
                    "not a per-site policy (accepted: NONE, MAY, MUST, MUST_NOPEERMATCH)",
                )
            level = _PER_SITE[value]
        else:
            if value not in _LEVELS:
                raise ScenarioError(
                    path,
                    f"line {number}",
                    fields[1],
                    f"not a TLS security level (accepted: {', '.join(sorted(_LEVELS))})",
                )
            level = "verify" if value == "fingerprint" else value
            if value == "fingerprint":
                fingerprints.append(number)
            for attribute in re.split(r"[\s,]+", " ".join(fields[2:])):
                if attribute:
                    attributes.setdefault(attribute.partition("=")[0], []).append(number)
        tlssim_key = _policy_key(path, number, fields[0], hops, notes)
        if tlssim_key is not None:
            policy[tlssim_key] = level
    if fingerprints:
        notes.append(f"{path.name}: {_lines(fingerprints)} fingerprint, modelled as verify (pinning is not modelled)")
    for attribute, numbers in sorted(attributes.items()):
        notes.append(f"{path.name}: {_lines(numbers)} set {attribute}= (not modelled)")
    return policy


def _lines(numbers: list[int]) -> str:
    """``line 4`` or ``37 entries (lines 2, 5, 8, ...)``."""
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    shown = ", ".join(str(n) for n in numbers[:3])
    return f"{len(numbers)} entries (lines {shown}{', ...' if len(numbers) > 3 else ''})"


def _policy_key(path: Path, number: int, raw: str, hops: dict[str, NextHop], notes: list[str]) -> str | None:
    key = raw.lower()
    hop = hops.get(key)
    if hop is not None:
        return f"[{hop.host}]"  # this configuration's relay, as written: tlssim's [relay]
    parsed = next_hop(key) if not key.startswith(".") else None
    if key.startswith(".") and is_domain(key[1:]):
        return key
    if parsed is None:
        raise ScenarioError(path, f"line {number}", raw, "not a next hop (accepted: domain, .domain, [host]:port)")
    if parsed.bracketed or ":" in key:
        notes.append(
            f"{path.name} line {number}: {raw} names no next hop of this configuration (Postfix looks such keys up "
            "only as written): not applied"
        )
        return None
    if any(hop.host == key for hop in hops.values()):
        notes.append(
            f"{path.name} line {number}: {raw} does not claim the relay [{key}] (a bare name is a "
            "recipient domain): not applied"
        )
        return None
    return key


def read_transport_map(path: Path, notes: list[str]) -> list[tuple[str, str, NextHop | None, int]]:
    """``transport_maps`` source: (pattern, transport, next hop, line) per smtp-like entry.

    ``.domain`` is its subdomains only in Postfix; tlssim's ``*.domain`` also claims the
    domain itself (noted). An empty next hop means MX delivery."""
    routes = []
    for number, line in read_text_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split(None, 1)
        if len(fields) != 2:
            raise ScenarioError(path, f"line {number}", text[:60], "expected a domain and transport:nexthop")
        key, target = fields[0].lower(), fields[1].strip()
        transport, _, hop_text = target.partition(":")
        if transport not in ("smtp", "relay") and not transport.endswith("smtp"):
            notes.append(f"{path.name} line {number}: {key} -> {target}: transport {transport} not modelled, skipped")
            continue
        if "@" in key:
            notes.append(f"{path.name} line {number}: {key}: per-address routes are not modelled, skipped")
            continue
        if key == "*":
            pattern = "*"
        elif key.startswith("."):
            pattern = "*" + key
            notes.append(f"{path.name} line {number}: {key} becomes *{key}, which also claims {key[1:]}")
        else:
            pattern = key
        if pattern != "*" and not is_domain(pattern.removeprefix("*.")):
            raise ScenarioError(
                path, f"line {number}", fields[0], "not a domain (accepted: example.com, .example.com, *)"
            )
        hop = next_hop(hop_text) if hop_text.strip() else None
        if hop_text.strip() and hop is None:
            raise ScenarioError(path, f"line {number}", hop_text, "not a next hop (accepted: [host]:port, host)")
        routes.append((pattern, transport, hop, number))
    return routes


def _service_overrides(conf: Postconf, service: str) -> dict[str, str]:
    """``postconf -P`` lines ``service/unix/name = value`` for one master.cf service."""
    found = {}
    for name, value in conf.values.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == service and parts[2] in _SERVICE_TLS:
            found[parts[2]] = value.strip()
    return found


def _accepted_domains(conf: Postconf, notes: list[str]) -> list[str]:
    """The domains mail is received for: mydestination, virtual and relay domains (the
    literal names; lookup tables are listed, not read)."""
    found: dict[str, None] = {}
    for name in ("mydestination", "virtual_mailbox_domains", "virtual_alias_domains", "relay_domains"):
        for item in re.split(r"[\s,]+", conf.get(name)):
            item = item.strip().lower().rstrip(".")
            if not item:
                continue
            if ":" in item or "/" in item:
                notes.append(f"{name} reads {item}: its domains are not read (add them to accepted_domains)")
            elif is_domain(item):
                found[item] = None
    return list(found)


def import_postfix(
    postconf: Path, policy_map: Path | None = None, transport_map: Path | None = None, per_site: Path | None = None
) -> Imported:
    """The organisation of a Postfix sender, as ``tlssim`` writes it to topology.yaml."""
    conf = parse_postconf(postconf)
    notes: list[str] = []
    assumed: list[str] = []
    default_transport = conf.get("default_transport", "smtp").strip() or "smtp"
    service, _, transport_hop = default_transport.partition(":")
    overrides = _service_overrides(conf, service)
    level = security_level(conf, overrides, assumed)
    if overrides:
        notes.append(f"master.cf overrides of {service} (its default transport) applied: {overrides}")
    outbound, dane = _tlssim_level(level, conf.where("smtp_tls_security_level"), notes)
    vs: dict[str, Any] = {"name": "smtp", "outbound_tls": outbound}
    if dane is not None:
        vs["dane"] = dane
    delivery: dict[str, Any] = {name_to: _seconds(conf, name) for name, name_to in _TIMERS.items() if name in conf}
    for name, target in _COUNTS.items():
        if name in conf:
            delivery[target] = whole_number(postconf, conf.where(name), conf.get(name), 1, 100_000)
    if delivery:
        vs["delivery"] = delivery
    versions = _protocols(conf.get("smtp_tls_protocols"))
    if versions is not None:
        vs["tls_versions"] = list(versions)
    mandatory = _protocols(conf.get("smtp_tls_mandatory_protocols"))
    if mandatory is not None and mandatory != versions:
        notes.append(
            f"smtp_tls_mandatory_protocols = {conf.get('smtp_tls_mandatory_protocols')} applies at encrypt and "
            "above; tls_versions holds smtp_tls_protocols"
        )
    relays, connectors = _routes(conf, transport_map, service, transport_hop, notes)
    maps = conf.get("smtp_tls_policy_maps")
    if "socketmap:" in maps:
        vs["mta_sts"] = "apply"
        notes.append("smtp_tls_policy_maps has a socketmap (an MTA-STS plug-in): mta_sts: apply")
    policy = _tls_policy(conf, level, policy_map, per_site, relays, notes)
    if policy:
        vs["tls_policy"] = policy
    notes += _not_modelled(conf, service)
    host = conf.get("myhostname").split(".")[0] or "postfix"
    server = re.sub(r"[^A-Za-z0-9._-]", "-", host).lstrip("._-") or "postfix"
    if not conf.get("myhostname"):
        assumed.append("myhostname unset: the server is called postfix")
    document: dict[str, Any] = {
        "organisation": re.sub(r"[^A-Za-z0-9._-]", "-", conf.get("mydomain")).lstrip("._-") or "imported",
        "profile": "postfix",
        "routing_groups": [{"name": "site"}],
        "servers": [{"name": server, "routing_group": "site", "virtual_servers": [vs]}],
        "connectors": [{**c, "source": [f"{server}/smtp"]} for c in connectors],
    }
    accepted = _accepted_domains(conf, notes)
    if accepted:
        document["accepted_domains"] = accepted
    return Imported(document, notes, assumed)


def _tls_policy(
    conf: Postconf,
    level: str,
    policy_map: Path | None,
    per_site: Path | None,
    relays: list[NextHop],
    notes: list[str],
) -> dict[str, str]:
    """The TLS policy table: the policy map's entries, else the per-site table's (a
    relay named MX-style also takes its parent domain's entry)."""
    hops = {hop.written: hop for hop in relays}  # an MX-style relay is written bare: its bare key names it
    maps = conf.get("smtp_tls_policy_maps")
    policy: dict[str, str] = {}
    if policy_map is not None:
        policy = read_policy_map(policy_map, hops, notes)
    elif maps.strip():
        notes.append("smtp_tls_policy_maps is set: give its source file with --policy-map to import it")
    if per_site is not None:
        if maps.strip():
            notes.append("smtp_tls_per_site is ignored: smtp_tls_policy_maps is set (smtp_session.c)")
        else:
            site = read_policy_map(per_site, hops, notes, per_site=True)
            policy.update({k: v for k, v in site.items() if not (v == "may" and _RANK[level] > _RANK["may"])})
    elif conf.get("smtp_tls_per_site").strip():
        notes.append("smtp_tls_per_site is set: give its source file with --per-site to import it")
    for hop in relays:
        if not hop.bracketed and f"[{hop.host}]" not in policy:
            labels = hop.host.split(".")  # an MX-style relay name also matches .parent keys
            parents = ("." + ".".join(labels[i:]) for i in range(1, len(labels)))
            found = next((policy[key] for key in parents if key in policy), None)
            if found is not None:
                policy[f"[{hop.host}]"] = found
    return policy


def _not_modelled(conf: Postconf, service: str) -> list[str]:
    """One note per setting the what-if does not model."""
    notes: list[str] = []
    for name in _NOTED:
        if name in conf:
            notes.append(f"{name} = {conf.get(name)} (not modelled)")
    for name, effect in _CHANGES_PREDICTION.items():
        if conf.get(name).strip():
            notes.append(f"{name} = {conf.get(name)}: {effect}, which the what-if does not model")
    notes += [
        f"{name} = {value} (master.cf override of another service, not modelled)"
        for name, value in conf.values.items()
        if "/" in name and name.split("/")[0] != service
    ]
    return notes


def _routes(
    conf: Postconf, transport_map: Path | None, service: str, transport_hop: str, notes: list[str]
) -> tuple[list[NextHop], list[dict[str, Any]]]:
    """The relays this configuration uses and its connectors: the default route (relayhost,
    or default_transport's next hop), then one connector per transport next hop."""
    relays: list[NextHop] = []
    default: dict[str, Any] = {"name": "default", "address_spaces": [{"pattern": "*"}]}
    relay_text = conf.get("relayhost").strip() or transport_hop.strip()
    if service == "error":
        notes.append(
            f"default_transport = {conf.get('default_transport')}: Postfix bounces all mail for other domains;"
            " the what-if sends it, so it overstates this server's outbound mail"
        )
    elif service not in ("smtp", "relay") and not service.endswith("smtp") and service not in conf.values:
        notes.append(f"default_transport = {conf.get('default_transport')}: taken to be an smtp(8) service")
    if relay_text:
        hosts = [hop for item in re.split(r"[\s,]+", relay_text) if item and (hop := next_hop(item)) is not None]
        if not hosts:
            raise ScenarioError(
                conf.path, conf.where("relayhost"), relay_text, "not a next hop (accepted: [host]:port)"
            )
        relays += hosts
        default.update(delivery="smart_host", smart_hosts=[hop.host for hop in hosts])
        for hop in hosts:
            notes.append(f"relay {hop.written}: add host {hop.host} to the remote world's hosts (its TLS as observed)")
    connectors = [default]
    if transport_map is None:
        if conf.get("transport_maps").strip():
            notes.append("transport_maps is set: give its source file with --transport-map to import it")
        return relays, connectors
    by_hop: dict[str, list[str]] = {}
    hop_of: dict[str, NextHop | None] = {}
    for pattern, _, hop, _ in read_transport_map(transport_map, notes):
        written = hop.written if hop is not None else ""
        by_hop.setdefault(written, []).append(pattern)
        hop_of[written] = hop
    for index, written in enumerate(sorted(by_hop), start=1):
        patterns, hop = by_hop[written], hop_of[written]
        route = {"delivery": "smart_host", "smart_hosts": [hop.host]} if hop is not None else {"delivery": "dns"}
        if hop is not None:
            relays.append(hop)
        if "*" in patterns:
            connectors[0] = {**default, **route}
            patterns = [p for p in patterns if p != "*"]
        if patterns:
            connectors.append(
                {"name": f"transport-{index}", "address_spaces": [{"pattern": p} for p in patterns], **route}
            )
            if hop is not None:
                notes.append(f"transport next hop {hop.written}: add {hop.host} to the remote world's hosts")
    return relays, connectors


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

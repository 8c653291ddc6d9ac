"""From what a log showed to a remote world and a ready what-if (``import maillog``,
``import exchange-logs``).

Each host's TLS capability comes from the class of its sessions (``observed.host_class``)
and carries its provenance: ``observed`` with the sessions it rests on, or ``assumed``
with why. A host the log says nothing about is assumed to accept TLS, and the what-if's
header says how much mail that assumption covers, so the reader knows the bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.importers.observed import Observations, host_class
from sim.vocabulary import is_domain

# class -> (remote-host fields, provenance source, why)
CAPABILITY: dict[str, tuple[dict[str, Any], str, str]] = {
    "trusted": ({"tls": "trusted"}, "observed", "TLS with a certificate the sender verified"),
    "untrusted": (
        {"tls": "untrusted"},
        "observed",
        "TLS; its certificate did not verify (the log does not say which fault)",
    ),
    "encrypted": (
        {"tls": "trusted"},
        "assumed",
        "TLS worked but no certificate was checked: whether one would verify is not known",
    ),
    "none": ({"tls": "none"}, "observed", "mail went out in plaintext: STARTTLS not offered"),
    "handshake-fails": ({"tls": "handshake-fails"}, "observed", "STARTTLS offered, then the handshake failed"),
    "unknown": (
        {"tls": "trusted"},
        "assumed",
        "the log says nothing of TLS for its sessions (TLS logging off): assumed to accept TLS",
    ),
}
CAPABILITY_NOTES = [
    "TLS capability of each host, from the class of its sessions in the log (most sessions win;",
    "a tie goes to the class with TLS); each host's provenance says observed or assumed, and why:",
    "  trusted -> tls: trusted; untrusted -> tls: untrusted (the log does not say which fault);",
    "  encrypted (TLS, certificate not checked) -> tls: trusted (assumed);",
    "  none -> tls: none; handshake-fails -> tls: handshake-fails;",
    "  requires-tls (530 to plaintext) -> requires_tls: true, with tls: none when the sender",
    "  used STARTTLS where offered, else tls: trusted;",
    "  unknown (no TLS facts logged) -> tls: trusted (assumed). Probe them: tlssim probe.",
]


@dataclass
class RemoteWorld:
    """remotes.yaml, and what it had to assume."""

    document: dict[str, Any]
    unknown_domains: list[str] = field(default_factory=list)  # outbound domains with an assumed host
    encrypted_domains: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)  # names that are not DNS names


def _host(name: str, cls: str, sessions: int, sender_level: str) -> dict[str, Any]:
    if cls == "requires-tls":
        tls = "none" if sender_level in ("may", "opportunistic", "none", "off") else "trusted"
        why = "answered plaintext with 530 Must issue a STARTTLS command first"
        return {"host": name, "tls": tls, "requires_tls": True, **_provenance("observed", sessions, why)}
    fields, source, why = CAPABILITY[cls]
    return {"host": name, **fields, **_provenance(source, sessions, why)}


def _provenance(source: str, sessions: int, why: str) -> dict[str, Any]:
    return {"provenance": {"source": source, "sessions": sessions, "why": why}}


def remote_world(obs: Observations, smart_hosts: set[str], sender_level: str) -> RemoteWorld:
    """The outbound domains and the hosts that took their mail; smart hosts as relays."""
    world = RemoteWorld({"domains": [], "hosts": []})
    for name in obs.outbound_domains():
        if not is_domain(name):
            world.skipped_hosts.append(name)
            continue
        tally = obs.domains[name]
        seen = sorted(tally.hosts, key=lambda h: (-tally.hosts[h], h))
        mx: list[dict[str, Any]] = []
        for host in seen:
            if host in smart_hosts:
                continue
            if not is_domain(host):
                world.skipped_hosts.append(host)
                continue
            cls = host_class(obs.classes_of(host))
            sessions = sum(obs.classes_of(host).values())
            mx.append({**_host(host, cls, sessions, sender_level), "preference": 10 * (len(mx) + 1)})
            if cls == "unknown":
                world.unknown_domains.append(name)
            elif cls == "encrypted":
                world.encrypted_domains.append(name)
        if not mx:
            why = (
                "mail went through a smart host: the domain's own hosts were not seen"
                if any(h in smart_hosts for h in seen)
                else "no session with its hosts was logged"
            )
            mx = [{"host": f"mx.{name}", "preference": 10, "tls": "trusted", **_provenance("assumed", 0, why)}]
            if not any(h in smart_hosts for h in seen):
                world.unknown_domains.append(name)
        world.document["domains"].append({"name": name, "mx": mx})
    for host in sorted(smart_hosts):
        counts = obs.classes_of(host)
        if counts:
            world.document["hosts"].append(_host(host, host_class(counts), sum(counts.values()), sender_level))
        else:
            why = "configured smart host; no session with it was logged"
            world.document["hosts"].append({"host": host, "tls": "trusted", **_provenance("assumed", 0, why)})
    world.unknown_domains = list(dict.fromkeys(world.unknown_domains))
    world.encrypted_domains = list(dict.fromkeys(world.encrypted_domains))
    return world


def traffic_of(obs: Observations) -> dict[str, Any]:
    """The outbound flow the log measured: rate, per-domain weights and mean size.

    The model sends each message to one recipient domain, so a message to two domains
    counts once per domain: the rate is per-domain deliveries per hour."""
    weights = {d: obs.domains[d].messages for d in obs.outbound_domains() if is_domain(d)}
    total = sum(weights.values())
    size_kb = obs.mean_size / 1024.0 if obs.mean_size is not None else 75.0
    return {
        "outbound": {
            "rate_per_hour": round(max(total, 1) / obs.span_hours, 3),
            "domains": weights,
            "size": {"distribution": "lognormal", "mean_kb": round(max(size_kb, 0.1), 1), "sigma": 1.0},
        }
    }


def share(obs: Observations, domains: list[str]) -> float:
    """The share of outbound mail (per-domain messages) that went to ``domains``."""
    total = sum(obs.domains[d].messages for d in obs.outbound_domains())
    return sum(obs.domains[d].messages for d in domains if d in obs.domains) / total if total else 0.0


def hourly_profile(obs: Observations) -> str:
    """The arrivals per hour of day, for a comment (the model sends at a constant rate)."""
    total = sum(obs.hours.values()) or 1
    return " ".join(f"{hour:02d}h:{100 * obs.hours.get(hour, 0) / total:.0f}%" for hour in range(24))


def relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())

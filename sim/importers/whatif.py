"""From a mail log to a remote world and a ready what-if (``tlssim import maillog``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sim.importers.maillog import MailLog, observed_rows

# What each class the log shows says of the host (said again in remotes.yaml's header).
CAPABILITY: dict[str, dict[str, Any]] = {
    "trusted": {"tls": "trusted"},
    "untrusted": {"tls": "untrusted"},  # which fault (self-signed, expired, other name) is not logged
    "anonymous": {"tls": "trusted"},  # TLS worked; the sender did not check the certificate: a guess
    "none": {"tls": "none"},
    "handshake-fails": {"tls": "handshake-fails"},
    "unknown": {"tls": "trusted"},  # nothing seen: a guess
}
CAPABILITY_NOTES = [
    "TLS capability of each host, from the classes the log shows (the most frequent wins):",
    "  trusted -> tls: trusted; untrusted -> tls: untrusted (the log does not say which fault);",
    "  anonymous -> tls: trusted (TLS worked, the certificate was not checked: a guess);",
    "  none -> tls: none; handshake-fails -> tls: handshake-fails;",
    "  requires-tls -> requires_tls: true, with tls: none when the sender used STARTTLS where offered",
    "  (a 530 at 'may' means none was offered), else tls: trusted;",
    "  unknown (nothing seen) -> tls: trusted (a guess). Probe the hosts (tlssim probe) to know.",
]


def _capability(classes: list[str], sender_level: str) -> dict[str, Any]:
    seen = [c for c in classes if c != "unknown"] or ["unknown"]
    if "requires-tls" in seen:
        tls = "none" if sender_level in ("may", "opportunistic") else "trusted"
        return {"tls": tls, "requires_tls": True}
    return dict(CAPABILITY[seen[0]])


def remote_world(log: MailLog, smart_hosts: set[str], sender_level: str) -> dict[str, Any]:
    """remotes.yaml: the domains and hosts the log shows; smart hosts as relay hosts."""
    domains: list[dict[str, Any]] = []
    relays: dict[str, list[str]] = {}
    for row in observed_rows(log):
        name = str(row["domain"])
        classes = str(row["tls_class"]).split(";")
        capability = _capability(classes, sender_level)
        seen = [h for h in str(row["mx_hosts"]).split(";") if h]
        for host in seen:
            if host in smart_hosts:
                relays.setdefault(host, []).extend(classes)
        mx_names = [h for h in seen if h not in smart_hosts] or [f"mx.{name}"]
        mx = [{"host": host, "preference": 10 * (i + 1), **capability} for i, host in enumerate(mx_names)]
        domains.append({"name": name, "mx": mx})
    hosts = [{"host": host, **_capability(classes, sender_level)} for host, classes in sorted(relays.items())]
    for host in sorted(smart_hosts - set(relays)):
        hosts.append({"host": host, "tls": "trusted"})
    return {"domains": domains, "hosts": hosts}


def traffic_of(log: MailLog) -> dict[str, Any]:
    """The outbound flow the log measured: rate, per-domain weights and mean size."""
    rows = observed_rows(log)
    messages = max(log.messages, 1)
    size_kb = (sum(log.sizes) / len(log.sizes) / 1024.0) if log.sizes else 75.0
    return {
        "outbound": {
            "rate_per_hour": round(messages / log.span_hours, 3),
            "domains": {str(row["domain"]): int(str(row["messages"])) for row in rows if int(str(row["messages"]))},
            "size": {"distribution": "lognormal", "mean_kb": round(max(size_kb, 0.1), 1), "sigma": 1.0},
        }
    }


def hourly_profile(log: MailLog) -> str:
    """The arrivals per hour of day, for a comment (the model has no daily profile yet)."""
    total = sum(log.hours.values()) or 1
    return " ".join(f"{hour:02d}h:{100 * log.hours.get(hour, 0) / total:.0f}%" for hour in range(24))


def relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())

"""What a mail log shows, whichever product wrote it: per recipient domain, per remote
host, and the notifications the server generated. The Postfix and Exchange log readers
fill one ``Observations``; the what-if is built from it.

Counting rules (one recipient of one outbound message is one *fate*):

* a fate ends ``delivered``, ``bounced``, ``expired`` or still ``pending`` at the end of
  the log; the four sum to ``recipients``. ``deferred`` counts fates deferred at least
  once, whatever became of them. ``delivered_tls`` / ``delivered_plaintext`` say how the
  delivered copy travelled where the log says so (the rest is not known).
* a session is one delivery attempt to a host; its TLS class is what the log shows of
  it. A log source (a Postfix instance, an Exchange server) that never logs any TLS fact
  leaves its sessions' class ``unknown``, not ``none``: Postfix logs nothing about TLS at
  ``smtp_tls_loglevel = 0``, its default; Exchange's send protocol log is off by default.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

CLASSES = ("trusted", "untrusted", "encrypted", "handshake-fails", "requires-tls", "none", "unknown")
"""Session TLS classes, in the order a tie between them is broken (a tie never falls to
``none``: a host that did TLS even once has shown it can)."""
FATES = ("delivered", "bounced", "expired", "pending")
OBSERVED_COLUMNS = (
    "domain",
    "messages",
    "recipients",
    "delivered",
    "bounced",
    "expired",
    "pending",
    "deferred",
    "delivered_tls",
    "delivered_plaintext",
    "mx_hosts",
    "tls_class",
    "sessions",
)
NOTIFICATION_COLUMNS = ("kind", "messages", "local_recipients", "remote_recipients", *FATES[:3], "pending")


@dataclass(slots=True)
class Fate:
    """What became of one recipient of one message, as far as the log has told."""

    final: str = "pending"
    deferred: bool = False
    tls: bool | None = None  # the delivered copy: over TLS, in plaintext, or not known
    silent: str = ""  # no TLS fact for the delivered copy: the log source that said nothing

    def attempt(self, status: str, tls: bool | None, silent: str = "") -> None:
        if status == "sent":
            self.final, self.tls, self.silent = "delivered", tls, silent
        elif status == "deferred":
            self.deferred = True
        elif status in ("bounced", "expired") and self.final == "pending":
            self.final = status


@dataclass(slots=True)
class DomainTally:
    messages: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # fates, deferred, delivered_tls, ...
    hosts: Counter[str] = field(default_factory=Counter)  # sessions per host


@dataclass(slots=True)
class HostTally:
    classes: Counter[str] = field(default_factory=Counter)  # sessions per class
    silent: Counter[str] = field(default_factory=Counter)  # sessions with no TLS fact, per log source

    def resolved(self, logging_sources: set[str]) -> Counter[str]:
        """The class counts once silent sessions are placed: ``none`` where their source
        logs TLS (so no TLS line means no TLS), ``unknown`` where it never does."""
        counts = Counter(self.classes)
        for source, sessions in self.silent.items():
            counts["none" if source in logging_sources else "unknown"] += sessions
        return counts


def host_class(counts: Counter[str]) -> str:
    """The class a host is modelled with: the most sessions, ties broken by ``CLASSES``;
    ``unknown`` only when nothing else was seen.

    >>> host_class(Counter({"none": 3, "trusted": 3})), host_class(Counter({"unknown": 9, "none": 1}))
    ('trusted', 'none')
    """
    seen = {c: n for c, n in counts.items() if n and c != "unknown"}
    if not seen:
        return "unknown"
    return min(seen, key=lambda c: (-seen[c], CLASSES.index(c)))


@dataclass
class Observations:
    """Everything a log reader hands over (no addresses: domains and hosts only)."""

    domains: dict[str, DomainTally] = field(default_factory=dict)
    hosts: dict[str, HostTally] = field(default_factory=dict)
    notifications: dict[str, Counter[str]] = field(default_factory=dict)
    logging_sources: set[str] = field(default_factory=set)  # sources that logged some TLS fact
    sources: set[str] = field(default_factory=set)
    local_domains: set[str] = field(default_factory=set)
    internal_domains: set[str] = field(default_factory=set)
    hops: Counter[str] = field(default_factory=Counter)  # deliveries to content filters, instances
    lines: int = 0
    unused: Counter[str] = field(default_factory=Counter)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    messages: int = 0
    size_total: int = 0
    sized: int = 0
    hours: Counter[int] = field(default_factory=Counter)

    def seen(self, when: dt.datetime) -> None:
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when

    @property
    def span_hours(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max((self.last - self.first).total_seconds() / 3600.0, 1 / 60)

    @property
    def mean_size(self) -> float | None:
        return self.size_total / self.sized if self.sized else None

    def session(self, host: str, domain: str, cls: str | None, source: str) -> None:
        """One delivery attempt to ``host`` for ``domain``: its class, or None when the log
        says nothing of its TLS (placed later by what ``source`` logs)."""
        self.sources.add(source)
        tally = self.hosts.setdefault(host, HostTally())
        if cls is None:
            tally.silent[source] += 1
        else:
            tally.classes[cls] += 1
            if cls != "unknown":
                self.logging_sources.add(source)
        self.domains.setdefault(domain, DomainTally()).hosts[host] += 1

    def message(self, when: dt.datetime | None, size: int | None, fates: dict[str, list[Fate]]) -> None:
        """One outbound message: its fates per recipient domain."""
        if not fates:
            return
        self.messages += 1
        if when is not None:
            self.hours[when.hour] += 1
        if size is not None:
            self.size_total += size
            self.sized += 1
        for domain, recipients in fates.items():
            tally = self.domains.setdefault(domain, DomainTally())
            tally.messages += 1
            counts = tally.counts
            for fate in recipients:
                counts["recipients"] += 1
                counts[fate.final] += 1
                counts["deferred"] += fate.deferred
                if fate.final == "delivered" and fate.tls is not None:
                    counts["delivered_tls" if fate.tls else "delivered_plaintext"] += 1
                elif fate.final == "delivered" and fate.silent:
                    counts["silent:" + fate.silent] += 1  # plaintext if that source logs TLS

    def notification(self, kind: str, local: int, remote: list[Fate], *, new: bool = True) -> None:
        """A notification the server made (``new``), or the remote fates of one already counted."""
        counts = self.notifications.setdefault(kind, Counter())
        counts["messages"] += new
        counts["local_recipients"] += local
        counts["remote_recipients"] += len(remote)
        for fate in remote:
            counts[fate.final] += 1

    def classes_of(self, host: str) -> Counter[str]:
        tally = self.hosts.get(host)
        return tally.resolved(self.logging_sources) if tally else Counter()

    def outbound_domains(self) -> list[str]:
        """Recipient domains with outbound mail, busiest first, then by name."""
        excluded = self.local_domains | self.internal_domains
        names = [d for d, t in self.domains.items() if t.messages and d not in excluded]
        return sorted(names, key=lambda d: (-self.domains[d].messages, d))

    def rows(self) -> list[dict[str, object]]:
        """observed.csv: one row per outbound recipient domain."""
        rows = []
        for name in self.outbound_domains():
            tally = self.domains[name]
            hosts = sorted(tally.hosts, key=lambda h: (-tally.hosts[h], h))
            classes: Counter[str] = Counter()
            for host in hosts:
                classes[host_class(self.classes_of(host))] += tally.hosts[host]
            counts = Counter(tally.counts)
            for source in self.logging_sources:
                counts["delivered_plaintext"] += counts["silent:" + source]
            rows.append(
                {
                    "domain": name,
                    "messages": tally.messages,
                    **{column: counts[column] for column in OBSERVED_COLUMNS[2:10]},
                    "mx_hosts": ";".join(hosts),
                    "tls_class": ";".join(c for c in CLASSES if classes[c]) or "unknown",
                    "sessions": sum(tally.hosts.values()),
                }
            )
        return rows

    def notification_rows(self) -> list[dict[str, object]]:
        return [
            {"kind": kind, **{c: counts[c] for c in NOTIFICATION_COLUMNS[1:]}}
            for kind, counts in sorted(self.notifications.items())
        ]

"""``tlssim import maillog``: a Postfix mail log -> observed.csv, remotes.yaml, whatif.yaml.

Reads syslog lines (traditional ``Nov 29 02:06:24 host ...`` or RFC 3339 timestamps)
from plain or gzip files, in any order of rotation (entries are sorted by time). What
it uses, from ``postfix/smtp`` and ``postfix/qmgr``:

* ``<qid>: to=<addr>, relay=host[ip]:25, ..., dsn=X.Y.Z, status=sent|deferred|bounced|expired (text)``
  -- one recipient's delivery attempt;
* ``(Anonymous|Untrusted|Trusted|Verified) TLS connection established to host[ip]:25`` --
  the TLS of that smtp process's session with ``host`` (Postfix's log tiers);
* ``<qid>: from=<addr>, size=N, nrcpt=M (queue active)`` -- message sizes;
* ``<qid>: from=<addr>, status=expired, returned to sender`` -- expiry.

The TLS class of a destination comes from what the log shows: ``trusted`` (Trusted or
Verified), ``untrusted``, ``anonymous`` (TLS, certificate not checked), ``none`` (mail
went out in plaintext, or "TLS is required, but was not offered"), ``handshake-fails``
("Cannot start TLS: handshake failure", ``SSL_connect error``), ``requires-tls`` (530
to plaintext), ``unknown``. Local parts of addresses are never kept: only domains.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sim.importers.text import open_lines

_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}
_TRADITIONAL = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) (?P<rest>.*)$")
_ISO = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<rest>.*)$")
_PROGRAM = re.compile(r"^\S+ (?P<prog>postfix(?:-[\w.-]+)?/(?P<daemon>[\w.-]+))\[(?P<pid>\d+)\]: (?P<msg>.*)$")
_QID = r"(?P<qid>[0-9A-F]{6,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,16})"
_DELIVERY = re.compile(
    _QID + r": to=<(?P<rcpt>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]+),.*?"
    r" dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), status=(?P<status>sent|deferred|bounced|expired)(?: \((?P<text>.*)\))?$"
)
_TLS = re.compile(r"^(?P<tier>Anonymous|Untrusted|Trusted|Verified) TLS connection established to (?P<host>[^\[\s]+)\[")
_HANDSHAKE = re.compile(r"^SSL_connect error to (?P<host>[^\[\s]+)\[")
_ACTIVE = re.compile(_QID + r": from=<[^>]*>, size=(?P<size>\d+), nrcpt=(?P<nrcpt>\d+)")
_EXPIRED = re.compile(_QID + r": from=<[^>]*>, status=expired, returned to sender")
_TIERS = {"Verified": "trusted", "Trusted": "trusted", "Untrusted": "untrusted", "Anonymous": "anonymous"}
OBSERVED_COLUMNS = (
    "domain",
    "messages",
    "recipients",
    "delivered",
    "delivered_tls",
    "deferred",
    "bounced",
    "mx_hosts",
    "tls_class",
)


Recipient = tuple[str, str]
"""(queue id, digest of the local part): tells recipients apart without keeping them."""


@dataclass
class DomainLog:
    queue_ids: set[str] = field(default_factory=set)
    recipients: set[tuple[str, str]] = field(default_factory=set)  # (qid, hashed local part)
    delivered: set[tuple[str, str]] = field(default_factory=set)
    delivered_tls: set[tuple[str, str]] = field(default_factory=set)
    deferred: set[tuple[str, str]] = field(default_factory=set)
    bounced: set[tuple[str, str]] = field(default_factory=set)
    hosts: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)


@dataclass
class MailLog:
    """What the log says, per recipient domain, and what could not be used."""

    domains: dict[str, DomainLog] = field(default_factory=lambda: defaultdict(DomainLog))
    lines: int = 0
    unused: Counter[str] = field(default_factory=Counter)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    sizes: list[int] = field(default_factory=list)
    hours: Counter[int] = field(default_factory=Counter)  # message arrivals by hour of day

    @property
    def messages(self) -> int:
        return len({qid for log in self.domains.values() for qid in log.queue_ids})

    @property
    def span_hours(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max((self.last - self.first).total_seconds() / 3600.0, 1 / 60)


def read_maillog(paths: list[Path], year: int = 2026) -> MailLog:
    """Parse every file (any rotation order) into per-domain tallies.

    ``year`` dates traditional syslog lines, which carry none."""
    entries = []
    log = MailLog()
    for path in paths:
        for line in open_lines(path):
            log.lines += 1
            stamped = _timestamp(line, year)
            if stamped is None:
                log.unused["no timestamp"] += 1
                continue
            entries.append(stamped)
    entries.sort(key=lambda entry: entry[0])  # rotated files in any order; stable within a second
    tls_by_pid: dict[str, tuple[str, str]] = {}
    handshake_by_pid: dict[str, str] = {}
    expired: set[str] = set()
    recipients_of: dict[str, set[tuple[str, Recipient]]] = defaultdict(set)
    for when, rest in entries:
        _account(log, when, rest, tls_by_pid, handshake_by_pid, expired, recipients_of)
    for qid in expired:  # qmgr expiry returns every recipient not yet delivered
        for domain, key in recipients_of[qid]:
            record = log.domains[domain]
            if key not in record.delivered:
                record.bounced.add(key)
    return log


def _timestamp(line: str, year: int) -> tuple[dt.datetime, str] | None:
    match = _ISO.match(line)
    if match is not None:
        text = match.group("stamp").replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC), match.group("rest")
    match = _TRADITIONAL.match(line)
    if match is None or match.group("mon") not in _MONTHS:
        return None
    hour, minute, second = (int(x) for x in match.group("time").split(":"))
    try:
        when = dt.datetime(
            year, _MONTHS[match.group("mon")], int(match.group("day")), hour, minute, second, tzinfo=dt.UTC
        )
    except ValueError:
        return None
    return when, match.group("rest")


def _account(
    log: MailLog,
    when: dt.datetime,
    rest: str,
    tls_by_pid: dict[str, tuple[str, str]],
    handshake_by_pid: dict[str, str],
    expired: set[str],
    recipients_of: dict[str, set[tuple[str, Recipient]]],
) -> None:
    program = _PROGRAM.match(rest)
    if program is None:
        log.unused["not a postfix line"] += 1
        return
    daemon, pid, message = program.group("daemon"), program.group("pid"), program.group("msg")
    log.first = when if log.first is None else min(log.first, when)
    log.last = when if log.last is None else max(log.last, when)
    if daemon == "qmgr":
        active = _ACTIVE.match(message)
        if active is not None:
            log.sizes.append(int(active.group("size")))
            log.hours[when.hour] += 1
            return
        gone = _EXPIRED.match(message)
        if gone is not None:
            expired.add(gone.group("qid"))
            return
        if not message.endswith(": removed"):  # the end of a message's life: nothing to count
            log.unused["other qmgr line"] += 1
        return
    if daemon != "smtp":
        log.unused[f"postfix/{daemon} line"] += 1
        return
    tls = _TLS.match(message)
    if tls is not None:
        tls_by_pid[pid] = (tls.group("host").lower(), _TIERS[tls.group("tier")])
        return
    failed = _HANDSHAKE.match(message)
    if failed is not None:
        handshake_by_pid[pid] = failed.group("host").lower()
        return
    delivery = _DELIVERY.match(message)
    if delivery is None:
        log.unused["other smtp line"] += 1
        return
    _delivery(log, delivery, tls_by_pid.get(pid), handshake_by_pid.pop(pid, None), recipients_of)


def _delivery(
    log: MailLog,
    match: re.Match[str],
    tls: tuple[str, str] | None,
    handshake_failed: str | None,
    recipients_of: dict[str, set[tuple[str, Recipient]]],
) -> None:
    address = match.group("rcpt")
    if "@" not in address:
        log.unused["recipient without a domain"] += 1
        return
    local, domain = address.rsplit("@", 1)
    domain = domain.lower()
    qid, status, text = match.group("qid"), match.group("status"), match.group("text") or ""
    # The local part is only told apart, never kept: a short digest of it.
    key = (qid, f"{zlib.crc32(local.encode()):08x}")
    record = log.domains[domain]
    record.queue_ids.add(qid)
    record.recipients.add(key)
    recipients_of[qid].add((domain, key))
    relay = match.group("relay").split("[", 1)[0].lower()
    if relay != "none":
        record.hosts[relay] += 1
    cls = _class_of(status, text, relay, tls, handshake_failed)
    if cls is not None:
        record.classes[cls] += 1
    if status == "sent":
        record.delivered.add(key)
        if tls is not None and tls[0] == relay:
            record.delivered_tls.add(key)
    elif status == "deferred":
        record.deferred.add(key)
    else:
        record.bounced.add(key)


def _class_of(status: str, text: str, relay: str, tls: tuple[str, str] | None, handshake: str | None) -> str | None:
    if "Must issue a STARTTLS command first" in text or " 530 " in f" {text} ":
        return "requires-tls"
    if "handshake failure" in text or (handshake is not None and handshake == relay):
        return "handshake-fails"
    if "TLS is required, but was not offered" in text:
        return "none"
    if status == "sent":
        if tls is not None and tls[0] == relay:
            return tls[1]
        return "none"
    if tls is not None and tls[0] == relay:
        return tls[1]
    return "unknown" if relay != "none" else None


def observed_rows(log: MailLog) -> list[dict[str, object]]:
    """observed.csv: one row per recipient domain, busiest first, then by name."""
    rows = []
    for domain, record in log.domains.items():
        rows.append(
            {
                "domain": domain,
                "messages": len(record.queue_ids),
                "recipients": len(record.recipients),
                "delivered": len(record.delivered),
                "delivered_tls": len(record.delivered_tls),
                "deferred": len(record.deferred),
                "bounced": len(record.bounced),
                "mx_hosts": ";".join(host for host, _ in sorted(record.hosts.items(), key=lambda kv: (-kv[1], kv[0]))),
                "tls_class": ";".join(c for c, _ in sorted(record.classes.items(), key=lambda kv: (-kv[1], kv[0])))
                or "unknown",
            }
        )
    return sorted(rows, key=lambda row: (-int(str(row["messages"])), str(row["domain"])))

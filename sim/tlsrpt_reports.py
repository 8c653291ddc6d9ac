"""RFC 8460 aggregate reports from a run's TLS-RPT session tallies (reference modern-policies 4).

Two directions: the reports our organisation would **receive** (from every remote
sender whose product reports, about our published policies: one report per reporting
organisation per UTC day) and those our senders would **send** (when our product
reports, to every remote domain that publishes a ``rua``: one report per recipient
domain per UTC day). Keys are exactly the schema's (s.4.4): ``mx-host`` an array
(errata 6241), ``policy-string`` an array of strings (s.4.5). Addresses are from the
documentation ranges (RFC 5737): senders 192.0.2.0/24 (ours) and 198.51.100.0/24
(theirs), receivers 203.0.113.0/24.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sim.files import bounded_file_name
from sim.model.tlsrpt_tally import SessionKey

PolicyText = Callable[[str, str, str, str], tuple[list[str], list[str]]]
"""(policy type, policy domain, recipient domain, MTA-STS mode) -> (policy-string, mx-host)."""


def _ip(prefix: str, name: str) -> str:
    return f"{prefix}.{zlib.crc32(name.encode()) % 254 + 1}"


def tlsa_string(mx: str, usage: int = 3) -> str:
    """A TLSA record in presentation form for ``mx`` (a stand-in digest of its name)."""
    return f"{usage} 1 1 {hashlib.sha256(mx.encode()).hexdigest().upper()}"


def build_reports(
    sessions: Iterable[tuple[SessionKey, int]],
    start: dt.datetime,
    describe: PolicyText,
    *,
    per: str,
    sending_prefix: str,
) -> list[tuple[str, dict[str, Any]]]:
    """Reports as (file name, JSON document), sorted by file name.

    ``per="reporter"``: one report per (reporting organisation, day); ``per="recipient"``:
    one per (recipient domain, day). File names follow s.5.1:
    ``<reporter>!<policy domain>!<begin unix>!<end unix>.json``.
    """
    grouped: dict[tuple[str, str, str, int], dict[tuple[str, str, str], dict[tuple[str, str], int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for (org, contact, recipient, kind, mode, policy_domain, day, mx, result), count in sessions:
        report_key = (org, contact, recipient if per == "recipient" else "", day)
        grouped[report_key][(kind, mode, policy_domain + "\0" + recipient)][(mx, result)] += count
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    reports = []
    for (org, contact, recipient, day), policies in sorted(grouped.items()):
        begin = midnight + dt.timedelta(days=day)
        end = begin + dt.timedelta(days=1) - dt.timedelta(seconds=1)
        entries = [
            _policy_entry(kind, mode, key, outcomes, describe, sending_prefix, org)
            for (kind, mode, key), outcomes in sorted(policies.items())
        ]
        named = recipient or entries[0]["policy"]["policy-domain"]
        document = {
            "organization-name": org,
            "date-range": {"start-datetime": _rfc3339(begin), "end-datetime": _rfc3339(end)},
            "contact-info": contact,
            "report-id": f"{begin.date().isoformat()}_{org}_{named}",
            "policies": entries,
        }
        # s.5.1 names the file by the reporter's domain (its contact's), e.g. microsoft.com.
        reporter = contact.rsplit("@", 1)[-1] if "@" in contact else org
        name = bounded_file_name(f"{reporter}!{named}!{int(begin.timestamp())}!{int(end.timestamp())}.json")
        reports.append((name, document))
    return reports


def _policy_entry(
    kind: str,
    mode: str,
    key: str,
    outcomes: dict[tuple[str, str], int],
    describe: PolicyText,
    sending_prefix: str,
    org: str,
) -> dict[str, Any]:
    policy_domain, recipient = key.split("\0")
    strings, mx_hosts = describe(kind, policy_domain, recipient, mode)
    success = sum(n for (_, result), n in outcomes.items() if not result)
    failures = [
        {
            "result-type": result,
            "sending-mta-ip": _ip(sending_prefix, org),
            "receiving-mx-hostname": mx,
            "receiving-ip": _ip("203.0.113", mx),
            "failed-session-count": n,
        }
        for (mx, result), n in sorted(outcomes.items())
        if result
    ]
    return {
        "policy": {
            "policy-type": kind,
            "policy-string": strings,
            "policy-domain": policy_domain,
            "mx-host": mx_hosts,
        },
        "summary": {
            "total-successful-session-count": success,
            "total-failure-session-count": sum(f["failed-session-count"] for f in failures),
        },
        "failure-details": failures,
    }


def _rfc3339(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

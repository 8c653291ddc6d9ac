"""From received TLS-RPT reports to a what-if that forecasts our policy change.

The reports say, per reporting organisation and day, how many sessions its MTAs had
with our MX hosts and which of them failed how. The what-if written from them:

* our organisation as the reports show it: the policy domain, the MTA-STS policy from
  the newest ``policy-string`` (mode, ``mx`` patterns, ``max_age``), and one MX host
  per name the reports (or the policy, or ``--mx``) give, each on a virtual server with
  a certificate valid for its name;
* each organisation as an inbound sender at its mean sessions per reported day (one
  message per session: assumed), with the product profile when its name is known
  (Microsoft: ``exchange-online``, Google: ``gmail``) and ``generic`` otherwise;
* the failures as evidence (``observed_failures``): the share of its sessions that met
  a failure at one of our MX hosts is sent by MTAs that meet the same there. Under
  ``testing`` that mail is delivered and reported; under ``enforce`` it is refused there,
  tried at our other MX hosts, and returned at the sender's own expiry if none takes it.

Failures a sender setting does not reproduce (policy fetch errors, DANE results) are
counted in the header, not modelled: a failed policy fetch leaves the sender without our
policy, so it delivers as before whatever the mode.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sim.durations import format_duration
from sim.importers.tlsrpt_received import Report, observed_rows
from sim.scenario.model import ObservedResult
from sim.scenario.published import MAX_AGE_LIMIT, is_sts_pattern
from sim.vocabulary import is_domain

# Reporting organisations whose sending product tlssim models (modern-policies 4f).
PROFILE_OF_REPORTER = {
    "Microsoft Corporation": "exchange-online",
    "Google Inc.": "gmail",
    "Google LLC": "gmail",
}
REPRODUCED: tuple[ObservedResult, ...] = (
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
)
DEFAULT_MAX_AGE = 7 * 86400.0


class ForecastError(ValueError):
    """The reports do not give what a what-if needs (our policy domain)."""


@dataclass
class Forecast:
    topology: dict[str, Any]
    whatif: dict[str, Any]
    header: list[str]
    footer: list[str]
    not_modelled: Counter[str] = field(default_factory=Counter)  # result type -> sessions
    enforce_commented: bool = False  # the footer holds a commented change to enforce


def our_domain(reports: list[Report]) -> str | None:
    """The policy domain most of the reports' policies name."""
    named = Counter(_named(entry) for report in reports for entry in report.document["policies"])
    return next((domain for domain, _ in named.most_common() if is_domain(domain)), None)


def _policy(entry: dict[str, Any]) -> dict[str, Any]:
    policy = entry.get("policy")
    return policy if isinstance(policy, dict) else {}


def _named(entry: dict[str, Any]) -> str:
    """The policy domain an entry names ("" when it names none)."""
    return str(_policy(entry).get("policy-domain", "") or "").strip().lower().rstrip(".")


def _ours(report: Report, domain: str) -> list[dict[str, Any]]:
    """The report's policy entries about ``domain`` (or naming no domain: Postfix's
    reporter omits it)."""
    return [entry for entry in report.document["policies"] if _named(entry) in ("", domain)]


def _policy_string(reports: list[Report], domain: str) -> list[str]:
    """The newest ``sts`` policy-string the reports carry for ``domain``."""
    newest: tuple[str, list[str]] = ("", [])
    for report in reports:
        for entry in report.document["policies"]:
            strings = _policy(entry).get("policy-string")
            fits = _policy(entry).get("policy-type") == "sts" and _named(entry) in ("", domain)
            if fits and isinstance(strings, list) and strings and report.day >= newest[0]:
                newest = (report.day, [str(s) for s in strings])
    return newest[1]


def sts_policy(strings: list[str], domain: str, hosts: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Our MTA-STS policy from its policy-string lines, and what had to be assumed."""
    fields: dict[str, list[str]] = defaultdict(list)
    for line in strings:
        key, _, value = line.partition(":")
        fields[key.strip().lower()].append(value.strip())
    assumed = []
    mode = (fields.get("mode") or [""])[0].lower()
    if mode not in ("testing", "enforce", "none"):
        assumed.append("mode testing (no policy-string in the reports)")
        mode = "testing"
    patterns = [p.lower() for p in fields.get("mx", []) if is_sts_pattern(p.lower())]
    if not patterns:
        patterns = hosts or [f"*.{domain}"]
        assumed.append(f"mx patterns {', '.join(patterns)} (none in the reports)")
    max_age = DEFAULT_MAX_AGE
    raw = (fields.get("max_age") or [""])[0]
    if raw.isdigit() and int(raw) > 0:
        max_age = float(min(int(raw), int(MAX_AGE_LIMIT)))
        if int(raw) > MAX_AGE_LIMIT:
            assumed.append(f"max_age {raw} clamped to one year, as senders do (RFC 8461 s.3.2)")
    else:
        assumed.append(f"max_age {format_duration(DEFAULT_MAX_AGE)} (not in the reports)")
    policy = {"mode": mode, "mx": patterns, "max_age": format_duration(max_age)}
    return policy, assumed


def reported_mx(rows: list[dict[str, Any]]) -> list[str]:
    """The MX hosts of ours that failure details name, in the order first seen."""
    names = (_host(str(row["receiving_mx"])) for row in rows)
    return list(dict.fromkeys(name for name in names if is_domain(name)))


def _host(name: str) -> str:
    return name.lower().rstrip(".")


@dataclass
class _Sender:
    organisation: str
    contact: str
    days: set[str] = field(default_factory=set)
    sessions: int = 0
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (mx, result) -> sessions


def _senders(reports: list[Report], rows: list[dict[str, Any]]) -> dict[str, _Sender]:
    """Per organisation: sessions from the summaries, failures from the observed rows
    (``tlsrpt.observed_rows``: by MX and result, a summary's failures beyond its details
    as ``unspecified``)."""
    found: dict[str, _Sender] = {}
    for report in reports:  # sessions are the summaries' (as senders.yaml counts them)
        contact = str(report.document.get("contact-info", ""))
        sender = found.setdefault(report.organisation, _Sender(report.organisation, contact))
        sender.days.add(report.day)  # a day without sessions is still a reported day
        for entry in report.document["policies"]:
            summary = entry["summary"]
            sender.sessions += summary["total-successful-session-count"] + summary["total-failure-session-count"]
    for row in rows:
        if row["result_type"] != "success":
            found[row["organisation"]].failed[(_host(row["receiving_mx"]), row["result_type"])] += row["sessions"]
    return found


def _sender_domain(sender: _Sender, taken: set[str]) -> str:
    """The sending domain: the contact's (RFC 8460 s.5.3 makes the submitter match it),
    else one made from the organisation's name."""
    contact = sender.contact.rsplit("@", 1)[-1].strip().lower().rstrip(".") if "@" in sender.contact else ""
    if is_domain(contact) and contact not in taken:
        return contact
    slug = re.sub(r"[^a-z0-9]+", "-", sender.organisation.lower()).strip("-")[:50] or "reporter"
    candidate, n = f"{slug}.reporter.invalid", 1
    while candidate in taken or not is_domain(candidate):
        n += 1
        candidate = f"{slug or 'reporter'}-{n}.reporter.invalid"
    return candidate


def forecast(reports: list[Report], domain: str | None = None, mx: list[str] | None = None) -> Forecast:
    """The what-if (and our topology) the reports describe."""
    domain = (domain or our_domain(reports) or "").lower().rstrip(".")
    if not is_domain(domain):
        raise ForecastError("the reports name no policy domain of ours: pass --domain (our mail domain)")
    every = len(reports)
    reports = [Report(r.source, {**r.document, "policies": ours}) for r in reports if (ours := _ours(r, domain))]
    if not reports:
        raise ForecastError(f"no report is about {domain} (pass --domain: our mail domain)")
    rows = observed_rows(reports)
    reported = reported_mx(rows)
    policy, assumed = sts_policy(_policy_string(reports, domain), domain, [h for h in reported if h.endswith(domain)])
    literal = [p for p in policy["mx"] if not p.startswith("*.")]
    hosts = [_host(h) for h in mx] if mx else list(dict.fromkeys([*literal, *reported]))
    if not hosts:
        wildcard = next((p[2:] for p in policy["mx"] if p.startswith("*.")), domain)
        hosts = [f"mx1.{wildcard}"]
        assumed.append(f"MX host {hosts[0]} (the reports name none: pass --mx)")
    servers = [
        {
            "name": f"MX{i}",
            "routing_group": "site",
            "virtual_servers": [
                {"name": "smtp", "inbound": {"tls": "offered"}, "certificate": {"issuer": "public-ca", "names": [h]}}
            ],
        }
        for i, h in enumerate(hosts, start=1)
    ]
    topology = {
        "organisation": domain.split(".")[0],
        "profile": "postfix",
        "routing_groups": [{"name": "site"}],
        "servers": servers,
        "publishes": {
            "domain": domain,
            "mx": [
                {"host": h, "virtual_server": f"MX{i}/smtp", "preference": 10 * i} for i, h in enumerate(hosts, start=1)
            ],
            "mta_sts": policy,
            "tls_rpt": f"mailto:tlsrpt@{domain}",
        },
    }
    inbound, not_modelled, notes = _inbound(_senders(reports, rows), hosts)
    days = sorted({r.day for r in reports})
    span = max(7, len(days) + 3)
    whatif = {
        "name": f"tlsrpt-{domain}",
        "topology": "topology.yaml",
        "remotes": "remotes.yaml",
        "traffic": {"inbound": inbound},
        "run": {"start": f"{days[0]}T00:00:00Z", "duration": f"{span}d", "seed": 1, "sample_interval": "1h"},
    }
    header = [
        f"What {len(reports)} TLS-RPT report(s) show of {domain}, {days[0]} to {days[-1]}:",
        f"our MTA-STS policy ({policy['mode']}, mx {', '.join(policy['mx'])}); our MX hosts {', '.join(hosts)};",
        "each reporting organisation as a sender at its mean sessions per reported day",
        "(one message per session: assumed).",
        "observed_failures: the share of a sender's sessions that met that failure at that MX host; under",
        "enforce that mail is refused there, tried at our other MX hosts, and returned at the sender's expiry.",
        *(f"assumed: {a}" for a in assumed),
        *notes,
    ]
    if every > len(reports):
        header.append(f"{every - len(reports)} report(s) about other domains than {domain}: left out")
    if not_modelled:
        kinds = ", ".join(f"{k} {n}" for k, n in not_modelled.most_common())
        header.append(f"not modelled per sender (a fetch error leaves the sender without our policy): {kinds} sessions")
    if policy["mode"] == "testing":
        footer = [
            "Forecast enforce: uncomment these lines (the mode moves to enforce on day 1).",
            "changes:",
            "  - {at: 1d, set: {publishes.mta_sts.mode: enforce}}",
        ]
    else:
        footer = [f"Our policy is already in {policy['mode']} in the reports: this what-if replays it."]
    return Forecast(topology, whatif, header, footer, not_modelled, policy["mode"] == "testing")


def _inbound(senders: dict[str, _Sender], hosts: list[str]) -> tuple[list[dict[str, Any]], Counter[str], list[str]]:
    flows: list[dict[str, Any]] = []
    not_modelled: Counter[str] = Counter()
    notes: list[str] = []
    taken: set[str] = set()
    for organisation, sender in sorted(senders.items()):
        if sender.sessions == 0:
            notes.append(f"{organisation}: no sessions reported; left out")
            continue
        name = _sender_domain(sender, taken)
        taken.add(name)
        profile = PROFILE_OF_REPORTER.get(organisation, "generic")
        failures = []
        for (mx, result), count in sorted(sender.failed.items()):
            if result not in REPRODUCED:
                not_modelled[result] += count
                continue
            host = mx if mx in hosts else hosts[0]
            if mx != host:
                notes.append(
                    f"{organisation}: {count} {result} session(s) at {mx or 'an unnamed MX'} counted at {host}"
                )
            failures.append({"mx": host, "result": result, "share": count / sender.sessions})
        failures = _merged(failures)
        flow: dict[str, Any] = {
            "from": name,
            "rate_per_hour": round(sender.sessions / len(sender.days) / 24, 6),
            "profile": profile,
        }
        if failures:
            flow["observed_failures"] = failures
        flows.append(flow)
        kind = "its product" if profile != "generic" else "product unknown: generic (assumed)"
        notes.append(
            f"{name}: {organisation}, {sender.sessions} session(s) over {len(sender.days)} reported day(s); {kind}"
        )
    return flows, not_modelled, notes


def _merged(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (MX, result), shares rounded so that they never sum above 1."""
    shares: dict[tuple[str, str], float] = defaultdict(float)
    for failure in failures:
        shares[(failure["mx"], failure["result"])] += failure["share"]
    total = max(1.0, sum(shares.values()))
    return [
        {"mx": mx, "result": result, "share": max(float(f"{share / total:.6g}"), 1e-6)}
        for (mx, result), share in shares.items()
    ]

"""Probe domains: MX hosts, their STARTTLS and certificates, MTA-STS, DANE and TLS-RPT
records -> a remote-world document with the evidence for each host."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sim.probe.dns import Resolver
from sim.probe.judge import evidence, faults_of, label_of
from sim.probe.smtp import HostProbe, probe_host
from sim.scenario.published import MAX_AGE_LIMIT, is_sts_pattern
from sim.vocabulary import ServerTls

_VERSIONS = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


DomainStatus = Literal["probed", "policy-invalid", "unreachable", "dns-failed", "no-mail"]
STATUS_COLUMNS = ("domain", "status", "evidence", "probed", "not_probed")


@dataclass
class DomainRecord:
    """One domain's result: its status and what it rests on."""

    name: str
    status: DomainStatus
    evidence: str
    probed: list[str] = field(default_factory=list)  # MX hosts contacted
    not_probed: list[str] = field(default_factory=list)  # beyond the per-domain limit
    document: dict[str, Any] | None = None  # its remote-world entry, when written


@dataclass
class ProbeResult:
    records: list[DomainRecord]
    notes: list[str]

    @property
    def document(self) -> dict[str, Any]:
        return {"domains": [r.document for r in self.records if r.document is not None]}

    def rows(self) -> list[dict[str, str]]:
        return [
            {
                "domain": r.name,
                "status": r.status,
                "evidence": r.evidence,
                "probed": " ".join(r.probed),
                "not_probed": " ".join(r.not_probed),
            }
            for r in self.records
        ]


async def probe_domains(
    domains: list[str],
    resolver: Resolver,
    *,
    deadline: float,
    concurrency: int,
    cafile: str | None = None,
    max_mx: int = 5,
) -> ProbeResult:
    """Every domain probed on its own: a failure of one (DNS, an unreachable host, a
    policy that does not parse) is that domain's record and never stops the others. At
    most ``concurrency`` sessions at once, at most ``max_mx`` MX hosts a domain (in
    preference order), one address per host (IPv4 first); ``deadline`` bounds every step
    of a domain: each lookup, each host's session, the MTA-STS fetch."""
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str) -> HostProbe | None:
        try:
            async with asyncio.timeout(deadline):
                addresses = sorted(await resolver.addresses(host), key=lambda a: ":" in a[0])
        except Exception:  # a resolver fault is this host's, not the run's
            return None
        if not addresses:
            return None
        address, port = addresses[0]
        async with gate:
            return await probe_host(host, address, port, deadline, cafile)

    records = await asyncio.gather(*(_domain(name, resolver, one, deadline, max_mx) for name in domains))
    notes = [line for record in records for line in record.notes]
    return ProbeResult([record.record for record in records], notes)


@dataclass
class _Found:
    record: DomainRecord
    notes: list[str]


async def _domain(name: str, resolver: Resolver, one: Any, deadline: float, max_mx: int) -> _Found:
    try:
        async with asyncio.timeout(deadline):
            mx = await resolver.mx(name)
    except TimeoutError:
        return _Found(DomainRecord(name, "dns-failed", f"MX lookup: no answer within {deadline:g}s"), [])
    except Exception as exc:  # dnspython's SERVFAIL, timeouts, refusals: this domain's fault
        why = f"MX lookup: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}".rstrip(": ")
        return _Found(DomainRecord(name, "dns-failed", why), [])
    if not mx:
        return _Found(DomainRecord(name, "no-mail", "null MX: accepts no mail (RFC 7505)"), [])
    tried, skipped = mx[:max_mx], mx[max_mx:]
    record = DomainRecord(name, "probed", "", [h for _, h in tried], [h for _, h in skipped])
    probes = await asyncio.gather(*(one(host) for _, host in tried))
    now = dt.datetime.now(dt.UTC)
    hosts, notes = [], []
    if skipped:
        notes.append(f"{name}: {len(skipped)} more MX host(s) not probed (at most {max_mx} a domain)")
    for (preference, host), probe in zip(tried, probes, strict=True):
        if probe is None:
            notes.append(f"{host}: no address: left out")
            continue
        faults = faults_of(probe, now)
        notes.append(evidence(probe, faults))
        label = label_of(probe, faults)
        if label is None:  # never a guess: a host the probe could not read is unknown
            notes.append(f"{host}: TLS unknown ({probe.error or 'no TLS facts'}): left out")
            continue
        entry: dict[str, Any] = {"host": host, "preference": preference, "tls": label.value}
        if probe.version in _VERSIONS and label is not ServerTls.HANDSHAKE_FAILS:
            entry["tls_versions"] = ["1.0", _VERSIONS[probe.version]]  # the lowest was not probed
        if faults is not None and label is ServerTls.TRUSTED:
            entry["certificate_expires_in"] = f"{max(0, int((faults.not_after - now).total_seconds()))}s"
        if probe.requiretls:
            entry["requiretls"] = True
        records, secure = await _bounded(resolver.tlsa(f"_25._tcp.{host}"), deadline, ([], None))
        if records:
            entry["tlsa"] = "match"  # presence only: matching the served chain is not checked here
            notes.append(f"{host}: TLSA {'; '.join(records)} (assumed to match the served certificate)")
        hosts.append((entry, secure))
    if not hosts:
        record.status, record.evidence = "unreachable", f"no MX host of {len(tried)} answered with its TLS"
        return _Found(record, notes)
    document: dict[str, Any] = {"name": name, "mx": [entry for entry, _ in hosts]}
    statuses = {secure for _, secure in hosts}
    if None in statuses:
        document["dnssec"] = "lookup-fails"
    elif statuses == {True}:
        document["dnssec"] = "secure"
    policy, problem = await _mta_sts(name, resolver, notes, deadline)
    if policy is not None:
        document["mta_sts"] = policy
    if problem:
        record.status = "policy-invalid"
    rua = next((t.split("rua=", 1)[1].split(";")[0].strip()
                for t in await _bounded(resolver.txt(f"_smtp._tls.{name}"), deadline, [])
                if t.startswith("v=TLSRPTv1") and "rua=" in t), None)  # fmt: skip
    if rua and rua.startswith(("mailto:", "https://")):
        document["tls_rpt"] = rua.split(",")[0]
    record.document = document
    left = len(tried) - len(hosts)
    record.evidence = problem or f"{len(hosts)} MX host(s) probed" + (f", {left} unknown" if left else "")
    return _Found(record, notes)


async def _bounded(call: Any, deadline: float, otherwise: Any) -> Any:
    """``await call`` within ``deadline``; ``otherwise`` on a timeout or a resolver fault."""
    try:
        async with asyncio.timeout(deadline):
            return await call
    except Exception:
        return otherwise


async def _mta_sts(
    name: str, resolver: Resolver, notes: list[str], deadline: float
) -> tuple[dict[str, Any] | None, str]:
    """(the policy as tlssim models it, or None; what is wrong with it, or "")."""
    records = [t for t in await _bounded(resolver.txt(f"_mta-sts.{name}"), deadline, []) if t.startswith("v=STSv1")]
    if len(records) != 1:
        return None, ""  # RFC 8461 s.3.1: no record, or several: no policy
    body = await _bounded(resolver.sts_policy(name), deadline, None)
    if body is None:
        notes.append(f"{name}: MTA-STS TXT record, but the policy could not be fetched within {deadline:g}s")
        return {"mode": "enforce", "mx": ["*." + name], "policy_host": "unreachable"}, ""
    fields: dict[str, Any] = {"mx": []}
    for line in body.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "mx":
            fields["mx"].append(value.lower())
        elif key in ("mode", "max_age") and key not in fields:
            fields[key] = value
    bad = [p for p in fields["mx"] if not is_sts_pattern(p)]
    problem = ""
    if fields.get("mode") not in ("enforce", "testing", "none") or not fields.get("max_age", "").isdigit():
        problem = "MTA-STS policy does not parse (mode or max_age)"
    elif bad:
        problem = f"MTA-STS policy: {bad[0][:60]!r} is not an mx pattern"
    elif fields["mode"] != "none" and not fields["mx"]:
        problem = "MTA-STS policy: no mx pattern"
    if problem:
        notes.append(f"{name}: {problem}")
        return {"mode": "enforce", "mx": ["*." + name], "policy_host": "broken"}, problem
    age = min(int(fields["max_age"]), int(MAX_AGE_LIMIT))  # senders clamp above one year
    if int(fields["max_age"]) > MAX_AGE_LIMIT:
        notes.append(f"{name}: MTA-STS max_age {fields['max_age']} clamped to one year")
    return {"mode": fields["mode"], "mx": fields["mx"], "max_age": f"{age}s"}, ""

"""Probe domains: MX hosts, their STARTTLS and certificates, MTA-STS, DANE and TLS-RPT
records -> a remote-world document with the evidence for each host."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sim.probe.dns import Resolver
from sim.probe.judge import evidence, faults_of, label_of
from sim.probe.smtp import HostProbe, probe_host
from sim.vocabulary import ServerTls

_VERSIONS = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


async def probe_domains(
    domains: list[str], resolver: Resolver, *, deadline: float, concurrency: int, cafile: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(remote-world document, evidence lines): every domain's MX hosts probed, at most
    ``concurrency`` sessions at once, one address per MX host (IPv4 first)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str) -> HostProbe | None:
        addresses = sorted(await resolver.addresses(host), key=lambda a: ":" in a[0])
        if not addresses:
            return None
        address, port = addresses[0]
        async with gate:
            return await probe_host(host, address, port, deadline, cafile)

    found = await asyncio.gather(*(_domain(name, resolver, one) for name in domains))
    documents = [document for document, _ in found if document is not None]
    notes = [line for _, lines in found for line in lines]
    return {"domains": documents}, notes


async def _domain(name: str, resolver: Resolver, one: Any) -> tuple[dict[str, Any] | None, list[str]]:
    mx = await resolver.mx(name)
    if not mx:
        return None, [f"{name}: null MX (accepts no mail): left out"]
    probes = await asyncio.gather(*(one(host) for _, host in mx))
    now = dt.datetime.now(dt.UTC)
    hosts, notes = [], []
    for (preference, host), record in zip(mx, probes, strict=True):
        if record is None:
            notes.append(f"{host}: no address: left out")
            continue
        faults = faults_of(record, now)
        notes.append(evidence(record, faults))
        label = label_of(record, faults)
        entry: dict[str, Any] = {"host": host, "preference": preference, "tls": (label or ServerTls.TRUSTED).value}
        if label is None:
            notes.append(f"{host}: the probe could not tell its TLS (tls: trusted is a guess)")
        if record.version in _VERSIONS and label is not ServerTls.HANDSHAKE_FAILS:
            entry["tls_versions"] = ["1.0", _VERSIONS[record.version]]  # the lowest was not probed
        if faults is not None and label is ServerTls.TRUSTED:
            entry["certificate_expires_in"] = f"{max(0, int((faults.not_after - now).total_seconds()))}s"
        if record.requiretls:
            entry["requiretls"] = True
        records, secure = await resolver.tlsa(f"_25._tcp.{host}")
        if records:
            entry["tlsa"] = "match"  # presence only: matching the served chain is not checked here
            notes.append(f"{host}: TLSA {'; '.join(records)} (assumed to match the served certificate)")
        hosts.append((entry, secure))
    if not hosts:
        return None, notes
    document: dict[str, Any] = {"name": name, "mx": [entry for entry, _ in hosts]}
    statuses = {secure for _, secure in hosts}
    if None in statuses:
        document["dnssec"] = "lookup-fails"
    elif statuses == {True}:
        document["dnssec"] = "secure"
    policy = await _mta_sts(name, resolver, notes)
    if policy is not None:
        document["mta_sts"] = policy
    rua = next((t.split("rua=", 1)[1].split(";")[0].strip() for t in await resolver.txt(f"_smtp._tls.{name}")
                if t.startswith("v=TLSRPTv1") and "rua=" in t), None)  # fmt: skip
    if rua:
        document["tls_rpt"] = rua.split(",")[0]
    return document, notes


async def _mta_sts(name: str, resolver: Resolver, notes: list[str]) -> dict[str, Any] | None:
    records = [t for t in await resolver.txt(f"_mta-sts.{name}") if t.startswith("v=STSv1")]
    if len(records) != 1:
        return None  # RFC 8461 s.3.1: no record, or several: no policy
    body = await resolver.sts_policy(name)
    if body is None:
        notes.append(f"{name}: MTA-STS TXT record, but the policy could not be fetched")
        return {"mode": "enforce", "mx": ["*." + name], "policy_host": "unreachable"}
    fields: dict[str, Any] = {"mx": []}
    for line in body.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "mx":
            fields["mx"].append(value.lower())
        elif key in ("mode", "max_age") and key not in fields:
            fields[key] = value
    if fields.get("mode") not in ("enforce", "testing", "none") or not fields.get("max_age", "").isdigit():
        notes.append(f"{name}: MTA-STS policy does not parse")
        return {"mode": "enforce", "mx": ["*." + name], "policy_host": "broken"}
    return {"mode": fields["mode"], "mx": fields["mx"], "max_age": f"{int(fields['max_age'])}s"}

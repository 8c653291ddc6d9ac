"""Generated remote worlds: many domains from distributions, identical for the same seed.

A population file gives shares (TLS capability per host, MX count per domain, hosts
that require TLS, hosts with outages, hosts that greylist) and a Zipf popularity
exponent; ``generate`` turns it into concrete domains and hosts, drawing from the
population's own seed, so two runs (and two policies) see the same Internet.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.scenario.model import Population, RemoteDomain, RemoteHost
from sim.scenario.policies import MtaStsPolicy, PopulationPolicies
from sim.vocabulary import Dnssec, PolicyHost, ServerTls, StsMode, Tlsa


@dataclass(frozen=True)
class GeneratedPopulation:
    domains: tuple[RemoteDomain, ...]
    popularity: tuple[float, ...]  # per domain, sums to 1, most popular first


def domain_name(population: Population, rank: int) -> str:
    return f"{population.name}-{rank:06d}.example"


def _requires_tls(population: Population, tls: ServerTls, rng: np.random.Generator) -> bool:
    """Whether a generated host refuses plaintext; a host without STARTTLS draws only
    when its share is set, so populations without it keep their draws."""
    if tls is not ServerTls.NONE:
        return bool(rng.random() < population.requires_tls)
    share = population.requires_tls_without_starttls
    return share > 0 and bool(rng.random() < share)


def with_policies(domains: list[RemoteDomain], shares: PopulationPolicies, seed: int) -> list[RemoteDomain]:
    """The domains with transport policies drawn from ``shares``, from a stream of their own.

    Every domain draws the same six numbers and every host two, whatever the shares,
    so changing one share moves no other domain's or host's draws.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xB0B, 1)))
    per_domain = rng.random((len(domains), 6))
    per_host = rng.random((sum(len(d.mx) for d in domains), 2))
    modes = list(shares.mta_sts.items())
    out, h = [], 0
    for rank, (domain, draws) in enumerate(zip(domains, per_domain, strict=True)):
        mode = StsMode.ENFORCE if rank < shares.mta_sts_top else _pick(modes, float(draws[0]))
        zone = float(draws[3])
        dnssec = (
            Dnssec.SECURE
            if zone < shares.dnssec_signed
            else Dnssec.BOGUS
            if zone < shares.dnssec_signed + shares.dnssec_bogus
            else Dnssec.INSECURE
        )
        has_dane = dnssec is Dnssec.SECURE and float(draws[4]) < shares.dane
        mismatch = mode is not None and rank >= shares.mta_sts_top and float(draws[1]) < shares.mta_sts_mismatch
        hosts = []
        for host in domain.mx:
            tlsa = Tlsa.NONE
            if has_dane:
                tlsa = Tlsa.MISMATCH if float(per_host[h, 0]) < shares.tlsa_mismatch else Tlsa.MATCH
            update: dict[str, object] = {"tlsa": tlsa, "requiretls": float(per_host[h, 1]) < shares.requiretls}
            if mode is not None and not mismatch:
                # A domain that publishes MTA-STS serves certificates that validate
                # (assumption); the measured failing share is ``mta_sts_mismatch``.
                update.update(tls=ServerTls.TRUSTED, requires_tls=False)
            hosts.append(host.model_copy(update=update))
            h += 1
        sts = None
        if mode is not None:
            unreachable = rank >= shares.mta_sts_top and float(draws[2]) < shares.mta_sts_unreachable
            pattern = f"*.mail.{domain.name}" if mismatch else f"*.{domain.name}"
            sts = MtaStsPolicy(
                mode=mode, mx=[pattern], policy_host=PolicyHost.UNREACHABLE if unreachable else PolicyHost.OK
            )
        rua = f"mailto:tlsrpt@{domain.name}" if float(draws[5]) < shares.tls_rpt else None
        out.append(domain.model_copy(update={"mx": hosts, "mta_sts": sts, "dnssec": dnssec, "tls_rpt": rua}))
    return out


def _pick(modes: list[tuple[StsMode, float]], draw: float) -> StsMode | None:
    """The mode whose cumulative share first exceeds ``draw``; ``None`` past them all."""
    total = 0.0
    for mode, share in modes:
        total += share
        if draw < total:
            return mode
    return None


def generate(population: Population) -> GeneratedPopulation:
    """The population's domains and popularity (cached: a sweep generates each once)."""
    return _generate(population.model_dump_json())


@lru_cache(maxsize=16)
def _generate(spec: str) -> GeneratedPopulation:
    population = Population.model_validate_json(spec)
    rng = np.random.default_rng(np.random.SeedSequence(population.seed, spawn_key=(0xB0B,)))
    count = population.domains
    mx_counts = list(population.mx_per_domain)
    mx_draw = rng.choice(len(mx_counts), size=count, p=list(population.mx_per_domain.values()))
    capabilities = list(population.tls)
    tls_shares = list(population.tls.values())
    domains: list[RemoteDomain] = []
    for rank in range(count):
        name = domain_name(population, rank + 1)
        hosts = []
        for j in range(mx_counts[int(mx_draw[rank])]):
            tls = capabilities[int(rng.choice(len(capabilities), p=tls_shares))]
            requires = _requires_tls(population, tls, rng)
            outages = population.outages if rng.random() < population.outage_share else None
            greylist = population.greylist if rng.random() < population.greylist_share else None
            hosts.append(
                RemoteHost(
                    host=f"mx{j + 1}.{name}",
                    preference=10 * (j + 1),
                    tls=tls,
                    requires_tls=requires,
                    max_connections=population.max_connections,
                    outages=outages,
                    greylist=greylist,
                )
            )
        domains.append(RemoteDomain(name=name, mx=hosts))
    if population.policies is not None:
        domains = with_policies(domains, population.policies, population.seed)
    weights = 1.0 / np.arange(1, count + 1, dtype=float) ** population.zipf_exponent
    weights /= weights.sum()
    return GeneratedPopulation(tuple(domains), tuple(weights.tolist()))

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
from sim.vocabulary import ServerTls


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
    weights = 1.0 / np.arange(1, count + 1, dtype=float) ** population.zipf_exponent
    weights /= weights.sum()
    return GeneratedPopulation(tuple(domains), tuple(weights.tolist()))

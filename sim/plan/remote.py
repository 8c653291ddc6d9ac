"""The remote world as the plan reads it: named domains, the generated population
(each domain made when first asked for) and the relays connectors name."""

from __future__ import annotations

from collections.abc import Sequence

from sim.population import GeneratedPopulation, generate
from sim.scenario.model import AddressSpaceSpec, Organisation, RemoteDomain, RemoteHost, Scenario
from sim.vocabulary import NO_TLS


class RemoteWorld:
    def __init__(self, scenario: Scenario) -> None:
        population = scenario.remotes.population
        self.population = generate(population) if population is not None else None
        self._named: dict[str, RemoteDomain] = {d.name: d for d in scenario.remotes.domains}
        self._seen: dict[str, tuple[RemoteDomain | None, list[RemoteHost]]] = {}
        self.relays: dict[str, RemoteHost] = {h.host: h for h in scenario.remotes.hosts}

    def domain(self, name: str) -> RemoteDomain | None:
        """The remote domain called ``name``: generated (made now, if it was not), or named."""
        return self._known(name)[0]

    def mx(self, name: str) -> list[RemoteHost]:
        """The domain's MX hosts in preference order; none for a domain outside the remote world."""
        return self._known(name)[1]

    def _known(self, name: str) -> tuple[RemoteDomain | None, list[RemoteHost]]:
        """The domain and its sorted MX hosts, looked up once (a queue asks for both)."""
        found = self._seen.get(name)
        if found is None:
            domain = None
            if self.population is not None:
                index = self.population.index_of(name)
                if index is not None:
                    domain = self.population.domain(index)
            if domain is not None:  # generated: its hosts are made in preference order
                found = self._seen[name] = (domain, domain.mx)
                return found
            domain = self._named.get(name)
            mx = sorted(domain.mx, key=lambda h: h.preference) if domain is not None else []
            found = self._seen[name] = (domain, mx)
        return found


def all_domains(scenario: Scenario) -> list[RemoteDomain]:
    """The named remote domains followed by the generated population, if any (every one
    made: for tests and tools, not for a run, which makes only those that get mail)."""
    domains = list(scenario.remotes.domains)
    if scenario.remotes.population is not None:
        domains += generate(scenario.remotes.population).domains
    return domains


def with_generated_address_spaces(
    organisation: Organisation, named: Sequence[RemoteDomain], population: GeneratedPopulation | None
) -> Organisation:
    """The organisation with ``address_spaces_from_remotes`` expanded into address spaces."""
    if not any(c.address_spaces_from_remotes for c in organisation.connectors):
        return organisation
    flags = [(d.name, all(h.tls in NO_TLS for h in d.mx)) for d in named]
    if population is not None:
        flags += zip(population.names(), population.cannot_tls(), strict=True)
    # A generated domain with a named one's name stands for it (the later one wins).
    cannot = dict(flags)
    names = list(dict.fromkeys(name for name, _ in flags))
    chosen = {
        "cannot-tls": [name for name in names if cannot[name]],
        "can-tls": [name for name in names if not cannot[name]],
    }
    connectors = [
        c.model_copy(
            update={
                "address_spaces": [
                    *c.address_spaces,
                    *(AddressSpaceSpec(pattern=name, cost=1) for name in chosen[c.address_spaces_from_remotes]),
                ]
            }
        )
        if c.address_spaces_from_remotes
        else c
        for c in organisation.connectors
    ]
    return organisation.model_copy(update={"connectors": connectors})

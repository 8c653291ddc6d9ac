"""A generated population planned by kind, all at once (issue 22).

A generated domain's name differs from the others' only in its number
(``name-000123.example``: one label, then the parent all of them share). An address
space or a policy-map entry therefore either names one of them, or claims all of
them alike (``*``, ``*.example``, ``example``, ``.example``; reference/mta-semantics.md
1a for the matching, ``policy_entry`` for the lookup): the route of every domain that
none names is the route of any one of them. And domains whose hosts are alike in
every field a plan reads plan alike (``kinds.py``), told apart by a number per domain
that numpy computes for the whole population (``GeneratedPopulation.kinds``).

So the plan of such a domain is its kind's route, planned once for the first domain
of the kind, and what remains per domain is its names: filled in when its queue is
made (``World``), not before. A domain that something names, that publishes a policy
naming it (MTA-STS, TLS-RPT), or whose kind plans names into its queues
(``kinds.shareable``) is planned alone, as before. ``tests/test_plan_generated.py``
holds every queue so made equal to the one planned alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sim.plan.kinds import shareable
from sim.plan.plans import RoutePlan
from sim.population import GeneratedPopulation


@dataclass(frozen=True, slots=True)
class KindRoute:
    """The route of the generated domains of one kind that nothing names."""

    route: RoutePlan  # planned for the kind's first domain: its decision names that domain
    own: tuple[bool, ...]  # per queue: the domain's own (its names filled in), or one all share


class GeneratedRoutes:
    """The routes from one source server to a generated population, by kind."""

    def __init__(
        self,
        route: Callable[[str, str], RoutePlan],
        source_server: str,
        population: GeneratedPopulation,
        named: Iterable[str],
    ) -> None:
        """``route``: the plan of one domain, alone; ``named``: every domain name an
        address space or a policy entry gives (the population's among them are planned
        alone)."""
        self._route = route
        self._source = source_server
        self.population = population
        kinds = population.kinds()
        name = population.population.name
        if "." in name or not name.islower():  # names that could share more than the parent
            kinds = np.full(len(population), -1, dtype=np.int64)
        alone = [i for i in (population.index_of(n) for n in named) if i is not None]
        kinds[alone] = -1
        self.kinds: list[int] = kinds.tolist()
        self._routes: dict[int, KindRoute | None] = {}
        # Per kind, its first domain (the most popular): the one planned for all.
        numbers, first = np.unique(kinds, return_index=True)
        self._first = {int(k): int(i) for k, i in zip(numbers.tolist(), first.tolist(), strict=True) if k >= 0}

    def by_kind(self, domain: str) -> tuple[KindRoute, int] | None:
        """The route of ``domain`` by its kind, and its number; ``None``: it is not
        generated, or it is planned alone."""
        index = self.population.index_of(domain)
        if index is None:
            return None
        found = self.route_of(index)
        return None if found is None else (found, index)

    def route_of(self, index: int) -> KindRoute | None:
        """The route of generated domain number ``index`` by its kind, or ``None``: it is
        planned alone."""
        kind = self.kinds[index]
        if kind < 0:
            return None
        if kind not in self._routes:
            self._routes[kind] = self._plan_kind(kind)
        return self._routes[kind]

    def plan_all(self) -> int:
        """Decide every domain's route now: each kind's once, the domains planned alone
        one by one. Returns how many were planned alone."""
        alone = 0
        for index, kind in enumerate(self.kinds):
            if kind < 0 or self.route_of(index) is None:
                self._route(self._source, self.population.name(index))
                alone += 1
        return alone

    def _plan_kind(self, kind: int) -> KindRoute | None:
        first = self.population.name(self._first[kind])
        planned = self._route(self._source, first)
        own = tuple(q.next_hop == first for q in planned.queues)
        if not all(shareable(q) for q, is_own in zip(planned.queues, own, strict=True) if is_own):
            return None  # its plans name the domain (kinds.shareable): each is planned alone
        return KindRoute(planned, own)

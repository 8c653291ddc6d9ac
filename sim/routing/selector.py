"""Connector selection: the most specific address space wins, cost breaks ties.

Exchange 2003 (KB 244986; reference/mta-semantics.md 1a): among connectors in scope
whose address space matches, the closest match wins even against a cheaper ``*``;
cost (path cost + address-space cost) breaks ties between equal matches; equal cost
shares the load; there is no failover to a less specific connector; no match at all
is an NDR 5.0.0. Exchange 2007+ (connector-selection.md) then breaks ties by fewest
hops (local server, same site, remote site) and the lowest connector name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.mta.profiles import MtaProfile
from sim.routing.address_space import AddressSpace
from sim.routing.graph import RoutingGraph
from sim.scenario.model import Connector, Organisation


@dataclass(frozen=True, slots=True)
class Candidate:
    """One connector considered for a recipient, and what became of it."""

    connector: str
    virtual_server: str | None
    address_space: str | None
    specificity: tuple[int, int] | None
    cost: int | None
    hops: int | None
    verdict: str

    def as_dict(self) -> dict[str, object]:
        return {
            "connector": self.connector,
            "virtual_server": self.virtual_server,
            "address_space": self.address_space,
            "specificity": list(self.specificity) if self.specificity is not None else None,
            "cost": self.cost,
            "hops": self.hops,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Route:
    """A usable route: a connector and the virtual server that sends through it."""

    connector: Connector
    virtual_server: str  # "SERVER/VS"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    domain: str
    source_server: str
    routes: tuple[Route, ...]  # the winners; more than one means the load is shared
    candidates: tuple[Candidate, ...] = field(default=())

    @property
    def chosen(self) -> Route | None:
        return self.routes[0] if self.routes else None


@dataclass(frozen=True, slots=True)
class _Option:
    connector: Connector
    virtual_server: str
    space: AddressSpace
    specificity: tuple[int, int]
    cost: int
    hops: int


class RouteSelector:
    """Selects routes for one organisation under one MTA profile."""

    def __init__(self, organisation: Organisation, profile: MtaProfile) -> None:
        self.organisation = organisation
        self.profile = profile
        self.graph = RoutingGraph(organisation)
        self._server_group = {s.name: s.routing_group for s in organisation.servers}
        self._index: dict[str, tuple[dict[str, list[AddressSpace]], list[AddressSpace]]] = {}

    def select(self, source_server: str, domain: str) -> RouteDecision:
        """Decide the route from ``source_server`` to recipient ``domain``."""
        domain = domain.lower()
        options: list[_Option] = []
        losers: list[Candidate] = []
        for connector in self.organisation.connectors:
            option, reason = self._consider(connector, source_server, domain)
            if option is None:
                losers.append(Candidate(connector.name, None, None, None, None, None, reason))
            else:
                options.append(option)
        if not options:
            return RouteDecision(domain, source_server, (), tuple(losers))
        winners, verdicts = self._rank(options)
        candidates = [
            Candidate(o.connector.name, o.virtual_server, o.space.pattern, o.specificity, o.cost, o.hops, verdicts[i])
            for i, o in enumerate(options)
        ]
        routes = tuple(Route(o.connector, o.virtual_server) for o in winners)
        return RouteDecision(domain, source_server, routes, tuple(candidates + losers))

    def _consider(self, connector: Connector, source_server: str, domain: str) -> tuple[_Option | None, str]:
        if not connector.enabled:
            return None, "disabled"
        rules = self.profile.match_rules
        best: tuple[tuple[int, int], int, AddressSpace] | None = None
        for space in self._spaces_for(connector, domain):
            specificity = space.specificity(domain, rules)
            if specificity is None:
                continue
            key = (specificity, -space.cost)
            if best is None or key > (best[0], -best[1]):
                best = (specificity, space.cost, space)
        if best is None:
            return None, "no address space matches"
        origin = self._server_group[source_server]
        reachable: list[tuple[int, int, str]] = []
        in_scope = False
        for source in connector.source:
            server = source.split("/", 1)[0]
            group = self._server_group[server]
            if connector.scope == "routing_group" and group != origin:
                continue
            in_scope = True
            path_cost = self.graph.cost(origin, group)
            if path_cost is None:
                continue
            reachable.append((path_cost, self._hops(source_server, server, origin, group), source))
        if not in_scope:
            return None, "out of scope (routing-group scope, another routing group)"
        if not reachable:
            return None, "no path to its routing group over links that are up"
        path_cost, hops, virtual_server = min(reachable)
        specificity, space_cost, space = best
        return _Option(connector, virtual_server, space, specificity, path_cost + space_cost, hops), ""

    def _spaces_for(self, connector: Connector, domain: str) -> list[AddressSpace]:
        """The connector's address spaces that could match ``domain``.

        Literal patterns are looked up by the domain and its parent domains, so a
        connector with thousands of listed domains costs a few dictionary lookups.
        """
        literal, wild = self._index.get(connector.name) or self._index_connector(connector)
        labels = domain.split(".")
        found = [space for i in range(len(labels)) for space in literal.get(".".join(labels[i:]), ())]
        return found + wild

    def _index_connector(self, connector: Connector) -> tuple[dict[str, list[AddressSpace]], list[AddressSpace]]:
        literal: dict[str, list[AddressSpace]] = {}
        wild: list[AddressSpace] = []
        for spec in connector.address_spaces:
            space = AddressSpace(spec.pattern, spec.cost)
            if spec.pattern.startswith("*"):
                wild.append(space)
            else:
                literal.setdefault(spec.pattern, []).append(space)
        self._index[connector.name] = (literal, wild)
        return literal, wild

    def _hops(self, source_server: str, server: str, origin: str, group: str) -> int:
        # connector-selection.md: local server > same site > remote site.
        if server == source_server:
            return 0
        links = self.graph.hops(origin, group) or 0
        return 1 + links

    def _rank(self, options: list[_Option]) -> tuple[list[_Option], list[str]]:
        """The winning options and, per option, why it won or lost."""
        tie_breaks = self.profile.tie_break_hops_and_name
        top = max(o.specificity for o in options)
        specific = [o for o in options if o.specificity == top]
        cheapest = min(o.cost for o in specific)
        cheap = [o for o in specific if o.cost == cheapest]
        if tie_breaks:
            fewest = min(o.hops for o in cheap)
            near = [o for o in cheap if o.hops == fewest]
            winners = [min(near, key=lambda o: o.connector.name)]
        else:
            near = cheap
            winners = sorted(cheap, key=lambda o: o.connector.name)
        first = winners[0]
        verdicts: list[str] = []
        for option in options:
            if option in winners:
                verdicts.append(
                    "chosen" if len(winners) == 1 else f"chosen (shares load with {len(winners) - 1} other)"
                )
            elif option.specificity != top:
                verdicts.append(f"less specific than {specific[0].space.pattern} on {specific[0].connector.name}")
            elif option.cost != cheapest:
                verdicts.append(f"costs {option.cost}, more than {cheapest} of {cheap[0].connector.name}")
            elif option not in near:
                verdicts.append(f"{option.hops} hops, more than {first.hops} of {first.connector.name}")
            else:
                verdicts.append(f"name sorts after {first.connector.name}")
        return winners, verdicts

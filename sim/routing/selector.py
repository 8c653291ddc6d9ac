"""Connector selection: the most specific address space wins, cost breaks ties.

Exchange 2003 (KB 244986; reference/mta-semantics.md 1a, 6d): disabled and
out-of-scope connectors are dropped before matching (KB 287058); among the rest whose
address space matches, the closest match wins even against a cheaper ``*``; whether
its routing group can be reached chooses only among equally specific connectors;
when none of them can be reached the mail waits as an "unreachable destination"
(no failover to a less specific connector, bb219041); cost (path cost + address-space
cost) breaks ties between equal matches; equal cost shares the load. Exchange 2007+
(connector-selection.md) then breaks ties by fewest hops (local server, same site,
remote site) and the lowest connector name. What happens when nothing matches at all
is the profile's (``MtaProfile.no_match``): an NDR 5.0.0, or the Unreachable queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sim.mta.profiles import MtaProfile
from sim.routing.address_space import AddressSpace
from sim.routing.graph import RoutingGraph
from sim.scenario.model import Connector, Organisation
from sim.vocabulary import MatchRules, server_of


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


class RouteState(StrEnum):
    ROUTED = "routed"  # one or more connectors chosen
    UNREACHABLE = "unreachable"  # the most specific connectors exist but none can be reached
    NO_MATCH = "no-match"  # no enabled, in-scope connector's address space matches


@dataclass(frozen=True, slots=True)
class RouteDecision:
    domain: str
    source_server: str
    routes: tuple[Route, ...]  # the winners; more than one means the load is shared
    candidates: tuple[Candidate, ...] = field(default=())
    state: RouteState = RouteState.ROUTED
    reason: str = ""  # why the state is not ROUTED

    @property
    def chosen(self) -> Route | None:
        return self.routes[0] if self.routes else None


@dataclass(frozen=True, slots=True)
class _Option:
    connector: Connector
    virtual_server: str
    space: AddressSpace
    specificity: tuple[int, int]
    cost: int | None  # None: no source virtual server's routing group can be reached
    hops: int | None


# A connector's best address space for a domain and how specific it is (None: no match).
Match = tuple[tuple[int, int], AddressSpace] | None
# A decision without its domain: routes, candidates, state, reason.
_Decided = tuple[tuple[Route, ...], tuple[Candidate, ...], RouteState, str]


class RouteSelector:
    """Selects routes for one organisation under one MTA profile."""

    def __init__(self, organisation: Organisation, profile: MtaProfile) -> None:
        self.organisation = organisation
        self.profile = profile
        self.graph = RoutingGraph(organisation)
        self._server_group = {s.name: s.routing_group for s in organisation.servers}
        self._index: dict[str, tuple[dict[str, list[AddressSpace]], list[AddressSpace]]] = {}
        self._decided: dict[tuple[str, tuple[Match, ...]], _Decided] = {}

    def select(self, source_server: str, domain: str) -> RouteDecision:
        """Decide the route from ``source_server`` to recipient ``domain``.

        Only the address spaces depend on the domain: the decision is made once per
        source server and set of best matches (one per connector), and handed to every
        domain matched alike under its own name (a population of 100,000 domains behind
        ``*`` is decided once, not 100,000 times).
        """
        if not domain.islower():  # lower() makes a new string even when nothing changes
            domain = domain.lower()
        rules = self.profile.match_rules
        matches = tuple(self._best_match(connector, domain, rules) for connector in self.organisation.connectors)
        key = (source_server, matches)
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self._decide(source_server, domain, matches)
        routes, candidates, state, reason = found
        return RouteDecision(domain, source_server, routes, candidates, state, reason)

    def _decide(self, source_server: str, domain: str, matches: tuple[Match, ...]) -> _Decided:
        """The decision for a source server and the connectors' best matches
        (``domain`` names none of it: the same matches give the same decision)."""
        options: list[_Option] = []
        losers: list[Candidate] = []
        for connector, match in zip(self.organisation.connectors, matches, strict=True):
            option, reason = self._consider(connector, source_server, match)
            if option is None:
                losers.append(Candidate(connector.name, None, None, None, None, None, reason))
            else:
                options.append(option)
        if not options:
            reason = "no enabled, in-scope connector has an address space that matches"
            return (), tuple(losers), RouteState.NO_MATCH, reason
        winners, verdicts = self._rank(options)
        candidates = [
            Candidate(o.connector.name, o.virtual_server, o.space.pattern, o.specificity, o.cost, o.hops, verdicts[i])
            for i, o in enumerate(options)
        ]
        routes = tuple(Route(o.connector, o.virtual_server) for o in winners)
        if not routes:
            top = max(o.specificity for o in options)
            names = ", ".join(o.connector.name for o in options if o.specificity == top)
            reason = (
                f"no path over links that are up to the routing group of {names} (no failover to a less specific route)"
            )
            return (), tuple(candidates + losers), RouteState.UNREACHABLE, reason
        return routes, tuple(candidates + losers), RouteState.ROUTED, ""

    def _best_match(self, connector: Connector, domain: str, rules: MatchRules) -> Match:
        """The connector's most specific address space for ``domain`` (the cheaper of
        equally specific ones) and how specific it is; ``None``: none matches."""
        best: Match = None
        for space in self._spaces_for(connector, domain):
            specificity = space.specificity(domain, rules)
            if specificity is None:
                continue
            if best is None or (specificity, -space.cost) > (best[0], -best[1].cost):
                best = (specificity, space)
        return best

    def _consider(self, connector: Connector, source_server: str, match: Match) -> tuple[_Option | None, str]:
        if not connector.enabled:
            return None, "disabled"
        origin = self._server_group[source_server]
        # Scope first (KB 287058): an out-of-scope connector is invisible, so a less
        # specific one in scope can win.
        sources = [
            source
            for source in connector.source
            if connector.scope == "organisation" or self._server_group[server_of(source)] == origin
        ]
        if not sources:
            return None, "out of scope (routing-group scope, another routing group)"
        if match is None:
            return None, "no address space matches"
        specificity, space = match
        reachable: list[tuple[int, int, str]] = []
        for source in sources:
            server = server_of(source)
            group = self._server_group[server]
            path_cost = self.graph.cost(origin, group)
            if path_cost is not None:
                reachable.append((path_cost, self._hops(source_server, server, origin, group), source))
        if not reachable:
            return _Option(connector, sources[0], space, specificity, None, None), ""
        path_cost, hops, virtual_server = min(reachable)
        return _Option(connector, virtual_server, space, specificity, path_cost + space.cost, hops), ""

    def _spaces_for(self, connector: Connector, domain: str) -> list[AddressSpace]:
        """The connector's address spaces that could match ``domain``.

        Literal patterns are looked up by the domain and its parent domains, so a
        connector with thousands of listed domains costs a few dictionary lookups.
        """
        literal, wild = self._index.get(connector.name) or self._index_connector(connector)
        if not literal:  # only wildcards (``*``): nothing to look up
            return wild
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
        """The winning options (none when the most specific cannot be reached) and, per
        option, why it won or lost."""
        top = max(o.specificity for o in options)
        specific = [o for o in options if o.specificity == top]
        usable = [o for o in specific if o.cost is not None]
        winners = self._tie_break(usable) if usable else []
        best = specific[0]
        verdicts: list[str] = []
        for option in options:
            if option in winners:
                shared = len(winners) - 1
                verdicts.append("chosen" if not shared else f"chosen (shares load with {shared} other)")
            elif option.specificity != top:
                verdicts.append(f"less specific than {best.space.pattern} on {best.connector.name}")
            elif option.cost is None:
                verdicts.append("most specific, but its routing group cannot be reached over links that are up")
            else:
                verdicts.append(self._why_lost(option, usable, winners[0]))
        return winners, verdicts

    def _tie_break(self, usable: list[_Option]) -> list[_Option]:
        cheapest = min(o.cost for o in usable if o.cost is not None)
        cheap = [o for o in usable if o.cost == cheapest]
        if not self.profile.tie_break_hops_and_name:
            return sorted(cheap, key=lambda o: o.connector.name)  # Exchange 2003: equal cost shares load
        fewest = min(o.hops for o in cheap if o.hops is not None)
        return [min((o for o in cheap if o.hops == fewest), key=lambda o: o.connector.name)]

    @staticmethod
    def _why_lost(option: _Option, usable: list[_Option], first: _Option) -> str:
        cheapest = min(o.cost for o in usable if o.cost is not None)
        if option.cost != cheapest:
            return f"costs {option.cost}, more than {cheapest} of {first.connector.name}"
        if option.hops != first.hops:
            return f"{option.hops} hops, more than {first.hops} of {first.connector.name}"
        return f"name sorts after {first.connector.name}"

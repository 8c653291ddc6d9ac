"""The routing-group graph: least-cost paths over routing-group connectors that are up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.scenario.model import Organisation, RoutingGroupConnector

if TYPE_CHECKING:
    import networkx as nx


class RoutingGraph:
    """Path costs and hop counts between routing groups, computed once per world.

    Exchange 2003 routes over the least-cost path of links that are **up** (link state,
    KB 263249); a down link is not a path. Costs are summed along the path.
    """

    def __init__(self, organisation: Organisation) -> None:
        groups = [g.name for g in organisation.routing_groups]
        # Sorted so parallel links resolve the same way on every run.
        links = [
            link
            for link in sorted(organisation.routing_group_connectors, key=lambda link: link.name)
            if link.up and link.between[0] != link.between[1]
        ]
        # Without a link every group reaches only itself, at no cost: networkx (~0.1 s to
        # import) is loaded only for an organisation that has links.
        self._cost: dict[str, dict[str, int]] = {g: {g: 0} for g in groups}
        self._hops: dict[str, dict[str, int]] = {g: {g: 0} for g in groups}
        if links:
            self._shortest_paths(groups, links)

    def _shortest_paths(self, groups: list[str], links: list[RoutingGroupConnector]) -> None:
        import networkx as nx

        graph: nx.Graph[str] = nx.Graph()
        graph.add_nodes_from(groups)
        for link in links:
            a, b = link.between
            if graph.has_edge(a, b) and graph[a][b]["cost"] <= link.cost:
                continue
            graph.add_edge(a, b, cost=link.cost)
        for source, (costs, paths) in nx.all_pairs_dijkstra(graph, weight="cost"):
            self._cost[source] = {target: int(cost) for target, cost in costs.items()}
            self._hops[source] = {target: len(path) - 1 for target, path in paths.items()}

    def cost(self, source: str, target: str) -> int | None:
        """Least path cost from ``source`` to ``target``; ``None`` when no path is up."""
        return self._cost.get(source, {}).get(target)

    def hops(self, source: str, target: str) -> int | None:
        """Routing-group links on the least-cost path; ``None`` when no path is up."""
        return self._hops.get(source, {}).get(target)

"""The world of one run: routes, TLS outcomes and next-hop queues, built from a scenario."""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.model.queue import HostLink, NextHopQueue
from sim.model.streams import BlockDraws, Stream, generator
from sim.mta.profiles import get_profile
from sim.routing.selector import Route, RouteSelector
from sim.scenario.model import RemoteHost, Scenario, TlsLevel, VirtualServer
from sim.tls.negotiation import negotiate

NO_ROUTE_REASON = "No route to the recipient domain: no connector address space matches"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Where mail from one server to one domain goes: one queue, or several sharing load."""

    queues: tuple[NextHopQueue, ...]
    route_label: str


class World:
    def __init__(self, scenario: Scenario, env: simpy.Environment, metrics: Metrics, replication: int = 0) -> None:
        self.scenario = scenario
        self.env = env
        self.metrics = metrics
        org = scenario.organisation
        self.profile = get_profile(org.profile)
        self.selector = RouteSelector(org, self.profile)
        self.virtual_servers: dict[str, VirtualServer] = {
            f"{server.name}/{vs.name}": vs for server in org.servers for vs in server.virtual_servers
        }
        self.mx: dict[str, list[RemoteHost]] = {
            d.name: sorted(d.mx, key=lambda h: h.preference) for d in scenario.remotes.domains
        }
        self.relays: dict[str, RemoteHost] = {h.host: h for h in scenario.remotes.hosts}
        self.queues: dict[tuple[str, str, str], NextHopQueue] = {}
        self._dispatch: dict[tuple[str, str], Dispatch] = {}
        rng = generator(scenario.run.seed, replication, Stream.LOAD_SHARE)
        self._share = BlockDraws(rng.random)

    # -- routing -----------------------------------------------------------------------

    def dispatch(self, source_server: str, domain: str) -> Dispatch:
        key = (source_server, domain)
        found = self._dispatch.get(key)
        if found is None:
            decision = self.selector.select(source_server, domain)
            queues = tuple(self._queue_for(route, domain) for route in decision.routes)
            label = "+".join(route.connector.name for route in decision.routes) or "(no route)"
            found = self._dispatch[key] = Dispatch(queues, label)
        return found

    def submit(self, source_server: str, message: Message) -> None:
        """Route one accepted message and hand it to its queue (or bounce it: no route)."""
        stats = message.stats
        dispatch = self.dispatch(source_server, stats.domain)
        if not stats.route:
            stats.route = dispatch.route_label
        queues = dispatch.queues
        if len(queues) == 1:
            queues[0].submit(message)
        elif queues:
            # Exchange 2003 shares the load of equal-cost routes "as equally as possible"
            # (KB 262952); a seeded uniform pick gives that on average.
            queues[int(self._share() * len(queues))].submit(message)
        else:
            self.metrics.bounced_message(
                message, self.profile.no_route_status, NO_ROUTE_REASON, self.env.now, queued=False
            )

    # -- queues ------------------------------------------------------------------------

    def _queue_for(self, route: Route, domain: str) -> NextHopQueue:
        connector = route.connector
        vs = self.virtual_servers[route.virtual_server]
        if connector.delivery == "smart_host":
            next_hop = ";".join(connector.smart_hosts)
            hosts = [self.relays[name] for name in connector.smart_hosts]
        elif vs.smart_host is not None:
            next_hop, hosts = vs.smart_host, [self.relays[vs.smart_host]]
        else:
            next_hop, hosts = domain, self.mx[domain]
        key = (route.virtual_server, connector.name, next_hop)
        queue = self.queues.get(key)
        if queue is None:
            level = effective_tls(vs.outbound_tls, connector.tls)
            profile = self.profile.with_delivery(vs.delivery)
            links = [_link(host, level) for host in hosts]
            slots = min(vs.max_connections_per_domain, vs.max_connections, max(h.max_connections for h in hosts))
            name = f"{route.virtual_server}|{connector.name}|{next_hop}"
            queue = self.queues[key] = NextHopQueue(self.env, name, links, profile, slots, self.metrics)
        return queue


def effective_tls(virtual_server: TlsLevel, connector: TlsLevel) -> TlsLevel:
    """The stronger of the two settings: a connector can add TLS but not take it away."""
    return virtual_server if virtual_server.rank >= connector.rank else connector


def _link(host: RemoteHost, level: TlsLevel) -> HostLink:
    seconds_per_byte = 8.0 / (host.bandwidth_mbps * 1e6)
    return HostLink(host.host, negotiate(level, host.tls, host.requires_tls), host.session_setup, seconds_per_byte)

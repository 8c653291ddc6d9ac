"""Our outbound mail: the route per (source server, recipient domain) and the queue per
(virtual server, connector, next hop), each made when first asked for and then kept."""

from __future__ import annotations

from collections.abc import Hashable

from sim.mta.profiles import get_profile
from sim.plan.generated import GeneratedRoutes
from sim.plan.hosts import Destination, host_plans, patterns_planner, policy_of, sender_policies
from sim.plan.kinds import domain_kind, renamed, shareable
from sim.plan.parties import Parties
from sim.plan.plans import UNREACHABLE, QueuePlan, RoutePlan, queue_name
from sim.plan.remote import RemoteWorld
from sim.policy.rules import SenderPolicies
from sim.policy.tls_level import TlsPolicy, entry_dane, level_in_force, policy_entry
from sim.routing.address_space import AddressSpace
from sim.routing.selector import Route, RouteSelector, RouteState
from sim.scenario.model import Organisation, RemoteDomain, RemoteHost
from sim.vocabulary import Dnssec, TlsLevel, server_of


class Outbound:
    def __init__(self, parties: Parties, remote: RemoteWorld) -> None:
        self.parties = parties
        self.remote = remote
        organisation = parties.organisation
        self.selector = RouteSelector(organisation, get_profile(organisation.profile))
        self._routes: dict[tuple[str, str], RoutePlan] = {}
        self._queues: dict[tuple[str, str, str], QueuePlan] = {}
        self._policies: dict[tuple[str, str | None, str | None], SenderPolicies] = {}
        # A queue planned for one domain, by what it depends on besides names (kinds.py).
        self._kinds: dict[tuple[str, str, int, Hashable], QueuePlan] = {}
        self._reporter = (organisation.organisation, _our_contact(organisation))
        self._generated: dict[str, GeneratedRoutes | None] = {}

    def generated(self, source_server: str) -> GeneratedRoutes | None:
        """The routes from ``source_server`` to the generated population by kind
        (``generated.py``); ``None`` without a population."""
        if source_server not in self._generated:
            population = self.remote.population
            self._generated[source_server] = (
                None if population is None else GeneratedRoutes(self.route, source_server, population, self._named())
            )
        return self._generated[source_server]

    def _named(self) -> set[str]:
        """Every domain an address space or a policy-map entry names: the literal part of
        each address space, and each entry's key."""
        connectors = self.selector.organisation.connectors
        named = {AddressSpace(space.pattern).suffix for c in connectors for space in c.address_spaces}
        for vs in self.parties.virtual_servers.values():
            named.update(vs.tls_policy)
        return named

    def route(self, source_server: str, domain: str) -> RoutePlan:
        """The route of mail from ``source_server`` to ``domain``, with its queues."""
        key = (source_server, domain)
        found = self._routes.get(key)
        if found is None:
            decision = self.selector.select(source_server, domain)
            if decision.routes:
                found = RoutePlan(decision, tuple(self._queue_for(route, domain) for route in decision.routes))
            elif decision.state is RouteState.NO_MATCH and self.parties.server_profile[source_server].no_match == "ndr":
                found = RoutePlan(decision, (), bounce=True)
            else:
                found = RoutePlan(decision, (self._unreachable_queue(source_server),))
            self._routes[key] = found
        return found

    def next_hop(self, route: Route, domain: str) -> tuple[str, list[RemoteHost]]:
        """The next hop of ``route`` for ``domain`` and its hosts, in preference order:
        the connector's smart hosts, else the virtual server's smart host, else the MX."""
        connector = route.connector
        vs = self.parties.virtual_servers[route.virtual_server]
        relays = self.remote.relays
        if connector.delivery == "smart_host":
            return ";".join(connector.smart_hosts), [relays[name] for name in connector.smart_hosts]
        if vs.smart_host is not None:
            return vs.smart_host, [relays[vs.smart_host]]
        return domain, self.remote.mx(domain)

    def _queue_for(self, route: Route, domain: str) -> QueuePlan:
        connector = route.connector
        next_hop, hosts = self.next_hop(route, domain)
        key = (route.virtual_server, connector.name, next_hop)
        found = self._queues.get(key)
        if found is not None:
            return found
        vs = self.parties.virtual_servers[route.virtual_server]
        # Postfix looks the policy map up by the next hop: the recipient domain, or the
        # relay as a bracketed next hop ([relay]: a smart host gets no MX lookup).
        lookup = next_hop if next_hop == domain or not hosts else f"[{hosts[0].host}]"
        entry = policy_entry(vs.tls_policy, lookup)
        # The recipient domain's policies apply to MX delivery; through a smart host
        # they would be the smart host's domain's (RFC 8461 s.3.4), not modelled.
        published = self.remote.domain(domain) if next_hop == domain else None
        kind = domain_kind(published, hosts) if published is not None else None
        if kind is not None:
            # The entry is one object of the virtual server's map, alive with the plan.
            shared = (route.virtual_server, connector.name, id(entry), kind)
            template = self._kinds.get(shared)
            if template is not None:
                found = self._queues[key] = renamed(template, next_hop, hosts)
                return found
        found = self._queues[key] = self._new_queue(route, next_hop, hosts, lookup, published)
        if kind is not None and shareable(found):
            self._kinds[shared] = found
        return found

    def _new_queue(
        self, route: Route, next_hop: str, hosts: list[RemoteHost], lookup: str, published: RemoteDomain | None
    ) -> QueuePlan:
        """The queue of ``route`` to ``next_hop``, planned from its settings and hosts."""
        connector = route.connector
        parties = self.parties
        vs = parties.virtual_servers[route.virtual_server]
        level = level_in_force(
            vs.outbound_tls, vs.tls_policy, lookup, connector.tls_level, ignore_starttls=connector.ignore_starttls
        )
        dane = entry_dane(policy_entry(vs.tls_policy, lookup))
        profile = parties.profile_of(route.virtual_server)
        sender = parties.sender_of(route.virtual_server, level)
        host_limit = max([h.max_connections for h in hosts], default=1)
        slots = min(vs.max_connections_per_domain, vs.max_connections, host_limit)
        if profile.concurrency is not None:
            slots = min(slots, profile.concurrency.limit)
        applied = (route.virtual_server, connector.mta_sts or vs.mta_sts, connector.dane or dane or vs.dane)
        policies = self._policies.get(applied)
        if policies is None:  # the same few for every queue of a virtual server
            policies = self._policies[applied] = sender_policies(
                profile,
                applied[1],
                applied[2],  # type: ignore[arg-type]
                vs.mta_sts_plugin,
            )
        dnssec = published.dnssec if published is not None else Dnssec.INSECURE
        sts = published.mta_sts if published is not None and policies.sts else None
        receivers = [(host, parties.receiver_of(host), host.tlsa, host.tls) for host in hosts]
        destination = Destination(sender, receivers, policies, dnssec, next_hop)
        return QueuePlan(
            queue_name(route.virtual_server, connector.name, next_hop),
            route.virtual_server,
            connector.name,
            next_hop,
            host_plans(parties, destination, sts),
            policy_of(level, profile),
            profile,
            slots,
            policies,
            sts,
            next_hop,
            published.tls_rpt if published is not None and policies.reports else None,
            self._reporter,
            patterns_planner(parties, destination, sts),
        )

    def _unreachable_queue(self, source_server: str) -> QueuePlan:
        """The source server's queue of mail with no usable route (6d): it is retried on
        the profile's schedule, never delivers while the route is missing, and expires."""
        key = (source_server, UNREACHABLE, "")
        found = self._queues.get(key)
        if found is None:
            first_vs = next(name for name in self.parties.virtual_servers if server_of(name) == source_server)
            profile = self.parties.profile_of(first_vs)
            found = self._queues[key] = QueuePlan(
                f"{source_server}|{UNREACHABLE}", first_vs, UNREACHABLE, "", (), TlsPolicy(TlsLevel.OFF), profile, 1
            )
        return found


def _our_contact(organisation: Organisation) -> str:
    ours = organisation.publishes
    return f"tlsrpt@{ours.domain}" if ours is not None else f"postmaster@{organisation.organisation}.example"

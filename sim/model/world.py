"""The world of one run: the scenario's plan executed with SimPy queues and remote endpoints.

What goes where, at which TLS level and with which outcome is decided by the plan
(``sim/plan.py``); the world only creates the runtime state for it: one queue per
planned queue, one endpoint (availability, speed, greylisting) per remote host.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import simpy

from sim.model.backoff import BackoffQueue
from sim.model.endpoint import Endpoint, HostLink
from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.model.queue import DeliveryQueue, QueueRetry
from sim.model.streams import BlockDraws, Stream, generator
from sim.model.tlsrpt import Reporting
from sim.plan import HostPlan, Plan, QueuePlan, RoutePlan, build_plan
from sim.scenario.model import InboundFlow, RemoteHost, Scenario
from sim.vocabulary import Mechanism, Status

_REQUIRETLS = frozenset({Mechanism.REQUIRETLS})
_REQUIRETLS_UNSUPPORTED = Status("5.7.30", "REQUIRETLS support required: this server does not implement REQUIRETLS")


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Where mail from one server to one domain goes: one queue, or several sharing load."""

    queues: tuple[DeliveryQueue, ...]
    route: RoutePlan

    @property
    def route_label(self) -> str:
        return self.route.label


def make_queue(env: simpy.Environment, planned: QueuePlan, links: list[HostLink], metrics: Metrics) -> DeliveryQueue:
    """The queue discipline of the planned queue's profile: whole-queue retry, or per-message backoff."""
    kind = BackoffQueue if planned.profile.retry.discipline == "message" else QueueRetry
    reporting = None
    if planned.rua is not None and planned.reporter is not None:
        reporting = Reporting(planned.reporter[0], planned.reporter[1], planned.policy_domain)
    return kind(
        env,
        planned.name,
        links,
        planned.profile,
        planned.slots,
        metrics,
        policy=planned.policy,
        sts=planned.sts,
        reporting=reporting,
        sts_testing_reported=planned.policies.sts_testing_reported,
    )


def link_to(endpoint: Endpoint, host: HostPlan) -> HostLink:
    """A queue's view of a planned host."""
    enforced_type = host.enforced_rule.policy_type if host.enforced_rule is not None else None
    return HostLink(endpoint, host.sessions, host.enforced, host.rule.policy_type, enforced_type, host.host.requiretls)


class World:
    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        metrics: Metrics,
        replication: int = 0,
        inbound_metrics: Metrics | None = None,
        plan: Plan | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = env
        self.metrics = metrics
        self.inbound_metrics = inbound_metrics or Metrics()
        self.replication = replication
        self.plan = plan or build_plan(scenario)
        self.virtual_servers = self.plan.virtual_servers
        self._endpoints: dict[str, Endpoint] = {}
        self.queues: dict[tuple[str, str, str], DeliveryQueue] = {}
        self.sender_queues: dict[str, DeliveryQueue] = {}
        self._by_plan: dict[int, DeliveryQueue] = {}
        self._dispatch: dict[tuple[str, str], Dispatch] = {}
        self._share = BlockDraws(generator(scenario.run.seed, replication, Stream.LOAD_SHARE).random)
        # TLS-RPT days are UTC days: seconds from the midnight before the start to t = 0.
        start = scenario.run.start
        offset = (start - start.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
        self.metrics.tlsrpt.day_offset = self.inbound_metrics.tlsrpt.day_offset = offset

    # -- routing -----------------------------------------------------------------------

    def dispatch(self, source_server: str, domain: str) -> Dispatch:
        key = (source_server, domain)
        found = self._dispatch.get(key)
        if found is None:
            route = self.plan.route(source_server, domain)
            found = self._dispatch[key] = Dispatch(tuple(self._queue(q) for q in route.queues), route)
        return found

    def submit(self, source_server: str, message: Message) -> None:
        """Route one accepted message and hand it to its queue (or bounce it: no route)."""
        stats = message.stats
        if message.requiretls and not self.plan.server_profile[source_server].mechanisms & _REQUIRETLS:
            # RFC 8689: a server that does not implement REQUIRETLS cannot take such a
            # message on; it is returned at once, never sent in clear.
            status = _REQUIRETLS_UNSUPPORTED
            self.metrics.bounced_message(message, status.code, status.text, self.env.now, queued=False)
            return
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
            status = self.plan.server_profile[source_server].no_route
            self.metrics.bounced_message(message, status.code, status.text, self.env.now, queued=False)

    # -- remote hosts and queues -----------------------------------------------------------

    def endpoint(self, host: RemoteHost) -> Endpoint:
        found = self._endpoints.get(host.host)
        if found is None:
            rng = None
            if host.outages is not None:
                # One stream per host, keyed by its name, so adding a host changes no other.
                key = zlib.crc32(host.host.encode())
                rng = generator(self.scenario.run.seed, self.replication, Stream.AVAILABILITY, key)
            found = self._endpoints[host.host] = Endpoint.from_host(host, self.scenario.run.duration, rng)
        return found

    def _queue(self, planned: QueuePlan) -> DeliveryQueue:
        found = self._by_plan.get(id(planned))
        if found is None:
            links = [link_to(self.endpoint(h.host), h) for h in planned.hosts]
            found = self._by_plan[id(planned)] = make_queue(self.env, planned, links, self.metrics)
            self.queues[(planned.virtual_server, planned.connector, planned.next_hop)] = found
        return found

    # -- inbound -------------------------------------------------------------------------

    def sender_queue(self, flow: InboundFlow) -> DeliveryQueue:
        """The queue at a remote sender that holds its mail for us."""
        found = self.sender_queues.get(flow.from_domain)
        if found is None:
            planned = self.plan.sender_queue(flow)
            # Our own servers are not among the remote endpoints: they are never down.
            links = [
                link_to(Endpoint(h.host.host, session_setup=0.5, bandwidth_mbps=10.0, down=[], greylist=None), h)
                for h in planned.hosts
            ]
            found = self.sender_queues[flow.from_domain] = make_queue(self.env, planned, links, self.inbound_metrics)
        return found

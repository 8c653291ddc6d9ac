"""The world of one run: the scenario's plan executed with SimPy queues and remote endpoints.

What goes where, at which TLS level and with which outcome is decided by the plan
(``sim/plan/``); the world only creates the runtime state for it: one queue per
planned queue, one endpoint (availability, speed, greylisting) per remote host.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import simpy

from sim.model.backoff import BackoffQueue
from sim.model.clock import call_in
from sim.model.endpoint import Endpoint, HostLink
from sim.model.fate import QueuedFates, queued_fates
from sim.model.message import DomainStats, Message
from sim.model.metrics import Metrics
from sim.model.queue import DeliveryQueue, QueueRetry
from sim.model.sampler import DepthSampler, Sampled
from sim.model.tlsrpt_tally import Reporting
from sim.plan.build import Plan, build_plan
from sim.plan.plans import HostPlan, QueueKey, QueuePlan, RoutePlan, queue_key, queue_name, sender_key, sender_of
from sim.policy import requiretls
from sim.scenario.calendar import record_changes, scenario_after
from sim.scenario.model import InboundFlow, RemoteHost, Scenario
from sim.streams import Draws, Stream, block_draws, generator


@dataclass(frozen=True, slots=True)
class Queued:
    """One queue of a route as the world makes it: its plan, or for a generated domain
    planned by kind, its kind's plan and the domain's hosts (its name is ``key``'s)."""

    key: QueueKey
    planned: QueuePlan
    hosts: Callable[[], list[RemoteHost]] | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Where mail from one server to one domain goes: one queue, or several sharing load."""

    queues: tuple[DeliveryQueue, ...]
    # Its label and decision: shared by the generated domains of one kind, whose decision
    # names the first of them (sim/plan/generated.py).
    route: RoutePlan


def make_queue(
    env: simpy.Environment,
    planned: QueuePlan,
    links: list[HostLink],
    metrics: Metrics,
    relink: Relink | None = None,
    sampled: list[Sampled] | None = None,
    name: str | None = None,
) -> DeliveryQueue:
    """The queue discipline of the planned queue's profile: whole-queue retry, or
    per-message backoff; ``name``: the queue's, when ``planned`` was planned for another
    domain of its kind."""
    kind = BackoffQueue if planned.profile.retry.discipline == "message" else QueueRetry
    return kind(
        env,
        planned.name if name is None else name,
        links,
        planned.profile,
        planned.slots,
        metrics,
        policy=planned.policy,
        sts=planned.sts,
        reporting=reporting_of(planned),
        sts_testing_reported=planned.policies.sts_testing_reported,
        sts_cache=planned.policies.sts_cache,
        relink=relink,
        sampled=sampled,
    )


def reporting_of(planned: QueuePlan) -> Reporting | None:
    """Who reports this queue's sessions (TLS-RPT), if the sender reports and the
    destination asks for reports."""
    if planned.rua is None or planned.reporter is None:
        return None
    return Reporting(planned.reporter[0], planned.reporter[1], planned.policy_domain)


def _note_route(stats: DomainStats, label: str, dispatch: Dispatch) -> None:
    """The per-domain route column lists every route the domain's mail took (several
    source servers may use different connectors), and the TLS levels in force."""
    level = dispatch.queues[0].policy.level.value if dispatch.route.decision.routes else ""
    if not stats.route:
        stats.route, stats.tls_level = label, level
        return
    if label not in stats.route.split("; "):
        stats.route = f"{stats.route}; {label}"
        if level and level not in stats.tls_level.split("; "):
            stats.tls_level = f"{stats.tls_level}; {level}"


def _our_endpoint(host: HostPlan) -> Endpoint:
    """One of our own MX hosts as a remote sender meets it: down only when we say so."""
    down = [(o.start, o.end) for o in host.host.down]
    return Endpoint(host.host.host, session_setup=0.5, bandwidth_mbps=10.0, down=down, greylist=None)


Relink = Callable[[tuple[str, ...]], list[HostLink]]


def link_to(endpoint: Endpoint, host: HostPlan, actual: RemoteHost | None = None) -> HostLink:
    """A queue's view of a planned host; ``actual``: the host it is, when ``host`` was
    planned for another domain of its kind (``sim/plan/generated.py``)."""
    enforced_type = host.enforced_rule.policy_type if host.enforced_rule is not None else None
    requires = (actual or host.host).requiretls
    return HostLink(endpoint, host.sessions, host.enforced, host.rule.policy_type, enforced_type, requires)


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
        self.sampler = DepthSampler()  # our queues' depth (the remote senders' are not sampled)
        self.virtual_servers = self.plan.virtual_servers
        self._endpoints: dict[str, Endpoint] = {}
        self.queues: dict[QueueKey, DeliveryQueue] = {}
        self._made: dict[QueueKey, DeliveryQueue] = {}  # by ``prepare``, no mail yet
        self.sender_queues: dict[str, DeliveryQueue] = {}
        self._dispatch: dict[tuple[str, str], Dispatch] = {}
        # Counts the plans in force: a route a flow kept (``only_queue``) holds while
        # this is unchanged.
        self.plan_count = 0
        self._share: Draws[float] = block_draws(generator(scenario.run.seed, replication, Stream.LOAD_SHARE).random)
        # TLS-RPT days are UTC days: seconds from the midnight before the start to t = 0.
        start = scenario.run.start
        offset = (start - start.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
        self.metrics.tlsrpt.day_offset = self.inbound_metrics.tlsrpt.day_offset = offset
        self._flows = {flow.from_domain: flow for flow in scenario.traffic.inbound}
        self._count = 0  # changes in force
        for count, change in enumerate(scenario.changes, start=1):
            if change.at < scenario.run.duration:
                call_in(env, change.at, partial(self._change, count))
        for instant in record_changes(scenario):  # an edited DNS record reaches senders
            if instant < scenario.run.duration:
                call_in(env, instant, self._records_seen)

    # -- routing -----------------------------------------------------------------------

    def dispatch(self, source_server: str, domain: str) -> Dispatch:
        found = self._dispatch.get((source_server, domain))
        return found if found is not None else self._new_dispatch(source_server, domain)

    def _new_dispatch(self, source_server: str, domain: str) -> Dispatch:
        route, queues = self._planned(source_server, domain)
        found = self._dispatch[(source_server, domain)] = Dispatch(tuple(self._queue(q) for q in queues), route)
        return found

    def _planned(self, source_server: str, domain: str) -> tuple[RoutePlan, list[Queued]]:
        """The route from ``source_server`` to ``domain`` and its queues as the world
        makes them. A generated domain planned by kind has no plan of its own: its
        queues are made from its kind's with its names and hosts (``sim/plan/generated.py``)."""
        generated = self.plan.generated(source_server)
        found = generated.by_kind(domain) if generated is not None else None
        if generated is None or found is None:
            route = self.plan.route(source_server, domain)
            return route, [Queued(queue_key(q), q) for q in route.queues]
        kind, index = found
        hosts = partial(generated.population.hosts, index)
        return kind.route, [
            Queued((q.virtual_server, q.connector, domain), q, hosts) if own else Queued(queue_key(q), q)
            for q, own in zip(kind.route.queues, kind.own, strict=True)
        ]

    def submit(self, source_server: str, message: Message) -> None:
        """Route one accepted message and hand it to its queue (or bounce it: no route)."""
        stats = message.stats
        if message.requiretls and not requiretls.accepts(self.plan.server_profile[source_server].mechanisms):
            status = requiretls.UNSUPPORTED
            self.metrics.bounced_message(message, status.code, status.text, self.env.now, queued=False)
            return
        # ``dispatch``, written out: this runs once a message.
        dispatch = self._dispatch.get((source_server, stats.domain)) or self._new_dispatch(source_server, stats.domain)
        label = dispatch.route.label
        if stats.route != label:
            _note_route(stats, label, dispatch)
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

    def only_queue(self, source_server: str, domain: str) -> DeliveryQueue | None:
        """The one queue mail from ``source_server`` to ``domain`` goes to once it has been
        submitted here, while ``plan_count`` is unchanged; ``None`` when several queues
        share the load, the mail bounces, or none has been submitted. A flow may hand
        its messages straight to that queue: ``submit`` would do nothing else with them
        (its route is noted; a message with REQUIRETLS still goes through ``submit``)."""
        found = self._dispatch.get((source_server, domain))
        return found.queues[0] if found is not None and len(found.queues) == 1 else None

    # -- remote hosts and queues -----------------------------------------------------------

    def _linked(self, planned: QueuePlan, *, ours: bool = False) -> tuple[list[HostLink], Relink | None]:
        """The queue's links to its hosts, and how to link them under a cached MTA-STS
        policy with other mx patterns. Our own MX hosts are never down but when we say."""

        def endpoint_of(host: HostPlan) -> Endpoint:
            return _our_endpoint(host) if ours else self.endpoint(host.host)

        links = [link_to(endpoint_of(h), h) for h in planned.hosts]
        under = planned.under_patterns
        if under is None:
            return links, None

        def relink(patterns: tuple[str, ...]) -> list[HostLink]:
            return [link_to(endpoint_of(h), h) for h in under(patterns)]

        return links, relink

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

    def plan_route(self, source_server: str, domain: str) -> None:
        """Plan the route from ``source_server`` to ``domain`` now, as its first mail would
        (by its kind, or alone)."""
        self._planned(source_server, domain)

    def prepare(self, source_server: str, domain: str) -> None:
        """Plan the route from ``source_server`` to ``domain`` and make its queues now,
        ahead of the mail. Nothing changes but where they lie in memory: a queue joins
        the world (``queues``, its order) only when mail first reaches it, as it would
        have been made then, and one for a domain that gets none is never seen. Made in
        one go, in popularity order, a large world's queues lie together instead of
        among the messages in flight when each got its first mail (docs/benchmarks.md,
        "Issue 22, second pass")."""
        for queued in self._planned(source_server, domain)[1]:
            if queued.key not in self.queues and queued.key not in self._made:
                self._made[queued.key] = self._new_queue(queued)

    def _queue(self, queued: Queued) -> DeliveryQueue:
        """The queue ``queued``, made when mail first reaches it (or before: ``prepare``)."""
        found = self.queues.get(queued.key)
        if found is None:
            found = self._made.pop(queued.key, None) or self._new_queue(queued)
            found.order = len(self.queues)
            self.queues[queued.key] = found
        return found

    def _new_queue(self, queued: Queued) -> DeliveryQueue:
        planned = queued.planned
        links, relink = self._links(queued)
        name = None if queued.hosts is None else queue_name(*queued.key)
        return make_queue(self.env, planned, links, self.metrics, relink, self.sampler.holding, name=name)

    def _links(self, queued: Queued) -> tuple[list[HostLink], Relink | None]:
        """The queue's links to its hosts (``_linked``). By kind: the kind's sessions with
        the domain's own hosts, as ``kinds.renamed`` would plan them (a shareable plan has
        no rule, policy or address that names a domain, and no other MX patterns)."""
        if queued.hosts is None:
            return self._linked(queued.planned)
        hosts = queued.hosts()
        return [
            link_to(self.endpoint(host), h, host) for host, h in zip(hosts, queued.planned.hosts, strict=True)
        ], None

    # -- the policy calendar -------------------------------------------------------------

    def _change(self, count: int, _event: Any) -> None:
        """The first ``count`` changes now hold: rebuild the plan and hand every existing
        queue its new TLS policy, hosts and transport policies. Mail already queued stays
        in its queue (a changed route applies to new mail); timers and host availability
        keep the values the queue was made with. DNS records (TLSA, MX) edited by a
        change reach senders only once their TTL has passed (``_records_seen``)."""
        self._count = count
        self._replan()
        now = self.env.now
        self.metrics.samples.append((now, f"(change {count})", 0, False))

    def _records_seen(self, _event: Any) -> None:
        self._replan()

    def _replan(self) -> None:
        self.plan = plan = build_plan(scenario_after(self.scenario, self._count, self.env.now))
        self.virtual_servers = plan.virtual_servers
        for source, domain in list(self._dispatch):
            for queued in self._planned(source, domain)[1]:
                queue = self.queues.get(queued.key)
                if queue is not None:
                    planned = queued.planned
                    links, relink = self._links(queued)
                    queue.replan(planned.policy, links, planned.sts, reporting_of(planned), relink)
        self._dispatch.clear()
        self._made.clear()  # made under the plan before: made again when mail comes
        self.plan_count += 1
        for key, queue in self.sender_queues.items():
            sender, _, part = key.partition("#")
            planned = plan.sender_queue(self._flows[sender], int(part or 0))
            links, relink = self._linked(planned, ours=True)
            queue.replan(planned.policy, links, planned.sts, reporting_of(planned), relink)

    # -- inbound -------------------------------------------------------------------------

    def sender_queue(self, flow: InboundFlow, part: int = 0) -> DeliveryQueue:
        """The queue at a remote sender that holds its mail for us (``part`` n > 0: the
        share of its mail that meets its n-th observed failure)."""
        key = sender_key(flow.from_domain, part)
        found = self.sender_queues.get(key)
        if found is None:
            planned = self.plan.sender_queue(flow, part)
            # Our own servers are not among the remote endpoints: they are never down.
            links, relink = self._linked(planned, ours=True)
            found = self.sender_queues[key] = make_queue(self.env, planned, links, self.inbound_metrics, relink)
        return found

    # -- the end of a run ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """What the run's results are made of, handed over at its end: the tallies, the
        fate of every message still queued, and the plan in force."""
        end = self.env.now
        refused: dict[str, int] = {}
        for key, queue in self.sender_queues.items():  # one sender may have several (its shares)
            sender = sender_of(key)
            refused[sender] = refused.get(sender, 0) + queue.failed_attempts
        profile = self.plan.profile_of(next(iter(self.plan.virtual_servers)))  # the first server's first
        timers = {"expiry": profile.expiration_timeout}
        if profile.delay_notification:
            timers["delay notice"] = profile.delay_notification
        return Snapshot(
            end=end,
            metrics=self.metrics,
            inbound=self.inbound_metrics,
            fates=queued_fates(self.queues.values(), end),
            remote_fates=queued_fates(self.sender_queues.values(), end),
            queued=sum(q.depth for q in self.queues.values()),
            remote_queued=sum(q.depth for q in self.sender_queues.values()),
            refused=refused,
            timers=timers,
            plan=self.plan,
        )


@dataclass(frozen=True)
class Snapshot:
    """A world at the end of its run, as its results read it (:meth:`World.snapshot`)."""

    end: float
    metrics: Metrics
    inbound: Metrics
    fates: QueuedFates  # our queues' mail still waiting: doomed or pending
    remote_fates: QueuedFates  # the same at the remote senders' queues for us
    queued: int
    remote_queued: int
    refused: dict[str, int]  # attempts we refused or deferred, per sending domain
    timers: dict[str, float]  # the first sender's delay notice and expiry (the figures mark them)
    plan: Plan  # the plan in force at the end (the policies the TLS-RPT reports describe)

"""The built plan of a scenario: one pure step from the file format to what a run executes.

``build_plan(scenario)`` expands ``address_spaces_from_remotes`` into address spaces,
chooses the route per (source server, recipient domain), and for every queue fixes
its next hop and hosts, the TLS policy in force, the product's timers and the session
outcome with each host over simulated time. The world of a run executes this plan;
``tlssim route`` prints it. Both read the same object, so the route a command explains
is the route the run takes.

Routes and queues are built when first asked for and then kept, so a world of many
domains pays only for the domains that get mail; the answers do not depend on the
order of the questions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509

from sim.mta.profiles import MtaProfile, get_profile
from sim.pki.authorities import (
    Roots,
    ServerCertificate,
    observed_certificate,
    our_certificate,
    our_tlsa_digest,
    roots,
)
from sim.pki.certs import tlsa_digest
from sim.policy.sts_cache import STS_CACHE_RULES
from sim.policy.transport import NONE as NO_POLICIES
from sim.policy.transport import PLAIN as PLAIN_RULE
from sim.policy.transport import Governs, HostRule, SenderPolicies, Zones, host_rule, under_rule
from sim.population import GeneratedPopulation, generate
from sim.routing.selector import Route, RouteDecision, RouteSelector, RouteState
from sim.scenario.model import (
    AddressSpaceSpec,
    CertificateSpec,
    InboundFlow,
    Organisation,
    RemoteDomain,
    RemoteHost,
    Scenario,
    VirtualServer,
)
from sim.scenario.policies import MtaStsPolicy, Outage
from sim.tls.negotiation import Negotiation
from sim.tls.policy import TlsPolicy, entry_dane, entry_level, level_in_force, policy_entry
from sim.tls.sessions import Receiver, Sender, SessionPlan, plan
from sim.vocabulary import (
    NO_TLS,
    Channel,
    ClientTls,
    DaneUse,
    Dnssec,
    Failure,
    Mechanism,
    ServerTls,
    StsPlugin,
    StsUse,
    Tlsa,
    TlsLevel,
)

UNREACHABLE = "(unreachable)"


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One host a queue delivers to, and what a session with it comes to over time:
    without an enforced MTA-STS policy (``sessions``, DANE included), and with one in
    effect (``enforced``; ``None`` when the sender never enforces MTA-STS here)."""

    host: RemoteHost
    sessions: SessionPlan
    rule: HostRule = PLAIN_RULE
    enforced: SessionPlan | None = None
    enforced_rule: HostRule | None = None


@dataclass(frozen=True, eq=False)
class QueuePlan:
    """One queue: (virtual server, connector, next hop), or an unreachable queue."""

    name: str
    virtual_server: str
    connector: str
    next_hop: str
    hosts: tuple[HostPlan, ...]  # in MX preference order; empty for an unreachable queue
    policy: TlsPolicy
    profile: MtaProfile
    slots: int
    # Transport policies: what the sender applies, and what the next hop publishes.
    policies: SenderPolicies = NO_POLICIES
    sts: MtaStsPolicy | None = None  # the destination's published policy, when the sender applies MTA-STS
    policy_domain: str = ""
    rua: str | None = None  # where TLS-RPT reports for this destination go, when the sender reports
    reporter: tuple[str, str] | None = None  # (organization-name, contact-info) of the reports
    # The hosts under an enforced policy with other mx patterns: a sender applies the
    # policy it has cached, which may be older than the published one (sim/model/sts.py).
    under_patterns: Callable[[tuple[str, ...]], tuple[HostPlan, ...]] | None = None


@dataclass(frozen=True, eq=False)
class Destination:
    """What a sender's sessions with one destination's hosts depend on, besides the
    MTA-STS policy it applies: ``dnssec`` is the zone of the destination's MX RRset."""

    sender: Sender
    receivers: list[tuple[RemoteHost, Receiver, Tlsa, ServerTls]]
    policies: SenderPolicies
    dnssec: Dnssec
    domain: str


@dataclass(frozen=True, eq=False)
class RoutePlan:
    """Where mail from one server to one domain goes, and why."""

    decision: RouteDecision
    queues: tuple[QueuePlan, ...]  # several: equal-cost routes share the load
    bounce: bool = False  # no match under a profile that returns such mail at once

    @property
    def state(self) -> RouteState:
        return self.decision.state

    @cached_property
    def label(self) -> str:
        """The per-domain ``route`` column: the connector(s), or the state (made once: every
        message of the route compares against it)."""
        if self.decision.routes:
            return "+".join(route.connector.name for route in self.decision.routes)
        return "(no route)" if self.bounce else UNREACHABLE


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


def build_plan(scenario: Scenario) -> Plan:
    """The plan of ``scenario``: a pure function of the scenario (no random draws)."""
    return Plan(scenario)


class Plan:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.start: dt.datetime = scenario.run.start
        self.horizon = scenario.run.duration
        population = scenario.remotes.population
        self.population = generate(population) if population is not None else None
        self.organisation = with_generated_address_spaces(
            scenario.organisation, scenario.remotes.domains, self.population
        )
        self.profile = get_profile(self.organisation.profile)
        self.selector = RouteSelector(self.organisation, self.profile)
        self.server_profile = {
            s.name: get_profile(s.profile or self.organisation.profile) for s in self.organisation.servers
        }
        self.virtual_servers: dict[str, VirtualServer] = {
            f"{server.name}/{vs.name}": vs for server in self.organisation.servers for vs in server.virtual_servers
        }
        self._named: dict[str, RemoteDomain] = {d.name: d for d in scenario.remotes.domains}
        self._mx: dict[str, list[RemoteHost]] = {}
        self.relays: dict[str, RemoteHost] = {h.host: h for h in scenario.remotes.hosts}
        self._routes: dict[tuple[str, str], RoutePlan] = {}
        self._queues: dict[tuple[str, str, str], QueuePlan] = {}
        # Shared, immutable pieces: a world of 100,000 domains has a few distinct senders
        # and host descriptions, so each is made once, not once per domain (issue 13).
        self._profiles: dict[str, MtaProfile] = {}
        self._senders: dict[tuple[str, TlsLevel], Sender] = {}
        self._trusted: dict[tuple[str, ...], tuple[x509.Certificate, ...]] = {}
        self._shared_sessions: dict[tuple[object, ...], SessionPlan] = {}

    def domain(self, name: str) -> RemoteDomain | None:
        """The remote domain called ``name``: generated (made now, if it was not), or named."""
        if self.population is not None:
            index = self.population.index_of(name)
            if index is not None:
                return self.population.domain(index)
        return self._named.get(name)

    def mx(self, name: str) -> list[RemoteHost]:
        """The domain's MX hosts in preference order; none for a domain outside the remote world."""
        found = self._mx.get(name)
        if found is None:
            domain = self.domain(name)
            found = self._mx[name] = sorted(domain.mx, key=lambda h: h.preference) if domain is not None else []
        return found

    @cached_property
    def roots(self) -> Roots:
        return roots(self.start)

    @cached_property
    def certificates(self) -> dict[str, ServerCertificate]:
        return {name: self._certificate_of(name, vs) for name, vs in self.virtual_servers.items()}

    # -- outbound ------------------------------------------------------------------------

    def route(self, source_server: str, domain: str) -> RoutePlan:
        """The route of mail from ``source_server`` to ``domain``, with its queues."""
        key = (source_server, domain)
        found = self._routes.get(key)
        if found is None:
            decision = self.selector.select(source_server, domain)
            if decision.routes:
                found = RoutePlan(decision, tuple(self._queue_for(route, domain) for route in decision.routes))
            elif decision.state is RouteState.NO_MATCH and self.server_profile[source_server].no_match == "ndr":
                found = RoutePlan(decision, (), bounce=True)
            else:
                found = RoutePlan(decision, (self._unreachable_queue(source_server),))
            self._routes[key] = found
        return found

    def explain(self, source_server: str, domain: str) -> dict[str, Any]:
        """The route of mail from ``source_server`` to ``domain`` as plain data (what
        ``tlssim route --json`` prints): state, connector, next hop, queue, TLS level in
        force, the predicted session with each host, and every candidate's verdict."""
        planned = self.route(source_server, domain)
        decision, profile = planned.decision, self.server_profile[source_server]
        chosen = decision.chosen
        queue = planned.queues[0] if chosen is not None else None
        next_hop: str | None = None
        if chosen is not None and queue is not None:
            if chosen.connector.delivery == "smart_host":
                next_hop = f"smart host {queue.next_hop}"
            elif queue.next_hop != domain:
                next_hop = f"smart host {queue.next_hop} (virtual server)"
            else:
                next_hop = f"MX of {domain}"
        return {
            "recipient_domain": domain,
            "from": source_server,
            "profile": profile.name,
            "state": decision.state.value,
            "reason": decision.reason or None,
            "connector": chosen.connector.name if chosen else None,
            "virtual_server": chosen.virtual_server if chosen else None,
            "next_hop": next_hop,
            "queue": planned.queues[0].name if planned.queues else None,
            "tls_level": queue.policy.level.value if queue else None,
            "load_shared_with": [r.connector.name for r in decision.routes[1:]],
            "ndr": profile.no_route.code if planned.bounce else None,
            "mx": [session_outcome(queue, host) for host in queue.hosts] if queue else [],
            "candidates": [c.as_dict() for c in decision.candidates],
        }

    @property
    def queues(self) -> list[QueuePlan]:
        """The queues planned so far (those some route has needed)."""
        return list(self._queues.values())

    def next_hop(self, route: Route, domain: str) -> tuple[str, list[RemoteHost]]:
        """The next hop of ``route`` for ``domain`` and its hosts, in preference order:
        the connector's smart hosts, else the virtual server's smart host, else the MX."""
        connector = route.connector
        vs = self.virtual_servers[route.virtual_server]
        if connector.delivery == "smart_host":
            return ";".join(connector.smart_hosts), [self.relays[name] for name in connector.smart_hosts]
        if vs.smart_host is not None:
            return vs.smart_host, [self.relays[vs.smart_host]]
        return domain, self.mx(domain)

    def _queue_for(self, route: Route, domain: str) -> QueuePlan:
        connector = route.connector
        next_hop, hosts = self.next_hop(route, domain)
        key = (route.virtual_server, connector.name, next_hop)
        found = self._queues.get(key)
        if found is not None:
            return found
        vs = self.virtual_servers[route.virtual_server]
        # Postfix looks the policy map up by the next hop: the recipient domain, or the
        # relay as a bracketed next hop ([relay]: a smart host gets no MX lookup).
        lookup = next_hop if next_hop == domain or not hosts else f"[{hosts[0].host}]"
        level = level_in_force(
            vs.outbound_tls, vs.tls_policy, lookup, connector.tls_level, ignore_starttls=connector.ignore_starttls
        )
        dane = entry_dane(policy_entry(vs.tls_policy, lookup))
        profile = self.profile_of(route.virtual_server)
        sender = self._sender_of(route.virtual_server, level)
        host_limit = max((h.max_connections for h in hosts), default=1)
        slots = min(vs.max_connections_per_domain, vs.max_connections, host_limit)
        if profile.concurrency is not None:
            slots = min(slots, profile.concurrency.limit)
        policies = sender_policies(
            profile,
            connector.mta_sts or vs.mta_sts,
            connector.dane or dane or vs.dane,  # type: ignore[arg-type]
            vs.mta_sts_plugin,
        )
        # The recipient domain's policies apply to MX delivery; through a smart host
        # they would be the smart host's domain's (RFC 8461 s.3.4), not modelled.
        published = self.domain(domain) if next_hop == domain else None
        dnssec = published.dnssec if published is not None else Dnssec.INSECURE
        sts = published.mta_sts if published is not None and policies.sts else None
        receivers = [(host, self._receiver_of(host), host.tlsa, host.tls) for host in hosts]
        destination = Destination(sender, receivers, policies, dnssec, next_hop)
        found = self._queues[key] = QueuePlan(
            f"{route.virtual_server}|{connector.name}|{next_hop}",
            route.virtual_server,
            connector.name,
            next_hop,
            self._host_plans(destination, sts),
            policy_of(level, profile),
            profile,
            slots,
            policies,
            sts,
            next_hop,
            published.tls_rpt if published is not None and policies.reports else None,
            (self.organisation.organisation, _our_contact(self.organisation)),
            self._patterns_planner(destination, sts),
        )
        return found

    def _host_plans(self, destination: Destination, sts: MtaStsPolicy | None) -> tuple[HostPlan, ...]:
        """Each host's sessions under the transport policies the sender applies."""
        sender, policies, domain = destination.sender, destination.policies, destination.domain
        found = []
        for host, receiver, tlsa, served in destination.receivers:
            base = self._sessions(sender, receiver)
            zones = Zones.of(destination.dnssec, host.dnssec)
            rule = host_rule(policies, zones, host.host, tlsa, host.tlsa_usage, None, domain)
            enforced = enforced_rule = None
            if sts is not None and sts.mx:
                enforced_rule = host_rule(policies, zones, host.host, tlsa, host.tlsa_usage, sts.mx, domain)
                enforced = self._under(enforced_rule, sender, receiver, base, served)
            sessions = self._under(rule, sender, receiver, base, served)
            found.append(HostPlan(host, sessions, rule, enforced, enforced_rule))
        return tuple(found)

    def _patterns_planner(
        self, destination: Destination, sts: MtaStsPolicy | None
    ) -> Callable[[tuple[str, ...]], tuple[HostPlan, ...]] | None:
        """The host plans under a cached policy whose mx patterns differ from ``sts``'s."""
        if sts is None:
            return None

        def under(patterns: tuple[str, ...]) -> tuple[HostPlan, ...]:
            return self._host_plans(destination, sts.model_copy(update={"mx": list(patterns)}))

        return under

    def _under(
        self, rule: HostRule, sender: Sender, receiver: Receiver, base: SessionPlan, served: ServerTls
    ) -> SessionPlan:
        """The session plan under ``rule``: at the level the rule needs, then mapped."""
        if rule.governs is Governs.PLAIN:
            return base
        if rule.governs is Governs.REFUSE:
            return SessionPlan.constant(under_rule(rule, base.first.negotiation, served))
        level = TlsLevel.VERIFY if rule.governs is Governs.STS else TlsLevel.REQUIRED
        at_level = base if sender.level is level else self._sessions(replace(sender, level=level), receiver)
        return at_level.mapped(lambda outcome: under_rule(rule, outcome, served))

    def _unreachable_queue(self, source_server: str) -> QueuePlan:
        """The source server's queue of mail with no usable route (6d): it is retried on
        the profile's schedule, never delivers while the route is missing, and expires."""
        key = (source_server, UNREACHABLE, "")
        found = self._queues.get(key)
        if found is None:
            first_vs = next(name for name in self.virtual_servers if name.split("/", 1)[0] == source_server)
            profile = self.profile_of(first_vs)
            found = self._queues[key] = QueuePlan(
                f"{source_server}|{UNREACHABLE}", first_vs, UNREACHABLE, "", (), TlsPolicy(TlsLevel.OFF), profile, 1
            )
        return found

    def notes(self) -> list[str]:
        """One line per TLS level in force that the product itself cannot be set to
        (Exchange 2003 has no opportunistic outbound TLS, reference 6d): tlssim simulates
        it, but it is a what-if, not a setting the architect could make; and one per
        delivery setting that the server's product does not have (it changes nothing)."""
        notes: dict[str, None] = {}
        for connector in self.organisation.connectors:
            for source in connector.source:
                vs = self.virtual_servers[source]
                profile = self.server_profile[source.split("/", 1)[0]]
                ignore = connector.ignore_starttls
                levels = {level_in_force(vs.outbound_tls, {}, "", connector.tls_level, ignore_starttls=ignore)}
                levels |= {
                    level_in_force(entry_level(entry), {}, "", connector.tls_level) for entry in vs.tls_policy.values()
                }
                for level in sorted(levels - profile.product_tls_levels):
                    notes[_what_if(f"{source} via connector {connector.name}", level, profile)] = None
        for flow in self.scenario.traffic.inbound:
            profile = get_profile(flow.profile)
            level = TlsLevel.OFF if flow.tls is ClientTls.NONE else flow.tls_level
            if level not in profile.product_tls_levels:
                notes[_what_if(f"inbound sender {flow.from_domain}", level, profile)] = None
        for name, vs in self.virtual_servers.items():
            profile = self.server_profile[name.split("/", 1)[0]]
            for field in sorted(vs.delivery.model_fields_set - set(applies_to(profile))):
                notes[f"{name}: delivery.{field} has no effect under {profile.name}"] = None
            lacking = [
                f"{setting} {value}"
                for setting, value, mechanism in (
                    ("mta_sts", vs.mta_sts, Mechanism.MTA_STS),
                    ("dane", vs.dane, Mechanism.DANE),
                )
                if value not in (None, "ignore", "none") and mechanism not in profile.mechanisms
            ]
            for setting in lacking:
                notes[f"{name}: {setting} has no effect: {profile.name} does not apply it"] = None
        return list(notes)

    # -- inbound -------------------------------------------------------------------------

    def sender_queue(self, flow: InboundFlow, part: int = 0) -> QueuePlan:
        """The queue at a remote sender that holds its mail for us: to ``flow.to``, or to
        the MX hosts we publish, or to our first virtual server. ``part`` n > 0 is the
        share of its mail whose MTAs met ``flow.observed_failures[n - 1]``."""
        observed = flow.observed_failures[part - 1] if part else None
        level = TlsLevel.OFF if flow.tls is ClientTls.NONE else flow.tls_level
        sender_profile = get_profile(flow.profile).with_delivery(flow.delivery)
        # Remote senders are assumed to hold whatever certificate their own TLS needs.
        sender = Sender(level, sender_profile.tls_versions, roots=self._trusted_roots(flow.trust))
        ours = self.organisation.publishes
        targets: list[tuple[str, str, list[Outage]]]
        published_mx = sorted(ours.mx, key=lambda mx: mx.preference) if ours is not None else []
        ours_mx = flow.to is None and bool(published_mx)
        if ours_mx:
            targets = [(mx.host, mx.virtual_server, mx.down) for mx in published_mx]
            if observed is not None:  # those sessions reached that MX: it is where they start
                targets.sort(key=lambda target: target[0] != observed.mx)
        else:
            target = flow.to or next(iter(self.virtual_servers))
            targets = [(self.certificates[target].names[0], target, [])]
        policies = sender_policies(sender_profile, flow.mta_sts, flow.dane, flow.mta_sts_plugin)
        receivers = []
        for name, virtual_server, down in targets:
            receiver = self._us_as_receiver(virtual_server, flow.tls, name)
            if observed is not None and observed.mx == name:
                receiver = self._as_observed(receiver, observed.result)
            # Our side as a host the sender connects to (no greylisting).
            us = RemoteHost.model_construct(
                host=name, session_setup=0.5, bandwidth_mbps=10.0, tlsa_usage=3, down=down, requiretls=False
            )
            tlsa = self.our_tlsa(name, virtual_server)
            receivers.append((us, receiver, tlsa, receiver.tls))
        dnssec = ours.dnssec if ours is not None else Dnssec.INSECURE
        sts = ours.mta_sts if ours is not None and policies.sts else None
        destination = Destination(sender, receivers, policies, dnssec, ours.domain if ours is not None else "")
        reporter = sender_profile.reporter
        if reporter is not None and not reporter[0]:  # it reports as its own domain
            reporter = (flow.from_domain, f"{reporter[1]}@{flow.from_domain}")
        # The receiver: the virtual server, or our MX host names in preference order.
        receiving = targets[0][1] if len(targets) == 1 and not ours_mx else ";".join(t[0] for t in targets)
        return QueuePlan(
            f"{sender_key(flow.from_domain, part)}|{receiving}",
            targets[0][1],
            "",
            ours.domain if ours is not None else targets[0][0],
            self._host_plans(destination, sts),
            policy_of(level, sender_profile),
            sender_profile,
            20,
            policies,
            sts,
            ours.domain if ours is not None else "",
            ours.tls_rpt if ours is not None and policies.reports else None,
            reporter,
            self._patterns_planner(destination, sts),
        )

    def our_tlsa(self, host: str, virtual_server: str) -> Tlsa:
        """What our TLSA records for ``host`` say of the certificate its virtual server
        serves: published key pairs are matched against the key it really holds."""
        ours = self.organisation.publishes
        published = ours.tlsa.get(host, Tlsa.NONE) if ours is not None else Tlsa.NONE
        if not isinstance(published, list):
            return published
        served = tlsa_digest(self.certificates[virtual_server].identity.certificate)
        return Tlsa.MATCH if served in self.tlsa_records(host, virtual_server) else Tlsa.MISMATCH

    def tlsa_records(self, host: str, virtual_server: str) -> list[str]:
        """The association data of the ``3 1 1`` records we publish for ``host`` (key pairs)."""
        ours = self.organisation.publishes
        published = ours.tlsa.get(host) if ours is not None else None
        if not isinstance(published, list):
            return []
        server = virtual_server.split("/", 1)[0]
        spec = self.virtual_servers[virtual_server].certificate or CertificateSpec(issuer="public-ca")
        owner = self._owner(server)
        return [our_tlsa_digest(owner, pair, spec.key) for pair in published]

    def _owner(self, server: str) -> str:
        """Whose key pairs: the server's default certificate name (as ``_certificate_of``)."""
        return f"{server}.{self.scenario.organisation.organisation}.example".lower()

    def _as_observed(self, receiver: Receiver, result: str) -> Receiver:
        """Our MX host as a sender's MTAs met it, by its TLS-RPT reports."""
        if result == "starttls-not-supported":
            return replace(receiver, tls=ServerTls.NONE, certificate=None)
        return replace(receiver, certificate=observed_certificate(result, receiver.name, self.start))

    def _us_as_receiver(self, target: str, client: ClientTls, name: str | None = None) -> Receiver:
        """Our virtual server as one remote sender meets it.

        A sender that cannot meet the strength we require (40-bit against "Require
        128-bit encryption") sees a failed handshake, as does one whose TLS fails with us.
        """
        vs = self.virtual_servers[target]
        inbound = vs.inbound
        certificate = self.certificates[target]
        if inbound.tls == "off":
            tls = ServerTls.NONE
        elif client is ClientTls.HANDSHAKE_FAILS or (
            client is ClientTls.BITS_40 and inbound.require_secure_channel and inbound.strength == 128
        ):
            tls = ServerTls.HANDSHAKE_FAILS
        else:
            tls = ServerTls.TRUSTED
        profile = self.server_profile[target.split("/", 1)[0]]
        return Receiver(
            name or certificate.names[0],
            tls,
            inbound.tls == "offered" and inbound.require_secure_channel,
            versions=vs.tls_versions or profile.tls_versions,
            certificate=certificate,
        )

    # -- pieces --------------------------------------------------------------------------

    def _sessions(self, sender: Sender, receiver: Receiver) -> SessionPlan:
        """The session plan of ``sender`` with ``receiver``. Unless the sender verifies
        the host's certificate (made for its name), the name changes nothing: remote
        hosts described alike share one plan."""
        if sender.level is TlsLevel.VERIFY or receiver.certificate is not None:
            return plan(sender, receiver, self.start, self.horizon)
        key = (
            sender.level,
            sender.versions,
            sender.certificate,  # ours: one object per virtual server
            sender.needs_certificate,
            sender.roots,
            receiver.tls,
            receiver.requires_tls,
            receiver.versions,
            receiver.client_certificates,
            receiver.roots,
            receiver.certificate_expires_in,
        )
        found = self._shared_sessions.get(key)
        if found is None:
            found = self._shared_sessions[key] = plan(sender, receiver, self.start, self.horizon)
        return found

    def profile_of(self, virtual_server: str) -> MtaProfile:
        """The server's product profile with the virtual server's delivery settings."""
        found = self._profiles.get(virtual_server)
        if found is None:
            server_profile = self.server_profile[virtual_server.split("/", 1)[0]]
            found = self._profiles[virtual_server] = server_profile.with_delivery(
                self.virtual_servers[virtual_server].delivery
            )
        return found

    def _sender_of(self, virtual_server: str, level: TlsLevel) -> Sender:
        found = self._senders.get((virtual_server, level))
        if found is None:
            vs = self.virtual_servers[virtual_server]
            server_profile = self.server_profile[virtual_server.split("/", 1)[0]]
            found = self._senders[(virtual_server, level)] = Sender(
                level,
                vs.tls_versions or server_profile.tls_versions,
                self.certificates[virtual_server],
                server_profile.client_tls_needs_certificate,
                self._trusted_roots(vs.trust),
            )
        return found

    def _trusted_roots(self, names: Sequence[str]) -> tuple[x509.Certificate, ...]:
        key = tuple(names)
        found = self._trusted.get(key)
        if found is None:
            found = self._trusted[key] = self.roots.trusted(names)
        return found

    def _receiver_of(self, host: RemoteHost) -> Receiver:
        return Receiver(
            host.host,
            host.tls,
            host.requires_tls,
            host.tls_versions,
            host.client_certificates,
            self._trusted_roots(host.trust),
            certificate_expires_in=host.certificate_expires_in,
        )

    def _certificate_of(self, name: str, vs: VirtualServer) -> ServerCertificate:
        """Our virtual server's certificate; without a setting, a public-CA one for its name."""
        server, _ = name.split("/", 1)
        default_name = self._owner(server)
        spec = vs.certificate or CertificateSpec(issuer="public-ca")
        return our_certificate(spec, default_name, self.start, Path(self.scenario.source).parent)


def sender_key(sender: str, part: int = 0) -> str:
    """The name of a remote sender's queue for us: its domain, and ``#n`` for the n-th
    share of its mail with an observed failure."""
    return f"{sender}#{part}" if part else sender


def sender_of(key: str) -> str:
    return key.split("#", 1)[0]


def session_outcome(queue: QueuePlan, host: HostPlan, at: float = 0.0) -> dict[str, object]:
    """What a session of ``queue`` with ``host`` comes to at simulated time ``at``:
    ``tls-verified``, ``tls``, ``plaintext``, or the failure with the product's status."""
    found = _outcome(queue, host, host.sessions.at(at).negotiation)
    if host.rule.policy_type is not None:
        found["transport_policy"] = host.rule.policy_type
    if host.enforced is not None:
        found["under_enforced_mta_sts"] = _outcome(queue, host, host.enforced.at(at).negotiation)["outcome"]
    return found


def _outcome(queue: QueuePlan, host: HostPlan, negotiation: Negotiation) -> dict[str, object]:
    channel = negotiation.channel
    if channel is not None:
        names = {Channel.TLS_VERIFIED: "tls-verified", Channel.TLS_UNVERIFIED: "tls", Channel.PLAINTEXT: "plaintext"}
        return {"host": host.host.host, "preference": host.host.preference, "outcome": names[channel]}
    failure = negotiation.failure or Failure.HOST_DOWN
    status = queue.profile.status(failure).with_detail(negotiation.detail)
    found: dict[str, object] = {
        "host": host.host.host,
        "preference": host.host.preference,
        "outcome": failure.value,
        "status": str(status),
        "permanent": negotiation.permanent,
    }
    if (
        failure is Failure.HANDSHAKE
        and queue.policy.plaintext_fallback_after is not None
        and (queue.policy.level is TlsLevel.OPPORTUNISTIC)
    ):
        found["then"] = f"plaintext once the message has waited {queue.policy.plaintext_fallback_after:g} s"
    return found


_EXCHANGE_RETRY = (
    "queue_glitch_retry_count",
    "queue_glitch_retry_interval",
    "transient_failure_retry_count",
    "transient_failure_retry_interval",
    "outbound_connection_failure_retry_interval",
)
_POSTFIX_ONLY = (
    "queue_run_delay",
    "minimal_backoff_time",
    "maximal_backoff_time",
    "initial_destination_concurrency",
    "destination_concurrency_limit",
    "destination_concurrency_failed_cohort_limit",
)
_RETRY_STEPS = ("first_retry", "second_retry", "third_retry", "subsequent_retry")


def applies_to(profile: MtaProfile) -> tuple[str, ...]:
    """The delivery settings that change something under ``profile``."""
    common = ("delay_notification", "expiration_timeout")
    retry = profile.retry
    if retry.discipline == "message":
        return (*common, *_POSTFIX_ONLY)
    if retry.queue_run_delay is not None:  # Sendmail: queue runs
        return (*common, "queue_run_delay")
    if retry.glitch is not None:
        return (*common, *_RETRY_STEPS, *_EXCHANGE_RETRY)
    return (*common, *_RETRY_STEPS)


def _what_if(where: str, level: TlsLevel, profile: MtaProfile) -> str:
    offered = ", ".join(sorted(level.value for level in profile.product_tls_levels))
    return f"{where}: TLS level {level.value} under {profile.name} is a what-if level (the product offers: {offered})"


def sender_policies(
    profile: MtaProfile, sts: StsUse | None, dane: DaneUse | None, plugin: StsPlugin | None = None
) -> SenderPolicies:
    """What a sender applies: its settings, else the product's defaults, within what the
    product can do at all (a product without a mechanism ignores it).

    A product that asks a policy plug-in for MTA-STS (``plugin``, else its default)
    keeps the plug-in's cache rules; it checks the MX name against the patterns only
    when the plug-in forwards the policy's attributes and the product takes them
    (Postfix >= 3.10), else only the certificate; a Postfix before 3.10 refuses an
    answer with attributes (issue 20 s.3). postfix-tlspol puts DANE first."""
    mechanisms = profile.mechanisms
    dane_use: DaneUse = dane or profile.dane_default
    plugin = plugin or profile.sts_plugin
    mx_check, dane_first, cache, rejected = profile.sts_mx_check, profile.dane_over_sts, profile.sts_cache, False
    if plugin is not None:
        with_attributes = plugin != "postfix-mta-sts-resolver"
        forwarded = with_attributes and profile.policy_attributes
        mx_check = profile.sts_mx_check if forwarded else "certificate"
        rejected = with_attributes and not profile.policy_attributes and plugin != "postfix-tlspol"
        dane_first = plugin == "postfix-tlspol" or profile.dane_over_sts
        cache = STS_CACHE_RULES["postfix-tlspol" if plugin == "postfix-tlspol" else "postfix-mta-sts-resolver"]
    return SenderPolicies(
        sts=Mechanism.MTA_STS in mechanisms and (sts or profile.sts_default) == "apply",
        dane=dane_use if Mechanism.DANE in mechanisms else "none",
        sts_mx_check=mx_check,
        dane_over_sts=dane_first,
        requiretls=Mechanism.REQUIRETLS in mechanisms,
        reports=Mechanism.TLS_RPT in mechanisms,
        sts_testing_reported=profile.sts_testing_reported,
        sts_cache=cache,
        sts_answer_rejected=rejected,
    )


def _our_contact(organisation: Organisation) -> str:
    ours = organisation.publishes
    return f"tlsrpt@{ours.domain}" if ours is not None else f"postmaster@{organisation.organisation}.example"


def policy_of(level: TlsLevel, profile: MtaProfile) -> TlsPolicy:
    """The TLS policy of a queue at ``level`` under ``profile``."""
    fallback = profile.retry.minimal_backoff if profile.handshake_fallback == "after_min_backoff" else None
    return TlsPolicy(level, fallback)

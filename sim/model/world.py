"""The world of one run: routes, remote hosts, TLS outcomes and queues, built from a scenario."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import simpy

from sim.model.backoff import BackoffQueue
from sim.model.endpoint import Endpoint, HostLink
from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.model.queue import DeliveryQueue, QueueRetry
from sim.model.sessions import Receiver, Sender, SessionPlan, plan
from sim.model.streams import BlockDraws, Stream, generator
from sim.mta.profiles import MtaProfile, get_profile
from sim.pki.authorities import Roots, ServerCertificate, our_certificate, roots
from sim.population import generate
from sim.routing.selector import Route, RouteSelector
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
from sim.vocabulary import ClientTls, ServerTls, TlsLevel


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Where mail from one server to one domain goes: one queue, or several sharing load."""

    queues: tuple[DeliveryQueue, ...]
    route_label: str


def all_domains(scenario: Scenario) -> list[RemoteDomain]:
    """The named remote domains followed by the generated population, if any."""
    domains = list(scenario.remotes.domains)
    if scenario.remotes.population is not None:
        domains += generate(scenario.remotes.population).domains
    return domains


def with_generated_address_spaces(organisation: Organisation, domains: list[RemoteDomain]) -> Organisation:
    """The organisation with ``address_spaces_from_remotes`` expanded into address spaces."""
    if not any(c.address_spaces_from_remotes for c in organisation.connectors):
        return organisation
    no_tls = (ServerTls.NONE, ServerTls.HANDSHAKE_FAILS)
    cannot = {d.name for d in domains if all(h.tls in no_tls for h in d.mx)}
    chosen = {
        "cannot-tls": [d.name for d in domains if d.name in cannot],
        "can-tls": [d.name for d in domains if d.name not in cannot],
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


def make_queue(
    env: simpy.Environment,
    name: str,
    links: list[HostLink],
    profile: MtaProfile,
    slots: int,
    metrics: Metrics,
    level: TlsLevel,
) -> DeliveryQueue:
    """The queue discipline of ``profile``: whole-queue retry, or per-message backoff."""
    kind = BackoffQueue if profile.retry.discipline == "message" else QueueRetry
    return kind(env, name, links, profile, slots, metrics, opportunistic=level is TlsLevel.OPPORTUNISTIC)


class World:
    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        metrics: Metrics,
        replication: int = 0,
        inbound_metrics: Metrics | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = env
        self.metrics = metrics
        self.inbound_metrics = inbound_metrics or Metrics()
        self.replication = replication
        domains = all_domains(scenario)
        org = with_generated_address_spaces(scenario.organisation, domains)
        self.profile = get_profile(org.profile)
        self.selector = RouteSelector(org, self.profile)
        self.server_profile = {s.name: get_profile(s.profile or org.profile) for s in org.servers}
        self.virtual_servers: dict[str, VirtualServer] = {
            f"{server.name}/{vs.name}": vs for server in org.servers for vs in server.virtual_servers
        }
        self.mx: dict[str, list[RemoteHost]] = {d.name: sorted(d.mx, key=lambda h: h.preference) for d in domains}
        self.relays: dict[str, RemoteHost] = {h.host: h for h in scenario.remotes.hosts}
        self._endpoints: dict[str, Endpoint] = {}
        self.queues: dict[tuple[str, str, str], DeliveryQueue] = {}
        self.sender_queues: dict[str, DeliveryQueue] = {}
        self._dispatch: dict[tuple[str, str], Dispatch] = {}
        self._share = BlockDraws(generator(scenario.run.seed, replication, Stream.LOAD_SHARE).random)
        self.start = scenario.run.start
        self.roots = roots(self.start)
        self.certificates = {name: self._certificate_of(name, vs) for name, vs in self.virtual_servers.items()}

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
            status = self.profile.no_route
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

    def _queue_for(self, route: Route, domain: str) -> DeliveryQueue:
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
            vs_level = tls_policy_level(vs, domain if next_hop == domain else hosts[0].host)
            level = TlsLevel.OFF if connector.ignore_starttls else effective_tls(vs_level, connector.tls_level)
            server_profile = self.server_profile[route.virtual_server.split("/", 1)[0]]
            profile = server_profile.with_delivery(vs.delivery)
            sender = Sender(
                level,
                vs.tls_versions or server_profile.tls_versions,
                self.certificates[route.virtual_server],
                server_profile.client_tls_needs_certificate,
                self.roots.trusted(vs.trust),
            )
            links = [
                HostLink(self.endpoint(host), self._plan(sender, _receiver_of(host, self.roots))) for host in hosts
            ]
            slots = min(vs.max_connections_per_domain, vs.max_connections, max(h.max_connections for h in hosts))
            name = f"{route.virtual_server}|{connector.name}|{next_hop}"
            queue = self.queues[key] = make_queue(self.env, name, links, profile, slots, self.metrics, level)
        return queue

    # -- inbound -------------------------------------------------------------------------

    def sender_queue(self, flow: InboundFlow) -> DeliveryQueue:
        """The queue at a remote sender that holds its mail for us."""
        found = self.sender_queues.get(flow.from_domain)
        if found is None:
            target = flow.to or next(iter(self.virtual_servers))
            level = TlsLevel.OFF if flow.tls is ClientTls.NONE else flow.tls_level
            sender_profile = get_profile(flow.profile)
            # Remote senders are assumed to hold whatever certificate their own TLS needs.
            sender = Sender(level, sender_profile.tls_versions, roots=self.roots.trusted(flow.trust))
            receiver = self._us_as_receiver(target, flow.tls)
            endpoint = Endpoint(receiver.name, session_setup=0.5, bandwidth_mbps=10.0, down=[], greylist=None)
            link = HostLink(endpoint, self._plan(sender, receiver))
            found = self.sender_queues[flow.from_domain] = make_queue(
                self.env,
                f"{flow.from_domain}|{target}",
                [link],
                sender_profile.with_delivery(flow.delivery),
                20,
                self.inbound_metrics,
                level,
            )
        return found

    def _us_as_receiver(self, target: str, client: ClientTls) -> Receiver:
        """Our virtual server as one remote sender meets it.

        A sender that cannot meet the strength we require (40-bit against "Require
        128-bit encryption") sees a failed handshake, as does one whose TLS fails with us.
        """
        vs = self.virtual_servers[target]
        inbound = vs.inbound
        certificate = self.certificates[target]
        if inbound.tls == "off" or certificate is None:
            tls = ServerTls.NONE
        elif client is ClientTls.HANDSHAKE_FAILS or (
            client is ClientTls.BITS_40 and inbound.require_secure_channel and inbound.strength == 128
        ):
            tls = ServerTls.HANDSHAKE_FAILS
        else:
            tls = ServerTls.TRUSTED
        name = certificate.names[0] if certificate is not None else target
        profile = self.server_profile[target.split("/", 1)[0]]
        return Receiver(
            name,
            tls,
            inbound.tls == "offered" and inbound.require_secure_channel,
            versions=vs.tls_versions or profile.tls_versions,
            certificate=certificate,
        )

    def _plan(self, sender: Sender, receiver: Receiver) -> SessionPlan:
        return plan(sender, receiver, self.start, self.scenario.run.duration)

    def _certificate_of(self, name: str, vs: VirtualServer) -> ServerCertificate:
        """Our virtual server's certificate; without a setting, a public-CA one for its name."""
        server, _ = name.split("/", 1)
        default_name = f"{server}.{self.scenario.organisation.organisation}.example".lower()
        spec = vs.certificate or CertificateSpec(issuer="public-ca")
        return our_certificate(spec, default_name, self.start, Path(self.scenario.source).parent)


def _receiver_of(host: RemoteHost, world_roots: Roots) -> Receiver:
    return Receiver(
        host.host,
        host.tls,
        host.requires_tls,
        host.tls_versions,
        host.client_certificates,
        world_roots.trusted(host.trust),
        certificate_expires_in=host.certificate_expires_in,
    )


def effective_tls(virtual_server: TlsLevel, connector: TlsLevel) -> TlsLevel:
    """The stronger of the two settings: a connector can add TLS but not take it away."""
    return virtual_server if virtual_server.rank >= connector.rank else connector


def tls_policy_level(vs: VirtualServer, next_hop: str) -> TlsLevel:
    """The virtual server's level for ``next_hop``: its policy map entry, else its default.

    Lookup as Postfix smtp_tls_policy_maps (reference 3c): the name itself, then
    ``.parent`` for each parent domain, nearest first.
    """
    policy = vs.tls_policy
    if not policy:
        return vs.outbound_tls
    if next_hop in policy:
        return policy[next_hop]
    labels = next_hop.split(".")
    for i in range(1, len(labels)):
        key = "." + ".".join(labels[i:])
        if key in policy:
            return policy[key]
    return vs.outbound_tls

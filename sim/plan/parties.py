"""Who takes part in a session, for both directions of mail: our virtual servers as
senders (with their certificates, profiles and trust) and as receivers, remote hosts
as receivers, and the session plan between a sender and a receiver over simulated
time, shared between parties described alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from cryptography import x509

from sim.mta.profiles import MtaProfile, get_profile
from sim.pki.authorities import Roots, ServerCertificate, our_certificate, our_tlsa_digest, roots
from sim.pki.certs import tlsa_digest
from sim.scenario.model import CertificateSpec, Organisation, RemoteHost, Scenario, VirtualServer
from sim.tls.sessions import Receiver, Sender, SessionPlan, plan
from sim.vocabulary import ClientTls, ServerTls, Tlsa, TlsLevel, server_of


class Parties:
    def __init__(self, scenario: Scenario, organisation: Organisation) -> None:
        self.scenario = scenario
        self.organisation = organisation
        self.start: dt.datetime = scenario.run.start
        self.horizon = scenario.run.duration
        self.server_profile = {s.name: get_profile(s.profile or organisation.profile) for s in organisation.servers}
        self.virtual_servers: dict[str, VirtualServer] = organisation.virtual_servers_by_ref()
        # Shared, immutable pieces: a world of 100,000 domains has a few distinct senders
        # and host descriptions, so each is made once, not once per domain (issue 13).
        self._profiles: dict[str, MtaProfile] = {}
        self._senders: dict[tuple[str, TlsLevel], Sender] = {}
        self._trusted: dict[tuple[str, ...], tuple[x509.Certificate, ...]] = {}
        self._shared_sessions: dict[tuple[object, ...], tuple[SessionPlan, object, object]] = {}

    @cached_property
    def roots(self) -> Roots:
        return roots(self.start)

    @cached_property
    def certificates(self) -> dict[str, ServerCertificate]:
        return {name: self._certificate_of(name, vs) for name, vs in self.virtual_servers.items()}

    def profile_of(self, virtual_server: str) -> MtaProfile:
        """The server's product profile with the virtual server's delivery settings."""
        found = self._profiles.get(virtual_server)
        if found is None:
            server_profile = self.server_profile[server_of(virtual_server)]
            found = self._profiles[virtual_server] = server_profile.with_delivery(
                self.virtual_servers[virtual_server].delivery
            )
        return found

    # -- our side ------------------------------------------------------------------------

    def sender_of(self, virtual_server: str, level: TlsLevel) -> Sender:
        """Our virtual server as the sender of a queue at ``level``."""
        found = self._senders.get((virtual_server, level))
        if found is None:
            vs = self.virtual_servers[virtual_server]
            server_profile = self.server_profile[server_of(virtual_server)]
            found = self._senders[(virtual_server, level)] = Sender(
                level,
                vs.tls_versions or server_profile.tls_versions,
                self.certificates[virtual_server],
                server_profile.client_tls_needs_certificate,
                self.trusted_roots(vs.trust),
            )
        return found

    def us_as_receiver(self, target: str, client: ClientTls, name: str | None = None) -> Receiver:
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
        profile = self.server_profile[server_of(target)]
        return Receiver(
            name or certificate.names[0],
            tls,
            inbound.tls == "offered" and inbound.require_secure_channel,
            versions=vs.tls_versions or profile.tls_versions,
            certificate=certificate,
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
        server = server_of(virtual_server)
        spec = self.virtual_servers[virtual_server].certificate or CertificateSpec(issuer="public-ca")
        owner = self._owner(server)
        return [our_tlsa_digest(owner, pair, spec.key) for pair in published]

    def _owner(self, server: str) -> str:
        """Whose key pairs: the server's default certificate name (as ``_certificate_of``)."""
        return f"{server}.{self.scenario.organisation.organisation}.example".lower()

    def _certificate_of(self, name: str, vs: VirtualServer) -> ServerCertificate:
        """Our virtual server's certificate; without a setting, a public-CA one for its name."""
        server = server_of(name)
        default_name = self._owner(server)
        spec = vs.certificate or CertificateSpec(issuer="public-ca")
        return our_certificate(spec, default_name, self.start, Path(self.scenario.source).parent)

    # -- the remote side -----------------------------------------------------------------

    def trusted_roots(self, names: Sequence[str]) -> tuple[x509.Certificate, ...]:
        key = tuple(names)
        found = self._trusted.get(key)
        if found is None:
            found = self._trusted[key] = self.roots.trusted(names)
        return found

    def receiver_of(self, host: RemoteHost) -> Receiver:
        return Receiver(
            host.host,
            host.tls,
            host.requires_tls,
            host.tls_versions,
            host.client_certificates,
            self.trusted_roots(host.trust),
            certificate_expires_in=host.certificate_expires_in,
        )

    def sessions(self, sender: Sender, receiver: Receiver) -> SessionPlan:
        """The session plan of ``sender`` with ``receiver``. Unless the sender verifies
        the host's certificate (made for its name), the name changes nothing: remote
        hosts described alike share one plan."""
        if sender.level is TlsLevel.VERIFY or receiver.certificate is not None:
            return plan(sender, receiver, self.start, self.horizon)
        # The trust anchors are keyed by identity: hashing a certificate hashes its DER
        # (1-2 us a tuple, more than the rest of the lookup), and ``trusted_roots``
        # hands out one tuple per trust list. The entry keeps both tuples alive, so
        # their identities are not reused while it lasts.
        key = (
            sender.level,
            sender.versions,
            sender.certificate,  # ours: one object per virtual server
            sender.needs_certificate,
            id(sender.roots),
            receiver.tls,
            receiver.requires_tls,
            receiver.versions,
            receiver.client_certificates,
            id(receiver.roots),
            receiver.certificate_expires_in,
        )
        found = self._shared_sessions.get(key)
        if found is None:
            found = self._shared_sessions[key] = (
                plan(sender, receiver, self.start, self.horizon),
                sender.roots,
                receiver.roots,
            )
        return found[0]

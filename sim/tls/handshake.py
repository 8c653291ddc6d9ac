"""A TLS handshake between two configured peers, decided by rules plus real X.509 validation.

Where ``negotiate`` works from capability labels, ``handshake`` works from what each
side actually holds: protocol version ranges, certificates and trust stores. The
certificate checks are ``cryptography``'s path validation at the given instant; the
rest are the handshake rules that OpenSSL applies, and ``tests/test_real_tls.py``
checks the two agree against real in-memory handshakes between ``ssl`` contexts.
Settings the local OpenSSL cannot perform (40-bit export ciphers, SSLv3) stay with the
label rules of ``negotiate``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509

from sim.pki.certs import Identity
from sim.pki.verify import verify_client, verify_server
from sim.tls.negotiation import Negotiation
from sim.vocabulary import CertificateProblem, Channel, ClientCertificatePolicy, Failure, TlsVersion

_ORDER = {"1.0": 0, "1.1": 1, "1.2": 2, "1.3": 3}


@dataclass(frozen=True, eq=False)
class ClientSide:
    """The connecting MTA: whether it verifies, which versions it speaks, what it presents."""

    verify: bool
    versions: tuple[TlsVersion, TlsVersion] = ("1.2", "1.3")
    identity: Identity | None = None
    roots: tuple[x509.Certificate, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class ServerSide:
    """The receiving MTA: its certificate, versions, and what it does with client certificates.

    ``client_certificates``: ``ignore`` does not ask for one; ``reject-self-signed``
    asks, accepts none, and refuses one that does not verify against ``roots`` (a
    self-signed one never does: some Sendmail sites, reference 4a); ``require-valid``
    refuses a session without a valid client certificate (mutual TLS).
    """

    identity: Identity | None  # needed only when the client verifies
    versions: tuple[TlsVersion, TlsVersion] = ("1.2", "1.3")
    client_certificates: ClientCertificatePolicy = "ignore"
    roots: tuple[x509.Certificate, ...] = field(default=())


def handshake(client: ClientSide, server: ServerSide, host: str, at: dt.datetime) -> Negotiation:
    """The outcome of a STARTTLS handshake with ``host`` at instant ``at``."""
    low = max(_ORDER[client.versions[0]], _ORDER[server.versions[0]])
    high = min(_ORDER[client.versions[1]], _ORDER[server.versions[1]])
    if low > high:
        return Negotiation(None, Failure.HANDSHAKE, "no protocol version in common")
    if client.verify:
        leaf = server.identity
        if leaf is None:
            return Negotiation(None, Failure.CERTIFICATE, CertificateProblem.NONE_PRESENTED)
        problem = verify_server(leaf.certificate, leaf.chain, client.roots, host, at)
        if problem is not None:
            return Negotiation(None, Failure.CERTIFICATE, problem)
    if server.client_certificates != "ignore":
        presented = client.identity
        if presented is None:
            if server.client_certificates == "require-valid":
                return Negotiation(None, Failure.HANDSHAKE, "client certificate required")
        else:
            problem = verify_client(presented.certificate, presented.chain, server.roots, at)
            if problem is not None:
                return Negotiation(None, Failure.HANDSHAKE, f"client certificate rejected: {problem}")
    return Negotiation(Channel.TLS_VERIFIED if client.verify else Channel.TLS_UNVERIFIED)

"""TLS negotiation as a pure function of the client's settings and the server's capability.

The outcome of one SMTP session's security step: plaintext, TLS without a verified
certificate, TLS with one, or a failure of a given kind. The kind is the fact; which
status code and text a product writes for it is the MTA profile's business
(``sim/mta/profiles.py``), as is whether the sender then falls back to plaintext.
Results are cached per (level, capability, requires-TLS) triple: the hot path never
recomputes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sim.vocabulary import PERMANENT, CertificateProblem, Channel, Failure, ServerTls, TlsLevel


@dataclass(frozen=True, slots=True)
class Negotiation:
    """What one session's security step came to: a channel, or a failure."""

    channel: Channel | None
    failure: Failure | None = None
    detail: str = ""  # for the status text; a ``CertificateProblem`` when a certificate was refused

    @property
    def delivers(self) -> bool:
        return self.channel is not None

    @property
    def permanent(self) -> bool:
        return self.failure in PERMANENT


_CERT_PROBLEMS = {
    ServerTls.SELF_SIGNED: CertificateProblem.SELF_SIGNED,
    ServerTls.EXPIRED: CertificateProblem.EXPIRED,
    ServerTls.NAME_MISMATCH: CertificateProblem.OTHER_NAME,
    ServerTls.UNTRUSTED: CertificateProblem.UNTRUSTED_ROOT,
}

PLAINTEXT = Negotiation(Channel.PLAINTEXT)


@cache
def negotiate(level: TlsLevel, server: ServerTls, server_requires_tls: bool) -> Negotiation:
    """The outcome when a client at ``level`` meets a server with capability ``server``.

    * ``off`` never sends STARTTLS: plaintext, or 530 5.7.0 from a server that requires TLS.
    * ``opportunistic`` uses STARTTLS when offered and accepts any certificate; a
      failed handshake is a ``HANDSHAKE`` failure (whether the sender then retries in
      plaintext is its profile's choice).
    * a host that offers no STARTTLS but requires TLS (reference 6c): ``530 5.7.0`` at
      ``off`` and ``opportunistic`` (permanent), ``NO_STARTTLS`` at ``required``/``verify``.
    * ``required``: no STARTTLS is a ``NO_STARTTLS`` failure (Exchange 2003: "The remote
      SMTP service does not support TLS", KB 329061); any certificate is accepted.
    * ``verify``: as required, and the certificate must chain to a trusted root, be in
      date and match the name (Postfix verify, Exchange TlsAuthLevel CertificateValidation).

    >>> negotiate(TlsLevel.REQUIRED, ServerTls.NONE, False).failure.value
    'no-starttls'
    >>> negotiate(TlsLevel.OPPORTUNISTIC, ServerTls.SELF_SIGNED, False).channel.value
    'tls-unverified'
    """
    if level is TlsLevel.OFF:
        return Negotiation(None, Failure.MUST_STARTTLS) if server_requires_tls else PLAINTEXT
    if server is ServerTls.NONE:
        if level is not TlsLevel.OPPORTUNISTIC:
            return Negotiation(None, Failure.NO_STARTTLS)
        # A host that offers no STARTTLS yet requires it (6c) refuses the plaintext
        # fallback with 530: the sender must not, and cannot, deliver in clear.
        return Negotiation(None, Failure.MUST_STARTTLS) if server_requires_tls else PLAINTEXT
    if server is ServerTls.HANDSHAKE_FAILS:
        return Negotiation(None, Failure.HANDSHAKE)
    if level is TlsLevel.VERIFY:
        problem = _CERT_PROBLEMS.get(server)
        if problem is not None:
            return Negotiation(None, Failure.CERTIFICATE, problem)
        return Negotiation(Channel.TLS_VERIFIED)
    return Negotiation(Channel.TLS_UNVERIFIED)

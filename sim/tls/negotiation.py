"""TLS negotiation as a pure function of our client settings and the remote host.

The outcome of one SMTP session's security step: plaintext, TLS without a verified
certificate, TLS with one, a transient failure (the queue goes to Retry) or a
permanent rejection (the message bounces at once). Status codes are RFC 3463's.
Results are cached per (settings, capability) pair: the hot path never recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sim.scenario.model import ServerTls, TlsLevel


class Channel(StrEnum):
    PLAINTEXT = "plaintext"
    TLS_UNVERIFIED = "tls-unverified"
    TLS_VERIFIED = "tls-verified"


@dataclass(frozen=True, slots=True)
class Negotiation:
    """What one session's security step came to.

    Exactly one of ``channel`` (the session carries mail) or ``status`` (it does not)
    is set; ``permanent`` tells a 5xx rejection from a 4xx deferral.
    """

    channel: Channel | None
    status: str | None = None
    reason: str = ""
    permanent: bool = False

    @property
    def delivers(self) -> bool:
        return self.channel is not None

    @property
    def encrypted(self) -> bool:
        return self.channel is not None and self.channel is not Channel.PLAINTEXT


_CERT_PROBLEMS = {
    ServerTls.SELF_SIGNED: "self-signed certificate",
    ServerTls.EXPIRED: "certificate has expired",
    ServerTls.NAME_MISMATCH: "certificate is for another name",
    ServerTls.UNTRUSTED: "certificate chain ends in an untrusted root",
}

NO_STARTTLS = Negotiation(None, "4.7.4", "The remote SMTP service does not support TLS")
HANDSHAKE_FAILED = Negotiation(None, "4.7.5", "TLS handshake failed")
MUST_STARTTLS = Negotiation(None, "5.7.0", "530 5.7.0 Must issue a STARTTLS command first", permanent=True)


@cache
def negotiate(level: TlsLevel, server: ServerTls, server_requires_tls: bool) -> Negotiation:
    """The outcome when a client at ``level`` meets a host with capability ``server``.

    * ``off`` never sends STARTTLS: plaintext, or 530 5.7.0 from a host that requires
      TLS (RFC 3207 s.4; KB 329061 shows it in an Exchange NDR as #5.7.0).
    * ``opportunistic`` uses STARTTLS when offered and accepts any certificate.
      A failed handshake defers with 4.7.5 (Exchange has no documented plaintext
      retry, reference 2a "NOT FOUND"; Sendmail likewise defers, 4a).
    * ``required``: a host without STARTTLS leaves the queue in Retry with "The remote
      SMTP service does not support TLS" (KB 329061), status 4.7.4 ("security features
      not supported", RFC 3463); any certificate is accepted.
    * ``verify``: as required, and the certificate must chain to a trusted root, be in
      date and match the name; otherwise defer with 4.7.5 (Postfix verify:
      "Server certificate not verified"; EXO 4.7.320 says the same).

    >>> negotiate(TlsLevel.REQUIRED, ServerTls.NONE, False).status
    '4.7.4'
    >>> negotiate(TlsLevel.OPPORTUNISTIC, ServerTls.SELF_SIGNED, False).channel.value
    'tls-unverified'
    """
    if level is TlsLevel.OFF:
        return MUST_STARTTLS if server_requires_tls else Negotiation(Channel.PLAINTEXT)
    if server is ServerTls.NONE:
        return Negotiation(Channel.PLAINTEXT) if level is TlsLevel.OPPORTUNISTIC else NO_STARTTLS
    if server is ServerTls.HANDSHAKE_FAILS:
        return HANDSHAKE_FAILED
    if level is TlsLevel.VERIFY:
        problem = _CERT_PROBLEMS.get(server)
        if problem is not None:
            return Negotiation(None, "4.7.5", f"Server certificate not verified: {problem}")
        return Negotiation(Channel.TLS_VERIFIED)
    return Negotiation(Channel.TLS_UNVERIFIED)

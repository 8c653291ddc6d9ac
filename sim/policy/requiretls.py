"""REQUIRETLS (RFC 8689; Postfix >= 3.11, modern-policies MP 3): what a message sent with
``MAIL FROM ... REQUIRETLS`` needs of the sender and of each session. Pure functions;
``tests/test_policies.py`` pins them. The queue asks ``under_requiretls`` for every
attempt of such a message; the world asks ``accepts`` before routing it.
"""

from __future__ import annotations

from collections.abc import Set

from sim.policy.rules import PolicyType
from sim.tls.negotiation import Negotiation
from sim.vocabulary import NO_CONNECTION, Channel, Failure, Mechanism, Status

# RFC 8689 s.5: a server that does not implement REQUIRETLS cannot take such a message on.
UNSUPPORTED = Status("5.7.30", "REQUIRETLS support required: this server does not implement REQUIRETLS")
_NOT_VERIFIED = (
    Failure.CERTIFICATE,
    Failure.STS_CERTIFICATE,
    Failure.DANE_MISMATCH,
    Failure.HANDSHAKE,
    Failure.DANE_HANDSHAKE,
)


def accepts(mechanisms: Set[Mechanism]) -> bool:
    """Whether a server whose product has ``mechanisms`` takes a REQUIRETLS message: one
    that does not is returned at once (``UNSUPPORTED``), never sent in clear."""
    return Mechanism.REQUIRETLS in mechanisms


def under_requiretls(outcome: Negotiation, governed: PolicyType | None, host: str, advertises: bool) -> Negotiation:
    """A REQUIRETLS message's session with ``host``: only over TLS verified by DANE or an
    enforced MTA-STS policy (``governed``), to a host that advertises REQUIRETLS. Else
    5.7.10 (not verified) or 5.7.30 (no TLS, or no REQUIRETLS), each tried on the next
    MX before the message is returned."""
    channel = outcome.channel
    if channel is None:
        failure = outcome.failure
        if failure in (Failure.HOST_DOWN, Failure.GREYLISTED) or failure in NO_CONNECTION:
            return outcome
        if failure in _NOT_VERIFIED:
            return Negotiation(None, Failure.REQUIRETLS_UNVERIFIED, outcome.detail)
        return Negotiation(None, Failure.REQUIRETLS, outcome.detail)
    if channel is Channel.PLAINTEXT:  # Postfix: 5.7.30 also when STARTTLS is not offered
        return Negotiation(None, Failure.REQUIRETLS, f"{host} offers no STARTTLS")
    if channel is not Channel.TLS_VERIFIED or governed is None:
        detail = "no DANE or enforced MTA-STS policy authenticates the host"
        return Negotiation(None, Failure.REQUIRETLS_UNVERIFIED, detail)
    if not advertises:
        return Negotiation(None, Failure.REQUIRETLS, f"{host} does not advertise REQUIRETLS")
    return outcome

"""MTA-STS enforce (RFC 8461 s.4, s.5; modern-policies MP 1c, 5, 8): which row governs
a host, and what a session comes to under it. Pure functions; ``tests/test_policies.py``
pins each row, and the sender's cache of the policy is ``sim/policy/sts_cache.py``.

The MX must match the policy's ``mx`` patterns, offer STARTTLS and present a
certificate valid for its name. RFC checkers skip a non-matching MX ("*." = one label);
Postfix 3.7 with its plug-in matches only the certificate against the patterns ("*." =
any depth) and so connects and fails "Server certificate not verified". ``testing`` and
``none`` never change delivery.
"""

from __future__ import annotations

from sim.policy.rules import Governs, HostRule, MxCheck
from sim.tls.negotiation import Negotiation
from sim.vocabulary import CertificateProblem, Failure

REJECTED = HostRule(Governs.REFUSE, "sts", Failure.STS_PLUGIN)  # 4.7.5 client TLS configuration problem


def sts_matches(host: str, pattern: str, check: MxCheck) -> bool:
    """Whether an MTA-STS ``mx`` pattern covers ``host``.

    >>> sts_matches("mail.example.com", "*.example.com", "mx-name")
    True
    >>> sts_matches("a.b.example.com", "*.example.com", "mx-name")  # one label only (RFC 8461 s.4.1)
    False
    >>> sts_matches("a.b.example.com", "*.example.com", "certificate")  # Postfix 3.7 plug-in (MP 8)
    True
    >>> sts_matches("example.com", "*.example.com", "mx-name")
    False
    """
    if not pattern.startswith("*."):
        return host == pattern
    suffix = pattern[1:]  # ".example.com"
    if not host.endswith(suffix) or host == suffix[1:]:
        return False
    return check == "certificate" or "." not in host[: -len(suffix)]


def sts_rule(host: str, patterns: list[str], check: MxCheck) -> HostRule:
    """The enforced MTA-STS row for one host."""
    if any(sts_matches(host, pattern, check) for pattern in patterns):
        return HostRule(Governs.STS, "sts")
    if check == "mx-name":  # skipped as though unreachable (RFC 8461 s.5.1, s.8.4)
        return HostRule(Governs.REFUSE, "sts", Failure.STS_MX_MISMATCH, f"{host} is outside the policy's mx")
    return HostRule(Governs.STS_OUTSIDE, "sts")


def under_sts(rule: HostRule, outcome: Negotiation) -> Negotiation:
    """A session that negotiated TLS under an enforced policy (``verify`` against the MX
    name for ``STS``; ``required`` for a certificate-only checker's MX outside the
    patterns, whose certificate then fails the patterns)."""
    if rule.governs is Governs.STS_OUTSIDE:
        return Negotiation(None, Failure.STS_CERTIFICATE, CertificateProblem.OUTSIDE_STS_PATTERNS)
    return outcome


def sts_failed(outcome: Negotiation) -> Negotiation:
    """A session that failed before TLS under an enforced policy: no STARTTLS, or a
    certificate not valid for the MX name, are the policy's failures."""
    if outcome.failure is Failure.NO_STARTTLS:
        return Negotiation(None, Failure.STS_NO_STARTTLS, outcome.detail)
    if outcome.failure is Failure.CERTIFICATE:
        return Negotiation(None, Failure.STS_CERTIFICATE, outcome.detail)
    return outcome

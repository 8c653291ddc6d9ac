"""Which transport policy governs a session with one host, and what it makes of it.

Pure functions of (what the sender applies, what the destination publishes, the host)
-> a ``HostRule``, and of (rule, the plain TLS outcome) -> the outcome under the
policy. Each table row cites modern-policies.md (MP) or RFC sections; the tests pin
them (``tests/test_policies.py``).

* **DANE** (RFC 7672, MP 2, 8). Only in a DNSSEC-secure zone. A bogus or failing TLSA
  lookup means the host is not used (no connection; s.2.1.2). Usable records that
  match: TLS, authenticated by the records (DANE-EE: key only, no name or expiry
  check; DANE-TA: the chain and the name). Usable records that do not match: no
  delivery. Only unusable records: TLS required, not authenticated. Mandatory DANE
  (Postfix ``dane-only``, EXO ``SmtpDaneMode Mandatory``) refuses a host without
  secure usable records.
* **MTA-STS enforce** (RFC 8461 s.4, s.5; MP 1c, 5, 8). The MX must match the
  policy's ``mx`` patterns, offer STARTTLS and present a certificate valid for its
  name. RFC checkers skip a non-matching MX ("*." = one label); Postfix 3.7 with its
  plug-in matches only the certificate against the patterns ("*." = any depth) and
  so connects and fails "Server certificate not verified". ``testing`` and ``none``
  never change delivery.
* **Precedence**: DANE over MTA-STS (RFC 8461 s.2; EXO), or MTA-STS replacing DANE
  (Postfix + plug-in, MP 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sim.policy.sts_cache import STS_CACHE_RULES, StsCacheRules
from sim.tls.negotiation import Negotiation
from sim.vocabulary import CertificateProblem, Channel, DaneUse, Dnssec, Failure, ServerTls, Tlsa

MxCheck = Literal["mx-name", "certificate"]
PolicyType = Literal["sts", "tlsa"]


@dataclass(frozen=True, slots=True)
class SenderPolicies:
    """The transport policies one sending queue applies."""

    sts: bool = False
    dane: DaneUse = "none"
    sts_mx_check: MxCheck = "mx-name"
    dane_over_sts: bool = True
    requiretls: bool = False
    reports: bool = False
    sts_testing_reported: bool = False
    sts_cache: StsCacheRules = STS_CACHE_RULES["rfc8461"]
    # Postfix < 3.10 refuses a plug-in answer with policy attributes ("invalid attribute
    # name"): every enforced MTA-STS destination defers (issue 20 s.3, measured on 3.7).
    sts_answer_rejected: bool = False


NONE = SenderPolicies()


class Governs(StrEnum):
    PLAIN = "plain"  # no policy: the queue's own TLS level
    DANE = "dane"  # authenticate by the TLSA records
    DANE_ENCRYPT = "dane-encrypt"  # TLS required, not authenticated (unusable records)
    STS = "sts"  # enforced MTA-STS: TLS with a certificate valid for the MX name
    STS_OUTSIDE = "sts-outside"  # certificate-only checker, MX outside the patterns: fails after TLS
    REFUSE = "refuse"  # the host is not used: no connection


@dataclass(frozen=True, slots=True)
class HostRule:
    governs: Governs
    policy_type: PolicyType | None = None
    failure: Failure | None = None
    detail: str = ""
    usage: int = 3
    tlsa: Tlsa = Tlsa.NONE


PLAIN = HostRule(Governs.PLAIN)
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


@dataclass(frozen=True, slots=True)
class Zones:
    """DNSSEC state per zone (issue 20 s.3): the MX RRset's (the destination's zone) and
    the MX host name's, which may be another zone (an MX at a provider)."""

    mx: Dnssec
    host: Dnssec

    @classmethod
    def of(cls, mx: Dnssec, host: Dnssec | None = None) -> Zones:
        return cls(mx, mx if host is None else host)


FAILING = (Dnssec.BOGUS, Dnssec.LOOKUP_FAILS)


def mx_lookup_detail(domain: str) -> str:
    """Postfix's text for a failing MX lookup (MP 8: ``4.4.3``, measured)."""
    return f"Host or domain name not found. Name service error for name={domain} type=MX: Host not found, try again"


def dane_rule(
    dane: DaneUse, zones: Zones, tlsa: Tlsa, usage: int, host: str = "host", domain: str = "domain"
) -> HostRule | None:
    """The DANE row for one host, or ``None`` when DANE does not govern it (MP 8, and
    issue 20 s.3 measured on Postfix 3.7.11).

    A DANE sender has a validating resolver: a bogus or failing MX RRset leaves it no
    MX at all (4.4.3, no connection). ``dane-only`` refuses an insecure MX RRset before
    any TLSA lookup; ``dane`` looks TLSA up in the host's own zone, so a signed host
    under an insecure MX RRset is still governed by its records."""
    if dane == "none":
        return None
    if zones.mx in FAILING:
        return HostRule(Governs.REFUSE, None, Failure.MX_LOOKUP, mx_lookup_detail(domain))
    if dane == "mandatory" and zones.mx is not Dnssec.SECURE:
        return HostRule(Governs.REFUSE, "tlsa", Failure.DANE_REQUIRED, "non DNSSEC destination")
    zone = zones.host
    if zone in FAILING:  # RFC 7672 s.2.1.2: the host is not used
        return HostRule(Governs.REFUSE, "tlsa", Failure.DANE_LOOKUP, f"for {host}:25")
    if zone is Dnssec.SECURE and tlsa in (Tlsa.MATCH, Tlsa.MISMATCH):
        return HostRule(Governs.DANE, "tlsa", usage=usage, tlsa=tlsa)
    if zone is Dnssec.SECURE and tlsa is Tlsa.UNUSABLE:
        if dane == "mandatory":
            return HostRule(Governs.REFUSE, "tlsa", Failure.DANE_REQUIRED, "TLSA records unusable")
        return HostRule(Governs.DANE_ENCRYPT, "tlsa", tlsa=tlsa)
    if dane == "mandatory":  # MP 8: dane-only, no connection
        detail = "no TLSA records found" if zone is Dnssec.SECURE else "non DNSSEC destination"
        return HostRule(Governs.REFUSE, "tlsa", Failure.DANE_REQUIRED, detail)
    return None


def sts_rule(host: str, patterns: list[str], check: MxCheck) -> HostRule:
    """The enforced MTA-STS row for one host."""
    if any(sts_matches(host, pattern, check) for pattern in patterns):
        return HostRule(Governs.STS, "sts")
    if check == "mx-name":  # skipped as though unreachable (RFC 8461 s.5.1, s.8.4)
        return HostRule(Governs.REFUSE, "sts", Failure.STS_MX_MISMATCH, f"{host} is outside the policy's mx")
    return HostRule(Governs.STS_OUTSIDE, "sts")


def host_rule(
    sender: SenderPolicies,
    zones: Zones,
    host: str,
    tlsa: Tlsa,
    usage: int,
    enforced_patterns: list[str] | None,
    domain: str = "domain",
) -> HostRule:
    """The rule for a session with ``host``; ``enforced_patterns`` when an enforced
    MTA-STS policy is in effect for the sender (else ``None``)."""
    dane = dane_rule(sender.dane, zones, tlsa, usage, host, domain)
    if dane is not None and dane.failure is Failure.MX_LOOKUP:
        return dane  # no MX at all: no policy can apply
    sts = None
    if sender.sts and enforced_patterns:
        sts = REJECTED if sender.sts_answer_rejected else sts_rule(host, enforced_patterns, sender.sts_mx_check)
    if sender.dane_over_sts:
        return dane or sts or PLAIN
    return sts or dane or PLAIN


def under_rule(rule: HostRule, outcome: Negotiation, served: ServerTls) -> Negotiation:
    """What the session comes to under ``rule``.

    ``outcome`` is the plain session at the level the rule needs: ``verify`` for
    ``STS`` (PKIX against the MX name), ``required`` for the DANE rows and
    ``STS_OUTSIDE``, the queue's own level for ``PLAIN``. ``served`` is the host's
    certificate kind, for the DANE-TA name check.
    """
    governs = rule.governs
    if governs is Governs.PLAIN:
        return outcome
    if governs is Governs.REFUSE:
        return Negotiation(None, rule.failure, rule.detail)
    failure = outcome.failure
    if outcome.channel is None:
        if failure is Failure.HANDSHAKE and governs in (Governs.DANE, Governs.DANE_ENCRYPT):
            # Usable TLSA make TLS mandatory: no plaintext retry, and the destination is
            # throttled as at encrypt (issue 20 s.3, measured on Postfix 3.7).
            return Negotiation(None, Failure.DANE_HANDSHAKE, outcome.detail)
        if failure is Failure.NO_STARTTLS:
            no_tls = Failure.STS_NO_STARTTLS if rule.policy_type == "sts" else Failure.DANE_NO_STARTTLS
            return Negotiation(None, no_tls, outcome.detail)
        if failure is Failure.CERTIFICATE:
            return Negotiation(None, Failure.STS_CERTIFICATE, outcome.detail)
        return outcome
    if governs is Governs.STS_OUTSIDE:
        return Negotiation(None, Failure.STS_CERTIFICATE, CertificateProblem.OUTSIDE_STS_PATTERNS)
    if governs is Governs.DANE:
        # Postfix says only "Server certificate not verified" (MP 8): no detail of ours.
        if rule.tlsa is Tlsa.MISMATCH:
            return Negotiation(None, Failure.DANE_MISMATCH)
        if rule.usage == 2 and served in (ServerTls.NAME_MISMATCH, ServerTls.EXPIRED):
            # DANE-TA checks the chain's names (RFC 7672 s.3.1.2); expiry too (assumption).
            return Negotiation(None, Failure.DANE_MISMATCH)
        return Negotiation(Channel.TLS_VERIFIED)
    return outcome  # DANE_ENCRYPT and STS: as negotiated

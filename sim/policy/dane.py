"""DANE for SMTP (RFC 7672; modern-policies MP 2, 8): which row governs a host, and what
a session comes to under it. Pure functions; ``tests/test_policies.py`` pins each row.

Only in a DNSSEC-secure zone. A bogus or failing TLSA lookup means the host is not
used (no connection; s.2.1.2). Usable records that match: TLS, authenticated by the
records (DANE-EE: key only, no name or expiry check; DANE-TA: the chain and the name).
Usable records that do not match: no delivery. Only unusable records: TLS required, not
authenticated. Mandatory DANE (Postfix ``dane-only``, EXO ``SmtpDaneMode Mandatory``)
refuses a host without secure usable records.
"""

from __future__ import annotations

from sim.policy.rules import FAILING, Governs, HostRule, Zones
from sim.tls.negotiation import Negotiation
from sim.vocabulary import Channel, DaneUse, Dnssec, Failure, ServerTls, Tlsa


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


def under_dane(rule: HostRule, outcome: Negotiation, served: ServerTls) -> Negotiation:
    """A session that negotiated TLS (at ``required``) under a DANE row: authenticated by
    the records, or refused. ``served`` is the host's certificate kind, for DANE-TA's
    name check. Postfix says only "Server certificate not verified" (MP 8): no detail."""
    if rule.governs is not Governs.DANE:
        return outcome  # DANE_ENCRYPT: TLS required, as negotiated
    if rule.tlsa is Tlsa.MISMATCH:
        return Negotiation(None, Failure.DANE_MISMATCH)
    if rule.usage == 2 and served in (ServerTls.NAME_MISMATCH, ServerTls.EXPIRED):
        # DANE-TA checks the chain's names (RFC 7672 s.3.1.2); expiry too (assumption).
        return Negotiation(None, Failure.DANE_MISMATCH)
    return Negotiation(Channel.TLS_VERIFIED)


def dane_failed(outcome: Negotiation) -> Negotiation:
    """A session that failed before TLS under a DANE row. Usable TLSA make TLS mandatory:
    a failed handshake is not retried in plaintext, and the destination is throttled as
    at encrypt (issue 20 s.3, measured on Postfix 3.7)."""
    if outcome.failure is Failure.HANDSHAKE:
        return Negotiation(None, Failure.DANE_HANDSHAKE, outcome.detail)
    if outcome.failure is Failure.NO_STARTTLS:
        return Negotiation(None, Failure.DANE_NO_STARTTLS, outcome.detail)
    return outcome  # no certificate failure: a DANE row negotiates at required (sim/plan/hosts.py)

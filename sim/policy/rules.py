"""The words every transport-policy mechanism shares: what a sender applies
(``SenderPolicies``), which rule governs a session with one host (``HostRule``) and
the DNSSEC state of the zones it is read from (``Zones``).

One module per mechanism decides its rows (``dane``, ``sts``, ``requiretls``; the TLS
level in force in ``tls_level``); ``transport`` says which mechanism governs a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sim.policy.sts_cache import STS_CACHE_RULES, StsCacheRules
from sim.vocabulary import DaneUse, Dnssec, Failure, Tlsa

MxCheck = Literal["mx-name", "certificate"]
PolicyType = Literal["sts", "tlsa"]


@dataclass(frozen=True, slots=True)
class SenderPolicies:
    """The transport policies one sending queue applies."""

    sts: bool = False
    dane: DaneUse = "none"
    sts_mx_check: MxCheck = "mx-name"
    dane_over_sts: bool = True
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

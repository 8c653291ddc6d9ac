"""TLS-RPT session tallies during a run (RFC 8460 s.4; reference modern-policies 4b).

Counts are sessions, not messages: every attempt on a host under a sender that
reports, to a destination that asks for reports (``rua``), by UTC day, policy type
(``sts``, ``tlsa`` or ``no-policy-found``), policy domain (the recipient domain for
MTA-STS, the MX host for DANE: s.1.1), receiving MX and result (``""`` = success).
Refusals made before connecting (a failing TLSA lookup, an MX outside the policy)
count as failed sessions, as Exchange Online reports them (``dnssec-invalid``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sim.vocabulary import CertificateProblem, Channel, Failure, ResultType, StsMode

SessionKey = tuple[str, str, str, str, str, str, int, str, str]
"""(organization-name, contact-info, recipient domain, policy type, MTA-STS mode in force
(``""`` for the other types), policy domain, UTC day number, MX, result)."""


@dataclass(frozen=True, slots=True)
class Reporting:
    """Who reports on one queue's sessions, and where the destination's policies sit."""

    organisation: str
    contact: str
    domain: str  # the recipient domain: the MTA-STS policy domain


class TlsRptLog:
    def __init__(self, day_offset: float = 0.0) -> None:
        self.sessions: Counter[SessionKey] = Counter()
        self.day_offset = day_offset  # seconds from the UTC midnight before the run's start to t = 0

    def session(
        self,
        reporting: Reporting,
        policy_type: str | None,
        mx: str,
        now: float,
        result: ResultType | None,
        mode: StsMode | None = None,
    ) -> None:
        """One session, under ``policy_type`` ("sts", "tlsa" or none); an MTA-STS session
        names the ``mode`` in force (the report's policy-string shows it)."""
        kind = policy_type or "no-policy-found"
        domain = mx if kind == "tlsa" else reporting.domain
        day = int((now + self.day_offset) // 86400)
        result_text = result.value if result else ""
        mode_text = mode.value if mode is not None else ""
        key = (
            reporting.organisation,
            reporting.contact,
            reporting.domain,
            kind,
            mode_text,
            domain,
            day,
            mx,
            result_text,
        )
        self.sessions[key] += 1

    @property
    def total(self) -> int:
        return sum(self.sessions.values())


# Each certificate problem's result type; those not named are a validation-failure.
_CERTIFICATE_RESULTS = {
    CertificateProblem.EXPIRED: ResultType.CERTIFICATE_EXPIRED,
    CertificateProblem.OTHER_NAME: ResultType.CERTIFICATE_HOST_MISMATCH,
    CertificateProblem.OUTSIDE_STS_PATTERNS: ResultType.CERTIFICATE_HOST_MISMATCH,
    CertificateProblem.SELF_SIGNED: ResultType.VALIDATION_FAILURE,
    CertificateProblem.UNTRUSTED_ROOT: ResultType.CERTIFICATE_NOT_TRUSTED,
}
_RESULTS = {
    Failure.NO_STARTTLS: ResultType.STARTTLS_NOT_SUPPORTED,
    Failure.STS_NO_STARTTLS: ResultType.STARTTLS_NOT_SUPPORTED,
    Failure.DANE_NO_STARTTLS: ResultType.STARTTLS_NOT_SUPPORTED,
    Failure.STS_MX_MISMATCH: ResultType.VALIDATION_FAILURE,  # the Google report of modern-policies 1c
    Failure.DANE_MISMATCH: ResultType.TLSA_INVALID,
    Failure.DANE_LOOKUP: ResultType.DNSSEC_INVALID,
    Failure.MX_LOOKUP: ResultType.DNSSEC_INVALID,
    Failure.STS_PLUGIN: ResultType.VALIDATION_FAILURE,  # never reported: Postfix < 3.10 has no TLS-RPT
    Failure.DANE_REQUIRED: ResultType.DANE_REQUIRED,
    Failure.HANDSHAKE: ResultType.VALIDATION_FAILURE,
    Failure.DANE_HANDSHAKE: ResultType.VALIDATION_FAILURE,
}


def result_of(channel: Channel | None, failure: Failure | None, detail: str) -> ResultType | None:
    """The RFC 8460 result of one session: ``None`` for a TLS session, else its failure type.

    A plaintext session is a failure only where a policy asked for TLS; without a policy
    it reports as ``starttls-not-supported`` (the host offered none)."""
    if channel is Channel.TLS_VERIFIED or channel is Channel.TLS_UNVERIFIED:
        return None
    if channel is Channel.PLAINTEXT:
        return ResultType.STARTTLS_NOT_SUPPORTED
    if failure in (Failure.CERTIFICATE, Failure.STS_CERTIFICATE):
        if isinstance(detail, CertificateProblem):
            return _CERTIFICATE_RESULTS.get(detail, ResultType.VALIDATION_FAILURE)
        return ResultType.VALIDATION_FAILURE
    return _RESULTS.get(failure) if failure is not None else None

"""Each mechanism's decision table, row by row, on its pure functions (sim/policy/):
the simulations in test_policies.py show the rows in a run; these pin the functions."""

from __future__ import annotations

import pytest

from sim.policy.dane import dane_rule, under_dane
from sim.policy.requiretls import accepts, under_requiretls
from sim.policy.rules import PLAIN, Governs, SenderPolicies, Zones
from sim.policy.sts import REJECTED, sts_rule, under_sts
from sim.policy.transport import host_rule, under_rule
from sim.tls.negotiation import Negotiation
from sim.vocabulary import CertificateProblem, Channel, Dnssec, Failure, Mechanism, ServerTls, Tlsa

SECURE, INSECURE, BOGUS = Dnssec.SECURE, Dnssec.INSECURE, Dnssec.BOGUS
VERIFIED = Negotiation(Channel.TLS_VERIFIED)
UNVERIFIED = Negotiation(Channel.TLS_UNVERIFIED)
PLAINTEXT = Negotiation(Channel.PLAINTEXT)


@pytest.mark.parametrize(
    ("use", "mx_zone", "host_zone", "tlsa", "governs", "failure"),
    [
        ("none", SECURE, SECURE, Tlsa.MATCH, None, None),  # DANE not applied
        ("opportunistic", BOGUS, SECURE, Tlsa.MATCH, Governs.REFUSE, Failure.MX_LOOKUP),  # no MX at all
        ("mandatory", INSECURE, SECURE, Tlsa.MATCH, Governs.REFUSE, Failure.DANE_REQUIRED),  # dane-only: insecure MX
        ("opportunistic", INSECURE, SECURE, Tlsa.MATCH, Governs.DANE, None),  # the host's own zone decides
        ("opportunistic", SECURE, Dnssec.LOOKUP_FAILS, Tlsa.MATCH, Governs.REFUSE, Failure.DANE_LOOKUP),
        ("opportunistic", SECURE, SECURE, Tlsa.MISMATCH, Governs.DANE, None),
        ("opportunistic", SECURE, SECURE, Tlsa.UNUSABLE, Governs.DANE_ENCRYPT, None),
        ("mandatory", SECURE, SECURE, Tlsa.UNUSABLE, Governs.REFUSE, Failure.DANE_REQUIRED),
        ("opportunistic", SECURE, SECURE, Tlsa.NONE, None, None),  # no records: not governed
        ("mandatory", SECURE, SECURE, Tlsa.NONE, Governs.REFUSE, Failure.DANE_REQUIRED),
        ("opportunistic", INSECURE, INSECURE, Tlsa.MATCH, None, None),  # unsigned: records ignored
    ],
)
def test_dane_rows(use, mx_zone, host_zone, tlsa, governs, failure):
    rule = dane_rule(use, Zones.of(mx_zone, host_zone), tlsa, 3, "mx.d.example", "d.example")
    assert (rule.governs if rule else None, rule.failure if rule else None) == (governs, failure)


def test_dane_authenticates_by_the_records_not_the_certificate():
    match = dane_rule("opportunistic", Zones.of(SECURE), Tlsa.MATCH, 3)
    mismatch = dane_rule("opportunistic", Zones.of(SECURE), Tlsa.MISMATCH, 3)
    trust_anchor = dane_rule("opportunistic", Zones.of(SECURE), Tlsa.MATCH, 2)
    assert under_dane(match, UNVERIFIED, ServerTls.SELF_SIGNED) == VERIFIED  # DANE-EE: key only
    assert under_dane(mismatch, UNVERIFIED, ServerTls.TRUSTED).failure is Failure.DANE_MISMATCH
    assert under_dane(trust_anchor, UNVERIFIED, ServerTls.NAME_MISMATCH).failure is Failure.DANE_MISMATCH


@pytest.mark.parametrize(
    ("host", "check", "governs"),
    [
        ("mx.d.example", "mx-name", Governs.STS),
        ("a.mx.d.example", "mx-name", Governs.REFUSE),  # one label only: skipped, no connection
        ("a.mx.d.example", "certificate", Governs.STS),  # the Postfix plug-in matches any depth
        ("other.example", "certificate", Governs.STS_OUTSIDE),  # connects, then fails the patterns
    ],
)
def test_sts_rows(host, check, governs):
    assert sts_rule(host, ["*.d.example", "mx.d.example"], check).governs is governs


def test_sts_failures_are_the_policys():
    outside = sts_rule("other.example", ["*.d.example"], "certificate")
    assert under_sts(outside, UNVERIFIED) == Negotiation(
        None, Failure.STS_CERTIFICATE, CertificateProblem.OUTSIDE_STS_PATTERNS
    )
    inside = sts_rule("mx.d.example", ["*.d.example"], "mx-name")
    assert under_rule(inside, Negotiation(None, Failure.NO_STARTTLS), ServerTls.NONE).failure is Failure.STS_NO_STARTTLS
    refused = Negotiation(None, Failure.CERTIFICATE, CertificateProblem.EXPIRED)
    assert under_rule(inside, refused, ServerTls.EXPIRED).failure is Failure.STS_CERTIFICATE


@pytest.mark.parametrize(("dane_first", "governs"), [(True, Governs.DANE), (False, Governs.STS)])
def test_precedence_between_dane_and_sts(dane_first, governs):
    sender = SenderPolicies(sts=True, dane="opportunistic", dane_over_sts=dane_first)
    rule = host_rule(sender, Zones.of(SECURE), "mx.d.example", Tlsa.MATCH, 3, ["mx.d.example"])
    assert rule.governs is governs


def test_a_failing_mx_lookup_leaves_no_policy_to_apply_and_a_rejected_answer_refuses():
    sender = SenderPolicies(sts=True, dane="opportunistic", dane_over_sts=False)
    assert host_rule(sender, Zones.of(BOGUS), "mx", Tlsa.MATCH, 3, ["mx"]).failure is Failure.MX_LOOKUP
    rejected = SenderPolicies(sts=True, sts_answer_rejected=True)
    assert host_rule(rejected, Zones.of(INSECURE), "mx", Tlsa.NONE, 3, ["mx"]) is REJECTED
    assert host_rule(SenderPolicies(), Zones.of(SECURE), "mx", Tlsa.MATCH, 3, None) is PLAIN


@pytest.mark.parametrize(
    ("outcome", "governed", "advertises", "failure"),
    [
        (VERIFIED, "tlsa", True, None),  # verified by DANE, advertised: sent
        (VERIFIED, "sts", True, None),
        (VERIFIED, None, True, Failure.REQUIRETLS_UNVERIFIED),  # PKIX alone is not enough
        (UNVERIFIED, "tlsa", True, Failure.REQUIRETLS_UNVERIFIED),
        (VERIFIED, "tlsa", False, Failure.REQUIRETLS),  # no REQUIRETLS in EHLO: 5.7.30
        (PLAINTEXT, None, True, Failure.REQUIRETLS),
        (Negotiation(None, Failure.HOST_DOWN), "tlsa", True, Failure.HOST_DOWN),  # no session: as it was
        (Negotiation(None, Failure.DANE_MISMATCH), "tlsa", True, Failure.REQUIRETLS_UNVERIFIED),
        (Negotiation(None, Failure.NO_STARTTLS), None, True, Failure.REQUIRETLS),
    ],
)
def test_requiretls_rows(outcome, governed, advertises, failure):
    assert under_requiretls(outcome, governed, "mx.d.example", advertises).failure is failure


def test_requiretls_needs_a_sender_that_implements_it():
    assert accepts({Mechanism.REQUIRETLS, Mechanism.DANE})
    assert not accepts({Mechanism.DANE, Mechanism.MTA_STS})

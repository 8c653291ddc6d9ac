"""Which transport policy governs a session with one host, and what it makes of it:
the precedence between the mechanisms, each of which decides its own rows (``dane``,
``sts``; shared words in ``rules``). ``tests/test_policies.py`` pins the tables.

* **Precedence**: DANE over MTA-STS (RFC 8461 s.2; EXO), or MTA-STS replacing DANE
  (Postfix + plug-in, MP 8). A failing MX lookup leaves no MX, so no policy applies.
"""

from __future__ import annotations

from sim.policy.dane import dane_failed, dane_rule, under_dane
from sim.policy.rules import PLAIN, Governs, HostRule, SenderPolicies, Zones
from sim.policy.sts import REJECTED, sts_failed, sts_rule, under_sts
from sim.tls.negotiation import Negotiation
from sim.vocabulary import Failure, ServerTls, Tlsa


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
    by_dane = rule.policy_type == "tlsa"
    if outcome.channel is None:
        return dane_failed(outcome) if by_dane else sts_failed(outcome)
    return under_dane(rule, outcome, served) if by_dane else under_sts(rule, outcome)

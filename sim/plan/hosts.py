"""A queue's hosts under the transport policies its sender applies: what the sender
applies (``sender_policies``), and each host's sessions with and without an enforced
MTA-STS policy (``host_plans``). Both directions of mail build their queues here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from sim.mta.profiles import MtaProfile
from sim.plan.parties import Parties
from sim.plan.plans import HostPlan
from sim.policy.rules import Governs, HostRule, SenderPolicies, Zones
from sim.policy.sts_cache import STS_CACHE_RULES
from sim.policy.tls_level import TlsPolicy
from sim.policy.transport import host_rule, under_rule
from sim.scenario.model import RemoteHost
from sim.scenario.published import MtaStsPolicy
from sim.tls.sessions import Receiver, Sender, SessionPlan
from sim.vocabulary import DaneUse, Dnssec, Mechanism, ServerTls, StsPlugin, StsUse, Tlsa, TlsLevel


@dataclass(frozen=True, eq=False)
class Destination:
    """What a sender's sessions with one destination's hosts depend on, besides the
    MTA-STS policy it applies: ``dnssec`` is the zone of the destination's MX RRset."""

    sender: Sender
    receivers: list[tuple[RemoteHost, Receiver, Tlsa, ServerTls]]
    policies: SenderPolicies
    dnssec: Dnssec
    domain: str


def host_plans(parties: Parties, destination: Destination, sts: MtaStsPolicy | None) -> tuple[HostPlan, ...]:
    """Each host's sessions under the transport policies the sender applies."""
    sender, policies, domain = destination.sender, destination.policies, destination.domain
    found = []
    for host, receiver, tlsa, served in destination.receivers:
        base = parties.sessions(sender, receiver)
        zones = Zones.of(destination.dnssec, host.dnssec)
        rule = host_rule(policies, zones, host.host, tlsa, host.tlsa_usage, None, domain)
        enforced = enforced_rule = None
        if sts is not None and sts.mx:
            enforced_rule = host_rule(policies, zones, host.host, tlsa, host.tlsa_usage, sts.mx, domain)
            enforced = _under(parties, enforced_rule, sender, receiver, base, served)
        sessions = _under(parties, rule, sender, receiver, base, served)
        found.append(HostPlan(host, sessions, rule, enforced, enforced_rule))
    return tuple(found)


def patterns_planner(
    parties: Parties, destination: Destination, sts: MtaStsPolicy | None
) -> Callable[[tuple[str, ...]], tuple[HostPlan, ...]] | None:
    """The host plans under a cached policy whose mx patterns differ from ``sts``'s."""
    if sts is None:
        return None

    def under(patterns: tuple[str, ...]) -> tuple[HostPlan, ...]:
        return host_plans(parties, destination, sts.model_copy(update={"mx": list(patterns)}))

    return under


def _under(
    parties: Parties, rule: HostRule, sender: Sender, receiver: Receiver, base: SessionPlan, served: ServerTls
) -> SessionPlan:
    """The session plan under ``rule``: at the level the rule needs, then mapped."""
    if rule.governs is Governs.PLAIN:
        return base
    if rule.governs is Governs.REFUSE:
        return SessionPlan.constant(under_rule(rule, base.first.negotiation, served))
    level = TlsLevel.VERIFY if rule.governs is Governs.STS else TlsLevel.REQUIRED
    at_level = base if sender.level is level else parties.sessions(replace(sender, level=level), receiver)
    return at_level.mapped(lambda outcome: under_rule(rule, outcome, served))


def sender_policies(
    profile: MtaProfile, sts: StsUse | None, dane: DaneUse | None, plugin: StsPlugin | None = None
) -> SenderPolicies:
    """What a sender applies: its settings, else the product's defaults, within what the
    product can do at all (a product without a mechanism ignores it).

    A product that asks a policy plug-in for MTA-STS (``plugin``, else its default)
    keeps the plug-in's cache rules; it checks the MX name against the patterns only
    when the plug-in forwards the policy's attributes and the product takes them
    (Postfix >= 3.10), else only the certificate; a Postfix before 3.10 refuses an
    answer with attributes (issue 20 s.3). postfix-tlspol puts DANE first."""
    mechanisms = profile.mechanisms
    dane_use: DaneUse = dane or profile.dane_default
    plugin = plugin or profile.sts_plugin
    mx_check, dane_first, cache, rejected = profile.sts_mx_check, profile.dane_over_sts, profile.sts_cache, False
    if plugin is not None:
        with_attributes = plugin != "postfix-mta-sts-resolver"
        forwarded = with_attributes and profile.policy_attributes
        mx_check = profile.sts_mx_check if forwarded else "certificate"
        rejected = with_attributes and not profile.policy_attributes and plugin != "postfix-tlspol"
        dane_first = plugin == "postfix-tlspol" or profile.dane_over_sts
        cache = STS_CACHE_RULES["postfix-tlspol" if plugin == "postfix-tlspol" else "postfix-mta-sts-resolver"]
    return SenderPolicies(
        sts=Mechanism.MTA_STS in mechanisms and (sts or profile.sts_default) == "apply",
        dane=dane_use if Mechanism.DANE in mechanisms else "none",
        sts_mx_check=mx_check,
        dane_over_sts=dane_first,
        reports=Mechanism.TLS_RPT in mechanisms,
        sts_testing_reported=profile.sts_testing_reported,
        sts_cache=cache,
        sts_answer_rejected=rejected,
    )


def policy_of(level: TlsLevel, profile: MtaProfile) -> TlsPolicy:
    """The TLS policy of a queue at ``level`` under ``profile``."""
    fallback = profile.retry.minimal_backoff if profile.handshake_fallback == "after_min_backoff" else None
    return _tls_policy(level, fallback)


@lru_cache(maxsize=64)
def _tls_policy(level: TlsLevel, fallback: float | None) -> TlsPolicy:
    """One immutable policy per value, shared by every queue that has it."""
    return TlsPolicy(level, fallback)

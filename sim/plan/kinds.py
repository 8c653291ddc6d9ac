"""Domains described alike plan alike: a queue planned for one domain serves every
domain of the same kind, with the names filled in.

A generated population has few kinds of domain (each host's TLS capability and policy
settings; names, speed and availability aside): force-tls-2024's 2,000 domains plan
102 queues from scratch, ``benchmarks/planning.py``'s 100,000 one. Planning a domain
from scratch took 33 us (issue 22); a domain whose kind has been planned before needs
only its own names. Only a queue whose plan
holds no name but the domain's and its hosts' is shared so: plain rules (no MTA-STS or
DANE rule, whose details name hosts and patterns), no TLS-RPT address, and a level
below ``verify`` (which checks each host's certificate against its name).
"""

from __future__ import annotations

from collections.abc import Hashable

from sim.plan.plans import HostPlan, QueuePlan, queue_name
from sim.policy.rules import PLAIN
from sim.scenario.model import RemoteDomain, RemoteHost
from sim.vocabulary import TlsLevel

# The host fields a queue's plan reads (sessions, rules, slots), and those it does not:
# names, and what the world's endpoint reads (speed, availability, greylisting) or the
# queue reads from the host itself (REQUIRETLS). tests/test_plan_kinds.py holds the two
# to every field of RemoteHost, so a new field has to be placed in one of them.
PLANNED_FIELDS = (
    "tls",
    "requires_tls",
    "max_connections",
    "tls_versions",
    "client_certificates",
    "trust",
    "certificate_expires_in",
    "tlsa",
    "tlsa_usage",
    "dnssec",
)
UNPLANNED_FIELDS = (
    "host",
    "preference",
    "bandwidth_mbps",
    "session_setup",
    "down",
    "outages",
    "greylist",
    "requiretls",
    "provenance",
)


def domain_kind(domain: RemoteDomain, hosts: list[RemoteHost]) -> Hashable | None:
    """What a queue's plan for ``domain`` (hosts in preference order) depends on besides
    names, or ``None``: its published policies name it (MTA-STS patterns, TLS-RPT)."""
    if domain.mta_sts is not None or domain.tls_rpt is not None:
        return None
    return (
        domain.dnssec,
        tuple(
            (
                h.tls,
                h.requires_tls,
                h.max_connections,
                h.tls_versions,
                h.client_certificates,
                tuple(h.trust),
                h.certificate_expires_in,
                h.tlsa,
                h.tlsa_usage,
                h.dnssec,
            )
            for h in hosts
        ),
    )


def shareable(planned: QueuePlan) -> bool:
    """Whether ``planned`` holds no name but its next hop's and its hosts' (see above)."""
    return (
        planned.policy.level is not TlsLevel.VERIFY
        and planned.sts is None
        and planned.rua is None
        and planned.under_patterns is None
        and all(h.rule is PLAIN and h.enforced is None for h in planned.hosts)
    )


def renamed(template: QueuePlan, next_hop: str, hosts: list[RemoteHost]) -> QueuePlan:
    """``template`` for another domain of its kind: its next hop and hosts. (Written out,
    not ``dataclasses.replace``: that reads every field by name, 2 us more a domain.)"""
    t = template
    return QueuePlan(
        queue_name(t.virtual_server, t.connector, next_hop),
        t.virtual_server,
        t.connector,
        next_hop,
        tuple(HostPlan(host, h.sessions) for host, h in zip(hosts, t.hosts, strict=True)),
        t.policy,
        t.profile,
        t.slots,
        t.policies,
        None,  # sts: a shareable plan has none
        next_hop,
        None,  # rua: nor a TLS-RPT address
        t.reporter,
        None,  # under_patterns: nor an MTA-STS policy
    )

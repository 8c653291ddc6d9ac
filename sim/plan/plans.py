"""What the plan hands a run: per queue its hosts and their sessions over time
(``QueuePlan``, ``HostPlan``), and per (server, domain) its route (``RoutePlan``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sim.mta.profiles import MtaProfile
from sim.policy.rules import NONE as NO_POLICIES
from sim.policy.rules import PLAIN as PLAIN_RULE
from sim.policy.rules import HostRule, SenderPolicies
from sim.policy.tls_level import TlsPolicy
from sim.routing.selector import RouteDecision, RouteState
from sim.scenario.model import RemoteHost
from sim.scenario.published import MtaStsPolicy
from sim.tls.sessions import SessionPlan

UNREACHABLE = "(unreachable)"


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One host a queue delivers to, and what a session with it comes to over time:
    without an enforced MTA-STS policy (``sessions``, DANE included), and with one in
    effect (``enforced``; ``None`` when the sender never enforces MTA-STS here)."""

    host: RemoteHost
    sessions: SessionPlan
    rule: HostRule = PLAIN_RULE
    enforced: SessionPlan | None = None
    enforced_rule: HostRule | None = None


@dataclass(frozen=True, eq=False, slots=True)  # slots: a world of 100,000 domains holds as many
class QueuePlan:
    """One queue: (virtual server, connector, next hop), or an unreachable queue."""

    name: str
    virtual_server: str
    connector: str
    next_hop: str
    hosts: tuple[HostPlan, ...]  # in MX preference order; empty for an unreachable queue
    policy: TlsPolicy
    profile: MtaProfile
    slots: int
    # Transport policies: what the sender applies, and what the next hop publishes.
    policies: SenderPolicies = NO_POLICIES
    sts: MtaStsPolicy | None = None  # the destination's published policy, when the sender applies MTA-STS
    policy_domain: str = ""
    rua: str | None = None  # where TLS-RPT reports for this destination go, when the sender reports
    reporter: tuple[str, str] | None = None  # (organization-name, contact-info) of the reports
    # The hosts under an enforced policy with other mx patterns: a sender applies the
    # policy it has cached, which may be older than the published one (sim/model/sts.py).
    under_patterns: Callable[[tuple[str, ...]], tuple[HostPlan, ...]] | None = None


@dataclass(frozen=True, eq=False, slots=True)
class RoutePlan:
    """Where mail from one server to one domain goes, and why."""

    decision: RouteDecision
    queues: tuple[QueuePlan, ...]  # several: equal-cost routes share the load
    bounce: bool = False  # no match under a profile that returns such mail at once
    # The per-domain ``route`` column: the connector(s), or the state (made once: every
    # message of the route compares against it).
    label: str = field(init=False)

    def __post_init__(self) -> None:
        if self.decision.routes:
            label = "+".join(route.connector.name for route in self.decision.routes)
        else:
            label = "(no route)" if self.bounce else UNREACHABLE
        object.__setattr__(self, "label", label)  # frozen: set once, here

    @property
    def state(self) -> RouteState:
        return self.decision.state


QueueKey = tuple[str, str, str]  # (virtual server, connector, next hop): one queue of ours


def queue_key(planned: QueuePlan) -> QueueKey:
    return (planned.virtual_server, planned.connector, planned.next_hop)


def queue_name(virtual_server: str, connector: str, next_hop: str) -> str:
    """The name of our queue through ``connector`` to ``next_hop`` (tables and figures
    show it: ``VS|connector|next hop``)."""
    return f"{virtual_server}|{connector}|{next_hop}"


def sender_key(sender: str, part: int = 0) -> str:
    """The name of a remote sender's queue for us: its domain, and ``#n`` for the n-th
    share of its mail with an observed failure."""
    return f"{sender}#{part}" if part else sender


def sender_of(key: str) -> str:
    return key.split("#", 1)[0]

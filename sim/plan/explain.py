"""What ``tlssim route`` prints: a planned route as plain data, with the predicted
session with each host and every candidate's verdict."""

from __future__ import annotations

from typing import Any

from sim.mta.profiles import MtaProfile
from sim.plan.plans import HostPlan, QueuePlan, RoutePlan
from sim.tls.negotiation import Negotiation
from sim.vocabulary import Channel, Failure, TlsLevel


def explain(planned: RoutePlan, profile: MtaProfile, source_server: str, domain: str) -> dict[str, Any]:
    """The route of mail from ``source_server`` (under ``profile``) to ``domain`` as plain
    data (what ``tlssim route --json`` prints): state, connector, next hop, queue, TLS
    level in force, the predicted session with each host, and every candidate's verdict."""
    decision = planned.decision
    chosen = decision.chosen
    queue = planned.queues[0] if chosen is not None else None
    next_hop: str | None = None
    if chosen is not None and queue is not None:
        if chosen.connector.delivery == "smart_host":
            next_hop = f"smart host {queue.next_hop}"
        elif queue.next_hop != domain:
            next_hop = f"smart host {queue.next_hop} (virtual server)"
        else:
            next_hop = f"MX of {domain}"
    return {
        "recipient_domain": domain,
        "from": source_server,
        "profile": profile.name,
        "state": decision.state.value,
        "reason": decision.reason or None,
        "connector": chosen.connector.name if chosen else None,
        "virtual_server": chosen.virtual_server if chosen else None,
        "next_hop": next_hop,
        "queue": planned.queues[0].name if planned.queues else None,
        "tls_level": queue.policy.level.value if queue else None,
        "load_shared_with": [r.connector.name for r in decision.routes[1:]],
        "ndr": profile.no_route.code if planned.bounce else None,
        "mx": [session_outcome(queue, host) for host in queue.hosts] if queue else [],
        "candidates": [c.as_dict() for c in decision.candidates],
    }


def session_outcome(queue: QueuePlan, host: HostPlan, at: float = 0.0) -> dict[str, object]:
    """What a session of ``queue`` with ``host`` comes to at simulated time ``at``:
    ``tls-verified``, ``tls``, ``plaintext``, or the failure with the product's status."""
    found = _outcome(queue, host, host.sessions.at(at).negotiation)
    if host.rule.policy_type is not None:
        found["transport_policy"] = host.rule.policy_type
    if host.enforced is not None:
        found["under_enforced_mta_sts"] = _outcome(queue, host, host.enforced.at(at).negotiation)["outcome"]
    return found


def _outcome(queue: QueuePlan, host: HostPlan, negotiation: Negotiation) -> dict[str, object]:
    channel = negotiation.channel
    if channel is not None:
        names = {Channel.TLS_VERIFIED: "tls-verified", Channel.TLS_UNVERIFIED: "tls", Channel.PLAINTEXT: "plaintext"}
        return {"host": host.host.host, "preference": host.host.preference, "outcome": names[channel]}
    failure = negotiation.failure or Failure.HOST_DOWN
    status = queue.profile.status(failure).with_detail(negotiation.detail)
    found: dict[str, object] = {
        "host": host.host.host,
        "preference": host.host.preference,
        "outcome": failure.value,
        "status": str(status),
        "permanent": negotiation.permanent,
    }
    if (
        failure is Failure.HANDSHAKE
        and queue.policy.plaintext_fallback_after is not None
        and (queue.policy.level is TlsLevel.OPPORTUNISTIC)
    ):
        found["then"] = f"plaintext once the message has waited {queue.policy.plaintext_fallback_after:g} s"
    return found

"""Mail to us: the queue a remote sender holds for us, with our MX hosts (or the
virtual server it is sent to) as the hosts it delivers to."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sim.mta.profiles import get_profile
from sim.pki.authorities import observed_certificate
from sim.plan.hosts import Destination, host_plans, patterns_planner, policy_of, sender_policies
from sim.plan.parties import Parties
from sim.plan.plans import QueuePlan, sender_key
from sim.scenario.model import InboundFlow, RemoteHost
from sim.scenario.published import Outage
from sim.tls.sessions import Receiver, Sender
from sim.vocabulary import ClientTls, Dnssec, ServerTls, TlsLevel


def sender_queue(parties: Parties, flow: InboundFlow, part: int = 0) -> QueuePlan:
    """The queue at a remote sender that holds its mail for us: to ``flow.to``, or to
    the MX hosts we publish, or to our first virtual server. ``part`` n > 0 is the
    share of its mail whose MTAs met ``flow.observed_failures[n - 1]``."""
    observed = flow.observed_failures[part - 1] if part else None
    level = TlsLevel.OFF if flow.tls is ClientTls.NONE else flow.tls_level
    sender_profile = get_profile(flow.profile).with_delivery(flow.delivery)
    # Remote senders are assumed to hold whatever certificate their own TLS needs.
    sender = Sender(level, sender_profile.tls_versions, roots=parties.trusted_roots(flow.trust))
    ours = parties.organisation.publishes
    targets: list[tuple[str, str, list[Outage]]]
    published_mx = sorted(ours.mx, key=lambda mx: mx.preference) if ours is not None else []
    ours_mx = flow.to is None and bool(published_mx)
    if ours_mx:
        targets = [(mx.host, mx.virtual_server, mx.down) for mx in published_mx]
        if observed is not None:  # those sessions reached that MX: it is where they start
            targets.sort(key=lambda target: target[0] != observed.mx)
    else:
        target = flow.to or next(iter(parties.virtual_servers))
        targets = [(parties.certificates[target].names[0], target, [])]
    policies = sender_policies(sender_profile, flow.mta_sts, flow.dane, flow.mta_sts_plugin)
    receivers = []
    for name, virtual_server, down in targets:
        receiver = parties.us_as_receiver(virtual_server, flow.tls, name)
        if observed is not None and observed.mx == name:
            receiver = _as_observed(receiver, observed.result, parties.start)
        # Our side as a host the sender connects to (no greylisting).
        us = RemoteHost.model_construct(
            host=name, session_setup=0.5, bandwidth_mbps=10.0, tlsa_usage=3, down=down, requiretls=False
        )
        tlsa = parties.our_tlsa(name, virtual_server)
        receivers.append((us, receiver, tlsa, receiver.tls))
    dnssec = ours.dnssec if ours is not None else Dnssec.INSECURE
    sts = ours.mta_sts if ours is not None and policies.sts else None
    destination = Destination(sender, receivers, policies, dnssec, ours.domain if ours is not None else "")
    reporter = sender_profile.reporter
    if reporter is not None and not reporter[0]:  # it reports as its own domain
        reporter = (flow.from_domain, f"{reporter[1]}@{flow.from_domain}")
    # The receiver: the virtual server, or our MX host names in preference order.
    receiving = targets[0][1] if len(targets) == 1 and not ours_mx else ";".join(t[0] for t in targets)
    return QueuePlan(
        f"{sender_key(flow.from_domain, part)}|{receiving}",
        targets[0][1],
        "",
        ours.domain if ours is not None else targets[0][0],
        host_plans(parties, destination, sts),
        policy_of(level, sender_profile),
        sender_profile,
        20,
        policies,
        sts,
        ours.domain if ours is not None else "",
        ours.tls_rpt if ours is not None and policies.reports else None,
        reporter,
        patterns_planner(parties, destination, sts),
    )


def _as_observed(receiver: Receiver, result: str, start: dt.datetime) -> Receiver:
    """Our MX host as a sender's MTAs met it, by its TLS-RPT reports."""
    if result == "starttls-not-supported":
        return replace(receiver, tls=ServerTls.NONE, certificate=None)
    return replace(receiver, certificate=observed_certificate(result, receiver.name, start))

"""What becomes of the mail still queued when a run ends.

A queued message is *doomed* when its destination can never accept it under the policy
in force: every host's session, as it stands at the end and stays (the session plans are
piecewise constant and hold their last outcome), fails for a reason time does not cure
(no STARTTLS under mandatory TLS, a failing handshake with no plaintext fallback, a
certificate that does not verify, a transport policy that refuses the host, no route).
It will be returned at its expiry instant (arrival + expiration timeout), which the run
knows. Otherwise it is *pending*: a host that is down, greylisting, or able to carry it
may yet deliver it. Mail in transfer at the end is pending (it is being delivered).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sim.model.queue import DeliveryQueue
from sim.scenario.published import MtaStsPolicy
from sim.vocabulary import NO_CONNECTION, Failure, StsMode

CURABLE = frozenset({Failure.HOST_DOWN, Failure.GREYLISTED})
"""Failures that time cures: the host comes back, the greylist lets the retry through."""


def destination_open(queue: DeliveryQueue, now: float) -> bool:
    """Whether any host of ``queue`` may yet take its mail, as ``_connect`` would try
    them from ``now`` on (a message waits long enough for any plaintext fallback)."""
    return open_under(queue, now, queue.sts.in_effect(now) if queue.sts is not None else None)


def open_under(queue: DeliveryQueue, now: float, sts: MtaStsPolicy | None) -> bool:
    """``destination_open`` under the MTA-STS policy ``sts`` (None: no policy applied)."""
    enforced = sts is not None and sts.mode is StsMode.ENFORCE
    for link in queue.links_under(sts):
        endpoint = link.endpoint
        if endpoint.has_outages and not endpoint.is_up(now):
            return True  # down now, back later
        plan = link.enforced if enforced and link.enforced is not None else link.plan
        segment = plan.at(now)
        outcome = segment.negotiation
        if outcome.failure in NO_CONNECTION:
            continue  # refused before connecting: the next host is tried
        if outcome.failure is Failure.HANDSHAKE and queue.policy.falls_back(math.inf):
            outcome = segment.fallback
        if outcome.channel is not None or outcome.failure in CURABLE:
            return True
        if outcome.permanent:
            return False  # a 5xx: returned at the next attempt
    return False


@dataclass
class QueuedFates:
    """Per domain: the doomed messages and the instant the last of them is returned."""

    doomed: Counter[str] = field(default_factory=Counter)
    returned_by: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.doomed.values())

    @property
    def last_return(self) -> float:
        return max(self.returned_by.values(), default=math.nan)


def queued_fates(queues: Iterable[DeliveryQueue], now: float) -> QueuedFates:
    """Classify every message still waiting in ``queues`` at ``now``."""
    fates = QueuedFates()
    for queue in queues:
        if queue.depth == 0 or destination_open(queue, now):
            continue
        # A sender whose cached MTA-STS policy shuts the destination refetches it at a
        # known instant: mail still queued then goes under the published policy.
        reopens = math.inf
        if queue.sts is not None and open_under(queue, now, queue.sts.published):
            reopens = queue.sts.refetch_due(now)
        expiration = queue.profile.expiration_timeout
        for message in queue.waiting():
            if message.arrival + expiration > reopens:
                continue  # pending: still queued when the sender sees the policy that opens it
            domain = message.stats.domain
            fates.doomed[domain] += 1
            returned = message.arrival + expiration
            if returned > fates.returned_by.get(domain, -math.inf):
                fates.returned_by[domain] = returned
    return fates

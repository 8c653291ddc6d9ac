"""Streaming metrics of one run: counters, NDR tallies, queue depth, a latency sketch.

Memory grows with the number of domains and queues and with the sampling grid, never
with the number of messages.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sim.model.message import DomainStats, Message
from sim.model.sketch import LatencySketch
from sim.model.tlsrpt_tally import TlsRptLog
from sim.vocabulary import Channel, Status

TraceRecord = tuple[float, int, str, str]
"""(time in seconds, message id, event, detail): the exact timeline, when tracing."""


class Metrics:
    def __init__(self, *, trace: bool = False) -> None:
        self.domains: dict[str, DomainStats] = {}
        self.ndr: Counter[tuple[str, str, str]] = Counter()
        self.delays = LatencySketch()
        self.returns = LatencySketch()  # arrival to NDR, of returned mail
        self.messages = 0
        self.delivered = 0
        self.delivered_tls = 0
        self.delivered_plaintext = 0
        self.bounced = 0
        self.expired = 0
        self.delay_notices = 0
        self.deferrals = 0  # failed attempts that left mail queued
        self.deferrals_suspended = 0  # Postfix: deferred without a connection, destination dead
        self.connections = 0  # sessions opened with a host that answered
        self.rejections = 0  # messages refused with a 5xx at once
        self.refusals = 0  # hosts not used for a transport policy (no connection)
        self.tlsrpt = TlsRptLog()
        self.depth = 0
        self.peak_depth = 0
        self.peak_time = 0.0
        self.samples: list[tuple[float, str, int, bool]] = []
        # Cumulative (time, delivered, NDRs, expired, delay notices) at each sample instant.
        self.events: list[tuple[float, int, int, int, int]] = []
        self.trace: list[TraceRecord] | None = [] if trace else None

    def domain(self, name: str) -> DomainStats:
        stats = self.domains.get(name)
        if stats is None:
            stats = self.domains[name] = DomainStats(name)
        return stats

    def accepted(self, message: Message) -> None:
        self.messages += 1
        message.stats.messages += 1
        if self.trace is not None:
            self.trace.append((message.arrival, message.id, "accepted", message.stats.domain))

    def delivered_message(self, message: Message, channel: Channel, now: float) -> None:
        self.depth -= 1
        message.done = True
        stats = message.stats
        delay = now - message.arrival
        self.delivered += 1
        stats.delivered += 1
        if channel is Channel.PLAINTEXT:
            self.delivered_plaintext += 1
            stats.delivered_plaintext += 1
        else:
            self.delivered_tls += 1
            stats.delivered_tls += 1
            if channel is Channel.TLS_VERIFIED:
                stats.delivered_verified += 1
        self.delays.add(delay)
        stats.delay_sum += delay
        if delay > stats.delay_max:
            stats.delay_max = delay
        if self.trace is not None:
            self.trace.append((now, message.id, "delivered", channel.value))

    def bounced_message(
        self, message: Message, status: str, reason: str, now: float, *, queued: bool, expired: bool = False
    ) -> None:
        if queued:
            self.depth -= 1
        message.done = True
        self.bounced += 1
        self.returns.add(now - message.arrival)
        message.stats.ndr += 1
        if expired:
            self.expired += 1
            message.stats.expired += 1
        self.ndr[(message.stats.domain, status, reason)] += 1
        message.stats.last = Status(status, reason)
        if self.trace is not None:
            self.trace.append((now, message.id, "expired" if expired else "bounced", f"{status} {reason}"))

    def delay_notice(self, message: Message, now: float) -> None:
        self.delay_notices += 1
        message.stats.delay_notices += 1
        if self.trace is not None:
            self.trace.append((now, message.id, "delay-notice", ""))

    def record(self, now: float, message_id: int, event: str, detail: str = "") -> None:
        if self.trace is not None:
            self.trace.append((now, message_id, event, detail))

    def summary_counts(self) -> dict[str, Any]:
        return {
            "out_messages": self.messages,
            "out_delivered": self.delivered,
            "out_delivered_tls": self.delivered_tls,
            "out_delivered_plaintext": self.delivered_plaintext,
            "out_ndr": self.bounced,
            "out_expired": self.expired,
            "out_delay_dsn": self.delay_notices,
            "out_deferrals": self.deferrals,
            "out_deferrals_suspended": self.deferrals_suspended,
            "out_connections": self.connections,
            "out_policy_refusals": self.refusals,
        }

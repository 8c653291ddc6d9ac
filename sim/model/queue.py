"""A next-hop queue: the messages for one (virtual server, connector, destination).

Queues are retried as a whole (reference/mta-semantics.md 1b): when a connection
cannot be made the queue goes to Retry and every message in it waits for the next
attempt, on the profile's schedule. The queue is a small state machine driven by
SimPy callbacks, with no process per message: a transfer in flight is one Timeout, a
queue in Retry is one Timeout, and the expiry/delay-notice deadlines of all its
messages share one Timeout armed for the earliest of them. Messages leave a queue in
arrival order, so those deadlines are in order too.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import simpy
from simpy.events import Timeout

from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.mta.profiles import MtaProfile
from sim.tls.negotiation import Negotiation

_EPSILON = 1e-9  # float slack when a timer lands on its own deadline


@dataclass(frozen=True, slots=True)
class HostLink:
    """A remote host as one queue sees it: its name, how it answers us, how fast it takes mail."""

    name: str
    negotiation: Negotiation
    session_setup: float
    seconds_per_byte: float

    def transfer_time(self, size: float) -> float:
        return self.session_setup + size * self.seconds_per_byte


class NextHopQueue:
    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        hosts: list[HostLink],
        profile: MtaProfile,
        slots: int,
        metrics: Metrics,
    ) -> None:
        self.env = env
        self.name = name
        self.hosts = hosts  # in MX preference order
        self.profile = profile
        self.slots = slots
        self.metrics = metrics
        self.pending: deque[Message] = deque()
        self.watch: deque[Message] = deque()  # messages that may still need a delay notice
        self.busy = 0
        self.submitted = 0
        self.in_retry = False
        self.failures = 0
        self.last_failure: Negotiation | None = None
        self.timer_armed = False
        self._expiration = profile.expiration_timeout
        self._notice = profile.delay_notification

    @property
    def depth(self) -> int:
        return len(self.pending) + self.busy

    def submit(self, message: Message) -> None:
        self.submitted += 1
        self.pending.append(message)
        if self._notice is not None:
            self.watch.append(message)
        self.metrics.entered_queue(self.env.now)
        if not self.timer_armed:
            self._arm_timer()
        if not self.in_retry and self.busy < self.slots:
            self._pump()

    # -- delivery ----------------------------------------------------------------------

    def _connect(self) -> tuple[HostLink | None, Negotiation | None]:
        """Try the hosts in preference order; the first that carries mail or says 5xx wins."""
        last = None
        for host in self.hosts:
            outcome = host.negotiation
            if outcome.delivers or outcome.permanent:
                return host, outcome
            last = outcome
        return None, last

    def _pump(self) -> None:
        """Start transfers while there is mail, a free slot and the queue is not in Retry."""
        env, pending, metrics = self.env, self.pending, self.metrics
        while pending and self.busy < self.slots and not self.in_retry:
            host, outcome = self._connect()
            if metrics.trace is not None:
                metrics.record(env.now, pending[0].id, "attempt", host.name if host else "all hosts")
            if host is None or outcome is None:
                self._enter_retry(outcome)
                return
            self.failures = 0
            message = pending.popleft()
            if outcome.permanent:
                metrics.bounced_message(message, outcome.status or "5.0.0", outcome.reason, env.now, queued=True)
                continue
            self.busy += 1
            transfer = Timeout(env, host.transfer_time(message.size), (message, outcome))
            transfer.callbacks.append(self._transfer_done)

    def _transfer_done(self, event: Any) -> None:
        message, outcome = event.value
        self.busy -= 1
        self.metrics.delivered_message(message, outcome.channel, self.env.now)
        watch = self.watch
        while watch and watch[0].done:
            watch.popleft()
        self._pump()

    def _enter_retry(self, outcome: Negotiation | None) -> None:
        self.in_retry = True
        self.failures += 1
        self.last_failure = outcome
        self.metrics.deferrals += 1
        if self.metrics.trace is not None and self.pending:
            reason = f"{outcome.status} {outcome.reason}" if outcome else "no host"
            self.metrics.record(self.env.now, self.pending[0].id, "deferred", reason)
        wait = Timeout(self.env, self.profile.retry.after_failures(self.failures))
        wait.callbacks.append(self._retry_due)

    def _retry_due(self, _event: Any) -> None:
        self.in_retry = False
        if not self.pending:
            self.failures = 0  # an empty queue disappears; the next message starts afresh
            return
        self._pump()

    # -- expiry and delay notices ---------------------------------------------------------

    def _arm_timer(self) -> None:
        due = math.inf
        if self.pending:
            due = self.pending[0].arrival + self._expiration
        watch = self.watch
        while watch and watch[0].done:
            watch.popleft()
        if watch and self._notice is not None:
            due = min(due, watch[0].arrival + self._notice)
        if due == math.inf:
            return
        self.timer_armed = True
        timer = Timeout(self.env, max(0.0, due - self.env.now))
        timer.callbacks.append(self._timer_due)

    def _timer_due(self, _event: Any) -> None:
        self.timer_armed = False
        now = self.env.now
        limit = now + _EPSILON
        pending, metrics = self.pending, self.metrics
        while pending and pending[0].arrival + self._expiration <= limit:
            message = pending.popleft()
            failure = self.last_failure
            reason = self.profile.expiry_text + (f" (last error: {failure.reason})" if failure else "")
            metrics.bounced_message(message, self.profile.expiry_status, reason, now, queued=True, expired=True)
        if self._notice is not None:
            watch, notice = self.watch, self._notice
            while watch:
                message = watch[0]
                if message.done:
                    watch.popleft()
                elif message.arrival + notice <= limit:
                    watch.popleft()
                    metrics.delay_notice(message, now)
                else:
                    break
        self._arm_timer()

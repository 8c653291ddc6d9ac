"""Per-message backoff, as Postfix's queue manager does it (reference 3b, 3d, 3e).

A message that cannot be delivered is deferred on its own: it waits clamp(its age,
minimal_backoff_time, maximal_backoff_time) and is picked up by the next scan of the
deferred queue, every queue_run_delay. Expiry and the delay warning are checked only
after a failed attempt, and the bounce carries the last deferral's status. A
connection failure, or a TLS failure at a mandatory level, marks the destination dead
for minimal_backoff_time: mail for it is deferred without an attempt. A failed
handshake under ``may`` does not (HEAD smtp_proto.c, SMTP_MISC_FAIL_NONE).
"""

from __future__ import annotations

import heapq
from typing import Any

from simpy.events import Timeout

from sim.model.message import Message
from sim.model.queue import EPSILON, DeliveryQueue
from sim.vocabulary import Failure, Status


class BackoffQueue(DeliveryQueue):
    uses_watch = False  # notices are checked per message, after its failed attempts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Deferred mail by the queue run that will pick it up: a message eligible at e is
        # scanned at the first run at or after e, so messages are bucketed by that run
        # (a dict of lists plus a heap of run times), not kept in a per-message heap.
        self.deferred: dict[float, list[Message]] = {}
        self._runs: list[float] = []
        self._deferred_count = 0
        self.dead_until = -1.0
        self.dead_status: Status | None = None
        self.scan_armed = False

    @property
    def depth(self) -> int:
        return len(self.pending) + self.busy + self._deferred_count

    def _pump(self) -> None:
        env, pending = self.env, self.pending
        while pending and self.busy < self.slots:
            now = env.now
            message = pending.popleft()
            if now < self.dead_until and self.dead_status is not None:
                self._defer(message, self.dead_status, now)
                continue
            link, outcome = self._connect(message, now)
            self._trace_attempt(message, link)
            if link is not None:
                self._deliver(message, link, outcome)
                continue
            failure = outcome.failure or Failure.HOST_DOWN
            status = self._status_of(outcome)
            self._defer(message, status, now)
            if self.policy.throttles(failure):
                self.dead_until = now + self.profile.retry.minimal_backoff
                self.dead_status = status

    def _defer(self, message: Message, status: Status, now: float) -> None:
        self.metrics.deferrals += 1
        message.last = status
        self._trace(message, "deferred", str(status))
        age = now - message.arrival
        if age >= self._expiration - EPSILON:
            self._expire(message, now)
            return
        notice = self._notice
        if notice is not None and not message.notified and age >= notice - EPSILON:
            message.notified = True
            self.metrics.delay_notice(message, now)
        retry = self.profile.retry
        run = retry.run_at_or_after(now + retry.backoff(age))
        if run <= now:
            run = retry.run_after(now)
        bucket = self.deferred.get(run)
        if bucket is None:
            bucket = self.deferred[run] = []
            heapq.heappush(self._runs, run)
        bucket.append(message)
        self._deferred_count += 1
        self._arm_scan()

    def _arm_scan(self) -> None:
        if self.scan_armed or not self._runs:
            return
        self.scan_armed = True
        Timeout(self.env, max(0.0, self._runs[0] - self.env.now)).callbacks.append(self._scan)

    def _scan(self, _event: Any) -> None:
        self.scan_armed = False
        limit = self.env.now + EPSILON
        runs = self._runs
        while runs and runs[0] <= limit:
            bucket = self.deferred.pop(heapq.heappop(runs))
            self._deferred_count -= len(bucket)
            self.pending.extend(bucket)
        self._arm_scan()
        self._pump()

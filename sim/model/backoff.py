"""Per-message backoff and per-destination concurrency, as Postfix's queue manager does it
(reference 3d, 3e, corrected by 6a and 6b).

**The retry grid (6a).** Postfix works in whole seconds: when a delivery fails it
stamps the message's deferred file ``event_time() + clamp(age)``, where ``age =
event_time() - create_time``, clamped to [minimal_backoff_time, maximal_backoff_time];
the deferred queue is scanned every queue_run_delay, and a scan takes every file due
within the next second (``qmgr_active_feed`` skips only ``mtime > now + 1``). Expiry
(``event_time() >= create_time + maximal_queue_lifetime``) and the delay warning
(``event_time() >= warn_time - 1``, only on a pass that does not expire) are checked
after a failed delivery; the bounce carries the last deferral's status.

**Concurrency and dead destinations (6b).** Deliveries to one destination start
``initial_destination_concurrency`` at a time, in parallel, each taking its session
time. A failed session adds 1/window to a failure count and lowers the window
(negative feedback 1, qmgr_queue_throttle); when the count reaches the failed-cohort
limit the destination is dead: queued mail is deferred at once with the dead
destination's reason ("delivery temporarily suspended"), without a connection, until
minimal_backoff_time later it is re-enabled. A success resets the count and widens the
window. The in-core queue is discarded when it holds nothing (and is not dead), so the
next mail for the destination starts afresh.

**Backlogs in bulk (issue 13).** Deferred mail is held in buckets keyed by the queue
run that will pick it up, and within a bucket in cohorts (``cohort.py``): runs of
messages in arrival order that move together. Suspending a dead destination's mail
defers a cohort in one step: the expiring, the newly warned and the still-young
messages are found by bisection, and the rest moves to its next bucket untouched. The
result is the same as deferring message by message (a test compares fingerprints);
with a trace kept, every message is deferred on its own so each gets its line.

**TLS (3b, 6a).** A failed handshake under ``may`` is retried in plaintext only when
the message waited at least minimal_backoff_time before entering the active queue
(PREACTIVE_DELAY, whole seconds), and it does not count against the destination.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from sim.model.clock import call_in
from sim.model.cohort import Cohort, arrival_bound
from sim.model.message import DomainStats, Message
from sim.model.queue import NONE_YET, DeliveryQueue
from sim.mta.profiles import DestinationConcurrency
from sim.vocabulary import RETURNS_REQUIRETLS, Failure, Status

_UNLIMITED = DestinationConcurrency(initial=1_000_000, limit=1_000_000, failed_cohort_limit=0)


class BackoffQueue(DeliveryQueue):
    uses_watch = False  # notices are checked per message, after its failed attempts
    in_bulk = True  # cohorts of a dead destination are deferred in one step (tests turn it off)
    __slots__ = (
        "_cohort_limit",
        "_dead_until",
        "_deferred_count",
        "_fail_cohorts",
        "_failure_feedback",
        "_initial",
        "_limit",
        "_max_backoff",
        "_min_backoff",
        "_runs",
        "_scan_interval",
        "dead_status",
        "deferred",
        "scan_armed",
        "window",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Deferred mail by the queue run that will pick it up (a dict of lists plus a
        # heap of run times), not a per-message heap; in each list, messages and cohorts.
        self.deferred: dict[float, list[Message | Cohort]] = {}
        self.pending: deque[Message | Cohort] = NONE_YET  # type: ignore[assignment]
        self._runs: list[float] = []
        self._deferred_count = 0
        self.scan_armed = False
        concurrency = self.profile.concurrency or _UNLIMITED
        self._initial = min(concurrency.initial, self.slots)
        self._limit = min(concurrency.limit, self.slots)
        self._cohort_limit = concurrency.failed_cohort_limit
        self.window = self._initial
        self._fail_cohorts = 0.0
        self._failure_feedback = 0.0
        self.dead_status: Status | None = None  # set while the destination is dead
        retry = self.profile.retry
        assert retry.queue_run_delay is not None
        self._scan_interval = retry.queue_run_delay
        self._min_backoff, self._max_backoff = retry.minimal_backoff, retry.maximal_backoff
        self._dead_until = 0.0

    @property
    def depth(self) -> int:
        return _count(self.pending) + self.busy + self._deferred_count

    def waiting(self) -> Iterator[Message]:
        yield from super().waiting()
        for bucket in self.deferred.values():
            for item in bucket:
                if isinstance(item, Cohort):
                    yield from item.messages[item.start :]
                else:
                    yield item

    def accept(self, message: Message) -> None:
        message.activated = self.env.now
        super().accept(message)

    # -- the active queue ------------------------------------------------------------------

    def _pump(self) -> None:
        pending = self.pending
        if self.dead_status is not None:
            # Re-enabling comes ahead of a scan due at the same instant: real sessions
            # take time, so a real destination dies a little after the grid point its
            # mail was tried at, and comes back a little after a later scan's grid point
            # (6b: 3 messages -> 21 connections needs this order).
            if self.env.now < self._dead_until - 1e-9:
                self._suspend_all()
                return
            self._revive()
        while pending and self.busy < self.window:
            now = self.env.now
            head = pending[0]
            if isinstance(head, Cohort):
                message = head.popleft()
                if not head:
                    pending.popleft()
            else:
                message = pending.popleft()  # type: ignore[assignment]
            link, outcome, spent = self._connect(message, now)
            self._trace_attempt(message, link)
            if link is not None:
                self._deliver(message, link, outcome, spent)
                continue
            # The session takes its set-up time before the failure is known; meanwhile
            # its slot is busy, so a first batch of ``window`` sessions runs in parallel.
            self.busy += 1
            call_in(self.env, spent, self._session_failed, (message, outcome))
        self._discard_if_idle()

    def _session_failed(self, event: Any) -> None:
        message, outcome = event.value
        self.busy -= 1
        failure = outcome.failure or Failure.HOST_DOWN
        status = self._status_of(outcome)
        message.stats.last_failure = failure.value
        if failure in RETURNS_REQUIRETLS:
            # Every MX was tried (soft non-final): the REQUIRETLS message is returned.
            self.metrics.bounced_message(message, status.code, status.text, self.env.now, queued=True)
            self._pump()
            return
        if self.dead_status is None and self.policy.throttles(failure):
            self._throttle(status)
        self._defer(message, status, self.env.now)
        self._pump()

    def _throttle(self, status: Status) -> None:
        """qmgr_queue_throttle: one failed session against the destination."""
        self._fail_cohorts += 1.0 / self.window
        if self._cohort_limit and self._fail_cohorts >= self._cohort_limit:
            self.dead_status = status
            self.in_retry = True
            # event_request_timer(qmgr_queue_unthrottle_wrapper, queue, var_min_backoff_time)
            # sets the wake-up at time(0) + delay, whole seconds (qmgr_queue.c
            # qmgr_queue_throttle; events.c event_request_timer: "timer->when =
            # event_present + delay" after time(&event_present)).
            now = self.env.now
            self._dead_until = math.floor(now + 1e-9) + self.profile.retry.minimal_backoff
            call_in(self.env, self._dead_until - now, self._unthrottle)
            return
        # Negative feedback of 1 with hysteresis 1, as the loop in qmgr_queue_throttle
        # runs it: the first failure after a reset lowers the window by 2, later ones by 1.
        self._failure_feedback -= 1.0
        while self._failure_feedback - 0.5 < 0:
            self.window -= 1
            self._failure_feedback += 1.0
        self.window = max(self.window, 1)

    def _unthrottle(self, _event: Any) -> None:
        if self.dead_status is not None:
            self._revive()
        self._pump()

    def _revive(self) -> None:
        """Back from the dead after minimal_backoff_time (qmgr_queue_unthrottle)."""
        self.dead_status = None
        self.in_retry = False
        self.window = self.busy if self.busy > 0 else self._initial
        self._fail_cohorts = self._failure_feedback = 0.0

    def _delivered(self) -> None:
        """A success: the failure count restarts and the window may widen."""
        self._fail_cohorts = 0.0
        if self.dead_status is None and self.window < min(self._limit, self.busy + self._initial):
            self.window += 1
            self._failure_feedback = 0.0
        self._pump()

    def _discard_if_idle(self) -> None:
        # An empty in-core queue is deleted (qmgr_queue_done); the next one starts afresh.
        if not self.pending and not self.busy and self.dead_status is None:
            self.window = self._initial
            self._fail_cohorts = self._failure_feedback = 0.0

    def _suspend_all(self) -> None:
        """Defer every queued message with the dead destination's reason, no connection."""
        status = self.dead_status
        assert status is not None
        suspended = Status(status.code, f"delivery temporarily suspended: {status.text}")
        pending, now = self.pending, self.env.now
        # In bulk unless a trace is kept (a line per message) or mail could expire before
        # it backs off fully (then a cohort's young messages could expire too).
        bulk = self.in_bulk and self.metrics.trace is None and self._expiration >= self._max_backoff
        ages = _Ages(self, now) if bulk else None
        while pending:
            item = pending.popleft()
            if isinstance(item, Message):
                self._defer(item, suspended, now, suspended=True)
            elif ages is None:
                for message in item.messages[item.start :]:
                    self._defer(message, suspended, now, suspended=True)
            else:
                self._suspend_cohort(item, suspended, now, ages)

    def _suspend_cohort(self, cohort: Cohort, status: Status, now: float, ages: _Ages) -> None:
        """``_defer`` for every message of ``cohort`` (a dead destination), in one step:
        usually none expires, none is due a warning and none is young, and the cohort
        moves to the next bucket untouched."""
        metrics = self.metrics
        metrics.deferrals_suspended += len(cohort)
        messages = cohort.messages
        if (
            cohort.stats is not None
            and messages[cohort.start].arrival >= ages.expiring
            and messages[-1].arrival < ages.backed_off
            and (ages.warned is None or cohort.is_warned_before(ages.warned))
        ):
            # The usual pass, checked first: one domain, nobody expires, nobody is young,
            # nobody newly due a warning.
            cohort.stats.last = status
            self._file_cohort(cohort, ages.old_run)
            return
        young_from = cohort.index_before(ages.backed_off)
        expired_to = cohort.index_before(ages.expiring)  # <= young_from
        for message in messages[cohort.start : expired_to]:
            message.last = message.stats.last = status
            self._expire(message, now)
        if expired_to < len(messages):
            for stats in _domains(cohort, expired_to):
                stats.last = status
        warned_from = max(expired_to, cohort.notified)
        if ages.warned is not None and warned_from < young_from:
            warned_to = min(cohort.index_before(ages.warned), young_from)
            for message in messages[warned_from:warned_to]:
                if not message.notified:
                    message.notified = True
                    metrics.delay_notice(message, now)
            cohort.notified = max(cohort.notified, warned_to)
        young = cohort.split_off(young_from) if young_from < len(messages) else ()
        cohort.drop_front(expired_to)
        if cohort:
            self._file_cohort(cohort, ages.old_run)
        event_time = int(now)
        for message in young:  # each backs off by its own age
            message.last = status
            self._file(message, event_time - int(message.arrival), now)

    # -- the deferred queue ----------------------------------------------------------------

    def _waited(self, message: Message, now: float) -> float:
        """PREACTIVE_DELAY: active-queue arrival minus creation, in whole seconds (smtp.h)."""
        return int(message.activated) - int(message.arrival)

    def _defer(self, message: Message, status: Status, now: float, *, suspended: bool = False) -> None:
        # On the hot path (every deferral of a backlog passes here): locals, no method
        # calls for the clamp, and the trace text only when a trace is kept.
        metrics = self.metrics
        if suspended:
            metrics.deferrals_suspended += 1
        else:
            metrics.deferrals += 1
            self.failed_attempts += 1
        message.last = message.stats.last = status
        if metrics.trace is not None:
            self._trace(message, "suspended" if suspended else "deferred", str(status))
        # simulated time is never negative: int() floors
        age = int(now) - int(message.arrival)
        if age >= self._expiration:
            self._expire(message, now)
            return
        self._file(message, age, now)

    def _file(self, message: Message, age: int, now: float) -> None:
        """Warn if due, then put a message that was not expired into its retry bucket."""
        notice = self._notice
        if notice is not None and not message.notified and age >= notice - 1:
            message.notified = True
            self.metrics.delay_notice(message, now)
        backoff = self._min_backoff if age < self._min_backoff else min(age, self._max_backoff)
        bucket = self._bucket(self._run_for(int(now), backoff, now))
        # Runs of messages in arrival order become cohorts, so they move in bulk later.
        last = bucket[-1] if bucket else None
        if isinstance(last, Cohort) and last.last_arrival() <= message.arrival:
            last.append(message)
        elif isinstance(last, Message) and last.arrival <= message.arrival:
            bucket[-1] = Cohort([last, message])
        else:
            bucket.append(message)
        self._filed(1)

    def _file_cohort(self, cohort: Cohort, run: float) -> None:
        bucket = self._bucket(run)
        last = bucket[-1] if bucket else None
        if isinstance(last, Cohort) and last.last_arrival() <= cohort.first_arrival():
            last.extend(cohort)
        else:
            bucket.append(cohort)
        self._filed(len(cohort))

    def _bucket(self, run: float) -> list[Message | Cohort]:
        """The deferred mail that the queue run at ``run`` picks up (made empty if none)."""
        bucket = self.deferred.get(run)
        if bucket is None:
            bucket = self.deferred[run] = []
            heapq.heappush(self._runs, run)
        return bucket

    def _filed(self, count: int) -> None:
        self._deferred_count += count
        if not self.scan_armed:
            self._arm_scan()

    def _run_for(self, event_time: int, backoff: float, now: float) -> float:
        """The queue run that picks up a file stamped ``event_time + backoff``: a scan takes
        files due within the next second, so the first run at or after stamp - 1."""
        grid = self._scan_interval
        run = math.ceil((event_time + backoff - 1) / grid - 1e-9) * grid
        if run <= now:
            run = self.profile.retry.run_after(now)
        return run

    def _arm_scan(self) -> None:
        if self.scan_armed or not self._runs:
            return
        self.scan_armed = True
        call_in(self.env, max(0.0, self._runs[0] - self.env.now), self._scan)

    def _scan(self, _event: Any) -> None:
        self.scan_armed = False
        now = self.env.now
        runs = self._runs
        while runs and runs[0] <= now + 1e-9:
            bucket = self.deferred.pop(heapq.heappop(runs))
            self._deferred_count -= _count(bucket)
            for item in bucket:
                item.activated = now  # a cohort passes it to each message it lets go
            if self.pending is NONE_YET:
                self.pending = deque()
            self.pending.extend(bucket)
        self._arm_scan()
        self._pump()


def _count(items: Iterable[Message | Cohort]) -> int:
    return sum(len(item) if isinstance(item, Cohort) else 1 for item in items)


def _domains(cohort: Cohort, start: int) -> Iterable[DomainStats]:
    """The domains of ``cohort.messages[start:]``: its one domain, or each one once."""
    if cohort.stats is not None:
        return (cohort.stats,)
    return {message.stats for message in cohort.messages[start:]}


class _Ages:
    """One suspension pass's age thresholds, as arrival bounds for ``Cohort.index_before``,
    and the queue run that picks up every message that has backed off fully."""

    __slots__ = ("backed_off", "expiring", "old_run", "warned")

    def __init__(self, queue: BackoffQueue, now: float) -> None:
        event_time = int(now)  # simulated time is never negative: int() floors
        self.expiring = arrival_bound(queue._expiration, event_time)
        self.backed_off = arrival_bound(queue._max_backoff, event_time)
        notice = queue._notice
        self.warned = arrival_bound(notice - 1, event_time) if notice is not None else None
        self.old_run = queue._run_for(event_time, queue._max_backoff, now)

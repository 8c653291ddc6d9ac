"""Delivery queues: the messages for one (virtual server, connector, next hop).

``DeliveryQueue`` holds what every product shares: connecting to the hosts in MX
preference order, transfers in flight, the bookkeeping of endings, and expiry and
delay notices. Its subclasses hold one hook each, ``_pump``, which decides when to
try: ``QueueRetry`` (this module) retries the queue as a whole, as Exchange and
Sendmail do; ``BackoffQueue`` (``backoff.py``) backs off per message, as Postfix does.

No SimPy process per message: a transfer in flight is one scheduled call (a ``Due``,
sim/model/clock.py), a queue waiting to retry is one, and the expiry/notice deadlines
of all its messages share one armed for the earliest (messages leave in arrival
order, so those deadlines are in order too).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

from sim.model.clock import Due, call_in, heap_of
from sim.model.cohort import Cohort
from sim.model.endpoint import HostLink
from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.model.sampler import Sampled
from sim.model.sts import StsCache
from sim.model.tlsrpt_tally import Reporting, result_of
from sim.mta.profiles import MtaProfile
from sim.policy.requiretls import under_requiretls
from sim.policy.sts_cache import STS_CACHE_RULES, StsCacheRules
from sim.policy.tls_level import TlsPolicy
from sim.scenario.published import MtaStsPolicy
from sim.tls.negotiation import Negotiation
from sim.vocabulary import NO_CONNECTION, Channel, Failure, Status, StsMode, TlsLevel

EPSILON = 1e-9  # float slack when a timer lands on its own deadline

HOST_DOWN = Negotiation(None, Failure.HOST_DOWN)
GREYLISTED = Negotiation(None, Failure.GREYLISTED)
NO_HOSTS = Negotiation(None, Failure.UNREACHABLE)  # a queue without hosts: no usable route
OPPORTUNISTIC = TlsPolicy(TlsLevel.OPPORTUNISTIC)


class _NoneYet(deque[Any]):
    """The pending or watch list of a queue that has not needed one yet: empty, and shared
    by every such queue. An empty deque takes 760 bytes and a world of 100,000 domains
    holds as many queues, most of which never queue a message (an idle queue tries a new
    one at once). Adding to it is a bug, not a loss: the methods that queue or watch a
    message give the queue its own deque first."""

    def append(self, item: Any) -> None:
        raise TypeError("a queue's shared empty list takes nothing: make the queue its own deque first")

    extend = appendleft = extendleft = insert = append  # type: ignore[assignment]


NONE_YET: deque[Any] = _NoneYet()


class DeliveryQueue:
    uses_watch = True  # keep a deque of messages that may still need a delay notice
    learns_from_delivery = True  # ``_delivered`` runs after every delivery, not only when mail waits
    # Slots: a world of 100,000 domains holds as many queues (issue 13).
    __slots__ = (
        "_by_patterns",
        "_deadline_timers",
        "_direct",
        "_expiration",
        "_greylist_seen",
        "_heap",
        "_ids",
        "_notice",
        "_relink",
        "_report_testing",
        "_sampled",
        "busy",
        "env",
        "failed_attempts",
        "hosts",
        "in_retry",
        "last_failure",
        "listed",
        "metrics",
        "name",
        "order",
        "pending",
        "policy",
        "profile",
        "reporting",
        "slots",
        "sts",
        "sts_cache",
        "submitted",
        "timer_armed",
        "watch",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        hosts: list[HostLink],
        profile: MtaProfile,
        slots: int,
        metrics: Metrics,
        *,
        policy: TlsPolicy = OPPORTUNISTIC,
        sts: MtaStsPolicy | None = None,
        reporting: Reporting | None = None,
        sts_testing_reported: bool = False,
        sts_cache: StsCacheRules = STS_CACHE_RULES["rfc8461"],
        relink: Callable[[tuple[str, ...]], list[HostLink]] | None = None,
        sampled: list[Sampled] | None = None,
    ) -> None:
        self.env = env
        self._heap, self._ids = heap_of(env)  # where a transfer's end is pushed (clock.heap_of)
        self.name = name
        self.policy = policy
        # The destination's MTA-STS policy as this sender caches it, and who reports.
        self.sts_cache = sts_cache
        self._relink = relink
        self._by_patterns: dict[tuple[str, ...], list[HostLink]] | None = None  # made when first needed
        self.sts = StsCache(sts, sts_cache) if sts is not None else None
        self.reporting = reporting
        self._report_testing = sts_testing_reported
        self.hosts = hosts  # in MX preference order
        self.profile = profile
        self.slots = slots
        self.metrics = metrics
        self.pending: deque[Message] = NONE_YET  # each its own deque when first needed
        self.watch: deque[Message] = NONE_YET
        self.busy = 0
        self.submitted = 0
        self.failed_attempts = 0  # attempts the hosts deferred or refused (inbound: "refused")
        self.order = 0  # its place among the world's queues (the sampler lists them so)
        self.listed = False  # in ``sampled``: the depth sampler's list of queues it visits
        self._sampled: list[Sampled] = [] if sampled is None else sampled
        self.in_retry = False
        self.timer_armed = False
        self.last_failure: Status | None = None
        self._expiration = profile.expiration_timeout
        self._notice = profile.delay_notification
        self._deadline_timers = profile.timers == "deadline"
        self._greylist_seen: dict[str, float] | None = None  # made when a greylisting host is met
        self._direct = _direct_outcome(hosts, self.sts, reporting)

    def links_under(self, sts: MtaStsPolicy | None) -> list[HostLink]:
        """The hosts as the sender sees them under the MTA-STS policy it applies: its
        cached policy's mx patterns, which may be older than the published ones."""
        if sts is None or self._relink is None or self.sts is None or sts.mx == self.sts.published.mx:
            return self.hosts
        key = tuple(sts.mx)
        if self._by_patterns is None:
            self._by_patterns = {}
        found = self._by_patterns.get(key)
        if found is None:
            found = self._by_patterns[key] = self._relink(key)
        return found

    @property
    def depth(self) -> int:
        return len(self.pending) + self.busy

    def waiting(self) -> Iterator[Message]:
        """The messages waiting in this queue (not those in transfer), for the end-of-run
        fate; a discipline that keeps mail elsewhere adds it (``BackoffQueue``)."""
        for item in self.pending:
            if isinstance(item, Cohort):
                yield from item.messages[item.start :]
            else:
                yield item

    def replan(
        self,
        policy: TlsPolicy,
        hosts: list[HostLink],
        sts: MtaStsPolicy | None,
        reporting: Reporting | None,
        relink: Callable[[tuple[str, ...]], list[HostLink]] | None = None,
    ) -> None:
        """A policy calendar change: new TLS policy, host sessions and transport policies.
        A cached MTA-STS policy stays cached; the sender sees the new one at its next fetch."""
        self.policy = policy
        self.hosts = hosts
        self._relink = relink
        self._by_patterns = None
        if sts is None:
            self.sts = None
        elif self.sts is None:
            self.sts = StsCache(sts, self.sts_cache)
        else:
            self.sts.publish(sts, self.env.now)
        self.reporting = reporting
        self._direct = _direct_outcome(hosts, self.sts, reporting)

    def submit(self, message: Message) -> None:
        self.submitted += 1
        metrics = self.metrics
        metrics.depth += 1  # the depth of all queues, and its peak
        if metrics.depth > metrics.peak_depth:
            metrics.peak_depth = metrics.depth
            metrics.peak_time = self.env.now
        if not self.listed:
            # Mail enters a queue only here: a queue not listed since the sampler last
            # found it empty is listed again, so the sampler visits no other queue.
            self.listed = True
            self._sampled.append(self)
        self.accept(message)

    def accept(self, message: Message) -> None:
        self._enqueue(message)
        self._pump()

    def _enqueue(self, message: Message) -> None:
        """Queue a message: it waits, is watched for its delay notice, and is timed."""
        if self.pending is NONE_YET:
            self.pending = deque()
        self.pending.append(message)
        if self._notice is not None and self.uses_watch:
            self._watch(message)
        else:
            self._keep_time()

    def _watch(self, message: Message) -> None:
        if self.watch is NONE_YET:
            self.watch = deque()
        self.watch.append(message)
        self._keep_time()

    def _keep_time(self) -> None:
        """With deadline timers, one call stays armed for the earliest expiry or notice."""
        if self._deadline_timers and not self.timer_armed:
            self._arm_timer()

    def _pump(self) -> None:
        raise NotImplementedError

    # -- one session -----------------------------------------------------------------------

    def _connect(self, message: Message, now: float) -> tuple[HostLink | None, Negotiation, float]:
        """Try the hosts in preference order; the first that carries mail or answers 5xx wins.

        Otherwise return the last host's failure: when every MX defers, so does the attempt.
        Also return the session set-up time spent on hosts that answered and failed (a
        host that is down costs none), and count each session opened with a host that
        answered, including a plaintext retry after a failed handshake. A host that a
        transport policy refuses before connecting (a failing TLSA lookup, an MX outside
        an enforced MTA-STS policy) is skipped without a session.
        """
        stats = message.stats
        metrics = self.metrics
        if self._direct is not None and not message.requiretls:
            link, outcome = self._direct
            metrics.connections += 1
            stats.connections += 1
            return link, outcome, 0.0
        last = HOST_DOWN if self.hosts else NO_HOSTS
        spent = 0.0
        sts = self.sts.in_effect(now) if self.sts is not None else None
        enforced = sts is not None and sts.mode is StsMode.ENFORCE
        for link in self.hosts if sts is None else self.links_under(sts):  # no call on the common path
            endpoint = link.endpoint
            if endpoint.has_outages and not endpoint.is_up(now):
                last = HOST_DOWN
                continue
            plan = link.enforced if enforced and link.enforced is not None else link.plan
            segment = plan.at(now)
            outcome = segment.negotiation
            if outcome.failure in NO_CONNECTION:
                metrics.refusals += 1
                stats.refusals += 1
                if self.reporting is not None:
                    self._report(link, outcome, enforced, now)
                last = outcome
                continue
            metrics.connections += 1
            stats.connections += 1
            if endpoint.greylist is not None and not self._passes_greylist(endpoint.name, endpoint.greylist, now):
                last = GREYLISTED
                spent += endpoint.session_setup
                continue
            if (
                outcome.failure is Failure.HANDSHAKE
                and not message.requiretls
                and self.policy.falls_back(self._waited(message, now))
            ):
                metrics.connections += 1
                stats.connections += 1
                spent += endpoint.session_setup
                outcome = segment.fallback
            if message.requiretls:
                governed = link.enforced_type if enforced and link.enforced is not None else link.policy_type
                outcome = under_requiretls(outcome, governed, endpoint.name, link.requiretls)
            if self.reporting is not None:
                self._report(link, outcome, enforced, now)
            if outcome.channel is not None or outcome.permanent:
                return link, outcome, spent
            spent += endpoint.session_setup
            last = outcome
        return None, last, spent

    def _report(self, link: HostLink, outcome: Negotiation, enforced: bool, now: float) -> None:
        """Tally the session for TLS-RPT. Under a ``testing`` policy the delivery is as
        without MTA-STS, but a reporting product counts what enforcing would have found."""
        assert self.reporting is not None
        kind = link.enforced_type if enforced else link.policy_type
        if not enforced and self._report_testing and link.enforced is not None and self.sts is not None:
            cached = self.sts.cached
            if cached is not None and cached.mode is StsMode.TESTING and link.policy_type is None:
                kind, outcome = "sts", link.enforced.at(now).negotiation
        result = result_of(outcome.channel, outcome.failure, outcome.detail)
        mode = None
        if kind == "sts" and self.sts is not None:
            if result is None and self.sts.fetch_failure is not None:
                result = self.sts.fetch_failure
            mode = (self.sts.cached or self.sts.published).mode  # the report's policy-string shows it
        self.metrics.tlsrpt.session(self.reporting, kind, link.endpoint.name, now, result, mode)

    def _waited(self, message: Message, now: float) -> float:
        """How long the message had waited when this attempt started (Postfix's PREACTIVE_DELAY)."""
        return now - message.arrival

    def _status_of(self, outcome: Negotiation) -> Status:
        """The profile's status for a failure, with the session's own detail appended."""
        status = self.profile.status(outcome.failure or Failure.HOST_DOWN)
        return status.with_detail(outcome.detail)

    def _passes_greylist(self, host: str, delay: float, now: float) -> bool:
        if self._greylist_seen is None:
            self._greylist_seen = {}
        first = self._greylist_seen.get(host)
        if first is None:
            self._greylist_seen[host] = now
            return False
        return now - first >= delay - EPSILON

    def _deliver(self, message: Message, link: HostLink, outcome: Negotiation, after: float = 0.0) -> None:
        """Start the transfer of ``message`` (``after`` seconds spent on hosts before this
        one); or bounce it at once on a 5xx."""
        if outcome.channel is None:
            self.metrics.rejections += 1
            self.failed_attempts += 1
            message.stats.last_failure = (outcome.failure or Failure.MUST_STARTTLS).value
            status = self.profile.status(outcome.failure or Failure.MUST_STARTTLS)
            self.metrics.bounced_message(message, status.code, status.text, self.env.now, queued=True)
            return
        self._start_transfer(message, outcome.channel, after + link.endpoint.transfer_time(message.size))

    def _start_transfer(self, message: Message, channel: Channel, duration: float) -> None:
        self.busy += 1
        call_in(self.env, duration, self._transfer_done, (message, channel))

    def _transfer_done(self, due: Due) -> None:
        message, channel = due.value
        self.busy -= 1
        self.metrics.delivered_message(message, channel, due.at)
        watch = self.watch
        while watch and watch[0].done:
            watch.popleft()
        if self.pending or self.learns_from_delivery:  # most deliveries leave nothing waiting
            self._delivered()

    def _delivered(self) -> None:
        """What a discipline does after a success: try what waits (Postfix also learns
        from it: concurrency feedback)."""
        self._pump()

    def _trace(self, message: Message, event: str, detail: str) -> None:
        if self.metrics.trace is not None:
            self.metrics.record(self.env.now, message.id, event, detail)

    def _trace_attempt(self, message: Message, link: HostLink | None) -> None:
        # On the hot path: the detail string is built only when a trace is kept.
        if self.metrics.trace is not None:
            self.metrics.record(self.env.now, message.id, "attempt", link.endpoint.name if link else "all hosts")

    # -- expiry and delay notices ------------------------------------------------------------

    def _expire(self, message: Message, now: float) -> None:
        last = message.last or self.last_failure
        expiry = self.profile.expiry
        if expiry is None:  # Postfix: the bounce carries the last deferral's status
            code = last.code if last else "4.4.7"
            text = f"message expired; last error: {last.text}" if last else "message expired"
        else:
            code = expiry.code
            text = expiry.text + (f" (last error: {last.text})" if last else "")
        self.metrics.bounced_message(message, code, text, now, queued=True, expired=True)

    def _expire_and_notify_due(self, now: float) -> None:
        """End the messages at the head whose lifetime is over; notify those overdue."""
        limit = now + EPSILON
        pending = self.pending
        while pending and pending[0].arrival + self._expiration <= limit:
            self._expire(pending.popleft(), now)
        notice = self._notice
        if notice is None:
            return
        watch = self.watch
        while watch:
            message = watch[0]
            if message.done:
                watch.popleft()
            elif message.arrival + notice <= limit:
                watch.popleft()
                message.notified = True
                self.metrics.delay_notice(message, now)
            else:
                break

    def _arm_timer(self) -> None:
        due = self.pending[0].arrival + self._expiration if self.pending else math.inf
        watch = self.watch
        while watch and watch[0].done:
            watch.popleft()
        if watch and self._notice is not None:
            due = min(due, watch[0].arrival + self._notice)
        if due == math.inf:
            return
        self.timer_armed = True
        call_in(self.env, max(0.0, due - self.env.now), self._timer_due)

    def _timer_due(self, _event: Any) -> None:
        self.timer_armed = False
        self._expire_and_notify_due(self.env.now)
        self._arm_timer()


class QueueRetry(DeliveryQueue):
    """Retried as a whole (reference 1b): a failed connection puts the queue in Retry and
    every message in it, including those that arrive meanwhile, waits for the next try.

    With ``attempt_on_arrival`` profiles (Sendmail) a new message is still tried once
    when it arrives; only the queued ones wait for the next queue run.
    """

    __slots__ = ("_try_new_at_once", "failures")
    learns_from_delivery = False  # a success changes nothing: the queue only tries what waits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 0
        # Sendmail tries each message when it is submitted (no host status is kept
        # between processes by default); only deferred ones wait for the queue run.
        self._try_new_at_once = self.profile.retry.queue_run_delay is not None

    def accept(self, message: Message) -> None:
        if not self.in_retry and not self.pending and self.busy < self.slots:
            # The common case, written out (it runs once a message): an idle queue with
            # a free slot tries a new message at once, as ``_enqueue`` then ``_pump``
            # would, without queueing it first. It is queued only if the try fails, and
            # watched for its delay notice only if its transfer could outlast the
            # notice deadline.
            now = self.env.now
            direct = self._direct
            if direct is not None and not message.requiretls:  # ``_connect``'s first case
                link, outcome = direct
                self.metrics.connections += 1
                message.stats.connections += 1
            else:
                found, outcome, _ = self._connect(message, now)
                if found is None:
                    self._trace_attempt(message, None)
                    self._enqueue(message)
                    self._fail(outcome)
                    return
                link = found
            if self.metrics.trace is not None:
                self._trace_attempt(message, link)
            self.failures = 0
            channel = outcome.channel
            if channel is None:
                self._deliver(message, link, outcome)  # a 5xx: bounced at once
                return
            endpoint = link.endpoint
            transfer = endpoint.session_setup + message.size * endpoint.seconds_per_byte  # Endpoint.transfer_time
            if self._notice is not None and now + transfer >= message.arrival + self._notice - EPSILON:
                self._watch(message)
            self.busy += 1  # ``_start_transfer``, written out
            at = now + transfer  # ``call_in``, written out: ``schedule``'s push
            heappush(self._heap, (at, NORMAL, next(self._ids), Due(at, self._transfer_done, (message, channel))))
            return
        if self.in_retry and self._try_new_at_once and self.busy < self.slots:
            now = self.env.now
            tried, outcome, _ = self._connect(message, now)
            self._trace_attempt(message, tried)
            if tried is not None:
                self._deliver(message, tried, outcome)
                return
            self.metrics.deferrals += 1
            self.failed_attempts += 1
            status = self._status_of(outcome)
            message.stats.last, message.stats.last_failure = status, (outcome.failure or Failure.HOST_DOWN).value
            self._trace(message, "deferred", str(status))
        super().accept(message)

    def _pump(self) -> None:
        env, pending = self.env, self.pending
        while pending and self.busy < self.slots and not self.in_retry:
            # Whole-queue retry: the attempt is decided at once (session times ignored).
            link, outcome, _ = self._connect(pending[0], env.now)
            self._trace_attempt(pending[0], link)
            if link is None:
                self._fail(outcome)
                return
            self.failures = 0
            self._deliver(pending.popleft(), link, outcome)

    def _fail(self, outcome: Negotiation) -> None:
        now = self.env.now
        self.in_retry = True
        self.failures += 1
        status = self._status_of(outcome)
        self.last_failure = status
        self.metrics.deferrals += 1
        self.failed_attempts += 1
        head = self.pending[0]
        head.stats.last, head.stats.last_failure = status, (outcome.failure or Failure.HOST_DOWN).value
        self._trace(head, "deferred", str(status))
        if not self._deadline_timers:
            self._expire_and_notify_due(now)
        retry = self.profile.retry
        wait = retry.after_failures(self.failures) if retry.queue_run_delay is None else retry.run_after(now) - now
        call_in(self.env, wait, self._retry_due)

    def _retry_due(self, _event: Any) -> None:
        self.in_retry = False
        if not self.pending:
            self.failures = 0  # an empty queue disappears; the next message starts afresh
            return
        self._pump()


def _direct_outcome(
    hosts: list[HostLink], sts: StsCache | None, reporting: Reporting | None
) -> tuple[HostLink, Negotiation] | None:
    """The first host and its outcome when it takes every message the same way: never
    down, no greylisting, one outcome for the whole run that carries mail, no transport
    policy and no TLS reporting. ``_connect`` then returns it at once for a message
    without REQUIRETLS, counting the session as the loop would."""
    if not hosts or sts is not None or reporting is not None:
        return None
    link = hosts[0]
    endpoint = link.endpoint
    if endpoint.has_outages or endpoint.greylist is not None or not link.plan.is_constant:
        return None
    outcome = link.plan.first.negotiation
    return (link, outcome) if outcome.channel is not None else None

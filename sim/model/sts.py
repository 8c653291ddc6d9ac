"""A sender's cache of one destination's MTA-STS policy, over simulated time (RFC 8461 s.3.3, s.5.1).

The sender fetches the policy when it first needs it, again when the published policy
changes (a new TXT id: any change of the policy's fields), and once a day (the RFC's
suggested proactive refresh). A fetch fails while the policy host is unreachable, down
or serving a broken policy; after a failure the next try waits five minutes (s.3.3).
A cached policy is applied while younger than its ``max_age``, also when a refetch
fails; with no valid cached policy the sender delivers as though the domain had no
MTA-STS. A sender is assumed to start the run with an empty cache.
"""

from __future__ import annotations

from bisect import bisect_right

from sim.scenario.policies import MtaStsPolicy
from sim.vocabulary import PolicyHost, ResultType

REFRESH = 86400.0  # "once per day" (s.3.3)
RETRY_AFTER_FAILURE = 300.0  # "five minutes or longer per version ID" (s.3.3)


class StsCache:
    __slots__ = ("_down_ends", "_down_starts", "_next_try", "cached", "fetch_failure", "fetched_at", "published")

    def __init__(self, published: MtaStsPolicy) -> None:
        self.cached: MtaStsPolicy | None = None
        self.fetched_at = 0.0
        self.fetch_failure: ResultType | None = None  # the last fetch's failure, for TLS-RPT
        self._next_try = 0.0
        self.publish(published)

    def publish(self, published: MtaStsPolicy) -> None:
        """The destination now publishes ``published`` (a policy calendar change)."""
        self.published = published
        self._down_starts = [o.start for o in published.policy_host_down]
        self._down_ends = [o.end for o in published.policy_host_down]
        self._next_try = 0.0

    def in_effect(self, now: float) -> MtaStsPolicy | None:
        """The policy the sender applies at ``now``: a valid cached one, or none."""
        cached = self.cached
        stale = cached is None or cached != self.published or now - self.fetched_at >= REFRESH
        if stale and now >= self._next_try:
            self._fetch(now)
            cached = self.cached
        if cached is not None and now - self.fetched_at < cached.max_age:
            return cached
        return None

    def _fetch(self, now: float) -> None:
        published = self.published
        if published.policy_host is PolicyHost.BROKEN:
            self.fetch_failure = ResultType.STS_POLICY_INVALID
        elif published.policy_host is PolicyHost.UNREACHABLE or self._host_down(now):
            self.fetch_failure = ResultType.STS_POLICY_FETCH_ERROR
        else:
            self.cached, self.fetched_at, self.fetch_failure = published, now, None
            return
        self._next_try = now + RETRY_AFTER_FAILURE

    def _host_down(self, now: float) -> bool:
        i = bisect_right(self._down_starts, now) - 1
        return i >= 0 and now < self._down_ends[i]

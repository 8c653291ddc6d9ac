"""A sender's cache of one destination's MTA-STS policy, over simulated time (RFC 8461
s.3.3, s.5.1, s.8.1; issue 20).

What a destination publishes is two things: the TXT record ``_mta-sts`` with its ``id``
and TTL, and the policy file. A sender fetches the policy when it first needs it, keeps
it for ``max_age``, and refetches earlier only by its own rules (``StsCacheRules``):

* one that watches the ``id`` looks the TXT record up again each time its cached answer
  runs out (every TXT TTL after its fetch) and refetches when the id differs: a policy
  edited with a new id is seen at the next TXT check after the edit, one edited
  *without* a new id only at the next refresh or when ``max_age`` runs out;
* one with a proactive refresh refetches that often while it holds a policy.

A fetch fails while the policy host is unreachable, down or serving a broken policy;
the next try waits five minutes (s.3.3). A cached policy is applied while younger than
its ``max_age``, also when a refetch fails; with no valid cached policy the sender
delivers as though the domain had no MTA-STS. A sender starts the run with an empty cache.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from sim.policy.sts_cache import STS_CACHE_RULES, StsCacheRules
from sim.scenario.published import MtaStsPolicy
from sim.vocabulary import PolicyHost, ResultType

RETRY_AFTER_FAILURE = 300.0  # "five minutes or longer per version ID" (s.3.3)


class StsCache:
    __slots__ = (
        "_down_ends",
        "_down_starts",
        "_due",
        "_id_at",
        "_ids",
        "_next_try",
        "cached",
        "cached_id",
        "fetch_failure",
        "fetched_at",
        "published",
        "rules",
    )

    def __init__(self, published: MtaStsPolicy, rules: StsCacheRules = STS_CACHE_RULES["rfc8461"]) -> None:
        self.rules = rules
        self.cached: MtaStsPolicy | None = None
        self.cached_id = ""
        self.fetched_at = 0.0
        self.fetch_failure: ResultType | None = None  # the last fetch's failure, for TLS-RPT
        self._next_try = 0.0
        self._due = 0.0  # when the sender refetches by its rules (set at each fetch and publication)
        self._id_at: list[float] = []  # when each published TXT id took effect
        self._ids: list[str] = []
        self.publish(published, 0.0)

    def publish(self, published: MtaStsPolicy, now: float) -> None:
        """From ``now`` the destination publishes ``published`` (a policy calendar change)."""
        self.published = published
        self._down_starts = [o.start for o in published.policy_host_down]
        self._down_ends = [o.end for o in published.policy_host_down]
        self._next_try = 0.0
        self._id_at.append(now)
        self._ids.append(published.txt_id)
        self._plan_refetch()

    def in_effect(self, now: float) -> MtaStsPolicy | None:
        """The policy the sender applies at ``now``: a valid cached one, or none."""
        cached = self.cached
        if (cached is None or now >= self._due) and now >= self._next_try:
            self._fetch(now)
            cached = self.cached
        if cached is not None and now - self.fetched_at < cached.max_age:
            return cached
        return None

    def refetch_due(self, now: float) -> float:
        """The first instant from ``now`` at which the sender refetches by its rules (the
        published policy then replaces a cached one that differs)."""
        due = self._due if self.cached is not None else now
        return max(now, self._next_try, due)

    def _plan_refetch(self) -> None:
        """When the cached policy goes stale: at ``max_age``, at the rules' refresh, or at
        the first TXT check (at the fetch and every TTL after) that shows another id."""
        cached = self.cached
        if cached is None:
            return
        rules, fetched = self.rules, self.fetched_at
        due = fetched + cached.max_age
        if rules.refresh is not None:
            due = min(due, fetched + rules.refresh)
        if rules.watches_id:
            ttl = self.published.txt_ttl
            for at, txt_id in zip(self._id_at, self._ids, strict=True):
                if at < fetched or txt_id == self.cached_id:
                    continue
                check = fetched + (math.ceil((at - fetched) / ttl) * ttl if ttl > 0 else at - fetched)
                if self._ids[bisect_right(self._id_at, check) - 1] != self.cached_id:  # not undone by then
                    due = min(due, check)
        self._due = due

    def _fetch(self, now: float) -> None:
        published = self.published
        if published.policy_host is PolicyHost.BROKEN:
            self.fetch_failure = ResultType.STS_POLICY_INVALID
        elif published.policy_host is PolicyHost.UNREACHABLE or self._host_down(now):
            self.fetch_failure = ResultType.STS_POLICY_FETCH_ERROR
        else:
            self.cached, self.fetched_at, self.fetch_failure = published, now, None
            self.cached_id = self._ids[-1]
            self._plan_refetch()
            return
        self._next_try = now + RETRY_AFTER_FAILURE

    def _host_down(self, now: float) -> bool:
        i = bisect_right(self._down_starts, now) - 1
        return i >= 0 and now < self._down_ends[i]

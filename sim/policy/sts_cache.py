"""How sending products keep a destination's MTA-STS policy (issue 20; ``sim/model/sts.py``
applies the rules over simulated time)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StsCacheRules:
    """How one sending product keeps a destination's MTA-STS policy."""

    name: str
    watches_id: bool  # looks the TXT id up again (each TXT TTL) and refetches on a new one
    refresh: float | None  # proactive refetch this often while a policy is cached; None: at max_age
    source: str


STS_CACHE_RULES = {
    rules.name: rules
    for rules in (
        # RFC 8461 s.3.3: check the TXT record, refresh "once per day". Exchange Online's and
        # Google's own rules are not published: they are assumed to follow the RFC.
        StsCacheRules("rfc8461", True, 86400.0, "RFC 8461 s.3.3, s.5.1"),
        # postfix-mta-sts-resolver <= 1.5: a cached entry older than cache_grace (60 s) is
        # checked against the TXT id; proactive fetching is off by default (modern-policies 5).
        StsCacheRules("postfix-mta-sts-resolver", True, None, "postfix-mta-sts-resolver defaults.py, README"),
        # postfix-tlspol: the MTA-STS branch is cached "for no longer than the MTA-STS
        # max_age" and prefetched as it runs out; the TXT id is not watched (README).
        StsCacheRules("postfix-tlspol", False, None, "Zuplu/postfix-tlspol README (Logic, Prefetching)"),
    )
}

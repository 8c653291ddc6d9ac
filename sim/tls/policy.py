"""The TLS policy a queue sends under: which level is in force, and what a failed
handshake leads to.

The level comes from three settings, combined here and nowhere else: the virtual
server's default, its per-next-hop policy map (Postfix ``smtp_tls_policy_maps``) and
the connector's own setting. The result is one value, ``TlsPolicy``, handed to the
queue: a new mechanism is a new field of this value, not a new flag on the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim.vocabulary import Failure, TlsLevel

# A 4xx to one recipient, and REQUIRETLS refusals of one message: not the destination's fault.
_NOT_SITE_FAILURES = frozenset({Failure.GREYLISTED, Failure.REQUIRETLS, Failure.REQUIRETLS_UNVERIFIED})


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """What one queue does about TLS.

    ``plaintext_fallback_after``: after a failed handshake at ``opportunistic``, retry
    the same host in plaintext once the message has waited this long before the
    attempt (Postfix >= 3.0: PREACTIVE_DELAY >= minimal_backoff_time, reference 3b and
    6a); ``None``: never (defer instead).
    """

    level: TlsLevel
    plaintext_fallback_after: float | None = None

    def falls_back(self, waited: float) -> bool:
        """Whether a handshake failure is retried in plaintext after ``waited`` seconds."""
        after = self.plaintext_fallback_after
        return after is not None and self.level is TlsLevel.OPPORTUNISTIC and waited >= after - 1e-9

    def throttles(self, failure: Failure) -> bool:
        """Whether this failure counts against the destination (Postfix dead-destination
        logic, reference 3e/6b). A handshake failure under ``may`` does not (Postfix HEAD
        smtp_proto.c, SMTP_MISC_FAIL_NONE, 3b); greylisting is a 4xx to one recipient,
        not a site failure."""
        if failure in _NOT_SITE_FAILURES:
            return False
        return not (failure is Failure.HANDSHAKE and self.level is TlsLevel.OPPORTUNISTIC)


def stronger(virtual_server: TlsLevel, connector: TlsLevel) -> TlsLevel:
    """The stronger of the two settings: a connector can add TLS but not take it away
    (Exchange 2003, KB 329061: the article's workaround needs a second virtual server)."""
    return virtual_server if virtual_server.rank >= connector.rank else connector


def policy_map_level(default: TlsLevel, policy: Mapping[str, TlsLevel], next_hop: str) -> TlsLevel:
    """The level for ``next_hop`` from a per-destination map, else ``default``.

    Lookup as Postfix smtp_tls_policy_maps (reference 3c): the name itself, then
    ``.parent`` for each parent domain, nearest first.

    >>> policy_map_level(TlsLevel.OFF, {".example.com": TlsLevel.REQUIRED}, "mx.example.com").value
    'required'
    >>> policy_map_level(TlsLevel.OFF, {".example.com": TlsLevel.REQUIRED}, "example.com").value
    'off'
    """
    if not policy:
        return default
    if next_hop in policy:
        return policy[next_hop]
    labels = next_hop.split(".")
    for i in range(1, len(labels)):
        key = "." + ".".join(labels[i:])
        if key in policy:
            return policy[key]
    return default


def level_in_force(
    default: TlsLevel,
    policy: Mapping[str, TlsLevel],
    next_hop: str,
    connector: TlsLevel,
    *,
    ignore_starttls: bool = False,
) -> TlsLevel:
    """The level a queue sends at: the virtual server's (by policy map) strengthened by
    the connector's; ``off`` when the connector ignores STARTTLS (Exchange 2007+
    IgnoreSTARTTLS, reference 2a)."""
    if ignore_starttls:
        return TlsLevel.OFF
    return stronger(policy_map_level(default, policy, next_hop), connector)

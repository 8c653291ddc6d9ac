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


PolicyEntry = TlsLevel | str
"""A policy-map value: a level, or ``dane`` / ``dane-only`` (Postfix levels that are a
level plus DANE)."""
DANE_ENTRIES = {"dane": "opportunistic", "dane-only": "mandatory"}


def policy_entry(policy: Mapping[str, PolicyEntry], next_hop: str) -> PolicyEntry | None:
    """The entry for ``next_hop``, looked up as Postfix ``tls_policy_lookup()`` does
    (smtp_session.c): a next hop that is not a host name (``[relay]``, ``[relay]:587``,
    ``relay:587``) is looked up once, as written; a host name is tried as it is, then
    ``.parent`` for each parent domain, nearest first.

    >>> policy = {".example.com": "encrypt", "[relay.example.com]": "verify"}
    >>> policy_entry(policy, "mx.example.com"), policy_entry(policy, "example.com")
    ('encrypt', None)
    >>> policy_entry(policy, "[relay.example.com]"), policy_entry({".example.com": "encrypt"}, "[relay.example.com]")
    ('verify', None)
    """
    if not policy:
        return None
    if next_hop in policy:
        return policy[next_hop]
    if next_hop.startswith("[") or ":" in next_hop:
        return None
    labels = next_hop.split(".")
    for i in range(1, len(labels)):
        key = "." + ".".join(labels[i:])
        if key in policy:
            return policy[key]
    return None


def entry_level(entry: PolicyEntry) -> TlsLevel:
    """The STARTTLS level of an entry: ``dane`` and ``dane-only`` encrypt opportunistically
    (``sim.policy.dane`` decides what TLSA records add)."""
    return TlsLevel.OPPORTUNISTIC if entry in DANE_ENTRIES else TlsLevel(entry)


def entry_dane(entry: PolicyEntry | None) -> str | None:
    """What an entry says of DANE: its use for ``dane``/``dane-only``, ``none`` for any
    other level (a per-destination level replaces the default, DANE included), None
    when there is no entry."""
    if entry is None:
        return None
    return DANE_ENTRIES.get(str(entry), "none")


def policy_map_level(default: TlsLevel, policy: Mapping[str, PolicyEntry], next_hop: str) -> TlsLevel:
    """The level for ``next_hop`` from a per-destination map, else ``default``.

    >>> policy_map_level(TlsLevel.OFF, {".example.com": TlsLevel.REQUIRED}, "mx.example.com").value
    'required'
    >>> policy_map_level(TlsLevel.OFF, {".example.com": TlsLevel.REQUIRED}, "example.com").value
    'off'
    """
    entry = policy_entry(policy, next_hop)
    return default if entry is None else entry_level(entry)


def level_in_force(
    default: TlsLevel,
    policy: Mapping[str, PolicyEntry],
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

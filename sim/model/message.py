"""Messages and per-domain tallies: the only per-message state the model keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.vocabulary import Status


class DomainStats:
    """Streaming counters for one remote domain (a recipient, or an inbound sender)."""

    __slots__ = (
        "connections",
        "delay_max",
        "delay_notices",
        "delay_sum",
        "delivered",
        "delivered_plaintext",
        "delivered_tls",
        "delivered_verified",
        "domain",
        "expired",
        "last",
        "last_failure",
        "messages",
        "ndr",
        "refusals",
        "route",
        "tls_level",
    )

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.messages = 0
        self.connections = 0
        self.refusals = 0  # hosts not used for a transport policy, before connecting
        self.delivered = 0
        self.delivered_tls = 0
        self.delivered_verified = 0
        self.delivered_plaintext = 0
        self.ndr = 0
        self.expired = 0
        self.delay_notices = 0
        self.delay_sum = 0.0
        self.delay_max = 0.0
        self.route = ""
        self.tls_level = ""  # the TLS level in force on its route
        self.last: Status | None = None  # the last deferral or NDR status seen
        self.last_failure = ""  # and its kind (Failure value)

    @property
    def queued(self) -> int:
        return self.messages - self.delivered - self.ndr


class Message:
    """One message for one domain (recipients in one domain travel together)."""

    __slots__ = ("activated", "arrival", "done", "id", "last", "notified", "requiretls", "size", "stats")

    def __init__(self, ident: int, arrival: float, size: float, stats: DomainStats) -> None:
        self.id = ident
        self.arrival = arrival
        self.size = size  # bytes
        self.stats = stats
        self.done = False
        self.notified = False
        self.last: Status | None = None  # the last deferral, for per-message retry (Postfix)
        self.activated = arrival  # when it last entered the active queue (Postfix PREACTIVE_DELAY)
        self.requiretls = False  # sent with MAIL FROM ... REQUIRETLS (RFC 8689)

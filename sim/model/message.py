"""Messages and per-domain tallies: the only per-message state the model keeps."""

from __future__ import annotations


class DomainStats:
    """Streaming counters for one recipient domain."""

    __slots__ = (
        "delay_max",
        "delay_notices",
        "delay_sum",
        "delivered",
        "delivered_plaintext",
        "delivered_tls",
        "delivered_verified",
        "domain",
        "expired",
        "messages",
        "ndr",
        "route",
    )

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.messages = 0
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

    @property
    def queued(self) -> int:
        return self.messages - self.delivered - self.ndr


class Message:
    """One outbound message for one recipient domain (recipients to one domain travel together)."""

    __slots__ = ("arrival", "done", "id", "size", "stats")

    def __init__(self, ident: int, arrival: float, size: float, stats: DomainStats) -> None:
        self.id = ident
        self.arrival = arrival
        self.size = size  # bytes
        self.stats = stats
        self.done = False

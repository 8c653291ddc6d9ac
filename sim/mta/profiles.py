"""MTA profiles: the defaults that differ between mail products.

A profile is data, one frozen record per product; every number cites its source in
``reference/mta-semantics.md``. Scenario settings override any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from sim.routing.address_space import MatchRules
from sim.scenario.model import DeliverySettings

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Intervals between attempts of a queue in Retry: each counts from the previous attempt."""

    intervals: tuple[float, ...]
    subsequent: float

    def after_failures(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failed attempt (1-based)."""
        if failures <= len(self.intervals):
            return self.intervals[failures - 1]
        return self.subsequent


@dataclass(frozen=True, slots=True)
class MtaProfile:
    name: str
    match_rules: MatchRules
    # Exchange 2007+ adds tie-breaks after cost: fewest hops, then lowest connector name
    # (connector-selection.md). Exchange 2003 shares load between equal-cost routes.
    tie_break_hops_and_name: bool
    retry: RetrySchedule
    delay_notification: float | None
    expiration_timeout: float
    expiry_status: str
    expiry_text: str
    # When expiry and delay notices take effect. "deadline": at the instant the timer
    # runs out. "after_attempt": only when an attempt fails after it (Postfix qmgr).
    timers: Literal["deadline", "after_attempt"]
    no_route_status: str

    def with_delivery(self, settings: DeliverySettings) -> MtaProfile:
        """This profile with a virtual server's Delivery-tab overrides applied."""
        intervals = list(self.retry.intervals)
        for index, value in enumerate((settings.first_retry, settings.second_retry, settings.third_retry)):
            if value is not None:
                while len(intervals) <= index:
                    intervals.append(self.retry.subsequent)
                intervals[index] = value
        retry = RetrySchedule(tuple(intervals), settings.subsequent_retry or self.retry.subsequent)
        return replace(
            self,
            retry=retry,
            delay_notification=(
                settings.delay_notification if settings.delay_notification is not None else self.delay_notification
            ),
            expiration_timeout=(
                settings.expiration_timeout if settings.expiration_timeout is not None else self.expiration_timeout
            ),
        )


EXCHANGE_2003 = MtaProfile(
    name="exchange2003",
    match_rules=MatchRules.EXCHANGE2003,
    tie_break_hops_and_name=False,
    # SMTP virtual server Delivery tab: retries after 15, 30, 60, then every 240 minutes,
    # each counted from the previous attempt (technet cc757058; winintro 1642e18f).
    retry=RetrySchedule((15 * MINUTE, 30 * MINUTE, 60 * MINUTE), 240 * MINUTE),
    delay_notification=12 * HOUR,  # outbound delay notification (windowsitlibrary Table2)
    expiration_timeout=2 * DAY,  # outbound expiration timeout (same)
    expiry_status="4.4.7",  # KB 284204: "message in the queue has expired"
    expiry_text="Could not deliver the message in the time limit specified",
    # No source says whether IIS SMTP expires a message at the deadline or at the next
    # retry after it; the product docs describe the timeout as a time limit ("attempts
    # continue until the expiration time-out is reached"), so we take the deadline.
    timers="deadline",
    no_route_status="5.0.0",  # KB 284204: no route; the fix is an SMTP "*" address space
)

EXCHANGE_2016 = MtaProfile(
    name="exchange2016",
    match_rules=MatchRules.EXCHANGE2007,
    tie_break_hops_and_name=True,
    # Set-TransportService: TransientFailureRetryCount 6 x TransientFailureRetryInterval
    # 5 min (Mailbox), then OutboundConnectionFailureRetryInterval 10 min (Mailbox).
    retry=RetrySchedule((5 * MINUTE,) * 6, 10 * MINUTE),
    delay_notification=4 * HOUR,  # DelayNotificationTimeout
    expiration_timeout=2 * DAY,  # MessageExpirationTimeout
    expiry_status="4.4.7",  # "550 4.4.7 QUEUE.Expired; message expired" (kjctech.net, unofficial)
    expiry_text="QUEUE.Expired; message expired",
    timers="deadline",
    # 2007+: no SMTP match sends the message to the Unreachable queue; we report it as an
    # NDR with the Exchange 2003 code so that the two profiles compare (documented).
    no_route_status="5.0.0",
)

PROFILES: dict[str, MtaProfile] = {p.name: p for p in (EXCHANGE_2003, EXCHANGE_2016)}


def get_profile(name: str) -> MtaProfile:
    return PROFILES[name]

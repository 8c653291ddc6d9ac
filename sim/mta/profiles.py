"""MTA profiles: the defaults that differ between mail products.

A profile is data, one frozen record per product; every number cites its source in
``reference/mta-semantics.md`` (section numbers below refer to it). Scenario settings
override any timer (``with_delivery``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from sim.durations import format_duration
from sim.policy.sts_cache import STS_CACHE_RULES, StsCacheRules
from sim.scenario.model import DeliverySettings
from sim.vocabulary import Failure, MatchRules, Mechanism, Status, StsPlugin, TlsLevel, TlsVersion

_T = TypeVar("_T")

MINUTE = 60.0
# Exchange 2003 with no matching address space: NDR 5.0.0 "There is no route" (6d: technet bb124831).
_NO_ROUTE = Status("5.0.0", "No route to the recipient domain: no connector address space matches")
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When a failed destination is tried again.

    ``discipline="queue"`` (Exchange, Sendmail): the whole queue waits; the wait after
    the n-th consecutive failure is ``intervals[n-1]``, then ``subsequent``, each counted
    from the previous attempt. With ``queue_run_delay`` set the retry happens at the next
    queue run instead (Sendmail ``-q``), runs falling on multiples of it.

    ``discipline="message"`` (Postfix): each message is stamped now + clamp(its age,
    ``minimal_backoff``, ``maximal_backoff``) in whole seconds and picked up by the first
    scan of the deferred queue (every ``queue_run_delay``) at or after the stamp less one
    second (qmgr_active.c; reference 6a; ``sim/model/backoff.py``).
    """

    discipline: Literal["queue", "message"]
    intervals: tuple[float, ...] = ()
    subsequent: float = 0.0
    queue_run_delay: float | None = None
    minimal_backoff: float = 0.0
    maximal_backoff: float = 0.0
    # Exchange 2013+: the (count, interval) pairs ``intervals`` was built from, so that
    # a scenario can override one of them (Set-TransportService names).
    glitch: tuple[int, float] | None = None
    transient: tuple[int, float] | None = None

    @classmethod
    def exchange(
        cls, glitch: tuple[int, float], transient: tuple[int, float], outbound_connection_failure: float
    ) -> RetrySchedule:
        """Exchange 2013+ (reference 6d, message-intervals.md): QueueGlitchRetryCount
        retries QueueGlitchRetryInterval apart, then TransientFailureRetryCount retries
        TransientFailureRetryInterval apart, then every OutboundConnectionFailureRetryInterval."""
        (glitches, glitch_interval), (transients, transient_interval) = glitch, transient
        intervals = (glitch_interval,) * glitches + (transient_interval,) * transients
        return cls("queue", intervals, outbound_connection_failure, glitch=glitch, transient=transient)

    def after_failures(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failed attempt (queue discipline)."""
        if failures <= len(self.intervals):
            return self.intervals[failures - 1]
        return self.subsequent

    def run_after(self, at: float) -> float:
        """The first queue run strictly after ``at``."""
        assert self.queue_run_delay is not None
        return (math.floor(at / self.queue_run_delay + 1e-9) + 1) * self.queue_run_delay


@dataclass(frozen=True, slots=True)
class DestinationConcurrency:
    """Postfix's per-destination concurrency (reference 3e, corrected by 6b).

    Deliveries start ``initial`` at a time, in parallel, up to ``limit``. Each failed
    session adds 1/window to a failure count and lowers the window (negative feedback
    1); when the count reaches ``failed_cohort_limit`` the destination is dead: no
    connections, its queued mail deferred with its last reason, until
    minimal_backoff_time has passed (qmgr_queue.c qmgr_queue_throttle/unthrottle).
    """

    initial: int = 5  # initial_destination_concurrency
    limit: int = 20  # default_destination_concurrency_limit
    failed_cohort_limit: int = 1  # default_destination_concurrency_failed_cohort_limit


@dataclass(frozen=True, slots=True)
class MtaProfile:
    name: str
    summary: str
    match_rules: MatchRules
    # Exchange 2007+ adds tie-breaks after cost: fewest hops, then lowest connector name
    # (connector-selection.md). Exchange 2003 shares load between equal-cost routes.
    tie_break_hops_and_name: bool
    retry: RetrySchedule
    delay_notification: float | None
    expiration_timeout: float
    # When expiry and delay notices take effect. "deadline": at the instant the timer
    # runs out. "after_attempt": only when an attempt fails after it.
    timers: Literal["deadline", "after_attempt"]
    # The NDR of an expired message; None: the last deferral's status (Postfix, 3d).
    expiry: Status | None
    # After a failed handshake under opportunistic TLS: "never" retry in plaintext
    # (defer), or retry in plaintext once the message is older than the minimal
    # backoff time (Postfix >= 3.0, 3b).
    handshake_fallback: Literal["never", "after_min_backoff"]
    statuses: dict[Failure, Status] = field(hash=False)
    # The TLS versions the product speaks, [min, max].
    tls_versions: tuple[TlsVersion, TlsVersion] = ("1.0", "1.3")
    # Exchange 2003 uses the virtual server's certificate for TLS in both directions:
    # without one (a standalone-CA request still pending) it cannot start TLS at all.
    client_tls_needs_certificate: bool = False
    no_route: Status = _NO_ROUTE
    # No enabled, in-scope connector matches: "ndr" (Exchange 2003: NDR 5.0.0), or
    # "unreachable" (Exchange 2007+: the Unreachable queue until MessageExpirationTimeout,
    # then the NDR; reference 6d, connector-selection.md).
    no_match: Literal["ndr", "unreachable"] = "ndr"
    # Postfix: parallel sessions per destination and dead-destination detection; None:
    # the queue discipline's own connection handling (whole-queue retry).
    concurrency: DestinationConcurrency | None = None
    # The outbound TLS levels the product itself offers; the others are what-if levels
    # that tlssim can simulate but no setting of the product produces (6d).
    product_tls_levels: frozenset[TlsLevel] = frozenset(TlsLevel)
    # Transport policies (modern-policies 5): what the product can apply as a sender,
    # what it applies unless told otherwise, and how.
    mechanisms: frozenset[Mechanism] = frozenset()
    sts_default: Literal["apply", "ignore"] = "ignore"
    dane_default: Literal["none", "opportunistic", "mandatory"] = "none"
    # How enforced MTA-STS mx patterns are checked: "mx-name" (RFC 8461: an MX outside
    # the patterns is skipped; "*." matches one label), or "certificate" (Postfix 3.7
    # with postfix-mta-sts-resolver: only the certificate is matched against the
    # patterns, a "*." pattern matching any number of labels; modern-policies 8).
    sts_mx_check: Literal["mx-name", "certificate"] = "mx-name"
    # MTA-STS testing mode shows in the product's TLS-RPT (Exchange Online); the Postfix
    # plug-in answers nothing for it by default (modern-policies 5).
    sts_testing_reported: bool = False
    # RFC 8461 s.2: DANE takes precedence over MTA-STS. Postfix with a policy plug-in
    # does the reverse: an MTA-STS answer replaces DANE (modern-policies 8).
    dane_over_sts: bool = True
    # The organization-name and contact-info of its TLS-RPT reports (modern-policies 4f);
    # an empty name: the sending domain's own, with the contact's local part at it.
    reporter: tuple[str, str] | None = None
    # How an administrator writes a per-destination TLS exception in this product (the
    # decision packet, sim/report/exceptions.py): smtp_tls_policy_maps lines, an Exchange
    # 2003 connector on a virtual server without TLS, Exchange 2007+ send connectors,
    # Exchange Online outbound connectors; None: tlssim writes no product syntax.
    exception_syntax: Literal["postfix", "exchange2003", "exchange2007", "exchange-online"] | None = None
    # How it keeps recipients' MTA-STS policies when it applies MTA-STS itself
    # (sim/model/sts.py); a product that asks a plug-in keeps the plug-in's rules.
    sts_cache: StsCacheRules = STS_CACHE_RULES["rfc8461"]
    # Postfix and Sendmail apply MTA-STS through a policy plug-in (a sender setting,
    # ``mta_sts_plugin``; this is the default). ``policy_attributes``: the product takes
    # the policy attributes a plug-in may add to its answer (Postfix >= 3.10); only then
    # can it check the MX name against the patterns (3.10.5), and before it such an
    # answer is refused (issue 20 s.3).
    sts_plugin: StsPlugin | None = None
    policy_attributes: bool = False
    sources: str = ""

    def describe(self) -> dict[str, object]:
        """The profile's defaults as plain data (for ``tlssim profiles --json``)."""
        retry = self.retry
        if retry.discipline == "message":
            scan = format_duration(retry.queue_run_delay or 0)
            schedule = (
                f"per message: stamped now + clamp(age, {format_duration(retry.minimal_backoff)}, "
                f"{format_duration(retry.maximal_backoff)}) in whole seconds, taken by the deferred-queue "
                f"scan (every {scan}) at or after stamp - 1s"
            )
        elif retry.queue_run_delay is not None:
            schedule = f"whole queue: at each queue run, every {format_duration(retry.queue_run_delay)}"
        elif retry.glitch is not None and retry.transient is not None:
            (glitches, glitch), (transients, transient) = retry.glitch, retry.transient
            schedule = (
                f"whole queue: {glitches} x {format_duration(glitch)} (glitch), {transients} x "
                f"{format_duration(transient)} (transient), then every {format_duration(retry.subsequent)}"
            )
        else:
            steps = ", ".join(format_duration(i) for i in retry.intervals)
            schedule = f"whole queue: {steps}, then every {format_duration(retry.subsequent)}"
        concurrency = self.concurrency
        sessions = (
            f"{concurrency.initial} in parallel per destination, up to {concurrency.limit}; dead after "
            f"{concurrency.failed_cohort_limit} failed cohort, mail then deferred without a connection "
            f"for {format_duration(self.retry.minimal_backoff)}"
            if concurrency is not None
            else "a failed attempt puts the whole queue in Retry"
        )
        return {
            "name": self.name,
            "summary": self.summary,
            "retry": schedule,
            "sessions": sessions,
            "delay_notification": format_duration(self.delay_notification) if self.delay_notification else "off",
            "expiration_timeout": format_duration(self.expiration_timeout),
            "expiry_takes_effect": "at the deadline" if self.timers == "deadline" else "after a failed attempt",
            "expiry_status": self.expiry.code if self.expiry else "last deferral status",
            "handshake_failure": (
                "retry in plaintext once the message is older than the minimal backoff"
                if self.handshake_fallback == "after_min_backoff"
                else "defer"
            ),
            "address_spaces": "exchange2003" if self.match_rules is MatchRules.EXCHANGE2003 else "exact or *.domain",
            "route_tie_breaks": "cost, hops, name" if self.tie_break_hops_and_name else "cost, then share load",
            "no_matching_connector": (
                f"NDR {self.no_route.code}" if self.no_match == "ndr" else "Unreachable queue until expiry, then NDR"
            ),
            "tls_levels": {
                level.value: "product setting" if level in self.product_tls_levels else "what-if only"
                for level in TlsLevel
            },
            "transport_policies": {
                mechanism.value: "applies" if mechanism in self.mechanisms else "ignores" for mechanism in Mechanism
            },
            "transport_policy_defaults": f"mta_sts: {self.sts_default}, dane: {self.dane_default}",
            "statuses": {failure.value: str(status) for failure, status in self.statuses.items()},
            "sources": self.sources,
        }

    def status(self, failure: Failure) -> Status:
        found = self.statuses.get(failure)
        return found if found is not None else _POLICY_STATUSES[failure]

    def with_delivery(self, settings: DeliverySettings) -> MtaProfile:
        """This profile with a virtual server's delivery overrides applied."""
        retry = self.retry
        if retry.glitch is not None and retry.transient is not None:
            retry = RetrySchedule.exchange(
                (
                    _pick(settings.queue_glitch_retry_count, retry.glitch[0]),
                    _pick(settings.queue_glitch_retry_interval, retry.glitch[1]),
                ),
                (
                    _pick(settings.transient_failure_retry_count, retry.transient[0]),
                    _pick(settings.transient_failure_retry_interval, retry.transient[1]),
                ),
                _pick(settings.outbound_connection_failure_retry_interval, retry.subsequent),
            )
        intervals = list(retry.intervals)
        for index, value in enumerate((settings.first_retry, settings.second_retry, settings.third_retry)):
            if value is not None:
                while len(intervals) <= index:
                    intervals.append(retry.subsequent)
                intervals[index] = value
        retry = replace(
            retry,
            intervals=tuple(intervals),
            subsequent=_pick(settings.subsequent_retry, retry.subsequent),
            queue_run_delay=_pick(settings.queue_run_delay, retry.queue_run_delay),
            minimal_backoff=_pick(settings.minimal_backoff_time, retry.minimal_backoff),
            maximal_backoff=_pick(settings.maximal_backoff_time, retry.maximal_backoff),
        )
        notice = self.delay_notification
        if settings.delay_notification is not None:
            notice = settings.delay_notification or None  # 0 turns notices off (Postfix's default)
        concurrency = self.concurrency
        if concurrency is not None:
            concurrency = DestinationConcurrency(
                _pick(settings.initial_destination_concurrency, concurrency.initial),
                _pick(settings.destination_concurrency_limit, concurrency.limit),
                _pick(settings.destination_concurrency_failed_cohort_limit, concurrency.failed_cohort_limit),
            )
        return replace(
            self,
            retry=retry,
            concurrency=concurrency,
            delay_notification=notice,
            expiration_timeout=_pick(settings.expiration_timeout, self.expiration_timeout),
        )


def _pick(value: _T | None, default: _T) -> _T:
    return default if value is None else value


# Remote-side texts shared by every profile: what the receiving server says.
_MUST_STARTTLS = Status("5.7.0", "530 5.7.0 Must issue a STARTTLS command first")  # RFC 3207 s.4
_GREYLISTED = Status("4.7.1", "450 4.7.1 Greylisted, please try again later")  # postgrey's reply
# Our own side: no certificate on the virtual server yet (a standalone CA request pending).
_NO_CERTIFICATE = Status("4.7.0", "TLS unavailable: no certificate on the virtual server")
# No usable route (6d): Exchange 2003's "Messages with an unreachable destination" queue
# (bb219041), Exchange 2007+'s Unreachable queue. RFC 3463 X.4.4 "unable to route".
_UNREACHABLE = Status("4.4.4", "Unreachable destination: no route is available (waiting in the unreachable queue)")

# Transport-policy failures, as Postfix writes them (modern-policies 5 and 8); a profile
# maps its own where its product has them. REQUIRETLS codes: RFC 8689 (registry).
_POLICY_STATUSES = {
    Failure.STS_MX_MISMATCH: Status("4.7.5", "MX name does not match the MTA-STS mx patterns"),  # DSN NOT VERIFIED
    Failure.STS_NO_STARTTLS: Status("4.7.4", "TLS is required, but was not offered by host"),
    Failure.STS_CERTIFICATE: Status("4.7.5", "Server certificate not verified"),
    Failure.DANE_NO_STARTTLS: Status("4.7.4", "TLS is required, but was not offered by host"),
    Failure.DANE_MISMATCH: Status("4.7.5", "Server certificate not verified"),
    Failure.DANE_LOOKUP: Status("4.7.5", "TLSA lookup error"),  # "... for <mx>:25" (MP 8)
    Failure.DANE_REQUIRED: Status("4.7.5", ""),  # the reason alone: "non DNSSEC destination" (MP 8)
    Failure.DANE_HANDSHAKE: Status("4.7.5", "Cannot start TLS: handshake failure"),  # MP 8, as at encrypt
    Failure.STS_PLUGIN: Status("4.7.5", "client TLS configuration problem"),  # issue 20 s.3, measured on 3.7
    # "Host or domain name not found. Name service error for name=... type=MX: Host not
    # found, try again" (issue 20 s.3, measured; the text is the session's detail).
    Failure.MX_LOOKUP: Status("4.4.3", ""),
    Failure.REQUIRETLS: Status(
        "5.7.30", "Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS"
    ),
    Failure.REQUIRETLS_UNVERIFIED: Status("5.7.10", "Sender requested REQUIRETLS, but the server was not verified"),
}

EXCHANGE_2003 = MtaProfile(
    name="exchange2003",
    exception_syntax="exchange2003",
    summary="Exchange 2000/2003 SMTP virtual server",
    match_rules=MatchRules.EXCHANGE2003,
    tie_break_hops_and_name=False,
    # Delivery tab: retries after 15, 30, 60, then every 240 minutes, each counted from
    # the previous attempt (1b: technet cc757058; winintro 1642e18f).
    retry=RetrySchedule("queue", (15 * MINUTE, 30 * MINUTE, 60 * MINUTE), 240 * MINUTE),
    delay_notification=12 * HOUR,  # outbound delay notification (1b: windowsitlibrary Table2)
    expiration_timeout=2 * DAY,  # outbound expiration timeout (1b)
    # No source says whether IIS SMTP expires a message at the deadline or at the next
    # retry after it; the product docs call the timeout a time limit ("attempts continue
    # until the expiration time-out is reached"), so we take the deadline.
    timers="deadline",
    expiry=Status("4.4.7", "Could not deliver the message in the time limit specified"),  # KB 284204
    handshake_fallback="never",  # no plaintext retry is documented (2a, NOT FOUND)
    statuses={
        Failure.NO_STARTTLS: Status("4.7.4", "The remote SMTP service does not support TLS"),  # KB 329061
        Failure.HANDSHAKE: Status("4.7.5", "TLS negotiation failed"),  # RFC 3463 X.7.5
        Failure.CERTIFICATE: Status("4.7.5", "Certificate validation failed"),
        Failure.MUST_STARTTLS: _MUST_STARTTLS,  # NDR "#5.7.0 SMTP: 530 5.7.0" (KB 329061)
        Failure.HOST_DOWN: Status("4.4.1", "Host not responding"),  # KB 284204
        Failure.GREYLISTED: _GREYLISTED,
        Failure.NO_CERTIFICATE: _NO_CERTIFICATE,
        Failure.UNREACHABLE: _UNREACHABLE,
    },
    # Windows Server 2003 Schannel: SSL 3.0 and TLS 1.0 only (a TLS-1.0-only Windows 2003
    # SMTP server could not receive from EXO, reference 4b).
    tls_versions=("1.0", "1.0"),
    client_tls_needs_certificate=True,
    # The TLS box on the virtual server or connector makes TLS mandatory: Exchange 2003
    # has no opportunistic outbound TLS and no certificate validation setting (6d).
    product_tls_levels=frozenset({TlsLevel.OFF, TlsLevel.REQUIRED}),
    sources="reference 1a, 1b, 4b, 6d; KB 284204, KB 329061",
)

_EXCHANGE_2016_STATUSES = {
    # EXO/Exchange connector errors (2a, mail-flow-intelligence.md).
    Failure.NO_STARTTLS: Status("4.4.317", "450 4.4.317 Cannot connect to remote server: TLS required, not supported"),
    Failure.HANDSHAKE: Status("4.4.0", "451 4.4.0 SMTPSEND.SuspiciousRemoteServerError"),  # kjctech (unofficial)
    Failure.CERTIFICATE: Status("4.7.320", "450 4.7.320 Certificate validation failed"),
    Failure.MUST_STARTTLS: _MUST_STARTTLS,
    Failure.HOST_DOWN: Status("4.4.315", "450 4.4.315 Connection timed out"),
    Failure.GREYLISTED: _GREYLISTED,
    Failure.NO_CERTIFICATE: _NO_CERTIFICATE,
    Failure.UNREACHABLE: _UNREACHABLE,
}

EXCHANGE_2016 = MtaProfile(
    name="exchange2016",
    exception_syntax="exchange2007",
    summary="Exchange 2007-SE on-premises transport (send connectors)",
    match_rules=MatchRules.EXCHANGE2007,
    tie_break_hops_and_name=True,
    # 6d (message-intervals.md, Set-TransportService): QueueGlitchRetryCount 4 x
    # QueueGlitchRetryInterval 1 min, then TransientFailureRetryCount 6 x
    # TransientFailureRetryInterval 5 min (Mailbox), then OutboundConnectionFailureRetryInterval
    # 10 min (Mailbox).
    retry=RetrySchedule.exchange((4, 1 * MINUTE), (6, 5 * MINUTE), 10 * MINUTE),
    delay_notification=4 * HOUR,  # DelayNotificationTimeout (2b)
    expiration_timeout=2 * DAY,  # MessageExpirationTimeout (2b)
    timers="deadline",
    expiry=Status("4.4.7", "550 4.4.7 QUEUE.Expired; message expired"),  # kjctech.net (unofficial)
    handshake_fallback="never",  # plaintext retry after a failed handshake: NOT FOUND (2a)
    statuses=_EXCHANGE_2016_STATUSES,
    no_match="unreachable",  # the Unreachable queue, then NDR on expiry (6d, connector-selection.md)
    # Exchange 2019 CU15 (and SE) brought TLS 1.3 to HTTPS clients only, not to SMTP
    # (reference mta-semantics 2, "Versions").
    tls_versions=("1.0", "1.2"),
    sources="reference 2a, 2b; Set-TransportService.md; connector-selection.md",
)

EXCHANGE_2016_EDGE = replace(
    EXCHANGE_2016,
    name="exchange2016-edge",
    summary="Exchange 2007-SE Edge Transport",
    # Edge defaults (2b, 6d): TransientFailureRetryInterval 10 min,
    # OutboundConnectionFailureRetryInterval 30 min.
    retry=RetrySchedule.exchange((4, 1 * MINUTE), (6, 10 * MINUTE), 30 * MINUTE),
    sources="reference 2b, 6d; Set-TransportService.md; message-intervals.md",
)

EXCHANGE_2019 = replace(
    EXCHANGE_2016,
    name="exchange2019",
    summary="Exchange 2019 and SE on-premises transport (the 2016 defaults)",
    # Reference 2b gives one set of Set-TransportService defaults for Exchange 2013 to SE,
    # and no source found here documents a different TLS fallback or status code for
    # 2019: the profile differs in name only, so that an import keeps the product.
    sources="reference 2a, 2b (Set-TransportService, Exchange 2013 to SE)",
)

EXCHANGE_ONLINE = replace(
    EXCHANGE_2016,
    name="exchange-online",
    exception_syntax="exchange-online",
    # Outbound MTA-STS always on since Feb 2022, DANE on by default since 2022, TLS-RPT
    # reports as "Microsoft Corporation"; no documented REQUIRETLS (modern-policies 5).
    mechanisms=frozenset({Mechanism.MTA_STS, Mechanism.DANE, Mechanism.TLS_RPT}),
    sts_default="apply",
    dane_default="opportunistic",
    sts_testing_reported=True,
    reporter=("Microsoft Corporation", "tlsrpt-noreply@microsoft.com"),
    statuses={
        **_EXCHANGE_2016_STATUSES,
        # "Email non-delivery reports and SMTP errors in Exchange Online" (modern-policies 5).
        Failure.STS_MX_MISMATCH: Status("4.4.8", "MX hosts of the domain failed MTA-STS validation"),
        Failure.STS_NO_STARTTLS: Status(
            "4.7.321", "starttls-not-supported: Destination mail server must support TLS to receive mail."
        ),
        Failure.STS_CERTIFICATE: Status("4.7.5", "Remote certificate failed MTA-STS validation"),
        Failure.DANE_NO_STARTTLS: Status(
            "4.7.321", "starttls-not-supported: Destination mail server must support TLS to receive mail."
        ),
        Failure.DANE_MISMATCH: Status("4.7.323", "tlsa-invalid: The domain failed DANE validation."),
        Failure.DANE_LOOKUP: Status("4.7.324", "dnssec-invalid"),
        Failure.MX_LOOKUP: Status("4.7.324", "dnssec-invalid"),  # its DNSSEC failure code (assumption)
        Failure.DANE_REQUIRED: Status("4.7.323", "tlsa-invalid: The domain failed DANE validation."),  # assumption
    },
    summary="Exchange Online outbound connectors",
    # EXO connector delivery is "retried 24 h, then NDR" (2b, connectors-mail-flow-intelligence.md).
    # EXO's retry intervals are not published; we keep the on-premises ones (assumption).
    expiration_timeout=1 * DAY,
    tls_versions=("1.2", "1.3"),  # EXO never sends with TLS 1.0/1.1 (Exchange Team blog 2021, 2a)
    # EXO connectors offer opportunistic TLS (the default), "always use TLS" and
    # certificate validation; no setting turns STARTTLS off (assumption, 2a).
    product_tls_levels=frozenset({TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED, TlsLevel.VERIFY}),
    sources="reference 2a, 2b; connectors-mail-flow-intelligence.md",
)

POSTFIX = MtaProfile(
    name="postfix",
    exception_syntax="postfix",
    summary="Postfix >= 3.0 smtp(8) and qmgr(8)",
    match_rules=MatchRules.EXCHANGE2007,  # transport_maps: exact domain, .domain for subdomains (3c)
    tie_break_hops_and_name=True,
    # 3d: minimal_backoff_time 300 s, maximal_backoff_time 4000 s, queue_run_delay 300 s;
    # backoff = clamp(message age, min, max) (qmgr_active.c).
    retry=RetrySchedule("message", queue_run_delay=300.0, minimal_backoff=300.0, maximal_backoff=4000.0),
    delay_notification=None,  # delay_warning_time = 0: off by default (3d)
    expiration_timeout=5 * DAY,  # maximal_queue_lifetime (3d)
    timers="after_attempt",  # expiry is tested only after a failed attempt (3d)
    expiry=None,  # the bounce carries the last deferral code, not 4.4.7 (bounce_notify_util.c)
    handshake_fallback="after_min_backoff",  # Postfix >= 3.0 PREACTIVE_DELAY (3b, 6a)
    concurrency=DestinationConcurrency(),  # 3e, 6b
    statuses={
        Failure.NO_STARTTLS: Status("4.7.4", "TLS is required, but was not offered by host"),  # 3a
        Failure.HANDSHAKE: Status("4.7.5", "Cannot start TLS: handshake failure"),  # 3b
        Failure.CERTIFICATE: Status("4.7.5", "Server certificate not verified"),  # 3a
        Failure.MUST_STARTTLS: _MUST_STARTTLS,
        Failure.HOST_DOWN: Status("4.4.1", "connect to host: Connection timed out"),
        Failure.GREYLISTED: _GREYLISTED,
        Failure.NO_CERTIFICATE: _NO_CERTIFICATE,
        Failure.UNREACHABLE: _UNREACHABLE,
    },
    # DANE (dane/dane-only since 2.11) and MTA-STS through a policy-map plug-in
    # (postfix-mta-sts-resolver): modelled as Postfix 3.7 measured (modern-policies 8).
    mechanisms=frozenset({Mechanism.MTA_STS, Mechanism.DANE}),
    sts_mx_check="certificate",
    dane_over_sts=False,
    sts_plugin="postfix-mta-sts-resolver",
    sources="reference 3a, 3b, 3d; postconf.proto; qmgr_active.c; smtp.h; modern-policies 5, 8",
)

POSTFIX_3_10 = replace(
    POSTFIX,
    name="postfix-3.10",
    summary="Postfix 3.10 (Debian 13): TLS-RPT, policy attributes from the MTA-STS plug-in, MX-name check",
    # 3.10 takes the policy attributes a plug-in adds (TLSRPT_README) and reports TLS-RPT
    # with libtlsrpt; 3.10.5's smtp_tls_enforce_sts_mx_patterns checks the MX name against
    # the patterns (one label), but only when the plug-in forwarded them: with
    # postfix-mta-sts-resolver as installed (tlsrpt: false) it is still the certificate
    # check (issue 20 s.3; modern-policies 3, 5).
    mechanisms=frozenset({Mechanism.MTA_STS, Mechanism.DANE, Mechanism.TLS_RPT}),
    sts_mx_check="mx-name",
    policy_attributes=True,
    reporter=("", "postmaster"),  # the sending organisation's own name and contact (assumption)
    sources="modern-policies 3, 4b, 5; TLSRPT_README; postconf.5 smtp_tls_enforce_sts_mx_patterns",
)

POSTFIX_3_11 = replace(
    POSTFIX_3_10,
    name="postfix-3.11",
    summary="Postfix 3.11: as 3.10, and REQUIRETLS",
    mechanisms=frozenset(Mechanism),
    sources="modern-policies 3, 4b, 5; REQUIRETLS_README; TLSRPT_README",
)

SENDMAIL = MtaProfile(
    name="sendmail",
    summary="Sendmail 8 (opportunistic STARTTLS, queue runs)",
    match_rules=MatchRules.EXCHANGE2007,
    tie_break_hops_and_name=True,
    # Every queued message is retried at each queue run. The interval is the daemon's
    # -q flag; -q30m is the Installation and Operation Guide's example (site-dependent).
    retry=RetrySchedule("queue", queue_run_delay=30 * MINUTE),
    delay_notification=4 * HOUR,  # Timeout.queuewarn 4h (cf/README)
    expiration_timeout=5 * DAY,  # Timeout.queuereturn 5d (cf/README)
    timers="after_attempt",  # timeouts are checked when a queue run processes the message
    expiry=Status("4.4.7", "Cannot send message for 5 days"),
    handshake_fallback="never",  # TLSFallbacktoClear is off by default (4a)
    statuses={
        Failure.NO_STARTTLS: Status("4.7.0", "403 4.7.0 encryption too weak 0 less than 128"),  # TLS_Srv ENCR
        Failure.HANDSHAKE: Status("4.7.0", "403 4.7.0 TLS handshake failed."),  # 4a (cf/README)
        Failure.CERTIFICATE: Status("4.7.0", "403 4.7.0 not authenticated"),  # TLS_Srv VERIFY
        Failure.MUST_STARTTLS: _MUST_STARTTLS,
        Failure.HOST_DOWN: Status("4.4.1", "Deferred: Connection timed out"),
        Failure.GREYLISTED: _GREYLISTED,
        Failure.NO_CERTIFICATE: _NO_CERTIFICATE,
        Failure.UNREACHABLE: _UNREACHABLE,
    },
    # 8.17.1: experimental MTA-STS (_FFR_MTA_STS, through postfix-mta-sts-resolver) and
    # DANE; off unless configured; their status codes NOT FOUND (modern-policies 5).
    mechanisms=frozenset({Mechanism.MTA_STS, Mechanism.DANE}),
    sts_mx_check="certificate",
    sts_plugin="postfix-mta-sts-resolver",  # the same plug-in, as a socketmap (MP 5)
    sources="reference 4a; sendmail cf/README; modern-policies 5",
)

# Gmail / Google Workspace as a sender. Google publishes neither its retry schedule nor
# its queue lifetime; what is here was measured or observed, and says so.
GMAIL = MtaProfile(
    name="gmail",
    summary="Gmail / Google Workspace as a sender (measured and observed; Google documents none of it)",
    match_rules=MatchRules.EXCHANGE2007,
    tie_break_hops_and_name=True,
    # Attempts 6, 29, 57, 99, 162, 230, 309 and 435 min after the first, under a 6 h
    # greylist (tls-population 6: Pagani et al., DSN 2016, slide 36); later retries NOT
    # FOUND: every 126 min, the last measured gap (assumption).
    retry=RetrySchedule("queue", tuple(m * MINUTE for m in (6, 23, 28, 42, 63, 68, 79, 126)), 126 * MINUTE),
    # A real Gmail delay notice (pastebin.com/kAAtD00k, 2018): sent at a failed attempt
    # 22 h 7 min after submission, "Gmail will retry for 49 more hours", Will-Retry-Until
    # exactly 72 h after submission. One observation: the threshold is NOT FOUND.
    delay_notification=22 * HOUR,
    expiration_timeout=3 * DAY,
    timers="after_attempt",
    expiry=None,  # the final notice quotes the remote server's last reply (assumption, as in that DSN)
    handshake_fallback="never",  # NOT FOUND (assumption)
    statuses={
        Failure.NO_STARTTLS: Status("4.7.4", "TLS is required, but was not offered by host"),  # NOT FOUND
        Failure.HANDSHAKE: Status("4.7.5", "TLS handshake failed"),  # NOT FOUND
        Failure.CERTIFICATE: Status("4.7.5", "Certificate validation failed"),  # NOT FOUND
        Failure.MUST_STARTTLS: _MUST_STARTTLS,
        Failure.HOST_DOWN: Status("4.4.1", "The recipient server did not accept our requests to connect"),
        Failure.GREYLISTED: _GREYLISTED,
        Failure.NO_CERTIFICATE: _NO_CERTIFICATE,
        Failure.UNREACHABLE: _UNREACHABLE,
    },
    # A domain with MTA-STS needs TLS 1.2+ and a public certificate (Google Workspace Help
    # 9261504, modern-policies 5).
    tls_versions=("1.2", "1.3"),
    # Enforces recipients' MTA-STS since 2019 and reports as "Google Inc."; DANE as a sender
    # NOT FOUND (modern-policies 4f, 5). Testing-mode failures are reported (the corpus's
    # smtp_tls.json: a testing policy's validation failures from Google's 209.85.0.0/16).
    mechanisms=frozenset({Mechanism.MTA_STS, Mechanism.TLS_RPT}),
    sts_default="apply",
    sts_testing_reported=True,
    reporter=("Google Inc.", "smtp-tls-reporting@google.com"),
    product_tls_levels=frozenset({TlsLevel.OPPORTUNISTIC, TlsLevel.VERIFY}),
    sources="tls-population 6 (Pagani DSN 2016); pastebin.com/kAAtD00k (a Gmail delay DSN); modern-policies 4f, 5",
)

# A sender known only by its TLS-RPT reports: it applies MTA-STS and reports (it sent
# them), and keeps RFC 5321's schedule (s.4.5.4.1: retry "at least 30 minutes" apart,
# give up after "at least 4-5 days"). Every number is the RFC's floor, not a product's.
GENERIC = replace(
    GMAIL,
    name="generic",
    summary="An RFC 5321 sender that applies MTA-STS and sends TLS-RPT (product unknown)",
    retry=RetrySchedule("queue", (), 30 * MINUTE),
    delay_notification=4 * HOUR,  # RFC 5321 s.4.5.4.1 does not say; the common 4 h (Exchange, Sendmail)
    expiration_timeout=5 * DAY,
    expiry=Status("4.4.7", "Delivery time expired"),  # RFC 3463 X.4.7
    tls_versions=("1.0", "1.3"),
    reporter=("", "postmaster"),  # under its own domain
    product_tls_levels=frozenset(TlsLevel),
    sources="RFC 5321 s.4.5.4.1; RFC 3463; modern-policies 4",
)

PROFILES: dict[str, MtaProfile] = {
    p.name: p
    for p in (
        EXCHANGE_2003,
        EXCHANGE_2016,
        EXCHANGE_2016_EDGE,
        EXCHANGE_2019,
        EXCHANGE_ONLINE,
        POSTFIX,
        POSTFIX_3_10,
        POSTFIX_3_11,
        SENDMAIL,
        GMAIL,
        GENERIC,
    )
}


def get_profile(name: str) -> MtaProfile:
    return PROFILES[name]

"""The notes ``validate`` and ``run`` print: settings the real product does not have.

A pure function of the scenario's organisation and flows: it needs neither the remote
world nor a route, so ``tlssim validate`` prints it without planning a population."""

from __future__ import annotations

from sim.mta.profiles import MtaProfile, get_profile
from sim.policy.tls_level import entry_level, level_in_force
from sim.scenario.model import Scenario
from sim.vocabulary import ClientTls, Mechanism, TlsLevel, server_of


def notes(scenario: Scenario) -> list[str]:
    """One line per TLS level in force that the product itself cannot be set to
    (Exchange 2003 has no opportunistic outbound TLS, reference 6d): tlssim simulates
    it, but it is a what-if, not a setting the architect could make; and one per
    delivery setting that the server's product does not have (it changes nothing)."""
    organisation = scenario.organisation
    server_profile = {s.name: get_profile(s.profile or organisation.profile) for s in organisation.servers}
    virtual_servers = organisation.virtual_servers_by_ref()
    found: dict[str, None] = {}
    for connector in organisation.connectors:
        for source in connector.source:
            vs = virtual_servers[source]
            profile = server_profile[server_of(source)]
            ignore = connector.ignore_starttls
            levels = {level_in_force(vs.outbound_tls, {}, "", connector.tls_level, ignore_starttls=ignore)}
            levels |= {
                level_in_force(entry_level(entry), {}, "", connector.tls_level) for entry in vs.tls_policy.values()
            }
            for level in sorted(levels - profile.product_tls_levels):
                found[_what_if(f"{source} via connector {connector.name}", level, profile)] = None
    for flow in scenario.traffic.inbound:
        profile = get_profile(flow.profile)
        level = TlsLevel.OFF if flow.tls is ClientTls.NONE else flow.tls_level
        if level not in profile.product_tls_levels:
            found[_what_if(f"inbound sender {flow.from_domain}", level, profile)] = None
    for name, vs in virtual_servers.items():
        profile = server_profile[server_of(name)]
        for field in sorted(vs.delivery.model_fields_set - set(applies_to(profile))):
            found[f"{name}: delivery.{field} has no effect under {profile.name}"] = None
        lacking = [
            f"{setting} {value}"
            for setting, value, mechanism in (
                ("mta_sts", vs.mta_sts, Mechanism.MTA_STS),
                ("dane", vs.dane, Mechanism.DANE),
            )
            if value not in (None, "ignore", "none") and mechanism not in profile.mechanisms
        ]
        for setting in lacking:
            found[f"{name}: {setting} has no effect: {profile.name} does not apply it"] = None
    return list(found)


_EXCHANGE_RETRY = (
    "queue_glitch_retry_count",
    "queue_glitch_retry_interval",
    "transient_failure_retry_count",
    "transient_failure_retry_interval",
    "outbound_connection_failure_retry_interval",
)
_POSTFIX_ONLY = (
    "queue_run_delay",
    "minimal_backoff_time",
    "maximal_backoff_time",
    "initial_destination_concurrency",
    "destination_concurrency_limit",
    "destination_concurrency_failed_cohort_limit",
)
_RETRY_STEPS = ("first_retry", "second_retry", "third_retry", "subsequent_retry")


def applies_to(profile: MtaProfile) -> tuple[str, ...]:
    """The delivery settings that change something under ``profile``."""
    common = ("delay_notification", "expiration_timeout")
    retry = profile.retry
    if retry.discipline == "message":
        return (*common, *_POSTFIX_ONLY)
    if retry.queue_run_delay is not None:  # Sendmail: queue runs
        return (*common, "queue_run_delay")
    if retry.glitch is not None:
        return (*common, *_RETRY_STEPS, *_EXCHANGE_RETRY)
    return (*common, *_RETRY_STEPS)


def _what_if(where: str, level: TlsLevel, profile: MtaProfile) -> str:
    offered = ", ".join(sorted(level.value for level in profile.product_tls_levels))
    return f"{where}: TLS level {level.value} under {profile.name} is a what-if level (the product offers: {offered})"

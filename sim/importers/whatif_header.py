"""The header of an imported what-if: what was observed, what was assumed, what the log
could not show and would change the prediction, in lines an architect reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.importers.observed import Observations, host_class
from sim.importers.whatif import RemoteWorld, hourly_profile, share


def forcing_line(organisation: dict[str, Any], server: str, vs: dict[str, Any]) -> str:
    """The override that forces TLS on the sender, in the organisation's own terms: the
    Internet send connector's RequireTLS for Exchange 2007+, else the virtual server's level."""
    profile = str(organisation.get("profile", "exchange2003"))
    if profile.startswith("exchange") and profile != "exchange2003":
        for connector in organisation.get("connectors", []):
            if any(space.get("pattern") == "*" for space in connector.get("address_spaces", [])):
                return f"overrides: {{connectors.{connector['name']}.require_tls: true}}"
    level = "encrypt" if profile.startswith("postfix") else "required"
    return f"overrides: {{servers.{server}.virtual_servers.{vs['name']}.outbound_tls: {level}}}"


def _percent(obs: Observations, domains: list[str]) -> str:
    return f"{100 * share(obs, domains):.1f}% of outbound mail"


def whatif_header(
    obs: Observations, world: RemoteWorld, files: list[Path], product: str, advice: str, forcing: str
) -> list[str]:
    span = f"{obs.first:%Y-%m-%d %H:%M} to {obs.last:%Y-%m-%d %H:%M} UTC" if obs.first and obs.last else "no times"
    domains = obs.outbound_domains()
    lines = [
        f"Made by tlssim from {len(files)} {product} log file(s), {span}: {obs.messages:,} outbound messages",
        f"to {len(domains)} recipient domain(s) (observed.csv). The rate counts a message once per domain.",
        "Observed: domains and their weights, their hosts and each host's TLS (remotes.yaml gives each",
        "host's provenance: observed with its sessions, or assumed and why), the mean message size.",
        "Assumed: a constant arrival rate (the log's hours below), lognormal sizes (sigma 1), 6 days run.",
        f"Arrivals by hour of day: {hourly_profile(obs)}",
    ]
    unknowns = []
    if world.unknown_domains:
        unknowns += [
            f"  - the TLS of {len(world.unknown_domains)} domain(s) ({_percent(obs, world.unknown_domains)}): the log",
            "    shows no TLS facts for their hosts; modelled as accepting TLS. If they cannot, forcing TLS",
            f"    returns up to that much more. Probe them (tlssim probe --file unknown-domains.txt), and {advice}.",
        ]
    if world.encrypted_domains:
        unknowns.append(
            f"  - certificates of {len(world.encrypted_domains)} domain(s) ({_percent(obs, world.encrypted_domains)}):"
            " TLS worked, unverified; a verify level is a guess for them."
        )
    untrusted = [h for h in obs.hosts if host_class(obs.classes_of(h)) == "untrusted"]
    if untrusted:
        unknowns.append(f"  - which certificate fault each of {len(untrusted)} untrusted host(s) has.")
    if world.skipped_hosts:
        unknowns.append(f"  - {len(world.skipped_hosts)} name(s) that are not DNS names were left out.")
    if unknowns:
        lines += ["What the log could not show (it would change the prediction):", *unknowns]
    apart = []
    if obs.local_domains:
        apart.append(f"{len(obs.local_domains)} local domain(s)")
    if obs.internal_domains:
        apart.append(f"{len(obs.internal_domains)} internal domain(s) (only private addresses)")
    if obs.hops:
        apart.append(f"{sum(obs.hops.values()):,} hop(s) through content filters or other instances")
    generated = sum(c["messages"] for c in obs.notifications.values())
    if generated:
        apart.append(f"{generated:,} notification(s) (notifications.csv)")
    if apart:
        lines.append("Not counted as outbound traffic: " + ", ".join(apart) + ".")
    lines += ["To ask what forcing TLS would do, uncomment:", forcing]
    return lines

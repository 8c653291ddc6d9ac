"""TLS exceptions that keep mail flowing under a stricter policy, in the product's own terms.

For each recipient domain whose mail will not arrive, the weakest relaxation that lets it
through, chosen from why its sessions fail: a certificate that does not verify needs
TLS without verification (``encrypt``), a host without STARTTLS needs opportunistic TLS
(``may``), a failing handshake needs TLS off. Failures a sender-side setting
cannot cure (a remote that requires TLS, a host down, the recipient's MTA-STS) get no
exception, and the packet says why.

The exceptions are then written twice: as overrides of the what-if (so ``tlssim run``
can show the loss gone) and as what the administrator types (:func:`product_text`):

- Postfix: ``smtp_tls_policy_maps`` lines, keyed by the next hop as Postfix looks it up
  (the recipient domain; reference mta-semantics 3c);
- Exchange 2003: a connector whose address spaces list the domains, on a virtual
  server without TLS (a connector can add TLS, never remove it: the article's workaround);
- Exchange 2007 to SE: ``New-SendConnector`` with address spaces ``SMTP:domain;1``,
  ``-IgnoreSTARTTLS`` for off, ``-RequireTLS $true -TlsAuthLevel EncryptionOnly`` for
  encryption without verification (TlsAuthLevel needs RequireTLS; IgnoreSTARTTLS must be
  false with RequireTLS: reference mta-semantics 2a); ``Set-SendConnector`` to take a
  domain off a connector that names it exactly (the tie between two exact address spaces
  would otherwise go to the lower connector name);
- Exchange Online: ``New-OutboundConnector -ConnectorType Partner -RecipientDomains``;
  TLS cannot be turned off there, so a handshake failure gets no exception.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sim.mta.profiles import MtaProfile, get_profile
from sim.report.facts import domain_lost, losing_domains
from sim.vocabulary import Failure, TlsLevel, VirtualServerRef, server_of

if TYPE_CHECKING:
    from sim.results import RunResult
    from sim.scenario.model import Connector, Scenario, VirtualServer

CONNECTOR = "tls-exceptions"
NO_TLS_SERVER = "tls-exceptions"
POSTFIX_MAP = "/etc/postfix/tls_policy"
POSTFIX_WORDS = {TlsLevel.OFF: "none", TlsLevel.OPPORTUNISTIC: "may", TlsLevel.REQUIRED: "encrypt"}

# The weakest level that lets a domain's mail through, by the failure that stops it.
_NEEDS: dict[Failure, TlsLevel] = {
    Failure.CERTIFICATE: TlsLevel.REQUIRED,
    Failure.DANE_MISMATCH: TlsLevel.REQUIRED,  # a per-destination level replaces DANE
    Failure.NO_STARTTLS: TlsLevel.OPPORTUNISTIC,
    Failure.DANE_NO_STARTTLS: TlsLevel.OPPORTUNISTIC,
    Failure.DANE_LOOKUP: TlsLevel.OPPORTUNISTIC,
    Failure.DANE_REQUIRED: TlsLevel.OPPORTUNISTIC,
    Failure.NO_CERTIFICATE: TlsLevel.OFF,  # our server cannot start TLS at all
    # A handshake that fails fails at every level that tries it: only "off" never does
    # (a product's own plaintext retry, Postfix >= 3.0, comes only after the minimal
    # backoff and not for every session).
    Failure.HANDSHAKE: TlsLevel.OFF,
    Failure.DANE_HANDSHAKE: TlsLevel.OFF,  # a per-destination level replaces DANE
}
_NO_CURE = {
    Failure.MUST_STARTTLS: "the remote requires TLS that our side does not offer: raise our level, do not lower it",
    Failure.HOST_DOWN: "the remote host does not answer: no TLS setting helps",
    Failure.STS_PLUGIN: "our MTA-STS plug-in answers in a form this Postfix refuses: set its tlsrpt to false, "
    "or move to Postfix 3.10",
    Failure.MX_LOOKUP: "the recipient's MX records fail DNSSEC validation: no TLS setting helps, its DNS must be fixed",
    Failure.GREYLISTED: "greylisting: the mail goes once the remote's delay has passed",
    Failure.UNREACHABLE: "no route: add a connector for the domain",
    Failure.REQUIRETLS: "the sender asked for REQUIRETLS: only the message's own flag can change that",
    Failure.REQUIRETLS_UNVERIFIED: "the sender asked for REQUIRETLS: only the message's own flag can change that",
    Failure.STS_MX_MISMATCH: "the recipient's enforced MTA-STS policy refuses it: the recipient must fix its policy",
    Failure.STS_NO_STARTTLS: "the recipient's enforced MTA-STS policy refuses it: the recipient must fix its policy",
    Failure.STS_CERTIFICATE: "the recipient's enforced MTA-STS policy refuses it: the recipient must fix its policy",
}
# The levels each product can set per destination (Exchange 2003: off or TLS
# encryption; Exchange Online connectors: opportunistic or TLS required).
_SETTABLE = {
    "postfix": (TlsLevel.OFF, TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED),
    "exchange2003": (TlsLevel.OFF, TlsLevel.REQUIRED),
    "exchange2007": (TlsLevel.OFF, TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED),
    "exchange-online": (TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED),
}


@dataclass(frozen=True)
class DomainException:
    """One losing domain and what would let its mail through (``level`` None: nothing)."""

    domain: str
    route: str
    failure: str
    lost: int
    level: TlsLevel | None
    why: str


def sending_profile(scenario: Scenario, route: str) -> MtaProfile:
    """The profile of the server whose connector ``route`` carries the domain's mail."""
    organisation = scenario.organisation
    connector = next((c for c in organisation.connectors if c.name == route), None)
    server_name = server_of(connector.source[0]) if connector is not None else ""
    server = next((s for s in organisation.servers if s.name == server_name), None)
    return get_profile(server.profile if server is not None and server.profile else organisation.profile)


def choose(result: RunResult, scenario: Scenario) -> list[DomainException]:
    """The exception each losing domain needs, most mail lost first."""
    chosen = []
    for row in losing_domains(result):
        lost = domain_lost(row)
        profile = sending_profile(scenario, str(row["route"]))
        level, why = _level_for(str(row["last_failure"]), profile)
        chosen.append(
            DomainException(str(row["domain"]), str(row["route"]), str(row["last_failure"]), lost, level, why)
        )
    return sorted(chosen, key=lambda e: (-e.lost, e.domain))


def still_losing(result: RunResult, chosen: list[DomainException]) -> dict[str, str]:
    """The domains whose exception was applied in ``result`` and that still lose mail,
    with the failure they meet under it."""
    excepted = {e.domain for e in chosen if e.level is not None}
    return {
        str(row["domain"]): str(row["last_failure"])
        for row in result.per_domain_rows
        if row["domain"] in excepted and domain_lost(row)
    }


def without_level(exception: DomainException, failure_under_it: str) -> DomainException:
    """``exception`` found not to help: no TLS level delivers this domain's mail."""
    assert exception.level is not None
    why = (
        f"{exception.failure}, and at TLS {exception.level.value} {failure_under_it or 'it is still lost'}: "
        "no TLS level delivers it (lost without the change too)"
    )
    return replace(exception, level=None, why=why)


def _level_for(failure_text: str, profile: MtaProfile) -> tuple[TlsLevel | None, str]:
    syntax = profile.exception_syntax
    if syntax is None:
        return None, f"tlssim writes no per-domain TLS exception for {profile.name}"
    try:
        failure = Failure(failure_text)
    except ValueError:
        return None, f"the mail is lost without a TLS failure ({failure_text or 'no failure recorded'})"
    if failure in _NO_CURE:
        return None, _NO_CURE[failure]
    needed = _NEEDS[failure]
    settable = [level for level in _SETTABLE[syntax] if level.rank <= needed.rank]
    if not settable:
        return None, f"{failure.value}: it needs TLS {needed.value}, which {profile.name} cannot set per domain"
    level = settable[-1]
    return level, f"{failure.value}: TLS {level.value} for this domain lets it through"


def overrides(scenario: Scenario, exceptions: list[DomainException]) -> dict[str, Any]:
    """The what-if overrides that apply ``exceptions`` (those with a level)."""
    usable = [e for e in exceptions if e.level is not None]
    if not usable:
        return {}
    syntax = sending_profile(scenario, usable[0].route).exception_syntax
    if syntax == "postfix":
        return _postfix_overrides(scenario, usable)
    return _exchange_overrides(scenario, usable, syntax == "exchange2003")


def _sources(scenario: Scenario, route: str) -> list[str]:
    return next(c.source for c in scenario.organisation.connectors if c.name == route)


def _virtual_server(scenario: Scenario, reference: str) -> VirtualServer:
    server_name, name = VirtualServerRef.parse(reference)
    server = next(s for s in scenario.organisation.servers if s.name == server_name)
    return next(v for v in server.virtual_servers if v.name == name)


def _postfix_overrides(scenario: Scenario, usable: list[DomainException]) -> dict[str, Any]:
    changed: dict[str, dict[str, Any]] = {}
    for exception in usable:
        for reference in _sources(scenario, exception.route):
            vs = _virtual_server(scenario, reference)
            policy = changed.setdefault(reference, {k: str(v) for k, v in vs.tls_policy.items()})
            assert exception.level is not None
            policy[exception.domain] = exception.level.value
    found = {}
    for reference, policy in changed.items():
        server, name = VirtualServerRef.parse(reference)
        found[f"servers.{server}.virtual_servers.{name}.tls_policy"] = policy
    return found


def _exchange_overrides(scenario: Scenario, usable: list[DomainException], exchange2003: bool) -> dict[str, Any]:
    organisation = scenario.organisation
    domains = {e.domain for e in usable}
    connectors: list[dict[str, Any]] = []
    for connector in organisation.connectors:
        dumped = _dump(connector)
        kept = [a for a in dumped["address_spaces"] if a["pattern"] not in domains]
        if not kept and not connector.address_spaces_from_remotes:
            continue  # a connector for those domains only: removed (Remove-SendConnector)
        dumped["address_spaces"] = kept
        connectors.append(dumped)
    found: dict[str, Any] = {}
    for level in (TlsLevel.OFF, TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED):
        group = [e for e in usable if e.level is level]
        if not group:
            continue
        route = next(c for c in organisation.connectors if c.name == group[0].route)
        sources = list(route.source)
        if exchange2003:
            sources = [_no_tls_server(scenario, reference, found) for reference in sources]
        entry: dict[str, Any] = {
            "name": f"{CONNECTOR}-{level.value}",
            "source": sources,
            "address_spaces": [{"pattern": e.domain, "cost": 1} for e in sorted(group, key=lambda e: e.domain)],
            "delivery": route.delivery,
        }
        if route.smart_hosts:
            entry["smart_hosts"] = list(route.smart_hosts)
        if exchange2003:
            entry["tls"] = level.value  # on a virtual server without TLS, the connector's own setting holds
        elif level is TlsLevel.OFF:
            entry["ignore_starttls"] = True
        elif level is TlsLevel.REQUIRED:
            entry.update(require_tls=True, tls_auth_level="EncryptionOnly")
        connectors.append(entry)
    found["connectors"] = connectors
    return found


def _no_tls_server(scenario: Scenario, reference: str, found: dict[str, Any]) -> str:
    """A virtual server without TLS on the same server as ``reference``: one the server
    has (the article's ``no-tls-smtp``), or a new one written into ``found``."""
    server_name = server_of(reference)
    server = next(s for s in scenario.organisation.servers if s.name == server_name)
    for vs in server.virtual_servers:
        if vs.outbound_tls is TlsLevel.OFF and not vs.tls_policy and vs.smart_host is None:
            return str(VirtualServerRef(server_name, vs.name))
    key = f"servers.{server_name}.virtual_servers"
    if key not in found:
        template = _dump(_virtual_server(scenario, reference))
        template.update(name=NO_TLS_SERVER, outbound_tls="off", tls_policy={})
        found[key] = [_dump(vs) for vs in server.virtual_servers] + [template]
    return str(VirtualServerRef(server_name, NO_TLS_SERVER))


def _dump(model: Connector | VirtualServer) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def product_text(scenario: Scenario, exceptions: list[DomainException]) -> list[tuple[str, str]]:
    """(file name, text) of what the administrator types, in the product's syntax."""
    usable = [e for e in exceptions if e.level is not None]
    if not usable:
        return []
    syntax = sending_profile(scenario, usable[0].route).exception_syntax
    if syntax == "postfix":
        return [("tls_policy", _postfix_map(usable)), ("postfix-commands.sh", _postfix_commands())]
    if syntax == "exchange2003":
        return [("exchange2003-steps.txt", _exchange2003_steps(scenario, usable))]
    if syntax == "exchange2007":
        return [("exchange-commands.ps1", _send_connector_commands(scenario, usable))]
    return [("exchange-online-commands.ps1", _outbound_connector_commands(usable))]


def _postfix_map(usable: list[DomainException]) -> str:
    lines = [f"# TLS exceptions written by tlssim: {POSTFIX_MAP} (postmap it; see postfix-commands.sh)"]
    for e in sorted(usable, key=lambda e: e.domain):
        assert e.level is not None
        lines.append(f"# {e.domain}: {e.why}")
        lines.append(f"{e.domain}\t{POSTFIX_WORDS[e.level]}")
    return "\n".join(lines) + "\n"


def _postfix_commands() -> str:
    return (
        "# Install the exceptions (as root). If smtp_tls_policy_maps already names a map, add\n"
        "# these lines to it instead: Postfix uses the first map that has the next hop.\n"
        f"install -m 0644 tls_policy {POSTFIX_MAP}\n"
        f"postmap hash:{POSTFIX_MAP}\n"
        f"postconf -e 'smtp_tls_policy_maps = hash:{POSTFIX_MAP}'\n"
        "postfix reload\n"
        "# Send the mail already deferred now instead of at its next retry:\n"
        "postqueue -f\n"
    )


def _exchange2003_steps(scenario: Scenario, usable: list[DomainException]) -> str:
    found: dict[str, Any] = {}
    lines = ["Exchange System Manager: the article's workaround, a connector on a virtual server without TLS.", ""]
    for level in (TlsLevel.OFF, TlsLevel.REQUIRED):
        group = sorted((e for e in usable if e.level is level), key=lambda e: e.domain)
        if not group:
            continue
        route = next(c for c in scenario.organisation.connectors if c.name == group[0].route)
        sources = [_no_tls_server(scenario, reference, found) for reference in route.source]
        created = " (create it: Servers > SERVER > Protocols > SMTP > New > SMTP Virtual Server, its own IP "
        created += "address; Properties > Delivery > Outbound Security: Anonymous access, TLS encryption cleared)"
        for source in sources:
            server, vs = VirtualServerRef.parse(source)
            lines.append(f"1. Virtual server {vs} on {server}, TLS encryption cleared" + (created if found else "."))
        server_name = server_of(sources[0])
        group_name = next(s.routing_group for s in scenario.organisation.servers if s.name == server_name)
        lines.append(
            f"2. Routing Groups > {group_name} > Connectors > New > SMTP Connector, name {CONNECTOR}-{level.value}; "
            f"General: use DNS to route, local bridgehead {', '.join(sources)}."
        )
        lines.append("3. Address Space tab: Add > SMTP, one entry per domain, cost 1:")
        lines += [f"     {e.domain}    (cost 1; {e.why})" for e in group]
        if level is TlsLevel.REQUIRED:
            lines.append("4. Advanced > Outbound Security: TLS encryption selected.")
        lines.append("")
    lines.append("Exact address spaces are more specific than *, so these domains take this connector.")
    return "\n".join(lines) + "\n"


def _address_spaces(group: list[DomainException]) -> str:
    return ",".join(f'"SMTP:{e.domain};1"' for e in sorted(group, key=lambda e: e.domain))


def _send_connector_commands(scenario: Scenario, usable: list[DomainException]) -> str:
    lines = ["# Exchange Management Shell. TLS exceptions written by tlssim, one send connector per level."]
    domains = {e.domain for e in usable}
    for connector in scenario.organisation.connectors:
        named = [a.pattern for a in connector.address_spaces if a.pattern in domains]
        if named and len(named) == len(connector.address_spaces):
            lines.append(f'Remove-SendConnector -Identity "{connector.name}"  # it names only excepted domains')
        elif named:
            spaces = ",".join(f'"SMTP:{d};{_cost(connector, d)}"' for d in named)
            lines.append(f'Set-SendConnector -Identity "{connector.name}" -AddressSpaces @{{Remove={spaces}}}')
    for level in (TlsLevel.OFF, TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED):
        group = [e for e in usable if e.level is level]
        if not group:
            continue
        route = next(c for c in scenario.organisation.connectors if c.name == group[0].route)
        servers = ",".join(sorted({server_of(s) for s in route.source}))
        settings = {
            TlsLevel.OFF: "-IgnoreSTARTTLS $true",
            TlsLevel.OPPORTUNISTIC: "-RequireTLS $false",
            TlsLevel.REQUIRED: "-RequireTLS $true -TlsAuthLevel EncryptionOnly",
        }[level]
        routing = (
            f'-DNSRoutingEnabled $false -SmartHosts "{",".join(route.smart_hosts)}"'
            if route.delivery == "smart_host"
            else "-DNSRoutingEnabled $true"
        )
        lines += [f"# {e.domain}: {e.why}" for e in sorted(group, key=lambda e: e.domain)]
        lines.append(
            f'New-SendConnector -Name "{CONNECTOR}-{level.value}" -Usage Custom '
            f"-AddressSpaces {_address_spaces(group)} {routing} -SourceTransportServers {servers} {settings}"
        )
    return "\n".join(lines) + "\n"


def _cost(connector: Connector, pattern: str) -> int:
    return next(a.cost for a in connector.address_spaces if a.pattern == pattern)


def _outbound_connector_commands(usable: list[DomainException]) -> str:
    lines = ["# Exchange Online PowerShell. TLS exceptions written by tlssim, one outbound connector per level."]
    for level in (TlsLevel.OPPORTUNISTIC, TlsLevel.REQUIRED):
        group = sorted((e for e in usable if e.level is level), key=lambda e: e.domain)
        if not group:
            continue
        tls = " -TlsSettings EncryptionOnly" if level is TlsLevel.REQUIRED else ""
        domains = ",".join(e.domain for e in group)
        lines += [f"# {e.domain}: {e.why}" for e in group]
        lines.append(
            f'New-OutboundConnector -Name "{CONNECTOR}-{level.value}" -ConnectorType Partner '
            f"-RecipientDomains {domains} -UseMXRecord $true{tls}"
        )
    return "\n".join(lines) + "\n"

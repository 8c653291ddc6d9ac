"""``tlssim import ...``: the command line of the importers (each writes files a user could
have written by hand, and that ``tlssim validate`` accepts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from sim.errors import NO_VALUE, ScenarioError
from sim.vocabulary import is_domain

if TYPE_CHECKING:
    from sim.importers.observed import Observations
    from sim.importers.output import ImportFolder
    from sim.importers.postfix import Imported

# The importers (and pydantic's models) load when a command runs, not for --help.

import_app = typer.Typer(help="Turn real configurations and mail logs into tlssim files.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

OutDir = Annotated[Path, typer.Option("--out", help="folder to write to (made if missing)", show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="replace files in --out that were edited since written")]


def _fail(message: str) -> None:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _say(message: str, *, warning: bool = False) -> None:
    (err if warning else out).print(message, highlight=False, markup=False, soft_wrap=True)


@import_app.command("postfix")
def postfix(
    postconf: Annotated[Path, typer.Argument(help="output of postconf -n (or -nf)", show_default=False)],
    out_dir: OutDir,
    policy_map: Annotated[Path | None, typer.Option(help="smtp_tls_policy_maps source file")] = None,
    per_site: Annotated[Path | None, typer.Option(help="smtp_tls_per_site source file (legacy)")] = None,
    transport_map: Annotated[Path | None, typer.Option(help="transport_maps source file")] = None,
    force: Force = False,
) -> None:
    """A Postfix configuration -> DIR/topology.yaml (profile postfix)."""
    from sim.importers.postfix import import_postfix

    _write_topology(lambda: import_postfix(postconf, policy_map, transport_map, per_site), [postconf], out_dir, force)


@import_app.command("exchange")
def exchange(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Export-Clixml of Get-SendConnector, Get-TransportService, Get-ReceiveConnector, Get-ExchangeServer"
        ),
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Exchange 2007-SE exports -> DIR/topology.yaml (profile by each server's build)."""
    from sim.importers.exchange import import_exchange

    _write_topology(lambda: import_exchange(files), files, out_dir, force)


@import_app.command("exchange2003")
def exchange2003(
    ldif: Annotated[Path, typer.Argument(help="ldifde export of SMTP virtual servers and connectors")],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """An Exchange 2000/2003 LDIFDE export -> DIR/topology.yaml (profile exchange2003)."""
    from sim.importers.exchange2003 import import_exchange2003

    _write_topology(lambda: import_exchange2003(ldif), [ldif], out_dir, force)


def _write_topology(make: Callable[[], Imported], sources: list[Path], out_dir: Path, force: bool) -> None:
    """Run one importer and write its organisation; a user mistake ends with exit 2."""
    from sim.importers.output import ImportFolder
    from sim.scenario.loader import validated
    from sim.scenario.model import Organisation

    try:
        imported = make()
    except ScenarioError as exc:
        _fail(str(exc))
        return
    try:
        validated(Organisation, imported.document, sources[0], prefix="the imported organisation")  # it must load
    except ScenarioError as exc:
        _fail(str(exc))
    header = [
        f"Imported by tlssim from {', '.join(s.name for s in sources)} on {dt.date.today().isoformat()}.",
        "Everything below is configured in those files unless listed here.",
    ]
    for title, lines in (
        ("From the files:", imported.configured),
        ("Assumed (not in the files):", imported.assumed),
        ("Set in the files but not modelled, or modelled differently:", imported.notes),
    ):
        if lines:
            header += [title, *(f"  {line}" for line in dict.fromkeys(lines))]
    folder = ImportFolder(out_dir, force=force)
    folder.add_yaml("topology.yaml", imported.document, header)
    _commit(folder)
    said = len({*imported.configured, *imported.assumed, *imported.notes})
    _say(f"wrote {out_dir / 'topology.yaml'} ({said} note(s) in its header)")


def _commit(folder: ImportFolder) -> None:
    try:
        folder.commit()
    except ScenarioError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or folder.folder}: cannot write: {exc.strerror or exc}")


@import_app.command("maillog")
def maillog(
    files: Annotated[list[Path], typer.Argument(help="Postfix mail logs, plain or gzip", show_default=False)],
    out_dir: OutDir,
    topology: Annotated[
        Path | None, typer.Option(help="the organisation file [default: DIR/topology.yaml if present]")
    ] = None,
    year: Annotated[
        int | None,
        typer.Option(help="year of the first line (traditional stamps carry none) [default: from the file's date]"),
    ] = None,
    force: Force = False,
) -> None:
    """A Postfix mail log -> DIR/observed.csv, notifications.csv, remotes.yaml, whatif.yaml."""
    from sim.importers.maillog import read_maillog

    try:
        organisation = _organisation(topology or out_dir / "topology.yaml", explicit=topology is not None)
        obs = read_maillog(
            files, year, accepted_domains=organisation.get("accepted_domains", []), relays=_smart_hosts(organisation)
        )
    except ScenarioError as exc:
        _fail(str(exc))
        return
    advice = "set smtp_tls_loglevel = 1 in main.cf so the next log says"
    _write_log_import(obs, organisation, files, out_dir, topology, force, "Postfix", advice)


@import_app.command("tlsrpt")
def tlsrpt(
    paths: Annotated[
        list[Path],
        typer.Argument(help="TLS-RPT reports: .json, .json.gz, mails (.eml), mbox files, Maildir or other folders"),
    ],
    out_dir: OutDir,
    domain: Annotated[
        str | None, typer.Option(help="our mail domain [default: the policy domain most reports name]")
    ] = None,
    mx: Annotated[
        list[str] | None,
        typer.Option(help="our MX host, in preference order (repeat) [default: the hosts the reports name]"),
    ] = None,
    force: Force = False,
) -> None:
    """TLS-RPT reports we received -> DIR/observed.csv (sessions per organisation, day, policy
    and result type), DIR/senders.yaml (each reporting organisation's sessions and failures),
    and DIR/whatif.yaml (with topology.yaml, remotes.yaml) that forecasts enforce from them."""
    from sim.importers.output import ImportFolder
    from sim.importers.tlsrpt_received import OBSERVED_COLUMNS, observed_rows, read_reports, senders
    from sim.importers.tlsrpt_whatif import ForecastError, forecast

    for path in paths:
        if not path.exists():
            _fail(f"{path}: file not found")
    reading = read_reports(paths)
    for source, why in reading.skipped:
        _say(f"skipped {source}: {why}", warning=True)
    if not reading.reports:
        _fail(f"no TLS-RPT report in {', '.join(str(p) for p in paths)} ({len(reading.skipped)} file(s) skipped)")
    folder = ImportFolder(out_dir, force=force)
    folder.add_csv("observed.csv", OBSERVED_COLUMNS, observed_rows(reading.reports))
    header = [
        f"TLS-RPT reports read by tlssim import tlsrpt: {len(reading.reports)} report(s) from "
        f"{', '.join(str(p) for p in paths)}",
        "profile: the sending product tlssim models for the organisation; profile_assumed: true where the",
        "reports do not say which product sends (generic: no product known)",
    ]
    folder.add_yaml("senders.yaml", {"senders": senders(reading.reports)}, header)
    for host in mx or []:
        if not is_domain(host.lower().rstrip(".")):
            _fail(f"--mx: {host!r} is not a host name (accepted: a DNS name such as mx1.example.com)")
    try:
        found = forecast(reading.reports, domain, mx)
    except ForecastError as exc:
        _fail(f"{', '.join(str(p) for p in paths)}: {exc}")
        return
    folder.add_yaml("topology.yaml", found.topology, ["Our organisation as the TLS-RPT reports show it."])
    folder.add_yaml("remotes.yaml", {"domains": []}, ["No outbound mail: the reports are about mail to us."])
    folder.add_yaml("whatif.yaml", found.whatif, found.header, found.footer)
    _commit(folder)
    also = f", {reading.duplicates} duplicate(s) counted once" if reading.duplicates else ""
    skipped = f", {len(reading.skipped)} skipped" if reading.skipped else ""
    _say(
        f"read {len(reading.reports)} report(s){also}{skipped}; wrote observed.csv, senders.yaml, whatif.yaml, "
        f"topology.yaml, remotes.yaml to {out_dir}"
    )
    if found.enforce_commented:
        _say(f"to forecast enforce, uncomment the changes: lines at the end of {out_dir / 'whatif.yaml'}")


@import_app.command("exchange-logs")
def exchange_logs(
    paths: Annotated[
        list[Path],
        typer.Argument(help="message tracking (MSGTRK*.LOG) and send protocol (SEND*.LOG) logs, or their folders"),
    ],
    out_dir: OutDir,
    topology: Annotated[
        Path | None, typer.Option(help="the organisation file [default: DIR/topology.yaml if present]")
    ] = None,
    force: Force = False,
) -> None:
    """Exchange 2013-SE logs -> DIR/observed.csv, notifications.csv, remotes.yaml, whatif.yaml."""
    from sim.importers.exchange_logs import read_exchange_logs

    try:
        organisation = _organisation(
            topology or out_dir / "topology.yaml", explicit=topology is not None, exchange=True
        )
        obs = read_exchange_logs(
            paths,
            accepted_domains=organisation.get("accepted_domains", []),
            relays=_smart_hosts(organisation),
            servers={str(s["name"]).lower() for s in organisation.get("servers", [])},
            verifying_connectors=[
                str(c["name"])
                for c in organisation.get("connectors", [])
                if c.get("tls_auth_level") in ("CertificateValidation", "DomainValidation")
            ],
        )
    except ScenarioError as exc:
        _fail(str(exc))
        return
    advice = "turn on verbose send protocol logging (Set-SendConnector NAME -ProtocolLoggingLevel Verbose)"
    _write_log_import(obs, organisation, paths, out_dir, topology, force, "Exchange", advice)


def _write_log_import(
    obs: Observations,
    organisation: dict[str, Any],
    files: list[Path],
    out_dir: Path,
    topology: Path | None,
    force: bool,
    product: str,
    advice: str,
) -> None:
    """observed.csv, notifications.csv, remotes.yaml, whatif.yaml (+ unknown-domains.txt)."""
    from sim.importers.observed import NOTIFICATION_COLUMNS, OBSERVED_COLUMNS
    from sim.importers.output import ImportFolder
    from sim.importers.whatif import CAPABILITY_NOTES, remote_world, share, traffic_of
    from sim.importers.whatif_header import forcing_line, whatif_header

    rows = obs.rows()
    if not rows:
        _fail(f"{files[0]}: {_nothing_outbound(obs, product)}")
    server, vs = _sender(organisation)
    world = remote_world(obs, _smart_hosts(organisation), str(vs.get("outbound_tls", "none")))
    folder = ImportFolder(out_dir, force=force)
    folder.add_csv("observed.csv", OBSERVED_COLUMNS, rows)
    folder.add_csv("notifications.csv", NOTIFICATION_COLUMNS, obs.notification_rows())
    names = ", ".join(f.name for f in files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
    folder.add_yaml(
        "remotes.yaml",
        world.document,
        [f"The outbound recipient domains of {names} and their hosts.", *CAPABILITY_NOTES],
    )
    topology_path = out_dir / "topology.yaml"
    if topology is None and not topology_path.exists():
        folder.add_yaml("topology.yaml", organisation, [f"A minimal {product} sender (no --topology given)."])
    if world.unknown_domains:
        folder.add_text("unknown-domains.txt", "".join(f"{d}\n" for d in world.unknown_domains))
    whatif = {
        "name": "imported",
        "topology": _relative(topology or topology_path, out_dir),
        "remotes": "remotes.yaml",
        "traffic": traffic_of(obs),
        "run": {"duration": "6d", "seed": 1, "sample_interval": "1h"},
    }
    header = whatif_header(obs, world, files, product, advice, forcing_line(organisation, server, vs))
    folder.add_yaml("whatif.yaml", whatif, header)
    _commit(folder)
    span = f"{obs.first:%Y-%m-%d %H:%M} to {obs.last:%Y-%m-%d %H:%M} UTC" if obs.first and obs.last else "no times"
    _say(
        f"read {obs.lines:,} lines from {len(files)} file(s): {obs.messages:,} outbound messages to "
        f"{len(rows)} domains, {span}"
    )
    if obs.unused:
        _say("lines not used: " + ", ".join(f"{n:,} {reason}" for reason, n in obs.unused.most_common()))
    _say(f"wrote observed.csv, notifications.csv, remotes.yaml and whatif.yaml to {out_dir}")
    if world.unknown_domains:
        _say(
            f"warning: the log says nothing of TLS for {len(world.unknown_domains)} domain(s) "
            f"({100 * share(obs, world.unknown_domains):.1f}% of outbound mail); they are modelled as accepting TLS. "
            f"Probe them: tlssim probe --file {out_dir / 'unknown-domains.txt'} --out {out_dir / 'probed.yaml'}; "
            f"and {advice}.",
            warning=True,
        )


def _nothing_outbound(obs: Observations, product: str) -> str:
    seen = []
    if obs.local_domains:
        seen.append(f"local deliveries to {len(obs.local_domains)} domain(s)")
    if obs.hops:
        seen.append(f"{sum(obs.hops.values())} hop(s) to content filters or instances")
    if obs.notifications:
        seen.append(f"{sum(c['messages'] for c in obs.notifications.values())} notification(s)")
    found = "; it shows " + ", ".join(seen) if seen else ""
    return (
        f"no outbound delivery found in {obs.lines:,} lines (accepted: a {product} log with remote deliveries){found}"
    )


def _organisation(path: Path, *, explicit: bool, exchange: bool = False) -> dict[str, Any]:
    from sim.scenario.loader import read_yaml, validated
    from sim.scenario.model import Organisation

    if path.exists() or explicit:
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise ScenarioError(path, "", NO_VALUE, "not an organisation file (a mapping: organisation, servers, ...)")
        validated(Organisation, raw, path)
        return dict(raw)
    if exchange:
        return {
            "organisation": "imported",
            "profile": "exchange2016",
            "routing_groups": [{"name": "site"}],
            "servers": [
                {
                    "name": "EX1",
                    "routing_group": "site",
                    "virtual_servers": [{"name": "default", "outbound_tls": "opportunistic"}],
                }
            ],
            "connectors": [{"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]}],
        }
    return {
        "organisation": "imported",
        "profile": "postfix",
        "routing_groups": [{"name": "site"}],
        "servers": [
            {"name": "postfix", "routing_group": "site", "virtual_servers": [{"name": "smtp", "outbound_tls": "may"}]}
        ],
        "connectors": [{"name": "default", "source": ["postfix/smtp"], "address_spaces": [{"pattern": "*"}]}],
    }


def _sender(organisation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    server = organisation["servers"][0]
    return str(server["name"]), dict(server["virtual_servers"][0])


def _smart_hosts(organisation: dict[str, Any]) -> set[str]:
    hosts = {h for c in organisation.get("connectors", []) for h in c.get("smart_hosts", [])}
    hosts |= {vs["smart_host"] for s in organisation["servers"] for vs in s["virtual_servers"] if vs.get("smart_host")}
    return {str(h).lower() for h in hosts}


def _relative(path: Path, start: Path) -> str:
    from sim.importers.whatif import relative

    return relative(path, start)

"""``tlssim import ...``: the command line of the importers (each writes files a user could
have written by hand, and that ``tlssim validate`` accepts)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from sim.errors import ScenarioError

if TYPE_CHECKING:
    from sim.importers.maillog import MailLog
    from sim.importers.postfix import Imported

# The importers (and pydantic's models) load when a command runs, not for --help.

import_app = typer.Typer(help="Turn real configurations and mail logs into tlssim files.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

OutDir = Annotated[Path, typer.Option("--out", help="folder to write to", show_default=False)]


def _fail(message: str) -> None:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


@import_app.command("postfix")
def postfix(
    postconf: Annotated[Path, typer.Argument(help="output of postconf -n (or -nf)", show_default=False)],
    out_dir: OutDir,
    policy_map: Annotated[Path | None, typer.Option(help="smtp_tls_policy_maps source file")] = None,
    transport_map: Annotated[Path | None, typer.Option(help="transport_maps source file")] = None,
) -> None:
    """A Postfix configuration -> DIR/topology.yaml (profile postfix)."""
    from sim.importers.postfix import import_postfix

    _write_topology(lambda: import_postfix(postconf, policy_map, transport_map), [postconf], out_dir)


@import_app.command("exchange")
def exchange(
    files: Annotated[
        list[Path],
        typer.Argument(help="Export-Clixml of Get-SendConnector, Get-TransportService, Get-ReceiveConnector"),
    ],
    out_dir: OutDir,
) -> None:
    """Exchange 2007-SE exports -> DIR/topology.yaml (profile exchange2016)."""
    from sim.importers.exchange import import_exchange

    _write_topology(lambda: import_exchange(files), files, out_dir)


@import_app.command("exchange2003")
def exchange2003(
    ldif: Annotated[Path, typer.Argument(help="ldifde export of SMTP virtual servers and connectors")],
    out_dir: OutDir,
) -> None:
    """An Exchange 2000/2003 LDIFDE export -> DIR/topology.yaml (profile exchange2003)."""
    from sim.importers.exchange2003 import import_exchange2003

    _write_topology(lambda: import_exchange2003(ldif), [ldif], out_dir)


def _write_topology(make: Callable[[], Imported], sources: list[Path], out_dir: Path) -> None:
    """Run one importer and write its organisation; a user mistake ends with exit 2."""
    from sim.importers.text import write_yaml
    from sim.scenario.model import Organisation

    try:
        imported = make()
    except ScenarioError as exc:
        _fail(str(exc))
        return
    try:
        Organisation.model_validate(imported.document)  # what we write must load
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        _fail(f"{sources[0]}: the imported organisation is not valid at {where}: {error['msg']}")
    header = [
        f"Imported by tlssim from {', '.join(s.name for s in sources)} on {dt.date.today().isoformat()}.",
        "Settings that matter to TLS but that tlssim does not model (or models differently):",
        *(f"  {note}" for note in imported.notes),
    ]
    target = write_yaml(out_dir / "topology.yaml", imported.document, header)
    out.print(f"wrote {target} ({len(imported.notes)} note(s) in its header)", highlight=False, soft_wrap=True)


@import_app.command("maillog")
def maillog(
    files: Annotated[list[Path], typer.Argument(help="Postfix mail logs, plain or gzip", show_default=False)],
    out_dir: OutDir,
    topology: Annotated[
        Path | None, typer.Option(help="the organisation file [default: DIR/topology.yaml if present]")
    ] = None,
    year: Annotated[int, typer.Option(help="year of traditional syslog timestamps (they carry none)")] = 2026,
) -> None:
    """A mail log -> DIR/observed.csv, DIR/remotes.yaml and a ready DIR/whatif.yaml."""
    from sim.files import write_text_atomic
    from sim.importers.maillog import OBSERVED_COLUMNS, observed_rows, read_maillog
    from sim.importers.text import write_yaml
    from sim.importers.whatif import hourly_profile, relative, remote_world, traffic_of

    try:
        log = read_maillog(files, year)
        organisation = _organisation(topology or out_dir / "topology.yaml", explicit=topology is not None)
    except ScenarioError as exc:
        _fail(str(exc))
        return
    if not log.domains:
        _fail(f"{files[0]}: no Postfix smtp delivery lines found ({log.lines} lines read)")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = observed_rows(log)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(OBSERVED_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_dir / "observed.csv", buffer.getvalue())
    server, vs = _sender(organisation)
    level = str(vs.get("outbound_tls", "none"))
    smart_hosts = _smart_hosts(organisation)
    write_yaml(out_dir / "remotes.yaml", remote_world(log, smart_hosts, level), _remotes_header(files))
    topology_path = out_dir / "topology.yaml"
    if not topology_path.exists() and topology is None:
        write_yaml(topology_path, organisation, ["A minimal Postfix sender (no --topology given)."])
    reference = relative(topology or topology_path, out_dir)
    whatif = {
        "name": "imported",
        "topology": reference,
        "remotes": "remotes.yaml",
        "traffic": traffic_of(log),
        "run": {"duration": "6d", "seed": 1, "sample_interval": "1h"},
    }
    level_path = f"servers.{server}.virtual_servers.{vs['name']}.outbound_tls"
    header = [
        f"Made by tlssim import maillog from {len(files)} file(s): the traffic of the log, its recipient",
        "domains and their hosts (remotes.yaml), with the organisation as it is configured today.",
        f"Arrivals by hour of day (the model sends at a constant rate): {hourly_profile(log)}",
        "To ask what forcing TLS would do, uncomment:",
        f"overrides: {{{level_path}: encrypt}}",
    ]
    write_yaml(out_dir / "whatif.yaml", whatif, header)
    _print_summary(log, files, out_dir)


def _print_summary(log: MailLog, files: list[Path], out_dir: Path) -> None:
    span = f"{log.first:%Y-%m-%d %H:%M} to {log.last:%Y-%m-%d %H:%M} UTC" if log.first else "no timestamps"
    out.print(
        f"read {log.lines} lines from {len(files)} file(s): {log.messages} messages to {len(log.domains)} "
        f"domains, {span}",
        highlight=False,
        soft_wrap=True,
    )
    if log.unused:
        unused = ", ".join(f"{count} {reason}" for reason, count in log.unused.most_common())
        out.print(f"lines not used: {unused}", highlight=False, soft_wrap=True)
    out.print(f"wrote observed.csv, remotes.yaml and whatif.yaml to {out_dir}", highlight=False, soft_wrap=True)


def _remotes_header(files: list[Path]) -> list[str]:
    from sim.importers.whatif import CAPABILITY_NOTES

    return [
        f"The recipient domains of {', '.join(f.name for f in files)} and the hosts that took their mail.",
        *CAPABILITY_NOTES,
    ]


def _organisation(path: Path, *, explicit: bool) -> dict[str, Any]:
    from sim.scenario.loader import read_yaml
    from sim.scenario.model import Organisation

    if path.exists() or explicit:
        raw = read_yaml(path)
        try:
            Organisation.model_validate(raw)
        except Exception as exc:
            raise ScenarioError(path, "", None, f"not an organisation file: {str(exc).splitlines()[0]}") from None
        return dict(raw)
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

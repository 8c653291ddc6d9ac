"""The ``tlssim`` command line: run, validate, route, schema.

User mistakes end with exit code 2 and one line on stderr (file, field, value, what
is accepted), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sim.errors import ScenarioError
from sim.importers.commands import import_app
from sim.probe.command import probe as probe_command
from sim.vocabulary import is_domain

if TYPE_CHECKING:
    from sim.budget import Estimate
    from sim.report.compare import Comparison
    from sim.report.painter import Painter
    from sim.report.sections import Section
    from sim.results import RunResult
    from sim.scenario.model import Scenario

# The simulation, pandas, matplotlib and cryptography are imported inside the commands
# that use them: ``tlssim --help`` starts without them (benchmarks/startup.py).
SCHEMA_KINDS = ("what-if", "organisation", "remotes", "experiment")

app = typer.Typer(
    add_completion=True,
    pretty_exceptions_enable=False,  # a bug prints one line (main); --debug shows the traceback
    no_args_is_help=True,
    help="Predict what a TLS policy change does to mail flow: queues, NDRs, delays, encryption.",
)


def _version(value: bool) -> None:
    if value:
        from sim.version import __version__

        out.print(f"tlssim {__version__}", highlight=False)
        raise typer.Exit()


DEBUG = {"on": bool(os.environ.get("TLSSIM_DEBUG"))}


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an internal error")] = False,
) -> None:
    """Predict what a TLS policy change does to mail flow: queues, NDRs, delays, encryption."""
    if debug:
        DEBUG["on"] = True


# Piped output is not squeezed to 80 columns: tables stay readable in logs and files.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(path: Path, seed: int | None = None) -> Scenario:
    from sim.scenario.loader import load_scenario, read_yaml

    try:
        raw = read_yaml(path)
        if isinstance(raw, dict) and "base" in raw and "topology" not in raw:
            _fail(f"{path}: this is an experiment file: use tlssim sweep {path}")
        return load_scenario(path, seed=seed)
    except ScenarioError as exc:
        _fail(str(exc))


# Short headers so the table fits an 80-column terminal; the CSV keeps the full names.
PER_DOMAIN_VIEW = {
    "domain": "domain",
    "route": "route",
    "messages": "msgs",
    "delivered": "deliv",
    "delivered_tls": "tls",
    "delivered_plaintext": "plain",
    "ndr": "ndr",
    "delay_dsn": "dsn",
    "doomed": "doomed",
    "pending": "pending",
}

INBOUND_VIEW = {
    "sender": "sender",
    "receiver": "receiver",
    "messages": "msgs",
    "accepted": "accepted",
    "accepted_tls": "tls",
    "accepted_plaintext": "plain",
    "refused": "refused",
    "lost": "returned",
    "doomed": "doomed",
    "pending": "pending",
}
TABLE_ROWS = 20  # the busiest rows; the CSV has them all

BUNDLED = Path(__file__).resolve().parent.parent / "scenarios"  # beside the package in a checkout


def _bundled_name(path: Path | None) -> Path | None:
    """``article-force-tls`` -> ``scenarios/article-force-tls.yaml`` when no such file
    exists here and the checkout bundles one of that name (``tlssim scenarios`` lists them)."""
    if path is None or path.exists() or path.suffix or len(path.parts) != 1:
        return path
    bundled = BUNDLED / f"{path.name}.yaml"
    return bundled if bundled.is_file() else path


IKnow = Annotated[
    bool, typer.Option("--i-know", help="run even when the estimate exceeds this machine's memory or 5e9 messages")
]
ScenarioArg = Annotated[
    Path,
    typer.Argument(
        help="a what-if file, or the name of a bundled one (tlssim scenarios)",
        show_default=False,
        callback=_bundled_name,
    ),
]


@app.command()
def run(
    scenario_file: ScenarioArg,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder [default: results/<name>]")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's run.seed", min=0)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar, no tables")] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="write report.html, report.md, figures")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object on stdout")] = False,
    exceptions: Annotated[
        bool,
        typer.Option(
            "--exceptions/--no-exceptions",
            help="when mail is lost, write the decision packet in exceptions/ (runs the what-if twice more)",
        ),
    ] = True,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="also compare with this what-if (today's policy; a file or bundled name): compare.* in the folder",
            callback=_bundled_name,
        ),
    ] = None,
    i_know: IKnow = False,
) -> None:
    """Simulate a scenario, print its summary and write its tables and report."""
    from sim.simulate import run as run_scenario

    scenario = _load(scenario_file, seed)
    cost = _within_budget(scenario_file, scenario, i_know)
    _print_notes(scenario)
    _warn_before(scenario, quiet=quiet or as_json)
    if cost.seconds > 60 and not (quiet or as_json):
        err.print(f"estimate: {cost.describe()}", highlight=False)
    # A long run shows its progress on a terminal even under --quiet (not with --json).
    quiet = (quiet and not (err.is_terminal and cost.seconds > 5)) or as_json
    target = out_dir if out_dir is not None else Path("results") / scenario.name
    painter = _painter() if report else None  # forked before the progress bar's thread starts
    try:
        result = _simulate(scenario, quiet)
        result.manifest_extra.update(_provenance(scenario_file))
        comparison = None
        if baseline is not None:
            from sim.report.compare import Comparison

            comparison = Comparison([run_scenario(_load(baseline, seed))], [result])
        written = _write_run(
            target, result, scenario, scenario_file, comparison, report=report, exceptions=exceptions, painter=painter
        )
    finally:
        if painter is not None:
            painter.close()
    if as_json:
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.summary_row.items()}
        sys.stdout.write(json.dumps(row) + "\n")
    elif not quiet:
        _print_summary(result)
        _print_table("Per domain", result.per_domain_rows, PER_DOMAIN_VIEW, "per_domain.csv")
        _print_table("Inbound, per sending domain", result.inbound_rows, INBOUND_VIEW, "inbound.csv")
        _print_table("NDRs", result.ndr_rows, {c: c for c in ("domain", "status", "count", "reason")}, "ndr.csv")
    tables = [p.name for p in written if p.parent == target]
    reports = len([p for p in written if p.parent.name == "tls-rpt"])
    packet = len([p for p in written if p.parent.name == "exceptions"])
    also = f", {reports} TLS-RPT report(s) in tls-rpt/" if reports else ""
    also += f", the decision packet ({packet} files) in exceptions/" if packet else ""
    (err if as_json else out).print(f"wrote {', '.join(tables)}{also} to {target}", highlight=False)


def _painter() -> Painter:
    """The report's painter: it imports matplotlib while the run is simulated."""
    from sim.report.painter import Painter

    return Painter()


def _simulate(scenario: Scenario, quiet: bool) -> RunResult:
    """One run, with a progress bar unless ``quiet``."""
    from sim.simulate import run as run_scenario

    if quiet:
        return run_scenario(scenario)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(f"simulating {scenario.name}", total=1.0)
    bar.start()
    try:
        return run_scenario(scenario, progress=lambda done: bar.update(task, completed=done))
    finally:
        _stop_bar(bar)


def _stop_bar(bar: Progress) -> None:
    """Stop a progress bar and wait for its refresh thread to end: the decision packet's
    and a sweep's workers are forked only while this process runs one thread
    (sim.parallel.start_method), and rich's stop does not wait for it."""
    refresher = getattr(bar.live, "_refresh_thread", None)
    bar.stop()
    if refresher is not None:
        refresher.join()


def _write_run(
    target: Path,
    result: RunResult,
    scenario: Scenario,
    scenario_file: Path,
    comparison: Comparison | None,
    *,
    report: bool,
    exceptions: bool,
    painter: Painter | None = None,
) -> list[Path]:
    """The run's folder, whole or not at all: tables, report, decision packet, comparison."""

    def write_all(folder: Path) -> list[Path]:
        packet = None
        if report and exceptions:
            from sim.report.decision import start_packet, will_not_arrive

            if any(will_not_arrive(result)):  # its what-ifs run in workers while the rest is written
                packet = start_packet(result, scenario, scenario_file, folder)
        try:
            written = result.write(folder)
            if report:
                from sim.report.page import write_report  # matplotlib only when a report is wanted

                def later() -> list[Section]:
                    if packet is None:
                        return []
                    files, section = packet.finish()
                    written.extend(files)
                    return [section]

                # The figures share the second core unless the packet's what-ifs hold it.
                written += write_report(result, folder, later, helpers=0 if packet is not None else 1, painter=painter)
        except BaseException:
            if packet is not None:
                packet.abandon()
            raise
        if comparison is not None:
            from sim.report.compare import write_comparison

            written += write_comparison(comparison, folder)
        return written

    from sim.files import NotAnOutputFolder, replace_folder

    try:
        return replace_folder(target, write_all)
    except NotAnOutputFolder as exc:
        _fail(f"--out = {target}: {exc}; choose another folder")
    except OSError as exc:
        _fail(_write_failure(target, exc))


def _sweep_progress() -> tuple[Progress, Callable[[int, int], None]]:
    """A sweep's progress bar, and the call that reports to it."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("runs", total=None)

    def show(done: int, total: int) -> None:
        # The bar (and its refresh thread) starts at the first report, after the sweep
        # made its worker pool: a pool forks only while this process runs one thread.
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)
        if done >= total:  # the runs are done: the figures may be drawn on forked workers
            _stop_bar(bar)

    return bar, show


def _write_failure(target: Path, exc: OSError) -> str:
    """One line: the folder, the file that failed (``write_atomic`` names it) and why."""
    which = f" ({Path(exc.filename).name})" if exc.filename else ""
    return f"{target}: cannot write results{which}: {exc.strerror or exc}; the previous result, if any, is kept"


def _print_status(experiment_file: Path, out_dir: Path | None, replications: int | None) -> None:
    from sim.experiment.design import load_experiment
    from sim.experiment.sweep import results_folder, status

    experiment = load_experiment(experiment_file, replications=replications)
    folder = results_folder(experiment, out_dir)
    state = status(experiment, folder)
    table = Table(title=f"{experiment.spec.name} in {folder}", title_justify="left")
    for column in ("point", "done", "planned"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for row in state.points:
        table.add_row(row["point"], str(row["done"]), str(row["planned"]))
    out.print(table)
    remain = state.planned - state.done
    elsewhere = state.stored_elsewhere
    kept = f"; {elsewhere} stored run(s) belong to no current point (kept)" if elsewhere else ""
    out.print(f"{state.done} of {state.planned} runs done, {remain} to run{kept}", highlight=False)


@app.command()
def compare(
    base_file: Annotated[
        Path, typer.Argument(help="today's policy: a what-if file or bundled name", callback=_bundled_name)
    ],
    whatif_file: Annotated[
        Path, typer.Argument(help="the proposed policy: a what-if file or bundled name", callback=_bundled_name)
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="output folder [default: results/compare-<what-if>]")
    ] = None,
    replications: Annotated[int, typer.Option(help="runs of each, on the same random streams", min=1, max=200)] = 1,
) -> None:
    """Run today's policy and a what-if on the same random streams and write compare.html,
    compare.md and compare.csv: every metric side by side, what changed per domain and why."""
    base, whatif = _load(base_file), _load(whatif_file)
    _print_notes(whatif)
    from sim.report.compare import compare as run_comparison
    from sim.report.compare import write_comparison

    target = out_dir if out_dir is not None else Path("results") / f"compare-{whatif.name}"
    comparison = run_comparison(base, whatif, replications)
    from sim.files import NotAnOutputFolder, replace_folder

    try:
        written = replace_folder(target, lambda folder: write_comparison(comparison, folder), marker="compare.csv")
    except NotAnOutputFolder as exc:
        _fail(f"--out = {target}: {exc}; choose another folder")
    except OSError as exc:
        _fail(_write_failure(target, exc))
    out.print((target / "compare.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    out.print(f"wrote {', '.join(p.name for p in written)} to {target}", highlight=False, soft_wrap=True)


@app.command()
def scenarios() -> None:
    """List the bundled what-ifs and experiments: run one by name, e.g. tlssim run article-force-tls."""
    files = sorted(BUNDLED.glob("*.yaml")) if BUNDLED.is_dir() else []
    if not files:
        _fail(f"no bundled scenarios at {BUNDLED} (they come with a checkout of the project)")
    table = Table("name", "kind", "what it shows", box=box.SIMPLE_HEAD, title_justify="left")
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        comment = " ".join(line.lstrip("# ").strip() for line in lines if line.startswith("#"))
        first = comment.split(". ")[0].rstrip(".") if comment else ""
        kind = "experiment (tlssim sweep)" if any(line.startswith("base:") for line in lines) else "what-if"
        table.add_row(path.stem, kind, first)
    out.print(table)


@app.command()
def validate(scenario_file: ScenarioArg, i_know: IKnow = False) -> None:
    """Check a scenario or an experiment (and the files it names) without running it."""
    from sim.scenario.loader import read_yaml

    try:
        raw = read_yaml(scenario_file)
    except ScenarioError as exc:
        _fail(str(exc))
    if isinstance(raw, dict) and "base" in raw and "topology" not in raw:
        from sim.experiment.design import load_experiment

        try:
            experiment = load_experiment(scenario_file)
        except ScenarioError as exc:
            _fail(str(exc))
        axes = ", ".join(experiment.axis_names) or "no axes"
        out.print(
            f"ok: experiment {experiment.spec.name}: {len(experiment.points)} design point(s) over {axes}, "
            f"replications {experiment.spec.replications}",
            highlight=False,
        )
        return
    scenario = _load(scenario_file)
    cost = _within_budget(scenario_file, scenario, i_know)
    org = scenario.organisation
    out.print(
        f"ok: {scenario.name}: profile {org.profile}, {len(org.servers)} server(s), "
        f"{len(org.connectors)} connector(s), {len(scenario.remotes.domains)} remote domain(s), "
        f"{len(scenario.traffic.outbound)} outbound flow(s); estimate {cost.describe()}",
        highlight=False,
    )
    _print_notes(scenario)


def _warn_before(scenario: Scenario, *, quiet: bool) -> None:
    """A run too short to show expiry says so; a long run says how much mail to expect."""
    from sim.durations import format_duration
    from sim.mta.profiles import get_profile

    profile = get_profile(scenario.organisation.profile)
    vs = scenario.organisation.servers[0].virtual_servers[0]
    expiry = profile.with_delivery(vs.delivery).expiration_timeout
    if scenario.run.duration <= expiry and scenario.traffic.outbound:
        err.print(
            f"warning: the run ({format_duration(scenario.run.duration)}) is not longer than the expiration "
            f"timeout ({format_duration(expiry)}): NDRs that forcing TLS would cause cannot show yet",
            highlight=False,
            soft_wrap=True,
        )


def _within_budget(scenario_file: Path, scenario: Scenario, i_know: bool) -> Estimate:
    """The run's estimated cost; a run this machine cannot hold is refused (exit 2)."""
    from sim.budget import estimate, too_big

    cost = estimate(scenario)
    reason = too_big(cost)
    if reason is not None and not i_know:
        _fail(
            f"{scenario_file}: {reason}: lower rate_per_hour or run.duration (or the population's size), "
            "or pass --i-know"
        )
    return cost


def _provenance(scenario_file: Path) -> dict[str, Any]:
    """What a manifest needs to say how its results were made."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("simpy", "numpy", "pydantic", "cryptography", "networkx", "pandas", "matplotlib"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "input": str(scenario_file.resolve()),
        "command": " ".join(sys.argv),
        "run_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "dependencies": versions,
    }


def _print_notes(scenario: Scenario) -> None:
    """One line per setting the real product does not have (simulated as a what-if)."""
    from sim.plan.notes import notes

    for note in notes(scenario):
        err.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def route(
    scenario_file: ScenarioArg,
    to: Annotated[str, typer.Option("--to", help="recipient address or domain", show_default=False)],
    from_server: Annotated[str | None, typer.Option("--from", help="sending server [default: the first]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Show which connector a recipient takes, and why every other candidate lost."""
    from sim.plan.build import build_plan

    scenario = _load(scenario_file)
    domain = to.rsplit("@", 1)[-1].strip().lower()
    if not is_domain(domain):
        _fail(f"--to = {to!r}: not an address or domain (accepted: user@example.com or example.com)")
    servers = [s.name for s in scenario.organisation.servers]
    source = from_server or servers[0]
    if source not in servers:
        _fail(f"--from = {source!r}: no such server (accepted: {', '.join(servers)})")
    payload = build_plan(scenario).explain(source, domain)
    if as_json:
        out.print_json(json.dumps(payload))
        return
    _print_route(payload, bool(payload["load_shared_with"]))
    table = Table("connector", "virtual server", "address space", "specificity", "cost", "hops", "verdict")
    for c in payload["candidates"]:
        table.add_row(
            c["connector"],
            c["virtual_server"] or "-",
            c["address_space"] or "-",
            str(tuple(c["specificity"])) if c["specificity"] else "-",
            _text(c["cost"]),
            _text(c["hops"]),
            c["verdict"],
        )
    out.print(table)


def _print_route(payload: dict[str, Any], shared: bool) -> None:
    domain = payload["recipient_domain"]
    if payload["ndr"]:
        out.print(f"{domain}: no route - NDR {payload['ndr']} ({payload['reason']})", highlight=False)
    elif payload["state"] != "routed":
        out.print(
            f"{domain}: {payload['state']} - waits in the unreachable queue until it expires ({payload['reason']})",
            highlight=False,
        )
    else:
        also = f" (load shared with {', '.join(payload['load_shared_with'])})" if shared else ""
        out.print(
            f"{domain}: connector {payload['connector']}{also}, virtual server {payload['virtual_server']}, "
            f"next hop {payload['next_hop']}, TLS level {payload['tls_level']}",
            highlight=False,
        )
        for host in payload["mx"]:
            status = f" ({host['status']})" if "status" in host else ""
            then = f"; then {host['then']}" if "then" in host else ""
            out.print(f"  {host['host']}: {host['outcome']}{status}{then}", highlight=False)


@app.command()
def profiles(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List the MTA profiles and their defaults (every one can be overridden in a scenario)."""
    from sim.mta.profiles import PROFILES

    described = [profile.describe() for profile in PROFILES.values()]
    if as_json:
        out.print_json(json.dumps(described))
        return
    for info in described:
        table = Table(
            title=f"{info['name']}: {info['summary']}", title_justify="left", show_header=False, box=box.SIMPLE
        )
        table.add_column("setting", style="bold")
        table.add_column("default", overflow="fold")
        for key, value in info.items():
            if key in ("name", "summary"):
                continue
            if isinstance(value, dict):
                value = "\n".join(f"{k}: {v}" for k, v in value.items())
            table.add_row(key, str(value))
        out.print(table)


@app.command()
def sweep(
    experiment_file: Annotated[
        Path,
        typer.Argument(help="an experiment file, or a bundled one's name", show_default=False, callback=_bundled_name),
    ],
    out_dir: Annotated[Path | None, typer.Option("--out", help="results folder [default: results/<name>]")] = None,
    workers: Annotated[int | None, typer.Option(help="local worker processes [default: one per core]", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help="a Dask scheduler address, e.g. tcp://host:8786")] = None,
    replications: Annotated[int | None, typer.Option(help="override the file's replications", min=1)] = None,
    show_status: Annotated[bool, typer.Option("--status", help="say what is done and what remains; run nothing")] = (
        False
    ),
) -> None:
    """Run every (design point, replication) once, resumably; write tables and plots.
    Runs already in the folder are reused, also after the experiment grows."""
    from sim.experiment.sweep import sweep as run_sweep

    if show_status:
        _print_status(experiment_file, out_dir, replications)
        return

    if scheduler is not None and not re.fullmatch(r"(?:[a-z]+://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}", scheduler):
        _fail(f"--scheduler = {scheduler!r}: not a scheduler address (accepted: tcp://host:8786 or host:8786)")
    terminated = {"by": 0}

    def stop(signum: int, _frame: object) -> None:
        # SIGTERM stops a sweep as Ctrl-C does: finished runs kept, how to resume said.
        terminated["by"] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    bar, show = _sweep_progress()
    try:
        try:
            result = run_sweep(
                experiment_file,
                out=out_dir,
                workers=workers,
                scheduler=scheduler,
                replications=replications,
                progress=show,
                notice=lambda message: err.print(message, highlight=False, soft_wrap=True),
            )
        finally:
            _stop_bar(bar)
    except ScenarioError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out_dir or 'results'}: cannot write the sweep's results: {exc.strerror or exc}")
    except KeyboardInterrupt:
        folder = out_dir or "results/<experiment name>"
        err.print(
            f"interrupted: every finished run is saved in {folder}; run the same command again to finish",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(143 if terminated["by"] == signal.SIGTERM else 130) from None
    out.print((result.out / "summary.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    failed = result.manifest.get("failed_runs", 0)
    out.print(
        f"{result.manifest['runs']} runs ({failed} failed) in {result.out}; executor: "
        f"{result.manifest.get('executor')}, {result.manifest.get('wall_s')} s",
        highlight=False,
    )


@app.command()
def report(folder: Annotated[Path, typer.Argument(help="a sweep's results folder", show_default=False)]) -> None:
    """Regenerate a sweep's tables and plots from its results store."""
    from sim.experiment.sweep import report as make_report

    try:
        result = make_report(folder)
    except ScenarioError as exc:
        _fail(str(exc))
    out.print(f"wrote runs, summary and plots for {result.manifest['runs']} runs to {folder}", highlight=False)


app.add_typer(import_app, name="import")
app.command("probe")(probe_command)

cert_app = typer.Typer(help="Inspect and make X.509 certificates for scenarios.", no_args_is_help=True)
app.add_typer(cert_app, name="cert")


@cert_app.command("inspect")
def cert_inspect(
    file: Annotated[Path, typer.Argument(help="a certificate in DER or PEM form", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Subject, SANs, issuer, self-signed or not, validity, key type and size."""
    from sim.pki.certs import CertificateFileError, describe, load_certificate

    try:
        certificate = load_certificate(file)
    except FileNotFoundError:
        _fail(f"{file}: file not found")
    except IsADirectoryError:
        _fail(f"{file}: is a folder, not a certificate file")
    except CertificateFileError as exc:
        _fail(f"{file}: {exc} (accepted: one X.509 certificate, DER or PEM)")
    info = describe(certificate)
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(title=str(file), title_justify="left", show_header=False, box=box.SIMPLE)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


@cert_app.command("make")
def cert_make(
    name: Annotated[str, typer.Option("--name", help="DNS name (SAN and CN)", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write to")] = Path("certs"),
    issuer: Annotated[
        str, typer.Option(help="self-signed | public-ca | enterprise-ca | standalone-ca")
    ] = "self-signed",
    expires_in: Annotated[str, typer.Option(help="validity left from now, e.g. 90d")] = "365d",
    key: Annotated[str, typer.Option(help="ec | rsa-2048 | rsa-3072 | rsa-4096")] = "ec",
    pem: Annotated[bool, typer.Option("--pem", help="PEM instead of DER")] = False,
) -> None:
    """Generate an example certificate (and its key) to use in a scenario's ``file:``."""
    from sim.durations import parse_duration
    from sim.files import write_atomic
    from sim.pki.authorities import our_certificate
    from sim.pki.certs import save_certificate, save_key
    from sim.scenario.model import CertificateSpec

    if not is_domain(name.lower()):
        _fail(f"--name = {name!r}: not a DNS name (accepted: a name such as mail.contoso.com)")
    if issuer not in ("self-signed", "public-ca", "enterprise-ca", "standalone-ca"):
        _fail(f"--issuer = {issuer!r}: not an issuer (accepted: self-signed, public-ca, enterprise-ca, standalone-ca)")
    if key not in ("ec", "rsa-2048", "rsa-3072", "rsa-4096"):
        _fail(f"--key = {key!r}: not a key type (accepted: ec, rsa-2048, rsa-3072, rsa-4096)")
    try:
        lifetime = parse_duration(expires_in)
    except ValueError as exc:
        _fail(f"--expires-in = {expires_in!r}: {exc}")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spec = CertificateSpec(issuer=issuer, names=[name.lower()], issued=86400.0, expires_in=lifetime, key=key)
    made = our_certificate(spec, name.lower(), now, Path.cwd())
    identity = made.identity
    assert identity.key is not None
    private_key = identity.key
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path = write_atomic(
        out_dir / f"{name.lower()}{'.pem' if pem else '.der'}",
        lambda p: save_certificate(identity.certificate, p, pem=pem),
    )
    key_path = write_atomic(out_dir / f"{name.lower()}.key.pem", lambda p: save_key(private_key, p))
    out.print(f"wrote {cert_path} and {key_path}", highlight=False)


@app.command()
def schema(
    kind: Annotated[
        str | None, typer.Option(help="what-if | organisation | remotes | experiment [default: all formats in one]")
    ] = None,
) -> None:
    """Print a JSON Schema: of one file kind (self-contained, for editors), or of all formats."""
    from sim.scenario.loader import file_schema, scenario_json_schema

    if kind is None:
        sys.stdout.write(json.dumps(scenario_json_schema(), indent=2) + "\n")
        return
    if kind not in SCHEMA_KINDS:
        _fail(f"--kind = {kind!r}: not a file kind (accepted: {', '.join(SCHEMA_KINDS)})")
    from sim.experiment.design import ExperimentSpec

    sys.stdout.write(json.dumps(file_schema(kind, ExperimentSpec), indent=2) + "\n")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _print_summary(result: RunResult) -> None:
    """The answer in words first, then every summary number in the form people read
    (durations, percentages); summary.csv keeps the raw values under the same names."""
    from sim.report.sections import headline
    from sim.wording import metric

    row = result.summary_row
    out.print(f"[bold]{row['scenario']}[/bold]", highlight=False)
    for line in headline(result):
        out.print(f"  {line}", highlight=False, markup=False)
    table = Table("metric (summary.csv)", "value", title="Summary", title_justify="left", box=box.SIMPLE_HEAD)
    for key, value in row.items():
        if key == "scenario" or not isinstance(value, (int, float)) or key in ("seed", "replication"):
            continue
        table.add_row(key, metric(key, value))
    out.print(table)


def _print_table(title: str, rows: list[dict[str, Any]], columns: dict[str, str], csv_name: str) -> None:
    if not rows:
        return
    count_key = "count" if "count" in rows[0] else "messages"
    # Rows that lose mail first (returned + doomed), then the busiest: a long table cut at
    # TABLE_ROWS keeps the domains and senders the run is about.
    lost_key = next((k for k in ("ndr", "lost") if k in rows[0]), "")

    def lost(row: dict[str, Any]) -> int:
        return int(row[lost_key]) + int(row.get("doomed", 0)) if lost_key else 0

    shown = rows
    if len(rows) > TABLE_ROWS:
        shown = sorted(rows, key=lambda row: (-lost(row), -row[count_key]))[:TABLE_ROWS]
        what = "that lose most, then the busiest" if any(lost(r) for r in rows) else "busiest"
        title += f" (the {len(shown)} {what}, of {len(rows)}; all in {csv_name})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    cells = [[_text(row[key]) for key in columns] for row in shown]
    for i, (key, header) in enumerate(columns.items()):
        if key in ("domain", "sender"):
            table.add_column(header, min_width=max(len(line[i]) for line in cells), no_wrap=True)
        elif key in ("route", "reason", "status"):
            table.add_column(header, overflow="fold")
        else:  # numbers are never cut: the column is as wide as its widest value
            width = max([len(header)] + [len(line[i]) for line in cells])
            table.add_column(header, justify="right", min_width=width, no_wrap=True)
    for line in cells:
        table.add_row(*line)
    out.print(table)


def main() -> None:
    """Console entry point: click's usage errors already exit 2; ours do too. Anything
    else is a bug: one line saying so and exit 1, or the traceback with --debug or
    TLSSIM_DEBUG=1."""
    try:
        app()
    except Exception as exc:
        if DEBUG["on"] or "--debug" in sys.argv:
            raise
        err.print(
            f"internal error (a bug in tlssim): {type(exc).__name__}: {exc}; run with --debug or TLSSIM_DEBUG=1 "
            "for the traceback",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)
    finally:
        # Python's shutdown collects garbage several times over everything still alive:
        # 0.08-0.09 s after a run of force-tls-2024, 0.016 s with it all frozen (N=2,
        # issue 22). The objects are still freed with the process; atexit still runs.
        gc.freeze()


if __name__ == "__main__":
    main()

"""``tlssim probe``: the command line of the probe."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sim.errors import ScenarioError
from sim.vocabulary import is_domain

out = Console()
err = Console(stderr=True)


def probe(
    domains: Annotated[list[str] | None, typer.Argument(help="recipient domains", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="a file of domains, one per line")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="the remote-world file to write")] = Path("remotes.yaml"),
    timeout: Annotated[str, typer.Option(help="deadline per host, for the whole session")] = "20s",
    concurrency: Annotated[int, typer.Option(help="sessions at once", min=1, max=64)] = 8,
    max_mx: Annotated[int, typer.Option(help="MX hosts probed a domain, in preference order", min=1, max=50)] = 5,
    cafile: Annotated[Path | None, typer.Option(help="trust these roots instead of the system's")] = None,
) -> None:
    """Probe recipient domains' MX hosts (EHLO, STARTTLS, certificate; never MAIL, RCPT or DATA)
    and their MTA-STS, DANE and TLS-RPT records; write a remote-world file."""
    from sim.durations import parse_duration
    from sim.files import write_text_atomic
    from sim.importers.output import csv_text, yaml_text
    from sim.importers.text import read_text_lines
    from sim.probe.dns import DnsResolver
    from sim.probe.run import STATUS_COLUMNS, probe_domains
    from sim.scenario.model import Remotes

    try:
        deadline = parse_duration(timeout)
    except ValueError as exc:
        _fail(f"--timeout = {timeout!r}: {exc}")
    names = [d.strip().lower() for d in domains or []]
    try:
        if file is not None:
            names += [line.split("#", 1)[0].strip().lower() for _, line in read_text_lines(file)]
    except ScenarioError as exc:
        _fail(str(exc))
    names = [n for n in dict.fromkeys(names) if n]
    bad = [n for n in names if not is_domain(n)]
    if bad:
        _fail(f"domain = {bad[0]!r}: not a domain name (accepted: a DNS name such as example.com)")
    if not names:
        _fail("no domains given (accepted: DOMAIN... or --file FILE)")
    if not out_file.parent.is_dir():
        _fail(f"--out = {str(out_file)!r}: the folder {str(out_file.parent)!r} does not exist (create it first)")
    if out_file.is_dir():
        _fail(f"--out = {str(out_file)!r}: a folder (accepted: the remote-world file to write)")
    import asyncio  # here: the other commands need not load it

    cafile_text = str(cafile) if cafile is not None else None
    result = asyncio.run(
        probe_domains(
            names,
            DnsResolver(deadline),
            deadline=deadline,
            concurrency=concurrency,
            cafile=cafile_text,
            max_mx=max_mx,
        )
    )
    document = result.document
    Remotes.model_validate(document)  # what we write must load
    status_file = out_file.with_name(f"{out_file.stem}-status.csv")
    write_text_atomic(status_file, csv_text(STATUS_COLUMNS, result.rows()))
    counts = Counter(record.status for record in result.records)
    summary = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    if not document["domains"]:
        _fail(f"no domain could be probed ({summary}); each domain's evidence is in {status_file}")
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    header = [f"Probed by tlssim on {stamp}: what each host showed ({summary}).", *result.notes]
    write_text_atomic(out_file, yaml_text(document, header))
    out.print(
        f"wrote {out_file}: {len(document['domains'])} domain(s) ({summary}); per domain: {status_file}",
        highlight=False,
        soft_wrap=True,
    )


def _fail(message: str) -> None:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)

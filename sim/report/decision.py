"""The decision packet of a what-if that loses mail: ``exceptions/`` and a report section.

It holds what an architect takes to a change board: the per-domain TLS exceptions that
would keep the mail flowing, in the product's syntax (:mod:`sim.report.exceptions`),
with a what-if that applies them (``with-exceptions.yaml``) and a rollback what-if
(``rollback.yaml``: the change reversed at the first delay notice or NDR, when an
operator would notice). Both are run here, once, with the what-if's seed, so the packet
states the loss each would leave, measured, not hoped for.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sim.durations import format_duration, parse_duration
from sim.files import write_text_atomic
from sim.parallel import Background
from sim.report import exceptions as ex
from sim.report.facts import sender_lost, status_codes
from sim.report.sections import Section, Table
from sim.scenario.calendar import absolute_path
from sim.scenario.loader import read_yaml, scenario_from_raw
from sim.scenario.model import Scenario
from sim.scenario.overrides import OverrideError, get_path
from sim.simulate import run
from sim.wording import count, duration, share_of

if TYPE_CHECKING:
    from sim.results import RunResult

FOLDER = "exceptions"
# Override fields that are policy (what the change board decides), as opposed to the
# conditions a what-if sets up (a certificate that expires, a remote that rejects).
POLICY_FIELDS = frozenset({"outbound_tls", "tls_policy", "dane", "mta_sts", "inbound", "connectors", "require_tls",
                           "tls_auth_level", "ignore_starttls", "tls", "profile", "publishes"})  # fmt: skip
# What a sender's TLS-RPT reports call each failure (RFC 8460 s.4.3): what to watch after.
RESULT_TYPES = {
    "no-starttls": "starttls-not-supported",
    "handshake": "validation-failure",
    "dane-handshake": "validation-failure",
    "certificate": "certificate-not-trusted, certificate-expired, certificate-host-mismatch",
    "dane-mismatch": "tlsa-invalid",
    "dane-lookup": "dnssec-invalid",
    "mx-lookup": "dnssec-invalid",
    "sts-plugin": "none (Postfix before 3.10 sends no TLS-RPT)",
    "dane-required": "dane-required",
    "sts-certificate": "sts-webpki-invalid",
    "sts-no-starttls": "starttls-not-supported",
}


@dataclass(frozen=True)
class Variant:
    file: str
    what: str
    result: RunResult


def will_not_arrive(result: RunResult) -> tuple[int, int]:
    """(outbound, inbound) mail of a run that will not arrive: returned and doomed."""
    row = result.summary_row
    return int(row["out_lost"]), int(row["in_lost"]) + int(row.get("in_doomed", 0))


def write_packet(
    result: RunResult, scenario: Scenario, scenario_file: Path, folder: Path
) -> tuple[list[Path], Section]:
    """Write ``folder/exceptions/`` and return the files and the report's section.

    Call only for a run that loses mail (:func:`will_not_arrive`)."""
    return start_packet(result, scenario, scenario_file, folder).finish()


def start_packet(result: RunResult, scenario: Scenario, scenario_file: Path, folder: Path) -> PendingPacket:
    """Start the packet's what-ifs (the first round of exceptions and the rollback, which
    do not depend on each other) on a forked worker, one after the other, while the
    caller writes its tables and figures; :meth:`PendingPacket.finish` writes the packet.
    One worker, not two: the caller's figures hold the other core."""
    return PendingPacket(result, scenario, scenario_file, folder)


class PendingPacket:
    def __init__(self, result: RunResult, scenario: Scenario, scenario_file: Path, folder: Path) -> None:
        self.result, self.scenario, self.scenario_file = result, scenario, scenario_file
        self.target = folder / FOLDER
        self.target.mkdir(exist_ok=True)
        self.raw = read_yaml(scenario_file)
        self.chosen = ex.choose(result, scenario)
        self._workers = Background(workers=1)
        self._first_round = self._exceptions_round()
        self._rollback = _rollback(self.raw, scenario, scenario_file, result, self.target)
        self._rolled_back: Future[RunResult] | None = None
        if self._rollback is not None:
            at, document = self._rollback
            self._rolled_back = self._workers.submit(run, _write_variant(document, self.target / "rollback.yaml", at))

    def _exceptions_round(self) -> Future[RunResult] | None:
        """The what-if with the chosen exceptions, written and started; ``None`` when none is left."""
        changes = ex.overrides(self.scenario, self.chosen)
        if not changes:
            return None
        raw, target = self.raw, self.target
        document = _relocated(raw, self.scenario_file, target)
        document["name"] = f"{raw['name']}-with-exceptions"
        document["overrides"] = {**(raw.get("overrides") or {}), **changes}
        scenario = _write_variant(document, target / "with-exceptions.yaml", None)
        return self._workers.submit(run, scenario)

    def finish(self) -> tuple[list[Path], Section]:
        try:
            return self._finish()
        finally:
            self._workers.close()

    def abandon(self) -> None:
        """Stop waiting for the what-ifs (the folder is not being written after all)."""
        self._workers.close(wait=False)

    def _finish(self) -> tuple[list[Path], Section]:
        target, written, variants = self.target, [], []
        texts: list[tuple[str, str]] = []
        running = self._first_round
        # An exception that does not help is dropped and the rest run again: each round drops one or more.
        while running is not None:
            variant = Variant("with-exceptions.yaml", "with the exceptions", running.result())
            useless = ex.still_losing(variant.result, self.chosen)
            if not useless:
                break
            self.chosen = [ex.without_level(e, useless[e.domain]) if e.domain in useless else e for e in self.chosen]
            running = self._exceptions_round()
        if running is None:
            (target / "with-exceptions.yaml").unlink(missing_ok=True)  # every exception tried was dropped
        else:
            written.append(target / "with-exceptions.yaml")
            variants.append(variant)
            texts = ex.product_text(self.scenario, self.chosen)
            for name, text in texts:
                written.append(write_text_atomic(target / name, text))
        if self._rollback is not None and self._rolled_back is not None:
            at = self._rollback[0]
            variants.append(Variant("rollback.yaml", f"rolled back at {duration(at)}", self._rolled_back.result()))
            written.append(target / "rollback.yaml")
        section = _section(self.result, self.chosen, variants, texts)
        summary = _go_no_go(self.result, self.chosen, variants)
        written.append(write_text_atomic(target / "go-no-go.md", summary))
        return written, section


def _relocated(raw: dict[str, Any], scenario_file: Path, target: Path) -> dict[str, Any]:
    """The what-if with its file references made relative to ``target``."""
    document = copy.deepcopy(raw)
    for key in ("topology", "remotes"):
        if isinstance(document.get(key), str):
            referenced = (scenario_file.parent / document[key]).resolve()
            document[key] = os.path.relpath(referenced, target.resolve())
    return document


def _write_variant(document: dict[str, Any], path: Path, at: float | None) -> Scenario:
    """Write a packet what-if (with a header saying what it is) and load it back."""
    what = "with the exceptions" if at is None else f"rolled back at {duration(at)}"
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    header = f"# {what}: written by tlssim from the what-if {document['name']}; run it with tlssim run {path.name}\n"
    write_text_atomic(path, header + text)
    return scenario_from_raw(document, path)


def _rollback(
    raw: dict[str, Any], scenario: Scenario, scenario_file: Path, result: RunResult, target: Path
) -> tuple[float, dict[str, Any]] | None:
    """The what-if with its policy change reversed at the first delay notice or NDR."""
    at = next((t for t, _, ndr, _, dsn in result.events if ndr or dsn), None)
    if at is None:
        refusals = [t for t, _, _, in_retry in result.queue_samples if in_retry]
        at = min(refusals) if refusals else None
    if at is None:
        # Inbound loss only: no queue of ours shows it. Senders' users complain within a
        # day of the change (their delay notices: 4 h at Exchange Online, 12 h to 1 d at
        # most products), so the rollback comes a day after it.
        at = min((c.at for c in scenario.changes), default=0.0) + 86400.0
    document = _relocated(raw, scenario_file, target)
    changes = raw.get("changes") or []
    if changes:
        keys = [key for change in changes for key in change.get("set", {})]
        original = scenario.model_dump(mode="json", by_alias=True, exclude={"changes"})
    else:
        keys = [k for k in (raw.get("overrides") or {}) if set(k.split(".")) & POLICY_FIELDS]
        unchanged = copy.deepcopy(raw)
        unchanged["overrides"] = {k: v for k, v in (raw.get("overrides") or {}).items() if k not in keys}
        original = scenario_from_raw(unchanged, scenario_file).model_dump(mode="json", by_alias=True)
    restore = {}
    for key in keys:
        try:
            restore[key] = get_path(original, absolute_path(key))
        except OverrideError:
            continue  # a field the original leaves at its default: nothing to write back
    if not restore:
        return None
    later = [c for c in changes if parse_duration(c.get("at")) <= at]
    document["name"] = f"{raw['name']}-rollback"
    document["changes"] = [*later, {"at": format_duration(at), "set": restore}]
    return at, document


def _section(
    result: RunResult, chosen: list[ex.DomainException], variants: list[Variant], texts: list[tuple[str, str]]
) -> Section:
    sentences = [f"As written, the what-if loses {_loss(result)}."]
    for variant in variants:
        sentences.append(
            f"{variant.what.capitalize()} ({FOLDER}/{variant.file}), the same run loses {_loss(variant.result)} "
            f"(seed {variant.result.seed}, one replication)."
        )
    rows = [
        {
            "domain": e.domain,
            "lost": count(e.lost),
            "failure": e.failure,
            "exception": e.level.value if e.level is not None else "none possible",
            "why": e.why,
        }
        for e in chosen[:20]
    ]
    tables = [Table("Exceptions per domain", ["domain", "lost", "failure", "exception", "why"], rows,
                    frozenset({"lost"}))] if rows else []  # fmt: skip
    typed = "; below, what to type" if texts else ""
    sentences.append(f"{FOLDER}/go-no-go.md is the one-page summary{typed}.")
    section = Section("decision", "Decision packet", sentences, [], tables)
    section.preformatted = [(f"{FOLDER}/{name}", text) for name, text in texts]
    return section


def _go_no_go(result: RunResult, chosen: list[ex.DomainException], variants: list[Variant]) -> str:
    inbound = will_not_arrive(result)[1]
    row = result.summary_row
    lines = [f"# Go / no-go: {result.scenario_name}", ""]
    lines += ["## What changes, for whom", ""]
    if chosen:
        lines.append(f"Outbound mail to {len(chosen)} domain(s) stops arriving:")
        lines += [f"- {e.domain}: {count(e.lost)} messages ({e.failure})" for e in chosen[:20]]
    if inbound:
        senders = sorted(result.inbound_rows, key=lambda r: -sender_lost(r))
        lines.append("Inbound mail from these senders stops arriving:")
        lines += [
            f"- {r['sender']}: {count(sender_lost(r))} messages ({r.get('last_refusal', '')})"
            for r in senders
            if sender_lost(r)
        ]
        lines.append("(tlssim writes no per-sender exception for inbound mail: the rollback is the remedy.)")
    lines += ["", "## Expected loss", ""]
    lines.append(f"- as written: {_loss(result)}")
    for variant in variants:
        lines.append(f"- {variant.what} ({variant.file}): {_loss(variant.result)}")
    lines.append(
        f"- one replication (seed {result.seed}); for an interval: tlssim compare BASELINE WHATIF --replications 10"
    )
    lines += ["", "## What to watch after", ""]
    codes = status_codes(result)
    if codes:
        lines.append(f"- NDRs with status {', '.join(codes)}; delay notices from {_notice(result)} after the change")
    queues = sorted({f"{e.route} -> {e.domain}" for e in chosen[:10]})
    if queues:
        lines.append(f"- the queues {', '.join(queues)}: growing from the change on, they are this loss")
    types = sorted({RESULT_TYPES[e.failure] for e in chosen if e.failure in RESULT_TYPES})
    if types:
        lines.append(f"- in the TLS-RPT reports we send (if we send them): {'; '.join(types)}")
    if result.tlsrpt_received:
        lines.append("- in the TLS-RPT reports we receive: failures by result type per sending organisation")
    if row["peak_queue_depth"]:
        lines.append(f"- total queue depth: this run peaks at {count(row['peak_queue_depth'])}")
    return "\n".join(lines) + "\n"


def _loss(result: RunResult) -> str:
    """``1,407 of 143,694 outbound messages (1.0%) and 12 of 900 inbound (1.3%)``."""
    row = result.summary_row
    out, inbound = will_not_arrive(result)
    parts = []
    if row["out_messages"]:
        parts.append(
            f"{count(out)} of {count(row['out_messages'])} outbound messages ({share_of(out, row['out_messages'])})"
        )
    if row["in_messages"]:
        share = share_of(inbound, row["in_messages"])
        parts.append(f"{count(inbound)} of {count(row['in_messages'])} inbound messages ({share})")
    return " and ".join(parts) or "no mail"


def _notice(result: RunResult) -> str:
    notice = result.timers.get("delay notice")
    return duration(notice) if notice else "the delay-notice timer"

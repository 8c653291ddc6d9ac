"""What a run's report says, section by section, chosen from what the run has.

A run may have outbound mail, inbound mail, our own published policies (TLS-RPT
reports received) and a policy calendar, in any mix: each section appears when, and
only when, the run has its data, so an inbound-only what-if does not show four empty
outbound charts. Every number here is said in words (:mod:`sim.wording`); the page
module turns sections into Markdown and HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from sim.report.facts import domain_lost, losing_domains, sender_lost, status_codes, tlsrpt_days
from sim.wording import count, duration, fate_sentence, inbound_fate_sentence, share_of

if TYPE_CHECKING:
    from sim.results import RunResult


class Drawing(Enum):
    """The figures a report holds, each drawn by one function of ``sim.report.figures``
    (``figures.DRAWERS``). Named here, not imported: the sections are worded without
    matplotlib, which a painter process imports while the run is simulated."""

    QUEUES = "queues"
    EVENTS = "events"
    DOMAINS = "domains"
    DELAYS = "delays"
    INBOUND = "inbound"
    TLSRPT = "tlsrpt"


@dataclass(frozen=True)
class Chart:
    """One figure: its file name, a caption that says what it shows *in this run*, and
    which figure it is."""

    name: str
    caption: str
    drawing: Drawing


@dataclass(frozen=True)
class Table:
    """Rows of text already worded; ``numeric`` columns are right-aligned."""

    title: str
    columns: list[str]
    rows: list[dict[str, str]]
    numeric: frozenset[str] = frozenset()
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    sentences: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    preformatted: list[tuple[str, str]] = field(default_factory=list)  # (file name, text): config to copy


TABLE_ROWS = 20


def outbound_fate(result: RunResult) -> str:
    row = result.summary_row
    return fate_sentence(
        row["out_messages"],
        row["out_ndr"],
        row.get("out_doomed", 0),
        row.get("out_pending", 0),
        codes=status_codes(result),
        expiry_s=result.timers.get("expiry", float("nan")),
        duration_s=row["sim_hours"] * 3600.0,
    )


def inbound_fate(result: RunResult) -> str:
    row = result.summary_row
    pending = sum(int(r.get("pending", 0)) for r in result.inbound_rows)  # the summary has no such column
    return inbound_fate_sentence(row["in_messages"], row["in_lost"], row.get("in_doomed", 0), pending)


def headline(result: RunResult) -> list[str]:
    """The run's answer in a few sentences, the fate of the mail first."""
    row = result.summary_row
    lines = []
    if row["out_messages"]:
        lines.append(outbound_fate(result))
        delivered = row["out_delivered"]
        if delivered:
            verified = sum(int(r.get("delivered_verified", 0)) for r in result.per_domain_rows)
            checked = f" ({share_of(verified, delivered)} with a verified certificate)" if verified else ""
            plain = row["out_delivered_plaintext"]
            how = f"{share_of(row['out_delivered_tls'], delivered)} went over TLS{checked}"
            how = f"{how} and {share_of(plain, delivered)} in plaintext" if plain else f"all went over TLS{checked}"
            lines.append(f"Of the {count(delivered)} messages delivered, {how}.")
        if row["peak_queue_depth"]:
            lines.append(
                f"The queues peak at {count(row['peak_queue_depth'])} messages "
                f"{duration(row['peak_queue_time_s'])} into the run."
            )
        if row["out_delay_dsn"]:
            lines.append(f"{count(row['out_delay_dsn'])} delay notices go out to our senders.")
    if row["in_messages"]:
        lines.append(inbound_fate(result))
    if result.tlsrpt_received:
        lines.append(_tlsrpt_sentence(result))
    for change in result.manifest_extra.get("changes", []):
        lines.append(f"At {duration(change['at_s'])} the policy changes: {_settings(change)}.")
    return lines or ["The run has no mail."]


def sections(result: RunResult) -> list[Section]:
    """The report's sections, in reading order, each present only with its data."""
    found = []
    if result.summary_row["out_messages"]:
        found.append(_outbound(result))
    if result.summary_row["in_messages"]:
        found.append(_inbound(result))
    if result.tlsrpt_received:
        found.append(_policies(result))
    if result.manifest_extra.get("changes"):
        found.append(_calendar(result))
    return found


def _outbound(result: RunResult) -> Section:
    row = result.summary_row
    losing = losing_domains(result)
    if losing:
        said = f"Mail to {count(len(losing))} of {count(len(result.per_domain_rows))} recipient domains will not arrive"
    else:
        said = f"Mail to all {count(len(result.per_domain_rows))} recipient domains arrives or may yet arrive"
    section = Section("outbound", "Outbound mail", [said + " (table below; per_domain.csv holds every domain)."])
    if row["peak_queue_depth"]:
        caption = (
            f"Queue depth over time: the queues peak at {count(row['peak_queue_depth'])} messages "
            f"{duration(row['peak_queue_time_s'])} into the run"
        )
        section.charts.append(Chart("queues.png", caption, Drawing.QUEUES))
    if row["out_ndr"] or row["out_delay_dsn"]:
        caption = (
            f"NDRs and delay notices so far: {count(row['out_ndr'])} NDRs and "
            f"{count(row['out_delay_dsn'])} delay notices by the end of the run"
        )
        section.charts.append(Chart("events.png", caption, Drawing.EVENTS))
    if losing:
        names = ", ".join(f"{r['domain']} ({count(domain_lost(r))})" for r in losing[:3])
        caption = f"Domains whose mail will not arrive, most lost first: {names}"
    else:
        caption = "Outcome per recipient domain: the busiest domains; none loses mail"
    section.charts.append(Chart("domains.png", caption, Drawing.DOMAINS))
    if row["out_delivered"] or row["out_ndr"] or row.get("out_doomed"):
        caption = f"Time to delivery (median {duration(row['delay_p50_s'])})"
        if row["out_ndr"] or row.get("out_doomed"):
            last, end = row["out_returned_by_s"], row["sim_hours"] * 3600.0
            # Doomed mail is returned at its expiry, which may come after the run's end.
            when = "into the run" if last <= end else f"after the start, {duration(last - end)} after the run ends"
            caption += f", and to the NDR of mail that will not arrive (the last {duration(last)} {when})"
        section.charts.append(Chart("delays.png", caption, Drawing.DELAYS))
    if losing:
        section.tables.append(_domain_table("Domains whose mail will not arrive", losing, len(losing)))
    else:
        busiest = sorted(result.per_domain_rows, key=lambda r: (-r["messages"], r["domain"]))
        section.tables.append(_domain_table("Busiest recipient domains", busiest, len(busiest)))
    if result.ndr_rows:
        ndrs = sorted(result.ndr_rows, key=lambda r: (-r["count"], r["domain"], r["status"]))
        rows = [
            {"domain": r["domain"], "status": r["status"], "NDRs": count(r["count"]), "reason": r["reason"]}
            for r in ndrs[:TABLE_ROWS]
        ]
        columns = ["domain", "status", "NDRs", "reason"]
        section.tables.append(Table("NDRs by status", columns, rows, frozenset({"NDRs"}), _more(len(ndrs))))
    return section


def _domain_table(title: str, rows: list[dict[str, Any]], total: int) -> Table:
    columns = ["domain", "route", "TLS level", "messages", "delivered", "over TLS", "returned", "doomed",
               "all returned by", "pending", "why"]  # fmt: skip
    worded = []
    for r in rows[:TABLE_ROWS]:
        returned_by = r.get("returned_by_s", float("nan"))
        worded.append(
            {
                "domain": str(r["domain"]),
                "route": str(r["route"]),
                "TLS level": str(r["tls_level"]),
                "messages": count(r["messages"]),
                "delivered": count(r["delivered"]),
                "over TLS": share_of(r["delivered_tls"], r["delivered"]),
                "returned": count(r["ndr"]),
                "doomed": count(r.get("doomed", 0)),
                "all returned by": duration(returned_by) if r["ndr"] or r.get("doomed") else "",
                "pending": count(r.get("pending", 0)),
                "why": str(r["last_failure"] or r["last_status"]),
            }
        )
    numeric = frozenset({"messages", "delivered", "over TLS", "returned", "doomed", "all returned by", "pending"})
    same = []
    for column in ("route", "TLS level"):  # one value for every row: said once, the table stays narrow
        values = {row[column] for row in worded}
        if len(values) == 1:
            columns.remove(column)
            same.append(f"{column}: {values.pop()}")
    note = (
        (f"All with {', '.join(same)}. " if same else "")
        + "Doomed: still queued at the end, with no way out under the policy; returned at its expiry. "
        "All returned by: run time of the last return. " + _more(total)
    )
    return Table(title, columns, worded, numeric, note.strip())


def _inbound(result: RunResult) -> Section:
    row = result.summary_row
    sentences = [inbound_fate(result)]
    if row["in_rejected_attempts"]:
        sentences.append(f"Our servers refuse {count(row['in_rejected_attempts'])} delivery attempts.")
    rows = sorted(result.inbound_rows, key=lambda r: (-sender_lost(r), -r["messages"], r["sender"]))
    receivers = {str(r["receiver"]) for r in rows}
    columns = ["sender", "to", "messages", "accepted", "over TLS", "refused attempts", "returned to sender",
               "doomed", "pending", "last refusal"]  # fmt: skip
    if len(receivers) == 1:  # one receiving side: say it once, keep the table narrow
        columns.remove("to")
        sentences.append(f"All of it is sent to {next(iter(receivers)).replace(';', ', ')}.")
    worded = [
        {
            "sender": str(r["sender"]),
            "to": str(r["receiver"]).replace(";", ", "),
            "messages": count(r["messages"]),
            "accepted": count(r["accepted"]),
            "over TLS": share_of(r["accepted_tls"], r["accepted"]),
            "refused attempts": count(r.get("refused", 0)),
            "returned to sender": count(r["lost"]),
            "doomed": count(r.get("doomed", 0)),
            "pending": count(r.get("pending", 0)),
            "last refusal": str(r.get("last_refusal", "")),
        }
        for r in rows[:TABLE_ROWS]
    ]
    numeric = frozenset(
        {"messages", "accepted", "over TLS", "refused attempts", "returned to sender", "doomed", "pending"}
    )
    table = Table("Inbound mail per sending organisation", columns, worded, numeric, _more(len(rows)))
    worst = rows[0]
    caption = (
        f"Inbound mail from {count(len({r['sender'] for r in rows}))} sending organisation(s): "
        f"{share_of(row['in_accepted'], row['in_messages'])} accepted"
    )
    if sender_lost(worst):
        caption += f"; {worst['sender']} loses most ({count(sender_lost(worst))})"
    chart = Chart("inbound.png", caption, Drawing.INBOUND)
    return Section("inbound", "Inbound mail", sentences, [chart], [table])


def _tlsrpt_sentence(result: RunResult) -> str:
    days = tlsrpt_days(result)
    sessions = sum(d["ok"] + d["failed"] for d in days)
    failed = sum(d["failed"] for d in days)
    organisations = len({d["organisation"] for d in days})
    text = (
        f"{len(result.tlsrpt_received)} TLS-RPT reports from {organisations} organisation(s) cover "
        f"{count(sessions)} sessions with our published policies; {count(failed)} failed ({share_of(failed, sessions)})"
    )
    testing = sum(d["failed"] for d in days if d["testing"])
    if testing:
        text += f", {count(testing)} of them while the policy was in testing: enforce would have refused those"
    return text + "."


def _policies(result: RunResult) -> Section:
    days = tlsrpt_days(result)
    rows = [
        {
            "reported by": d["organisation"],
            "day": d["day"],
            "policy": d["policy"],
            "sessions": count(d["ok"] + d["failed"]),
            "failed": count(d["failed"]),
            "failed share": share_of(d["failed"], d["ok"] + d["failed"]),
            "failures by result type": ", ".join(f"{t} {count(n)}" for t, n in d["types"].most_common()),
        }
        for d in days
    ]
    columns = ["reported by", "day", "policy", "sessions", "failed", "failed share", "failures by result type"]
    table = Table("TLS-RPT reports received, per organisation and day", columns, rows,
                  frozenset({"sessions", "failed", "failed share"}))  # fmt: skip
    failing = sum(d["failed"] for d in days)
    caption = f"Sessions with our published policies per day, as reported: {count(failing)} failed"
    chart = Chart("tlsrpt.png", caption, Drawing.TLSRPT)
    return Section("policies", "Our published policies (TLS-RPT)", [_tlsrpt_sentence(result)], [chart], [table])


def _calendar(result: RunResult) -> Section:
    changes = result.manifest_extra.get("changes", [])
    rows = [{"at": duration(c["at_s"]), "change": _settings(c)} for c in changes]
    sentence = (
        f"The policy changes {len(changes)} time(s) during the run; every time axis marks each change "
        "with a dashed blue line."
    )
    return Section("calendar", "Policy calendar", [sentence], [], [Table("Changes", ["at", "change"], rows)])


def _settings(change: dict[str, Any]) -> str:
    return "; ".join(f"{key} = {value}" for key, value in change.get("set", {}).items())


def _more(total: int) -> str:
    return f"The first {TABLE_ROWS} of {count(total)} are shown; the CSV files hold all." if total > TABLE_ROWS else ""

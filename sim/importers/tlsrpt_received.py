"""TLS-RPT reports as people receive them (RFC 8460), read into what tlssim can count.

A report arrives as a ``.json`` file, a ``.json.gz``, a mail (``multipart/report;
report-type=tlsrpt`` with an ``application/tlsrpt+gzip`` or ``+json`` part, s.5.3), or
many mails in an mbox file or a Maildir folder. Real reports are sparse (Microsoft omits
``policy-string``, ``mx-host`` and ``sending-mta-ip``; Postfix's reporter omits
``policy-domain``; Mail.ru sends ``failure-reason-code`` only), so only what every
report needs to be counted is required: the organisation, the date range and, per
policy, the summary's two session counts. Everything else is optional. A document that
is not a report is skipped, counted and named, never guessed at.

The same report delivered twice (a mailbox and its backup, a forwarded copy) is counted
once: RFC 8460 s.4.4 makes ``report-id`` unique per reporting organisation.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import json
import mailbox
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

MAX_REPORT_BYTES = 16 * 1024 * 1024
"""A report, decompressed, is at most this large: a day's report of the busiest sender
is well under a megabyte; beyond this a gzip is a bomb, not a report."""
MAX_FILE_BYTES = 512 * 1024 * 1024  # one mbox file of a year of reports is far below this
REPORT_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json", "application/gzip", "application/json")

# Reporting organisations whose sending product tlssim models, by the name their reports
# carry (modern-policies 4f, as in sim/mta/profiles.py ``reporter``).
KNOWN_REPORTERS = {"Microsoft Corporation": "exchange-online"}


@dataclass(frozen=True)
class Report:
    source: str  # where it was read: a file, or file:message number
    document: dict[str, Any]

    @property
    def organisation(self) -> str:
        return str(self.document["organization-name"])

    @property
    def day(self) -> str:
        return str(self.document["date-range"]["start-datetime"])[:10]


@dataclass
class Reading:
    reports: list[Report]
    skipped: list[tuple[str, str]]  # (source, why)
    duplicates: int


def read_reports(paths: Iterable[Path]) -> Reading:
    """Every report under ``paths`` (files, mboxes, Maildirs, folders of any of them)."""
    reports: list[Report] = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for source, payload in _payloads(paths, skipped):
        document, why = _parse(payload)
        if document is None:
            skipped.append((source, why))
            continue
        key = (str(document["organization-name"]), str(document.get("report-id", source)))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        reports.append(Report(source, document))
    return Reading(reports, skipped, duplicates)


def _payloads(paths: Iterable[Path], skipped: list[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    for path in paths:
        if path.is_dir():
            if (path / "cur").is_dir() or (path / "new").is_dir():
                for number, message in enumerate(mailbox.Maildir(path, factory=None, create=False)):
                    yield from _mail_parts(f"{path}:{number}", message, skipped)
                continue
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _payloads([child], skipped)
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                skipped.append((str(path), f"larger than {MAX_FILE_BYTES // 1048576} MB"))
                continue
            data = path.read_bytes()
        except OSError as exc:
            skipped.append((str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        if data.startswith(b"From "):  # an mbox: one mail after another
            box = mailbox.mbox(path, create=False)
            for number, mail in enumerate(box):
                yield from _mail_parts(f"{path}:{number}", mail, skipped)
        elif _looks_like_mail(data):
            yield from _mail_parts(str(path), email.message_from_bytes(data, policy=email.policy.compat32), skipped)
        else:
            yield str(path), data


def _looks_like_mail(data: bytes) -> bool:
    head = data[:4096].lower()
    return not data.lstrip().startswith((b"{", b"\x1f\x8b")) and b"content-type:" in head


def _mail_parts(source: str, message: Message, skipped: list[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    found = False
    for part in message.walk():
        kind = part.get_content_type()
        name = part.get_filename() or ""
        if kind in REPORT_TYPES or name.endswith((".json", ".json.gz", ".gz")):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found = True
                yield f"{source} ({name or kind})", payload
    if not found:
        skipped.append((source, "a mail without an application/tlsrpt+gzip or +json part"))


def _parse(payload: bytes) -> tuple[dict[str, Any] | None, str]:
    if payload[:2] == b"\x1f\x8b":
        try:
            payload = _gunzip(payload)
        except (OSError, EOFError, zlib.error) as exc:
            return None, f"not a readable gzip ({exc})"
        except ValueError as exc:
            return None, str(exc)
    try:
        document = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return None, f"not JSON ({type(exc).__name__})"
    why = problem(document)
    return (document, "") if why is None else (None, why)


def _gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
        out = handle.read(MAX_REPORT_BYTES + 1)
    if len(out) > MAX_REPORT_BYTES:
        raise ValueError(f"expands beyond {MAX_REPORT_BYTES // 1048576} MB: not a report")
    return out


def problem(document: Any) -> str | None:
    """Why ``document`` is not an RFC 8460 report tlssim can count (None: it is)."""
    if not isinstance(document, dict):
        return "not an RFC 8460 report (a JSON object is expected)"
    if not isinstance(document.get("organization-name"), str) or not document["organization-name"].strip():
        return "not an RFC 8460 report (no organization-name)"
    dates = document.get("date-range")
    if not isinstance(dates, dict) or not isinstance(dates.get("start-datetime"), str):
        return "not an RFC 8460 report (no date-range start-datetime)"
    policies = document.get("policies")
    if not isinstance(policies, list) or not policies:
        return "not an RFC 8460 report (no policies)"
    for i, entry in enumerate(policies):
        summary = entry.get("summary") if isinstance(entry, dict) else None
        if not isinstance(summary, dict):
            return f"not an RFC 8460 report (policies[{i}] has no summary)"
        for key in ("total-successful-session-count", "total-failure-session-count"):
            value = summary.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"not an RFC 8460 report (policies[{i}].summary.{key} = {value!r}: a count is expected)"
        details = entry.get("failure-details", [])
        if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
            return f"not an RFC 8460 report (policies[{i}].failure-details is not a list of objects)"
    return None


OBSERVED_COLUMNS = ("organisation", "day", "policy_type", "policy_domain", "mode", "result_type", "receiving_mx",
                    "sessions")  # fmt: skip


def observed_rows(reports: Iterable[Report]) -> list[dict[str, Any]]:
    """Per organisation x day x policy x result type (x our MX host, where reported): sessions.

    Successful sessions come from the summary (``result_type`` ``success``); failures from
    ``failure-details``, and what the summary counts beyond them as ``unspecified``."""
    counts: Counter[tuple[str, str, str, str, str, str, str]] = Counter()
    for report in reports:
        for entry in report.document["policies"]:
            policy = entry.get("policy") if isinstance(entry.get("policy"), dict) else {}
            kind, domain, mode = _policy(policy)
            summary = entry["summary"]
            base = (report.organisation, report.day, kind, domain, mode)
            counts[(*base, "success", "")] += summary["total-successful-session-count"]
            detailed = 0
            for detail in entry.get("failure-details", []):
                sessions = _count(detail.get("failed-session-count"))
                detailed += sessions
                mx = str(detail.get("receiving-mx-hostname", "") or "")
                counts[(*base, str(detail.get("result-type", "unspecified")), mx)] += sessions
            rest = summary["total-failure-session-count"] - detailed
            if rest > 0:
                counts[(*base, "unspecified", "")] += rest
    return [
        dict(zip(OBSERVED_COLUMNS, (*key, sessions), strict=True))
        for key, sessions in sorted(counts.items())
        if sessions
    ]


def _policy(policy: dict[str, Any]) -> tuple[str, str, str]:
    strings = policy.get("policy-string") or []
    mode = ""
    if isinstance(strings, list):
        mode = next((str(s).split(":", 1)[1].strip() for s in strings if str(s).startswith("mode:")), "")
    return str(policy.get("policy-type", "")), str(policy.get("policy-domain", "") or ""), mode


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def senders(reports: Iterable[Report]) -> list[dict[str, Any]]:
    """One entry per reporting organisation: sessions per day and how they failed."""
    days: dict[str, Counter[str]] = defaultdict(Counter)
    failed: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    per_mx: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    contacts: dict[str, str] = {}
    mismatched: Counter[str] = Counter()
    for report in reports:
        organisation = report.organisation
        contacts.setdefault(organisation, str(report.document.get("contact-info", "")))
        for item in report.document["policies"]:
            summary = item["summary"]
            ok, bad = summary["total-successful-session-count"], summary["total-failure-session-count"]
            days[organisation][report.day] += ok + bad
            failed[organisation] += bad
            detailed = 0
            for detail in item.get("failure-details", []):
                sessions = _count(detail.get("failed-session-count"))
                detailed += sessions
                kind = str(detail.get("result-type", "unspecified"))
                kinds[organisation][kind] += sessions
                mx = str(detail.get("receiving-mx-hostname", "") or "")
                if mx:
                    per_mx[organisation][mx][kind] += sessions
            if detailed != bad:
                mismatched[organisation] += 1
    entries = []
    for organisation in sorted(days):
        series = dict(sorted(days[organisation].items()))
        total = sum(series.values())
        profile = KNOWN_REPORTERS.get(organisation)
        entry: dict[str, Any] = {
            "organisation": organisation,
            "contact": contacts[organisation],
            "profile": profile or "generic",
            "profile_assumed": profile is None,
            "days_reported": len(series),
            "sessions_per_day_mean": round(total / len(series), 1),
            "sessions_per_day": series,
            "sessions": total,
            "failed": failed[organisation],
            "failed_share": round(failed[organisation] / total, 4) if total else 0.0,
            "failures": dict(kinds[organisation].most_common()),
            "failures_per_mx": {mx: dict(c.most_common()) for mx, c in sorted(per_mx[organisation].items())},
        }
        if mismatched[organisation]:
            entry["note"] = (
                f"{mismatched[organisation]} policy entr(ies) whose failure-details do not add up to the summary's "
                "failure count: the summary is counted, the details give the kinds"
            )
        entries.append(entry)
    return entries

"""What a run's rows say, counted once for the report's sentences, figures and the
decision packet alike (no drawing, no wording here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.results import RunResult


def domain_lost(row: dict[str, Any]) -> int:
    """Mail to one recipient domain that will not arrive: returned, and doomed in the queue."""
    return int(row["ndr"]) + int(row.get("doomed", 0))


def sender_lost(row: dict[str, Any]) -> int:
    """One sending organisation's mail to us that will not arrive: returned to it, and
    doomed in its queue."""
    return int(row["lost"]) + int(row.get("doomed", 0))


def losing_domains(result: RunResult) -> list[dict[str, Any]]:
    """The recipient domains that lose mail, most lost first."""
    losing = [r for r in result.per_domain_rows if domain_lost(r)]
    return sorted(losing, key=lambda r: (-domain_lost(r), -r["messages"], r["domain"]))


def status_codes(result: RunResult, limit: int = 3) -> list[str]:
    """The commonest NDR status codes of the run, most frequent first."""
    statuses = Counter[str]()
    for ndr in result.ndr_rows:
        statuses[str(ndr["status"])] += int(ndr["count"])
    return [code for code, _ in statuses.most_common(limit)]


def tlsrpt_days(result: RunResult) -> list[dict[str, Any]]:
    """Per reporting organisation, day and policy: sessions, failures by result type, and
    whether the policy was in ``testing`` (where a failure is what ``enforce`` would refuse)."""
    days: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _, report in result.tlsrpt_received:
        organisation = str(report.get("organization-name", "?"))
        day = str(report.get("date-range", {}).get("start-datetime", ""))[:10]
        for entry in report.get("policies", []):
            policy = entry.get("policy", {})
            strings = policy.get("policy-string", []) or []
            mode = next((s.split(":", 1)[1].strip() for s in strings if s.startswith("mode:")), "")
            label = f"{policy.get('policy-type', '?')} {policy.get('policy-domain', '')} {mode}".strip()
            key = (organisation, day, label)
            slot = days.setdefault(key, {"ok": 0, "failed": 0, "types": Counter[str](), "testing": mode == "testing"})
            summary = entry.get("summary", {})
            slot["ok"] += int(summary.get("total-successful-session-count", 0))
            slot["failed"] += int(summary.get("total-failure-session-count", 0))
            for detail in entry.get("failure-details", []):
                slot["types"][str(detail.get("result-type", "?"))] += int(detail.get("failed-session-count", 0))
    return [{"organisation": o, "day": d, "policy": p, **v} for (o, d, p), v in sorted(days.items())]


def by_day(result: RunResult) -> dict[str, dict[str, int]]:
    """Sessions per day, all organisations: ``{"2026-01-01": {"ok": n, "failed": m}}``."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: {"ok": 0, "failed": 0})
    for d in tlsrpt_days(result):
        days[d["day"]]["ok"] += d["ok"]
        days[d["day"]]["failed"] += d["failed"]
    return dict(days)

"""Run results as tables, and writing them whole (temp file + rename)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.csvtable import write_csv
from sim.files import write_atomic
from sim.scenario.model import Scenario
from sim.tlsrpt_reports import PolicyText, build_reports, tlsa_string

if TYPE_CHECKING:
    import pandas as pd

    from sim.model.metrics import TraceRecord
    from sim.model.world import Snapshot
    from sim.plan.build import Plan

SUMMARY_COLUMNS = tuple(
    [
        "scenario",
        "seed",
        "replication",
        "sim_hours",
        "out_messages",
        "out_delivered",
        "out_delivered_tls",
        "out_delivered_plaintext",
        "out_tls_share",
        "out_ndr",
        "out_ndr_rate",
        "out_expired",
        "out_delay_dsn",
        "out_deferrals",
        "out_deferrals_suspended",
        "out_connections",
        "out_policy_refusals",
        "out_queued_at_end",
        "out_doomed",
        "out_pending",
        "out_lost",
        "out_lost_rate",
        "out_returned_by_s",
        "delay_mean_s",
        "delay_p50_s",
        "delay_p95_s",
        "delay_max_s",
        "peak_queue_depth",
        "peak_queue_time_s",
        "in_messages",
        "in_accepted",
        "in_accepted_tls",
        "in_rejected_attempts",
        "in_tlsrpt_sessions",
        "in_lost",
        "in_queued_remote_at_end",
        "in_doomed",
        "wall_s",
    ]
)
# The metrics a policy comparison turns on: tlssim compare lists them first, and a sweep
# reports each one's difference from the baseline with its paired interval.
KEY_METRICS = (
    "out_lost_rate",
    "out_lost",
    "out_doomed",
    "out_ndr_rate",
    "out_ndr",
    "out_expired",
    "out_tls_share",
    "out_delivered_tls",
    "out_delay_dsn",
    "peak_queue_depth",
    "delay_p95_s",
    "in_accepted",
    "in_lost",
)
PER_DOMAIN_COLUMNS = tuple(
    [
        "domain",
        "route",
        "messages",
        "delivered",
        "delivered_tls",
        "delivered_verified",
        "delivered_plaintext",
        "ndr",
        "expired",
        "delay_dsn",
        "queued_at_end",
        "doomed",
        "pending",
        "returned_by_s",
        "tls_level",
        "last_failure",
        "last_status",
        "connections",
        "delay_mean_s",
        "delay_max_s",
    ]
)
INBOUND_COLUMNS = tuple(
    [
        "sender",
        "receiver",
        "messages",
        "accepted",
        "accepted_tls",
        "accepted_plaintext",
        "refused",
        "lost",
        "queued_remote_at_end",
        "doomed",
        "pending",
        "delay_mean_s",
        "last_refusal",
    ]
)
NDR_COLUMNS = ("domain", "status", "reason", "count")
QUEUE_COLUMNS = ("time_s", "queue", "depth", "in_retry")
EVENT_COLUMNS = ("time_s", "delivered", "ndr", "expired", "delay_dsn")
"""Cumulative counts at each sample instant (events.csv): when NDRs and delay notices come."""


@dataclass
class RunResult:
    """Everything one run produced; the tables are pandas DataFrames."""

    scenario_name: str
    seed: int
    replication: int
    scenario_hash: str
    summary_row: dict[str, Any]
    per_domain_rows: list[dict[str, Any]]
    ndr_rows: list[dict[str, Any]]
    queue_samples: list[tuple[float, str, int, bool]]
    wall_s: float
    trace: list[TraceRecord] | None = None
    inbound_rows: list[dict[str, Any]] = field(default_factory=list)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    # RFC 8460 reports as (file name, JSON document): received by us, sent by our senders.
    tlsrpt_received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tlsrpt_sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    delay_histogram: list[tuple[float, int]] = field(default_factory=list)  # (bin lower edge s, count)
    return_histogram: list[tuple[float, int]] = field(default_factory=list)  # arrival to NDR, returned mail
    timers: dict[str, float] = field(default_factory=dict)  # the sending profile's notice and expiry

    @classmethod
    def collect(cls, scenario: Scenario, digest: str, replication: int, ended: Snapshot, wall: float) -> RunResult:
        """The run's tables from what its world handed over at the end (``World.snapshot``)."""
        metrics, inbound = ended.metrics, ended.inbound
        trace = metrics.trace
        if trace is not None and inbound.trace:
            trace = sorted(trace + inbound.trace, key=lambda record: (record[0], record[1]))
        describe = _describe_policies(ended.plan)
        received = build_reports(
            inbound.tlsrpt.sessions.items(), scenario.run.start, describe, per="reporter", sending_prefix="198.51.100"
        )
        sent = build_reports(
            metrics.tlsrpt.sessions.items(), scenario.run.start, describe, per="recipient", sending_prefix="192.0.2"
        )
        return cls(
            scenario.name,
            scenario.run.seed,
            replication,
            digest,
            _summary_row(scenario, replication, ended, wall),
            _per_domain_rows(ended),
            [
                {"domain": domain, "status": status, "reason": reason, "count": count}
                for (domain, status, reason), count in sorted(metrics.ndr.items())
            ],
            metrics.samples,
            wall,
            trace,
            inbound_rows=_inbound_rows(ended),
            tlsrpt_received=received,
            tlsrpt_sent=sent,
            events=metrics.events,
            delay_histogram=metrics.delays.histogram(),
            return_histogram=metrics.returns.histogram(),
            timers=ended.timers,
            manifest_extra={"changes": [{"at_s": c.at, "set": c.set} for c in scenario.changes]},
        )

    # -- tables --------------------------------------------------------------------------

    @property
    def summary(self) -> pd.DataFrame:
        return _frame([self.summary_row], columns=list(SUMMARY_COLUMNS))

    @property
    def per_domain(self) -> pd.DataFrame:
        return _frame(self.per_domain_rows, columns=list(PER_DOMAIN_COLUMNS))

    @property
    def inbound(self) -> pd.DataFrame:
        return _frame(self.inbound_rows, columns=list(INBOUND_COLUMNS))

    @property
    def ndr(self) -> pd.DataFrame:
        return _frame(self.ndr_rows, columns=list(NDR_COLUMNS))

    @property
    def event_series(self) -> pd.DataFrame:
        return _frame(self.events, columns=list(EVENT_COLUMNS))

    @property
    def queues(self) -> pd.DataFrame:
        return _frame(self.queue_samples, columns=list(QUEUE_COLUMNS))

    def manifest(self) -> dict[str, Any]:
        from sim.version import __version__

        return {
            "scenario": self.scenario_name,
            "scenario_hash": self.scenario_hash,
            "seed": self.seed,
            "replication": self.replication,
            "package_version": __version__,
            "wall_s": round(self.wall_s, 3),
            **self.manifest_extra,
        }

    def _write_tlsrpt(self, folder: Path) -> list[Path]:
        """``tls-rpt/received/`` and ``tls-rpt/sent/``: one JSON file per report, the
        folders emptied of an earlier run's reports first."""
        written = []
        for name, reports in (("received", self.tlsrpt_received), ("sent", self.tlsrpt_sent)):
            target = folder / name
            if target.is_dir():
                for old in target.glob("*.json"):
                    old.unlink()
            if not reports:
                continue
            target.mkdir(parents=True, exist_ok=True)
            for file_name, document in reports:
                written.append(write_atomic(target / file_name, partial(_write_json, document=document)))
        return written

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write every table into ``out_dir``; each file appears whole or not at all.
        The CSVs are written from the rows, as the DataFrames would write them."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [
            *self._write_tlsrpt(out / "tls-rpt"),
            *(
                write_atomic(out / name, partial(write_csv, rows=rows, columns=columns))
                for name, rows, columns in (
                    ("summary.csv", [self.summary_row], SUMMARY_COLUMNS),
                    ("per_domain.csv", self.per_domain_rows, PER_DOMAIN_COLUMNS),
                    ("ndr.csv", self.ndr_rows, NDR_COLUMNS),
                    ("queues.csv", self.queue_samples, QUEUE_COLUMNS),
                    ("inbound.csv", self.inbound_rows, INBOUND_COLUMNS),
                    ("events.csv", self.events, EVENT_COLUMNS),
                )
            ),
            write_atomic(
                out / "manifest.json",
                lambda p: p.write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8"),
            ),
        ]
        return written


def _summary_row(scenario: Scenario, replication: int, ended: Snapshot, wall: float) -> dict[str, Any]:
    metrics, inbound, fates = ended.metrics, ended.inbound, ended.fates
    delays = metrics.delays
    counts = metrics.summary_counts()
    queued = ended.queued
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.run.seed,
        "replication": replication,
        "sim_hours": scenario.run.duration / 3600.0,
        **counts,
        "out_tls_share": _ratio(counts["out_delivered_tls"], counts["out_delivered"]),
        "out_ndr_rate": _ratio(counts["out_ndr"], counts["out_messages"]),
        "out_queued_at_end": queued,
        "out_doomed": fates.total,
        "out_pending": queued - fates.total,
        "out_lost": counts["out_ndr"] + fates.total,
        "out_lost_rate": _ratio(counts["out_ndr"] + fates.total, counts["out_messages"]),
        "out_returned_by_s": fates.last_return,
        "delay_mean_s": delays.mean,
        "delay_p50_s": delays.quantile(0.5),
        "delay_p95_s": delays.quantile(0.95),
        "delay_max_s": delays.maximum if delays.count else math.nan,
        "peak_queue_depth": metrics.peak_depth,
        "peak_queue_time_s": metrics.peak_time,
        "in_messages": inbound.messages,
        "in_accepted": inbound.delivered,
        "in_accepted_tls": inbound.delivered_tls,
        "in_rejected_attempts": inbound.deferrals + inbound.rejections,
        "in_tlsrpt_sessions": inbound.tlsrpt.total,
        "in_lost": inbound.bounced,
        "in_queued_remote_at_end": ended.remote_queued,
        "in_doomed": ended.remote_fates.total,
        "wall_s": wall,
    }
    return {k: summary[k] for k in SUMMARY_COLUMNS}


def _per_domain_rows(ended: Snapshot) -> list[dict[str, Any]]:
    fates = ended.fates
    return [
        {
            "domain": s.domain,
            "route": s.route,
            "messages": s.messages,
            "delivered": s.delivered,
            "delivered_tls": s.delivered_tls,
            "delivered_verified": s.delivered_verified,
            "delivered_plaintext": s.delivered_plaintext,
            "ndr": s.ndr,
            "expired": s.expired,
            "delay_dsn": s.delay_notices,
            "queued_at_end": s.queued,
            "doomed": fates.doomed[s.domain],
            "pending": s.queued - fates.doomed[s.domain],
            "returned_by_s": fates.returned_by.get(s.domain, math.nan),
            "tls_level": s.tls_level,
            "last_failure": s.last_failure,
            "last_status": str(s.last) if s.last is not None else "",
            "connections": s.connections,
            "delay_mean_s": s.delay_sum / s.delivered if s.delivered else math.nan,
            "delay_max_s": s.delay_max if s.delivered else math.nan,
        }
        for s in sorted(ended.metrics.domains.values(), key=lambda s: s.domain)
        if s.messages
    ]


def _inbound_rows(ended: Snapshot) -> list[dict[str, Any]]:
    fates = ended.remote_fates
    return [
        {
            "sender": s.domain,
            "receiver": s.route,
            "messages": s.messages,
            "accepted": s.delivered,
            "accepted_tls": s.delivered_tls,
            "accepted_plaintext": s.delivered_plaintext,
            "refused": ended.refused.get(s.domain, 0),
            "lost": s.ndr,
            "queued_remote_at_end": s.queued,
            "doomed": fates.doomed[s.domain],
            "pending": s.queued - fates.doomed[s.domain],
            "delay_mean_s": s.delay_sum / s.delivered if s.delivered else math.nan,
            "last_refusal": str(s.last) if s.last is not None else "",
        }
        for s in sorted(ended.inbound.domains.values(), key=lambda s: s.domain)
    ]


def _describe_policies(plan: Plan) -> PolicyText:
    """The policy-string and mx-host of each reported policy, from the scenario's end state."""
    ours = plan.organisation.publishes

    def describe(kind: str, policy_domain: str, recipient: str, mode: str) -> tuple[list[str], list[str]]:
        if kind == "sts":
            domain = plan.domain(policy_domain)
            policy = ours.mta_sts if ours is not None and policy_domain == ours.domain else None
            policy = policy or (domain.mta_sts if domain is not None else None)
            if policy is None:
                return [], []
            lines = ["version: STSv1", f"mode: {mode or policy.mode.value}", *(f"mx: {p}" for p in policy.mx)]
            return [*lines, f"max_age: {int(policy.max_age)}"], list(policy.mx)
        if kind == "tlsa":
            mine = next((m for m in ours.mx if m.host == policy_domain), None) if ours is not None else None
            records = plan.tlsa_records(mine.host, mine.virtual_server) if mine is not None else []
            if records:  # our key pairs: the records as published, real digests
                return [f"3 1 1 {digest.upper()}" for digest in records], [policy_domain]
            usage = ours.tlsa_usage if ours is not None and recipient == ours.domain else 3
            for host in plan.mx(recipient):
                if host.host == policy_domain:
                    usage = host.tlsa_usage
            return [tlsa_string(policy_domain, usage)], [policy_domain]
        return [], []

    return describe


def _frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    """A DataFrame; pandas is imported on first use (a command line that only validates,
    or prints its help, never loads it)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan

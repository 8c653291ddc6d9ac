"""A log captured from a real Postfix 3.7.11 (``tests/data/postfix-capture/capture.py``: a
content filter, a second instance, notifications, TLS logging off and then on) imports
to exactly what was sent (``expected.json`` holds the batches and each MX's behaviour)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.importers.maillog import read_maillog

CAPTURE = Path(__file__).parent / "data" / "postfix-capture"
COLUMNS = ("messages", "recipients", "delivered", "bounced", "expired", "pending", "deferred", "delivered_tls",
           "delivered_plaintext")  # fmt: skip
# From expected.json's batches: A was sent with smtp_tls_loglevel = 0 in postfix-out (its
# deliveries are neither known TLS nor known plaintext), B with 1.
EXPECTED = {
    # ann, bo (A); fi, gu (B, gu in one message with ha@plain)
    "tls.example": (4, 4, 4, 0, 0, 0, 0, 2, 0),
    # cy (A); ha, io (B); nouser (B): 550 5.1.1
    "plain.example": (4, 4, 3, 1, 0, 0, 0, 0, 2),
    # di (A); jo (B)
    "selfsigned.example": (2, 2, 2, 0, 0, 0, 0, 1, 0),
    # ka (B): the handshake fails, deferred; retried in plaintext after minimal_backoff_time
    "broken.example": (1, 1, 1, 0, 0, 0, 1, 0, 1),
    # lu (B): mx1 answers 421, mx2 takes it in plaintext; mo, ny (B): mx1 over TLS
    "multi.example": (3, 3, 3, 0, 0, 0, 0, 2, 1),
    # ol (B): 530 to plaintext, bounced
    "strict.example": (1, 1, 0, 1, 0, 0, 0, 0, 0),
    # ed (A only): TLS logging was off
    "quiet.example": (1, 1, 1, 0, 0, 0, 0, 0, 0),
    # pa (B): 451 to every attempt, expired after maximal_queue_lifetime = 150 s
    "slow.example": (1, 1, 0, 0, 1, 0, 1, 0, 0),
}
HOST_CLASSES = {
    "mx.tls.example": "trusted",
    "mx.plain.example": "none",
    "mx.selfsigned.example": "untrusted",
    "mx.broken.example": "handshake-fails",
    "mx1.multi.example": "trusted",
    "mx2.multi.example": "none",
    "mx.strict.example": "requires-tls",
    "mx.quiet.example": "unknown",
    "mx.slow.example": "none",
}


def test_the_captured_log_imports_to_what_was_sent():
    sent = json.loads((CAPTURE / "expected.json").read_text())
    obs = read_maillog([CAPTURE / "mail.log"], 2026)
    rows = {row["domain"]: row for row in obs.rows()}
    assert {d: tuple(rows[d][c] for c in COLUMNS) for d in rows} == EXPECTED
    # every recipient of both batches that is not ours, and nothing else
    recipients = [r for batch in ("batch_a_tls_logging_off", "batch_b_tls_logging_on") for m in sent[batch] for r in m]
    assert sum(row["recipients"] for row in rows.values()) == sum(not r.endswith("@ours.example") for r in recipients)
    from sim.importers.observed import host_class

    assert {h: host_class(obs.classes_of(h)) for h in HOST_CLASSES} == HOST_CLASSES
    assert set(sent["hosts"]) == set(HOST_CLASSES)
    # the hops (content filter, the relay to postfix-out, notices back to the main instance)
    assert not any(h.startswith(("127.", "gw.")) for h in obs.hosts) and obs.local_domains == {"ours.example"}
    notices = {row["kind"]: (row["messages"], row["local_recipients"]) for row in obs.notification_rows()}
    assert notices == {"non-delivery": (3, 3), "delay": (1, 1)}  # ol, nouser, pa's expiry; pa's delay


def test_the_captured_log_makes_a_what_if_that_loads_and_runs(tmp_path):
    result = CliRunner().invoke(
        app, ["import", "maillog", str(CAPTURE / "mail.log"), "--out", str(tmp_path), "--year", "2026"]
    )
    assert result.exit_code == 0, result.output
    world = {d["name"]: d["mx"] for d in yaml.safe_load((tmp_path / "remotes.yaml").read_text())["domains"]}
    assert [h["tls"] for h in world["multi.example"]] == ["trusted", "none"]
    assert world["quiet.example"][0]["provenance"]["source"] == "assumed"
    assert "quiet.example" in (tmp_path / "unknown-domains.txt").read_text()
    assert CliRunner().invoke(app, ["validate", str(tmp_path / "whatif.yaml")]).exit_code == 0

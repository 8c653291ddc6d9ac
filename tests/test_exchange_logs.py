"""``import exchange-logs`` on message tracking and send protocol logs written from
Microsoft's documented field lists (issue 18, item 9): per-domain counts and TLS classes
exactly, whatever the field order; hops, local mail and notifications apart."""

from __future__ import annotations

import csv
import gzip
import random

import pytest
import yaml
from cli_checks import one_error_line
from exchange_lines import TRACKING_FIELDS, ExchangeLogs
from typer.testing import CliRunner

from sim.cli import app
from sim.importers.exchange_logs import read_exchange_logs

runner = CliRunner()
MX = {
    "fabrikam.example": ("mx1.fabrikam.example", "203.0.113.10"),
    "plain.example": ("mx.plain.example", "203.0.113.11"),
    "broken.example": ("mx.broken.example", "203.0.113.12"),
    "strict.example": ("mx.strict.example", "203.0.113.13"),
    "partner.example": ("mail.partner.example", "203.0.113.14"),
    "quiet.example": ("mx.quiet.example", "203.0.113.15"),
    "slow.example": ("mx.slow.example", "203.0.113.16"),
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _send(logs: ExchangeLogs, message: str, rcpt: str, outcome: str, connector: str = "Internet", log: bool = True):
    host, ip = MX[rcpt.split("@")[1]]
    if log:
        logs.session(connector, ip, host, starttls=outcome in ("tls", "failed"), outcome=outcome,
                     message_id=message, recipients=[rcpt])  # fmt: skip
    logs.at(1)
    status = "250 2.6.0 Queued mail for delivery"
    logs.event("SEND", message, [rcpt], status, **{"server-ip": ip, "server-hostname": host, "connector-id": connector})


def world(fields: list[str] | None = None) -> ExchangeLogs:
    logs = ExchangeLogs()
    if fields is not None:
        logs.tracking_fields = fields
    for n in range(3):
        _send(logs.at(60), f"m{n}@contoso.example", f"u{n}@fabrikam.example", "tls")
    for n in range(2):
        _send(logs.at(60), f"p{n}@contoso.example", f"v{n}@plain.example", "plain")
    # one message, two domains, two sessions
    _send(logs.at(60), "two@contoso.example", "w@fabrikam.example", "tls")
    _send(logs, "two@contoso.example", "x@plain.example", "plain")
    # a handshake that fails: deferred, then expired
    logs.at(60).session("Internet", "203.0.113.12", "mx.broken.example", starttls=True, outcome="failed",
                        message_id="b@contoso.example", recipients=["y@broken.example"])  # fmt: skip
    led = "[{LRT=};{LED=451 4.4.0 Primary target IP address responded with: TLS negotiation failed};{FQDN=mx.broken.example};{IP=203.0.113.12}]"
    logs.event("DEFER", "b@contoso.example", ["y@broken.example"], led, **{"connector-id": "Internet"})
    logs.at(3600).event("FAIL", "b@contoso.example", ["y@broken.example"], "550 4.4.7 QUEUE.Expired; message expired",
                        **{"connector-id": "Internet"})  # fmt: skip
    # 530 to plaintext: bounced, and a non-delivery notice to the (local) sender
    logs.at(60).session("Internet", "203.0.113.13", "mx.strict.example", starttls=False, outcome="530",
                        message_id="s@contoso.example", recipients=["z@strict.example"])  # fmt: skip
    logs.event("FAIL", "s@contoso.example", ["z@strict.example"], "550 5.7.0 Must issue a STARTTLS command first",
               **{"server-ip": "203.0.113.13", "server-hostname": "mx.strict.example", "connector-id": "Internet"})  # fmt: skip
    logs.event("DSN", "dsn1@contoso.example", ["alice@contoso.example"], "550 5.7.0 Must issue a STARTTLS command first",
               source="DSN", reference="<s@contoso.example>", return_path="<>")  # fmt: skip
    logs.event(
        "DELIVER", "dsn1@contoso.example", ["alice@contoso.example"], "250 2.0.0 Delivered", source="STOREDRIVER"
    )
    # a partner connector that validates certificates
    _send(logs.at(60), "pt@contoso.example", "a@partner.example", "tls", connector="Partner TLS")
    # a connector without protocol logging
    _send(logs.at(60), "q@contoso.example", "b@quiet.example", "tls", connector="Unlogged", log=False)
    # inside the organisation: a hop, and local delivery
    logs.at(60).event("SEND", "i@contoso.example", ["bob@contoso.example"], "250 2.0.0 OK",
                      **{"server-hostname": "EX2", "connector-id": "Intra-Organization SMTP Send Connector"})  # fmt: skip
    logs.event("DELIVER", "i@contoso.example", ["bob@contoso.example"], "250 2.0.0 Delivered", source="STOREDRIVER")
    # still deferred when the log ends
    logs.at(60).event("DEFER", "sl@contoso.example", ["c@slow.example"],
                      "[{LRT=};{LED=451 4.7.0 Try again later};{FQDN=mx.slow.example};{IP=203.0.113.16}]",
                      **{"connector-id": "Internet"})  # fmt: skip
    return logs


EXPECTED = {
    # domain: messages, recipients, delivered, bounced, expired, pending, deferred, delivered_tls, delivered_plaintext
    "fabrikam.example": (4, 4, 4, 0, 0, 0, 0, 4, 0),
    "plain.example": (3, 3, 3, 0, 0, 0, 0, 0, 3),
    "broken.example": (1, 1, 0, 0, 1, 0, 1, 0, 0),
    "strict.example": (1, 1, 0, 1, 0, 0, 0, 0, 0),
    "partner.example": (1, 1, 1, 0, 0, 0, 0, 1, 0),
    "quiet.example": (1, 1, 1, 0, 0, 0, 0, 0, 0),
    "slow.example": (1, 1, 0, 0, 0, 1, 1, 0, 0),
}
CLASSES = {
    "fabrikam.example": "encrypted",  # opportunistic: the certificate is not checked
    "plain.example": "none",
    "broken.example": "handshake-fails",
    "strict.example": "requires-tls",
    "partner.example": "trusted",  # a connector that requires CertificateValidation
    "quiet.example": "unknown",  # its connector logs no protocol
    "slow.example": "unknown",
}
COLUMNS = ("messages", "recipients", "delivered", "bounced", "expired", "pending", "deferred", "delivered_tls",
           "delivered_plaintext")  # fmt: skip


def _check(obs) -> None:
    rows = {row["domain"]: row for row in obs.rows()}
    assert {d: tuple(rows[d][c] for c in COLUMNS) for d in rows} == EXPECTED
    assert {d: rows[d]["tls_class"] for d in rows} == CLASSES
    assert {d: rows[d]["mx_hosts"] for d in rows} == {d: host for d, (host, _) in MX.items()}
    assert obs.local_domains == {"contoso.example"} and sum(obs.hops.values()) == 1
    assert obs.notification_rows()[0] | {} == {
        "kind": "non-delivery", "messages": 1, "local_recipients": 1, "remote_recipients": 0, "delivered": 0,
        "bounced": 0, "expired": 0, "pending": 0,
    }  # fmt: skip


def test_message_tracking_and_send_protocol_logs_give_exact_counts_and_classes(tmp_path):
    files = world().write(tmp_path / "logs")
    _check(read_exchange_logs(files, verifying_connectors=["Partner-TLS"]))


def test_field_order_comes_from_each_files_own_header(tmp_path):
    shuffled = list(TRACKING_FIELDS)
    random.Random(7).shuffle(shuffled)
    files = world(shuffled).write(tmp_path / "logs", bom=False)
    _check(read_exchange_logs(files, verifying_connectors=["Partner-TLS"]))


def test_folders_and_gzip_are_read(tmp_path):
    _, send = world().write(tmp_path / "EX1" / "MessageTracking")
    target = tmp_path / "EX1" / "ProtocolLog" / "SmtpSend"
    target.mkdir(parents=True)
    with gzip.open(target / (send.name + ".gz"), "wb") as handle:
        handle.write(send.read_bytes())
    send.unlink()
    _check(read_exchange_logs([tmp_path / "EX1"], verifying_connectors=["Partner-TLS"]))


def test_the_cli_writes_the_same_files_as_import_maillog(tmp_path):
    world().write(tmp_path / "logs")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "topology.yaml").write_text(yaml.safe_dump(_exchange_org()))
    result = invoke("import", "exchange-logs", tmp_path / "logs", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    with (out / "observed.csv").open() as handle:
        rows = {row["domain"]: row for row in csv.DictReader(handle)}
    assert rows["partner.example"]["tls_class"] == "trusted"
    world_file = yaml.safe_load((out / "remotes.yaml").read_text())
    hosts = {d["name"]: d["mx"][0] for d in world_file["domains"]}
    assert hosts["plain.example"]["tls"] == "none" and hosts["broken.example"]["tls"] == "handshake-fails"
    assert hosts["quiet.example"]["provenance"]["source"] == "assumed"
    text = (out / "whatif.yaml").read_text()
    assert "# overrides: {connectors.Internet.require_tls: true}" in text
    assert "ProtocolLoggingLevel Verbose" in result.stderr
    assert invoke("validate", out / "whatif.yaml").exit_code == 0


def _exchange_org() -> dict:
    return {
        "organisation": "contoso",
        "profile": "exchange2019",
        "routing_groups": [{"name": "site"}],
        "servers": [
            {"name": "EX1", "routing_group": "site", "virtual_servers": [{"name": "default", "outbound_tls": "opportunistic"}]},
            {"name": "EX2", "routing_group": "site", "virtual_servers": [{"name": "default", "outbound_tls": "opportunistic"}]},
        ],
        "connectors": [
            {"name": "Internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]},
            {"name": "Partner-TLS", "source": ["EX1/default"], "address_spaces": [{"pattern": "partner.example"}],
             "require_tls": True, "tls_auth_level": "CertificateValidation"},
        ],
        "accepted_domains": ["contoso.example"],
    }  # fmt: skip


def test_send_protocol_logs_alone_are_not_enough(tmp_path):
    _, send = world().write(tmp_path / "logs")
    line = one_error_line(invoke("import", "exchange-logs", send, "--out", tmp_path / "out"))
    assert "no message tracking log" in line


@pytest.mark.parametrize("text", ["not a log\n", "#Fields: a,b\n1,2\n"])
def test_other_files_are_named_and_skipped(tmp_path, text):
    (tmp_path / "notes.txt").write_text(text)
    files = world().write(tmp_path / "logs")
    obs = read_exchange_logs([*files, tmp_path / "notes.txt"], verifying_connectors=["Partner-TLS"])
    assert any("notes.txt" in reason for reason in obs.unused)

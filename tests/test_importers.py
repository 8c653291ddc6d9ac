"""Importers on realistic data made here: postconf output, lookup tables, rotated mail logs."""

from __future__ import annotations

import csv
import gzip
import re

import pytest
import yaml
from cli_checks import one_error_line as error_line
from typer.testing import CliRunner

import sim
from sim.cli import app
from sim.scenario.loader import load_scenario

runner = CliRunner()

POSTCONF = """\
alias_maps = hash:/etc/aliases
bounce_queue_lifetime = 1d
compatibility_level = 3.6
config_directory = /etc/postfix
delay_warning_time = 4h
maximal_backoff_time = 4000s
maximal_queue_lifetime = 2
minimal_backoff_time = 300s
mydomain = example.com
myhostname = mx-out.example.com
queue_run_delay = 300s
smtp_dns_support_level = dnssec
smtp_tls_loglevel = 1
smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy,
    socketmap:inet:127.0.0.1:8461:postfix
smtp_tls_protocols = >=TLSv1.2
smtp_tls_security_level = may
transport_maps = texthash:/etc/postfix/transport
dane/unix/smtp_tls_security_level = dane
"""

POLICY_MAP = """\
# per-destination TLS (TLS_README "TLS policy table")
partner.example        encrypt protocols=>=TLSv1.2
.partner.example       encrypt
bank.example           secure match=mx1.bank.example:.mx.bank.example
[relay.example.net]:587  verify
"""

TRANSPORT_MAP = """\
internal.example    smtp:[10-0-0-5.relay.example.net]:25
.internal.example   smtp:[10-0-0-5.relay.example.net]:25
old.example         error:domain retired
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def postfix_files(tmp_path):
    (tmp_path / "postconf.txt").write_text(POSTCONF)
    (tmp_path / "tls_policy").write_text(POLICY_MAP)
    (tmp_path / "transport").write_text(TRANSPORT_MAP)
    return tmp_path


def test_import_postfix_reads_postconf_tables_units_and_notes(postfix_files, tmp_path):
    out = tmp_path / "out"
    result = invoke(
        "import", "postfix", postfix_files / "postconf.txt", "--out", out,
        "--policy-map", postfix_files / "tls_policy", "--transport-map", postfix_files / "transport",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (out / "topology.yaml").read_text()
    document = yaml.safe_load(text)
    vs = document["servers"][0]["virtual_servers"][0]
    assert document["profile"] == "postfix"
    assert vs["outbound_tls"] == "may"
    # A bare maximal_queue_lifetime is days; delay_warning_time hours; backoffs seconds.
    assert vs["delivery"] == {
        "expiration_timeout": 2 * 86400,
        "delay_notification": 4 * 3600,
        "minimal_backoff_time": 300,
        "maximal_backoff_time": 4000,
        "queue_run_delay": 300,
    }
    assert vs["tls_versions"] == ["1.2", "1.3"]
    assert vs["mta_sts"] == "apply"  # the socketmap plug-in, joined from the folded line
    assert vs["tls_policy"] == {
        "partner.example": "encrypt",
        ".partner.example": "encrypt",
        "bank.example": "secure",
    }  # [relay.example.net]:587 names no next hop of this configuration (no relayhost): not applied
    connectors = {c["name"]: c for c in document["connectors"]}
    assert connectors["default"]["address_spaces"] == [{"pattern": "*"}]
    internal = connectors["transport-1"]
    assert internal["smart_hosts"] == ["10-0-0-5.relay.example.net"]
    assert internal["address_spaces"] == [{"pattern": "internal.example"}, {"pattern": "*.internal.example"}]
    # What is not modelled is listed in the header, never dropped silently.
    header = [line for line in text.splitlines() if line.startswith("#")]
    for expected in (
        "bounce_queue_lifetime = 1d",
        "smtp_dns_support_level = dnssec",
        "dane/unix/smtp_tls_security_level = dane (master.cf override",
        "old.example -> error:domain retired: transport error not modelled",
        "tls_policy: line 2 set protocols= (not modelled)",
        "[relay.example.net]:587 names no next hop of this configuration",
    ):
        assert any(expected in line for line in header), expected
    from sim.scenario.model import Organisation

    Organisation.model_validate(document)


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (("maximal_queue_lifetime = 2", "maximal_queue_lifetime = two days"), "line 7: maximal_queue_lifetime"),
        (("smtp_tls_security_level = may", "smtp_tls_security_level = maybe"), "smtp_tls_security_level"),
        (("alias_maps = hash:/etc/aliases", "this is not postconf output"), "line 1"),
    ],
)
def test_bad_postconf_exits_2_naming_file_and_line(postfix_files, tmp_path, edit, where):
    path = postfix_files / "postconf.txt"
    path.write_text(POSTCONF.replace(*edit))
    line = error_line(invoke("import", "postfix", path, "--out", tmp_path / "out"))
    assert "postconf.txt" in line and where in line
    assert not (tmp_path / "out" / "topology.yaml").exists()


def test_a_bad_policy_map_line_is_named(postfix_files, tmp_path):
    (postfix_files / "tls_policy").write_text("partner.example\n")
    line = error_line(
        invoke(
            "import",
            "postfix",
            postfix_files / "postconf.txt",
            "--out",
            tmp_path,
            "--policy-map",
            postfix_files / "tls_policy",
        )
    )
    assert "tls_policy: line 1" in line


# --------------------------------------------------------------------------- mail logs


def _session(stamp, pid, qid, rcpt, relay, status, dsn, text, tls=None, handshake=False):
    lines = []
    if handshake:
        lines.append(f"{stamp} mx-out postfix/smtp[{pid}]: SSL_connect error to {relay}[203.0.113.9]:25: -1")
    if tls:
        lines.append(
            f"{stamp} mx-out postfix/smtp[{pid}]: {tls} TLS connection established to {relay}[203.0.113.9]:25: "
            "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
        )
    relay_field = "none" if relay is None else f"{relay}[203.0.113.9]:25"
    lines.append(
        f"{stamp} mx-out postfix/smtp[{pid}]: {qid}: to=<{rcpt}>, relay={relay_field}, delay=1.2, "
        f"delays=0.1/0/0.5/0.6, dsn={dsn}, status={status} ({text})"
    )
    return lines


def _log_lines():
    """Two days of a Postfix relay's log: every class the importer knows, and noise."""
    lines = []
    qid = 0x3F2A1000
    for day in (1, 2):
        for hour in range(0, 24, 2):
            stamp = f"Nov {day:2d} {hour:02d}:15:00"
            for rcpt, relay, tls, kind in (
                ("ann@fabrikam.com", "mx1.fabrikam.com", "Trusted", "sent"),
                ("bob@fabrikam.com", "mx1.fabrikam.com", "Verified", "sent"),
                ("cy@woodgrove.com", "mail.woodgrove.com", "Untrusted", "sent"),
                ("dee@plain.example", "mail.plain.example", None, "sent"),
                ("eve@broken.example", "mx.broken.example", None, "fallback"),
                ("fay@strict.example", "mx.strict.example", None, "530"),
            ):
                qid += 1
                q = f"{qid:X}"
                active = f"{q}: from=<sender@example.com>, size=20480, nrcpt=1 (queue active)"
                lines.append(f"{stamp} mx-out postfix/qmgr[77]: {active}")
                if kind == "sent":
                    lines += _session(stamp, 100 + hour, q, rcpt, relay, "sent", "2.0.0", "250 2.0.0 Ok", tls=tls)
                elif kind == "fallback":
                    lines += _session(stamp, 200, q, rcpt, relay, "sent", "2.0.0", "250 ok", handshake=True)
                else:
                    lines += _session(
                        stamp, 300, q, rcpt, relay, "bounced", "5.7.0",
                        f"host {relay}[203.0.113.9] said: 530 5.7.0 Must issue a STARTTLS command first "
                        "(in reply to MAIL FROM command)",
                    )  # fmt: skip
                lines.append(f"{stamp} mx-out postfix/qmgr[77]: {q}: removed")
    # A destination that is down for a while, then delivers.
    lines += _session("Nov  2 23:00:00", 400, "4B7C2D1E0F", "gil@slow.example", None, "deferred", "4.4.1",
                      "connect to mx.slow.example[203.0.113.7]:25: Connection timed out")  # fmt: skip
    lines += _session("Nov  2 23:30:00", 401, "4B7C2D1E0F", "gil@slow.example", "mx.slow.example", "sent", "2.0.0",
                      "250 ok", tls="Trusted")  # fmt: skip
    lines += [
        "Nov  1 00:00:01 mx-out kernel: [1234.5] eth0: link up",
        "Nov  1 00:00:02 mx-out postfix/smtpd[55]: connect from unknown[198.51.100.3]",
        "Nov  1 00:00:03 mx-out postfix/local[56]: 3F2A0FFF: to=<root@example.com>, relay=local, delay=0, "
        "dsn=2.0.0, status=sent (delivered to mailbox)",
        "garbage without a timestamp \udcff",
        "Nov 31 00:00:03 mx-out postfix/smtp[57]: impossible date",
    ]
    return lines


@pytest.fixture
def rotated_logs(tmp_path):
    """The log split as logrotate leaves it (oldest compressed), given in scrambled order."""
    lines = _log_lines()
    thirds = [lines[: len(lines) // 3], lines[len(lines) // 3 : 2 * len(lines) // 3], lines[2 * len(lines) // 3 :]]
    old, middle, new = tmp_path / "mail.log.2.gz", tmp_path / "mail.log.1", tmp_path / "mail.log"
    with gzip.open(old, "wt", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write("\n".join(thirds[0]) + "\n")
    middle.write_text("\n".join(thirds[1]) + "\n", encoding="utf-8", errors="surrogateescape")
    new.write_bytes(("\n".join(thirds[2]) + "\n").encode("utf-8", "surrogateescape"))
    return [new, old, middle]


def test_import_maillog_counts_per_domain_and_classifies_tls(rotated_logs, tmp_path):
    out = tmp_path / "out"
    result = invoke("import", "maillog", *rotated_logs, "--out", out)
    assert result.exit_code == 0, result.output
    assert "outbound messages to 6 domains" in result.output
    assert re.search(r"lines not used: .*2 no timestamp", result.output)  # garbage, and Nov 31
    assert "postfix/smtpd line" in result.output  # the local delivery is local mail, not an unused line
    with (out / "observed.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == (
            "domain", "messages", "recipients", "delivered", "bounced", "expired", "pending", "deferred",
            "delivered_tls", "delivered_plaintext", "mx_hosts", "tls_class", "sessions",
        )  # fmt: skip
        rows = {row["domain"]: row for row in reader}
    assert rows["fabrikam.com"] | {} == {
        "domain": "fabrikam.com", "messages": "48", "recipients": "48", "delivered": "48", "bounced": "0",
        "expired": "0", "pending": "0", "deferred": "0", "delivered_tls": "48", "delivered_plaintext": "0",
        "mx_hosts": "mx1.fabrikam.com", "tls_class": "trusted", "sessions": "48",
    }  # fmt: skip
    assert rows["woodgrove.com"]["tls_class"] == "untrusted"
    assert rows["plain.example"]["tls_class"] == "none"
    assert rows["plain.example"]["delivered_tls"] == "0"
    assert rows["broken.example"]["tls_class"] == "handshake-fails"
    assert (rows["strict.example"]["tls_class"], rows["strict.example"]["bounced"]) == ("requires-tls", "24")
    assert (rows["slow.example"]["deferred"], rows["slow.example"]["delivered"]) == ("1", "1")
    assert rows["slow.example"]["tls_class"] == "trusted"
    # No local part ever reaches an output.
    for name in ("observed.csv", "remotes.yaml", "whatif.yaml"):
        text = (out / name).read_text()
        assert not re.search(r"\b(ann|bob|cy|dee|eve|fay|gil|sender)@", text), name


def test_maillog_outputs_load_and_run(rotated_logs, tmp_path):
    out = tmp_path / "out"
    assert invoke("import", "maillog", *rotated_logs, "--out", out).exit_code == 0
    assert invoke("validate", out / "whatif.yaml").exit_code == 0
    whatif = yaml.safe_load((out / "whatif.yaml").read_text())
    flow = whatif["traffic"]["outbound"]
    assert flow["domains"]["fabrikam.com"] == 48
    assert flow["rate_per_hour"] == pytest.approx(145 / ((48 - 1 + 0.5) + 0.25), rel=0.05)  # 145 messages over ~47.8 h
    assert flow["size"]["mean_kb"] == 20.0
    assert (
        "# overrides: {servers.postfix.virtual_servers.smtp.outbound_tls: encrypt}" in (out / "whatif.yaml").read_text()
    )


def test_a_truncated_gzip_log_is_a_clear_error(tmp_path):
    broken = tmp_path / "mail.log.1.gz"
    text = "".join(f"Nov  1 00:00:00 h postfix/smtp[{n}]: {n * 7919 % 100003} line\n" for n in range(5000))
    whole = gzip.compress(text.encode())
    broken.write_bytes(whole[: len(whole) // 2])  # a rotation cut short
    line = error_line(invoke("import", "maillog", broken, "--out", tmp_path / "out"))
    assert re.search(r"mail\.log\.1\.gz: line \d+: cannot read", line), line


def test_end_to_end_from_my_server_to_a_prediction(postfix_files, rotated_logs, tmp_path):
    # Issue 10 item 5: import the configuration and the log, run today's level and encrypt:
    # NDRs for exactly the domains the log showed without TLS (and the one refusing
    # plaintext, which bounces either way).
    out = tmp_path / "out"
    (postfix_files / "postconf.txt").write_text(
        POSTCONF.replace("transport_maps = texthash:/etc/postfix/transport\n", "")
    )
    assert invoke("import", "postfix", postfix_files / "postconf.txt", "--out", out).exit_code == 0
    assert invoke("import", "maillog", *rotated_logs, "--out", out).exit_code == 0
    today = load_scenario(out / "whatif.yaml")
    # What the user does: uncomment the line the importer wrote.
    text = (out / "whatif.yaml").read_text()
    (out / "encrypt.yaml").write_text(text.replace("# overrides: {", "overrides: {"))
    forced = load_scenario(out / "encrypt.yaml")
    ndr_today = {row["domain"] for row in sim.run(today).ndr_rows}
    ndr_forced = {row["domain"] for row in sim.run(forced).ndr_rows}
    assert ndr_today == {"strict.example"}
    assert ndr_forced == {"plain.example", "broken.example", "strict.example"}


def test_import_writes_nothing_for_a_missing_file(tmp_path):
    line = error_line(invoke("import", "postfix", tmp_path / "nope.txt", "--out", tmp_path / "out"))
    assert "nope.txt" in line and "file not found" in line
    assert not (tmp_path / "out").exists()

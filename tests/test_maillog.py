"""``import maillog`` on small logs made here, one per phenomenon real servers show
(issue 18, items 1-5): hops, local mail and notifications; no TLS logging; per-host
classes; recurring queue ids and New Year; bounded memory and time."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re

import pytest
import yaml
from cli_checks import one_error_line
from postfix_lines import PostfixLog
from typer.testing import CliRunner

from sim.cli import app
from sim.importers.maillog import PostfixLogReader, read_maillog
from sim.importers.observed import host_class

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _read(tmp_path, log: PostfixLog, name: str = "mail.log", **kwargs):
    path = tmp_path / name
    path.write_text(log.text())
    return read_maillog([path], 2026, **kwargs)


def _rows(folder):
    with (folder / "observed.csv").open() as handle:
        return {row["domain"]: row for row in csv.DictReader(handle)}


# ------------------------------------------------------------------ 1. hops, local mail, notifications


def test_a_content_filter_hop_is_followed_to_the_final_relay(tmp_path):
    log = PostfixLog()
    # amavis on 127.0.0.1:10024 re-injects on :10025 before it answers 250 (its lines come first)
    log.received("A1000000001", nrcpt=2)
    log.at(1).line("postfix/smtpd", "B2000000002: client=localhost[127.0.0.1]", 4100)
    log.line("postfix/qmgr", "B2000000002: from=<ann@ours.example>, size=2300, nrcpt=2 (queue active)", 4002)
    filter_reply = "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as B2000000002"
    for rcpt in ("bo@fabrikam.example", "cy@ours.example"):
        log.delivered("A1000000001", rcpt, "127.0.0.1[127.0.0.1]:10024", text=filter_reply, pid=5001)
    log.removed("A1000000001")
    log.at(1).delivered("B2000000002", "bo@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25", tls="Trusted")
    log.line("postfix/lmtp", "B2000000002: to=<cy@ours.example>, relay=mail[private/dovecot-lmtp], delay=0.1, "
                             "delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)", 6000)  # fmt: skip
    log.removed("B2000000002")
    obs = _read(tmp_path, log)
    assert obs.outbound_domains() == ["fabrikam.example"]
    row = obs.rows()[0]
    assert (row["messages"], row["recipients"], row["delivered"], row["mx_hosts"]) == (1, 1, 1, "mx1.fabrikam.example")
    assert obs.messages == 1 and obs.local_domains == {"ours.example"}
    assert sum(obs.hops.values()) == 2 and "127.0.0.1" not in obs.hosts


def test_a_hop_whose_queue_id_turns_up_after_the_delivery_line_is_still_a_hop(tmp_path):
    log = PostfixLog()
    log.received("A1000000003")
    # Delivered to a filter box on another address; its re-injection appears a second later.
    log.delivered("A1000000003", "di@fabrikam.example", "filter.ours.example[10.1.1.9]:10024",
                  text="250 2.0.0 Ok: queued as C3000000003", tls=None)  # fmt: skip
    log.removed("A1000000003")
    log.at(1).received("C3000000003", client="filter.ours.example[10.1.1.9]")
    log.delivered("C3000000003", "di@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25", tls="Trusted")
    log.removed("C3000000003")
    # A remote server's "queued as" that never turns up here is a remote delivery.
    log.at(5).message("A1000000004", "ed@plain.example", "mx.plain.example[203.0.113.20]:25", tls=None,
                      text="250 2.0.0 Ok: queued as 4XYZREMOTE9")  # fmt: skip
    obs = _read(tmp_path, log)
    rows = {row["domain"]: row for row in obs.rows()}
    assert (
        rows["fabrikam.example"]["recipients"] == 1 and rows["fabrikam.example"]["mx_hosts"] == "mx1.fabrikam.example"
    )
    assert rows["plain.example"]["delivered"] == 1
    assert "filter.ours.example" not in obs.hosts and obs.hops["filter.ours.example[10.1.1.9]:10024"] == 1


def test_a_second_instance_on_its_own_address_is_a_hop(tmp_path):
    log = PostfixLog()
    instance = "postfix-203.0.113.5"
    log.received("D4000000001", instance=instance)
    log.line(f"{instance}/smtpd", "E5000000001: client=gw[203.0.113.5]", 4100)
    log.delivered("D4000000001", "fay@fabrikam.example", "203.0.113.5[203.0.113.5]:2501", tls=None,
                  text="250 2.0.0 Ok: queued as E5000000001", daemon=f"{instance}/smtp")  # fmt: skip
    log.removed("D4000000001", instance=instance)
    log.delivered("E5000000001", "fay@fabrikam.example", "mx1.fabrikam.example[198.51.100.10]:25",
                  tls="Trusted", daemon=f"{instance}/smtp")  # fmt: skip
    log.removed("E5000000001", instance=instance)
    obs = _read(tmp_path, log)
    assert [r["mx_hosts"] for r in obs.rows()] == ["mx1.fabrikam.example"] and obs.messages == 1


def test_notifications_are_counted_apart_and_never_as_a_recipient_domain(tmp_path):
    log = PostfixLog()
    log.received("F6000000001")
    log.delivered("F6000000001", "gil@strict.example", "mx.strict.example[203.0.113.30]:25", tls=None,
                  status="bounced", dsn="5.7.0", text="host mx.strict.example[203.0.113.30] said: 530 5.7.0 Must "
                  "issue a STARTTLS command first (in reply to MAIL FROM command)")  # fmt: skip
    log.line("postfix/cleanup", "F7000000002: message-id=<bounce@gw.ours.example>", 4001)
    log.line("postfix/qmgr", "F7000000002: from=<>, size=3000, nrcpt=1 (queue active)", 4002)
    log.line("postfix/bounce", "F6000000001: sender non-delivery notification: F7000000002", 4200)
    log.removed("F6000000001")
    # the notification goes to a remote sender (the message came from outside)
    log.delivered("F7000000002", "ann@partner.example", "mx.partner.example[203.0.113.40]:25", tls="Trusted")
    log.removed("F7000000002")
    obs = _read(tmp_path, log)
    assert obs.outbound_domains() == ["strict.example"]
    assert obs.notification_rows() == [
        {
            "kind": "non-delivery",
            "messages": 1,
            "local_recipients": 0,
            "remote_recipients": 1,
            "delivered": 1,
            "bounced": 0,
            "expired": 0,
            "pending": 0,
        }
    ]
    assert obs.rows()[0]["bounced"] == 1 and obs.rows()[0]["tls_class"] == "requires-tls"


def test_a_log_with_only_local_mail_is_refused_with_one_line(tmp_path):
    log = PostfixLog()
    log.received("A1000000009")
    log.line("postfix/local", "A1000000009: to=<root@ours.example>, relay=local, delay=0.1, delays=0/0/0/0.1, "
                              "dsn=2.0.0, status=sent (delivered to mailbox)", 6001)  # fmt: skip
    log.removed("A1000000009")
    (tmp_path / "mail.log").write_text(log.text())
    line = one_error_line(invoke("import", "maillog", tmp_path / "mail.log", "--out", tmp_path / "out"))
    assert "no outbound delivery" in line and "local deliveries to 1 domain" in line
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 2. no TLS logging is not plaintext


def _plain_log(tls: str | None) -> PostfixLog:
    log = PostfixLog()
    for n in range(4):
        log.at(60).message(f"A10000001{n}", f"u{n}@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25", tls=tls)
    return log


def test_a_log_without_tls_lines_gives_unknown_and_says_so(tmp_path):
    (tmp_path / "mail.log").write_text(_plain_log(None).text())
    out = tmp_path / "out"
    result = invoke("import", "maillog", tmp_path / "mail.log", "--out", out)
    assert result.exit_code == 0, result.output
    assert _rows(out)["fabrikam.example"]["tls_class"] == "unknown"
    assert _rows(out)["fabrikam.example"]["delivered_plaintext"] == "0"  # not known to be plaintext
    host = yaml.safe_load((out / "remotes.yaml").read_text())["domains"][0]["mx"][0]
    assert host["tls"] != "none" and host["provenance"]["source"] == "assumed"
    header = (out / "whatif.yaml").read_text()
    assert "shows no TLS facts" in header and "tlssim probe" in header and "smtp_tls_loglevel = 1" in header
    assert "smtp_tls_loglevel = 1" in result.stderr and "100.0% of outbound mail" in result.stderr
    assert (out / "unknown-domains.txt").read_text() == "fabrikam.example\n"


def test_with_tls_logging_on_a_delivery_without_a_tls_line_was_plaintext(tmp_path):
    log = _plain_log(None)
    log.at(60).message("A200000001", "v@tls.example", "mx.tls.example[203.0.113.11]:25", tls="Trusted")
    obs = _read(tmp_path, log)
    rows = {r["domain"]: r for r in obs.rows()}
    assert rows["fabrikam.example"]["tls_class"] == "none" and rows["fabrikam.example"]["delivered_plaintext"] == 4
    assert rows["tls.example"]["tls_class"] == "trusted"


def test_tls_logging_turned_on_by_a_reload_does_not_make_earlier_sessions_plaintext(tmp_path):
    log = PostfixLog()
    log.line("postfix/master", "daemon started -- version 3.7.11, configuration /etc/postfix", 1)
    log.at(10).message("A300000001", "w@quiet.example", "mx.quiet.example[203.0.113.12]:25", tls=None)
    log.line("postfix/master", "reload -- version 3.7.11, configuration /etc/postfix", 1)
    log.at(10).message("A300000002", "x@tls.example", "mx.tls.example[203.0.113.11]:25", tls="Trusted")
    rows = {r["domain"]: r for r in _read(tmp_path, log).rows()}
    assert rows["quiet.example"]["tls_class"] == "unknown" and rows["tls.example"]["tls_class"] == "trusted"


def test_tls_facts_written_elsewhere_are_read(tmp_path):
    log = PostfixLog()
    # smtp_tls_connection_reuse: tlsproxy does the handshake, smtp logs the delivery
    log.received("A400000001")
    log.line("postfix/tlsproxy", "CONNECT to [203.0.113.50]:25", 7000)
    log.line("postfix/tlsproxy", "Trusted TLS connection established to mx.proxy.example[203.0.113.50]:25: "
                                 "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", 7000)  # fmt: skip
    log.delivered("A400000001", "a@proxy.example", "mx.proxy.example[203.0.113.50]:25", tls=None, pid=5100)
    log.removed("A400000001")
    # a cached connection's second use: no TLS line of its own
    log.at(30).received("A400000002")
    log.delivered("A400000002", "b@proxy.example", "mx.proxy.example[203.0.113.50]:25", tls=None, pid=5100,
                  conn_use=2, delays="0/0/0/0.1")  # fmt: skip
    log.removed("A400000002")
    # Postfix 3.11's tls= field, on services with their own names
    log.at(5).message("A400000003", "c@plain.example", "mx.plain.example[203.0.113.51]:25", tls=None,
                      tls_field="(may:none)", daemon="postfix/relay/smtp")  # fmt: skip
    log.at(5).message("A400000004", "d@dane.example", "mx.dane.example[203.0.113.52]:25", tls=None,
                      tls_field="dane", daemon="postfix/smtp-out")  # fmt: skip
    rows = {r["domain"]: r for r in _read(tmp_path, log).rows()}
    assert rows["proxy.example"]["tls_class"] == "trusted" and rows["proxy.example"]["delivered_tls"] == 2
    assert rows["plain.example"]["tls_class"] == "none" and rows["plain.example"]["delivered_plaintext"] == 1
    assert rows["dane.example"]["tls_class"] == "trusted"


def test_an_old_tls_line_of_the_same_process_does_not_cover_a_new_plaintext_session(tmp_path):
    log = PostfixLog()
    log.message("A500000001", "a@flip.example", "mx.flip.example[203.0.113.60]:25", tls="Trusted", pid=5200)
    log.at(600).message("A500000002", "b@flip.example", "mx.flip.example[203.0.113.60]:25", tls=None, pid=5200)
    obs = _read(tmp_path, log)
    assert obs.classes_of("mx.flip.example") == {"trusted": 1, "none": 1}


# ------------------------------------------------------------------ 3. per host, not per domain


def test_each_mx_host_keeps_its_own_class_and_a_tie_never_falls_to_none(tmp_path):
    log = PostfixLog()
    log.message("A600000001", "a@multi.example", "mx1.multi.example[203.0.113.70]:25", tls="Trusted")
    log.at(60).message("A600000002", "b@multi.example", "mx2.multi.example[203.0.113.71]:25", tls=None)
    log.at(60).message("A600000003", "c@multi.example", "mx2.multi.example[203.0.113.71]:25", tls=None)
    log.at(60).message("A600000004", "d@mixed.example", "mx.mixed.example[203.0.113.72]:25", tls="Untrusted")
    log.at(60).message("A600000005", "e@mixed.example", "mx.mixed.example[203.0.113.72]:25", tls=None)
    (tmp_path / "mail.log").write_text(log.text())
    out = tmp_path / "out"
    assert invoke("import", "maillog", tmp_path / "mail.log", "--out", out).exit_code == 0
    world = {d["name"]: d["mx"] for d in yaml.safe_load((out / "remotes.yaml").read_text())["domains"]}
    multi = {h["host"]: h["tls"] for h in world["multi.example"]}
    assert multi == {"mx2.multi.example": "none", "mx1.multi.example": "trusted"}
    assert world["multi.example"][0]["host"] == "mx2.multi.example"  # the busier host first
    assert world["mixed.example"][0]["tls"] == "untrusted"  # 1 TLS session, 1 plaintext: not none
    assert _rows(out)["multi.example"]["tls_class"] == "trusted;none"


def test_host_class_prefers_any_observed_class_to_unknown():
    from collections import Counter

    assert host_class(Counter({"unknown": 50, "handshake-fails": 1})) == "handshake-fails"
    assert host_class(Counter({"none": 2, "encrypted": 2})) == "encrypted"
    assert host_class(Counter()) == "unknown"


# ------------------------------------------------------------------ 4. queue ids, years, counts


def test_a_queue_id_seen_again_after_removed_is_a_new_message(tmp_path):
    log = PostfixLog()
    log.message("ABCDEF1234", "a@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    log.at(3 * 86400).message("ABCDEF1234", "b@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    row = _read(tmp_path, log).rows()[0]
    assert (row["messages"], row["recipients"], row["delivered"]) == (2, 2, 2)


def test_a_log_across_new_year_keeps_its_real_span(tmp_path):
    log = PostfixLog(now=dt.datetime(2025, 12, 31, 23, 50, 0))
    for n in range(3):
        log.message(f"A70000000{n}", f"u{n}@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
        log.at(600)
    obs = _read(tmp_path, log, name="mail.log")
    assert (obs.first.year, obs.last.year) == (2025, 2026) or (obs.first.year, obs.last.year) == (2026, 2027)
    assert obs.span_hours == pytest.approx(20 / 60)  # 23:50 to 00:10, not a year backwards


def test_rotated_files_across_new_year_in_any_order(tmp_path):
    old = PostfixLog(now=dt.datetime(2025, 12, 31, 23, 0, 0))
    old.message("A800000001", "a@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    new = PostfixLog(now=dt.datetime(2026, 1, 1, 1, 0, 0))
    new.message("A800000002", "b@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    (tmp_path / "mail.log.1").write_text(old.text())
    with gzip.open(tmp_path / "mail.log.gz", "wt") as handle:  # oddly named and compressed
        handle.write(new.text())
    obs = read_maillog([tmp_path / "mail.log.gz", tmp_path / "mail.log.1"], 2025)
    assert (obs.first.year, obs.first.month, obs.last.year, obs.last.month) == (2025, 12, 2026, 1)
    assert obs.span_hours == pytest.approx(2.0)


def test_count_columns_partition_the_recipients(tmp_path):
    log = PostfixLog()
    log.received("A900000001", nrcpt=4)
    relay = "mx.slow.example[203.0.113.80]:25"
    for rcpt in ("a@slow.example", "b@slow.example", "c@slow.example", "d@slow.example"):
        log.delivered("A900000001", rcpt, relay, status="deferred", dsn="4.4.2", text="lost connection", tls=None)
    log.at(600)
    log.delivered("A900000001", "a@slow.example", relay, status="deferred", dsn="4.4.2", text="lost connection")
    log.delivered("A900000001", "a@slow.example", relay)  # deferred twice, then delivered
    log.delivered("A900000001", "b@slow.example", relay, status="bounced", dsn="5.1.1", text="550 5.1.1 no user")
    log.line("postfix/qmgr", "A900000001: from=<ann@ours.example>, status=expired, returned to sender", 4002)
    log.removed("A900000001")
    log.at(1).received("A900000002")
    log.delivered("A900000002", "e@slow.example", relay, status="deferred", dsn="4.4.2", text="lost connection")
    row = _read(tmp_path, log).rows()[0]
    counts = {k: row[k] for k in ("recipients", "delivered", "bounced", "expired", "pending", "deferred")}
    assert counts == {"recipients": 5, "delivered": 1, "bounced": 1, "expired": 2, "pending": 1, "deferred": 5}
    assert counts["delivered"] + counts["bounced"] + counts["expired"] + counts["pending"] == counts["recipients"]


# ------------------------------------------------------------------ 5. bounded by the data


def test_a_very_long_line_is_one_counted_line(tmp_path):
    log = PostfixLog()
    log.message("AA00000001", "a@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    path = tmp_path / "mail.log"
    with path.open("w") as handle:
        handle.write(log.text())
        handle.write("Mar  2 09:00:01 gw postfix/smtp[1]: " + "x" * 10_000_000 + "\n")
        handle.write(log.text().replace("AA00000001", "AA00000002"))
    obs = read_maillog([path], 2026)
    assert obs.unused["line longer than 64 KiB (skipped)"] == 1
    assert obs.rows()[0]["messages"] == 2


def test_a_gzip_that_expands_past_the_limit_stops_with_exit_2(tmp_path, monkeypatch):
    import sim.importers.text as text

    monkeypatch.setattr(text, "GZIP_FLOOR", 1_000_000)
    bomb = tmp_path / "mail.log.1.gz"
    with gzip.open(bomb, "wb") as handle:
        for _ in range(40):
            handle.write(b"\n" * 100_000)  # 4 MB of newlines: ~4 KB compressed
    line = one_error_line(invoke("import", "maillog", bomb, "--out", tmp_path / "out"))
    assert "mail.log.1.gz" in line and "gzip bomb" in line


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_memory_holds_only_the_messages_in_flight(tmp_path):
    """20,000 messages, each removed a few lines after it starts: the reader never holds
    more than a handful (plus those waiting out a possible hop)."""
    log = PostfixLog()
    for n in range(20_000):
        log.at(1).message(f"B{n:09X}", f"u{n % 97}@d{n % 13}.example", f"mx.d{n % 13}.example[203.0.113.{n % 13}]:25",
                          text="250 2.0.0 Ok")  # fmt: skip
    path = tmp_path / "mail.log"
    path.write_text(log.text())
    reader = PostfixLogReader()
    largest = 0
    from sim.importers.syslog import SyslogClock

    clock = SyslogClock(2026)
    for line in path.read_text().splitlines():
        reader.line(clock, line)
        largest = max(largest, len(reader.inflight) + len(reader.waiting) + len(reader.handoffs))
    obs = reader.finish()
    assert sum(r["messages"] for r in obs.rows()) == 20_000
    assert largest <= 2


def test_unused_lines_are_counted_by_reason(tmp_path):
    log = PostfixLog()
    log.message("AB00000001", "a@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    log.lines += [
        "garbage without a stamp",
        "Mar  2 09:10:00 gw kernel: eth0 up",
        "Nov 31 00:00:00 gw postfix/smtp[1]: x",
    ]
    obs = _read(tmp_path, log)
    assert obs.unused["no timestamp"] == 2 and obs.unused["not a Postfix line"] == 1


def test_local_parts_never_reach_an_output(tmp_path):
    log = PostfixLog()
    log.message("AC00000001", "secret.person@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    (tmp_path / "mail.log").write_text(log.text())
    out = tmp_path / "out"
    assert invoke("import", "maillog", tmp_path / "mail.log", "--out", out).exit_code == 0
    for path in out.iterdir():
        assert not re.search(r"secret\.person|ann@", path.read_text()), path.name

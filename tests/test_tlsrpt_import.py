"""tlssim import tlsrpt: reports as people receive them (files, gzip, mails, mbox, Maildir),
sparse as real reporters write them; what is not a report is skipped and named."""

from __future__ import annotations

import csv
import gzip
import json
import mailbox
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "tlsrpt"
runner = CliRunner()


def report(organisation: str, day: str, ok: int, failures: list[dict], *, report_id: str = "", **policy) -> dict:
    """A report as its sender writes it: only what RFC 8460 requires, plus ``policy``."""
    failed = sum(f["failed-session-count"] for f in failures)
    return {
        "organization-name": organisation,
        "date-range": {"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"},
        "contact-info": f"tlsrpt@{organisation.split()[0].lower()}.example",
        "report-id": report_id or f"{day}_{organisation}",
        "policies": [
            {
                "policy": {"policy-type": "sts", **policy},
                "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
                **({"failure-details": failures} if failures else {}),
            }
        ],
    }


def mail(document: dict, *, gzipped: bool = True) -> MIMEMultipart:
    """An RFC 8460 s.5.3 report mail."""
    message = MIMEMultipart("report", report_type="tlsrpt")
    message["Subject"] = f"Report Domain: contoso.com Submitter: {document['organization-name']}"
    message.attach(MIMEText("This is an aggregate TLS report."))
    data = json.dumps(document).encode()
    kind = "tlsrpt+gzip" if gzipped else "tlsrpt+json"
    part = MIMEApplication(gzip.compress(data) if gzipped else data, kind)
    part.add_header("Content-Disposition", "attachment", filename="report.json.gz" if gzipped else "report.json")
    message.attach(part)
    return message


MICROSOFT = report(  # Microsoft: no policy-string, mx-host nor sending-mta-ip
    "Microsoft Corporation", "2026-03-01", 900,
    [{"result-type": "validation-failure", "receiving-mx-hostname": "mx1.contoso.com", "failed-session-count": 100}],
    **{"policy-domain": "contoso.com"},
)  # fmt: skip
POSTFIX = report(  # Postfix's reporter: no policy-domain
    "mail.fabrikam.example", "2026-03-01", 40, [],
    **{"policy-string": ["version: STSv1", "mode: testing", "mx: *.contoso.com", "max_age: 86400"]},
)  # fmt: skip


def test_mails_mbox_maildir_and_files_hold_the_same_reports_counted_once(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "one.eml").write_bytes(mail(MICROSOFT).as_bytes())
    box = mailbox.mbox(inbox / "reports.mbox")
    box.add(mail(POSTFIX, gzipped=False))
    box.add(mail(MICROSOFT))  # the same report again: counted once
    second_day = report("Microsoft Corporation", "2026-03-02", 950, [], **{"policy-domain": "contoso.com"})
    box.add(mail(second_day))
    box.flush()
    maildir = mailbox.Maildir(inbox / "Maildir", create=True)
    third_day = report("Microsoft Corporation", "2026-03-03", 1000, [], **{"policy-domain": "contoso.com"})
    maildir.add(mail(third_day))
    (inbox / "plain.json.gz").write_bytes(gzip.compress(json.dumps(report("Other", "2026-03-01", 7, [])).encode()))
    (inbox / "notes.txt").write_text("not a report\n")
    (inbox / "other.json").write_text(json.dumps({"policies": []}))
    result = runner.invoke(app, ["import", "tlsrpt", str(inbox), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "read 5 report(s), 1 duplicate(s) counted once, 2 skipped" in result.stdout
    assert "notes.txt: not JSON" in result.stderr and "other.json: not an RFC 8460 report" in result.stderr
    senders = {s["organisation"]: s for s in yaml.safe_load((tmp_path / "out/senders.yaml").read_text())["senders"]}
    ms = senders["Microsoft Corporation"]
    assert ms["sessions_per_day"] == {"2026-03-01": 1000, "2026-03-02": 950, "2026-03-03": 1000}
    assert (ms["sessions"], ms["failed"], ms["profile"], ms["profile_assumed"]) == (2950, 100, "exchange-online", False)
    assert ms["failures_per_mx"] == {"mx1.contoso.com": {"validation-failure": 100}}
    fabrikam = senders["mail.fabrikam.example"]
    assert (fabrikam["sessions"], fabrikam["profile"], fabrikam["profile_assumed"]) == (40, "generic", True)
    rows = list(csv.DictReader((tmp_path / "out/observed.csv").open()))
    assert sum(int(r["sessions"]) for r in rows) == 2950 + 40 + 7
    modes = {r["organisation"]: r["mode"] for r in rows}
    assert modes["mail.fabrikam.example"] == "testing" and modes["Microsoft Corporation"] == ""


def test_nothing_usable_is_exit_2_and_a_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"{" + b" " * (20 * 1024 * 1024)))
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b" + b"junk")
    result = runner.invoke(app, ["import", "tlsrpt", str(bomb), str(broken), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "expands beyond 16 MB" in result.stderr and "not a readable gzip" in result.stderr
    assert "no TLS-RPT report in" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the corpus of real files is not beside the checkout")
def test_every_real_report_imports_and_sessions_equal_the_summaries(tmp_path):
    import email

    expected: dict[str, int] = {}
    for path in sorted(CORPUS.iterdir()):
        if path.suffix == ".json":
            documents = [json.loads(path.read_text())]
        elif path.suffix == ".eml":
            message = email.message_from_bytes(path.read_bytes())
            documents = [
                json.loads(gzip.decompress(part.get_payload(decode=True)))
                for part in message.walk()
                if part.get_content_type() == "application/tlsrpt+gzip"
            ]
        else:
            continue
        assert documents, path
        for document in documents:
            summaries = (p["summary"] for p in document["policies"])
            expected[document["organization-name"]] = expected.get(document["organization-name"], 0) + sum(
                s["total-successful-session-count"] + s["total-failure-session-count"] for s in summaries
            )
    result = runner.invoke(app, ["import", "tlsrpt", str(CORPUS), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"read {len(expected)} report(s)" in result.stdout
    senders = yaml.safe_load((tmp_path / "out/senders.yaml").read_text())["senders"]
    assert {s["organisation"]: s["sessions"] for s in senders} == expected
    mail_ru = next(s for s in senders if s["organisation"] == "Mail.ru")
    assert mail_ru["failures"] == {"sts-policy-fetch-error": 2} and "do not add up" in mail_ru["note"]

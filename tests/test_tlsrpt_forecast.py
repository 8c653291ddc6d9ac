"""tlssim import tlsrpt -> whatif.yaml: the reports we receive under ``testing`` forecast
what ``enforce`` would do, per sending organisation, with each sender's own expiry."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.mta.profiles import get_profile
from sim.scenario.loader import load_scenario

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "tlsrpt"
runner = CliRunner()
POLICY = ["version: STSv1", "mode: testing", "mx: mx1.contoso.com", "max_age: 86400"]


def report(organisation: str, contact: str, day: str, ok: int, failures: list[tuple[str, str, int]], **policy) -> dict:
    details = [{"result-type": r, "receiving-mx-hostname": mx, "failed-session-count": n} for mx, r, n in failures]
    return {
        "organization-name": organisation,
        "date-range": {"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"},
        "contact-info": contact,
        "report-id": f"{day}_{organisation}",
        "policies": [
            {
                "policy": {"policy-type": "sts", "policy-domain": "contoso.com", **policy},
                "summary": {
                    "total-successful-session-count": ok,
                    "total-failure-session-count": sum(n for _, _, n in failures),
                },
                **({"failure-details": details} if details else {}),
            }
        ],
    }


def imported(tmp_path: Path, reports: list[dict], *extra: str) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir(exist_ok=True)
    for i, document in enumerate(reports):
        (folder / f"r{i}.json").write_text(json.dumps(document))
    out = tmp_path / "imported"
    result = runner.invoke(app, ["import", "tlsrpt", str(folder), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def enforce(out: Path) -> Path:
    """The what-if with its commented change to enforce turned on, as a user does."""
    text = (out / "whatif.yaml").read_text()
    assert "# changes:" in text
    text = text.replace("# changes:", "changes:").replace("#   - {at: 1d", "  - {at: 1d")
    (out / "enforce.yaml").write_text(text)
    return out / "enforce.yaml"


def run(whatif: Path, out: Path) -> tuple[dict, list[dict]]:
    result = runner.invoke(app, ["run", str(whatif), "--out", str(out), "--quiet", "--no-exceptions"])
    assert result.exit_code == 0, result.output
    with open(out / "summary.csv") as handle:
        summary = next(csv.DictReader(handle))
    with open(out / "inbound.csv") as handle:
        return summary, list(csv.DictReader(handle))


def test_all_sessions_failing_validation_on_our_one_mx_forecast_exactly_that_mail(tmp_path):
    days = ("2026-03-01", "2026-03-02", "2026-03-03")
    reports = [
        report("Google Inc.", "smtp-tls-reporting@google.com", d, 0, [("mx1.contoso.com", "validation-failure", 240)],
               **{"policy-string": POLICY})
        for d in days
    ]  # fmt: skip
    out = imported(tmp_path, reports)
    whatif = yaml.safe_load((out / "whatif.yaml").read_text())
    (flow,) = whatif["traffic"]["inbound"]
    assert flow == {
        "from": "google.com",
        "rate_per_hour": 10.0,
        "profile": "gmail",
        "observed_failures": [{"mx": "mx1.contoso.com", "result": "validation-failure", "share": 1.0}],
    }
    scenario = load_scenario(out / "whatif.yaml")
    assert scenario.organisation.publishes.mta_sts.mode == "testing"
    assert [mx.host for mx in scenario.organisation.publishes.mx] == ["mx1.contoso.com"]

    # As the reports were made (testing): every message arrives, every session is reported failed.
    _, (sender,) = run(out / "whatif.yaml", tmp_path / "testing")
    assert int(sender["accepted"]) == int(sender["messages"]) > 0
    received = json.loads(next((tmp_path / "testing" / "tls-rpt" / "received").glob("*.json")).read_text())
    assert received["organization-name"] == "Google Inc."
    assert received["policies"][0]["summary"]["total-successful-session-count"] == 0

    # Enforce from day 1: from then on every message is that failing mail, refused and returned.
    _, (sender,) = run(enforce(out), tmp_path / "enforce")
    messages, accepted = int(sender["messages"]), int(sender["accepted"])
    lost = int(sender["lost"]) + int(sender["doomed"])
    assert accepted + lost == messages and int(sender["pending"]) == 0
    per_day = messages / 7
    assert abs(accepted - per_day) < 4 * math.sqrt(per_day)  # only the first day's mail arrives
    # Gmail returns it after its own 3 days: mail of days 1-4 is back by the end of day 7.
    assert get_profile("gmail").expiration_timeout == 3 * 86400
    assert abs(int(sender["lost"]) - 3 * per_day) < 5 * math.sqrt(3 * per_day)


def test_a_share_failing_forecasts_that_share_at_the_senders_own_expiry(tmp_path):
    reports = [
        report("Microsoft Corporation", "tlsrpt-noreply@microsoft.com", "2026-03-01", 1400,
               [("mx1.contoso.com", "certificate-host-mismatch", 600)]),
    ]  # fmt: skip
    out = imported(tmp_path, reports, "--mx", "mx1.contoso.com")
    whatif = yaml.safe_load((out / "whatif.yaml").read_text())
    (flow,) = whatif["traffic"]["inbound"]
    assert flow["profile"] == "exchange-online" and flow["observed_failures"][0]["share"] == 0.3
    _, (sender,) = run(enforce(out), tmp_path / "enforce")
    after = int(sender["messages"]) * 6 / 7  # mail sent after the change
    lost = int(sender["lost"]) + int(sender["doomed"])
    assert abs(lost - 0.3 * after) < 4 * math.sqrt(0.3 * 0.7 * after)
    # Exchange Online returns it after one day, its refusals naming the MTA-STS failure.
    assert int(sender["lost"]) > int(sender["doomed"])
    assert "failed MTA-STS validation: certificate is for another name" in sender["last_refusal"]


def test_a_failure_at_one_of_two_mx_hosts_is_delivered_by_the_other(tmp_path):
    reports = [
        report("Google Inc.", "smtp-tls-reporting@google.com", "2026-03-01", 100,
               [("mx1.contoso.com", "certificate-expired", 100)],
               **{"policy-string": [*POLICY[:2], "mx: *.contoso.com", "max_age: 99999999"]}),
    ]  # fmt: skip
    out = imported(tmp_path, reports, "--mx", "mx1.contoso.com", "--mx", "mx2.contoso.com")
    text = (out / "whatif.yaml").read_text()
    assert "max_age 99999999 clamped to one year" in text
    topology = yaml.safe_load((out / "topology.yaml").read_text())
    assert topology["publishes"]["mta_sts"]["max_age"] == "8766h"  # 31557600 s
    _, (sender,) = run(enforce(out), tmp_path / "enforce")
    assert int(sender["accepted"]) == int(sender["messages"])


def test_the_testing_run_reproduces_the_reports_at_the_mx_they_name(tmp_path):
    days = [f"2026-03-0{d}" for d in range(1, 8)]
    reports = [
        report("Fabrikam", "tlsrpt@fabrikam.example", d, 300, [("mx2.contoso.com", "starttls-not-supported", 20)],
               **{"policy-string": [*POLICY[:2], "mx: *.contoso.com", "max_age: 86400"]})
        for d in days
    ]  # fmt: skip
    out = imported(tmp_path, reports, "--mx", "mx1.contoso.com", "--mx", "mx2.contoso.com")
    run(out / "whatif.yaml", tmp_path / "testing")
    failed = ok = 0
    for path in (tmp_path / "testing" / "tls-rpt" / "received").glob("*.json"):
        for entry in json.loads(path.read_text())["policies"]:
            ok += entry["summary"]["total-successful-session-count"]
            for detail in entry.get("failure-details", []):
                assert (detail["receiving-mx-hostname"], detail["result-type"]) == (
                    "mx2.contoso.com",
                    "starttls-not-supported",
                )
                failed += detail["failed-session-count"]
    # 20 of 320 sessions a day, at mx2 although mx1 is preferred: those sessions start there.
    sessions = failed + ok
    assert abs(failed - sessions / 16) < 4 * math.sqrt(sessions / 16)


def test_failures_it_cannot_reproduce_are_counted_not_modelled(tmp_path):
    reports = [
        report("Mail.ru", "tls_support@corp.mail.ru", "2026-03-01", 10, [("", "sts-policy-fetch-error", 4)]),
    ]
    out = imported(tmp_path, reports, "--mx", "mx1.contoso.com")
    text = (out / "whatif.yaml").read_text()
    assert "sts-policy-fetch-error 4 sessions" in text
    (flow,) = yaml.safe_load(text)["traffic"]["inbound"]
    assert flow["from"] == "corp.mail.ru" and flow["profile"] == "generic" and "observed_failures" not in flow
    assert "generic (assumed)" in text


def test_reports_naming_no_domain_of_ours_need_domain(tmp_path):
    document = report("mail.fabrikam.example", "postmaster@fabrikam.example", "2026-03-01", 5, [])
    del document["policies"][0]["policy"]["policy-domain"]
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "r.json").write_text(json.dumps(document))
    result = runner.invoke(app, ["import", "tlsrpt", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "pass --domain" in result.output
    assert not (tmp_path / "o").exists()
    result = runner.invoke(
        app, ["import", "tlsrpt", str(folder), "--out", str(tmp_path / "o"), "--domain", "contoso.com"]
    )
    assert result.exit_code == 0, result.output
    assert load_scenario(tmp_path / "o" / "whatif.yaml").organisation.publishes.domain == "contoso.com"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")
def test_the_corpus_reports_make_a_what_if_that_validates(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["import", "tlsrpt", str(CORPUS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(out / "whatif.yaml")])
    assert result.exit_code == 0, result.output
    for name in ("rfc8460.json",):
        result = runner.invoke(app, ["import", "tlsrpt", str(CORPUS / name), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        scenario = load_scenario(tmp_path / name / "whatif.yaml")
        (flow,) = scenario.traffic.inbound
        # 100 + 200 + 3 of 5629 sessions failed, each at the MX host the report names.
        shares = {f.mx: (f.result, round(f.share * 5629)) for f in flow.observed_failures}
        assert shares == {
            "mx1.mail.company-y.example": ("certificate-expired", 100),
            "mx2.mail.company-y.example": ("starttls-not-supported", 200),
            "mx-backup.mail.company-y.example": ("validation-failure", 3),
        }


def test_hostile_organisation_names_stay_data(tmp_path):
    hostile = 'Evil\ntraffic: {inbound: []}\n# "quoted" ---<script>'
    reports = [report(hostile, "x@evil.example\nrun: {duration: 1s}", "2026-03-01", 5,
                      [("mx1.contoso.com", "validation-failure", 5)], **{"policy-string": POLICY})]  # fmt: skip
    out = imported(tmp_path, reports)
    whatif = yaml.safe_load((out / "whatif.yaml").read_text())
    assert set(whatif) == {"name", "topology", "remotes", "traffic", "run"}
    assert whatif["run"]["duration"] == "7d" and len(whatif["traffic"]["inbound"]) == 1
    (flow,) = whatif["traffic"]["inbound"]
    assert flow["from"] == "evil-traffic-inbound-quoted-script.reporter.invalid"  # made from the name
    senders = yaml.safe_load((out / "senders.yaml").read_text())["senders"]
    assert senders[0]["organisation"] == hostile  # the value, exactly, as one scalar
    assert load_scenario(out / "whatif.yaml").traffic.inbound[0].rate_per_hour > 0

"""TLS-RPT output (RFC 8460): every file validates, and the counts are the run's sessions."""

from __future__ import annotations

import json

import jsonschema
import pytest
from worlds import host, organisation, scenario

from sim.simulate import Simulation

RESULT_TYPES = [
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
]

# Written from RFC 8460 s.4.4 (the JSON schema and the field list), with errata 6241
# (mx-host is an array); policy-string is an array of strings (s.4.5).
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info", "report-id", "policies"],
    "additionalProperties": False,
    "properties": {
        "organization-name": {"type": "string", "minLength": 1},
        "date-range": {
            "type": "object",
            "required": ["start-datetime", "end-datetime"],
            "additionalProperties": False,
            "properties": {
                "start-datetime": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
                "end-datetime": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
            },
        },
        "contact-info": {"type": "string"},
        "report-id": {"type": "string", "minLength": 1},
        "policies": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["policy", "summary"],
                "additionalProperties": False,
                "properties": {
                    "policy": {
                        "type": "object",
                        "required": ["policy-type", "policy-domain"],
                        "additionalProperties": False,
                        "properties": {
                            "policy-type": {"enum": ["tlsa", "sts", "no-policy-found"]},
                            "policy-string": {"type": "array", "items": {"type": "string"}},
                            "policy-domain": {"type": "string", "minLength": 1},
                            "mx-host": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "summary": {
                        "type": "object",
                        "required": ["total-successful-session-count", "total-failure-session-count"],
                        "additionalProperties": False,
                        "properties": {
                            "total-successful-session-count": {"type": "integer", "minimum": 0},
                            "total-failure-session-count": {"type": "integer", "minimum": 0},
                        },
                    },
                    "failure-details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["result-type", "failed-session-count"],
                            "additionalProperties": False,
                            "properties": {
                                "result-type": {"enum": RESULT_TYPES},
                                "sending-mta-ip": {"type": "string"},
                                "receiving-mx-hostname": {"type": "string"},
                                "receiving-mx-helo": {"type": "string"},
                                "receiving-ip": {"type": "string"},
                                "failed-session-count": {"type": "integer", "minimum": 1},
                                "additional-information": {"type": "string"},
                                "failure-reason-code": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _world():
    org = organisation("opportunistic", profile="exchange-online")
    org["publishes"] = {
        "domain": "test.example",
        "mx": [{"host": "mx1.test.example", "virtual_server": "EX1/default"}],
        "mta_sts": {"mode": "enforce", "mx": ["mx1.test.example"], "max_age": "1d"},
        "tls_rpt": "mailto:tlsrpt@test.example",
    }
    org["servers"][0]["virtual_servers"][0]["inbound"] = {"tls": "offered"}
    # Our certificate is for another name than the MX: verifying senders fail it.
    org["servers"][0]["virtual_servers"][0]["certificate"] = {"issuer": "public-ca", "names": ["ex1.test.example"]}
    rem = {
        "domains": [
            {
                "name": "sts.example",
                "mx": [host("mx1.sts.example", "trusted"), host("mx2.sts.example", "self-signed", preference=20)],
                "mta_sts": {"mode": "enforce", "mx": ["*.sts.example"], "max_age": "7d"},
                "tls_rpt": "mailto:tlsrpt@sts.example",
            },
            {
                "name": "dane.example",
                "dnssec": "secure",
                "mx": [host("mx.dane.example", "trusted", tlsa="mismatch")],
                "tls_rpt": "https://reports.dane.example/v1",
            },
            {"name": "quiet.example", "mx": [host("mx.quiet.example", "trusted")]},  # no rua: no report
        ]
    }
    traffic = {
        "outbound": {"rate_per_hour": 60, "domains": {"sts.example": 2, "dane.example": 1, "quiet.example": 1}},
        "inbound": [
            {"from": "fabrikam.example", "rate_per_hour": 30, "profile": "exchange-online"},
            {"from": "adatum.example", "rate_per_hour": 20, "profile": "postfix-3.11", "mta_sts": "apply"},
            {"from": "legacy.example", "rate_per_hour": 20, "profile": "exchange2016"},  # does not report
        ],
    }
    return scenario(org, rem, traffic=traffic, duration="2d")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    simulation = Simulation(_world())
    result = simulation.run()
    out = tmp_path_factory.mktemp("run")
    result.write(out)
    return simulation, result, out


def _load(folder):
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def _sessions(document):
    return sum(
        p["summary"]["total-successful-session-count"] + p["summary"]["total-failure-session-count"]
        for p in document["policies"]
    )


def test_every_report_validates_against_the_rfc_8460_schema(written):
    _, _, out = written
    files = {**_load(out / "tls-rpt/sent"), **_load(out / "tls-rpt/received")}
    assert files
    for name, document in files.items():
        jsonschema.validate(document, SCHEMA)
        for policy in document["policies"]:
            failures = sum(f["failed-session-count"] for f in policy.get("failure-details", []))
            assert failures == policy["summary"]["total-failure-session-count"], name


def test_sent_reports_count_exactly_the_sessions_run_to_domains_that_ask(written):
    simulation, _, out = written
    sent = _load(out / "tls-rpt/sent")
    # One report per recipient domain that publishes a rua, per UTC day (2 days from midnight).
    assert sorted((name.split("!")[1], doc["organization-name"]) for name, doc in sent.items()) == [
        ("dane.example", "test"),
        ("dane.example", "test"),
        ("sts.example", "test"),
        ("sts.example", "test"),
    ]
    domains = simulation.metrics.domains
    for recipient in ("sts.example", "dane.example"):
        reported = sum(_sessions(doc) for name, doc in sent.items() if name.split("!")[1] == recipient)
        stats = domains[recipient]
        assert reported == stats.connections + stats.refusals > 0
    assert "quiet.example" not in {name.split("!")[1] for name in sent}


def test_sent_reports_say_what_failed_where(written):
    _, _, out = written
    sent = _load(out / "tls-rpt/sent")
    details = {
        (p["policy"]["policy-type"], f["receiving-mx-hostname"], f["result-type"])
        for doc in sent.values()
        for p in doc["policies"]
        for f in p.get("failure-details", [])
    }
    assert ("tlsa", "mx.dane.example", "tlsa-invalid") in details
    policies = {p["policy"]["policy-domain"]: p["policy"] for doc in sent.values() for p in doc["policies"]}
    assert policies["sts.example"]["policy-string"] == [
        "version: STSv1",
        "mode: enforce",
        "mx: *.sts.example",
        "max_age: 604800",
    ]
    assert policies["mx.dane.example"]["policy-type"] == "tlsa"  # DANE's policy domain is the MX host (s.1.1)


def test_received_reports_one_per_reporting_organisation_per_day(written):
    _, result, out = written
    received = _load(out / "tls-rpt/received")
    orgs = sorted((doc["organization-name"], doc["date-range"]["start-datetime"][:10]) for doc in received.values())
    assert orgs == [
        ("Microsoft Corporation", "2026-01-01"),
        ("Microsoft Corporation", "2026-01-02"),
        ("adatum.example", "2026-01-01"),
        ("adatum.example", "2026-01-02"),
    ]
    total = sum(_sessions(doc) for doc in received.values())
    assert total == result.summary_row["in_tlsrpt_sessions"] > 0
    # Our MX's certificate is not for its name: enforcing senders report the mismatch.
    results = {f["result-type"] for doc in received.values() for p in doc["policies"] for f in p["failure-details"]}
    assert results == {"certificate-host-mismatch"}

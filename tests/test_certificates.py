"""Certificates in the simulation: validity at simulated time, pending requests,
client-certificate policies, files, and the bundled certificate scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner
from worlds import host, organisation, remotes, scenario

import sim
from sim.cli import app
from sim.simulate import Simulation

ROOT = Path(__file__).resolve().parent.parent
HOUR, DAY = 3600.0, 86400.0
runner = CliRunner()


def events_of(org, rem, injections, duration="1d"):
    simulation = Simulation(scenario(org, rem, duration=duration), trace=True)
    for at in injections:
        simulation.inject(at, "d.example")
    result = simulation.run()
    return result, [(t, i, e, d) for t, i, e, d in result.trace if e != "accepted"]


def test_a_certificate_that_expires_mid_run_changes_the_outcome_from_that_instant():
    rem = remotes(d_example=[host("mx.d.example", "trusted", certificate_expires_in="1h")])
    _, events = events_of(organisation("verify"), rem, [0.5 * HOUR, 2 * HOUR], duration="3h")
    first = {}
    for _, i, e, d in events:
        if e in ("delivered", "deferred"):
            first.setdefault(i, (e, d))
    assert first == {
        0: ("delivered", "tls-verified"),
        1: ("deferred", "4.7.5 Certificate validation failed: certificate has expired"),
    }


def test_standalone_ca_request_pending_blocks_tls_until_approval():
    org = organisation("required", certificate={"issuer": "standalone-ca", "approval_delay": "1h"})
    _, events = events_of(org, remotes(d_example="trusted"), [0.0], duration="3h")
    assert [(t / 60, e) for t, _, e, _ in events][:4] == [
        (0, "attempt"),
        (0, "deferred"),
        (15, "attempt"),
        (15, "deferred"),
    ]
    assert events[1][3] == "4.7.0 TLS unavailable: no certificate on the virtual server"
    (delivered,) = [t for t, _, e, _ in events if e == "delivered"]
    assert 105 * 60 <= delivered < 105 * 60 + 2  # the first retry after approval (15, 45, 105 min)


def test_opportunistic_without_a_certificate_sends_plaintext_under_exchange2003():
    org = organisation("opportunistic", certificate={"issuer": "standalone-ca", "approval_delay": "1h"})
    _, events = events_of(org, remotes(d_example="trusted"), [0.0, 2 * HOUR], duration="3h")
    assert [d for _, _, e, d in events if e == "delivered"] == ["plaintext", "tls-unverified"]


@pytest.mark.parametrize(
    ("issuer", "trust", "expected"),
    [
        ("self-signed", ["public"], "deferred"),
        ("enterprise-ca", ["public"], "deferred"),  # our private CA: the partner does not trust it
        ("enterprise-ca", ["public", "enterprise"], "delivered"),
        ("public-ca", ["public"], "delivered"),
    ],
)
def test_sites_that_reject_unverifiable_client_certificates(issuer, trust, expected):
    rem = remotes(d_example=[host("mx.d.example", "trusted", client_certificates="reject-self-signed", trust=trust)])
    org = organisation("required", certificate={"issuer": issuer})
    _, events = events_of(org, rem, [0.0], duration="10m")
    assert next(e for _, _, e, _ in events if e in ("delivered", "deferred")) == expected


def test_real_certificate_file_in_a_scenario(tmp_path):
    result = runner.invoke(
        app, ["cert", "make", "--name", "mail.contoso.com", "--out", str(tmp_path / "certs"), "--issuer", "self-signed"]
    )
    assert result.exit_code == 0, result.output
    text = (ROOT / "scenarios/article-self-signed.yaml").read_text()
    text = text.replace("../topology/", str(ROOT / "topology") + "/")
    text = text.replace("{issuer: self-signed, names: [mail.contoso.com]}", "{file: certs/mail.contoso.com.der}")
    (tmp_path / "with-file.yaml").write_text(text)
    row = sim.run(sim.load_scenario(tmp_path / "with-file.yaml")).summary_row
    assert row["out_ndr"] > 0  # the file's self-signed certificate is refused like the generated one
    (tmp_path / "certs/mail.contoso.com.der").write_bytes(b"not a certificate")
    bad = runner.invoke(app, ["validate", str(tmp_path / "with-file.yaml")])
    assert bad.exit_code == 2
    line = (bad.stderr or bad.output).strip()
    assert "certificate.file" in line and "not an X.509 certificate" in line and "\n" not in line


@pytest.mark.parametrize("pem", [False, True])
def test_cert_inspect_reads_der_and_pem(tmp_path, pem):
    args = [
        "cert",
        "make",
        "--name",
        "mx.example.org",
        "--out",
        str(tmp_path),
        "--issuer",
        "public-ca",
        "--expires-in",
        "30d",
    ] + (["--pem"] if pem else [])
    assert runner.invoke(app, args).exit_code == 0
    path = tmp_path / f"mx.example.org.{'pem' if pem else 'der'}"
    result = runner.invoke(app, ["cert", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["subject_alternative_names"] == ["mx.example.org"]
    assert info["self_signed"] is False
    assert info["key_type"] == "EC secp256r1" and info["key_size"] == 256
    assert "tlssim Public Issuing CA" in info["issuer"]


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_cert_inspect_rejects_what_is_not_a_certificate(tmp_path, content):
    path = tmp_path / "broken.der"
    path.write_bytes(content)
    result = runner.invoke(app, ["cert", "inspect", str(path)])
    assert result.exit_code == 2
    text = (result.stderr or result.output).strip()
    assert "broken.der" in text and "not an X.509 certificate" in text and "\n" not in text and "Traceback" not in text


# -- the bundled certificate scenarios ---------------------------------------------------------


def run_bundled(name):
    return sim.run(sim.load_scenario(ROOT / f"scenarios/{name}.yaml"))


def test_self_signed_certificate_is_refused_only_by_the_sendmail_style_site():
    result = run_bundled("article-self-signed")
    assert set(result.ndr["domain"]) == {"woodgrovebank.com"}
    assert set(result.ndr["status"]) == {"4.4.7"}
    per_domain = result.per_domain.set_index("domain")
    assert per_domain.loc["woodgrovebank.com", "delivered"] == 0
    for domain in ("fabrikam.com", "adatum.com", "litware.com", "oldsendmail.example", "brokentls.example"):
        assert per_domain.loc[domain, "ndr"] == 0 and per_domain.loc[domain, "delivered"] > 0


@pytest.mark.slow
def test_certificate_expiry_on_day_10_shows_a_cliff():
    result = run_bundled("cert-expiry")
    total = result.queues[result.queues["queue"] == "(total)"].set_index("time_s")["depth"]
    assert total[total.index < 10 * DAY].max() < 50
    assert total[total.index >= 12 * DAY].min() > 5000
    assert set(result.ndr["domain"]) == {"fabrikam.com", "woodgrovebank.com"}
    row = result.summary_row
    assert row["in_lost"] > 0 and row["in_accepted"] > 0
    inbound = result.inbound.set_index("sender")
    assert (inbound["lost"] > 0).all()


def test_pending_standalone_certificate_queues_everything_until_approval():
    result = run_bundled("standalone-ca-pending")
    total = result.queues[result.queues["queue"] == "(total)"].set_index("time_s")["depth"]
    assert total[70 * HOUR] > 20000  # hourly samples: just before the approval at 72 h
    assert total[96 * HOUR] < 10000
    ndr = result.ndr
    assert "TLS unavailable" in " ".join(ndr["reason"])
    assert isinstance(ndr, pd.DataFrame) and set(ndr["status"]) == {"4.4.7"}

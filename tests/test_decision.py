"""The decision packet: exceptions in the product's syntax that, run, keep the mail flowing."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.mta.profiles import get_profile
from sim.report import exceptions as ex
from sim.vocabulary import Failure, TlsLevel

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _run(what_if: Path, out: Path) -> dict[str, str]:
    result = runner.invoke(app, ["run", str(what_if), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return next(csv.DictReader((out / "summary.csv").open()))


@pytest.fixture(scope="module")
def article(tmp_path_factory):
    out = tmp_path_factory.mktemp("decision") / "article-force-tls"
    return out, _run(ROOT / "scenarios/article-force-tls.yaml", out)


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_the_articles_exceptions_reproduce_the_articles_workaround(article, tmp_path):
    """The packet's Exchange 2003 connector on the virtual server without TLS is the
    article's workaround: run, it loses nothing and sends exactly what article-workaround sends."""
    out, forced = article
    assert int(forced["out_lost"]) == 14377
    packet = out / "exceptions"
    assert sorted(p.name for p in packet.iterdir()) == [
        "exchange2003-steps.txt", "go-no-go.md", "rollback.yaml", "with-exceptions.yaml"]  # fmt: skip
    with_exceptions = _run(packet / "with-exceptions.yaml", tmp_path / "with")  # the file as a user runs it
    workaround = _run(ROOT / "scenarios/article-workaround.yaml", tmp_path / "workaround")
    for metric in ("out_messages", "out_delivered", "out_delivered_tls", "out_delivered_plaintext", "out_ndr",
                   "out_doomed", "out_delay_dsn", "peak_queue_depth"):  # fmt: skip
        assert with_exceptions[metric] == workaround[metric], metric
    assert with_exceptions["out_lost"] == "0"
    steps = (packet / "exchange2003-steps.txt").read_text()
    assert "Virtual server no-tls-smtp on EX1, TLS encryption cleared." in steps
    assert "brokentls.example    (cost 1;" in steps and "oldsendmail.example    (cost 1;" in steps
    rollback = yaml.safe_load((packet / "rollback.yaml").read_text())
    # Reversed at the first delay notice (12 h after the first message that queued, at 15 min).
    assert rollback["changes"] == [
        {"at": "735m", "set": {"servers.EX1.virtual_servers.default-smtp.outbound_tls": "off"}}
    ]
    assert _run(packet / "rollback.yaml", tmp_path / "rollback")["out_lost"] == "0"


def test_the_report_and_go_no_go_give_the_measured_loss(article):
    out, _ = article
    text = (out / "report.md").read_text()
    assert "As written, the what-if loses 14,377 of 57,361 outbound messages (25.1%)." in text
    assert "With the exceptions (exceptions/with-exceptions.yaml), the same run loses 0 of 57,361" in text
    summary = (out / "exceptions/go-no-go.md").read_text()
    assert "- oldsendmail.example: 8,617 messages (no-starttls)" in summary
    assert "starttls-not-supported" in summary and "NDRs with status 4.4.7" in summary


@pytest.mark.parametrize(
    ("failure", "profile", "level"),
    [
        (Failure.NO_STARTTLS, "postfix", TlsLevel.OPPORTUNISTIC),
        (Failure.NO_STARTTLS, "exchange2003", TlsLevel.OFF),  # 2003 sets off or TLS encryption only
        (Failure.NO_STARTTLS, "exchange-online", TlsLevel.OPPORTUNISTIC),
        (Failure.CERTIFICATE, "exchange2016", TlsLevel.REQUIRED),  # EncryptionOnly
        (Failure.DANE_MISMATCH, "postfix", TlsLevel.REQUIRED),
        (Failure.HANDSHAKE, "postfix", TlsLevel.OFF),
        (Failure.HANDSHAKE, "exchange-online", None),  # Exchange Online cannot turn TLS off
        (Failure.MUST_STARTTLS, "postfix", None),
        (Failure.STS_CERTIFICATE, "exchange2016", None),
        (Failure.NO_STARTTLS, "sendmail", None),
    ],
)
def test_the_weakest_level_that_cures_each_failure(failure, profile, level):
    assert ex._level_for(failure.value, get_profile(profile))[0] == level


@pytest.mark.slow  # a six-day run of 1,000 domains
def test_postfix_lines_round_trip_through_our_importer_and_real_postmap(tmp_path):
    from sim.importers.postfix import read_policy_map

    out = tmp_path / "dane"
    _run(ROOT / "scenarios/dane-outbound-2026.yaml", out)
    table = out / "exceptions/tls_policy"
    lines = [line.split("\t") for line in table.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all(level in ("none", "may", "encrypt") for _, level in lines)
    # A host that requires TLS and fails every handshake: "none" was tried, did not help, and was dropped.
    assert "internet-2026-000015.example" not in dict(lines)
    assert "no TLS level delivers it" in (out / "report.md").read_text()
    assert read_policy_map(table, {}, []) == dict(lines)
    overrides = yaml.safe_load((out / "exceptions/with-exceptions.yaml").read_text())["overrides"]
    words = {v: k for k, v in ex.POSTFIX_WORDS.items()}
    assert overrides["servers.relay.virtual_servers.smtp.tls_policy"] == {d: words[w].value for d, w in lines}
    postmap = shutil.which("postmap") or ("/usr/sbin/postmap" if Path("/usr/sbin/postmap").exists() else None)
    if postmap is None:
        pytest.skip("Postfix's postmap is not installed")
    copy = tmp_path / "tls_policy"
    shutil.copy(table, copy)
    subprocess.run([postmap, f"hash:{copy}"], check=True, capture_output=True)
    for domain, level in lines:
        answer = subprocess.run([postmap, "-q", domain, f"hash:{copy}"], capture_output=True, text=True, check=True)
        assert answer.stdout.strip() == level


SEND_CONNECTOR = {"Name", "Usage", "AddressSpaces", "DNSRoutingEnabled", "SmartHosts", "SourceTransportServers",
                  "IgnoreSTARTTLS", "RequireTLS", "TlsAuthLevel"}  # fmt: skip


def _parameters(command: str) -> dict[str, str]:
    return dict(re.findall(r" -(\w+) (\"[^\"]*\"(?:,\"[^\"]*\")*|[^\s-]\S*)", command))


@pytest.mark.slow
def test_exchange_2016_commands_follow_the_documented_parameters_and_keep_the_mail(tmp_path):
    """A hand-built Exchange 2016 world that forces TLS on its Internet connector, with a
    partner on a dedicated connector: the packet takes the partner off it (Set-SendConnector)
    and the generated connectors deliver everything."""
    remotes = {"domains": [
        {"name": "good.example", "mx": [{"host": "mx.good.example", "tls": "trusted"}]},
        {"name": "plain.example", "mx": [{"host": "mx.plain.example", "tls": "none"}]},
        {"name": "selfsigned.example", "mx": [{"host": "mx.selfsigned.example", "tls": "self-signed"}]},
        {"name": "partner.example", "mx": [{"host": "mx.partner.example", "tls": "expired"}]},
    ]}  # fmt: skip
    topology = {
        "organisation": "contoso", "profile": "exchange2016", "routing_groups": [{"name": "hq"}],
        "servers": [{"name": "EX1", "routing_group": "hq",
                     "virtual_servers": [{"name": "default-smtp", "outbound_tls": "opportunistic"}]}],
        "connectors": [
            {"name": "internet", "source": ["EX1/default-smtp"], "address_spaces": [{"pattern": "*"}],
             "require_tls": True, "tls_auth_level": "CertificateValidation"},
            {"name": "partner", "source": ["EX1/default-smtp"],
             "address_spaces": [{"pattern": "partner.example"}, {"pattern": "good.example"}],
             "require_tls": True, "tls_auth_level": "DomainValidation"},
        ],
    }  # fmt: skip
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topology))
    (tmp_path / "remotes.yaml").write_text(yaml.safe_dump(remotes))
    what_if = {"name": "ex2016-verify", "topology": "topology.yaml", "remotes": "remotes.yaml",
               "traffic": {"outbound": {"rate_per_hour": 200, "domains": {"good.example": 0.25, "plain.example": 0.25,
                           "selfsigned.example": 0.25, "partner.example": 0.25}}},
               "run": {"duration": "3d", "seed": 3}}  # fmt: skip
    (tmp_path / "what-if.yaml").write_text(yaml.safe_dump(what_if))
    forced = _run(tmp_path / "what-if.yaml", tmp_path / "out")
    assert int(forced["out_lost"]) > 0
    commands = (tmp_path / "out/exceptions/exchange-commands.ps1").read_text().splitlines()
    calls = [c for c in commands if not c.startswith("#")]
    assert 'Set-SendConnector -Identity "partner" -AddressSpaces @{Remove="SMTP:partner.example;1"}' in calls
    created = [_parameters(c) for c in calls if c.startswith("New-SendConnector")]
    assert len(created) == 2  # plain.example opportunistic; selfsigned and partner encryption only
    for parameters in created:
        assert set(parameters) <= SEND_CONNECTOR
        for space in parameters["AddressSpaces"].split(","):
            cost = int(re.fullmatch(r'"SMTP:[a-z0-9.-]+;(\d+)"', space).group(1))
            assert 1 <= cost <= 100
        if "TlsAuthLevel" in parameters:
            assert parameters["RequireTLS"] == "$true"  # TlsAuthLevel needs RequireTLS
        if parameters.get("RequireTLS") == "$true":
            assert parameters.get("IgnoreSTARTTLS", "$false") == "$false"
    spaces = {p["Name"]: p["AddressSpaces"] for p in created}
    assert spaces['"tls-exceptions-required"'] == '"SMTP:partner.example;1","SMTP:selfsigned.example;1"'
    assert spaces['"tls-exceptions-opportunistic"'] == '"SMTP:plain.example;1"'
    assert _run(tmp_path / "out/exceptions/with-exceptions.yaml", tmp_path / "with")["out_lost"] == "0"


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_what_if_that_loses_nothing_has_no_packet_nor_one_that_asks_for_none(tmp_path):
    _run(ROOT / "scenarios/article-baseline.yaml", tmp_path / "out")
    assert not (tmp_path / "out/exceptions").exists()
    assert "Decision packet" not in (tmp_path / "out/report.md").read_text()
    args = ["run", "article-force-tls", "--out", str(tmp_path / "no"), "-q", "--no-exceptions"]
    assert runner.invoke(app, args).exit_code == 0
    assert not (tmp_path / "no/exceptions").exists() and (tmp_path / "no/report.html").exists()


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_the_packet_is_the_same_whether_its_what_ifs_run_in_a_forked_worker_or_here(article, tmp_path, monkeypatch):
    # The packet's what-ifs run in a forked worker while the report is drawn; where a
    # fork is unsafe (another thread) they run here. Both write the same packet.
    import sim.parallel

    monkeypatch.setattr(sim.parallel, "start_method", lambda: "spawn")
    _run(ROOT / "scenarios/article-force-tls.yaml", tmp_path / "here")
    forked, here = article[0] / "exceptions", tmp_path / "here/exceptions"
    assert sorted(p.name for p in forked.iterdir()) == sorted(p.name for p in here.iterdir())
    for name in ("go-no-go.md", "exchange2003-steps.txt"):
        assert (forked / name).read_text() == (here / name).read_text()
    assert (article[0] / "report.md").read_text() == (tmp_path / "here/report.md").read_text()


def test_the_worker_pool_forks_only_when_no_other_thread_runs():
    import sys
    import threading

    from sim.parallel import Background, start_method

    if not (sys.platform.startswith("linux") and sys.version_info < (3, 14)):
        pytest.skip("fork is this platform's default only on Linux before Python 3.14")
    assert start_method() == "fork"  # pytest runs one thread here
    pool = Background(1)
    try:
        assert pool.submit(sum, [1, 2, 3]).result() == 6
        assert pool._pool is not None
    finally:
        pool.close()
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        here = Background(1)
        assert here._pool is None and here.submit(sum, [4]).result() == 4  # run here, at once
    finally:
        release.set()
        other.join()

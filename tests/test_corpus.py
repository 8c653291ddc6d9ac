"""Every file of ../shared/corpus (real files nobody here wrote; provenance in its
SOURCES.md) imports with exit 0, or exit 2 with one line where it is not that kind of
file, and what it writes validates and runs. Skipped where the corpus is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from cli_checks import one_error_line
from exchange_lines import ExchangeLogs
from typer.testing import CliRunner

import sim
from sim.cli import app
from sim.importers.maillog import read_maillog

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
if not CORPUS.is_dir():
    pytest.skip(f"the corpus is not at {CORPUS}", allow_module_level=True)

runner = CliRunner()
LOGS = sorted((CORPUS / "maillog").iterdir())
NOT_MAIL_LOGS = {"fail2ban-tests-postfix.log"}  # smtpd rejections only: no delivery to import
CONFIGS = sorted((CORPUS / "postfix-config").iterdir())
EXPORTS = sorted((CORPUS / "exchange").glob("*.xml"))
PAIR = [CORPUS / "maillog" / "lightmeter-sample-mail.log", CORPUS / "maillog" / "lightmeter-sample-mail.log.1"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _runs(whatif: Path, tmp_path: Path, overrides: str | None = None) -> sim.RunResult:
    path = whatif
    if overrides is not None:
        path = whatif.with_name("forced.yaml")
        path.write_text(whatif.read_text().replace(f"# {overrides}", overrides))
    assert invoke("validate", path).exit_code == 0
    return sim.run(sim.load_scenario(path))


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_each_corpus_mail_log_imports_and_its_what_if_runs(log, tmp_path):
    out = tmp_path / "out"
    result = invoke("import", "maillog", log, "--out", out)
    if log.name in NOT_MAIL_LOGS:
        assert "no outbound delivery" in one_error_line(result)
        return
    assert result.exit_code == 0, result.output
    hosts = [h["host"] for d in yaml.safe_load((out / "remotes.yaml").read_text())["domains"] for h in d["mx"]]
    assert not any(h.startswith("127.") or h == "localhost" for h in hosts)
    _runs(out / "whatif.yaml", tmp_path)


def test_the_rotated_pair_agrees_with_its_log(tmp_path):
    """40 of the pair's 43 external deliveries ran over TLS: forcing encrypt returns or
    leaves queued few, not all (issue 18)."""
    obs = read_maillog(PAIR)
    rows = {row["domain"]: row for row in obs.rows()}
    delivered = sum(r["delivered"] for r in rows.values())
    assert (delivered, sum(r["delivered_tls"] for r in rows.values())) == (43, 40)
    # no hop to the content filter (127.0.0.1:10024) and no own address as anyone's MX
    assert not any(h.startswith("127.") for r in rows.values() for h in str(r["mx_hosts"]).split(";"))
    assert "h-ffeb17e38996c.com" not in rows and "h-ffeb17e38996c.com" in obs.local_domains  # lmtp: our own
    out = tmp_path / "out"
    assert invoke("import", "maillog", *PAIR, "--out", out).exit_code == 0
    header = (out / "whatif.yaml").read_text()
    forcing = next(line[2:] for line in header.splitlines() if line.startswith("# overrides:"))
    result = _runs(out / "whatif.yaml", tmp_path, forcing)
    summary = result.summary_row
    lost = (summary["out_ndr"] + summary["out_queued_at_end"]) / summary["out_messages"]
    assert lost <= 0.15, summary


def test_instances_named_by_address_are_hops_not_mx(tmp_path):
    for name, own in (
        ("lightmeter-14_reuse_of_queueid.log", "170.55.103.23"),
        ("lightmeter-18_expired.log", "239.58.50.50"),
    ):
        obs = read_maillog([CORPUS / "maillog" / name])
        assert own not in obs.hosts and obs.hops, name


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_each_corpus_postfix_configuration_imports_and_drives_a_what_if(config, tmp_path):
    out = tmp_path / "out"
    result = invoke("import", "postfix", config, "--out", out)
    assert result.exit_code == 0, result.output
    assert invoke("import", "maillog", *PAIR, "--out", out).exit_code == 0  # the log's what-if, on this server
    _runs(out / "whatif.yaml", tmp_path)


def test_corpus_policy_maps_import_with_their_configuration(tmp_path):
    maps = CORPUS / "postfix-maps"
    config = CORPUS / "postfix-config" / "mailcow-cuhk-maincf.20250527"
    policy, transport = maps / "mailcow-cuhk-custom_tls_policy", maps / "mailcow-cuhk-custom_transport"
    result = invoke(
        "import", "postfix", config, "--out", tmp_path / "a", "--policy-map", policy, "--transport-map", transport
    )
    assert result.exit_code == 0, result.output
    topology = (tmp_path / "a" / "topology.yaml").read_text()
    # "euclid.math.cuhk.edu.hk none" is a bare key; the transport's next hop is [euclid...]: Postfix never applies it
    assert "does not claim the relay [euclid.math.cuhk.edu.hk]" in topology
    document = yaml.safe_load(topology)
    assert [c["smart_hosts"] for c in document["connectors"] if c["name"] != "default"] == [["euclid.math.cuhk.edu.hk"]]
    for table in ("csware-tls_policy", "csware-tls_policy-dane"):
        result = invoke("import", "postfix", CONFIGS[0], "--out", tmp_path / table, "--policy-map", maps / table)
        assert result.exit_code == 0, result.output
        policy = yaml.safe_load((tmp_path / table / "topology.yaml").read_text())["servers"][0]["virtual_servers"][0]
        levels = set(policy["tls_policy"].values())
        assert levels <= {"secure", "verify", "dane-only", "encrypt", "may", "none", "dane"}
        assert ("dane-only" in levels) == table.endswith("dane")


@pytest.mark.parametrize("export", EXPORTS, ids=lambda p: p.name)
def test_each_corpus_exchange_export_imports_and_drives_a_what_if(export, tmp_path):
    out = tmp_path / "out"
    result = invoke("import", "exchange", export, "--out", out)
    assert result.exit_code == 0, result.output
    logs = ExchangeLogs(server="WIN-CTD3L0RGEN4")
    logs.session("Internet", "203.0.113.10", "mx.fabrikam.example", starttls=True, outcome="tls",
                 message_id="m@exlab.dom", recipients=["a@fabrikam.example"])  # fmt: skip
    sent = {"server-ip": "203.0.113.10", "server-hostname": "mx.fabrikam.example", "connector-id": "Internet"}
    logs.event("SEND", "m@exlab.dom", ["a@fabrikam.example"], "250 OK", **sent)
    logs.write(tmp_path / "logs")
    result = invoke("import", "exchange-logs", tmp_path / "logs", "--out", out)
    assert result.exit_code == 0, result.output
    _runs(out / "whatif.yaml", tmp_path)


def test_exchange_server_build_gives_the_2019_profile():
    from sim.importers.exchange import import_exchange

    document = import_exchange([CORPUS / "exchange" / "css-exchange-E19-GetExchangeServer.xml"]).document
    assert document["profile"] == "exchange2019" and document["servers"][0]["name"] == "SOLO-E19A"


def test_observed_csv_of_the_pair_is_per_recipient_domain(tmp_path):
    out = tmp_path / "out"
    assert invoke("import", "maillog", *PAIR, "--out", out).exit_code == 0
    with (out / "observed.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        parts = sum(int(row[c]) for c in ("delivered", "bounced", "expired", "pending"))
        assert parts == int(row["recipients"])

"""What every importer writes (issue 18, items 11-13): serialised, never formatted, so no
value from input can carry a new key; labelled with where it came from; written whole,
and never over a file the user edited without --force."""

from __future__ import annotations

import base64
import csv

import pytest
import yaml
from cli_checks import one_error_line
from exchange_lines import ExchangeLogs
from hypothesis import given, settings
from hypothesis import strategies as st
from postfix_lines import PostfixLog
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import ScenarioError
from sim.importers.exchange import import_exchange
from sim.importers.exchange2003 import import_exchange2003
from sim.importers.output import yaml_text
from sim.importers.postfix import import_postfix

runner = CliRunner()
HOSTILE = ["a\nhosts: [{host: injected, tls: none}]", "key: value", "# comment", '"quoted" \'single\'', "---",
           "<script>alert(1)</script>", "- item", "line\u2028separator\u0085next", "tab\there", "\r\nx: y"]  # fmt: skip
NS = "http://schemas.microsoft.com/powershell/2004/04"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
documents = st.recursive(
    st.one_of(texts, st.integers(), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(texts, documents, max_size=4), header=st.lists(texts, max_size=4))
def test_any_value_or_header_line_stays_what_it_was(document, header):
    text = yaml_text(document, header)
    assert yaml.safe_load(text) == document
    lines = text.split("\n")
    assert all(line.startswith("#") for line in lines[: len(header)])
    assert not lines[len(header)].startswith("#") or not document


def _hostile_clixml() -> str:
    def s(name: str, value: str) -> str:
        return f'<S N="{name}">{value.replace("&", "&amp;").replace("<", "&lt;")}</S>'

    props = "".join(
        [
            s("Name", HOSTILE[0]),
            s("Fqdn", HOSTILE[1] + HOSTILE[2]),
            s("TlsDomain", HOSTILE[5]),
            s("ErrorPolicies", HOSTILE[7]),
            '<Obj N="AddressSpaces" RefId="1"><LST>'
            + "".join(f"<S>SMTP:{v};1</S>" for v in ("*", HOSTILE[6], HOSTILE[9]))
            + "</LST></Obj>",
            '<Obj N="SmartHosts" RefId="2"><LST>'
            + "".join(f"<S>{v}</S>" for v in ("relay.example", HOSTILE[4]))
            + "</LST></Obj>",
            '<Obj N="SourceTransportServers" RefId="3"><LST><S>EX1\ninjected: yes</S></LST></Obj>',
            '<B N="DNSRoutingEnabled">false</B>',
        ]
    )
    return (
        f'<Objs Version="1.1.0.1" xmlns="{NS}"><Obj RefId="0"><TN RefId="0">'
        "<T>Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig</T></TN>"
        f"<Props>{props}</Props></Obj></Objs>"
    )


def _loads_as_built(path, built) -> dict:
    written = yaml.safe_load(path.read_text())
    assert written == built
    return written


def test_hostile_values_in_an_exchange_export_stay_scalars(tmp_path):
    (tmp_path / "send.xml").write_text(_hostile_clixml())
    out = tmp_path / "out"
    assert invoke("import", "exchange", tmp_path / "send.xml", "--out", out).exit_code == 0
    written = _loads_as_built(out / "topology.yaml", import_exchange([tmp_path / "send.xml"]).document)
    assert set(written) == {"organisation", "profile", "routing_groups", "servers", "connectors"}
    [connector] = written["connectors"]
    assert set(connector["name"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert connector["smart_hosts"] == ["relay.example"] and connector["address_spaces"] == [
        {"pattern": "*", "cost": 1}
    ]
    header = [line for line in (out / "topology.yaml").read_text().splitlines() if line.startswith("#")]
    assert any("<script>" in line for line in header)  # said, as a comment


def test_hostile_values_in_an_ldif_export_stay_scalars(tmp_path):
    cn = base64.b64encode(HOSTILE[0].encode()).decode()
    smart = base64.b64encode(f"relay.example;{HOSTILE[1]}".encode()).decode()
    vs = "CN=1,CN=SMTP,CN=Protocols,CN=EX2003,CN=Servers,CN=AG,CN=Administrative Groups,CN=Org"
    (tmp_path / "x.ldf").write_text(
        f"dn: {vs}\nobjectClass: protocolCfgSMTPServer\nmsExchSmtpSmartHost: {HOSTILE[2]}\n\n"
        f"dn: CN=c,CN=Connections,CN=Org\nobjectClass: msExchRoutingSMTPConnector\ncn:: {cn}\n"
        f"routingList: SMTP:*;1\nmsExchSourceBridgeheadServersDN: {vs}\nmsExchSmtpSmartHost:: {smart}\n"
    )
    out = tmp_path / "out"
    assert invoke("import", "exchange2003", tmp_path / "x.ldf", "--out", out).exit_code == 0
    written = _loads_as_built(out / "topology.yaml", import_exchange2003(tmp_path / "x.ldf").document)
    assert written["connectors"][0]["smart_hosts"] == ["relay.example"]


def test_hostile_values_in_a_postfix_configuration_stay_comments(tmp_path):
    (tmp_path / "main.cf").write_text(
        f"smtp_tls_ciphers = {HOSTILE[1]} {HOSTILE[2]} {HOSTILE[3]}\nrelay_transport = relay{HOSTILE[7]}\n"
        f"smtp_dns_support_level = {HOSTILE[5]}\n"
    )
    out = tmp_path / "out"
    assert invoke("import", "postfix", tmp_path / "main.cf", "--out", out).exit_code == 0
    _loads_as_built(out / "topology.yaml", import_postfix(tmp_path / "main.cf").document)


def test_hostile_file_names_and_log_fields_stay_data(tmp_path):
    log = PostfixLog()
    log.message("A1000000001", "a@fabrikam.example", "mx1.fabrikam.example[203.0.113.10]:25")
    log.message("A1000000002", "b@evil.example", "evil:host[203.0.113.11]:25")  # not a host name: kept out
    name = tmp_path / "mail\nhosts: [{host: injected}].log"
    name.write_text(log.text())
    out = tmp_path / "out"
    assert invoke("import", "maillog", name, "--out", out).exit_code == 0
    remotes = yaml.safe_load((out / "remotes.yaml").read_text())
    assert set(remotes) == {"domains", "hosts"} and remotes["hosts"] == []
    assert sorted(h["host"] for d in remotes["domains"] for h in d["mx"]) == ["mx.evil.example", "mx1.fabrikam.example"]
    logs = ExchangeLogs()
    logs.session("Internet\n- x", "203.0.113.20", "mx.a.example", starttls=True, outcome="tls",
                 message_id="m@x", recipients=["a@a.example"])  # fmt: skip
    logs.event("SEND", "m@x", ["a@a.example"], "250 OK", **{"server-ip": "203.0.113.20",
               "server-hostname": "mx.a.example, \"x\": y", "connector-id": "Internet\n- x"})  # fmt: skip
    logs.write(tmp_path / "ex")
    out = tmp_path / "out2"
    assert invoke("import", "exchange-logs", tmp_path / "ex", "--out", out).exit_code == 0
    with (out / "observed.csv").open() as handle:
        [row] = list(csv.DictReader(handle))
    assert row["mx_hosts"] == 'mx.a.example, "x": y'  # quoted in the CSV, one field
    assert yaml.safe_load((out / "remotes.yaml").read_text())["domains"][0]["mx"][0]["host"] == "mx.a.example"


# ------------------------------------------------------------------ provenance


def test_every_imported_host_says_where_its_tls_came_from(tmp_path):
    log = PostfixLog()
    log.message("A1000000001", "a@seen.example", "mx.seen.example[203.0.113.10]:25", tls="Trusted")
    log.message("A1000000002", "b@anon.example", "mx.anon.example[203.0.113.11]:25", tls="Anonymous")
    (tmp_path / "mail.log").write_text(log.text())
    out = tmp_path / "out"
    assert invoke("import", "maillog", tmp_path / "mail.log", "--out", out).exit_code == 0
    hosts = {h["host"]: h for d in yaml.safe_load((out / "remotes.yaml").read_text())["domains"] for h in d["mx"]}
    assert hosts["mx.seen.example"]["provenance"] == {
        "source": "observed",
        "sessions": 1,
        "why": "TLS with a certificate the sender verified",
    }
    assert hosts["mx.anon.example"]["provenance"]["source"] == "assumed"
    assert "no certificate was checked" in hosts["mx.anon.example"]["provenance"]["why"]
    header = (out / "whatif.yaml").read_text()
    assert "Observed:" in header and "Assumed:" in header and "certificates of 1 domain(s)" in header


# ------------------------------------------------------------------ edited files and whole folders


def _postconf(tmp_path):
    (tmp_path / "main.cf").write_text("myhostname = mx.ours.example\nsmtp_tls_security_level = may\n")
    return tmp_path / "main.cf"


def test_a_file_edited_since_it_was_written_is_kept_without_force(tmp_path):
    out = tmp_path / "out"
    assert invoke("import", "postfix", _postconf(tmp_path), "--out", out).exit_code == 0
    assert invoke("import", "postfix", _postconf(tmp_path), "--out", out).exit_code == 0  # unchanged: fine
    edited = (out / "topology.yaml").read_text() + "# my own note\n"
    (out / "topology.yaml").write_text(edited)
    line = one_error_line(invoke("import", "postfix", _postconf(tmp_path), "--out", out))
    assert "topology.yaml" in line and "was edited since tlssim import wrote it" in line and "--force" in line
    assert (out / "topology.yaml").read_text() == edited
    assert invoke("import", "postfix", _postconf(tmp_path), "--out", out, "--force").exit_code == 0
    assert "# my own note" not in (out / "topology.yaml").read_text()


def test_a_file_the_user_wrote_is_not_replaced_and_other_files_are_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "topology.yaml").write_text("# written by hand\n")
    (out / "notes.txt").write_text("mine\n")
    line = one_error_line(invoke("import", "postfix", _postconf(tmp_path), "--out", out))
    assert "was not written by tlssim" in line
    (out / "topology.yaml").unlink()
    assert invoke("import", "postfix", _postconf(tmp_path), "--out", out).exit_code == 0
    assert (out / "notes.txt").read_text() == "mine\n"


def test_a_failure_part_way_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke("import", "postfix", _postconf(tmp_path), "--out", out).exit_code == 0
    before = (out / "topology.yaml").read_text()
    import sim.importers.output as output

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "topology.yaml"))

    monkeypatch.setattr(output, "_carry_over", broken)
    line = one_error_line(invoke("import", "postfix", _postconf(tmp_path), "--out", out, "--force"))
    assert "cannot write" in line and "No space left" in line
    assert (out / "topology.yaml").read_text() == before
    # No half-written folder left (the hidden lock file of one writer per folder stays).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "main.cf", "out"]


def test_out_naming_a_file_is_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    line = one_error_line(invoke("import", "postfix", _postconf(tmp_path), "--out", tmp_path / "file"))
    assert "is a file" in line


# --------------------------------------------------------------------------- issue 21: any string, any field


hostile_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
)


def _clixml_with(value: str) -> str:
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = "".join(c if c.isprintable() or c in "\t\n" else f"_x{ord(c):04X}_" for c in escaped)
    props = (
        f'<S N="Name">{escaped}</S><S N="Fqdn">{escaped}</S><S N="TlsDomain">{escaped}</S>'
        f'<Obj N="AddressSpaces" RefId="1"><LST><S>SMTP:*;1</S><S>SMTP:{escaped};1</S></LST></Obj>'
        f'<Obj N="SmartHosts" RefId="2"><LST><S>{escaped}</S></LST></Obj>'
    )
    return (
        f'<Objs Version="1.1.0.1" xmlns="{NS}"><Obj RefId="0"><TN RefId="0">'
        "<T>Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig</T></TN>"
        f"<Props>{props}</Props></Obj></Objs>"
    )


@pytest.mark.slow  # 200 examples through three importers: runs in CI (.ci/run)
@settings(max_examples=200, deadline=None)
@given(value=hostile_text)
def test_any_string_in_any_importer_field_never_changes_the_written_structure(tmp_path_factory, value):
    from sim.importers.tlsrpt_received import Report
    from sim.importers.tlsrpt_whatif import forecast

    folder = tmp_path_factory.mktemp("any")
    # Exchange: a connector's name, FQDN, TLS domain, an address space and a smart host.
    (folder / "send.xml").write_text(_clixml_with(value), encoding="utf-8")
    try:
        document = import_exchange([folder / "send.xml"]).document
    except ScenarioError:
        document = None  # refused with exit 2: fine, nothing written
    if document is not None:
        written = yaml.safe_load(yaml_text(document, [value, f"connector {value}"]))
        assert written == document
        assert set(written) <= {"organisation", "profile", "routing_groups", "servers", "connectors"}
    # Postfix: a parameter's value.
    (folder / "main.cf").write_text(f"relayhost = {value.splitlines()[0] if value.splitlines() else 'x'}\n")
    try:
        postfix = import_postfix(folder / "main.cf").document
        assert yaml.safe_load(yaml_text(postfix, [value])) == postfix
    except ScenarioError:
        pass
    # TLS-RPT: the organisation's name and contact, a failure's MX host.
    report = {
        "organization-name": value,
        "date-range": {"start-datetime": "2026-03-01T00:00:00Z"},
        "contact-info": value,
        "report-id": value,
        "policies": [
            {
                "policy": {"policy-type": "sts", "policy-domain": "contoso.com", "policy-string": [value]},
                "summary": {"total-successful-session-count": 3, "total-failure-session-count": 1},
                "failure-details": [
                    {"result-type": "validation-failure", "receiving-mx-hostname": value, "failed-session-count": 1}
                ],
            }
        ],
    }
    found = forecast([Report("r", report)], mx=["mx1.contoso.com"])
    whatif_keys = {"name", "topology", "remotes", "traffic", "run"}
    topology_keys = {"organisation", "profile", "routing_groups", "servers", "publishes"}
    for built, keys in ((found.whatif, whatif_keys), (found.topology, topology_keys)):
        written = yaml.safe_load(yaml_text(built, found.header, found.footer))
        assert written == built and set(written) == keys

"""Exchange importers on exports made here in the real formats (CLIXML, LDIF)."""

from __future__ import annotations

import base64

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario.model import Organisation

runner = CliRunner()
NS = "http://schemas.microsoft.com/powershell/2004/04"


def _send_connectors():
    """Get-SendConnector | Export-Clixml: two objects, the second with TNRef and a Ref."""
    return f"""<Objs Version="1.1.0.1" xmlns="{NS}">
  <Obj RefId="0">
    <TN RefId="0">
      <T>Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig</T>
      <T>Microsoft.Exchange.Data.Directory.ADConfigurationObject</T>
      <T>System.Object</T>
    </TN>
    <ToString>Internet</ToString>
    <Props>
      <S N="Name">Internet</S>
      <B N="Enabled">true</B>
      <Obj N="AddressSpaces" RefId="1">
        <TN RefId="1"><T>Microsoft.Exchange.Data.MultiValuedProperty`1[[Microsoft.Exchange.Data.AddressSpace]]</T></TN>
        <LST>
          <Obj RefId="2"><ToString>SMTP:*;1</ToString></Obj>
          <Obj RefId="3"><ToString>X400:c=US;a=;p=Contoso;10</ToString></Obj>
        </LST>
      </Obj>
      <B N="DNSRoutingEnabled">true</B>
      <Obj N="SmartHosts" RefId="4"><TN RefId="2"><T>MultiValuedProperty</T></TN><LST /></Obj>
      <Obj N="SourceTransportServers" RefId="5"><TNRef RefId="2" />
        <LST><Obj RefId="6"><ToString>EX2019A</ToString></Obj><Obj RefId="7"><ToString>EX2019B</ToString></Obj></LST>
      </Obj>
      <B N="RequireTLS">false</B>
      <Nil N="TlsAuthLevel" />
      <Nil N="TlsDomain" />
      <B N="IgnoreSTARTTLS">false</B>
      <B N="IsScopedConnector">false</B>
      <I32 N="Port">25</I32>
      <Nil N="Fqdn" />
    </Props>
  </Obj>
  <Obj RefId="8">
    <TNRef RefId="0" />
    <ToString>Partner TLS</ToString>
    <Props>
      <S N="Name">Partner TLS</S>
      <B N="Enabled">true</B>
      <Obj N="AddressSpaces" RefId="9"><TNRef RefId="1" />
        <LST><Obj RefId="10"><ToString>SMTP:woodgrovebank.com;5</ToString></Obj>
             <Obj RefId="11"><ToString>Local:SMTP:*.woodgrovebank.com;5</ToString></Obj></LST>
      </Obj>
      <B N="DNSRoutingEnabled">false</B>
      <Obj N="SmartHosts" RefId="12"><TNRef RefId="2" />
        <LST><Obj RefId="13"><ToString>[192.0.2.10]</ToString></Obj><Obj RefId="14"><ToString>relay.woodgrovebank.com</ToString></Obj></LST>
      </Obj>
      <Ref N="SourceTransportServers" RefId="5" />
      <B N="RequireTLS">true</B>
      <S N="TlsAuthLevel">CertificateValidation</S>
      <S N="TlsDomain">woodgrovebank.com</S>
      <B N="IgnoreSTARTTLS">false</B>
      <B N="IsScopedConnector">true</B>
      <I32 N="Port">587</I32>
    </Props>
  </Obj>
</Objs>
"""


def _transport_services():
    return f"""<Objs Version="1.1.0.1" xmlns="{NS}">
  <Obj RefId="0">
    <TN RefId="0"><T>Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServer</T></TN>
    <Props>
      <S N="Name">EX2019A</S>
      <Obj N="MessageExpirationTimeout" RefId="1"><ToString>2.00:00:00</ToString></Obj>
      <Obj N="DelayNotificationTimeout" RefId="2"><ToString>04:00:00</ToString></Obj>
      <I32 N="TransientFailureRetryCount">6</I32>
      <Obj N="TransientFailureRetryInterval" RefId="3"><ToString>00:05:00</ToString></Obj>
      <Obj N="OutboundConnectionFailureRetryInterval" RefId="4"><ToString>00:10:00</ToString></Obj>
      <Obj N="MessageRetryInterval" RefId="5"><ToString>00:15:00</ToString></Obj>
      <I32 N="MaxPerDomainOutboundConnections">40</I32>
      <I32 N="MaxOutboundConnections">1000</I32>
    </Props>
  </Obj>
</Objs>
"""


def _receive_connectors():
    return f"""<Objs Version="1.1.0.1" xmlns="{NS}">
  <Obj RefId="0">
    <TN RefId="0"><T>Microsoft.Exchange.Data.Directory.SystemConfiguration.ReceiveConnector</T></TN>
    <Props>
      <S N="Identity">EX2019A\\Default Frontend EX2019A</S>
      <Obj N="Bindings" RefId="1"><LST><S>[::]:25</S><S>0.0.0.0:25</S></LST></Obj>
      <B N="RequireTLS">true</B>
      <Obj N="AuthMechanism" RefId="2"><ToString>Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer</ToString></Obj>
      <Obj N="PermissionGroups" RefId="3"><ToString>AnonymousUsers, ExchangeServers, ExchangeLegacyServers</ToString></Obj>
    </Props>
  </Obj>
  <Obj RefId="4">
    <TNRef RefId="0" />
    <Props>
      <S N="Identity">EX2019A\\Client Frontend EX2019A</S>
      <Obj N="Bindings" RefId="5"><LST><S>[::]:587</S></LST></Obj>
      <B N="RequireTLS">true</B>
      <Obj N="AuthMechanism" RefId="6"><ToString>Tls, BasicAuth</ToString></Obj>
      <Obj N="PermissionGroups" RefId="7"><ToString>ExchangeUsers</ToString></Obj>
    </Props>
  </Obj>
</Objs>
"""


def test_import_exchange_reads_send_transport_and_receive_exports(tmp_path):
    files = []
    for name, text in (("send.xml", _send_connectors()), ("transport.xml", _transport_services()),
                       ("receive.xml", _receive_connectors())):  # fmt: skip
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    result = runner.invoke(app, ["import", "exchange", *map(str, files), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out/topology.yaml").read_text()
    document = yaml.safe_load(text)
    Organisation.model_validate(document)
    assert document["profile"] == "exchange2016"
    connectors = {c["name"]: c for c in document["connectors"]}
    internet, partner = connectors["Internet"], connectors["Partner-TLS"]
    assert internet["address_spaces"] == [{"pattern": "*", "cost": 1}]  # the X400 space skipped
    assert internet["source"] == ["EX2019A/default", "EX2019B/default"]
    assert partner["address_spaces"] == [
        {"pattern": "woodgrovebank.com", "cost": 5},
        {"pattern": "*.woodgrovebank.com", "cost": 5},
    ]
    assert partner["source"] == ["EX2019A/default", "EX2019B/default"]  # resolved through <Ref>
    assert (partner["require_tls"], partner["tls_auth_level"], partner["scope"]) == (
        True,
        "CertificateValidation",
        "routing_group",
    )
    assert partner["smart_hosts"] == ["192.0.2.10", "relay.woodgrovebank.com"]
    servers = {s["name"]: s["virtual_servers"][0] for s in document["servers"]}
    assert servers["EX2019A"]["delivery"] == {
        "expiration_timeout": 2 * 86400,
        "delay_notification": 4 * 3600,
        "transient_failure_retry_interval": 300,
        "outbound_connection_failure_retry_interval": 600,
        "transient_failure_retry_count": 6,
    }
    assert servers["EX2019A"]["max_connections_per_domain"] == 40
    assert servers["EX2019A"]["inbound"] == {"tls": "offered", "strength": 128, "require_secure_channel": True}
    assert "inbound" not in servers["EX2019B"]
    for note in ("X400:c=US", "TlsDomain = woodgrovebank.com", "Port = 587", "MessageRetryInterval = 00:15:00",
                 "Client Frontend EX2019A: not the anonymous port-25"):  # fmt: skip
        assert note in text, note


def test_a_broken_export_is_named_with_its_line(tmp_path):
    path = tmp_path / "send.xml"
    path.write_text(_send_connectors()[:900], encoding="utf-8")  # cut short
    result = runner.invoke(app, ["import", "exchange", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "send.xml: line " in (result.stderr or result.output)
    assert not (tmp_path / "out").exists()
    other = tmp_path / "other.xml"
    other.write_text("<html><body>not clixml</body></html>")
    result = runner.invoke(app, ["import", "exchange", str(other), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not an Export-Clixml file" in (result.stderr or result.output)


def _ldif():
    org = "CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=com"
    vs_dn = (
        f"CN=1,CN=SMTP,CN=Protocols,CN=EX2003,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,{org}"
    )
    note = base64.b64encode("Zürich relay".encode()).decode()
    # ldifde folds long lines at 78 columns with a leading space (RFC 2849).
    folded_dn = f"dn: {vs_dn}"
    folded = "\n ".join(folded_dn[i : i + 77] for i in range(0, len(folded_dn), 77))
    return f"""# ldifde -f smtp.ldf -r "(objectClass=protocolCfgSMTPServer)"
{folded}
changetype: add
objectClass: top
objectClass: protocolCfgSMTPServer
cn: 1
msExchSmtpOutboundSecurityFlag: 4
msExchSmtpRemoteQueueRetries: 10,10,30,120
msExchSmtpRemoteQueueDelayNotification: 720
msExchSmtpRemoteQueueExpirationTimeout: 2880
msExchSmtpMaxOutgoingConnections: 1000
msExchSmtpMaxOutgoingConnectionsPerDomain: 100

dn: CN=Internet,CN=Connections,CN=First Routing Group,CN=Routing Groups,CN=First Administrative Group,{org}
changetype: add
objectClass: top
objectClass: msExchRoutingSMTPConnector
cn: Internet
routingList: SMTP:*;1
routingList: X400:c=US;a=;p=Contoso;5
msExchSourceBridgeheadServersDN: {vs_dn}
msExchSmtpOutboundSecurityFlag: 0
description:: {note}

dn: CN=Relay,CN=Connections,CN=First Routing Group,CN=Routing Groups,CN=First Administrative Group,{org}
objectClass: msExchRoutingSMTPConnector
cn: Relay
routingList: SMTP:partner.example;10
msExchSourceBridgeheadServersDN: {vs_dn}
msExchSmtpSmartHost: [192.0.2.25];relay.partner.example
msExchSmtpOutboundSecurityFlag: 4
"""


def test_import_exchange2003_reads_an_ldifde_export(tmp_path):
    path = tmp_path / "smtp.ldf"
    path.write_text(_ldif(), encoding="utf-8")
    result = runner.invoke(app, ["import", "exchange2003", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    document = yaml.safe_load((tmp_path / "out/topology.yaml").read_text())
    Organisation.model_validate(document)
    [server] = document["servers"]
    vs = server["virtual_servers"][0]
    assert (server["name"], vs["name"], vs["outbound_tls"]) == ("EX2003", "vs1", "required")
    assert vs["delivery"] == {
        "first_retry": 600,
        "second_retry": 600,
        "third_retry": 1800,
        "subsequent_retry": 7200,
        "delay_notification": 720 * 60,
        "expiration_timeout": 2880 * 60,
    }
    connectors = {c["name"]: c for c in document["connectors"]}
    assert connectors["Internet"]["address_spaces"] == [{"pattern": "*", "cost": 1}]
    assert connectors["Internet"]["source"] == ["EX2003/vs1"]
    assert "tls" not in connectors["Internet"]
    relay = connectors["Relay"]
    assert (relay["tls"], relay["smart_hosts"]) == ("required", ["192.0.2.25", "relay.partner.example"])


def test_a_bad_ldif_line_is_named(tmp_path):
    path = tmp_path / "smtp.ldf"
    path.write_text(_ldif().replace("cn: Internet\n", "this line has no colon\n"), encoding="utf-8")
    result = runner.invoke(app, ["import", "exchange2003", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "smtp.ldf: line " in (result.stderr or result.output)


def _servers_and_transport():
    """Get-ExchangeServer (two builds, an Edge) and Get-TransportService with PowerShell's value forms."""
    return f"""\ufeff<Objs Version="1.1.0.1" xmlns="{NS}">
  <Obj RefId="0">
    <TN RefId="0"><T>Microsoft.Exchange.Data.Directory.Management.ExchangeServer</T></TN>
    <Props><S N="Name">EX2019A</S><S N="AdminDisplayVersion">Version 15.2 (Build 1544.4)</S>
      <S N="ServerRole">Mailbox</S></Props>
  </Obj>
  <Obj RefId="1"><TNRef RefId="0" />
    <Props><S N="Name">EX2016</S><S N="AdminDisplayVersion">Version 15.1 (Build 2507.6)</S>
      <S N="ServerRole">Mailbox</S></Props>
  </Obj>
  <Obj RefId="2"><TNRef RefId="0" />
    <Props><S N="Name">EDGE1</S><S N="AdminDisplayVersion">Version 15.2 (Build 2562.17)</S>
      <S N="ServerRole">Edge</S></Props>
  </Obj>
  <Obj RefId="3">
    <TN RefId="1"><T>Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServer</T></TN>
    <Props>
      <S N="Name">EX2019A</S>
      <Obj N="MessageExpirationTimeout" RefId="4"><ToString>7.00:00:00</ToString></Obj>
      <Obj N="MaxOutboundConnections" RefId="5"><ToString>Unlimited</ToString></Obj>
      <Obj N="MaxMessageSize" RefId="7"><ToString>35 MB (36,700,160 bytes)</ToString></Obj>
    </Props>
  </Obj>
  <Obj RefId="9">
    <TN RefId="2"><T>Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomain</T></TN>
    <Props><Obj N="DomainName" RefId="10"><ToString>contoso.com</ToString></Obj></Props>
  </Obj>
</Objs>
"""


def test_server_builds_choose_profiles_and_powershell_values_are_read(tmp_path):
    path = tmp_path / "servers.xml"
    path.write_bytes(_servers_and_transport().encode("utf-8"))  # with the BOM, as Export-Clixml writes
    result = runner.invoke(app, ["import", "exchange", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out/topology.yaml").read_text()
    document = yaml.safe_load(text)
    Organisation.model_validate(document)
    assert document["profile"] == "exchange2019" and document["accepted_domains"] == ["contoso.com"]
    servers = {s["name"]: s for s in document["servers"]}
    assert servers["EX2016"]["profile"] == "exchange2016" and servers["EDGE1"]["profile"] == "exchange2016-edge"
    assert "profile" not in servers["EX2019A"]
    vs = servers["EX2019A"]["virtual_servers"][0]
    assert vs["delivery"] == {"expiration_timeout": 7 * 86400}
    assert vs["max_connections"] == 100_000 and "max_connections_per_domain" not in vs
    assert "Exchange SE (15.2.2562)" in text and "Unlimited (modelled as 100,000)" in text


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("MaxPerDomainOutboundConnections", "²0", "not a count"),
        ("MaxOutboundConnections", "9" * 5000, "not a count"),
        ("DelayNotificationTimeout", "٤:00:00", "not a time span"),
        ("TransientFailureRetryCount", "-1", "not a count from 0 to 15"),
    ],
)
def test_numbers_in_an_export_are_ascii_digits_within_bounds(tmp_path, field, value, problem):
    path = tmp_path / "transport.xml"
    path.write_text(_servers_and_transport().replace(
        '<Obj N="MaxMessageSize"', f'<Obj N="{field}" RefId="20"><ToString>{value}</ToString></Obj><Obj N="MaxMessageSize"'
    ))  # fmt: skip
    result = runner.invoke(app, ["import", "exchange", str(path), "--out", str(tmp_path / "out")])
    line = (result.stderr or result.output).strip()
    assert result.exit_code == 2 and f"transport.xml: EX2019A: {field}" in line and problem in line


def test_numbers_in_an_ldif_export_are_ascii_digits_within_bounds(tmp_path):
    path = tmp_path / "smtp.ldf"
    path.write_text(_ldif().replace("msExchSmtpMaxOutgoingConnections: 1000", "msExchSmtpMaxOutgoingConnections: ²"))
    result = runner.invoke(app, ["import", "exchange2003", str(path), "--out", str(tmp_path / "out")])
    line = (result.stderr or result.output).strip()
    assert result.exit_code == 2 and "smtp.ldf: line 2: msExchSmtpMaxOutgoingConnections" in line  # the entry's line


@pytest.mark.parametrize("depth", [200, 100_000])
def test_an_export_nested_too_deep_is_exit_2(tmp_path, depth):
    deep = '<Obj N="x">' + "<LST><Obj>" * depth + "</Obj></LST>" * depth + "</Obj>"
    path = tmp_path / "deep.xml"
    path.write_text(f'<Objs xmlns="{NS}"><Obj RefId="0"><Props>{deep}</Props></Obj></Objs>')
    result = runner.invoke(app, ["import", "exchange", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "nested deeper than 64 levels" in (result.stderr or result.output)


def test_ldif_base64_values_folded_over_lines_decode_whole(tmp_path):
    host = "smarthost.relay.partner.example"
    encoded = base64.b64encode(f"[192.0.2.25];{host}".encode()).decode()
    folded = "\n ".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))  # wrapped as ldifde wraps
    text = _ldif().replace("msExchSmtpSmartHost: [192.0.2.25];relay.partner.example", f"msExchSmtpSmartHost:: {folded}")
    (tmp_path / "smtp.ldf").write_text(text)
    result = runner.invoke(app, ["import", "exchange2003", str(tmp_path / "smtp.ldf"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    connectors = {c["name"]: c for c in yaml.safe_load((tmp_path / "o/topology.yaml").read_text())["connectors"]}
    assert connectors["Relay"]["smart_hosts"] == ["192.0.2.25", host]


def test_a_value_folded_over_many_lines_reads_in_linear_time(tmp_path):
    """A 4 MB description folded at 76 columns (38 s when each fold copied the value so far)."""
    from sim.importers.exchange2003 import read_ldif

    value = base64.b64encode(b"x" * 3_000_000).decode()
    folded = "\n ".join(value[i : i + 75] for i in range(0, len(value), 75))
    (tmp_path / "big.ldf").write_text(f"dn: CN=big\ndescription:: {folded}\n")
    [(_, entry)] = read_ldif(tmp_path / "big.ldf")
    assert len(entry["description"][0]) == 3_000_000


def test_an_export_windows_powershell_wrote_in_utf16_is_read(tmp_path):
    path = tmp_path / "servers.xml"
    path.write_bytes(_servers_and_transport().removeprefix("\ufeff").encode("utf-16"))  # Export-Clixml's default in 5.1
    result = runner.invoke(app, ["import", "exchange", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "out/topology.yaml").read_text())["profile"] == "exchange2019"

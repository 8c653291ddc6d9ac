"""The probe against real SMTP servers on loopback (aiosmtpd, trustme), offline.

Every host name resolves through an injected resolver to 127.0.0.1 and the fixture's
port: no test touches the network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
import threading
import time
import warnings

import pytest
import trustme
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sim.probe.run import probe_domains
from sim.scenario.model import Remotes

logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd logs failed handshakes


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _context(cert, key, *, tls10_only=False):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context) if key is None else context.load_cert_chain(cert, key)
    if tls10_only:  # an Exchange 2003-era server; Python warns that TLSv1 is deprecated
        context.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    return context


def _self_signed(tmp_path, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class RawServer:
    """A hostile SMTP server on a thread: ``script(reader, writer)`` plays it."""

    def __init__(self, script):
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.script = script
        started = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        started.wait(5)

    async def _client(self, reader, writer):
        try:
            await self.script(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self):
        async def shutdown():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _slow_banner(reader, writer):
    for byte in b"220 slow.example ESMTP\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1.0)


async def _huge_ehlo(reader, writer):
    writer.write(b"220 huge.example ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-huge.example\r\n" + b"250-X-PADDING\r\n" * 100_000 + b"250 STARTTLS\r\n")
    await writer.drain()


async def _garbage_after_starttls(reader, writer):
    writer.write(b"220 broken.example ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-broken.example\r\n250 STARTTLS\r\n")
    await reader.readline()
    writer.write(b"220 go ahead\r\n")
    await writer.drain()
    await reader.read(1)
    writer.write(b"this is not a TLS server hello\r\n" * 4)
    await writer.drain()


class FakeResolver:
    def __init__(self, ports, records=None):
        self.ports = ports  # MX host -> port
        self.records = records or {}

    async def mx(self, domain):
        return [(10, f"mx.{domain}")] if f"mx.{domain}" in self.ports else []

    async def addresses(self, host):
        return [("127.0.0.1", self.ports[host])] if host in self.ports else []

    async def txt(self, name):
        return self.records.get(("txt", name), [])

    async def tlsa(self, name):
        return self.records.get(("tlsa", name), ([], False))

    async def sts_policy(self, domain):
        return self.records.get(("sts", domain))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    cafile = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    other_ca = trustme.CA()
    contexts = {
        "good": _context(ca.issue_cert("mx.good.example"), None),
        "selfsigned": _context(*_self_signed(tmp, "mx.selfsigned.example")),
        "expired": _context(
            ca.issue_cert("mx.expired.example", not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)), None
        ),
        "wrongname": _context(ca.issue_cert("mail.elsewhere.example"), None),
        "untrusted": _context(other_ca.issue_cert("mx.untrusted.example"), None),
        "tls10": _context(ca.issue_cert("mx.tls10.example"), None, tls10_only=True),
        "requires": _context(ca.issue_cert("mx.requires.example"), None),
    }
    controllers, ports = [], {}
    for name, context in contexts.items():
        port = _free_port()
        controller = Controller(
            Sink(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=name == "requires"
        )
        controller.start()
        controllers.append(controller)
        ports[f"mx.{name}.example"] = port
    plain = Controller(Sink(), hostname="127.0.0.1", port=_free_port())
    plain.start()
    controllers.append(plain)
    ports["mx.plain.example"] = plain.port
    raw = {"slow": RawServer(_slow_banner), "huge": RawServer(_huge_ehlo), "broken": RawServer(_garbage_after_starttls)}
    ports.update({f"mx.{name}.example": server.port for name, server in raw.items()})
    yield ports, str(cafile)
    for controller in controllers:
        controller.stop()
    for server in raw.values():
        server.stop()


def _probe(servers, *domains, records=None, deadline=4.0):
    result = _run_probe(servers, *domains, records=records, deadline=deadline)
    return result.document, result.notes


def _run_probe(servers, *domains, records=None, deadline=4.0, resolver=None, max_mx=5):
    ports, cafile = servers
    resolver = resolver or FakeResolver(ports, records)
    return asyncio.run(
        probe_domains(list(domains), resolver, deadline=deadline, concurrency=4, cafile=cafile, max_mx=max_mx)
    )


def _hosts(document):
    return {d["name"]: d["mx"][0] for d in document["domains"]}


def test_every_certificate_kind_is_told_apart(servers):
    names = ["good", "selfsigned", "expired", "wrongname", "untrusted", "plain", "broken", "tls10", "requires"]
    document, notes = _probe(servers, *(f"{n}.example" for n in names))
    Remotes.model_validate(document)  # what the probe writes loads
    hosts = _hosts(document)
    assert {name: hosts[f"{name}.example"]["tls"] for name in names} == {
        "good": "trusted",
        "selfsigned": "self-signed",
        "expired": "expired",
        "wrongname": "name-mismatch",
        "untrusted": "untrusted",
        "plain": "none",
        "broken": "handshake-fails",
        "tls10": "trusted",
        "requires": "trusted",  # refusing plaintext needs MAIL FROM, which the probe never sends
    }
    assert hosts["tls10.example"]["tls_versions"] == ["1.0", "1.0"]
    assert hosts["good.example"]["tls_versions"][1] in ("1.2", "1.3")
    assert "certificate_expires_in" in hosts["good.example"]
    expired = next(n for n in notes if n.startswith("mx.expired.example"))
    assert "faults: expired" in expired and "not after 2020-01-01" in expired
    assert all("not tested" in n for n in notes if n.startswith("mx.requires.example"))


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_hostile_servers_are_bounded_by_one_deadline(servers):
    started = time.monotonic()
    _, notes = _probe(servers, "slow.example", "huge.example", deadline=2.0)
    assert time.monotonic() - started < 6
    slow = next(n for n in notes if n.startswith("mx.slow.example"))
    huge = next(n for n in notes if n.startswith("mx.huge.example"))
    assert "deadline 2s exceeded" in slow
    assert "reply too long" in huge
    # A host the probe could not read is unknown: left out, never written as a TLS class.
    assert any("TLS unknown" in n and "left out" in n for n in notes)


def test_mta_sts_dane_and_tls_rpt_records_are_read(servers):
    records = {
        ("txt", "_mta-sts.good.example"): ["v=STSv1; id=20260101T000000;"],
        ("sts", "good.example"): "version: STSv1\nmode: enforce\nmx: mx.good.example\nmax_age: 604800\n",
        ("txt", "_smtp._tls.good.example"): ["v=TLSRPTv1; rua=mailto:tlsrpt@good.example"],
        ("tlsa", "_25._tcp.mx.good.example"): (["3 1 1 AB12"], True),
        ("txt", "_mta-sts.plain.example"): ["v=STSv1; id=1;"],  # policy host unreachable
    }
    document, _ = _probe(servers, "good.example", "plain.example", records=records)
    domains = {d["name"]: d for d in document["domains"]}
    good = domains["good.example"]
    assert good["mta_sts"] == {"mode": "enforce", "mx": ["mx.good.example"], "max_age": "604800s"}
    assert good["tls_rpt"] == "mailto:tlsrpt@good.example"
    assert good["dnssec"] == "secure" and good["mx"][0]["tlsa"] == "match"
    assert domains["plain.example"]["mta_sts"]["policy_host"] == "unreachable"
    Remotes.model_validate(document)


def test_probe_cli_refuses_bad_input_without_touching_the_network(tmp_path):
    from typer.testing import CliRunner

    from sim.cli import app

    runner = CliRunner()
    for args, expected in (
        (["probe", "not a domain"], "not a domain name"),
        (["probe", "example.com", "--timeout", "soon"], "--timeout"),
        (["probe"], "no domains given"),
        (["probe", "--file", str(tmp_path / "none.txt")], "file not found"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert expected in (result.stderr or result.output)


# --------------------------------------------------------------------------- issue 21: per domain, bounded


class FaultyResolver(FakeResolver):
    """The fixture's resolver, with faults: a SERVFAIL for some domains, 200 MX hosts or
    a policy host that never answers for others."""

    async def mx(self, domain):
        if domain == "servfail.example":
            raise RuntimeError("All nameservers failed to answer the query servfail.example. IN MX: SERVFAIL")
        if domain == "many.example":
            return [(i, f"mx{i}.many.example") for i in range(200)]
        if domain == "down.example":
            return [(10, "mx.down.example")]
        return await super().mx(domain)

    async def addresses(self, host):
        if host.endswith(".many.example"):
            return [("127.0.0.1", self.ports["mx.plain.example"])]
        if host == "mx.down.example":
            return [("127.0.0.1", _free_port())]  # nothing listens there
        return await super().addresses(host)

    async def sts_policy(self, domain):
        if domain == "stalled.example":
            await asyncio.sleep(3600)  # a policy host that sends nothing: the deadline ends it
        return await super().sts_policy(domain)


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_one_domain_failing_never_stops_the_others_and_each_has_its_record(servers):
    ports, _ = servers
    ports = {**ports, "mx.stalled.example": ports["mx.good.example"], "mx.badpolicy.example": ports["mx.good.example"]}
    records = {
        ("txt", "_mta-sts.stalled.example"): ["v=STSv1; id=1;"],
        ("txt", "_mta-sts.badpolicy.example"): ["v=STSv1; id=1;"],
        ("sts", "badpolicy.example"): "version: STSv1\nmode: enforce\nmx: *.*.bad\nmax_age: 99999999999\n",
        ("txt", "_mta-sts.good.example"): ["v=STSv1; id=1;"],
        ("sts", "good.example"): "version: STSv1\nmode: enforce\nmx: mx.good.example\nmax_age: 99999999999\n",
    }
    resolver = FaultyResolver(ports, records)
    started = time.monotonic()
    result = _run_probe(
        (ports, servers[1]),
        "good.example", "servfail.example", "down.example", "stalled.example", "badpolicy.example", "many.example",
        resolver=resolver, deadline=2.0,
    )  # fmt: skip
    assert time.monotonic() - started < 12  # 200 MX hosts and a stalled policy host, each bounded
    status = {r.name: r.status for r in result.records}
    assert status == {
        "good.example": "probed",
        "servfail.example": "dns-failed",
        "down.example": "unreachable",
        "stalled.example": "probed",
        "badpolicy.example": "policy-invalid",
        "many.example": "probed",
    }
    rows = {row["domain"]: row for row in result.rows()}
    assert "SERVFAIL" in rows["servfail.example"]["evidence"]
    assert len(rows["many.example"]["probed"].split()) == 5 and len(rows["many.example"]["not_probed"].split()) == 195
    domains = {d["name"]: d for d in result.document["domains"]}
    assert "down.example" not in domains  # never a guessed tls: trusted
    assert domains["stalled.example"]["mta_sts"]["policy_host"] == "unreachable"
    assert domains["badpolicy.example"]["mta_sts"]["policy_host"] == "broken"
    assert domains["good.example"]["mta_sts"]["max_age"] == "31557600s"  # clamped to a year
    assert len(domains["many.example"]["mx"]) == 5
    Remotes.model_validate(result.document)


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_the_policy_fetch_is_cancellable_and_its_body_capped(tmp_path):
    from sim.probe.dns import fetch_policy

    async def silent(reader, writer):  # accepts, then never speaks TLS
        await asyncio.sleep(3600)

    async def scenario():
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await fetch_policy("mta-sts.silent.example", port, address="127.0.0.1")
        elapsed = time.monotonic() - started
        server.close()
        return elapsed

    assert asyncio.run(scenario()) < 2.5

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mta-sts.good.example").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    def serving(body):
        async def handler(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
            await writer.drain()
            writer.close()

        return handler

    async def fetch(body):
        server = await asyncio.start_server(serving(body), "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        try:
            return await fetch_policy("mta-sts.good.example", port, client_context, address="127.0.0.1")
        finally:
            server.close()

    policy = b"version: STSv1\r\nmode: enforce\r\nmx: mx.good.example\r\nmax_age: 86400\r\n"
    assert asyncio.run(fetch(policy)) == policy.decode()
    assert asyncio.run(fetch(b"x" * (64 * 1024 + 1))) is None  # RFC 8461 s.3.3: 64 KB at most


def test_probe_exits_2_and_writes_no_remote_world_when_no_domain_could_be_probed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sim.cli import app

    class Nothing(FakeResolver):
        async def mx(self, domain):
            raise TimeoutError  # as dnspython's lifetime runs out

    monkeypatch.setattr("sim.probe.dns.DnsResolver", lambda timeout: Nothing({}))
    out = tmp_path / "remotes.yaml"
    result = CliRunner().invoke(app, ["probe", "a.example", "b.example", "--timeout", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "no domain could be probed (2 dns-failed)" in result.output
    assert not out.exists()
    rows = (tmp_path / "remotes-status.csv").read_text().splitlines()
    assert rows[0] == "domain,status,evidence,probed,not_probed" and len(rows) == 3
    assert all(",dns-failed," in row for row in rows[1:])

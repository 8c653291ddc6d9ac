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
    ports, cafile = servers
    resolver = FakeResolver(ports, records)
    return asyncio.run(probe_domains(list(domains), resolver, deadline=deadline, concurrency=4, cafile=cafile))


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
    assert any("could not tell" in n for n in notes)


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

"""Cross-check: the engine's handshake rules against real TLS handshakes.

For every cell of a matrix of modern settings, two Python ``ssl`` contexts perform an
in-memory handshake (``ssl.MemoryBIO``, no sockets) with certificates made by
``sim.pki``, and the engine's ``handshake`` must predict the same outcome: failure, or
success with or without a verified server certificate.
"""

from __future__ import annotations

import datetime as dt
import itertools
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sim.pki.certs import Identity, issue, make_authority, save_key, self_signed
from sim.tls.handshake import ClientSide, ServerSide, handshake

HOST = "mx.example.test"
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
RANGES = [("1.2", "1.2"), ("1.2", "1.3"), ("1.3", "1.3")]


@pytest.fixture(scope="module")
def pki():
    root = make_authority("Test Root", NOW - 3650 * DAY, NOW + 3650 * DAY)
    issuing = make_authority("Test Issuing CA", NOW - 365 * DAY, NOW + 1825 * DAY, parent=root)
    return {
        "root": root,
        "servers": {
            "trusted": issue(issuing, [HOST], NOW - 30 * DAY, NOW + 300 * DAY),
            "self-signed": self_signed([HOST], NOW - 30 * DAY, NOW + 300 * DAY),
            "expired": issue(issuing, [HOST], NOW - 400 * DAY, NOW - DAY),
            "wrong-name": issue(issuing, ["other.example.test"], NOW - 30 * DAY, NOW + 300 * DAY),
        },
        "clients": {
            "none": None,
            "valid": issue(issuing, ["client.example.test"], NOW - 30 * DAY, NOW + 300 * DAY),
            "self-signed": self_signed(["client.example.test"], NOW - 30 * DAY, NOW + 300 * DAY),
        },
    }


def _files(identity: Identity, folder: Path, name: str) -> tuple[str, str]:
    pem = serialization.Encoding.PEM
    chain = b"".join(c.public_bytes(pem) for c in (identity.certificate, *identity.chain))
    cert = folder / f"{name}.crt"
    cert.write_bytes(chain)
    assert identity.key is not None
    key = save_key(identity.key, folder / f"{name}.key")
    return str(cert), str(key)


def real_handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> bool:
    """True if both sides complete the handshake and can exchange a byte each way."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)

    def pump() -> None:
        if c_out.pending:
            s_in.write(c_out.read())
        if s_out.pending:
            c_in.write(s_out.read())

    done = {"client": False, "server": False}
    try:
        for _ in range(50):
            for side, conn in (("client", client), ("server", server)):
                if not done[side]:
                    try:
                        conn.do_handshake()
                        done[side] = True
                    except ssl.SSLWantReadError:
                        pass
            pump()
            if all(done.values()) and not c_out.pending and not s_out.pending:
                break
        # TLS 1.3 servers check client certificates after the client has finished:
        # application data in both directions surfaces a late rejection.
        for writer, reader in ((client, server), (server, client)):
            writer.write(b"x")
            pump()
            for _ in range(5):
                try:
                    if reader.read(1) == b"x":
                        break
                except ssl.SSLWantReadError:
                    pump()
            else:
                return False
            pump()
    except (ssl.SSLError, ssl.SSLEOFError):
        return False
    return all(done.values())


CELLS = list(
    itertools.product(
        ["trusted", "self-signed", "expired", "wrong-name"],  # server certificate
        [True, False],  # client verifies
        ["ignore", "reject-self-signed", "require-valid"],  # server's client-certificate policy
        ["none", "valid", "self-signed"],  # client certificate presented
        RANGES,  # client versions
        RANGES,  # server versions
    )
)


@pytest.mark.slow
def test_engine_predicts_every_real_handshake(pki, tmp_path):
    root_file = tmp_path / "root.pem"
    root_file.write_bytes(pki["root"].certificate.public_bytes(serialization.Encoding.PEM))
    roots = (pki["root"].certificate,)
    mismatches = []
    real_successes = 0
    for server_cert, verify, policy, client_cert, client_versions, server_versions in CELLS:
        server_identity = pki["servers"][server_cert]
        client_identity = pki["clients"][client_cert]

        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(*_files(server_identity, tmp_path, f"server-{server_cert}"))
        server_ctx.minimum_version, server_ctx.maximum_version = (VERSIONS[v] for v in server_versions)
        if policy != "ignore":
            server_ctx.load_verify_locations(cafile=str(root_file))
            server_ctx.verify_mode = ssl.CERT_REQUIRED if policy == "require-valid" else ssl.CERT_OPTIONAL

        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.minimum_version, client_ctx.maximum_version = (VERSIONS[v] for v in client_versions)
        if verify:
            client_ctx.load_verify_locations(cafile=str(root_file))
        else:
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
        if client_identity is not None:
            client_ctx.load_cert_chain(*_files(client_identity, tmp_path, f"client-{client_cert}"))

        real = real_handshake(client_ctx, server_ctx)
        real_successes += real
        predicted = handshake(
            ClientSide(verify, client_versions, client_identity, roots),
            ServerSide(server_identity, server_versions, policy, roots),
            HOST,
            NOW,
        )
        if real != predicted.delivers:
            mismatches.append(
                (server_cert, verify, policy, client_cert, client_versions, server_versions, real, predicted)
            )
    assert not mismatches, mismatches[:5]
    assert len(CELLS) == 648
    assert 0 < real_successes < len(CELLS)  # real handshakes both succeed and fail across the matrix
    print(f"{real_successes} of {len(CELLS)} real handshakes succeeded; the engine predicted every one")


def test_the_matrix_is_not_trivial(pki):
    roots = (pki["root"].certificate,)
    outcomes = {
        handshake(
            ClientSide(v, cv, pki["clients"][c], roots), ServerSide(pki["servers"][s], sv, p, roots), HOST, NOW
        ).delivers
        for s, v, p, c, cv, sv in CELLS
    }
    assert outcomes == {True, False}

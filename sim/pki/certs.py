"""Make, save, load and describe X.509 certificates with ``cryptography``.

Keys are EC P-256 by default: generating one takes well under a millisecond, where an
RSA-2048 key takes tens of milliseconds; RSA is there when a scenario asks for it.
Certificates carry the extensions the WebPKI profile expects (basic constraints, key
usage, extended key usage, subject and authority key identifiers, SANs), so that the
same files validate identically in ``cryptography`` and in OpenSSL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["ec", "rsa-2048", "rsa-3072", "rsa-4096"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateFileError(ValueError):
    """A file that is not a certificate in PEM or DER form."""


@dataclass(frozen=True, eq=False)
class Identity:
    """A certificate, its private key (if we made it) and the intermediates above it."""

    certificate: x509.Certificate
    key: PrivateKey | None = None
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()


def derived_key(seed: bytes, kind: KeyKind = "ec") -> PrivateKey:
    """A key pair that is a function of ``seed``: the same on every run and machine, so
    what is published from it (a TLSA record's digest) is reproducible."""
    stream = random.Random(hashlib.sha256(b"tlssim key " + seed).digest())
    if kind == "ec":
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 (SEC 2)
        return ec.derive_private_key(stream.randrange(1, order), ec.SECP256R1())
    bits = int(kind.split("-")[1])
    exponent = 65537
    while True:
        p, q = _prime(bits // 2, stream), _prime(bits - bits // 2, stream)
        phi = (p - 1) * (q - 1)
        if p != q and math.gcd(exponent, phi) == 1 and (p * q).bit_length() == bits:
            break
    d = pow(exponent, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(exponent, p * q)
    )
    return numbers.private_key()


def _prime(bits: int, stream: random.Random) -> int:
    while True:
        candidate = stream.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probably_prime(candidate, stream):
            return candidate


def _probably_prime(n: int, stream: random.Random, rounds: int = 40) -> bool:
    """Miller-Rabin (error below 4**-40 for 40 rounds)."""
    for small in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(stream.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def make_key(kind: KeyKind = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.split("-")[1]))


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _serial(*parts: object) -> int:
    # Deterministic serials: the same request gives the same serial (reproducible files).
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:16], "big") >> 1


def make_authority(
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    parent: Identity | None = None,
    key_kind: KeyKind = "ec",
) -> Identity:
    """A root CA (no ``parent``) or an intermediate CA signed by ``parent``."""
    key = make_key(key_kind)
    subject = _name(common_name, "tlssim")
    issuer = parent.certificate.subject if parent else subject
    signer = parent.key if parent else key
    assert signer is not None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(_serial(common_name, not_before, not_after))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if parent is not None:
        builder = builder.add_extension(_aki(parent), critical=False)
    certificate = builder.sign(signer, hashes.SHA256())
    chain = _chain_below(parent) if parent is not None else ()
    return Identity(certificate, key, chain)


def issue(
    authority: Identity,
    names: list[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    key_kind: KeyKind = "ec",
    key: PrivateKey | None = None,
) -> Identity:
    """A leaf certificate for ``names`` (SANs; the first is also the CN), for server and
    client use; with a new key unless ``key`` (a renewal that keeps its key) is given."""
    key = key or make_key(key_kind)
    assert authority.key is not None
    certificate = (
        _leaf_builder(names, key, not_before, not_after)
        .issuer_name(authority.certificate.subject)
        .add_extension(_aki(authority), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    return Identity(certificate, key, _chain_below(authority))


def self_signed(
    names: list[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    key_kind: KeyKind = "ec",
    key: PrivateKey | None = None,
) -> Identity:
    """A leaf that signs itself, as IIS and many MTAs generate by default."""
    key = key or make_key(key_kind)
    certificate = (
        _leaf_builder(names, key, not_before, not_after).issuer_name(_name(names[0])).sign(key, hashes.SHA256())
    )
    return Identity(certificate, key)


def _leaf_builder(
    names: list[str], key: PrivateKey, not_before: dt.datetime, not_after: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .public_key(key.public_key())
        .serial_number(_serial(tuple(names), not_before, not_after))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey)), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(
    *, digital_signature: bool = False, key_encipherment: bool = False, key_cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _aki(authority: Identity) -> x509.AuthorityKeyIdentifier:
    ski = authority.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _is_root(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


def _chain_below(authority: Identity) -> tuple[x509.Certificate, ...]:
    """The intermediates a certificate issued by ``authority`` is sent with (never the root)."""
    if _is_root(authority.certificate):
        return ()
    return (authority.certificate, *authority.chain)


def is_self_signed(certificate: x509.Certificate) -> bool:
    """Issued by itself and verifiable with its own key."""
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# -- files -----------------------------------------------------------------------------------


def save_certificate(certificate: x509.Certificate, path: str | Path, *, pem: bool | None = None) -> Path:
    """Write ``certificate`` as PEM or DER; by default PEM for a ``.pem`` name, else DER."""
    path = Path(path)
    if pem is None:
        pem = path.suffix.lower() == ".pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER))
    return path


def save_key(key: PrivateKey, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def load_certificate(path: str | Path) -> x509.Certificate:
    """Read one certificate in PEM or DER form, whatever the file is called."""
    data = Path(path).read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateFileError("not an X.509 certificate in PEM or DER form") from exc


def dns_names(certificate: x509.Certificate) -> list[str]:
    """The certificate's DNS subject alternative names."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(sans.get_values_for_type(x509.DNSName))


def describe(certificate: x509.Certificate) -> dict[str, object]:
    """What an architect wants to know of a certificate, as plain data."""
    names = dns_names(certificate)
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_type, key_size = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, key_size = f"EC {key.curve.name}", key.curve.key_size
    else:
        key_type, key_size = type(key).__name__, 0
    return {
        "subject": certificate.subject.rfc4514_string(),
        "subject_alternative_names": names,
        "issuer": certificate.issuer.rfc4514_string(),
        "self_signed": is_self_signed(certificate),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "key_type": key_type,
        "key_size": key_size,
        "serial_number": format(certificate.serial_number, "x"),
        "sha256_fingerprint": certificate.fingerprint(hashes.SHA256()).hex(),
    }


def tlsa_digest(holder: x509.Certificate | PrivateKey) -> str:
    """The ``1 1`` TLSA association data of a certificate or a key pair: SHA-256 of the
    SubjectPublicKeyInfo (RFC 6698 s.2.1.2-2.1.3; what ``3 1 1`` and ``2 1 1`` publish)."""
    spki = holder.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()

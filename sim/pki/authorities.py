"""The certificates of one simulated world: who issued what, valid when, trusted by whom.

Four roots stand for the trust relations a mail architect meets: ``public`` (a
commercial CA every MTA trusts, with an issuing intermediate), ``enterprise`` and
``standalone`` (our own Windows CAs: trusted by us, not by the Internet), and
``untrusted`` (a private root nobody has). Remote hosts' certificates follow their
``tls`` label; our virtual servers' follow their ``certificate`` setting. Everything is
generated once per (run start, host or server spec) and cached, so runs and sweeps do
not regenerate keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from cryptography import x509

from sim.pki.certs import (
    Identity,
    KeyKind,
    PrivateKey,
    derived_key,
    dns_names,
    issue,
    load_certificate,
    make_authority,
    self_signed,
    tlsa_digest,
)
from sim.vocabulary import ServerTls

YEAR = dt.timedelta(days=365)


@dataclass(frozen=True, eq=False)
class Roots:
    public: Identity
    public_issuing: Identity
    enterprise: Identity
    standalone: Identity
    untrusted: Identity

    def trusted(self, names: Sequence[str]) -> tuple[x509.Certificate, ...]:
        return tuple(getattr(self, name).certificate for name in names)


@lru_cache(maxsize=8)
def roots(start: dt.datetime) -> Roots:
    """The world's certificate authorities, valid long before and after ``start``."""
    early, late = start - 10 * YEAR, start + 20 * YEAR
    public = make_authority("tlssim Public Root CA", early, late)
    return Roots(
        public=public,
        public_issuing=make_authority("tlssim Public Issuing CA", early, late, parent=public),
        enterprise=make_authority("Contoso Enterprise Root CA", early, late),
        standalone=make_authority("Contoso Standalone Root CA", early, late),
        untrusted=make_authority("Unknown Private Root CA", early, late),
    )


@lru_cache(maxsize=65536)
def remote_certificate(host: str, label: ServerTls, start: dt.datetime, expires_in: float | None) -> Identity:
    """A remote host's certificate, as its ``tls`` label describes it."""
    world = roots(start)
    issued = start - 90 * dt.timedelta(days=1)
    until = start + (dt.timedelta(seconds=expires_in) if expires_in is not None else YEAR)
    if label is ServerTls.SELF_SIGNED:
        return self_signed([host], issued, until)
    if label is ServerTls.EXPIRED:
        return issue(world.public_issuing, [host], start - 2 * YEAR, start - 10 * dt.timedelta(days=1))
    if label is ServerTls.NAME_MISMATCH:
        return issue(world.public_issuing, [f"another-name.{host}"], issued, until)
    if label is ServerTls.UNTRUSTED:
        return issue(world.untrusted, [host], issued, until)
    return issue(world.public_issuing, [host], issued, until)


@dataclass(frozen=True, eq=False)
class ServerCertificate:
    """Our virtual server's certificate and the simulated time from which it is installed."""

    identity: Identity
    available_from: float  # seconds after the run's start (a standalone CA's approval delay)
    names: tuple[str, ...] = ()


class CertificateRequest(Protocol):
    """What a virtual server's certificate setting asks for (the file format's
    ``CertificateSpec``; named here by its fields, so that pki needs no scenario)."""

    @property
    def issuer(self) -> str | None: ...
    @property
    def file(self) -> str | None: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def approval_delay(self) -> float: ...
    @property
    def issued(self) -> float: ...
    @property
    def expires_in(self) -> float | None: ...
    @property
    def key(self) -> KeyKind: ...
    @property
    def key_pair(self) -> str: ...


def our_certificate(spec: CertificateRequest, default_name: str, start: dt.datetime, base: Path) -> ServerCertificate:
    if spec.file is not None:
        certificate = load_certificate(base / spec.file)
        names = tuple(dns_names(certificate)) or (default_name,)
        return ServerCertificate(Identity(certificate), 0.0, names)
    names = tuple(spec.names or [default_name])
    pair = (default_name, spec.key_pair, spec.key)
    identity = _issue_ours(spec.issuer or "self-signed", names, start, spec.issued, spec.expires_in, pair)
    return ServerCertificate(identity, spec.approval_delay, names)


@lru_cache(maxsize=1024)
def key_pair(owner: str, name: str, kind: KeyKind) -> PrivateKey:
    """Key pair ``name`` of one server (``owner``): every certificate that names it holds
    the same key, so a renewal keeps or changes its key as the scenario says."""
    return derived_key(f"{owner}\0{name}".encode(), kind)


def our_tlsa_digest(owner: str, name: str, kind: KeyKind) -> str:
    """The ``3 1 1`` association data of one of our key pairs (SHA-256 of its public key)."""
    return tlsa_digest(key_pair(owner, name, kind))


@lru_cache(maxsize=256)
def _issue_ours(
    issuer: str,
    names: tuple[str, ...],
    start: dt.datetime,
    issued: float,
    expires_in: float | None,
    pair: tuple[str, str, KeyKind],
) -> Identity:
    world = roots(start)
    not_before = start - dt.timedelta(seconds=issued)
    not_after = start + dt.timedelta(seconds=expires_in) if expires_in is not None else not_before + YEAR
    key = key_pair(*pair)
    if issuer == "self-signed":
        return self_signed(list(names), not_before, not_after, key=key)
    authority = {"enterprise-ca": world.enterprise, "standalone-ca": world.standalone}.get(issuer, world.public_issuing)
    return issue(authority, list(names), not_before, not_after, key=key)


_OBSERVED_LABEL = {
    "certificate-host-mismatch": ServerTls.NAME_MISMATCH,
    "certificate-expired": ServerTls.EXPIRED,
    "certificate-not-trusted": ServerTls.UNTRUSTED,
    "validation-failure": ServerTls.SELF_SIGNED,  # a self-signed leaf reports as validation-failure
}


def observed_certificate(result: str, host: str, start: dt.datetime) -> ServerCertificate:
    """The certificate a sender whose TLS-RPT reports say ``result`` at our MX ``host``
    meets there: one that fails its validation the same way."""
    label = _OBSERVED_LABEL[result]
    names = (f"another-name.{host}",) if label is ServerTls.NAME_MISMATCH else (host,)
    return ServerCertificate(remote_certificate(host, label, start, None), 0.0, names)

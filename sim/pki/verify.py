"""X.509 path validation with ``cryptography``'s verifier, at a chosen (simulated) instant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from sim.pki.certs import dns_names, is_self_signed


def verify_server(
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    host: str,
    at: dt.datetime,
) -> str | None:
    """``None`` if ``leaf`` (with ``chain``) is valid for ``host`` at ``at`` under ``roots``;
    otherwise why not, in the words a mail log would use."""
    if not roots:
        return _problem(leaf, roots, host, at) or "no trusted roots"
    builder = PolicyBuilder().store(Store(list(roots))).time(at)
    try:
        builder.build_server_verifier(DNSName(host)).verify(leaf, list(chain))
    except VerificationError as exc:
        return _problem(leaf, roots, host, at) or f"certificate not verified: {exc}"
    return None


def verify_client(
    leaf: x509.Certificate, chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: dt.datetime
) -> str | None:
    """``None`` if a client certificate is valid at ``at`` under ``roots``, else why not."""
    if not roots:
        return _problem(leaf, roots, None, at) or "no trusted roots"
    builder = PolicyBuilder().store(Store(list(roots))).time(at)
    try:
        builder.build_client_verifier().verify(leaf, list(chain))
    except VerificationError as exc:
        return _problem(leaf, roots, None, at) or f"certificate not verified: {exc}"
    return None


def _problem(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], host: str | None, at: dt.datetime
) -> str | None:
    """A readable cause, for the log and the NDR text (the verifier has decided already)."""
    if at > leaf.not_valid_after_utc:
        return "certificate has expired"
    if at < leaf.not_valid_before_utc:
        return "certificate is not yet valid"
    if is_self_signed(leaf) and leaf not in roots:
        return "self-signed certificate"
    if host is not None and not _names_match(leaf, host):
        return "certificate is for another name"
    return "certificate chain ends in an untrusted root"


def _names_match(leaf: x509.Certificate, host: str) -> bool:
    host = host.lower()
    for name in dns_names(leaf):
        name = name.lower()
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False

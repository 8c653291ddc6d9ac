"""X.509 path validation with ``cryptography``'s verifier, at a chosen (simulated) instant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from sim.pki.certs import dns_names, is_self_signed
from sim.vocabulary import CertificateProblem


def verify_server(
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    host: str,
    at: dt.datetime,
) -> CertificateProblem | None:
    """``None`` if ``leaf`` (with ``chain``) is valid for ``host`` at ``at`` under ``roots``;
    otherwise why not."""
    if not roots:
        return _problem(leaf, roots, host, at)
    builder = PolicyBuilder().store(Store(list(roots))).time(at)
    try:
        builder.build_server_verifier(DNSName(host)).verify(leaf, list(chain))
    except VerificationError:
        return _problem(leaf, roots, host, at)
    return None


def verify_client(
    leaf: x509.Certificate, chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: dt.datetime
) -> CertificateProblem | None:
    """``None`` if a client certificate is valid at ``at`` under ``roots``, else why not."""
    if not roots:
        return _problem(leaf, roots, None, at)
    builder = PolicyBuilder().store(Store(list(roots))).time(at)
    try:
        builder.build_client_verifier().verify(leaf, list(chain))
    except VerificationError:
        return _problem(leaf, roots, None, at)
    return None


def _problem(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], host: str | None, at: dt.datetime
) -> CertificateProblem:
    """The cause, for the log, the NDR text and the TLS-RPT result (the verifier has
    decided already); a chain it refused for none of the named causes ends untrusted."""
    if at > leaf.not_valid_after_utc:
        return CertificateProblem.EXPIRED
    if at < leaf.not_valid_before_utc:
        return CertificateProblem.NOT_YET_VALID
    if is_self_signed(leaf) and leaf not in roots:
        return CertificateProblem.SELF_SIGNED
    if host is not None and not _names_match(leaf, host):
        return CertificateProblem.OTHER_NAME
    return CertificateProblem.UNTRUSTED_ROOT


def _names_match(leaf: x509.Certificate, host: str) -> bool:
    host = host.lower()
    for name in dns_names(leaf):
        name = name.lower()
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False

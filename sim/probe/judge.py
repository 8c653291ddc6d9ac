"""Judging a probed host: each certificate fault on its own, then the one ``tls`` label
the model takes (reference probe-and-import.md A3, A5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from sim.probe.smtp import HostProbe
from sim.vocabulary import ServerTls


@dataclass(frozen=True)
class Faults:
    expired: bool
    not_yet_valid: bool
    self_issued: bool
    name_match: bool
    trusted_chain: bool
    not_after: dt.datetime
    names: tuple[str, ...]


def name_matches(host: str, names: tuple[str, ...]) -> bool:
    """RFC 6125 s.6.4.3 as MTAs use it: ``*`` only as the whole left-most label, one label.

    >>> name_matches("mx.test.example", ("*.test.example",))
    True
    >>> name_matches("a.mx.test.example", ("*.test.example",))
    False
    """
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def faults_of(record: HostProbe, at: dt.datetime) -> Faults | None:
    if record.certificate is None:
        return None
    certificate = x509.load_der_x509_certificate(record.certificate)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    # Trust comes from the verifying handshake; an expiry it reports is not a chain fault.
    verify = (record.verify_error or "").lower()
    trusted = not verify or "expired" in verify or "not yet valid" in verify
    return Faults(
        expired=at > certificate.not_valid_after_utc,
        not_yet_valid=at < certificate.not_valid_before_utc,
        self_issued=certificate.issuer == certificate.subject,
        name_match=name_matches(record.host, names),
        trusted_chain=trusted,
        not_after=certificate.not_valid_after_utc,
        names=names,
    )


def label_of(record: HostProbe, faults: Faults | None) -> ServerTls | None:
    """The model's ``tls`` for the host; ``None`` when the probe could not tell."""
    if not record.reached or record.banner != 220:
        return None
    if not record.starttls_offered:
        return ServerTls.NONE if record.error is None or record.extensions else None
    if record.starttls_reply != 220 or record.handshake_error is not None or faults is None:
        return ServerTls.HANDSHAKE_FAILS
    if faults.self_issued and not faults.trusted_chain:
        return ServerTls.SELF_SIGNED
    if not faults.trusted_chain:
        return ServerTls.UNTRUSTED
    if not faults.name_match:
        return ServerTls.NAME_MISMATCH
    if faults.expired or faults.not_yet_valid:
        return ServerTls.EXPIRED
    return ServerTls.TRUSTED


def evidence(record: HostProbe, faults: Faults | None) -> str:
    """One comment line: what the session showed."""
    parts = [f"{record.host} [{record.address}]:", f"probed_at {record.probed_at.isoformat()}"]
    if record.error:
        parts.append(f"error: {record.error}")
    if record.banner is not None:
        parts.append(f"banner {record.banner}")
    if record.banner == 220:
        parts.append("STARTTLS offered" if record.starttls_offered else "no STARTTLS")
    if record.handshake_error:
        parts.append(f"handshake failed: {record.handshake_error[:80]}")
    if record.version:
        parts.append(f"{record.version} {record.cipher}")
    if faults is not None:
        found = [
            name
            for name, present in (
                ("expired", faults.expired),
                ("not yet valid", faults.not_yet_valid),
                ("self-issued", faults.self_issued),
                ("name does not match", not faults.name_match),
                (f"chain not trusted ({record.verify_error})", not faults.trusted_chain),
            )
            if present
        ]
        parts.append(
            f"certificate for {', '.join(faults.names) or '(no DNS names)'}, not after {faults.not_after:%Y-%m-%d}"
        )
        parts.append("faults: " + (", ".join(found) or "none"))
    parts.append("plaintext refusal (530) not tested: that needs MAIL FROM")
    return "; ".join(parts)

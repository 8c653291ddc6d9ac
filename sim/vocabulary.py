"""The shared words of the model: TLS levels, what a host does with STARTTLS, session
outcomes and failures, status codes, address-space match rules and domain names.

This is the lowest layer of the package (``.importlinter`` enforces it): the file
format, routing, TLS, certificates, MTA profiles and the model all speak these words,
and this module imports nothing from ``sim``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# --------------------------------------------------------------------------- TLS levels


class TlsLevel(StrEnum):
    """How hard our side insists on TLS when it sends.

    ``off``: never issue STARTTLS. ``opportunistic``: use it when offered, do not check
    the certificate. ``required``: no TLS, no delivery (Exchange 2003 "TLS encryption" on
    the virtual server or connector, KB 329061). ``verify``: required, and the server
    certificate must validate (Exchange 2016 TlsAuthLevel CertificateValidation,
    Postfix ``verify``).
    """

    OFF = "off"
    OPPORTUNISTIC = "opportunistic"
    REQUIRED = "required"
    VERIFY = "verify"

    @property
    def rank(self) -> int:
        return _TLS_RANK[self]

    @property
    def mandatory(self) -> bool:
        """No TLS, no delivery: ``required`` and ``verify``."""
        return _TLS_RANK[self] >= 2


_TLS_RANK = {TlsLevel.OFF: 0, TlsLevel.OPPORTUNISTIC: 1, TlsLevel.REQUIRED: 2, TlsLevel.VERIFY: 3}

# Postfix smtp_tls_security_level names for the same levels (reference 3a): "secure"
# also verifies the certificate, against the next-hop name rather than the MX name.
TLS_ALIASES = {"none": "off", "may": "opportunistic", "encrypt": "required", "secure": "verify"}


class ServerTls(StrEnum):
    """What a remote host does when we offer STARTTLS."""

    NONE = "none"  # no STARTTLS in its EHLO answer
    TRUSTED = "trusted"  # STARTTLS with a certificate from a trusted root, for its name
    SELF_SIGNED = "self-signed"
    EXPIRED = "expired"
    NAME_MISMATCH = "name-mismatch"
    UNTRUSTED = "untrusted"  # chain to a root the client does not trust
    HANDSHAKE_FAILS = "handshake-fails"  # advertises STARTTLS, then the handshake fails


class ClientTls(StrEnum):
    """What a remote sender's TLS stack can do when it talks to us."""

    NONE = "none"
    BITS_40 = "40-bit"  # export-grade only (Exchange 2000/2003 default, KB 829721)
    BITS_128 = "128-bit"
    HANDSHAKE_FAILS = "handshake-fails"


TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
ClientCertificatePolicy = Literal["ignore", "reject-self-signed", "require-valid"]
TrustName = Literal["public", "enterprise", "standalone"]
ProfileName = Literal["exchange2003", "exchange2016", "exchange2016-edge", "exchange-online", "postfix", "sendmail"]

# --------------------------------------------------------------------------- outcomes


class Channel(StrEnum):
    PLAINTEXT = "plaintext"
    TLS_UNVERIFIED = "tls-unverified"
    TLS_VERIFIED = "tls-verified"


class Failure(StrEnum):
    """Why a session did not carry mail."""

    NO_STARTTLS = "no-starttls"  # TLS required, the server does not offer STARTTLS
    HANDSHAKE = "handshake"  # STARTTLS offered, the handshake failed
    CERTIFICATE = "certificate"  # verification required, the certificate does not verify
    MUST_STARTTLS = "must-starttls"  # plaintext sent to a server that requires TLS: 530 5.7.0
    HOST_DOWN = "host-down"  # no answer
    GREYLISTED = "greylisted"  # 4xx until the greylisting delay has passed
    NO_CERTIFICATE = "no-certificate"  # our server has no certificate (yet), so it cannot do TLS
    UNREACHABLE = "unreachable"  # no usable route: the mail waits in the unreachable queue


PERMANENT = frozenset({Failure.MUST_STARTTLS})
"""RFC 3207 s.4: "530 Must issue a STARTTLS command first" is a 5xx reply: the sender
returns the message at once (Postfix: permanent; Exchange 2003 NDR #5.7.0, KB 329061)."""


@dataclass(frozen=True, slots=True)
class Status:
    """An RFC 3463 enhanced status code and the text a product writes with it."""

    code: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


# --------------------------------------------------------------------------- names and address spaces


class MatchRules(StrEnum):
    """How address spaces match: set by the MTA profile (``sim/routing/address_space.py``)."""

    EXCHANGE2003 = "exchange2003"
    EXCHANGE2007 = "exchange2007"


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
PATTERN_HELP = 'a domain pattern: "example.com", "*.example.com" or "*"'


def is_domain(name: str) -> bool:
    """True for a syntactically valid lower-case DNS domain name."""
    return bool(_DOMAIN.match(name))


def normalise_pattern(pattern: str) -> str:
    """Lower-case an address-space ``pattern`` and check it; raise ``ValueError`` if it is not one.

    Per KB 244986 Exchange reads only up to the first wildcard, so ``abc.*.contoso.com``
    would mean ``*.contoso.com``; we reject such patterns instead of silently widening
    them, because an architect who writes one almost certainly means something else.
    """
    text = pattern.strip().lower()
    if text == "*":
        return text
    body = text[2:] if text.startswith("*.") else text
    if not is_domain(body):
        raise ValueError(f"not a domain pattern (accepted: {PATTERN_HELP})")
    return text

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
from typing import Literal, NamedTuple

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


NO_TLS = frozenset({ServerTls.NONE, ServerTls.HANDSHAKE_FAILS})
"""Hosts with which no TLS session can be had: no STARTTLS, or a failing handshake."""


class ClientTls(StrEnum):
    """What a remote sender's TLS stack can do when it talks to us."""

    NONE = "none"
    BITS_40 = "40-bit"  # export-grade only (Exchange 2000/2003 default, KB 829721)
    BITS_128 = "128-bit"
    HANDSHAKE_FAILS = "handshake-fails"


TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
ClientCertificatePolicy = Literal["ignore", "reject-self-signed", "require-valid"]
TrustName = Literal["public", "enterprise", "standalone"]
StsUse = Literal["apply", "ignore"]
"""Whether a sender applies recipients' MTA-STS."""
DaneUse = Literal["none", "opportunistic", "mandatory"]
"""A sender's DANE: none, opportunistic (Postfix ``dane``), mandatory (``dane-only``)."""
StsPlugin = Literal["postfix-mta-sts-resolver", "postfix-mta-sts-resolver-tlsrpt", "postfix-tlspol"]
"""The policy plug-in a Postfix (or Sendmail) sender asks for MTA-STS: postfix-mta-sts-resolver
as installed (``tlsrpt: false``), the same with ``tlsrpt: true`` (its answer carries the
policy's attributes), or postfix-tlspol (DANE first; attributes with ``QUERYwithTLSRPT``)."""
ProfileName = Literal[
    "exchange2003",
    "exchange2016",
    "exchange2016-edge",
    "exchange2019",
    "exchange-online",
    "postfix",
    "postfix-3.10",
    "postfix-3.11",
    "sendmail",
    "gmail",
    "generic",
]

# --------------------------------------------------------------------------- transport policies


class StsMode(StrEnum):
    """An MTA-STS policy's mode (RFC 8461 s.5; reference modern-policies 1c)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class PolicyHost(StrEnum):
    """How a domain's MTA-STS policy host (https://mta-sts.<domain>/) answers a fetch."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # sts-policy-fetch-error
    BROKEN = "broken"  # serves a policy that does not parse: sts-policy-invalid


class Dnssec(StrEnum):
    """What a validating resolver says about a domain's zone (RFC 7672 s.2.1; modern-policies 2)."""

    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    LOOKUP_FAILS = "lookup-fails"  # SERVFAIL or timeout


class Tlsa(StrEnum):
    """A host's TLSA records, against the certificate it serves (RFC 7672 s.3.1)."""

    NONE = "none"
    MATCH = "match"  # a usable record (usage 2 or 3) matches the served chain
    MISMATCH = "mismatch"  # usable records, none matches (e.g. not updated at a rollover)
    UNUSABLE = "unusable"  # only usages 0/1 or unknown parameters: encrypt, do not authenticate


class Mechanism(StrEnum):
    """Transport-security mechanisms a product may apply as a sender (modern-policies 5)."""

    MTA_STS = "mta-sts"
    DANE = "dane"
    REQUIRETLS = "requiretls"
    TLS_RPT = "tls-rpt"


class CertificateProblem(StrEnum):
    """Why a certificate was not accepted, in the words a mail log uses: a value from the
    verifier (``sim/pki/verify.py``) to the NDR text and the TLS-RPT result type (each
    member maps to one, ``sim/model/tlsrpt_tally.py``), never matched back from prose."""

    EXPIRED = "certificate has expired"
    NOT_YET_VALID = "certificate is not yet valid"
    SELF_SIGNED = "self-signed certificate"
    OTHER_NAME = "certificate is for another name"
    UNTRUSTED_ROOT = "certificate chain ends in an untrusted root"
    NONE_PRESENTED = "no server certificate"
    OUTSIDE_STS_PATTERNS = "certificate does not match the MTA-STS mx patterns"


class ResultType(StrEnum):
    """IANA "STARTTLS Validation Result Types" (RFC 8460 s.4.3; modern-policies 4d)."""

    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"


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
    # Transport policies (modern-policies 1-3): the failure says which mechanism refused.
    STS_MX_MISMATCH = "sts-mx-mismatch"  # MX name outside the enforced policy's mx patterns
    STS_NO_STARTTLS = "sts-no-starttls"  # enforced MTA-STS, no STARTTLS
    STS_CERTIFICATE = "sts-certificate"  # enforced MTA-STS, certificate fails validation
    DANE_NO_STARTTLS = "dane-no-starttls"  # usable TLSA, no STARTTLS
    DANE_MISMATCH = "dane-mismatch"  # usable TLSA, none matches the served chain
    DANE_LOOKUP = "dane-lookup"  # TLSA lookup bogus or failing: host not used (RFC 7672 s.2.1.2)
    DANE_REQUIRED = "dane-required"  # mandatory DANE, no secure usable TLSA
    DANE_HANDSHAKE = "dane-handshake"  # DANE governs the host (usable TLSA): the handshake failed
    STS_PLUGIN = "sts-plugin"  # the MTA-STS plug-in's answer is one this Postfix rejects (issue 20 s.3)
    MX_LOOKUP = "mx-lookup"  # the MX RRset's zone is bogus or its lookup fails: a validating resolver finds no MX
    REQUIRETLS = "requiretls"  # REQUIRETLS message, no verified path advertising REQUIRETLS: 5.7.30
    REQUIRETLS_UNVERIFIED = "requiretls-unverified"  # REQUIRETLS, certificate not verified: 5.7.10


PERMANENT = frozenset({Failure.MUST_STARTTLS})
# Refused before any connection: the host is not used (counts no session).
NO_CONNECTION = frozenset(
    {Failure.STS_MX_MISMATCH, Failure.DANE_LOOKUP, Failure.DANE_REQUIRED, Failure.MX_LOOKUP, Failure.STS_PLUGIN}
)
# Ends a REQUIRETLS message after every MX was tried (Postfix SMTP_MISC_FAIL_SOFT_NON_FINAL).
RETURNS_REQUIRETLS = frozenset({Failure.REQUIRETLS, Failure.REQUIRETLS_UNVERIFIED})
"""RFC 3207 s.4: "530 Must issue a STARTTLS command first" is a 5xx reply: the sender
returns the message at once (Postfix: permanent; Exchange 2003 NDR #5.7.0, KB 329061)."""


@dataclass(frozen=True, slots=True)
class Status:
    """An RFC 3463 enhanced status code and the text a product writes with it."""

    code: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    def with_detail(self, detail: str) -> Status:
        """This status with a session's detail, joined as Postfix words it: "TLSA lookup
        error for mx:25" (a detail starting "for "), "non DNSSEC destination" (no text of
        its own), else "text: detail"."""
        if not detail:
            return self
        if not self.text:
            return Status(self.code, detail)
        joiner = " " if detail.startswith("for ") else ": "
        return Status(self.code, f"{self.text}{joiner}{detail}")


# --------------------------------------------------------------------------- names and address spaces


class MatchRules(StrEnum):
    """How address spaces match: set by the MTA profile (``sim/routing/address_space.py``)."""

    EXCHANGE2003 = "exchange2003"
    EXCHANGE2007 = "exchange2007"


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
PATTERN_HELP = 'a domain pattern: "example.com", "*.example.com" or "*"'


def is_domain(name: str) -> bool:
    """True for a syntactically valid lower-case DNS domain name: labels of at most 63
    characters, at most 253 in all (RFC 1035 s.2.3.4), nothing after it (not even the
    newline ``$`` would let through)."""
    return len(name) <= 253 and _DOMAIN.fullmatch(name) is not None


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


class VirtualServerRef(NamedTuple):
    """A virtual server named as the files name it, ``SERVER/VS`` (connector sources,
    ``to:`` of an inbound flow, our MX hosts): parsed here, and nowhere else."""

    server: str
    name: str

    @classmethod
    def parse(cls, text: str) -> VirtualServerRef:
        server, _, name = text.partition("/")
        return cls(server, name)

    def __str__(self) -> str:
        return f"{self.server}/{self.name}"


def server_of(reference: str) -> str:
    """The server of a ``SERVER/VS`` reference."""
    return VirtualServerRef.parse(reference).server

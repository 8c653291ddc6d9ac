"""The file format of transport policies: MTA-STS, DANE/DNSSEC, TLS-RPT, and what our
organisation publishes (reference modern-policies.md).

A remote domain may publish an MTA-STS policy, sign its zone (DNSSEC) and publish
TLSA records per MX host, and ask for TLS-RPT reports; so may our organisation, for
the senders that deliver to us.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.durations import Duration
from sim.vocabulary import Dnssec, PolicyHost, StsMode, Tlsa, is_domain

MAX_AGE_LIMIT = 31_557_600.0  # RFC 8461 s.3.2: max_age at most one year


def _dns_name(kind: str, example: str) -> AfterValidator:
    def check(value: str) -> str:
        value = value.strip().lower()
        if not is_domain(value):
            raise ValueError(f"not a {kind} (accepted: a DNS name such as {example})")
        return value

    return AfterValidator(check)


HostName = Annotated[str, _dns_name("host name", "mx1.example.com")]
DomainName = Annotated[str, _dns_name("domain name", "example.com")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outage(Strict):
    """A fixed period during which a host does not answer."""

    start: Duration = Field(alias="from")
    end: Duration = Field(alias="to")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError("an outage must end after it starts")
        return self


def is_sts_pattern(pattern: str) -> bool:
    """An MTA-STS ``mx`` pattern: a host name, or ``*.`` and a domain (RFC 8461 s.3.2)."""
    body = pattern[2:] if pattern.startswith("*.") else pattern
    return is_domain(body)


class MtaStsPolicy(Strict):
    """A published MTA-STS policy (``mta-sts.txt``) and how its policy host behaves.

    ``policy_host``: ``ok``, ``unreachable`` (every fetch fails) or ``broken`` (it
    serves a policy that does not parse); ``policy_host_down``: periods during which
    fetches fail although it is otherwise ``ok``. Senders cache a fetched policy for
    ``max_age`` and refetch when its id changes (any change of these fields) or daily.
    """

    mode: StsMode = StsMode.ENFORCE
    mx: list[str] = Field(default_factory=list, description='patterns: "mx1.example.com" or "*.example.com"')
    max_age: Duration = Field(
        7 * 86400.0, description="how long senders may cache it (above 1 year: clamped to 1 year)"
    )
    policy_host: PolicyHost = PolicyHost.OK
    policy_host_down: list[Outage] = Field(default_factory=list)
    # The TXT record _mta-sts: its id and TTL (s.3.1). Without an id, a new one comes with
    # every change of mode, mx or max_age (what a careful administrator does); give one to
    # rehearse an edit that forgets it. A TTL of an hour is common (assumption).
    id: str | None = Field(
        None, description="the TXT record's id (1-32 letters and digits); default: new on every edit"
    )
    txt_ttl: Duration = Field(3600.0, description="the TXT record's TTL")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not (1 <= len(value) <= 32 and value.isascii() and value.isalnum()):
            raise ValueError(f"{value!r} is not an MTA-STS id (accepted: 1-32 letters and digits, RFC 8461 s.3.1)")
        return value

    @property
    def txt_id(self) -> str:
        """The id senders see in the TXT record."""
        if self.id is not None:
            return self.id
        return f"{self.mode.value}|{','.join(self.mx)}|{self.max_age}"  # compared, never shown

    @field_validator("mx")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        patterns = [p.strip().lower() for p in value]
        for pattern in patterns:
            if not is_sts_pattern(pattern):
                raise ValueError(f"{pattern!r} is not an mx pattern (accepted: mx1.example.com or *.example.com)")
        return patterns

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: float) -> float:
        # RFC 8461 s.3.2 allows at most 31557600 s; senders clamp a larger value to it
        # rather than refuse the policy (issue 20: as real senders do), and so does tlssim.
        if value <= 0:
            raise ValueError("max_age must be longer than 0s (RFC 8461 s.3.2)")
        return min(value, MAX_AGE_LIMIT)

    @model_validator(mode="after")
    def _mx_unless_none(self) -> MtaStsPolicy:
        if self.mode is not StsMode.NONE and not self.mx:
            raise ValueError("a policy in mode enforce or testing needs at least one mx pattern (RFC 8461 s.3.2)")
        return self


Share = Annotated[float, Field(ge=0, le=1)]


class PopulationPolicies(Strict):
    """Shares of transport policies in a generated population (``population.policies``).

    ``mta_sts_top``: the most popular domains publish an ``enforce`` policy (the big
    providers do); ``mta_sts``: share of the other domains per mode; of those that
    publish, ``mta_sts_mismatch`` list mx patterns that match none of their MX and
    ``mta_sts_unreachable`` have a policy host that never answers. ``dnssec_signed`` and
    ``dnssec_bogus``: shares of zones; ``dane``: share of signed domains with TLSA at
    every MX, ``tlsa_mismatch`` of those hosts not matching the served certificate;
    ``tls_rpt``: share of domains with a rua; ``requiretls``: share of hosts
    advertising REQUIRETLS. Drawn from a stream of their own: adding them changes no
    other draw of the population.
    """

    mta_sts_top: int = Field(0, ge=0)
    mta_sts: dict[StsMode, Share] = Field(default_factory=dict)
    mta_sts_mismatch: Share = 0.0
    mta_sts_unreachable: Share = 0.0
    dnssec_signed: Share = 0.0
    dnssec_bogus: Share = 0.0
    dane: Share = 0.0
    tlsa_mismatch: Share = 0.0
    tls_rpt: Share = 0.0
    requiretls: Share = 0.0

    @model_validator(mode="after")
    def _zones(self) -> PopulationPolicies:
        if self.dnssec_signed + self.dnssec_bogus > 1:
            raise ValueError("dnssec_signed + dnssec_bogus cannot exceed 1")
        if sum(self.mta_sts.values()) > 1:
            raise ValueError("the mta_sts shares cannot sum to more than 1")
        return self


def _rua(value: str) -> str:
    if not value.startswith(("mailto:", "https://")):
        raise ValueError("a TLS-RPT rua is a mailto: or https:// URI (RFC 8460 s.3)")
    return value


Rua = Annotated[str, AfterValidator(_rua)]


class PublishedMx(Strict):
    """One of our inbound MX hosts: its DNS name, and the virtual server behind it (whose
    certificate it serves: a certificate without this name fails verifying senders)."""

    host: HostName
    virtual_server: str
    preference: int = Field(10, ge=0, le=65535)
    down: list[Outage] = Field(default_factory=list, description="periods when this MX does not answer")


class Publishing(Strict):
    """What our organisation publishes for the senders that deliver to it.

    ``mx``: our inbound MX hosts (name, virtual server, preference); inbound senders
    without a ``to`` deliver to them in preference order. ``tlsa`` gives, per MX host
    name, what its TLSA records say of the certificate it serves: a state (``match``
    follows whatever it serves), or the key pairs whose ``3 1 1`` records are published
    (``[k1, k2]``: current and next), matched against the key it really serves.
    Changes to ``tlsa`` and ``mx`` reach senders once their TTL has passed.
    """

    domain: DomainName
    mx: list[PublishedMx] = Field(default_factory=list, description="our MX hosts: host, virtual_server, preference")
    mta_sts: MtaStsPolicy | None = None
    dnssec: Dnssec = Dnssec.INSECURE
    tlsa: dict[str, Tlsa | list[str]] = Field(
        default_factory=dict, description="MX host -> none | match | mismatch | unusable, or [key pairs]"
    )
    tlsa_usage: Literal[2, 3] = 3
    tlsa_ttl: Duration = Field(3600.0, description="TTL of the TLSA records (a common hour: assumption)")
    mx_ttl: Duration = Field(3600.0, description="TTL of the MX records (a common hour: assumption)")
    tls_rpt: Rua | None = Field(None, description="rua: mailto:... or https://...")

    @model_validator(mode="after")
    def _key_pairs_for_dane_ee(self) -> Publishing:
        if self.tlsa_usage != 3 and any(isinstance(v, list) for v in self.tlsa.values()):
            raise ValueError("TLSA records of key pairs ([k1, k2]) are DANE-EE records: they need tlsa_usage 3")
        return self

"""The scenario format: pydantic models for organisation, remote-world and what-if files.

Every model forbids unknown fields and is frozen: a loaded scenario is a value.
Fields left unset (``None``) take the MTA profile's default when the world is built.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from sim.durations import Duration
from sim.scenario.published import DomainName, HostName, MtaStsPolicy, Outage, PopulationPolicies, Publishing, Rua
from sim.vocabulary import (
    TLS_ALIASES,
    ClientCertificatePolicy,
    ClientTls,
    DaneUse,
    Dnssec,
    ProfileName,
    ServerTls,
    StsPlugin,
    StsUse,
    Tlsa,
    TlsLevel,
    TlsVersion,
    TrustName,
    VirtualServerRef,
    is_domain,
    normalise_pattern,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _tls_alias(value: object) -> object:
    return TLS_ALIASES.get(value, value) if isinstance(value, str) else value


TlsSetting = Annotated[
    TlsLevel,
    BeforeValidator(_tls_alias),
    WithJsonSchema({"enum": [level.value for level in TlsLevel] + list(TLS_ALIASES)}),
]
PolicyEntry = Literal["dane", "dane-only"] | TlsSetting
Profile = ProfileName
MAX_RATE = 10_000_000.0  # messages per hour per flow: far beyond any real server, finite
MAX_DURATION = 3650 * 86400.0  # a run of at most ten years

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


# --------------------------------------------------------------------------- organisation


class RoutingGroup(Strict):
    name: Name


class RoutingGroupConnector(Strict):
    """A link between two routing groups, with a cost and an up/down state."""

    name: Name
    between: tuple[Name, Name]
    cost: int = Field(1, ge=1, le=100)
    up: bool = True


class InboundSecurity(Strict):
    """What the virtual server offers to senders (modelled in full by the inbound issue)."""

    tls: Literal["off", "offered"] = "off"
    strength: Literal[40, 128] = 40  # Exchange 2000/2003 default is 40-bit (KB 829721)
    require_secure_channel: bool = False

    @model_validator(mode="after")
    def _secure_channel_needs_tls(self) -> InboundSecurity:
        if self.require_secure_channel and self.tls == "off":
            raise ValueError("require_secure_channel needs tls: offered (a certificate on the virtual server)")
        return self


class DeliverySettings(Strict):
    """The virtual server's Delivery tab. Unset values take the MTA profile's defaults."""

    first_retry: Duration | None = None
    second_retry: Duration | None = None
    third_retry: Duration | None = None
    subsequent_retry: Duration | None = None
    delay_notification: Duration | None = Field(None, description="0 turns delay notices off")
    expiration_timeout: Duration | None = None
    # Postfix names (reference 3d); also the Sendmail queue-run interval (-q).
    queue_run_delay: Duration | None = None
    minimal_backoff_time: Duration | None = None
    maximal_backoff_time: Duration | None = None
    # Postfix per-destination concurrency (reference 3e, 6b).
    initial_destination_concurrency: int | None = Field(None, ge=1)
    destination_concurrency_limit: int | None = Field(None, ge=1)
    destination_concurrency_failed_cohort_limit: int | None = Field(None, ge=1)
    # Exchange 2013+ Set-TransportService / EdgeTransport.exe.config names (reference 2b, 6d).
    queue_glitch_retry_count: int | None = Field(None, ge=0, le=15)
    queue_glitch_retry_interval: Duration | None = None
    transient_failure_retry_count: int | None = Field(None, ge=0, le=15)
    transient_failure_retry_interval: Duration | None = None
    outbound_connection_failure_retry_interval: Duration | None = None

    @field_validator(
        "first_retry",
        "second_retry",
        "third_retry",
        "subsequent_retry",
        "queue_run_delay",
        "minimal_backoff_time",
        "maximal_backoff_time",
        "queue_glitch_retry_interval",
        "transient_failure_retry_interval",
        "outbound_connection_failure_retry_interval",
    )
    @classmethod
    def _positive_retry(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("a retry interval must be longer than 0s")
        return value


class CertificateSpec(Strict):
    """The certificate a virtual server presents (as a TLS server, and as a client).

    ``issuer``: ``enterprise-ca`` (issued at once by our own Windows enterprise CA),
    ``standalone-ca`` (the request waits ``approval_delay`` for an administrator, and
    until then the server has no certificate and cannot do TLS), ``public-ca`` (a
    commercial CA everyone trusts), ``self-signed``; or ``file``: a real certificate
    in PEM or DER form, read for its names, issuer and validity.
    """

    issuer: Literal["enterprise-ca", "standalone-ca", "public-ca", "self-signed"] | None = None
    file: str | None = None
    names: list[str] = Field(default_factory=list, description="SANs; default SERVER.ORGANISATION.example")
    approval_delay: Duration = 0.0
    issued: Duration = Field(30 * 86400.0, description="how long before the run starts it was issued")
    expires_in: Duration | None = Field(None, description="time from the run's start to not_after; default 1 year")
    key: Literal["ec", "rsa-2048", "rsa-3072", "rsa-4096"] = "ec"
    key_pair: str = Field(
        "1", min_length=1, max_length=32, description="its key pair: a renewal with a new key names a new one"
    )

    @model_validator(mode="after")
    def _one_source(self) -> CertificateSpec:
        if (self.issuer is None) == (self.file is None):
            raise ValueError(
                "give exactly one of issuer (enterprise-ca, standalone-ca, public-ca, self-signed) or file"
            )
        if self.approval_delay and self.issuer != "standalone-ca":
            raise ValueError("approval_delay applies to issuer: standalone-ca only")
        return self


class VirtualServer(Strict):
    name: Name
    outbound_tls: TlsSetting = TlsLevel.OFF
    # Per-destination TLS levels (Postfix smtp_tls_policy_maps, reference 3c): the key is
    # the next hop. A recipient domain: "example.com" matches that name, ".example.com"
    # its subdomains, tried from the most specific parent up. A smart host: "[relay]",
    # matched exactly (a bare name never claims a relay, as in Postfix). "dane" and
    # "dane-only" are a level plus DANE for that destination.
    tls_policy: dict[str, PolicyEntry] = Field(default_factory=dict)
    inbound: InboundSecurity = InboundSecurity()
    delivery: DeliverySettings = DeliverySettings()
    certificate: CertificateSpec | None = None
    trust: list[TrustName] = Field(["public", "enterprise"], description="roots trusted when verifying peers")
    tls_versions: tuple[TlsVersion, TlsVersion] | None = Field(None, description="[min, max]; default the profile's")
    # Exchange 2000 SP2 admin help (moc04_14b): 1000 outbound connections, 100 per domain.
    max_connections: int = Field(1000, ge=1)
    max_connections_per_domain: int = Field(100, ge=1)
    smart_host: str | None = None
    # Transport policies this sender applies (modern-policies 5); unset: the profile's
    # default. A product that lacks a mechanism ignores it (tlssim notes it).
    mta_sts: StsUse | None = Field(None, description="apply: honour recipients' MTA-STS; ignore")
    dane: DaneUse | None = Field(None, description="none | opportunistic (Postfix dane) | mandatory (dane-only)")
    mta_sts_plugin: StsPlugin | None = Field(None, description="the MTA-STS policy plug-in it asks (Postfix)")


class Server(Strict):
    name: Name
    routing_group: Name
    profile: Profile | None = Field(None, description="this server's MTA profile; default the organisation's")
    virtual_servers: list[VirtualServer] = Field(min_length=1)


class AddressSpaceSpec(Strict):
    pattern: str
    cost: int = Field(1, ge=1, le=100)  # Exchange: 1-100, default 1 (KB 262952)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return normalise_pattern(value)


class Connector(Strict):
    """An SMTP connector (Exchange 2003) or send connector (2007+)."""

    name: Name
    source: list[str] = Field(min_length=1, description="source virtual servers as SERVER/VS")
    address_spaces: list[AddressSpaceSpec] = Field(default_factory=list)
    # Also claim, as exact address spaces of cost 1, the remote domains (named or
    # generated) none of whose MX hosts can complete TLS ("cannot-tls": the list an
    # architect compiles from a trial run's NDRs, for the article's workaround connector),
    # or those where at least one can ("can-tls": the partners known to support TLS).
    address_spaces_from_remotes: Literal["cannot-tls", "can-tls"] | None = None
    scope: Literal["organisation", "routing_group"] = "organisation"
    # The connector's own TLS setting. Exchange 2003 applies the stronger of the
    # connector's and the source virtual server's setting: a connector can add TLS,
    # never remove it, which is why the article's workaround needs a second virtual
    # server without TLS.
    tls: TlsSetting = TlsLevel.OFF
    # Exchange 2007+ send-connector names for the same thing (New-SendConnector, 2a):
    # RequireTLS -> required; TlsAuthLevel CertificateValidation or DomainValidation ->
    # verify (EncryptionOnly -> required); IgnoreSTARTTLS -> never use TLS on this
    # connector, whatever the virtual server says.
    require_tls: bool = False
    tls_auth_level: Literal["EncryptionOnly", "CertificateValidation", "DomainValidation"] | None = None
    ignore_starttls: bool = False
    delivery: Literal["dns", "smart_host"] = "dns"
    smart_hosts: list[str] = Field(default_factory=list)
    enabled: bool = True
    # Exchange Online outbound connectors: -MtaStsMode, -SmtpDaneMode (modern-policies 5).
    mta_sts: StsUse | None = None
    dane: DaneUse | None = None

    @model_validator(mode="after")
    def _exchange_tls_settings_agree(self) -> Connector:
        if self.ignore_starttls and (self.require_tls or self.tls.rank >= TlsLevel.REQUIRED.rank):
            raise ValueError("ignore_starttls must be false when require_tls (or tls: required/verify) is set")
        if self.tls_auth_level is not None and not self.require_tls:
            raise ValueError("tls_auth_level needs require_tls: true")
        return self

    @property
    def tls_level(self) -> TlsLevel:
        """The connector's own TLS level, from ``tls`` or the Exchange 2007+ settings."""
        if self.tls_auth_level in ("CertificateValidation", "DomainValidation"):
            return TlsLevel.VERIFY
        if self.require_tls and self.tls.rank < TlsLevel.REQUIRED.rank:
            return TlsLevel.REQUIRED
        return self.tls

    @model_validator(mode="after")
    def _some_address_space(self) -> Connector:
        if not self.address_spaces and self.address_spaces_from_remotes is None:
            raise ValueError("a connector needs address_spaces (or address_spaces_from_remotes)")
        return self

    @model_validator(mode="after")
    def _smart_hosts_match_delivery(self) -> Connector:
        if self.delivery == "smart_host" and not self.smart_hosts:
            raise ValueError("delivery: smart_host needs at least one entry in smart_hosts")
        if self.delivery == "dns" and self.smart_hosts:
            raise ValueError("smart_hosts is set but delivery is dns (use delivery: smart_host)")
        return self


class Organisation(Strict):
    """An organisation file in ``topology/``."""

    organisation: Name
    profile: Profile = "exchange2003"
    routing_groups: list[RoutingGroup] = Field(min_length=1)
    routing_group_connectors: list[RoutingGroupConnector] = Field(default_factory=list)
    servers: list[Server] = Field(min_length=1)
    connectors: list[Connector] = Field(default_factory=list)
    publishes: Publishing | None = Field(None, description="our MTA-STS, DANE and TLS-RPT, for inbound senders")
    accepted_domains: list[DomainName] = Field(
        default_factory=list,
        description="domains we receive mail for (Postfix mydestination, virtual and relay domains; Exchange"
        " accepted domains): the log importers count mail to them as local, not outbound",
    )

    def virtual_servers_by_ref(self) -> dict[str, VirtualServer]:
        """Every virtual server by its ``SERVER/VS`` reference, in file order."""
        return {str(VirtualServerRef(s.name, vs.name)): vs for s in self.servers for vs in s.virtual_servers}

    @model_validator(mode="after")
    def _policy_keys_name_next_hops(self) -> Organisation:
        relays = {c_host for c in self.connectors for c_host in c.smart_hosts}
        relays |= {vs.smart_host for s in self.servers for vs in s.virtual_servers if vs.smart_host}
        for server in self.servers:
            for vs in server.virtual_servers:
                for key in vs.tls_policy:
                    name = key[1:-1] if key.startswith("[") and key.endswith("]") else key.removeprefix(".")
                    if not is_domain(name):
                        raise ValueError(
                            f"tls_policy key {key!r} of {server.name}/{vs.name} is not a next hop (accepted: "
                            "example.com, .example.com for its subdomains, [relay.example.com] for a smart host)"
                        )
                    if key in relays:
                        raise ValueError(
                            f"tls_policy key {key!r} of {server.name}/{vs.name} names a smart host: write [{key}]"
                            " (a bare name matches recipient domains only, as in Postfix)"
                        )
        return self


# --------------------------------------------------------------------------- remote world


class Outages(Strict):
    """Alternating up and down periods with exponentially distributed lengths."""

    mean_up: Duration = Field(gt=0)
    mean_down: Duration = Field(gt=0)


class Provenance(Strict):
    """Where an imported fact came from. Importers write it; the engine does not read it."""

    source: Literal["observed", "configured", "assumed"]
    sessions: int | None = Field(None, ge=0, description="observed: delivery sessions the fact rests on")
    why: str = Field("", description="what was seen, or why it is assumed")


class RemoteHost(Strict):
    """A remote SMTP host: its TLS capability, inbound policy, capacity and availability."""

    host: HostName
    preference: int = Field(10, ge=0, le=65535)
    tls: ServerTls = ServerTls.TRUSTED
    # RFC 3207 s.4: a server that requires TLS answers "530 Must issue a STARTTLS
    # command first" to a client that has not issued STARTTLS. With tls: none this is
    # the misconfigured host of reference 6c (STARTTLS off, the requirement left on):
    # it can never accept mail.
    requires_tls: bool = False
    max_connections: int = Field(20, ge=1)
    bandwidth_mbps: float = Field(10.0, gt=0, le=1e6, allow_inf_nan=False)
    session_setup: Duration = 0.5  # connect + EHLO (+ STARTTLS) round trips
    down: list[Outage] = Field(default_factory=list, description="fixed outages")
    outages: Outages | None = Field(None, description="random outages")
    tls_versions: tuple[TlsVersion, TlsVersion] = ("1.0", "1.3")
    # What the host does with a client certificate: not ask (ignore), refuse one that
    # does not verify against its trust store (reject-self-signed), or insist on one.
    client_certificates: ClientCertificatePolicy = "ignore"
    trust: list[TrustName] = Field(["public"], description="roots it trusts for client certificates")
    certificate_expires_in: Duration | None = Field(
        None, description="for tls: trusted, time from the run's start until its certificate expires"
    )
    # Greylisting: the first attempt from a new sending queue is refused with 450 4.7.1,
    # and so is every attempt until this delay has passed (postgrey default 300 s).
    greylist: Duration | None = None
    # DANE (RFC 7672): what this host's TLSA records say of the certificate it serves;
    # used only when its domain's zone is DNSSEC-secure.
    tlsa: Tlsa = Tlsa.NONE
    tlsa_usage: Literal[2, 3] = Field(3, description="2: DANE-TA (chain and name checked), 3: DANE-EE (key only)")
    # DNSSEC belongs to a zone: this host's name may sit in another zone than its
    # domain's MX RRset (an MX at a provider). None: the domain's zone.
    dnssec: Dnssec | None = Field(None, description="the zone of this host's name; default its domain's")
    # RFC 8689: whether it advertises REQUIRETLS ("as of 2025, only a few servers").
    requiretls: bool = False
    provenance: Provenance | None = Field(None, description="where its TLS facts came from (importers)")


class RemoteDomain(Strict):
    name: DomainName
    mx: list[RemoteHost] = Field(min_length=1)
    mta_sts: MtaStsPolicy | None = None
    dnssec: Dnssec = Field(Dnssec.INSECURE, description="the zone of its MX RRset, as a validating resolver sees it")
    tls_rpt: Rua | None = Field(None, description="TLS-RPT rua: mailto:... or https://...")


class Population(Strict):
    """Many remote domains generated from distributions (see ``sim/population.py``)."""

    name: Name
    domains: int = Field(ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, description="the population's own seed: same seed, same population")
    zipf_exponent: float = Field(1.0, ge=0, le=10, allow_inf_nan=False, description="domain popularity ~ 1 / rank^s")
    mx_per_domain: dict[int, float] = Field(default_factory=lambda: {1: 1.0}, description="MX count -> share")
    tls: dict[ServerTls, float] = Field(description="share of hosts per TLS capability (sums to 1)")
    requires_tls: float = Field(0.0, ge=0, le=1, description="share of STARTTLS hosts that require TLS")
    requires_tls_without_starttls: float = Field(
        0.0, ge=0, le=1, description="share of hosts without STARTTLS that still answer plaintext with 530 (6c)"
    )
    outage_share: float = Field(0.0, ge=0, le=1, description="share of hosts with random outages")
    outages: Outages | None = None
    greylist_share: float = Field(0.0, ge=0, le=1)
    greylist: Duration = 300.0
    max_connections: int = Field(20, ge=1)
    policies: PopulationPolicies | None = Field(None, description="MTA-STS, DANE, TLS-RPT, REQUIRETLS shares")

    @field_validator("tls", "mx_per_domain")
    @classmethod
    def _shares(cls, value: dict[object, float]) -> dict[object, float]:
        if any(share < 0 for share in value.values()):
            raise ValueError("shares cannot be negative")
        total = sum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1 (they sum to {total:g})")
        return value

    @model_validator(mode="after")
    def _outages_given(self) -> Population:
        if self.outage_share > 0 and self.outages is None:
            raise ValueError("outage_share is set but outages (mean_up, mean_down) is not")
        return self


class Remotes(Strict):
    """A remote-world file in ``topology/``: recipient domains, relay hosts, a population."""

    domains: list[RemoteDomain] = Field(default_factory=list)
    hosts: list[RemoteHost] = Field(default_factory=list, description="smart hosts and relays")
    population: Population | None = None


# --------------------------------------------------------------------------- what-if


class MessageSize(Strict):
    """Message size distribution, in kilobytes."""

    distribution: Literal["fixed", "exponential", "lognormal"] = "lognormal"
    mean_kb: float = Field(75.0, gt=0, le=1e6, allow_inf_nan=False)
    sigma: float = Field(
        1.0, gt=0, le=10, allow_inf_nan=False, description="lognormal shape (of the underlying normal)"
    )


class OutboundFlow(Strict):
    """Poisson arrivals of outbound mail from one server, over a recipient-domain mix."""

    from_server: str | None = Field(None, alias="from", description="sending server; default the first")
    rate_per_hour: float = Field(gt=0, le=MAX_RATE, allow_inf_nan=False)
    domains: dict[str, float] = Field(default_factory=dict, description="recipient domain -> weight")
    population_weight: float = Field(
        0.0, ge=0, le=1e9, allow_inf_nan=False, description="weight of the generated population, split by popularity"
    )
    requiretls: float = Field(0.0, ge=0, le=1, description="share of messages sent with REQUIRETLS (RFC 8689)")
    size: MessageSize = MessageSize()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _some_destination(self) -> OutboundFlow:
        if not self.domains and self.population_weight <= 0:
            raise ValueError("a flow needs recipient domains or a population_weight")
        return self

    @field_validator("domains")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for domain, weight in value.items():
            if not is_domain(domain.lower()):
                raise ValueError(f"{domain!r} is not a domain name")
            if weight <= 0:
                raise ValueError(f"weight of {domain} is {weight}: weights must be > 0")
        return {domain.lower(): weight for domain, weight in value.items()}


ObservedResult = Literal[
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
]
"""The RFC 8460 results a sender can meet at one of our MX hosts that tlssim reproduces
per sender: its MTAs see no STARTTLS, or a certificate that fails their validation."""


class ObservedFailure(Strict):
    """A share of one sender's sessions that met ``result`` at our MX host ``mx`` (as its
    TLS-RPT reports say): that part of its mail is sent by MTAs that meet the same there,
    and starts there (then our other MX hosts in preference order).

    This is evidence, not a cause: a certificate that validates for some of a sender's
    MTAs and not for others (a missing intermediate, a load balancer with two
    certificates) shows in reports exactly so (``tlssim import tlsrpt``)."""

    mx: HostName
    result: ObservedResult
    share: float = Field(gt=0, le=1, description="of the sender's sessions, 0 < share <= 1")


class InboundFlow(Strict):
    """A remote sending domain: its rate, its MTA profile and what its TLS can do."""

    from_domain: str = Field(alias="from")
    rate_per_hour: float = Field(gt=0, le=MAX_RATE, allow_inf_nan=False)
    profile: Profile = "postfix"
    tls: ClientTls = ClientTls.BITS_128
    tls_level: TlsSetting = Field(TlsLevel.OPPORTUNISTIC, description="the sender's own outbound TLS level")
    to: str | None = Field(None, description="receiving virtual server SERVER/VS; default the first")
    trust: list[TrustName] = Field(["public"], description="roots the sender trusts when it verifies us")
    size: MessageSize = MessageSize()
    delivery: DeliverySettings = DeliverySettings()
    mta_sts: StsUse | None = Field(None, description="whether the sender applies our MTA-STS; default its profile's")
    dane: DaneUse | None = Field(None, description="whether the sender applies our DANE; default its profile's")
    mta_sts_plugin: StsPlugin | None = Field(None, description="the MTA-STS policy plug-in it asks (Postfix)")
    observed_failures: list[ObservedFailure] = Field(
        default_factory=list, description="shares of its sessions that met a failure at one of our MX hosts"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("observed_failures")
    @classmethod
    def _shares(cls, value: list[ObservedFailure]) -> list[ObservedFailure]:
        if sum(f.share for f in value) > 1 + 1e-9:
            raise ValueError("the observed_failures shares cannot sum to more than 1")
        return value


class Traffic(Strict):
    outbound: list[OutboundFlow] = Field(default_factory=list)
    inbound: list[InboundFlow] = Field(default_factory=list)

    @field_validator("outbound", "inbound", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value


class RunSettings(Strict):
    start: datetime = Field(datetime(2026, 1, 1, tzinfo=UTC), description="the calendar instant of t = 0")
    duration: Duration = 4 * 86400.0
    seed: int = Field(1, ge=0)
    sample_interval: Duration = 900.0

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    @field_validator("duration", "sample_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0s")
        if value > MAX_DURATION:
            raise ValueError("must be at most 3650d (ten years)")
        return value


class Change(Strict):
    """One entry of a policy calendar: from simulated time ``at``, these overrides hold
    (dotted paths as in ``overrides``, into the organisation and the remote world)."""

    at: Duration  # durations are never negative
    set: dict[str, Any] = Field(min_length=1)


class Scenario(Strict):
    """A resolved what-if: the organisation and remote world with overrides applied."""

    name: Name
    description: str = ""
    organisation: Organisation
    remotes: Remotes
    traffic: Traffic
    run: RunSettings = RunSettings()
    changes: list[Change] = Field(default_factory=list, description="the policy calendar, in time order")
    source: str = Field("<memory>", description="the file this scenario was loaded from")

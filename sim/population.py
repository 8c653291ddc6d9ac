"""Generated remote worlds: many domains from distributions, identical for the same seed.

A population file gives shares (TLS capability per host, MX count per domain, hosts
that require TLS, hosts with outages, hosts that greylist) and a Zipf popularity
exponent; ``generate`` turns it into concrete domains and hosts, drawing from the
population's own seed, so two runs (and two policies) see the same Internet.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

from sim.scenario.model import Outages, Population, RemoteDomain, RemoteHost
from sim.scenario.published import MtaStsPolicy, PopulationPolicies
from sim.streams import Draws, block_draws, cumulative_shares
from sim.vocabulary import NO_TLS, Dnssec, PolicyHost, ServerTls, StsMode, Tlsa

# The fields a generated host or domain was given, one set shared by all of them (a set
# per object would cost 400 bytes a domain; frozen models never change it, and
# model_copy copies it before adding to it).
_HOST_FIELDS = set(RemoteHost.model_fields)
_DOMAIN_FIELDS = set(RemoteDomain.model_fields)


_Model = TypeVar("_Model", RemoteHost, RemoteDomain)
_set_attribute = object.__setattr__


def _unvalidated(cls: type[_Model], fields: dict[str, Any], fields_set: set[str]) -> _Model:
    """What ``cls.model_construct(fields_set, **fields)`` makes when ``fields`` holds
    every field: the instance's attributes set directly, without pydantic's loop over
    its fields (0.7 against 5.8 us a host, measured with pydantic 2.14). A model with a
    post-init hook or private attributes would need more, so it is left to pydantic;
    tests/test_population.py holds the result equal to the validated model."""
    if cls.__pydantic_post_init__ is not None or cls.__private_attributes__:
        return cls.model_construct(fields_set, **fields)
    made = object.__new__(cls)
    _set_attribute(made, "__dict__", fields)
    _set_attribute(made, "__pydantic_fields_set__", fields_set)
    _set_attribute(made, "__pydantic_extra__", None)
    _set_attribute(made, "__pydantic_private__", None)
    return made


class GeneratedPopulation:
    """A generated population, held as arrays: a host is a few list entries until a
    domain is asked for, then its ``RemoteDomain`` is made once and kept. A world of
    100,000 domains thus builds objects only for the domains that get mail (issue 13).

    Every random number is drawn when the population is generated, in the order of
    earlier versions, so the domains are the same whichever are asked for, and when.
    """

    def __init__(
        self,
        population: Population,
        popularity: tuple[float, ...],
        first_host: list[int],
        hosts: list[tuple[ServerTls, bool, Outages | None, float | None]],
        policy_draws: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        self.population = population
        self.popularity = popularity  # per domain, sums to 1, most popular first
        self._first_host = first_host  # domain i has hosts first_host[i] .. first_host[i + 1] - 1
        self._hosts = hosts  # (tls, requires_tls, outages, greylist) per host
        self._policy_draws = policy_draws  # (per domain: 6, per host: 2) uniforms, or None
        self._made: dict[int, RemoteDomain] = {}
        self._prefix = f"{population.name}-"
        self._defaults = RemoteHost(host="x.example").model_dump()
        self._bases: dict[tuple[ServerTls, bool, Outages | None, float | None], dict[str, Any]] = {}
        self._kinds: np.ndarray | None = None  # kinds(), once asked for

    def __len__(self) -> int:
        return len(self.popularity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GeneratedPopulation) and self.domains == other.domains

    __hash__ = None  # type: ignore[assignment]

    def name(self, index: int) -> str:
        return domain_name(self.population, index + 1)

    def names(self) -> list[str]:
        return [self.name(i) for i in range(len(self))]

    def _base(self, described: tuple[ServerTls, bool, Outages | None, float | None]) -> dict[str, Any]:
        """The fields of a host so described, but its name and place (one dict a kind)."""
        tls, requires, outages, greylist = described
        return self._defaults | {
            "tls": tls,
            "requires_tls": requires,
            "max_connections": self.population.max_connections,
            "outages": outages,
            "greylist": greylist,
        }

    def index_of(self, name: str) -> int | None:
        """The index of the domain called ``name``, or None: not one of these."""
        if not name.startswith(self._prefix) or not name.endswith(SUFFIX):
            return None
        digits = name[len(self._prefix) : -len(SUFFIX)]
        # As ``domain_name`` writes a rank: RANK_DIGITS digits, zero-padded, or more without
        # a leading zero (checked, not formatted again and compared: 1 us less a domain).
        padded = len(digits) == RANK_DIGITS or (len(digits) > RANK_DIGITS and digits[0] != "0")
        if not (digits.isascii() and digits.isdigit() and padded):
            return None
        rank = int(digits)
        return rank - 1 if 1 <= rank <= len(self) else None

    def domain(self, index: int) -> RemoteDomain:
        found = self._made.get(index)
        if found is None:
            found = self._made[index] = self._make(index)
        return found

    @property
    def domains(self) -> tuple[RemoteDomain, ...]:
        """Every domain (made on first use: a small population, or a test)."""
        return tuple(self.domain(i) for i in range(len(self)))

    def cannot_tls(self) -> list[bool]:
        """Per domain: whether none of its hosts offers working STARTTLS, without making it."""
        if self._policy_draws is not None:  # policies may upgrade hosts: ask the domains
            return [all(h.tls in NO_TLS for h in d.mx) for d in self.domains]
        first, hosts = self._first_host, self._hosts
        return [all(hosts[h][0] in NO_TLS for h in range(first[i], first[i + 1])) for i in range(len(self))]

    def kinds(self) -> np.ndarray:
        """Per domain, a number two domains share exactly when they are alike in every
        field a queue's plan reads (``sim.plan.kinds.domain_kind``: the domain's DNSSEC
        state, and its hosts' fields host by host in preference order); -1 for a domain
        that publishes a policy naming it (MTA-STS, TLS-RPT). Computed for the whole
        population from its arrays and draws, as ``_make`` would set the fields: only
        each host's TLS capability, whether it refuses plaintext and its TLSA record,
        and the domain's DNSSEC state vary; the rest is the population's or the
        defaults. tests/test_plan_generated.py holds the numbers to ``domain_kind``.
        Computed once (0.2 s for a million domains; a calendar change asks again): a copy."""
        if self._kinds is None:
            self._kinds = self._numbered_kinds()
        return self._kinds.copy()

    def _numbered_kinds(self) -> np.ndarray:
        count = len(self)
        code = {tls: 2 * i for i, tls in enumerate(ServerTls)}  # + 1: refuses plaintext
        codes = np.fromiter((code[h[0]] + h[1] for h in self._hosts), dtype=np.int64, count=len(self._hosts))
        first = np.asarray(self._first_host, dtype=np.int64)
        counts = np.diff(first)
        owner = np.repeat(np.arange(count), counts)
        zone = np.full(count, 2, dtype=np.int64)  # 2: insecure, 1: bogus, 0: signed
        publishes = np.zeros(count, dtype=bool)
        shares = self.population.policies
        if self._policy_draws is not None and shares is not None:
            per_domain, per_host = self._policy_draws
            publishes, zone, tlsa = _drawn_policies(shares, per_domain, per_host[:, 0], owner)
            codes = codes * 3 + tlsa
        base = 6 * len(ServerTls)  # every host code is below it
        most = int(counts.max(initial=0))
        if 3 * base ** (most + 1) >= 2**62:  # keys past 64 bits: number the hosts' codes as tuples
            numbers: dict[tuple[int, ...], int] = {}
            listed, zones = codes.tolist(), zone.tolist()
            kinds = np.array(
                [numbers.setdefault((zones[i], *listed[first[i] : first[i + 1]]), len(numbers)) for i in range(count)],
                dtype=np.int64,
            )
        else:
            # One base-``base`` digit a host by its place, the host count above them all,
            # and the DNSSEC state above that.
            place = np.arange(len(codes)) - first[:-1][owner]
            keys = (zone * base + counts) * base**most
            np.add.at(keys, owner, codes * base**place)
            kinds = np.unique(keys, return_inverse=True)[1]
        kinds[publishes] = -1
        return kinds

    def hosts(self, index: int) -> list[RemoteHost]:
        """The MX hosts of domain ``index``, in preference order: its domain's when that
        has been made or has drawn policies, else made for the caller alone and kept by
        nobody (a queue planned by kind reads them once, to make its endpoints)."""
        if self._policy_draws is not None or index in self._made:
            return self.domain(index).mx
        return [_unvalidated(RemoteHost, fields, _HOST_FIELDS) for fields in self._host_fields(index, self.name(index))]

    def _host_fields(self, index: int, name: str) -> list[dict[str, Any]]:
        """The fields of each host of domain ``index`` (called ``name``), before policies."""
        hosts = []
        for j, h in enumerate(range(self._first_host[index], self._first_host[index + 1])):
            described = self._hosts[h]
            base = self._bases.get(described)
            if base is None:
                base = self._bases[described] = self._base(described)
            fields = base.copy()
            fields["host"] = f"mx{j + 1}.{name}"
            fields["preference"] = 10 * (j + 1)
            fields["trust"] = ["public"]  # lists of its own: a model's lists are never shared
            fields["down"] = []
            hosts.append(fields)
        return hosts

    def _make(self, index: int) -> RemoteDomain:
        population, name = self.population, self.name(index)
        hosts = self._host_fields(index, name)
        # In the order of the model's fields, as validation would set them (repr follows it).
        domain: dict[str, Any] = {"name": name, "mx": [], "mta_sts": None, "dnssec": Dnssec.INSECURE, "tls_rpt": None}
        if self._policy_draws is not None and population.policies is not None:
            per_domain, per_host = self._policy_draws
            first, last = self._first_host[index], self._first_host[index + 1]
            _add_policies(
                domain, hosts, index, per_domain[index].tolist(), per_host[first:last].tolist(), population.policies
            )
        # Built without validation: every value comes from a validated population.
        domain["mx"] = [_unvalidated(RemoteHost, fields, _HOST_FIELDS) for fields in hosts]
        return _unvalidated(RemoteDomain, domain, _DOMAIN_FIELDS)


RANK_DIGITS = 6  # a generated domain's rank, zero-padded to this many digits
SUFFIX = ".example"  # every generated domain's parent (RFC 2606: never a real one)


def domain_name(population: Population, rank: int) -> str:
    return f"{population.name}-{rank:0{RANK_DIGITS}d}{SUFFIX}"


def _requires_tls(population: Population, tls: ServerTls, uniform: Draws[float]) -> bool:
    """Whether a generated host refuses plaintext; a host without STARTTLS draws only
    when its share is set, so populations without it keep their draws."""
    if tls is not ServerTls.NONE:
        return uniform() < population.requires_tls
    share = population.requires_tls_without_starttls
    return share > 0 and uniform() < share


def _add_policies(
    domain: dict[str, Any],
    hosts: list[dict[str, Any]],
    rank: int,
    draws: list[float],
    host_draws: list[list[float]],
    shares: PopulationPolicies,
) -> None:
    """Transport policies from the domain's own draws (``_PolicyDraws``), set in the
    fields of the domain and its hosts."""
    modes = list(shares.mta_sts.items())
    mode = StsMode.ENFORCE if rank < shares.mta_sts_top else _pick(modes, draws[0])
    zone = draws[3]
    dnssec = (
        Dnssec.SECURE
        if zone < shares.dnssec_signed
        else Dnssec.BOGUS
        if zone < shares.dnssec_signed + shares.dnssec_bogus
        else Dnssec.INSECURE
    )
    has_dane = dnssec is Dnssec.SECURE and draws[4] < shares.dane
    mismatch = mode is not None and rank >= shares.mta_sts_top and draws[1] < shares.mta_sts_mismatch
    for host, (tlsa_draw, requiretls_draw) in zip(hosts, host_draws, strict=True):
        tlsa = Tlsa.NONE
        if has_dane:
            tlsa = Tlsa.MISMATCH if tlsa_draw < shares.tlsa_mismatch else Tlsa.MATCH
        host["tlsa"] = tlsa
        host["requiretls"] = requiretls_draw < shares.requiretls
        if mode is not None and not mismatch:
            # A domain that publishes MTA-STS serves certificates that validate
            # (assumption); the measured failing share is ``mta_sts_mismatch``.
            host["tls"] = ServerTls.TRUSTED
            host["requires_tls"] = False
    name = domain["name"]
    if mode is not None:
        unreachable = rank >= shares.mta_sts_top and draws[2] < shares.mta_sts_unreachable
        pattern = f"*.mail.{name}" if mismatch else f"*.{name}"
        domain["mta_sts"] = MtaStsPolicy(
            mode=mode, mx=[pattern], policy_host=PolicyHost.UNREACHABLE if unreachable else PolicyHost.OK
        )
    domain["dnssec"] = dnssec
    domain["tls_rpt"] = f"mailto:tlsrpt@{name}" if draws[5] < shares.tls_rpt else None


def _drawn_policies(
    shares: PopulationPolicies, per_domain: np.ndarray, tlsa_draws: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``_add_policies`` draws, for every domain at once: whether it publishes a
    policy that names it (MTA-STS, TLS-RPT), its DNSSEC state (0 signed, 1 bogus, 2
    insecure) and per host its TLSA record (0 none, 1 mismatching, 2 matching). The
    comparisons are ``_add_policies``'s, on the same draws and the same sums."""
    total = 0.0
    for share in shares.mta_sts.values():  # _pick's running sum: a mode below it, none past it
        total += share
    rank = np.arange(len(per_domain))
    publishes = (rank < shares.mta_sts_top) | (per_domain[:, 0] < total) | (per_domain[:, 5] < shares.tls_rpt)
    zone_draw = per_domain[:, 3]
    zone = np.where(
        zone_draw < shares.dnssec_signed, 0, np.where(zone_draw < shares.dnssec_signed + shares.dnssec_bogus, 1, 2)
    )
    has_dane = (zone == 0) & (per_domain[:, 4] < shares.dane)
    tlsa = np.where(has_dane[owner], np.where(tlsa_draws < shares.tlsa_mismatch, 1, 2), 0)
    return publishes, zone.astype(np.int64), tlsa.astype(np.int64)


def _pick(modes: list[tuple[StsMode, float]], draw: float) -> StsMode | None:
    """The mode whose cumulative share first exceeds ``draw``; ``None`` past them all."""
    total = 0.0
    for mode, share in modes:
        total += share
        if draw < total:
            return mode
    return None


def generate(population: Population) -> GeneratedPopulation:
    """The population's domains and popularity (cached: a sweep generates each once)."""
    return _generate(population.model_dump_json())


@lru_cache(maxsize=16)
def _generate(spec: str) -> GeneratedPopulation:
    population = Population.model_validate_json(spec)
    rng = np.random.default_rng(np.random.SeedSequence(population.seed, spawn_key=(0xB0B,)))
    count = population.domains
    mx_counts = list(population.mx_per_domain)
    mx_draw = rng.choice(len(mx_counts), size=count, p=list(population.mx_per_domain.values()))
    capabilities = list(population.tls)
    # One uniform a host for its TLS capability, exactly as rng.choice(p=...) would draw
    # it, then its other draws: the hosts of earlier versions, at a fraction of the cost.
    tls_cdf = cumulative_shares(list(population.tls.values())).tolist()
    uniform: Draws[float] = block_draws(rng.random)
    first_host = [0]
    hosts: list[tuple[ServerTls, bool, Outages | None, float | None]] = []
    for rank in range(count):
        for _ in range(mx_counts[int(mx_draw[rank])]):
            tls = capabilities[bisect_right(tls_cdf, uniform())]
            requires = _requires_tls(population, tls, uniform)
            outages = population.outages if uniform() < population.outage_share else None
            greylist = population.greylist if uniform() < population.greylist_share else None
            hosts.append((tls, requires, outages, greylist))
        first_host.append(len(hosts))
    policy_draws = None
    if population.policies is not None:
        # Transport policies from a stream of their own: every domain draws the same six
        # numbers and every host two, whatever the shares, so changing one share moves no
        # other domain's or host's draws.
        policy_rng = np.random.default_rng(np.random.SeedSequence(population.seed, spawn_key=(0xB0B, 1)))
        policy_draws = (policy_rng.random((count, 6)), policy_rng.random((len(hosts), 2)))
    weights = 1.0 / np.arange(1, count + 1, dtype=float) ** population.zipf_exponent
    weights /= weights.sum()
    return GeneratedPopulation(population, tuple(weights.tolist()), first_host, hosts, policy_draws)

"""What a run will cost, known from its file before it starts (issue 21).

The estimate is deliberately pessimistic where it matters: memory counts every message
of the run as queued until the longest expiry timeout of the products in it (what a
policy that fails every delivery does), and every generated domain and MX host as
planned. A run whose estimate exceeds this machine's memory, or the ceiling below, is
refused before it starts: a user mistake (10 million messages an hour for ten years)
then costs a line, not a machine out of memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sim.mta.profiles import get_profile
from sim.scenario.model import Scenario
from sim.wording import duration

BASE_BYTES = 200e6  # the interpreter, numpy, pandas and the run's fixed tables
BYTES_PER_QUEUED_MESSAGE = 250.0  # a Message (slots) in a queue: 168 B measured, plus its place in a cohort
BYTES_PER_DOMAIN = 5_000.0  # a planned generated domain (issue 22: ~0.5 GB for 100k domains)
BYTES_PER_HOST = 1_000.0  # each further MX host of a generated domain
SECONDS_PER_MESSAGE = 1e-5  # 4.7 us a message on the fast path (issue 22), doubled for retries
MESSAGE_CEILING = 5e9  # beyond this a run is days long on any machine: refused unless asked for
MEMORY_SHARE = 0.8  # of physical memory a run may plan to use


@dataclass(frozen=True)
class Estimate:
    messages: float
    queued_peak: float
    domains: int
    hosts: float
    memory_bytes: float
    seconds: float

    def describe(self) -> str:
        count = f"{self.messages:,.0f}" if self.messages < 1e7 else f"{self.messages:.2g}"
        return f"~{count} messages, ~{_size(self.memory_bytes)} at most, ~{duration(self.seconds)} on one core"


def estimate(scenario: Scenario) -> Estimate:
    hours = scenario.run.duration / 3600
    traffic = scenario.traffic
    rate = sum(f.rate_per_hour for f in traffic.outbound) + sum(f.rate_per_hour for f in traffic.inbound)
    messages = rate * hours
    profiles = {scenario.organisation.profile, *(s.profile for s in scenario.organisation.servers if s.profile)}
    profiles |= {f.profile for f in traffic.inbound}
    longest = max(get_profile(p).expiration_timeout for p in profiles)
    queued = rate * min(scenario.run.duration, longest) / 3600
    population = scenario.remotes.population
    domains, hosts = len(scenario.remotes.domains), float(sum(len(d.mx) for d in scenario.remotes.domains))
    if population is not None:
        domains += population.domains
        hosts += population.domains * sum(count * share for count, share in population.mx_per_domain.items())
    memory = BASE_BYTES + queued * BYTES_PER_QUEUED_MESSAGE + domains * BYTES_PER_DOMAIN + hosts * BYTES_PER_HOST
    return Estimate(messages, queued, domains, hosts, memory, messages * SECONDS_PER_MESSAGE)


def too_big(found: Estimate) -> str | None:
    """Why a run of this estimate is refused (None: it may run)."""
    memory = physical_memory()
    if memory and found.memory_bytes > MEMORY_SHARE * memory:
        return f"{found.describe()}: more than this machine's {_size(memory)} of memory"
    if found.messages > MESSAGE_CEILING:
        return f"{found.describe()}: more than {MESSAGE_CEILING:.0e} messages"
    return None


def physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


def _size(octets: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if octets >= scale:
            return f"{octets / scale:.3g} {unit}"
    return f"{octets / 1e3:.3g} kB"

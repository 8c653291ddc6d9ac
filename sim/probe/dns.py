"""DNS and policy lookups for the probe, behind one small interface so that tests inject
their own (no test touches the network)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.resolver

STS_POLICY_LIMIT = 64 * 1024  # RFC 8461 s.3.3 suggests 64 KB


class Resolver(Protocol):
    async def mx(self, domain: str) -> list[tuple[int, str]]: ...

    async def addresses(self, host: str) -> list[tuple[str, int]]: ...

    async def txt(self, name: str) -> list[str]: ...

    async def tlsa(self, name: str) -> tuple[list[str], bool | None]:
        """(records in presentation form, whether the answer was DNSSEC-secure; None: lookup failed)."""
        ...

    async def sts_policy(self, domain: str) -> str | None:
        """The body of https://mta-sts.<domain>/.well-known/mta-sts.txt, or None."""
        ...


class DnsResolver:
    """The system's resolver (dnspython), with a lifetime per query. DNSSEC status is the
    resolver's AD bit: use a validating resolver (RFC 7672 s.2.1)."""

    def __init__(self, timeout: float) -> None:
        self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.use_edns(0, dns.flags.DO, 1232)
        self._timeout = timeout

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return [(0, domain)]  # implicit MX: the domain's own address (RFC 5321 s.5.1)
        hosts = sorted((r.preference, r.exchange.to_text().rstrip(".").lower()) for r in answer)
        return [] if hosts == [(0, "")] else hosts  # null MX "0 ." (RFC 7505): no mail

    async def addresses(self, host: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for kind in ("A", "AAAA"):
            try:
                found += [(r.to_text(), 25) for r in await self._resolver.resolve(host, kind)]
            except dns.exception.DNSException:
                continue
        return found

    async def txt(self, name: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(name, "TXT")
        except dns.exception.DNSException:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def tlsa(self, name: str) -> tuple[list[str], bool | None]:
        try:
            answer = await self._resolver.resolve(name, "TLSA", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return [], False
        except dns.exception.DNSException:
            return [], None
        secure = bool(answer.response.flags & dns.flags.AD)
        return [r.to_text() for r in answer.rrset or []], secure

    async def sts_policy(self, domain: str) -> str | None:
        return await asyncio.to_thread(_fetch, f"https://mta-sts.{domain}/.well-known/mta-sts.txt", self._timeout)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # RFC 8461 s.3.3: no redirects
        return None


def _fetch(url: str, timeout: float) -> str | None:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return str(response.read(STS_POLICY_LIMIT).decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None

"""DNS and policy lookups for the probe, behind one small interface so that tests inject
their own (no test touches the network)."""

from __future__ import annotations

import asyncio
import ssl
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

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NoAnswer:
            return [(0, domain)]  # implicit MX: the domain's own address (RFC 5321 s.5.1)
        # NXDOMAIN, SERVFAIL and timeouts propagate: the probe records the domain as dns-failed.
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
        return await fetch_policy(f"mta-sts.{domain}")


HEADER_LIMIT = 16 * 1024  # bytes of status line and headers before the body


async def fetch_policy(
    host: str, port: int = 443, context: ssl.SSLContext | None = None, address: str | None = None
) -> str | None:
    """GET https://HOST/.well-known/mta-sts.txt (RFC 8461 s.3.3): 200 only, no redirect,
    at most 64 KiB of body. Every step (connect, TLS, headers, body) is awaited, so the
    caller's deadline cancels a host that sends a byte every half second; None when the
    policy cannot be had. ``address``: connect there instead of resolving ``host``."""
    context = context or ssl.create_default_context()
    try:
        reader, writer = await asyncio.open_connection(address or host, port, ssl=context, server_hostname=host)
    except (OSError, ssl.SSLError, ValueError):
        return None
    try:
        request = f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEADER_LIMIT:
            return None
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            return None
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:]) if k
        }
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            return None  # not what a policy host sends; refuse rather than mis-read
        length = headers.get(b"content-length")
        wanted = min(int(length), STS_POLICY_LIMIT + 1) if length and length.isdigit() else STS_POLICY_LIMIT + 1
        body = b""
        while len(body) < wanted:
            chunk = await reader.read(wanted - len(body))
            if not chunk:
                break
            body += chunk
        if len(body) > STS_POLICY_LIMIT:
            return None  # RFC 8461 s.3.3: a policy is small; more is not a policy
        return body.decode("utf-8", "replace")
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return None
    finally:
        writer.close()

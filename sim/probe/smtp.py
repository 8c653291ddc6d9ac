"""A bounded, polite STARTTLS probe of one SMTP host (reference probe-and-import.md A1-A3).

Sequence: banner (expect 220) -> EHLO -> STARTTLS if offered -> TLS handshake -> EHLO
again -> QUIT. It never sends MAIL, RCPT or DATA. Safe against hostile servers: one
deadline for the whole session (not per read), replies bounded in line length, line
count and bytes, and every failure recorded as the probe's outcome, never raised.

The handshake observes rather than trusts (no verification, the lowest protocol
version, ``@SECLEVEL=0``) so that a TLS-1.0-only host is seen as it is; the
certificate is then judged fault by fault (``sim/probe/judge.py``), and trust in its
chain is learnt from a second, verifying handshake against the trust store.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
from dataclasses import dataclass, field

MAX_LINE = 2048  # bytes per reply line (RFC 5321 s.4.5.3.1.5 allows 512)
MAX_LINES = 100  # lines per reply
MAX_REPLY = 64 * 1024  # bytes per reply
EHLO_NAME = "probe.tlssim.invalid"


class ProbeError(Exception):
    """Why a session ended early (recorded, never raised out of ``probe_host``)."""


@dataclass
class Reply:
    code: int
    lines: list[str]


@dataclass
class HostProbe:
    """What one session with one address of one MX host showed."""

    host: str
    address: str
    port: int
    probed_at: dt.datetime
    banner: int | None = None
    extensions: list[str] = field(default_factory=list)
    starttls_offered: bool = False
    starttls_reply: int | None = None
    handshake_error: str | None = None
    version: str | None = None  # negotiated protocol, e.g. "TLSv1.3"
    cipher: str | None = None
    certificate: bytes | None = None  # the leaf, DER
    verify_error: str | None = None  # the verifying handshake's error, if any
    requiretls: bool = False
    error: str | None = None  # the session ended early: deadline, closed, garbage, ...
    seconds: float = 0.0

    @property
    def reached(self) -> bool:
        return self.banner is not None


def observing_context() -> ssl.SSLContext:
    """Sees every server as it is: no verification, every version, every cipher."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def verifying_context(cafile: str | None) -> ssl.SSLContext:
    """Trusts what the system (or ``cafile``) trusts; the name is judged separately."""
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """One SMTP reply, bounded: a line per ``MAX_LINE``, ``MAX_LINES`` lines, ``MAX_REPLY`` bytes."""
    lines: list[str] = []
    size = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise ProbeError("reply line too long") from None
        except asyncio.IncompleteReadError:
            raise ProbeError("connection closed") from None
        size += len(raw)
        if len(lines) >= MAX_LINES or size > MAX_REPLY:
            raise ProbeError("reply too long")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise ProbeError("not an SMTP reply")
        lines.append(text[4:])
        if len(text) == 3 or text[3] == " ":
            return Reply(int(text[:3]), lines)


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> Reply:
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    return await read_reply(reader)


async def _session(record: HostProbe, context: ssl.SSLContext, *, observe: bool) -> None:
    reader, writer = await asyncio.open_connection(record.address, record.port, limit=MAX_LINE)
    try:
        banner = await read_reply(reader)
        if observe:
            record.banner = banner.code
        if banner.code != 220:
            return
        ehlo = await _command(reader, writer, f"EHLO {EHLO_NAME}")
        extensions = [line.split()[0].upper() for line in ehlo.lines[1:] if line.split()]
        if observe:
            record.extensions = extensions
            record.starttls_offered = "STARTTLS" in extensions
        if "STARTTLS" not in extensions:
            await _quit(reader, writer)
            return
        go = await _command(reader, writer, "STARTTLS")
        if observe:
            record.starttls_reply = go.code
        if go.code != 220:
            await _quit(reader, writer)
            return
        await _handshake(record, writer, context, observe=observe)
        after = await _command(reader, writer, f"EHLO {EHLO_NAME}")  # RFC 3207 s.4.2: ask again
        if observe:
            record.requiretls = any(line.split()[:1] == ["REQUIRETLS"] for line in after.lines[1:])
        await _quit(reader, writer)
    finally:
        writer.close()


async def _handshake(
    record: HostProbe, writer: asyncio.StreamWriter, context: ssl.SSLContext, *, observe: bool
) -> None:
    try:
        await writer.start_tls(context, server_hostname=record.host)
    except ssl.SSLCertVerificationError as exc:
        record.verify_error = exc.verify_message or str(exc)
        raise ProbeError("verification failed") from None
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        if observe:
            record.handshake_error = str(exc) or type(exc).__name__
        raise ProbeError("handshake failed") from None
    tls = writer.get_extra_info("ssl_object")
    if observe and tls is not None:
        record.version = tls.version()
        record.cipher = (tls.cipher() or ("",))[0]
        record.certificate = tls.getpeercert(binary_form=True)


async def _quit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ProbeError, OSError, TimeoutError):
        await asyncio.wait_for(_command(reader, writer, "QUIT"), 2.0)


async def probe_host(host: str, address: str, port: int, deadline: float, cafile: str | None = None) -> HostProbe:
    """Probe one address of one MX host within ``deadline`` seconds in all."""
    record = HostProbe(host, address, port, dt.datetime.now(dt.UTC).replace(microsecond=0))
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            await _session(record, observing_context(), observe=True)
            if record.certificate is not None:
                # A second session learns whether the chain reaches a trusted root.
                with contextlib.suppress(ProbeError):
                    await _session(record, verifying_context(cafile), observe=False)
    except TimeoutError:
        record.error = f"deadline {deadline:g}s exceeded"
    except ProbeError as exc:
        if record.handshake_error is None:
            record.error = str(exc)
    except OSError as exc:
        record.error = f"cannot connect: {exc.strerror or exc}"
    record.seconds = round(time.monotonic() - started, 3)
    return record

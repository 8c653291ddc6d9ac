"""What a session between one sender and one receiving host comes to, over simulated time.

The outcome of a STARTTLS session is a pure function of the two sides' settings and
certificates and of the instant (certificates expire; a pending certificate gets
approved). It is computed once per (sender, host) pair as a short list of segments,
split where a certificate's validity or availability changes, so the hot path looks
up a segment instead of validating anything.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509

from sim.pki.authorities import ServerCertificate, remote_certificate
from sim.pki.certs import Identity
from sim.tls.handshake import ClientSide, ServerSide, handshake
from sim.tls.negotiation import PLAINTEXT, Negotiation, negotiate
from sim.vocabulary import NO_TLS, ClientCertificatePolicy, Failure, ServerTls, TlsLevel, TlsVersion

NO_CERTIFICATE = Negotiation(None, Failure.NO_CERTIFICATE)


@dataclass(frozen=True, eq=False)
class Sender:
    """The client side of a session: its level, versions, certificate and trust."""

    level: TlsLevel
    versions: tuple[TlsVersion, TlsVersion]
    certificate: ServerCertificate | None = None
    needs_certificate: bool = False  # Exchange 2003: no certificate, no TLS at all
    roots: tuple[x509.Certificate, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class Receiver:
    """The server side: its name and label, and what it holds."""

    name: str
    tls: ServerTls
    requires_tls: bool
    versions: tuple[TlsVersion, TlsVersion] = ("1.0", "1.3")
    client_certificates: ClientCertificatePolicy = "ignore"
    roots: tuple[x509.Certificate, ...] = field(default=())
    certificate: ServerCertificate | None = None  # ours; remote hosts' come from their label
    certificate_expires_in: float | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    negotiation: Negotiation
    fallback: Negotiation  # a plaintext retry on the same host


class SessionPlan:
    """Outcomes of one (sender, receiver) pair, piecewise constant in simulated time."""

    __slots__ = ("_segments", "_starts", "first")

    def __init__(self, starts: list[float], segments: list[Segment]) -> None:
        self._starts = starts
        self._segments = segments
        self.first = segments[0]

    @property
    def is_constant(self) -> bool:
        """One outcome for the whole run (no certificate expires, no validity starts)."""
        return len(self._segments) == 1

    def at(self, now: float) -> Segment:
        if len(self._segments) == 1:
            return self.first
        return self._segments[bisect_right(self._starts, now) - 1]

    def mapped(self, rule: Callable[[Negotiation], Negotiation]) -> SessionPlan:
        """This plan with every outcome passed through ``rule``; no plaintext fallback
        (a transport policy that governs a session never allows one)."""
        segments = [Segment(rule(s.negotiation), rule(s.negotiation)) for s in self._segments]
        return SessionPlan(list(self._starts), segments)

    @classmethod
    def constant(cls, outcome: Negotiation) -> SessionPlan:
        return cls([0.0], [Segment(outcome, outcome)])


def plan(sender: Sender, receiver: Receiver, start: dt.datetime, horizon: float) -> SessionPlan:
    """Split [0, horizon] where something changes and decide each piece once."""
    breaks = {0.0}
    if sender.certificate is not None:
        breaks.add(sender.certificate.available_from)
        if receiver.client_certificates != "ignore":
            breaks.update(_validity(sender.certificate.identity.certificate, start))
    if receiver.certificate is not None:
        breaks.add(receiver.certificate.available_from)
    if sender.level is TlsLevel.VERIFY:
        presented = _server_identity(receiver, receiver.tls, start)
        if presented is not None:
            breaks.update(_validity(presented.certificate, start))
    starts = sorted(b for b in breaks if 0.0 <= b < horizon) or [0.0]
    segments = [_decide(sender, receiver, start, at) for at in starts]
    merged_starts, merged = [starts[0]], [segments[0]]
    for at, segment in zip(starts[1:], segments[1:], strict=True):
        if segment != merged[-1]:
            merged_starts.append(at)
            merged.append(segment)
    return SessionPlan(merged_starts, merged)


def _server_identity(receiver: Receiver, label: ServerTls, start: dt.datetime) -> Identity | None:
    """What the receiving server presents: our certificate, or one its label describes."""
    if receiver.certificate is not None:
        return receiver.certificate.identity
    if label in NO_TLS:
        return None
    return remote_certificate(receiver.name, label, start, receiver.certificate_expires_in)


def _validity(certificate: x509.Certificate, start: dt.datetime) -> list[float]:
    return [
        (certificate.not_valid_before_utc - start).total_seconds(),
        # The verifier accepts through not_after inclusive; the outcome changes just after it.
        (certificate.not_valid_after_utc - start).total_seconds() + 1.0,
    ]


def _decide(sender: Sender, receiver: Receiver, start: dt.datetime, at: float) -> Segment:
    label = receiver.tls
    ours = receiver.certificate
    if ours is not None and at < ours.available_from:
        label = ServerTls.NONE  # our server has no certificate yet: it offers no STARTTLS
    fallback = negotiate(TlsLevel.OFF, label, receiver.requires_tls)
    level = sender.level
    if level is TlsLevel.OFF or label in NO_TLS:
        return Segment(negotiate(level, label, receiver.requires_tls), fallback)
    client_identity: Identity | None = None
    if sender.certificate is not None and at >= sender.certificate.available_from:
        client_identity = sender.certificate.identity
    if client_identity is None and sender.needs_certificate:
        return Segment(NO_CERTIFICATE if level.rank >= TlsLevel.REQUIRED.rank else PLAINTEXT, fallback)
    # The server's certificate matters only to a client that verifies it.
    server_identity = _server_identity(receiver, label, start) if level is TlsLevel.VERIFY else None
    instant = start + dt.timedelta(seconds=at)
    outcome = handshake(
        ClientSide(level is TlsLevel.VERIFY, sender.versions, client_identity, sender.roots),
        ServerSide(server_identity, receiver.versions, receiver.client_certificates, receiver.roots),
        receiver.name,
        instant,
    )
    return Segment(outcome, fallback)

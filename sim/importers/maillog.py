"""``tlssim import maillog``: a Postfix log, read as a stream, into ``Observations``.

One pass, oldest file first (``syslog.order_files``), holding only the messages in
flight: a message is followed from its first line to qmgr's ``removed`` and then folded
into the per-domain tallies. What it follows:

* **Hops are not recipients.** A delivery to a content filter or another Postfix
  instance (loopback, the instance's own address, or any next hop whose ``queued as
  QID`` names a message of this same log) re-injects the message under a new queue id;
  only that message's final relay counts. Mail delivered by ``lmtp``, ``local``,
  ``virtual`` or ``pipe`` is local: its domain is ours. Mail that only ever went to
  private addresses while other mail went to the Internet is internal.
* **Notifications apart.** Messages that bounce(8) generates (``sender non-delivery
  notification: QID``, delay and success notices) and other null-sender mail are
  counted by kind, never as user traffic or as a recipient domain.
* **TLS per session, per host.** The class of a delivery comes from, in order: the
  ``tls=`` field (Postfix 3.11); a refusal text (``530 ... STARTTLS``, ``TLS is required,
  but was not offered``, ``handshake failure``, ``certificate not verified``); the TLS line
  of the same process for the same host, logged within the session (the delivery's
  ``delays`` c + d before it, or any time earlier for a reused connection, ``conn_use``);
  a ``tlsproxy`` line for the same host (``smtp_tls_connection_reuse``); an SSL error of
  the same process (plaintext after a failed handshake). Otherwise the log says nothing,
  which is ``none`` only for an instance that logs TLS at all.
* **Queue ids recur.** A queue id seen again after ``removed`` (another day, another
  rotation) is a new message.

Local parts of addresses are never kept: a recipient is its domain and a CRC of its
local part.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sim.importers import postfix_log as pl
from sim.importers.observed import Fate, Observations
from sim.importers.syslog import SyslogClock, order_files, start_year
from sim.importers.text import open_lines

HOP_WINDOW = dt.timedelta(minutes=10)
"""How far apart a hop's ``queued as QID`` and that message's own lines may be: a content
filter re-injects before it answers 250 (amavisd's ``forward_method``), so seconds."""
_SLACK = dt.timedelta(seconds=2)  # traditional stamps have whole seconds
_REUSE = dt.timedelta(hours=1)  # a cached connection is not older (smtp_connection_reuse_time_limit 300 s)
_TLS_TEXT = (
    ("Must issue a STARTTLS command first", "requires-tls"),
    ("TLS is required, but was not offered", "none"),
    ("Cannot start TLS: handshake failure", "handshake-fails"),
    ("TLS handshake failed", "handshake-fails"),
    ("Server certificate not verified", "untrusted"),
    ("Server certificate not trusted", "untrusted"),
)


@dataclass(slots=True)
class Message:
    first: dt.datetime
    sender: str | None = None  # "" for the null sender; None: not logged
    size: int | None = None
    client: pl.Endpoint | None = None
    kind: str | None = None  # the notification bounce(8) made it as
    continued: bool = False  # re-injected after a hop: the message was counted before it
    fates: dict[tuple[str, str], Fate] = field(default_factory=dict)
    local: int = 0  # recipients delivered on this host
    expired: bool = False
    waiting: int = 0  # possible hops not yet decided (their queue id not seen yet)
    deadline: dt.datetime | None = None  # when the last of them is decided


@dataclass(slots=True)
class _Handoff:
    """A delivery that may have been a hop: decided when its queue id turns up, or not."""

    parent: Message
    key: tuple[str, str]
    relay: pl.Endpoint
    deadline: dt.datetime
    session: tuple[str, str, str | None, str]  # what to count if it was a remote delivery


class PostfixLogReader:
    """The state of one pass over a Postfix log."""

    def __init__(self, *, accepted_domains: Iterable[str] = (), relays: Iterable[str] = ()) -> None:
        self.obs = Observations()
        self.obs.local_domains.update(d.lower() for d in accepted_domains)
        self.relays = {r.lower() for r in relays}  # configured smart hosts: private, but the way out
        self.inflight: dict[str, Message] = {}
        self.kinds: dict[str, tuple[str | None, bool]] = {}  # queue id -> (kind, continued), before its lines
        self.handoffs: dict[str, _Handoff] = {}
        self.handoff_order: deque[tuple[dt.datetime, str]] = deque()
        self.waiting: deque[tuple[dt.datetime, Message]] = deque()
        self.own: set[str] = set()  # our addresses (instances, re-injection hops)
        self.tls_by_pid: dict[tuple[str, str], tuple[pl.Endpoint, str, dt.datetime]] = {}
        self.tls_by_endpoint: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
        self.failed_by_pid: dict[tuple[str, str], tuple[pl.Endpoint, dt.datetime]] = {}
        self.address_kinds: dict[str, set[str]] = {}  # domain -> {"public", "private"}
        self.generation: dict[str, int] = {}  # instance -> configuration generation (master reloads)

    # ------------------------------------------------------------------ the pass

    def read(self, paths: list[Path], year: int | None = None) -> Observations:
        ordered = order_files(paths)
        clock = SyslogClock(start_year(ordered[0], year))
        for path in ordered:
            for line in open_lines(path):
                self.line(clock, line)
        return self.finish()

    def line(self, clock: SyslogClock, line: str | None) -> None:
        obs = self.obs
        obs.lines += 1
        if line is None:
            obs.unused["line longer than 64 KiB (skipped)"] += 1
            return
        stamped = clock.stamp(line)
        if stamped is None:
            obs.unused["no timestamp"] += 1
            return
        when, rest = stamped
        found = pl.program(rest)
        if found is None:
            obs.unused["not a Postfix line"] += 1
            return
        prog, message = found
        obs.seen(when)
        if self.handoff_order or self.waiting:
            self._expire(when)
        if prog.instance.startswith("postfix-") and pl.is_address(prog.instance[8:]):
            self.own.add(prog.instance[8:])  # postfix-239.58.50.50: an instance named by its address
        queued = pl.queue_id(message)
        if queued is None:
            self._session_line(prog, message, when)
            return
        qid, body = queued
        self._queue_line(prog, qid, body, when)

    def finish(self) -> Observations:
        """Fold what is still in flight (its undelivered recipients are pending)."""
        for child in list(self.handoffs):
            self._remote_after_all(self.handoffs.pop(child))
        self.handoff_order.clear()
        for qid in list(self.inflight):
            self._fold(self.inflight.pop(qid))
        while self.waiting:
            self._fold(self.waiting.popleft()[1])
        self._internal_domains()
        return self.obs

    # ------------------------------------------------------------------ lines

    def _source(self, instance: str) -> str:
        """What a log source is: an instance under one configuration. ``smtp_tls_loglevel``
        changes only when master(8) starts or reloads, so each start or reload begins a
        new source: TLS lines after a reload say nothing of the sessions before it."""
        generation = self.generation.get(instance, 0)
        return f"{instance}#{generation}" if generation else instance

    def _session_line(self, prog: pl.Program, message: str, when: dt.datetime) -> None:
        """Lines about a connection, not a message: TLS established, SSL errors; and
        master(8)'s start and reload lines."""
        if prog.daemon == "master" and message.startswith(("reload", "daemon started")):
            self.generation[prog.instance] = self.generation.get(prog.instance, 0) + 1
            return
        source = self._source(prog.instance)
        if prog.kind == pl.SMTP_CLIENT or prog.daemon == "tlsproxy":
            tls = pl.tls_established(message)
            if tls is not None:
                cls, end = tls
                self.obs.logging_sources.add(source)
                self.tls_by_endpoint[(prog.instance, end.key)] = (cls, when)
                if prog.kind == pl.SMTP_CLIENT:
                    self.tls_by_pid[(prog.instance, prog.pid)] = (end, cls, when)
                return
            failed = pl.handshake_failed(message)
            if failed is not None:
                self.obs.logging_sources.add(source)
                self.failed_by_pid[(prog.instance, prog.pid)] = (failed, when)
                return
        self.obs.unused[f"postfix/{prog.daemon} line"] += 1

    def _queue_line(self, prog: pl.Program, qid: str, body: str, when: dt.datetime) -> None:
        daemon = prog.daemon
        if body == "removed" and daemon in ("qmgr", "postsuper"):
            message = self.inflight.pop(qid, None)
            if message is not None:
                self._fold(message)
            return
        if prog.kind in (pl.SMTP_CLIENT, pl.LOCAL_AGENT) or daemon in ("qmgr", "error", "retry", "discard"):
            found = pl.delivery(body)
            if found is not None:
                self._delivery(prog, self._message(qid, when), found, when)
                return
        if daemon == "qmgr":
            self._qmgr(qid, body, when)
        elif daemon == "smtpd" and body.startswith("client="):
            message = self._message(qid, when, start=True)
            message.client = pl.client(body)
        elif daemon == "pickup" and body.startswith("uid="):
            self._message(qid, when, start=True)
        elif daemon == "cleanup" and body.startswith("message-id="):
            self._message(qid, when)
        elif daemon == "bounce" and (made := pl.notification(body)) is not None:
            kind, child = made
            if child in self.inflight:
                self.inflight[child].kind = kind
            else:
                self.kinds[child] = (kind, False)
        else:
            self.obs.unused[f"postfix/{daemon} line"] += 1

    def _qmgr(self, qid: str, body: str, when: dt.datetime) -> None:
        started = pl.active(body)
        if started is not None:
            message = self._message(qid, when)
            message.sender, message.size = started
        elif pl.expired(body):
            self._message(qid, when).expired = True
        else:
            self.obs.unused["postfix/qmgr line"] += 1

    def _message(self, qid: str, when: dt.datetime, *, start: bool = False) -> Message:
        """The message in flight under ``qid``; a new one if none is (or if a new one
        starts under an id whose earlier message lost its ``removed`` line)."""
        message = self.inflight.get(qid)
        if message is not None and start and (message.fates or message.local):
            self._fold(self.inflight.pop(qid))
            message = None
        if message is None:
            kind, continued = self.kinds.pop(qid, (None, False))
            message = self.inflight[qid] = Message(first=when, kind=kind, continued=continued)
            handoff = self.handoffs.pop(qid, None)
            if handoff is not None:
                self._confirm_hop(handoff, message)
        return message

    # ------------------------------------------------------------------ deliveries

    def _delivery(self, prog: pl.Program, message: Message, found: pl.Delivery, when: dt.datetime) -> None:
        address = found.recipient
        if "@" not in address:
            self.obs.unused["recipient without a domain"] += 1
            return
        local_part, domain = address.rsplit("@", 1)
        domain = domain.lower().rstrip(".")
        key = (domain, f"{zlib.crc32(local_part.encode()):08x}")
        if prog.kind == pl.LOCAL_AGENT:
            self.obs.local_domains.add(domain)
            message.local += 1
            return
        if prog.daemon in ("error", "retry", "discard"):
            self.obs.unused[f"postfix/{prog.daemon} delivery (our configuration, not a remote host)"] += 1
            return
        relay = found.relay
        if self._is_hop(message, found, when):
            self.obs.hops[relay.key] += 1
            return
        fate = message.fates.setdefault(key, Fate())
        if not relay.addr:
            fate.attempt(found.status, None)
            return
        cls = self._class(prog, found, when)
        tls = None if cls in (None, "unknown") else cls in ("trusted", "untrusted", "encrypted")
        source = self._source(prog.instance)
        fate.attempt(found.status, tls, source if cls is None else "")
        session = (relay.host, domain, cls, source)
        handoff = self._possible_hop(message, key, found, when, session)
        if handoff is None:
            self._session(relay, session)

    def _session(self, relay: pl.Endpoint, session: tuple[str, str, str | None, str]) -> None:
        host, domain, cls, source = session
        kind = "private" if relay.private and host not in self.relays else "public"
        self.address_kinds.setdefault(domain, set()).add(kind)
        self.obs.session(host, domain, cls, source)

    def _is_hop(self, message: Message, found: pl.Delivery, when: dt.datetime) -> bool:
        """Whether the next hop is this host again: loopback, an address of ours, or the
        peer that answered ``queued as QID`` with a queue id of this log (seen already).
        The re-injected message continues this one (same notification kind, not counted
        again)."""
        relay = found.relay
        child = pl.queued_as(found.text) if found.status == "sent" and relay.addr else None
        if relay.loopback or (relay.addr and relay.addr in self.own):
            if child is not None:
                self._continue(message, child)
            return True
        seen = self.inflight.get(child) if child is not None else None
        if child is None or seen is None or abs(seen.first - when) > HOP_WINDOW:
            return False
        if seen.client is not None and not seen.client.loopback and seen.client.addr != relay.addr:
            return False  # a remote queue id that happens to match one of ours
        self.own.add(relay.addr)
        self._continue(message, child)
        return True

    def _continue(self, parent: Message, child: str) -> None:
        """The re-injected message ``child`` carries on ``parent``: its notification kind,
        and whether it was counted already (a notification made here, or one whose
        recipients were counted before the hop)."""
        counted = parent.kind is not None or parent.continued or bool(parent.fates) or parent.local > 0
        seen = self.inflight.get(child)
        if seen is not None:
            seen.kind, seen.continued = seen.kind or parent.kind, seen.continued or counted
        elif parent.kind is not None or counted:  # only then is there anything to carry
            self.kinds[child] = (parent.kind, counted)

    def _possible_hop(
        self,
        message: Message,
        key: tuple[str, str],
        found: pl.Delivery,
        when: dt.datetime,
        session: tuple[str, str, str | None, str],
    ) -> _Handoff | None:
        """A delivery answered ``queued as QID`` with a queue id not seen yet: held until
        that id turns up (a hop after all) or HOP_WINDOW passes (a remote delivery)."""
        child = pl.queued_as(found.text) if found.status == "sent" else None
        if child is None or child in self.handoffs:
            return None
        deadline = when + HOP_WINDOW
        handoff = self.handoffs[child] = _Handoff(message, key, found.relay, deadline, session)
        self.handoff_order.append((deadline, child))
        message.waiting += 1
        message.deadline = deadline
        return handoff

    def _confirm_hop(self, handoff: _Handoff, child: Message) -> None:
        parent = handoff.parent
        parent.fates.pop(handoff.key, None)
        counted = parent.kind is not None or parent.continued or bool(parent.fates) or parent.local > 0
        child.kind, child.continued = child.kind or parent.kind, child.continued or counted
        parent.waiting -= 1
        self.own.add(handoff.relay.addr)
        self.obs.hops[handoff.relay.key] += 1

    def _remote_after_all(self, handoff: _Handoff) -> None:
        handoff.parent.waiting -= 1
        self._session(handoff.relay, handoff.session)

    def _class(self, prog: pl.Program, found: pl.Delivery, when: dt.datetime) -> str | None:
        """The TLS class of the session that carried this attempt (see module doc)."""
        if found.tls is not None:
            cls = pl.tls_feature_class(found.tls)
            if cls is not None:
                return cls
        for phrase, cls in _TLS_TEXT:
            if phrase in found.text:
                return cls
        if " 530 " in f" {found.text} " and "STARTTLS" in found.text:
            return "requires-tls"
        relay = found.relay
        oldest = when - dt.timedelta(seconds=found.setup) - _SLACK if not found.conn_use else when - _REUSE
        by_pid = self.tls_by_pid.get((prog.instance, prog.pid))
        if by_pid is not None and by_pid[0].key == relay.key and by_pid[2] >= oldest:
            return by_pid[1]
        by_endpoint = self.tls_by_endpoint.get((prog.instance, relay.key))
        if by_endpoint is not None and by_endpoint[1] >= oldest:
            return by_endpoint[0]
        failed = self.failed_by_pid.get((prog.instance, prog.pid))
        if failed is not None and failed[0].host == relay.host and failed[1] >= when - _REUSE:
            return "handshake-fails"
        return None

    # ------------------------------------------------------------------ endings

    def _fold(self, message: Message) -> None:
        if message.waiting > 0 and message.deadline is not None:
            self.waiting.append((message.deadline, message))
            return
        by_domain: dict[str, list[Fate]] = {}
        for (domain, _), fate in message.fates.items():
            if message.expired and fate.final == "pending":
                fate.final = "expired"
            by_domain.setdefault(domain, []).append(fate)
        if message.kind is not None or message.sender == "":
            if not (message.continued or message.kind or message.fates or message.local):
                return  # only hops: its re-injection counts it
            self.obs.notification(
                message.kind or "null sender, not made here",
                message.local,
                list(message.fates.values()),
                new=not message.continued,
            )
        else:
            by_domain = {d: f for d, f in by_domain.items() if d not in self.obs.local_domains}
            self.obs.message(message.first, message.size, by_domain)

    def _expire(self, now: dt.datetime) -> None:
        """Give up on hops whose queue id did not turn up: they were remote deliveries."""
        while self.handoff_order and self.handoff_order[0][0] <= now:
            _, child = self.handoff_order.popleft()
            handoff = self.handoffs.get(child)
            if handoff is not None and handoff.deadline <= now:
                self._remote_after_all(self.handoffs.pop(child))
        while self.waiting and (self.waiting[0][0] <= now or self.waiting[0][1].waiting <= 0):
            self._fold(self.waiting.popleft()[1])

    def _internal_domains(self) -> None:
        """Domains whose mail only went to private addresses, in a log where other mail
        went to the Internet: internal destinations, not outbound traffic."""
        if not any("public" in kinds for kinds in self.address_kinds.values()):
            return  # everything goes to a private next hop: that is the way out (a relay)
        for domain, kinds in self.address_kinds.items():
            if kinds == {"private"}:
                self.obs.internal_domains.add(domain)


def read_maillog(
    paths: list[Path], year: int | None = None, *, accepted_domains: Iterable[str] = (), relays: Iterable[str] = ()
) -> Observations:
    """Read a Postfix log (files in any order, plain or gzip) into observations."""
    return PostfixLogReader(accepted_domains=accepted_domains, relays=relays).read(paths, year)

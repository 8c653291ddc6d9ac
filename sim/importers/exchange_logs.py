"""``tlssim import exchange-logs``: Exchange 2013-SE message tracking logs and SMTP send
protocol logs -> ``Observations`` (the same tallies a Postfix log gives).

Both are W3C-style CSV files whose ``#Fields:`` header names the columns; the order is
read from each file's own header, never assumed. What is used:

* **Message tracking** (``MSGTRK*.LOG``; ``#Log-type: Message Tracking Log``;
  ``date-time, ..., server-ip, server-hostname, connector-id, source, event-id,
  message-id, recipient-address, recipient-status, total-bytes, ..., return-path``):
  ``SEND`` (source SMTP) is a delivery to ``server-hostname`` / ``server-ip`` through the
  send connector ``connector-id``; ``DEFER`` a deferral (``recipient-status``
  ``[{LRT=..};{LED=451 4.4.0 ..};{FQDN=host};{IP=addr}]``); ``FAIL`` a permanent failure
  or expiry (``550 4.4.7 QUEUE.Expired``); ``DELIVER`` a local mailbox delivery (its
  domain is ours); ``DSN`` a notification the server generated. Sends to the
  organisation's own servers or through ``Intra-Organization SMTP Send Connector`` are
  hops, not outbound.
* **Send protocol** (``SEND*.LOG``; ``#Log-type: SMTP Send Protocol Log``;
  ``date-time, connector-id, session-id, sequence-number, local-endpoint,
  remote-endpoint, event, data, context``; events ``+`` connect, ``-`` disconnect, ``>``
  sent, ``<`` received, ``*`` information): one session per session-id. Its TLS class:
  a ``STARTTLS`` keyword in the EHLO reply, ``TLS protocol SP_PROT_TLS1_2_CLIENT
  negotiation succeeded``, ``TLS negotiation failed with error ...``, a ``530`` STARTTLS
  refusal; ``sending message with RecordId N and InternetMessageId <id>`` ties it to the
  message. Protocol logging is off by default (``-ProtocolLoggingLevel None``): a send
  with no session logged has class ``unknown``.

Files are read in time order, merged by their ISO 8601 stamps (one chain per folder and
file-name prefix, e.g. ``MSGTRK``, ``MSGTRKMS``, ``SEND``), holding only recent sessions
and messages in flight. Exchange 2003's tracking log is not read (its SMTP event ids are
not documented in a source found here, and it holds no TLS facts).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import re
import zlib
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import NO_VALUE, ScenarioError
from sim.importers.observed import Fate, Observations
from sim.importers.postfix_log import address_kind
from sim.importers.text import ascii_int, open_lines

TRACKING, SEND_PROTOCOL = "Message Tracking Log", "SMTP Send Protocol Log"
SESSION_WINDOW = dt.timedelta(minutes=15)  # a SEND is logged when its session ends
QUIET = dt.timedelta(hours=1)  # a message with every fate final and no event for this long is done
_NAMES = re.compile(r"(MSGTRK[A-Z]*|SEND|RECV)[0-9].*\.LOG(\.GZ)?", re.IGNORECASE)
_PREFIX = re.compile(r"[A-Za-z]+")
_STATUS_SPLIT = re.compile(r";(?=\s*(?:\[|\{|[245][0-9][0-9][ -]))")
_ENHANCED = re.compile(r"\b([245])\.[0-9]{1,3}\.[0-9]{1,3}\b")
_LED_HOST = re.compile(r"\{FQDN=([^}]*)\};\{IP=([^}]*)\}")
_INTERNET_ID = re.compile(r"InternetMessageId <([^>]*)>")
_TLS_FAILED = re.compile(r"TLS negotiation failed with error (\w+)")
_CERT_ERRORS = ("untrusted", "root", "expired", "cnnomatch", "wrongprincipal", "revoked", "certificate")
# Deferral texts of Exchange's own TLS refusals (mta-semantics 2b; profiles _EXCHANGE_2016_STATUSES).
_DEFER_TEXT = (
    ("4.4.317", "none"),
    ("TLS required, not supported", "none"),
    ("4.7.320", "untrusted"),
    ("Certificate validation failed", "untrusted"),
    ("TLS negotiation failed", "handshake-fails"),
    ("Must issue a STARTTLS command first", "requires-tls"),
)
INTRA_ORG = ("intra-organization", "edgesync")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(slots=True)
class _Session:
    """One send protocol log session, as far as it has gone."""

    connector: str
    remote: str = ""  # ip
    offered: bool | None = None  # STARTTLS in the EHLO reply (None: no reply seen)
    started: bool = False
    succeeded: bool = False
    failed: str | None = None  # the TLS error
    refused: bool = False  # 530 ... STARTTLS
    message_ids: set[str] = field(default_factory=set)

    def tls_class(self, verifying: set[str]) -> str | None:
        if self.refused:
            return "requires-tls"
        if self.failed is not None:
            error = self.failed.lower()
            return "untrusted" if any(word in error for word in _CERT_ERRORS) else "handshake-fails"
        if self.succeeded:
            return "trusted" if connector_key(self.connector) in verifying else "encrypted"
        if self.offered is None:
            return None  # never got as far as EHLO: no TLS fact
        return "none" if not self.offered else "unknown"


@dataclass(slots=True)
class _Message:
    first: dt.datetime
    size: int | None = None
    null_sender: bool = False
    fates: dict[tuple[str, str], Fate] = field(default_factory=dict)
    last: dt.datetime = field(default_factory=lambda: _EPOCH)

    def done(self) -> bool:
        return all(f.final != "pending" for f in self.fates.values())


@dataclass
class _File:
    path: Path
    kind: str
    fields: list[str]
    first: str  # the first record's date-time (ISO, sortable as text)


def _header(path: Path) -> _File | None:
    """The file's log type and field names (from its own ``#Fields:`` line)."""
    kind, fields = "", []
    for line in open_lines(path):
        if line is None:
            continue
        line = line.lstrip("\ufeff")
        if line.startswith("#Log-type:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("#Fields:"):
            fields = [f.strip().lower() for f in line.partition(":")[2].split(",")]
        elif line and not line.startswith("#"):
            if not (kind and "date-time" in fields):
                return None
            row = next(csv.reader([line]), [])
            index = fields.index("date-time")
            return _File(path, kind, fields, row[index] if index < len(row) else "")
    return None


def find_logs(paths: Iterable[Path]) -> list[Path]:
    """The files given, and in folders the Exchange log files (``MSGTRK*``, ``SEND*``)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and _NAMES.fullmatch(p.name))
        else:
            found.append(path)
    return found


def _records(chain: list[_File]) -> Iterator[tuple[str, _File, dict[str, str]]]:
    """Each record of each file: a quoted field may hold a line break, so a line with an
    open quote takes the next ones (up to eight) before it is read as CSV."""
    for log in chain:
        pending: list[str] = []
        for line in open_lines(log.path):
            if line is None or (not pending and (not line or line.startswith(("#", "\ufeff#")))):
                continue
            pending.append(line)
            text = "\n".join(pending)
            if text.count('"') % 2 and len(pending) < 8:
                continue
            pending = []
            try:
                row = next(csv.reader([text]))
            except (csv.Error, StopIteration):
                continue
            record = dict(zip(log.fields, row, strict=False))
            yield record.get("date-time", ""), log, record


class ExchangeLogReader:
    def __init__(
        self,
        *,
        accepted_domains: Iterable[str] = (),
        relays: Iterable[str] = (),
        servers: Iterable[str] = (),
        verifying_connectors: Iterable[str] = (),
    ) -> None:
        self.obs = Observations()
        self.obs.local_domains.update(d.lower() for d in accepted_domains)
        self.relays = {r.lower() for r in relays}
        self.servers = {s.lower() for s in servers}
        self.verifying = {connector_key(c) for c in verifying_connectors}
        self.sessions: dict[tuple[str, str], _Session] = {}
        self.recent: dict[str, deque[tuple[dt.datetime, _Session]]] = {}  # remote ip -> ended sessions
        self.messages: OrderedDict[str, _Message] = OrderedDict()  # by last event
        self.lingering: dict[str, _Message] = {}  # quiet but not done (pending fates)
        self.notifications: dict[str, str] = {}  # DSN message ids -> kind
        self.made: dict[str, Counter[str]] = defaultdict(Counter)  # notification kind -> recipient domains
        self.now = _EPOCH

    def read(self, paths: list[Path]) -> Observations:
        files = [h for p in find_logs(paths) if (h := self._file(p)) is not None]
        if not any(f.kind == TRACKING for f in files):
            raise ScenarioError(
                paths[0],
                "",
                NO_VALUE,
                "no message tracking log (accepted: MSGTRK*.LOG with '#Log-type: "
                "Message Tracking Log', and SEND*.LOG send protocol logs beside them)",
            )
        chains: dict[tuple[str, str], list[_File]] = {}
        for log in sorted(files, key=lambda f: f.first):
            prefix = _PREFIX.match(log.path.name)
            chains.setdefault((str(log.path.parent), prefix.group(0).upper() if prefix else ""), []).append(log)
        for stamp, log, record in heapq.merge(*(_records(c) for c in chains.values()), key=lambda r: r[0]):
            self.obs.lines += 1
            when = _when(stamp)
            if when is None:
                self.obs.unused["no date-time"] += 1
                continue
            if when > self.now:
                self.now = when
                self._sweep()
            self.obs.seen(when)
            if log.kind == SEND_PROTOCOL:
                self._protocol(record, when)
            else:
                self._tracking(record, when)
        return self.finish()

    def _file(self, path: Path) -> _File | None:
        header = _header(path)
        if header is None or header.kind not in (TRACKING, SEND_PROTOCOL):
            self.obs.unused[f"file {path.name}: not a message tracking or send protocol log"] += 1
            return None
        return header

    def finish(self) -> Observations:
        for key, message in [*self.messages.items(), *self.lingering.items()]:
            self._fold(message, key)
        for kind, domains in self.made.items():
            local = sum(n for domain, n in domains.items() if domain in self.obs.local_domains)
            self.obs.notifications[kind]["local_recipients"] += local
        self.messages.clear()
        self.lingering.clear()
        return self.obs

    # ------------------------------------------------------------------ send protocol log

    def _protocol(self, record: dict[str, str], when: dt.datetime) -> None:
        key = (record.get("connector-id", ""), record.get("session-id", ""))
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = _Session(key[0])
        remote = record.get("remote-endpoint", "")
        if remote and not session.remote:
            session.remote = remote.rpartition(":")[0].strip("[]")
        event, data, context = record.get("event", ""), record.get("data", ""), record.get("context", "")
        self.obs.logging_sources.add(key[0])
        if event == "<":
            reply = data.strip()
            if reply[:3] == "250" and reply[4:].strip().upper().startswith("STARTTLS"):
                session.offered = True
            elif reply[:4] in ("250-", "250 ") and session.offered is None:
                session.offered = False
            elif reply.startswith("530") and "STARTTLS" in reply.upper():
                session.refused = True
        elif event == ">" and data.strip().upper() == "STARTTLS":
            session.started = True
        elif event == "*":
            text = f"{data} {context}"
            if "negotiation succeeded" in text:
                session.succeeded = True
            elif (failed := _TLS_FAILED.search(text)) is not None:
                session.failed = failed.group(1)
            elif (internet_id := _INTERNET_ID.search(text)) is not None:
                session.message_ids.add(internet_id.group(1))
        elif event == "-":
            self.sessions.pop(key, None)
            if session.remote:
                ended = self.recent.setdefault(session.remote, deque())
                ended.append((when, session))
                while ended and ended[0][0] < when - SESSION_WINDOW:
                    ended.popleft()

    def _session_for(self, ip: str, message_id: str, when: dt.datetime) -> _Session | None:
        ended = self.recent.get(ip)
        if not ended:
            return None
        recent = [s for t, s in ended if t >= when - SESSION_WINDOW]
        named = [s for s in recent if message_id and message_id in s.message_ids]
        chosen = named or recent
        return chosen[-1] if chosen else None

    # ------------------------------------------------------------------ message tracking

    def _tracking(self, record: dict[str, str], when: dt.datetime) -> None:
        event = record.get("event-id", "").upper()
        recipients = [r.strip() for r in record.get("recipient-address", "").split(";") if "@" in r]
        if event == "DELIVER":
            for address in recipients:
                self.obs.local_domains.add(address.rsplit("@", 1)[1].lower())
            return
        if event == "DSN":
            kind = _dsn_kind(record.get("recipient-status", ""))
            self.notifications[_message_key(record)] = kind
            self.made[kind].update(a.rsplit("@", 1)[1].lower() for a in recipients)  # local or not: known at the end
            self.obs.notification(kind, 0, [])
            return
        if event not in ("SEND", "DEFER", "FAIL") or not recipients:
            self.obs.unused[f"{event or 'no'} event"] += 1
            return
        if event == "SEND" and self._hop(record):
            self.obs.hops[record.get("server-hostname", "") or record.get("server-ip", "")] += 1
            return
        statuses = _STATUS_SPLIT.split(record.get("recipient-status", ""))
        if len(statuses) != len(recipients):
            statuses = [record.get("recipient-status", "")] * len(recipients)
        message = self._message(record, when)
        for address, status in zip(recipients, statuses, strict=True):
            local_part, domain = address.rsplit("@", 1)
            domain = domain.lower()
            if domain in self.obs.local_domains:
                continue
            key = (domain, f"{zlib.crc32(local_part.encode()):08x}")
            fate = message.fates.setdefault(key, Fate())
            if event == "SEND":
                self._send(record, fate, domain, when)
            elif event == "DEFER":
                fate.attempt("deferred", None)
                self._failed_session(record, status, domain)
            else:
                expired = "4.4.7" in status or "expired" in status.lower()
                fate.attempt("expired" if expired else "bounced", None)
                if record.get("server-ip") or record.get("server-hostname"):
                    self._failed_session(record, status, domain)

    def _hop(self, record: dict[str, str]) -> bool:
        connector = record.get("connector-id", "").lower()
        host = record.get("server-hostname", "").lower().rstrip(".")
        ip = record.get("server-ip", "")
        if any(word in connector for word in INTRA_ORG) or not connector:
            return True
        if host.split(".")[0] in self.servers or host in self.servers:
            return True
        return address_kind(ip) == "loopback"

    def _send(self, record: dict[str, str], fate: Fate, domain: str, when: dt.datetime) -> None:
        host = record.get("server-hostname", "").lower().rstrip(".") or record.get("server-ip", "")
        ip = record.get("server-ip", "")
        session = self._session_for(ip, record.get("message-id", "").strip("<>"), when) if ip else None
        cls = session.tls_class(self.verifying) if session is not None else None
        cls = cls or "unknown"
        self.obs.session(host, domain, cls, record.get("connector-id", ""))
        tls = None if cls == "unknown" else cls in ("trusted", "untrusted", "encrypted")
        fate.attempt("sent", tls)

    def _failed_session(self, record: dict[str, str], status: str, domain: str) -> None:
        """The session behind a deferral or a failure: its host from the record (or the
        ``{FQDN=..};{IP=..}`` of a deferral), its class from the refusal text or the
        send protocol log."""
        where = _LED_HOST.search(status)
        host = (where.group(1) if where else record.get("server-hostname", "")).lower().rstrip(".")
        ip = where.group(2) if where else record.get("server-ip", "")
        if not (host or ip):
            return
        cls = next((c for phrase, c in _DEFER_TEXT if phrase in status), None)
        if cls is None and ip:
            session = self._session_for(ip, record.get("message-id", "").strip("<>"), self.now)
            cls = session.tls_class(self.verifying) if session is not None else None
        self.obs.session(host or ip, domain, cls or "unknown", record.get("connector-id", ""))

    def _message(self, record: dict[str, str], when: dt.datetime) -> _Message:
        key = _message_key(record)
        message = self.messages.pop(key, None) or self.lingering.pop(key, None)
        if message is None:
            message = _Message(first=when)
            message.null_sender = record.get("return-path", "").strip() in ("<>", "")
        if message.size is None:
            message.size = ascii_int(record.get("total-bytes", "").strip(), 0, 10**12)
        message.last = when
        self.messages[key] = message  # to the end: most recently touched last
        return message

    def _sweep(self) -> None:
        """Fold messages that are done and quiet; set aside the quiet ones still pending."""
        while self.messages:
            key, message = next(iter(self.messages.items()))
            if message.last >= self.now - QUIET:
                break
            del self.messages[key]
            if message.done():
                self._fold(message, key)
            else:
                self.lingering[key] = message

    def _fold(self, message: _Message, key: str) -> None:
        by_domain: dict[str, list[Fate]] = {}
        for (domain, _), fate in message.fates.items():
            if domain not in self.obs.local_domains:
                by_domain.setdefault(domain, []).append(fate)
        kind = self.notifications.pop(key, None)
        if kind is not None:
            self.obs.notification(kind, 0, list(message.fates.values()), new=False)
        elif message.null_sender:
            self.obs.notification("null sender, not made here", 0, list(message.fates.values()))
        else:
            self.obs.message(message.first, message.size, by_domain)


def connector_key(name: str) -> str:
    """A connector's name as the Clixml importer writes it (``Partner TLS`` -> ``partner-tls``),
    so a log's connector-id meets the topology's connector."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip("._-").lower()


def _message_key(record: dict[str, str]) -> str:
    return (
        record.get("message-id", "") or f"{record.get('server-hostname', '')}/{record.get('internal-message-id', '')}"
    )


def _dsn_kind(status: str) -> str:
    codes = _ENHANCED.findall(status)
    if "4.4.7" in status or "5" in codes:
        return "non-delivery"
    if "4" in codes:
        return "delay"
    if "2" in codes:
        return "success"
    return "notification"


def _when(stamp: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def read_exchange_logs(
    paths: list[Path],
    *,
    accepted_domains: Iterable[str] = (),
    relays: Iterable[str] = (),
    servers: Iterable[str] = (),
    verifying_connectors: Iterable[str] = (),
) -> Observations:
    reader = ExchangeLogReader(
        accepted_domains=accepted_domains, relays=relays, servers=servers, verifying_connectors=verifying_connectors
    )
    return reader.read(paths)

"""The lines of a Postfix mail log, one at a time: which program wrote it, and what it says.

Program names are ``$syslog_name/$daemon`` (postconf(5) ``syslog_name``): ``postfix/smtp``,
a second instance ``postfix-out/smtp`` or ``postfix-239.58.50.50/smtp``, a master.cf
service with its own name ``postfix/relay/smtp`` or ``postfix/submission/smtpd``. The
instance (the first part) owns its queue; the daemon (the last part) says what the line
is. Any daemon name ending in ``smtp`` (``smtp``, ``relay-smtp``, ``smtp-amavis``) is an
SMTP client; ``lmtp``, ``local``, ``virtual`` and ``pipe`` deliver on this host.

The delivery line (``log_adhoc.c``): ``QID: to=<rcpt>, [orig_to=<addr>,] relay=X,
[conn_use=N,] delay=D, delays=a/b/c/d, [tls=FEATURES,] dsn=X.Y.Z, status=S (text)``.
``conn_use`` marks a cached connection's second and later use; ``tls=`` is Postfix
3.11's ``smtp_log_tls_feature_status`` (Wietse Venema, postfix-users, Aug 2025: the
first feature is the security level; ``(may:none)`` = STARTTLS not offered, plaintext
allowed; ``level?`` = undecided, no server reached; ``!level`` = connection not used,
policy violation).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

_LINE = re.compile(r"\S+ (postfix[\w.-]*(?:/[\w.-]+)+)\[([0-9]+)\]: ")
QID = r"([0-9A-F]{6,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,16})"
_QUEUE_LINE = re.compile(QID + r": ")
_DELIVERY = re.compile(
    r"to=<([^>]*)>, ?(?:orig_to=<[^>]*>, ?)?relay=([^,]*), ?(?:conn_use=([0-9]+), ?)?delay=[0-9.]+, ?"
    r"(?:delays=([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+), ?)?(?:tls=([^,\s]*), ?)?"
    r"dsn=([0-9]\.[0-9]{1,3}\.[0-9]{1,3}), status=([a-z]+)(?: \((.*))?$"
)
_RELAY = re.compile(r"([^\[\s]*)\[([^\]]*)\](?::([0-9]+))?$")
_TLS = re.compile(
    r"(Anonymous|Untrusted|Trusted|Verified) TLS connection established to ([^\s\[]*)\[([^\]]*)\](?::([0-9]+))?"
)
_SSL_ERROR = re.compile(r"SSL_connect error to ([^\s\[]*)\[([^\]]*)\](?::([0-9]+))?")
_ACTIVE = re.compile(r"from=<([^>]*)>, size=([0-9]{1,15}), nrcpt=([0-9]{1,9})")
_EXPIRED = re.compile(r"from=<[^>]*>, status=expired, returned to sender")
_NOTIFICATION = re.compile(r"(sender|postmaster) (non-delivery|delay|delivery status) notification: " + QID)
_QUEUED_AS = re.compile(r"queued as " + QID)
_CLIENT = re.compile(r"client=([^\[\s,]*)\[([^\]]*)\]")

TIERS = {"Verified": "trusted", "Trusted": "trusted", "Untrusted": "untrusted", "Anonymous": "encrypted"}
"""Postfix's TLS log tiers (TLS_README "Client-side TLS activity logging") as tlssim classes:
``encrypted`` = TLS without a certificate check (an anonymous cipher: no certificate shown)."""

SMTP_CLIENT, LOCAL_AGENT, OTHER = "smtp", "local", "other"
LOCAL_DAEMONS = frozenset({"lmtp", "local", "virtual", "pipe", "maildrop"})


@dataclass(frozen=True, slots=True)
class Program:
    instance: str  # "postfix", "postfix-out": owns a queue
    daemon: str  # "smtp", "qmgr", ...
    pid: str

    @property
    def kind(self) -> str:
        return _kind(self.daemon)


@lru_cache(maxsize=256)
def _kind(daemon: str) -> str:
    if daemon in LOCAL_DAEMONS:
        return LOCAL_AGENT
    if daemon != "lmtp" and (daemon.endswith("smtp") or daemon.startswith("smtp-")):
        return SMTP_CLIENT
    return OTHER


@lru_cache(maxsize=256)
def _program(name: str, pid: str) -> Program:
    parts = name.split("/")
    return Program(parts[0], parts[-1], pid)


def program(rest: str) -> tuple[Program, str] | None:
    """(the program, its message) of a line's text after the stamp, or None when a program
    other than Postfix wrote it."""
    match = _LINE.match(rest)
    if match is None:
        return None
    return _program(match.group(1), match.group(2)), rest[match.end() :]


def queue_id(message: str) -> tuple[str, str] | None:
    """(queue id, the rest) of a message about one queued message."""
    match = _QUEUE_LINE.match(message)
    return (match.group(1), message[match.end() :]) if match else None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The other end of a delivery: ``host[addr]:port``, or a bare word (``local``, ``none``)."""

    host: str
    addr: str = ""
    port: int = 0

    @property
    def key(self) -> str:
        return f"{self.host}[{self.addr}]:{self.port}" if self.addr else self.host

    @property
    def loopback(self) -> bool:
        return address_kind(self.addr) == "loopback" or self.host == "localhost"

    @property
    def private(self) -> bool:
        return address_kind(self.addr) in ("loopback", "private")


# Networks a site uses inside: RFC 1918, shared address space (RFC 6598), unique local
# (RFC 4193), link-local. Not Python's wider is_private, which also counts reserved
# ranges (240/4) that anonymised logs use for public hosts.
_INSIDE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


@lru_cache(maxsize=4096)
def address_kind(addr: str) -> str:
    try:
        ip = ipaddress.ip_address(addr.removeprefix("IPv6:").split("%")[0])
    except ValueError:
        return "none"  # a unix socket path, or nothing
    if ip.is_loopback:
        return "loopback"
    return "private" if any(ip in network for network in _INSIDE if network.version == ip.version) else "public"


def is_address(text: str) -> bool:
    return address_kind(text) != "none"


def endpoint(relay: str) -> Endpoint:
    match = _RELAY.match(relay)
    if match is None:
        return Endpoint(relay.lower())
    port = match.group(3)
    return Endpoint(match.group(1).lower().rstrip("."), match.group(2), int(port) if port else 0)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's delivery attempt."""

    recipient: str
    relay: Endpoint
    conn_use: int  # 0: a new connection
    setup: float  # delays c + d: connection setup and transmission, seconds
    tls: str | None  # the tls= field, when logged
    dsn: str
    status: str  # sent, deferred, bounced, expired
    text: str


def delivery(body: str) -> Delivery | None:
    match = _DELIVERY.match(body)
    if match is None:
        return None
    text = match.group(11) or ""
    if text.endswith(")"):
        text = text[:-1]
    setup = float(match.group(6) or 0) + float(match.group(7) or 0)  # delays c + d
    return Delivery(
        match.group(1),
        endpoint(match.group(2)),
        int(match.group(3) or 0),
        setup,
        match.group(8),
        match.group(9),
        match.group(10),
        text,
    )


def tls_established(message: str) -> tuple[str, Endpoint] | None:
    """(class, endpoint) of ``Trusted TLS connection established to host[addr]:port``."""
    match = _TLS.match(message)
    if match is None:
        return None
    port = match.group(4)
    return TIERS[match.group(1)], Endpoint(match.group(2).lower().rstrip("."), match.group(3), int(port or 0))


def handshake_failed(message: str) -> Endpoint | None:
    match = _SSL_ERROR.match(message)
    if match is None:
        return None
    port = match.group(3)
    return Endpoint(match.group(1).lower().rstrip("."), match.group(2), int(port or 0))


def active(body: str) -> tuple[str, int] | None:
    """(sender, size) of qmgr's ``from=<s>, size=N, nrcpt=M (queue active)``."""
    match = _ACTIVE.match(body)
    return (match.group(1), int(match.group(2))) if match else None


def expired(body: str) -> bool:
    return _EXPIRED.match(body) is not None


def notification(body: str) -> tuple[str, str] | None:
    """(kind, the notification's queue id) of bounce(8)'s ``sender non-delivery
    notification: QID`` and its siblings."""
    match = _NOTIFICATION.match(body)
    if match is None:
        return None
    who, what, qid = match.groups()
    kind = {"non-delivery": "non-delivery", "delay": "delay", "delivery status": "success"}[what]
    return ("postmaster " + kind if who == "postmaster" else kind), qid


def queued_as(text: str) -> str | None:
    """The receiving side's queue id in a 250 reply (``250 2.0.0 Ok: queued as 4DRB...``)."""
    match = _QUEUED_AS.search(text)
    return match.group(1) if match else None


def client(body: str) -> Endpoint | None:
    """smtpd's ``client=host[addr]``."""
    match = _CLIENT.match(body)
    return Endpoint(match.group(1).lower(), match.group(2)) if match else None


def tls_feature_class(field: str) -> str | None:
    """The class a Postfix 3.11 ``tls=`` field says of the session, or None (undecided).

    >>> [tls_feature_class(f) for f in ("may", "(may:none)", "dane", "(dane:encrypt)", "none", "may?")]
    ['encrypted', 'none', 'trusted', 'encrypted', 'unknown', None]
    """
    level = field.split("/", 1)[0]
    if level.endswith("?") or level.startswith("!"):
        return None  # no server reached, or the connection was not used: the text decides
    if level.startswith("("):
        level = level.strip("()").split(":")[-1]  # the level actually used
    if level in ("verify", "secure", "dane", "dane-only", "fingerprint"):
        return "trusted"
    if level in ("may", "encrypt"):
        return "encrypted"
    if level == "none":
        # Our own level none: STARTTLS was never tried, so the host's capability is unknown.
        return "unknown" if field.split("/", 1)[0] == "none" else "none"
    return None

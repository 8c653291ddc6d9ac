"""Postfix log lines as Postfix writes them (formats from real logs: the corpus, and the
capture in tests/data/postfix-capture), for building small logs per phenomenon."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

START = dt.datetime(2026, 3, 2, 9, 0, 0)


@dataclass
class PostfixLog:
    """A log written line by line; ``at`` moves time forward in seconds."""

    host: str = "gw"
    now: dt.datetime = START
    lines: list[str] = field(default_factory=list)
    pid: int = 1000

    def at(self, seconds: float) -> PostfixLog:
        self.now += dt.timedelta(seconds=seconds)
        return self

    def line(self, program: str, text: str, pid: int | None = None) -> None:
        stamp = f"{self.now:%b} {self.now.day:2d} {self.now:%H:%M:%S}"
        self.lines.append(f"{stamp} {self.host} {program}[{pid or self.pid}]: {text}")

    def received(self, qid: str, sender: str = "ann@ours.example", size: int = 2048, nrcpt: int = 1,
                 instance: str = "postfix", client: str = "unknown[198.51.100.7]") -> None:  # fmt: skip
        self.line(f"{instance}/smtpd", f"{qid}: client={client}", 4000)
        self.line(f"{instance}/cleanup", f"{qid}: message-id=<{qid}@ours.example>", 4001)
        self.line(f"{instance}/qmgr", f"{qid}: from=<{sender}>, size={size}, nrcpt={nrcpt} (queue active)", 4002)

    def delivered(self, qid: str, rcpt: str, relay: str, status: str = "sent", dsn: str = "2.0.0",
                  text: str = "250 2.0.0 Ok: queued as 4RREMOTE1", tls: str | None = None, pid: int = 5000,
                  daemon: str = "postfix/smtp", conn_use: int = 0, delays: str = "0.1/0.01/0.2/0.1",
                  tls_field: str | None = None) -> None:  # fmt: skip
        """A delivery line, after the TLS line of the session when ``tls`` names a tier."""
        if tls is not None:
            self.line(daemon, f"{tls} TLS connection established to {relay}: TLSv1.3 with cipher "
                              "TLS_AES_256_GCM_SHA384 (256/256 bits)", pid)  # fmt: skip
        reuse = f", conn_use={conn_use}" if conn_use else ""
        feature = f", tls={tls_field}" if tls_field else ""
        self.line(daemon, f"{qid}: to=<{rcpt}>, relay={relay}{reuse}, delay=0.4, delays={delays}{feature}, "
                          f"dsn={dsn}, status={status} ({text})", pid)  # fmt: skip

    def removed(self, qid: str, instance: str = "postfix") -> None:
        self.line(f"{instance}/qmgr", f"{qid}: removed", 4002)

    def message(self, qid: str, rcpt: str, relay: str, tls: str | None = "Trusted", **kwargs: object) -> None:
        """A whole message to one recipient, delivered in one go."""
        self.received(qid)
        self.delivered(qid, rcpt, relay, tls=tls, **kwargs)  # type: ignore[arg-type]
        self.removed(qid)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

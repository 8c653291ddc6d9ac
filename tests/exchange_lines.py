"""Exchange 2013-SE message tracking and SMTP send protocol logs, written from Microsoft's
documented field lists ("Message tracking in Exchange Server"; "Protocol logging":
``date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,
event,data,context``) and the line forms of real logs (session lines as in a real
send protocol log; the Schannel negotiation text of Exchange 2013+)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

TRACKING_FIELDS = [
    "date-time",
    "client-ip",
    "client-hostname",
    "server-ip",
    "server-hostname",
    "source-context",
    "connector-id",
    "source",
    "event-id",
    "internal-message-id",
    "message-id",
    "network-message-id",
    "recipient-address",
    "recipient-status",
    "total-bytes",
    "recipient-count",
    "related-recipient-address",
    "reference",
    "message-subject",
    "sender-address",
    "return-path",
    "message-info",
    "directionality",
    "tenant-id",
    "original-client-ip",
    "original-server-ip",
    "custom-data",
    "transport-traffic-type",
    "log-id",
    "schema-version",
]
SEND_FIELDS = [
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
]
NEGOTIATED = (
    "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with "
    "strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE "
    "with strength 384 bits"
)
START = dt.datetime(2026, 9, 1, 8, 0, 0, tzinfo=dt.UTC)
_ids = itertools.count(0x08DE000000000100)


def stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _csv(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)  # quotes a field holding a line break, as Exchange does
    return buffer.getvalue().removesuffix("\r\n")


@dataclass
class ExchangeLogs:
    """One server's tracking log and send protocol log, written together."""

    server: str = "EX1"
    our_ip: str = "10.0.0.5"
    now: dt.datetime = START
    tracking: list[str] = field(default_factory=list)
    send: list[str] = field(default_factory=list)
    tracking_fields: list[str] = field(default_factory=lambda: list(TRACKING_FIELDS))

    def at(self, seconds: float) -> ExchangeLogs:
        self.now += dt.timedelta(seconds=seconds)
        return self

    def event(self, event: str, message_id: str, recipients: list[str], status: str = "", **values: str) -> None:
        row = dict.fromkeys(TRACKING_FIELDS, "")
        row.update(
            {
                "date-time": stamp(self.now),
                "source": values.pop("source", "SMTP"),
                "event-id": event,
                "internal-message-id": "1001",
                "message-id": f"<{message_id}>",
                "recipient-address": ";".join(recipients),
                "recipient-status": status,
                "total-bytes": values.pop("size", "20480"),
                "recipient-count": str(len(recipients)),
                "sender-address": "alice@contoso.example",
                "return-path": values.pop("return_path", "alice@contoso.example"),
                "directionality": "Originating",
                **values,
            }
        )
        self.tracking.append(_csv([row[name] for name in self.tracking_fields]))

    def session(self, connector: str, remote_ip: str, banner: str, *, starttls: bool, outcome: str,
                message_id: str, recipients: list[str]) -> None:  # fmt: skip
        """One send protocol log session: outcome ``tls``, ``failed``, ``plain`` or ``530``."""
        session = f"{next(_ids):016X}"
        sequence = itertools.count()
        local, remote = f"{self.our_ip}:50{len(self.send) % 1000:03d}", f"{remote_ip}:25"

        def line(event: str, data: str = "", context: str = "") -> None:
            row = [stamp(self.now), connector, session, str(next(sequence)), local, remote, event, data, context]
            self.send.append(_csv(row))

        line("*", "", "attempting to connect")
        line("+")
        line("<", f"220 {banner} ESMTP ready")
        line(">", "EHLO mail.contoso.example")
        line("<", f"250-{banner} Hello")
        if starttls:
            line("<", "250-STARTTLS")
        line("<", "250 SIZE 36700160")
        if outcome in ("tls", "failed"):
            line(">", "STARTTLS")
            line("<", "220 2.0.0 Ready to start TLS")
            if outcome == "failed":
                line("*", "", "TLS negotiation failed with error IllegalMessage")
                line("-", "", "Local")
                return
            line("*", "", NEGOTIATED)
            line("*", f"CN={banner}", "Remote certificate")
            line(">", "EHLO mail.contoso.example")
        line("*", "", f"sending message with RecordId 51539607554 and InternetMessageId <{message_id}>")
        line(">", "MAIL FROM:<alice@contoso.example> SIZE=20480")
        if outcome == "530":
            line("<", "530 5.7.0 Must issue a STARTTLS command first")
            line("-", "", "Local")
            return
        for rcpt in recipients:
            line(">", f"RCPT TO:<{rcpt}>")
            line("<", "250 2.1.5 Recipient OK")
        line(">", "BDAT 20480 LAST")
        line("<", f"250 2.6.0 <{message_id}> Queued mail for delivery")
        line(">", "QUIT")
        line("-", "", "Local")

    def write(self, folder: Path, *, bom: bool = True) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        day = f"{START:%Y%m%d}08"
        tracking = folder / f"MSGTRK{day}-1.LOG"
        send = folder / f"SEND{day}-1.LOG"
        lead = "\ufeff" if bom else ""
        tracking.write_text(
            lead + "#Software: Microsoft Exchange Server\n#Version: 15.02.1544.004\n#Log-type: Message Tracking Log\n"
            f"#Date: {stamp(START)}\n#Fields: {','.join(self.tracking_fields)}\n" + "\n".join(self.tracking) + "\n",
            encoding="utf-8",
        )
        send.write_text(
            lead + "#Software: Microsoft Exchange Server\n#Version: 15.0.0.0\n#Log-type: SMTP Send Protocol Log\n"
            f"#Date: {stamp(START)}\n#Fields: {','.join(SEND_FIELDS)}\n" + "\n".join(self.send) + "\n",
            encoding="utf-8",
        )
        return [tracking, send]

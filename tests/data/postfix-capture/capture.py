"""Capture a real Postfix log for ``tests/test_real_postfix.py`` (run by hand, not by CI).

What it builds, on one machine (needs root, Debian's ``postfix`` 3.7, and the test extras
``aiosmtpd``, ``trustme``, ``dnspython``)::

    sender (smtplib) -> postfix [main, 127.0.0.1:25]
        -> content filter (a Python SMTP proxy, 127.0.0.1:10024, re-injects to :10025
           and answers with the re-injection's "queued as" id, as amavisd does)
        -> postfix [main again] -> relayhost [127.0.0.1]:2526
        -> postfix-out [second instance] -> MX hosts found by DNS
    MX hosts: aiosmtpd servers on 192.0.2.10-.18 (addresses added to lo), behind a
    DNS server answering MX and A for *.example (Postfix runs in its own mount
    namespace whose /etc/resolv.conf points at it).

The second instance first runs with ``smtp_tls_loglevel = 0`` (batch A), is reloaded with
``smtp_tls_loglevel = 1`` (batch B). Timers are short (``maximal_queue_lifetime = 150s``,
``delay_warning_time = 1m``) so an expiry and a delay notice happen within minutes. Both
instances write one ``maillog_file`` (postlogd). What was sent, and what each MX does, is
written to ``expected.json`` from the batch definitions below (not from the log).

Usage: ``sudo .venv/bin/python tests/data/postfix-capture/capture.py tests/data/postfix-capture``
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

OURS = "ours.example"
DNS_ADDRESS = "127.0.0.53"
LOG = Path("/var/log/postfix-capture.log")

# name -> (address, behaviour)
HOSTS = {
    "mx.tls.example": ("192.0.2.10", "trusted"),
    "mx.plain.example": ("192.0.2.11", "plain"),
    "mx.selfsigned.example": ("192.0.2.12", "self-signed"),
    "mx.broken.example": ("192.0.2.13", "broken"),
    "mx1.multi.example": ("192.0.2.14", "trusted-busy"),  # refuses its first connection with 421
    "mx2.multi.example": ("192.0.2.15", "plain"),
    "mx.strict.example": ("192.0.2.16", "requires-tls"),
    "mx.quiet.example": ("192.0.2.17", "trusted"),
    "mx.slow.example": ("192.0.2.18", "tempfail"),
}
MX = {
    "tls.example": ["mx.tls.example"],
    "plain.example": ["mx.plain.example"],
    "selfsigned.example": ["mx.selfsigned.example"],
    "broken.example": ["mx.broken.example"],
    "multi.example": ["mx1.multi.example", "mx2.multi.example"],
    "strict.example": ["mx.strict.example"],
    "quiet.example": ["mx.quiet.example"],
    "slow.example": ["mx.slow.example"],
    OURS: [],
}
# Batch A runs with TLS logging off in the sending instance, batch B with it on.
BATCH_A = [
    ["ann@tls.example"],
    ["bo@tls.example"],
    ["cy@plain.example"],
    ["di@selfsigned.example"],
    ["ed@quiet.example"],
]
BATCH_B = [
    ["fi@tls.example"],
    ["gu@tls.example", "ha@plain.example"],  # one message, two domains
    ["io@plain.example"],
    ["jo@selfsigned.example"],
    ["ka@broken.example"],
    ["lu@multi.example"],
    ["mo@multi.example"],
    ["ny@multi.example"],
    ["ol@strict.example"],  # 530 to plaintext: bounced, a non-delivery notice to root (local)
    ["nouser@plain.example"],  # 550 5.1.1: bounced
    ["pa@slow.example"],  # 451 always: a delay notice, then expiry
    ["root@ours.example"],  # local mail
]


# ---------------------------------------------------------------------------- remote world


class Behaviour:
    def __init__(self, kind: str) -> None:
        self.kind, self.connections = kind, 0

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.kind == "requires-tls" and not session.ssl:
            return "530 5.7.0 Must issue a STARTTLS command first"  # RFC 3207 s.4, STARTTLS not offered
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("nouser@"):
            return "550 5.1.1 No such user"
        if self.kind == "tempfail":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: queued as 4REMOTE" + format(abs(hash(envelope.content)) % 10**8, "08d")


class BusySMTP(SMTP):
    """Answers its first delivery connection with 421, then serves (multi.example's mx1).
    Connection 1 is aiosmtpd's own readiness check when the controller starts."""

    connections = 0

    async def _handle_client(self):
        BusySMTP.connections += 1
        if BusySMTP.connections == 2:
            await self.push("421 4.3.2 Busy, try another MX")
            self.transport.close()
            return
        await super()._handle_client()


class BusyController(Controller):
    def factory(self):
        return BusySMTP(self.handler, **self.SMTP_kwargs)


def _contexts(ca: trustme.CA, name: str, kind: str, folder: Path) -> ssl.SSLContext | None:
    if kind in ("plain", "requires-tls", "tempfail"):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if kind == "self-signed":
        other = trustme.CA()  # a lone issuer nobody trusts: Postfix logs Untrusted
        other.issue_cert(name).configure_cert(context)
    elif kind == "broken":
        # Advertises STARTTLS but offers only NULL ciphers, which no Postfix client offers:
        # every handshake fails ("no shared cipher").
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("NULL-SHA256:@SECLEVEL=0")
        ca.issue_cert(name).configure_cert(context)
    else:
        ca.issue_cert(name).configure_cert(context)
    return context


def start_remote_world(ca: trustme.CA, folder: Path) -> list[Controller]:
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    controllers = []
    for name, (address, kind) in HOSTS.items():
        subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", "lo"], check=True)
        context = _contexts(ca, name, kind, folder)
        cls = BusyController if kind == "trusted-busy" else Controller
        controller = cls(
            Behaviour(kind),
            hostname=address,
            port=25,
            server_hostname=name,
            tls_context=context,
            ready_timeout=10,
        )
        controller.start()
        controllers.append(controller)
    return controllers


def serve_dns(stop: threading.Event) -> None:
    """MX and A answers for the names above; ours.example's MX is this host (loopback)."""
    addresses = {name: address for name, (address, _) in HOSTS.items()}
    addresses[f"gw.{OURS}"] = "127.0.0.2"  # the main instance: not an address of postfix-out
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((DNS_ADDRESS, 53))
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        query = dns.message.from_wire(data)
        answer = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        if question.rdtype == dns.rdatatype.MX and name in MX:
            hosts = MX[name] or [f"gw.{OURS}"]
            records = [f"{10 * (i + 1)} {host}." for i, host in enumerate(hosts)]
            answer.answer.append(dns.rrset.from_text(question.name, 60, "IN", "MX", *records))
        elif question.rdtype == dns.rdatatype.A and name in addresses:
            answer.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", addresses[name]))
        elif name not in MX and name not in addresses:
            answer.set_rcode(3)  # NXDOMAIN
        sock.sendto(answer.to_wire(), peer)


# ---------------------------------------------------------------------------- content filter


class Reinject:
    """An after-queue content filter: hand the message back to Postfix on :10025 and
    answer with its reply (amavisd: '250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): ...')."""

    async def handle_DATA(self, server, session, envelope):
        def forward() -> str:
            with smtplib.SMTP("127.0.0.1", 10025) as back:
                back.ehlo("filter.ours.example")
                back.mail(envelope.mail_from)
                for rcpt in envelope.rcpt_tos:
                    back.rcpt(rcpt)
                code, reply = back.data(envelope.original_content)
                return f"{code} {reply.decode()}"

        reply = await asyncio.get_running_loop().run_in_executor(None, forward)
        return f"250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): {reply}"


# ---------------------------------------------------------------------------- postfix


MAIN = f"""\
compatibility_level = 3.6
myhostname = gw.{OURS}
mydomain = {OURS}
mydestination = $myhostname, localhost, {OURS}
inet_interfaces = 127.0.0.2
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {LOG}
alternate_config_directories = /etc/postfix-out
relayhost = [127.0.0.1]:2526
content_filter = scan:[127.0.0.1]:10024
smtp_tls_security_level = may
smtp_tls_loglevel = 1
minimal_backoff_time = 10s
maximal_backoff_time = 20s
queue_run_delay = 10s
alias_maps =
local_recipient_maps =
"""
MAIN_MASTER = """
scan      unix  -       -       n       -       10      smtp
    -o smtp_send_xforward_command=yes
127.0.0.1:10025 inet n  -       n       -       -       smtpd
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
"""
OUT = f"""\
compatibility_level = 3.6
myhostname = out.{OURS}
mydomain = {OURS}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {LOG}
syslog_name = postfix-out
queue_directory = /var/spool/postfix-out
data_directory = /var/lib/postfix-out
smtp_tls_security_level = may
smtp_tls_CAfile = /etc/postfix-out/ca.pem
smtp_tls_loglevel = 0
minimal_backoff_time = 10s
maximal_backoff_time = 20s
queue_run_delay = 10s
maximal_queue_lifetime = 150s
bounce_queue_lifetime = 150s
delay_warning_time = 1m
alias_maps =
"""


def _no_chroot(master: Path) -> None:
    lines = []
    for line in master.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 8 and not line.startswith(("#", " ", "\t")):
            fields[4] = "n"
            line = "  ".join(fields)
        lines.append(line)
    master.write_text("\n".join(lines) + "\n")


def configure(ca: trustme.CA) -> None:
    Path("/etc/postfix/main.cf").write_text(MAIN)
    shutil.copy("/etc/postfix/master.cf.proto", "/etc/postfix/master.cf")  # Debian's stock master.cf
    _no_chroot(Path("/etc/postfix/master.cf"))
    with Path("/etc/postfix/master.cf").open("a") as handle:
        handle.write(MAIN_MASTER)
    out = Path("/etc/postfix-out")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree("/etc/postfix", out)
    (out / "main.cf").write_text(OUT)
    master = re.sub(r"^smtp(\s+inet)", r"2526\1", (out / "master.cf").read_text(), count=1, flags=re.MULTILINE)
    master = master.split("\nscan ")[0] + "\n"
    (out / "master.cf").write_text(master)
    ca.cert_pem.write_to_path(str(out / "ca.pem"))
    for folder in ("/var/spool/postfix-out", "/var/lib/postfix-out"):
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)
    subprocess.run(["postfix", "-c", str(out), "set-permissions"], check=True, capture_output=True)
    subprocess.run(["postfix", "-c", str(out), "check"], check=True)


def postfix(*args: str, config: str = "/etc/postfix") -> None:
    subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind /tmp/capture-resolv.conf /etc/resolv.conf && postfix -c {config} {' '.join(args)}",
        ],
        check=True,
    )


def send(batch: list[list[str]]) -> None:
    with smtplib.SMTP("127.0.0.2", 25) as smtp:
        for number, recipients in enumerate(batch):
            message = f"From: root@{OURS}\r\nSubject: capture {number}\r\n\r\nhello\r\n"
            smtp.sendmail(f"root@{OURS}", recipients, message)
            time.sleep(0.3)


def main(target: Path) -> None:
    Path("/tmp/capture-resolv.conf").write_text(f"nameserver {DNS_ADDRESS}\n")
    for address in (DNS_ADDRESS, "127.0.0.2"):
        subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", "lo"], check=True)
    stop = threading.Event()
    threading.Thread(target=serve_dns, args=(stop,), daemon=True).start()
    ca = trustme.CA()
    folder = Path(tempfile.mkdtemp())
    controllers = start_remote_world(ca, folder)
    filter_controller = Controller(Reinject(), hostname="127.0.0.1", port=10024)
    filter_controller.start()
    subprocess.run(["postfix", "stop"], check=False, capture_output=True)
    subprocess.run(["postfix", "-c", "/etc/postfix-out", "stop"], check=False, capture_output=True)
    configure(ca)
    for config in ("/etc/postfix", "/etc/postfix-out"):
        subprocess.run(["postsuper", "-c", config, "-d", "ALL"], check=False, capture_output=True)
    LOG.unlink(missing_ok=True)
    started = dt.datetime.now(dt.UTC)
    postfix("start")
    postfix("start", config="/etc/postfix-out")
    time.sleep(3)
    send(BATCH_A)
    time.sleep(40)
    subprocess.run(["postconf", "-c", "/etc/postfix-out", "smtp_tls_loglevel=1"], check=True)
    postfix("reload", config="/etc/postfix-out")
    time.sleep(5)
    send(BATCH_B)
    time.sleep(240)  # deferrals, a delay notice at 1 min, expiry at 150 s
    postfix("stop", config="/etc/postfix-out")
    postfix("stop")
    stop.set()
    for controller in (*controllers, filter_controller):
        controller.stop()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOG, target / "mail.log")
    versions = subprocess.run(["postconf", "-h", "mail_version"], capture_output=True, text=True).stdout.strip()
    (target / "expected.json").write_text(
        json.dumps(
            {
                "captured": started.isoformat(timespec="seconds"),
                "postfix": versions,
                "hosts": {name: kind for name, (_, kind) in HOSTS.items()},
                "mx": MX,
                "batch_a_tls_logging_off": BATCH_A,
                "batch_b_tls_logging_on": BATCH_B,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Memory and time of ``tlssim import maillog`` on a big log (issue 18: a 1 GB log under
1 GB of memory; the reader holds only messages in flight).

Usage: python benchmarks/import_maillog.py [--gigabytes 1.0] [--keep FOLDER]

Writes a Postfix log of the size asked for (the forms of the real logs in
tests/data/postfix-capture: each message through a content filter on 127.0.0.1:10024 and
re-injected, then relayed to one of 5,000 domains' MX hosts with a TLS line, some
deferred first, a few bounced with a notification), imports it in a child process, and
prints the child's peak RSS (getrusage), its wall time and its lines per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIERS = ("Trusted", "Untrusted", "Verified", "Anonymous")


def write_log(path: Path, target_bytes: int) -> tuple[int, int]:
    """A log of about ``target_bytes``; returns (lines, messages)."""
    when = dt.datetime(2026, 1, 1)
    lines = messages = 0
    written = 0
    with path.open("w") as handle:
        n = 0
        while written < target_bytes:
            n += 1
            when += dt.timedelta(seconds=1)
            stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
            parent, child = f"{(2 * n) & 0xFFFFFFFFFF:010X}", f"{(2 * n + 1) & 0xFFFFFFFFFF:010X}"
            domain = f"d{n % 5000}.example"
            host = f"mx{n % 2}.{domain}"
            addr = f"203.0.{n % 250}.{n % 200 + 1}"
            chunk = [
                f"{stamp} gw postfix/smtpd[4000]: {parent}: client=client{n % 97}.ours.example[198.51.100.{n % 250}]",
                f"{stamp} gw postfix/cleanup[4001]: {parent}: message-id=<{parent}@ours.example>",
                f"{stamp} gw postfix/qmgr[4002]: {parent}: from=<u{n % 331}@ours.example>, size={2000 + n % 90000},"
                " nrcpt=1 (queue active)",
                f"{stamp} gw postfix/smtpd[4100]: {child}: client=localhost[127.0.0.1]",
                f"{stamp} gw postfix/qmgr[4002]: {child}: from=<u{n % 331}@ours.example>, size={2100 + n % 90000},"
                " nrcpt=1 (queue active)",
                f"{stamp} gw postfix/smtp[5001]: {parent}: to=<r{n % 977}@{domain}>, relay=127.0.0.1[127.0.0.1]:10024, "
                "delay=0.3, delays=0.1/0/0/0.2, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): "
                f"250 2.0.0 Ok: queued as {child})",
                f"{stamp} gw postfix/qmgr[4002]: {parent}: removed",
            ]
            if n % 17 == 0:
                chunk.append(
                    f"{stamp} gw postfix/smtp[5002]: {child}: to=<r{n % 977}@{domain}>, relay={host}[{addr}]:25, "
                    "delay=1.2, delays=0.1/0/1/0.1, dsn=4.4.2, status=deferred (lost connection with "
                    f"{host}[{addr}] while receiving the initial server greeting)"
                )
            tier = TIERS[n % 4] if n % 9 else None
            if tier is not None:
                chunk.append(
                    f"{stamp} gw postfix/smtp[5003]: {tier} TLS connection established to {host}[{addr}]:25: "
                    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
                )
            status = "bounced" if n % 101 == 0 else "sent"
            text = "host said: 550 5.1.1 no such user" if status == "bounced" else "250 2.0.0 Ok: queued as 4R1"
            chunk.append(
                f"{stamp} gw postfix/smtp[5003]: {child}: to=<r{n % 977}@{domain}>, relay={host}[{addr}]:25, "
                f"delay=1.1, delays=0.1/0/0.6/0.4, dsn={'5.1.1' if status == 'bounced' else '2.0.0'}, "
                f"status={status} ({text})"
            )
            chunk.append(f"{stamp} gw postfix/qmgr[4002]: {child}: removed")
            text_block = "\n".join(chunk) + "\n"
            handle.write(text_block)
            written += len(text_block)
            lines += len(chunk)
            messages += 1
    return lines, messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, default=None, help="write the log here and keep it")
    options = parser.parse_args()
    folder = options.keep or Path(tempfile.mkdtemp(prefix="tlssim-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "mail.log"
    started = time.perf_counter()
    lines, messages = write_log(log, int(options.gigabytes * 1024**3))
    print(f"wrote {log.stat().st_size / 1024**3:.2f} GiB, {lines:,} lines, {messages:,} messages "
          f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    started = time.perf_counter()
    command = [sys.executable, "-m", "sim", "import", "maillog", str(log), "--out", str(folder / "out"), "--force"]
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"import: {wall:.0f} s, {lines / wall:,.0f} lines/s, peak RSS {peak_mib:,.0f} MiB")
    if options.keep is None:
        log.unlink()


if __name__ == "__main__":
    main()

"""Numbers in the form people read them: durations as ``2 d 2 h``, shares as percentages
with one decimal, sizes in MB; and the one sentence every view leads with, what becomes
of the mail. The CSV files keep raw numbers; the terminal, the report, compare and the
sweep's pages say them with these."""

from __future__ import annotations

import math
from collections.abc import Sequence


def duration(seconds: float) -> str:
    """``2 d 2 h``, ``5 h 30 min``, ``12 min``, ``40 s``.

    >>> duration(180000), duration(19800), duration(720), duration(40), duration(0.54), duration(float("nan"))
    ('2 d 2 h', '5 h 30 min', '12 min', '40 s', '0.54 s', '-')
    """
    if seconds != seconds or math.isinf(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.2g} s"  # delivery takes a fraction of a second
    days, rest = divmod(round(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{secs} s"


def percent(share: float) -> str:
    """``0.2506`` -> ``25.1%`` (``-`` when there is nothing to divide by)."""
    return "-" if share != share else f"{100 * share:.1f}%"


def megabytes(size: float) -> str:
    """``1572864`` -> ``1.5 MB``."""
    return "-" if size != size else f"{size / 1_048_576:,.1f} MB"


def count(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def share_of(part: float, whole: float) -> str:
    """``7286, 57361`` -> ``12.7%``."""
    return percent(part / whole) if whole else "-"


def metric(name: str, value: float) -> str:
    """A summary metric as people read it, chosen by its name's unit: ``*_rate`` and
    ``*_share`` as percentages, ``*_s`` as durations, ``sim_hours`` too, counts with commas.

    >>> metric("out_lost_rate", 0.2506), metric("peak_queue_time_s", 181477), metric("out_ndr", 7286)
    ('25.1%', '2 d 2 h', '7,286')
    """
    if name.endswith(("_rate", "_share")):
        return percent(value)
    if name.endswith("_s"):
        return duration(value)
    if name == "sim_hours":
        return duration(value * 3600)
    return count(value)


def fate_sentence(
    messages: float,
    returned: float,
    doomed: float,
    pending: float,
    *,
    codes: Sequence[str] = (),
    expiry_s: float = math.nan,
    duration_s: float = math.nan,
) -> str:
    """What becomes of the outbound mail: returned and doomed named apart, with what the
    run cannot know yet.

    >>> fate_sentence(57361, 7286, 7091, 1, codes=["4.4.7"], expiry_s=172800, duration_s=345600)
    '25.1% of outbound mail will not arrive (14,377 of 57,361 messages): 12.7% returned as NDR 4.4.7 \
by the end of the run, 12.4% still queued with no way out and returned 2 d after it was sent. 1 message \
is still queued and may yet be delivered.'
    >>> fate_sentence(100, 0, 0, 0)
    'All 100 outbound messages arrive.'
    """
    if not messages:
        return "No outbound mail."
    lost = returned + doomed
    parts = []
    if returned:
        status = f" as NDR {', '.join(codes)}" if codes else ""
        parts.append(f"{share_of(returned, messages)} returned{status} by the end of the run")
    if doomed:
        after = f" {duration(expiry_s)} after it was sent" if expiry_s == expiry_s else " at its expiry"
        parts.append(f"{share_of(doomed, messages)} still queued with no way out and returned{after}")
    if lost:
        sentence = (
            f"{share_of(lost, messages)} of outbound mail will not arrive "
            f"({count(lost)} of {count(messages)} messages): {', '.join(parts)}."
        )
    elif pending:
        sentence = f"No outbound mail is returned by the end of the run ({count(messages)} messages)."
    else:
        return f"All {count(messages)} outbound messages arrive."
    if pending:
        sentence += " " + _pending(pending, expiry_s, duration_s)
    return sentence


def inbound_fate_sentence(messages: float, lost: float, doomed: float, pending: float) -> str:
    """What becomes of the mail sent to us.

    >>> inbound_fate_sentence(28551, 9479, 1862, 0)
    '39.7% of inbound mail will not arrive (11,341 of 28,551 messages): 33.2% returned to its senders by \
the end of the run, 6.5% still queued at senders that cannot deliver it.'
    """
    if not messages:
        return "No inbound mail."
    total = lost + doomed
    if not total:
        if pending:
            queued = f"{count(pending)} of {count(messages)} messages are still queued at the senders"
            return f"No inbound mail is lost; {queued}."
        return f"All {count(messages)} inbound messages arrive."
    parts = []
    if lost:
        parts.append(f"{share_of(lost, messages)} returned to its senders by the end of the run")
    if doomed:
        parts.append(f"{share_of(doomed, messages)} still queued at senders that cannot deliver it")
    return (
        f"{share_of(total, messages)} of inbound mail will not arrive "
        f"({count(total)} of {count(messages)} messages): {', '.join(parts)}."
    )


def _pending(pending: float, expiry_s: float, duration_s: float) -> str:
    noun = "message is" if pending == 1 else "messages are"
    text = f"{count(pending)} {noun} still queued and may yet be delivered"
    if duration_s == duration_s and expiry_s == expiry_s and duration_s < expiry_s:
        text += (
            f"; the run ({duration(duration_s)}) ends before the {duration(expiry_s)} expiration timeout, "
            "so it cannot know whether they will be"
        )
    return text + "."

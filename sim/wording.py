"""Numbers in the form people read them: durations as ``2 d 2 h``, shares as percentages
with one decimal, sizes in MB; and the one sentence every view leads with, what becomes
of the mail. The CSV files keep raw numbers; the terminal, the report, compare and the
sweep's pages say them with these."""

from __future__ import annotations

import math
from collections.abc import Sequence


def duration(seconds: float) -> str:
    """``2 d 2 h``, ``5 h 30 min``, ``12 min``, ``40 s``.

    >>> duration(180000), duration(19800), duration(720), duration(40), duration(float("nan"))
    ('2 d 2 h', '5 h 30 min', '12 min', '40 s', '-')
    """
    if seconds != seconds or math.isinf(seconds):
        return "-"
    days, rest = divmod(int(round(seconds)), 86400)
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
    """What becomes of the outbound mail, returned and doomed named apart.

    >>> fate_sentence(57361, 7286, 7091, 0, codes=["4.4.7"], expiry_s=172800, duration_s=345600)
    '25.1% of mail will not arrive: 12.7% returned as NDR 4.4.7 by the end, 12.4% still queued and returned 2 d after it was sent.'
    >>> fate_sentence(100, 0, 0, 0)
    'All 100 outbound messages arrive.'
    """
    if not messages:
        return "No outbound mail."
    lost = returned + doomed
    parts = []
    if returned:
        status = f" as NDR {', '.join(codes)}" if codes else ""
        parts.append(f"{percent(returned / messages)} returned{status} by the end")
    if doomed:
        after = f" {duration(expiry_s)} after it was sent" if expiry_s == expiry_s else " at its expiry"
        parts.append(f"{percent(doomed / messages)} still queued and returned{after}")
    if lost:
        sentence = f"{percent(lost / messages)} of mail will not arrive: {', '.join(parts)}."
    elif pending:
        sentence = "No mail is returned by the end."
    else:
        return f"All {count(messages)} outbound messages arrive."
    if pending:
        sentence += f" {count(pending)} message(s) are still queued and may yet be delivered"
        if duration_s == duration_s and expiry_s == expiry_s and duration_s < expiry_s:
            sentence += f"; the run ({duration(duration_s)}) ends before the {duration(expiry_s)} expiry, so it cannot know"
        sentence += "."
    return sentence

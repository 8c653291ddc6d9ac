"""The small HTML vocabulary of tlssim's pages: one style, inline figures, tables.

Pages are self-contained (figures as PNG data URIs, no script, no network) so they open
from disk and can be mailed.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; }
td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #eee; }
td { vertical-align: top; } td.n, td:first-child { white-space: nowrap; } td:last-child:not(.n) { min-width: 10rem; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
section { margin-top: 1.5rem; } p.note { font-size: 0.8rem; color: #555; }
.wide { overflow-x: auto; } pre { background: #f6f6f6; padding: 0.6rem; white-space: pre-wrap; }
"""


def image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    text = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def worded_table(rows: list[dict[str, str]], columns: list[str], numeric: frozenset[str] = frozenset()) -> str:
    """A table of values already worded (``12.7%``, ``2 d``): ``numeric`` columns right-aligned;
    wrapped so a wide table scrolls inside the page instead of being cut off."""

    def th(column: str) -> str:
        kind = ' class="n"' if column in numeric else ""
        return f"<th{kind}>{html.escape(column)}</th>"

    def td(column: str, text: str) -> str:
        kind = ' class="n"' if column in numeric else ""
        return f"<td{kind}>{html.escape(text)}</td>"

    head = "".join(th(c) for c in columns)
    body = "".join("<tr>" + "".join(td(c, row.get(c, "")) for c in columns) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'

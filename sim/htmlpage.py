"""The small HTML vocabulary of tlssim's pages: one style, inline figures, tables.

Pages are self-contained (figures as PNG data URIs, no script, no network) so they open
from disk and can be mailed.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; }
td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #eee; }
td { vertical-align: top; white-space: nowrap; } td:last-child { white-space: normal; min-width: 14rem; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    text = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    # Column names may break after an underscore, so a wide table fits the page.
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(row[c]) for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:,.0f}" if isinstance(value, int) or abs(value) >= 100 else f"{value:.3g}"
        return f'<td class="n">{text}</td>'
    return f"<td>{html.escape(str(value))}</td>"

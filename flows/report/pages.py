"""Report pages: number formats and a small page model rendered twice, to Markdown and to HTML.

A page is a title, a lead and sections of blocks (labelled facts, tables, paragraphs, charts); both
renderers fill the same string templates, so the Markdown and the HTML say the same thing. The HTML
is self-contained: inline CSS, charts as inline ``<svg>`` elements (the Markdown links the chart's
``.svg`` file instead), and a Content-Security-Policy that lets the page load nothing else.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

NA = "n/a"


def _scaled(value: float, decimals: int) -> int:
    """value * 10**decimals rounded half away from zero, as transforms.text.fmt_fixed does."""
    scaled = value * 10**decimals
    whole = math.floor(abs(scaled))
    rounded = whole + (1 if abs(scaled) - whole >= 0.5 else 0)
    return -rounded if scaled < 0 else rounded


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_money(value: float | None, *, decimals: int = 2, dollar: bool = False, sign: bool = False) -> str:
    """'1,234.50', '-$1,709,970,893.58', '+0.42'; NULL prints as n/a."""
    if is_missing(value):
        return NA
    scaled = _scaled(float(value), decimals)
    whole, fraction = divmod(abs(scaled), 10**decimals)
    text = f"{whole:,}" + (f".{fraction:0{decimals}d}" if decimals else "")
    prefix = "-" if scaled < 0 else ("+" if sign and scaled > 0 else "")
    return prefix + ("$" if dollar else "") + text


def fmt_count(value: int | None, *, sign: bool = False) -> str:
    """Contracts and OI with thousands separators: '605,389', '+1,200'."""
    if is_missing(value):
        return NA
    return f"{int(value):+,}" if sign else f"{int(value):,}"


def fmt_pct(value: float | None, *, scale: float = 1.0, sign: bool = False) -> str:
    """A percentage with 2 decimals: change_pct -2.449 -> '-2.45%'; an IV 0.1937 with scale 100 -> '19.37%'."""
    if is_missing(value):
        return NA
    return fmt_money(float(value) * scale, sign=sign) + "%"


def fmt_compact(value: float | None) -> str:
    """A large dollar amount as a trader reads it: '-$38.6bn', '$412.3m' (1 decimal from a million up);
    under a million the exact '$85,210.50'."""
    if is_missing(value):
        return NA
    for size, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "m")):
        if abs(value) >= size * 0.9995:  # what rounds to 1,000.0m reads 1.0bn
            return fmt_money(value / size, decimals=1, dollar=True) + suffix
    return fmt_money(value, dollar=True)


# ------------------------------------------------------------------------------------- page model


@dataclass(frozen=True)
class Facts:
    """Labelled values: '- Label: value' in Markdown, a two-column table in HTML."""

    rows: list[tuple[str, str | Mono]]


@dataclass(frozen=True)
class Link:
    """A table cell linking to a sibling page: Markdown and HTML each point at their own kind."""

    text: str
    markdown: str
    html: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str | Link | list[Link]]]
    numeric: tuple[int, ...] = ()  # right-aligned columns


@dataclass(frozen=True)
class Para:
    text: str
    css: str = ""


@dataclass(frozen=True)
class Mono:
    """A monospace value (OSI symbols keep their padding)."""

    text: str


@dataclass(frozen=True)
class Styled:
    """A value with a CSS class in the HTML (a bias in its colour); plain text in the Markdown."""

    text: str
    css: str


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str  # one <svg> element (report_charts), written to `file` and inlined in the HTML
    file: str  # relative to the day's folder


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[Facts | Table | Para | Chart | Heading]


# `_` only where it could open or close emphasis (rule names such as call_breakout stay readable).
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#]|(?<!\w)_|_(?!\w))")
_MD_CANDIDATE = re.compile(r"[\\`*\[\]<>|#_]")
"""Any character _MD_SPECIAL can match: most cells (numbers, n/a, symbols) have none, and a search is
ten times cheaper than a substitution that finds nothing."""


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text) if _MD_CANDIDATE.search(text) else text


def _md_cell(value: str | Link | Mono | Styled | list[Link]) -> str:
    if isinstance(value, str):  # most cells: tested first
        return md_escape(value)
    if isinstance(value, Styled):
        return md_escape(value.text)
    if isinstance(value, Mono):
        return f"`{value.text}`"
    if isinstance(value, list):
        return " · ".join(_md_cell(v) for v in value)
    if isinstance(value, Link):
        return f"[{md_escape(value.text)}]({value.markdown})"
    raise TypeError(value)


def _html_cell(value: str | Link | Mono | Styled | list[Link]) -> str:
    if isinstance(value, str):  # most cells: tested first
        return html.escape(value)
    if isinstance(value, Styled):
        return f'<span class="{html.escape(value.css)}">{html.escape(value.text)}</span>'
    if isinstance(value, Mono):
        return f"<code>{html.escape(value.text)}</code>"
    if isinstance(value, list):
        return " · ".join(_html_cell(v) for v in value)
    if isinstance(value, Link):
        return f'<a href="{html.escape(value.html)}">{html.escape(value.text)}</a>'
    raise TypeError(value)


def _md_block(block) -> str:
    if isinstance(block, Facts):
        return "\n".join(f"- {label}: {_md_cell(value)}" for label, value in block.rows)
    if isinstance(block, Table):
        head = "| " + " | ".join(md_escape(h) for h in block.headers) + " |"
        rule = (
            "|" + "|".join("---:" if i in block.numeric else "---" for i in range(len(block.headers))) + "|"
        )
        body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *body])
    if isinstance(block, Para):
        return md_escape(block.text)
    if isinstance(block, Chart):
        return f"![{md_escape(block.title)}]({block.file})"
    if isinstance(block, Heading):
        return f"### {md_escape(block.text)}"
    raise TypeError(block)


def _html_block(block) -> str:
    e = html.escape
    if isinstance(block, Facts):
        rows = "".join(
            f"<tr><th>{e(label)}</th><td>{_html_cell(value)}</td></tr>" for label, value in block.rows
        )
        return f'<table class="facts">{rows}</table>'
    if isinstance(block, Table):

        def cells(tag: str, values: list) -> str:
            opens, close = (f"<{tag}>", f'<{tag} class="num">'), f"</{tag}>"
            return "".join(opens[i in block.numeric] + _html_cell(v) + close for i, v in enumerate(values))

        head = cells("th", block.headers)
        body = "".join("<tr>" + cells("td", row) + "</tr>" for row in block.rows)
        return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if isinstance(block, Para):
        css = f' class="{e(block.css)}"' if block.css else ""
        return f"<p{css}>{e(block.text)}</p>"
    if isinstance(block, Chart):
        return f'<figure class="chart" aria-label="{e(block.title)}">{block.svg}</figure>'
    if isinstance(block, Heading):
        return f"<h3>{e(block.text)}</h3>"
    raise TypeError(block)


MARKDOWN_PAGE = Template("""# ${title}

${lead}

${sections}

---
${footer}
""")

HTML_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${css}</style>
</head>
<body>
<main>
<h1>${title}</h1>
${lead}
${sections}
</main>
<footer>${footer}</footer>
</body>
</html>
""")

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2733}
main{max-width:1060px;margin:0 auto;padding:24px 28px;background:#fff}
h1{font-size:26px;margin:0 0 8px}h2{font-size:19px;border-bottom:2px solid #dde3ea;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
table.facts th{text-align:left;font-weight:600;padding:3px 18px 3px 0;color:#44505c;vertical-align:top}
table.facts td{padding:3px 0;font-variant-numeric:tabular-nums}
table.grid th,table.grid td{border:1px solid #dde3ea;padding:4px 8px}table.grid th{background:#eef2f6}
.num{text-align:right;font-variant-numeric:tabular-nums}
.bullish{color:#1e7b34;font-weight:700}.bearish{color:#b3261e;font-weight:700}.neutral{color:#5f6b76;font-weight:700}
p.note{color:#5f6b76;font-size:13px}
p.lead{font-size:16px}
code{white-space:pre;background:#f0f2f5;padding:1px 4px;border-radius:3px}
figure{margin:10px 0}figure.chart svg{display:block;max-width:100%;height:auto;border:1px solid #e4e8ec}
footer{max-width:1060px;margin:0 auto;padding:12px 28px;color:#6b7682;font-size:12px}
a{color:#0b5cad}
"""


def render_page(
    title: str,
    lead: list,
    sections: list[Section],
    footer: str,
    *,
    links: Sequence[tuple[str, str, str]] = (),
) -> tuple[str, str]:
    """Markdown and HTML of one page. `links` are (text, markdown href, html href) shown under the title."""
    md_sections = "\n\n".join(
        f"## {md_escape(s.title)}\n\n" + "\n\n".join(_md_block(b) for b in s.blocks) for s in sections
    )
    html_sections = "\n".join(
        f"<section><h2>{html.escape(s.title)}</h2>\n"
        + "\n".join(_html_block(b) for b in s.blocks)
        + "</section>"
        for s in sections
    )
    md_lead = "\n\n".join(_md_block(b) for b in lead)
    html_lead = "\n".join(_html_block(b) for b in lead)
    if links:
        md_lead = " · ".join(f"[{md_escape(t)}]({m})" for t, m, _ in links) + "\n\n" + md_lead
        html_lead = (
            '<p class="nav">'
            + " · ".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for t, _, h in links)
            + "</p>\n"
            + html_lead
        )
    markdown = MARKDOWN_PAGE.substitute(
        title=md_escape(title), lead=md_lead, sections=md_sections, footer=md_escape(footer)
    )
    page = HTML_PAGE.substitute(
        title=html.escape(title), css=CSS, lead=html_lead, sections=html_sections, footer=html.escape(footer)
    )
    return markdown, page


__all__ = [
    "NA",
    "Chart",
    "Facts",
    "Heading",
    "Link",
    "Mono",
    "Para",
    "Section",
    "Styled",
    "Table",
    "fmt_compact",
    "fmt_count",
    "fmt_money",
    "fmt_pct",
    "is_missing",
    "md_escape",
    "render_page",
]

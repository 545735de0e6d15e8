"""A report as a list of blocks (headings, paragraphs, tables, figures) written out as Markdown, or as one
self-contained HTML file with its figures embedded as base64 PNGs.

Paragraph text may use two inline marks, `code` and **bold**, which read the same in Markdown and HTML.
"""

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

STYLESHEET = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1.5em; color: #1d1d1f; line-height: 1.5; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: 0.3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
tr:nth-child(even) td { background: #fafafa; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0.1em 0.3em; border-radius: 3px; }
"""

_NUMBER = re.compile(r"^[+\-−]?[\d,]*\.?\d+(\s?(%|pp|s|G|M|k))?$")


def _inline_html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _markdown_cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    folded: str | None = None  # a summary line: the table is shown folded under it (<details>)


@dataclass
class Image:
    path: Path  # a PNG in the report's folder
    caption: str


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(text, level))

    def paragraph(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def table(self, headers: list[str], rows: list[list[str]], folded: str | None = None) -> None:
        self.blocks.append(Table(headers, [[str(cell) for cell in row] for row in rows], folded))

    def image(self, path: Path, caption: str) -> None:
        self.blocks.append(Image(Path(path), caption))

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            match block:
                case Heading(text, level):
                    lines += [f"{'#' * level} {text}", ""]
                case Paragraph(text):
                    lines += [text, ""]
                case Table(headers, rows, folded):
                    if folded:
                        lines += ["<details>", f"<summary>{html.escape(folded)}</summary>", ""]
                    lines.append("| " + " | ".join(_markdown_cell(header) for header in headers) + " |")
                    lines.append("|" + "|".join("---" for _ in headers) + "|")
                    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
                    lines += ["", "</details>", ""] if folded else [""]
                case Image(path, caption):
                    lines += [f"![{caption}]({path.name})", "", f"*{caption}*", ""]
        return "\n".join(lines)

    def html(self) -> str:
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{html.escape(self.title)}</title>", f"<style>{STYLESHEET}</style></head><body>",
                 f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            match block:
                case Heading(text, level):
                    parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
                case Paragraph(text):
                    parts.append(f"<p>{_inline_html(text)}</p>")
                case Table(headers, rows, folded):
                    if folded:
                        parts.append(f"<details><summary>{html.escape(folded)}</summary>")
                    parts.append("<table><thead><tr>"
                                 + "".join(f"<th>{html.escape(header)}</th>" for header in headers)
                                 + "</tr></thead><tbody>")
                    for row in rows:
                        cells = "".join(
                            f'<td class="number">{html.escape(cell)}</td>' if _NUMBER.match(cell.strip())
                            else f"<td>{_inline_html(cell)}</td>" for cell in row)
                        parts.append(f"<tr>{cells}</tr>")
                    parts.append("</tbody></table>" + ("</details>" if folded else ""))
                case Image(path, caption):
                    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
                    parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(caption)}">'
                                 f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts)

"""HTML to Markdown-flavoured text with the standard library's parser, for chunking.

``documents.parse_document`` calls ``to_markdown``. Headings become ``#`` lines, block elements
paragraph breaks, list items ``- `` lines, ``<pre>`` fenced code; scripts, styles, templates and
other non-content elements are dropped; entities are decoded. It is not a renderer: it keeps
the structure chunking splits on and the words retrieval matches, nothing more.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIPPED = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"}
)
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "main", "nav",
        "ol", "p", "section", "summary", "table", "tbody", "thead", "tfoot", "ul",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.first_heading: str | None = None
        self._skip_depth = 0
        self._pre_depth = 0
        self._in_title = False
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += tag not in _VOID
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
            self._heading = []
        elif tag == "pre":
            self._pre_depth += 1
            self.parts.append("\n\n```\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"br", "tr"}:
            self.parts.append("\n")
        elif tag in {"td", "th"}:
            self.parts.append(" | ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS:
            if self._heading is not None and self.first_heading is None:
                self.first_heading = " ".join("".join(self._heading).split()) or None
            self._heading = None
            self.parts.append("\n\n")
        elif tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
            self.parts.append("\n```\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._pre_depth:
            self.parts.append(data)
            return
        text = re.sub(r"\s+", " ", data)
        if self._heading is not None:
            self._heading.append(text)
        self.parts.append(text)


def _tidy(text: str) -> str:
    """Trailing spaces off, spaces after a line start off (outside code), at most one blank
    line in a row."""
    lines: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
            lines.append(line.strip())
            continue
        lines.append(line.rstrip() if in_code else line.strip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def to_markdown(html: str) -> tuple[str, str | None]:
    """The text of ``html`` (see the module docstring) and its title: ``<title>``, else the
    first heading, else None."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    title = " ".join("".join(converter.title_parts).split()) or converter.first_heading
    return _tidy("".join(converter.parts)), title

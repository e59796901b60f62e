"""Cutting a document's text into chunks of at most N tokens, along its structure.

``KnowledgeBase.ingest`` calls ``chunk_text`` on the parsed text (``documents``).

- **Headings first.** Every ATX heading (``#`` to ``######``, outside code fences) starts a
  section, and a chunk never spans two sections. Each chunk begins with its heading path
  (``Title > Section > Subsection``), embedded with it: a passage under "Scaling > Workers"
  is found by a question about scaling workers even if its own sentences never say "scaling".
- **Then paragraphs, then sentences.** A section is packed paragraph by paragraph; when a chunk
  is full, the cut goes at its last paragraph boundary if that keeps it at least half full,
  else at the last sentence boundary. Prose is split into sentences, list items and table rows
  and code lines count as sentences, and a sentence longer than a whole chunk is cut at token
  boundaries.
- **Overlap.** The next chunk of the same section starts with the last sentences of the
  previous one, up to ``overlap`` tokens (or the last ``overlap`` tokens of its last sentence
  when that alone is longer), so a passage cut in two is still found whole in one of them.

Token counts follow ``domain.tokens`` (spaces and newlines are free); a chunk's ``tokens``
counts its whole text, heading line included, and never exceeds ``size``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_service.domain.tokens import TOKEN, count_tokens

HEADING_SEPARATOR = " > "
PARAGRAPH = "\n\n"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*([-*+]\s|\d{1,3}[.)]\s|\|)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'`(\[*_])")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its position in the document, its text (heading line first), the heading
    path alone, and its token count."""

    index: int
    text: str
    heading: str
    tokens: int


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence, list item or code line, with what separates it from the unit before."""

    text: str
    tokens: int
    joiner: str

    @property
    def starts_paragraph(self) -> bool:
        return self.joiner == PARAGRAPH


def _sections(text: str) -> list[tuple[list[str], list[str]]]:
    """(heading path, body lines) of each section, in order; headings in code are text."""
    sections: list[tuple[list[str], list[str]]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence_match:
            if fence is None:
                fence = fence_match.group(1)
            elif fence_match.group(1) == fence:
                fence = None
        elif fence is None and (heading := _HEADING.match(line)):
            sections.append(([title for _, title in path], body))
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading.group(2)))
            body = []
            continue
        body.append(line)
    sections.append(([title for _, title in path], body))
    return [(p, b) for p, b in sections if any(line.strip() for line in b)]


def _paragraphs(lines: list[str]) -> list[tuple[str, list[str]]]:
    """("code" | "list" | "prose", lines) of each paragraph; a fenced block is one paragraph
    even with blank lines inside."""
    paragraphs: list[tuple[str, list[str]]] = []
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            kind = "code" if _FENCE.match(current[0]) else "prose"
            if kind == "prose" and _LIST_ITEM.match(current[0]):
                kind = "list"
            paragraphs.append((kind, current.copy()))
            current.clear()

    for line in lines:
        fence = _FENCE.match(line)
        if fence and not in_code:
            flush()
            in_code = True
            current.append(line)
        elif in_code:
            current.append(line)
            if fence:
                in_code = False
                flush()
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()
    return paragraphs


def _units(kind: str, lines: list[str]) -> list[str]:
    if kind == "code":
        return [line.rstrip() for line in lines]
    if kind == "list":
        items: list[str] = []
        for line in lines:
            if _LIST_ITEM.match(line) or not items:
                items.append(line.rstrip())
            else:
                items[-1] += "\n" + line.rstrip()
        return items
    prose = " ".join(line.strip() for line in lines)
    return [s for s in _SENTENCE_END.split(prose) if s]


def _token_starts(text: str) -> list[int]:
    return [match.start() for match in TOKEN.finditer(text)]


def _split_long(text: str, tokens: int, budget: int, joiner: str) -> list[_Unit]:
    """A unit of more than ``budget`` tokens cut into pieces of at most ``budget`` tokens."""
    if tokens <= budget:
        return [_Unit(text, tokens, joiner)]
    starts = _token_starts(text)
    pieces = []
    for first in range(0, len(starts), budget):
        end = starts[first + budget] if first + budget < len(starts) else len(text)
        piece = text[starts[first] : end].strip()
        pieces.append(_Unit(piece, count_tokens(piece), joiner if first == 0 else " "))
    return pieces


def _section_units(lines: list[str], budget: int, overlap: int) -> list[_Unit]:
    # Pieces of a cut sentence leave room for the overlap, or consecutive pieces would share
    # nothing; never below half a chunk, whatever the heading line takes.
    piece = max(budget // 2, budget - overlap, 1)
    units: list[_Unit] = []
    for kind, paragraph in _paragraphs(lines):
        inner = " " if kind == "prose" else "\n"
        for position, text in enumerate(_units(kind, paragraph)):
            joiner = PARAGRAPH if position == 0 else inner
            units.extend(_split_long(text, count_tokens(text), piece, joiner))
    return units


def _size(units: list[_Unit]) -> int:
    return sum(unit.tokens for unit in units)


def _cut_point(current: list[_Unit], carried: int, budget: int) -> int:
    """How many units of ``current`` to emit: up to its last paragraph start that keeps the
    chunk half full, else all; always more than the ``carried`` overlap units."""
    size = _size(current[: carried + 1])
    best = len(current)
    for index in range(carried + 1, len(current)):
        if current[index].starts_paragraph and size * 2 >= budget:
            best = index
        size += current[index].tokens
    return best


def _tail(emitted: list[_Unit], overlap: int, room: int) -> list[_Unit]:
    """The overlap the next chunk starts with: the last whole units of ``emitted`` within
    ``min(overlap, room)`` tokens, else the last tokens of its last unit."""
    limit = min(overlap, room)
    if limit <= 0:
        return []
    tail: list[_Unit] = []
    size = 0
    for unit in reversed(emitted):
        if size + unit.tokens > limit:
            break
        tail.insert(0, unit)
        size += unit.tokens
    if tail or not emitted:
        return tail
    last = emitted[-1]
    starts = _token_starts(last.text)
    piece = last.text[starts[-limit] :] if len(starts) >= limit else last.text
    return [_Unit(piece, count_tokens(piece), PARAGRAPH)]


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[list[_Unit]]:
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    carried = 0
    for unit in units:
        while current and _size(current) + unit.tokens > budget:
            cut = _cut_point(current, carried, budget)
            emitted, rest = current[:cut], current[cut:]
            chunks.append(emitted)
            tail = _tail(emitted, overlap, budget - unit.tokens - _size(rest))
            current, carried = tail + rest, len(tail)
        current.append(unit)
    if current and len(current) > carried:
        chunks.append(current)
    return chunks


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(unit.joiner + unit.text for unit in units[1:])


def heading_line(title: str, path: list[str], size: int) -> str:
    """``Title > Section > Sub`` (a first heading equal to the title is not repeated), kept
    within half a chunk: middle headings go first, then the line is cut."""
    parts = [title, *path]
    if path and path[0].strip().casefold() == title.strip().casefold():
        parts = parts[1:]
    limit = size // 2
    while len(parts) > 2 and count_tokens(HEADING_SEPARATOR.join(parts)) > limit:
        del parts[1]
    line = HEADING_SEPARATOR.join(parts)
    starts = _token_starts(line)
    return line[: starts[limit]].rstrip() if len(starts) > limit else line


def chunk_text(text: str, *, title: str, size: int, overlap: int) -> list[Chunk]:
    """The chunks of a document's ``text`` (see the module docstring), in order."""
    if size < 2 or not 0 <= overlap * 2 <= size:
        raise ValueError("size must be at least 2 and overlap at most half of it")
    chunks: list[Chunk] = []
    for path, lines in _sections(text):
        heading = heading_line(title, path, size)
        budget = size - count_tokens(heading)
        for units in _pack(_section_units(lines, budget, overlap), budget, overlap):
            body = _join(units)
            chunk = heading + PARAGRAPH + body
            chunks.append(Chunk(len(chunks), chunk, heading, count_tokens(chunk)))
    return chunks

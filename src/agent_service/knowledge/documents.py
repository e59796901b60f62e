"""Reading a document into text: plain text, Markdown, HTML and PDF, within size limits.

``KnowledgeBase.ingest`` calls ``parse_document`` first, before anything is written, so a
rejected document leaves nothing behind. The result is Markdown-flavoured text (headings as
``#`` lines, paragraphs separated by blank lines) that ``chunking`` cuts along headings,
paragraphs and sentences: HTML is converted by ``html_text``, PDF pages are extracted by
``pdf_text`` (``pypdf``). The type comes from the media type when it names one we read, else
from the file name's extension.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from agent_service.knowledge import html_text, pdf_text
from agent_service.knowledge.errors import (
    DocumentTooLargeError,
    EmptyDocumentError,
    UnparsableDocumentError,
    UnsupportedDocumentError,
)


class DocumentType(StrEnum):
    """The document types ingestion reads, by media type."""

    TEXT = "text/plain"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    PDF = "application/pdf"


MEDIA_TYPES: dict[str, DocumentType] = {
    "text/plain": DocumentType.TEXT,
    "text/markdown": DocumentType.MARKDOWN,
    "text/x-markdown": DocumentType.MARKDOWN,
    "text/html": DocumentType.HTML,
    "application/xhtml+xml": DocumentType.HTML,
    "application/pdf": DocumentType.PDF,
}
EXTENSIONS: dict[str, DocumentType] = {
    ".txt": DocumentType.TEXT,
    ".text": DocumentType.TEXT,
    ".md": DocumentType.MARKDOWN,
    ".markdown": DocumentType.MARKDOWN,
    ".html": DocumentType.HTML,
    ".htm": DocumentType.HTML,
    ".pdf": DocumentType.PDF,
}
# Media types that say nothing about the content: the extension decides.
GENERIC_MEDIA_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

TITLE_MAX_CHARS = 200


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds checked while parsing (each gives ``DocumentTooLargeError``)."""

    max_bytes: int = 10 * 1024 * 1024
    """Size of the document as uploaded."""
    max_chars: int = 2_000_000
    """Extracted text: a small compressed PDF can hold far more text than its size suggests."""
    max_pages: int = 2000
    """Pages of a PDF."""


@dataclass(frozen=True)
class ParsedDocument:
    """A document's text, its type and a title (explicit, from the content, or the file name)."""

    type: DocumentType
    text: str
    title: str
    pages: int | None = None


def detect_type(content_type: str | None, filename: str | None) -> DocumentType:
    """The type from the media type (parameters ignored), else from the extension."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    suffix = PurePosixPath(filename or "").suffix.lower()
    if media in GENERIC_MEDIA_TYPES and suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    supported = ", ".join(sorted(MEDIA_TYPES))
    named = media or (f"extension {suffix!r}" if suffix else "no type and no extension")
    raise UnsupportedDocumentError(
        f"unsupported document type ({named}); supported: {supported}, "
        f"or a file named {', '.join(sorted(EXTENSIONS))}"
    )


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped), with ``\\r\\n`` and ``\\r`` line ends made ``\\n``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnparsableDocumentError(
            f"the document is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise UnparsableDocumentError("the document holds NUL characters: it is binary, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.S)
_FRONT_TITLE = re.compile(r"^title:\s*['\"]?(.+?)['\"]?\s*$", re.M)
_ATX_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _markdown(text: str) -> tuple[str, str | None]:
    """Markdown without its front matter, and the title it gives (front matter or heading)."""
    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1) if found else None
        text = text[front.end() :]
    if title is None:
        heading = _ATX_HEADING.search(text)
        title = heading.group(1) if heading else None
    return text, title


def _first_line(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def _clip_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_MAX_CHARS else title[: TITLE_MAX_CHARS - 1] + "…"


def parse_document(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    title: str | None = None,
    limits: DocumentLimits | None = None,
) -> ParsedDocument:
    """The text of a document; raises a ``KnowledgeError`` (415, 413 or 422) when it cannot.

    ``title`` wins over the one found in the content (Markdown front matter or first heading,
    HTML ``<title>``, PDF metadata), which wins over the file name, then the first line.
    """
    limits = limits or DocumentLimits()
    if len(data) > limits.max_bytes:
        raise DocumentTooLargeError(
            f"the document is {len(data)} bytes, more than the limit of {limits.max_bytes}"
        )
    kind = detect_type(content_type, filename)
    pages = None
    found: str | None
    if kind is DocumentType.PDF:
        extracted = pdf_text.extract(data, max_pages=limits.max_pages, max_chars=limits.max_chars)
        text, found, pages = extracted.text, extracted.title, extracted.pages
    else:
        text = decode_text(data)
        found = None
        if kind is DocumentType.MARKDOWN:
            text, found = _markdown(text)
        elif kind is DocumentType.HTML:
            text, found = html_text.to_markdown(text)
    if len(text) > limits.max_chars:
        raise DocumentTooLargeError(
            f"the document's text is {len(text)} characters, more than the limit of "
            f"{limits.max_chars}"
        )
    if not text.strip():
        raise EmptyDocumentError("the document holds no text to index")
    stem = PurePosixPath(filename).stem if filename else None
    chosen = title or found or stem or _first_line(text) or "untitled"
    return ParsedDocument(type=kind, text=text, title=_clip_title(chosen), pages=pages)

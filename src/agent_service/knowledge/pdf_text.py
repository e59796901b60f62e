"""The text layer of a PDF, page by page, with ``pypdf`` (pure Python, imported on first use).

``documents.parse_document`` calls ``extract``. Pages are joined by blank lines, so chunking
treats each page as a paragraph at least. Anything ``pypdf`` cannot read (not a PDF, a broken
cross-reference table, an encryption it cannot open) is an ``UnparsableDocumentError``; a PDF
with more pages or text than allowed is a ``DocumentTooLargeError``, raised as soon as a limit
is passed rather than after extracting everything.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from agent_service.knowledge.errors import DocumentTooLargeError, UnparsableDocumentError

# The PDF header may follow up to 1,024 bytes of junk (PDF 32000-1, annex H.3 note 13).
HEADER_SEARCH_BYTES = 1024


@dataclass(frozen=True)
class PdfText:
    text: str
    title: str | None
    pages: int


def extract(data: bytes, *, max_pages: int, max_chars: int) -> PdfText:
    """The text of the PDF in ``data``; raises ``UnparsableDocumentError`` or
    ``DocumentTooLargeError``."""
    if b"%PDF-" not in data[:HEADER_SEARCH_BYTES]:
        raise UnparsableDocumentError("the document is not a PDF (no %PDF- header)")
    # pypdf is imported here: processes that never read a PDF do not pay for it (~50 MB).
    from pypdf import PdfReader  # noqa: PLC0415

    # pypdf logs every recoverable defect of a PDF as a warning; one bad upload must not
    # flood the service's log, and what could not be recovered is raised below.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnparsableDocumentError("the PDF is encrypted with a password")
        pages = len(reader.pages)
        if pages > max_pages:
            raise DocumentTooLargeError(
                f"the PDF has {pages} pages, more than the limit of {max_pages}"
            )
        texts: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            total += len(text)
            if total > max_chars:
                raise DocumentTooLargeError(
                    f"the PDF's text is over the limit of {max_chars} characters"
                )
            texts.append(text.strip())
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except (UnparsableDocumentError, DocumentTooLargeError):
        raise
    except Exception as exc:
        # pypdf raises its own PdfReadError, but a damaged file also surfaces as ValueError,
        # KeyError, TypeError or AssertionError from deep inside; all mean "cannot read it".
        raise UnparsableDocumentError(f"the PDF could not be read ({type(exc).__name__})") from exc
    return PdfText(
        text="\n\n".join(t for t in texts if t),
        title=title.strip() if isinstance(title, str) and title.strip() else None,
        pages=pages,
    )

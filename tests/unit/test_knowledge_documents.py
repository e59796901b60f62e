"""Reading documents: type detection, limits, Markdown, HTML and PDF, and the typed errors."""

from __future__ import annotations

import pytest

from agent_service.knowledge.documents import (
    DocumentLimits,
    DocumentType,
    detect_type,
    parse_document,
)
from agent_service.knowledge.errors import (
    DocumentTooLargeError,
    EmptyDocumentError,
    KnowledgeError,
    UnparsableDocumentError,
    UnsupportedDocumentError,
)
from agent_service.knowledge.html_text import to_markdown
from tests.pdfs import make_pdf


@pytest.mark.parametrize(
    ("content_type", "filename", "expected"),
    [
        ("text/markdown; charset=utf-8", None, DocumentType.MARKDOWN),
        ("TEXT/HTML", "x.pdf", DocumentType.HTML),  # a specific media type wins
        (None, "notes.MD", DocumentType.MARKDOWN),
        ("application/octet-stream", "paper.pdf", DocumentType.PDF),
        ("", "page.htm", DocumentType.HTML),
        (None, "a.txt", DocumentType.TEXT),
        ("application/pdf", None, DocumentType.PDF),
    ],
)
def test_detect_type(
    content_type: str | None, filename: str | None, expected: DocumentType
) -> None:
    assert detect_type(content_type, filename) is expected


@pytest.mark.parametrize(
    ("content_type", "filename"),
    [
        ("application/msword", "a.doc"),
        (None, "slides.pptx"),
        (None, None),
        ("image/png", "a.md"),  # a specific, unsupported media type is not overridden
    ],
)
def test_unsupported_types_are_415(content_type: str | None, filename: str | None) -> None:
    with pytest.raises(UnsupportedDocumentError) as caught:
        parse_document(b"data", content_type=content_type, filename=filename)
    assert caught.value.status == 415
    assert "text/markdown" in caught.value.message


def test_size_limits_are_413() -> None:
    with pytest.raises(DocumentTooLargeError) as caught:
        parse_document(b"x" * 101, filename="a.txt", limits=DocumentLimits(max_bytes=100))
    assert caught.value.status == 413
    with pytest.raises(DocumentTooLargeError):
        parse_document(b"word " * 30, filename="a.txt", limits=DocumentLimits(max_chars=100))
    pdf = make_pdf([["page one"], ["page two"], ["page three"]])
    with pytest.raises(DocumentTooLargeError, match="3 pages"):
        parse_document(pdf, filename="a.pdf", limits=DocumentLimits(max_pages=2))


@pytest.mark.parametrize(
    ("data", "filename", "error", "message"),
    [
        (b"caf\xe9", "a.txt", UnparsableDocumentError, "not UTF-8"),
        (b"a\x00b", "a.md", UnparsableDocumentError, "binary"),
        (b"   \n\n", "a.md", EmptyDocumentError, "no text"),
        (b"<html><script>x()</script></html>", "a.html", EmptyDocumentError, "no text"),
        (b"%PDF-1.7\nthis is not a PDF body", "a.pdf", UnparsableDocumentError, "PDF"),
        (b"just text", "a.pdf", UnparsableDocumentError, "not a PDF"),
        (make_pdf([[]]), "a.pdf", EmptyDocumentError, "no text"),
    ],
)
def test_unreadable_documents_are_422(
    data: bytes, filename: str, error: type[KnowledgeError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_document(data, filename=filename)
    assert caught.value.status == 422


def test_markdown_title_from_front_matter_then_heading_then_file_name() -> None:
    front = b"---\ntitle: 'Ops guide'\ntags: [a]\n---\n# Heading\n\nBody.\n"
    parsed = parse_document(front, filename="ops.md")
    assert parsed.title == "Ops guide"
    assert parsed.text.startswith("# Heading")
    assert parse_document(b"Intro\n\n## Part two\n\nx", filename="ops.md").title == "Part two"
    assert parse_document(b"plain words", filename="dir/notes.txt").title == "notes"
    assert parse_document(b"plain words", filename="n.txt", title="Given").title == "Given"
    assert parse_document(b"\xef\xbb\xbfline one\r\nline two", content_type="text/plain").text == (
        "line one\nline two"
    )


def test_html_becomes_markdown_with_headings_lists_and_code() -> None:
    html = """<!doctype html><html><head><title>Ops &amp; more</title>
      <style>body {color: red}</style><script>var x = "<h1>no</h1>";</script></head>
      <body><nav><a href="/">Home</a></nav>
      <h1>Scaling</h1><p>Workers   scale on
      <b>queue depth</b>.</p>
      <h2>Steps</h2><ul><li>Install KEDA</li><li>Set <code>mode=keda</code></li></ul>
      <pre>helm upgrade -i x
  --set a=b</pre><table><tr><th>k</th><td>v</td></tr></table></body></html>"""
    text, title = to_markdown(html)
    assert title == "Ops & more"
    assert "# Scaling\n\nWorkers scale on queue depth." in text
    assert "## Steps\n\n- Install KEDA\n- Set mode=keda" in text
    assert "```\nhelm upgrade -i x\n  --set a=b\n```" in text
    assert "color: red" not in text and "no</h1>" not in text
    parsed = parse_document(html.encode(), content_type="text/html")
    assert parsed.title == "Ops & more"
    assert to_markdown("<h1>First</h1><p>x</p>")[1] == "First"


def test_pdf_text_pages_and_title() -> None:
    pdf = make_pdf([["Scaling workers", "Use KEDA (queue depth)."], ["Second page."]], "Ops")
    parsed = parse_document(pdf, content_type="application/pdf")
    assert parsed.type is DocumentType.PDF
    assert parsed.pages == 2
    assert parsed.title == "Ops"
    assert parsed.text == "Scaling workers\nUse KEDA (queue depth).\n\nSecond page."
    assert parse_document(make_pdf([["Only text"]]), filename="guide.pdf").title == "guide"


def test_a_truncated_pdf_is_unparsable() -> None:
    pdf = make_pdf([["Scaling workers"]])
    with pytest.raises(UnparsableDocumentError):
        parse_document(pdf[: len(pdf) // 3], filename="a.pdf")

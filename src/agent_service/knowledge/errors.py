"""Errors of knowledge bases, each with the HTTP status the API answers with.

Raised by parsing, ingestion, search and the store adapter. Every one is an ``AgentError`` with a
client-visible ``type`` and a message that is safe to show; ``status`` is the HTTP status of the
documented error shape (``api`` maps it; a queued ingestion records it as its failure). A
document rejected by any of these leaves nothing behind in the store.
"""

from __future__ import annotations

from typing import ClassVar

from agent_service.domain.errors import AgentError, ErrorType


class KnowledgeError(AgentError):
    """Base of knowledge errors: ``type`` and ``status`` are fixed per subclass."""

    error_type: ClassVar[ErrorType] = ErrorType.INVALID_REQUEST
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(self.error_type, message)


class UnsupportedDocumentError(KnowledgeError):
    """The document is of a type ingestion does not read (415)."""

    error_type = ErrorType.UNSUPPORTED_MEDIA_TYPE
    status = 415


class DocumentTooLargeError(KnowledgeError):
    """The document, its page count or its extracted text is over a limit (413)."""

    error_type = ErrorType.PAYLOAD_TOO_LARGE
    status = 413


class UnparsableDocumentError(KnowledgeError):
    """The document claims a type but cannot be read as one: a broken PDF, text that is not
    UTF-8 (422)."""

    status = 422


class EmptyDocumentError(KnowledgeError):
    """The document holds no text to index, e.g. a scanned PDF without a text layer (422)."""

    status = 422


class InvalidDocumentError(KnowledgeError):
    """A document id, title, URI or metadata value is out of bounds (400)."""


class InvalidSearchError(KnowledgeError):
    """A search without a question (400)."""


class DocumentNotFoundError(KnowledgeError):
    """No such document in this knowledge base for this tenant (404)."""

    error_type = ErrorType.NOT_FOUND
    status = 404


class KnowledgeConflictError(KnowledgeError):
    """The store holds vectors of another dimension than the embedding model gives: the
    knowledge base's model was changed without re-creating it (409)."""

    error_type = ErrorType.CONFLICT
    status = 409


class KnowledgeStoreUnavailableError(KnowledgeError):
    """The vector store cannot be reached or failed (503, worth retrying)."""

    error_type = ErrorType.DEPENDENCY_UNAVAILABLE
    status = 503

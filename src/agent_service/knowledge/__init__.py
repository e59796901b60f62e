"""Knowledge bases: a team's documents, chunked, embedded and searched, with sources.

- ``agentconfig.knowledge`` (not here): what a knowledge base declares (name, embedding model,
  chunking, topK, minimum score);
- ``documents`` (with ``html_text`` and ``pdf_text``): text, Markdown, HTML and PDF to text,
  within limits; ``chunking``: text to chunks along headings, paragraphs and sentences;
- ``store``: the ``VectorStore`` port; ``chroma``: its adapter on Chroma, embedded or server;
- ``versions``: how a changed document replaces its chunks atomically for readers;
- ``base``: ``KnowledgeBase``, which ingests, searches, lists and deletes documents;
- ``errors``: what a bad document or an unavailable store raises, with HTTP statuses.

Nothing here imports ``chromadb`` or ``pypdf`` at import time: processes that never touch a
knowledge base pay nothing for them (docs/knowledge.md has the figures).
"""

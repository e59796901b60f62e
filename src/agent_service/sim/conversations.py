"""Completion requests counted per conversation, so tests can see a request sent twice.

``server`` counts every well-formed ``/v1/chat/completions`` request here and serves the counts
at ``GET /admin/conversations`` (``DELETE`` clears them). A conversation is named by its first
user message: ``conversation_id(text)`` is the first 16 hex digits of its SHA-256. Within one,
``requests`` counts every request and ``distinct`` the different message lists: a request whose
messages were all sent before (a repeated step) makes ``repeated`` (``requests - distinct``) grow.
A durable run resumed from its journal must not repeat one.

Bounded: the oldest conversations are forgotten beyond ``max_conversations``, and a conversation
stops telling requests apart beyond ``MAX_DIGESTS`` (it still counts them). ``by_messages``
counts the requests by the number of messages they carry: in an agent run that number grows
with each step, so it says which step a request (or a repeated one) was for.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_service.sim.behaviour import first_user_text

MAX_DIGESTS = 1000
PREVIEW_CHARS = 80


def conversation_id(first_user_message: str) -> str:
    """The id of the conversation whose first user message is ``first_user_message``."""
    return hashlib.sha256(first_user_message.encode()).hexdigest()[:16]


@dataclass
class Conversation:
    first_user: str
    requests: int = 0
    digests: set[str] = field(default_factory=set)
    by_messages: Counter[int] = field(default_factory=Counter)
    """Requests by the length of their message list: each step of an agent run adds messages,
    so the length names the step a request was for."""

    def view(self) -> dict[str, Any]:
        distinct = len(self.digests)
        return {
            "first_user": self.first_user[:PREVIEW_CHARS],
            "requests": self.requests,
            "distinct": distinct,
            "repeated": self.requests - distinct,
            "by_messages": {str(length): n for length, n in sorted(self.by_messages.items())},
        }


class ConversationCounter:
    """Request counts by conversation (one per simulator process)."""

    def __init__(self, max_conversations: int = 10_000) -> None:
        self._max = max_conversations
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()

    def count(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """Count one request with ``messages``; returns its conversation's id."""
        first = first_user_text(messages)
        key = conversation_id(first)
        conversation = self._conversations.get(key)
        if conversation is None:
            conversation = self._conversations[key] = Conversation(first)
            if len(self._conversations) > self._max:
                self._conversations.popitem(last=False)
        conversation.requests += 1
        conversation.by_messages[len(messages)] += 1
        if len(conversation.digests) < MAX_DIGESTS:
            text = json.dumps(messages, sort_keys=True, ensure_ascii=False)
            conversation.digests.add(hashlib.sha256(text.encode()).hexdigest())
        return key

    def view(self) -> dict[str, dict[str, Any]]:
        return {key: conv.view() for key, conv in self._conversations.items()}

    def clear(self) -> None:
        self._conversations.clear()

"""Log redaction and PII masking: what is masked, and what must be left alone."""

from __future__ import annotations

import pytest

from agent_service.observability.logging import mask_pii, mask_pii_text, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/v1/tasks/call-me-at-+1-415-555-0123", "/v1/tasks/call-me-at-[phone]"),
        ("mail jane.doe+x@mail.example.co.uk now", "mail [email] now"),
        ("(415) 555 0123", "[phone]"),
        ("+44 20 7946 0958.", "[phone]."),
        ("415-555-0123", "[phone]"),
    ],
)
def test_pii_is_masked(text: str, expected: str) -> None:
    assert mask_pii_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T04:14:00.123456Z",
        "2026-11-22 04:14:00",
        "took 1234567890 ms",
        "peer 192.168.100.200:6379",
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-4123-8123-123456789012",
        "3f2a9c1b0d4e5f60718293a4b5c6d7e8",
        "1700000000.123",
        "version 0.1.0 on ports 9100 and 6379",
    ],
)
def test_timestamps_ids_and_numbers_are_left_alone(text: str) -> None:
    assert mask_pii_text(text) == text


def test_processor_masks_values_but_not_the_timestamp_or_trace_ids() -> None:
    line = {
        "event": "user jane@example.com",
        "timestamp": "2026-11-22T04:14:00Z",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "status": 200,
    }
    assert mask_pii(None, "info", line) == {**line, "event": "user [email]"}


def test_secrets_are_redacted_by_key_and_by_shape() -> None:
    line = {
        "event": "calling with Authorization: Bearer abc.def-123 and sk-proj-0123456789abc",
        "authorization": "Basic dXNlcjpwYXNz",
        "X-API-Key": "tenant-key",
    }
    out = redact(None, "info", line)
    assert out["authorization"] == "***" and out["X-API-Key"] == "***"
    assert "abc.def-123" not in out["event"] and "0123456789abc" not in out["event"]

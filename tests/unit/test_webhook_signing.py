"""Webhook signatures: the documented algorithm (a vector computed with openssl), verification
with its tolerance window, the headers of a delivery, and the recipe docs/api.md gives."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from agent_service.webhooks.signing import (
    SignatureError,
    compute_signature,
    delivery_headers,
    parse_signature_header,
    signature_header,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"event":"task.finished","task":{"task_id":"abc"}}'
T = 1_700_000_000
# printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac whsec_test
OPENSSL_HEX = "4b440ddb2cfbb8dfeb4cc1f6e153acf6c89d68a3b86e86d92db5e9065372be7c"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    assert compute_signature(SECRET, T, BODY) == OPENSSL_HEX
    assert signature_header(SECRET, T, BODY) == f"t={T},v1={OPENSSL_HEX}"


def test_a_fresh_signature_verifies_and_returns_its_timestamp() -> None:
    header = signature_header(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, now=T + 299) == T
    assert verify(SECRET, header, BODY, now=T - 299) == T  # receiver's clock behind


@pytest.mark.parametrize(
    ("secret", "header", "body", "now", "reason"),
    [
        (SECRET, None, BODY, T, "no X-Agent-Signature"),
        (SECRET, "", BODY, T, "no X-Agent-Signature"),
        ("other-secret", f"t={T},v1={OPENSSL_HEX}", BODY, T, "does not match"),
        (SECRET, f"t={T},v1={OPENSSL_HEX}", BODY + b" ", T, "does not match"),
        (SECRET, f"t={T + 1},v1={OPENSSL_HEX}", BODY, T, "does not match"),  # moved timestamp
        (SECRET, f"t={T},v1={OPENSSL_HEX}", BODY, T + 301, "tolerance"),
        (SECRET, f"t={T},v1={OPENSSL_HEX}", BODY, T - 301, "tolerance"),
        (SECRET, f"v1={OPENSSL_HEX}", BODY, T, "no timestamp"),
        (SECRET, f"t={T}", BODY, T, "no v1"),
        (SECRET, f"t={T},v0={OPENSSL_HEX}", BODY, T, "no v1"),
        (SECRET, f"t=soon,v1={OPENSSL_HEX}", BODY, T, "malformed"),
        (SECRET, "garbage", BODY, T, "malformed"),
    ],
)
def test_bad_signatures_are_refused(
    secret: str, header: str | None, body: bytes, now: float, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(secret, header, body, now=now)


def test_any_matching_v1_is_accepted_and_unknown_schemes_are_ignored() -> None:
    header = f"t={T}, v1={'0' * 64}, v2=whatever, v1={OPENSSL_HEX}"
    assert parse_signature_header(header) == (T, ["0" * 64, OPENSSL_HEX])
    assert verify(SECRET, header, BODY, now=T) == T


def test_tolerance_is_a_parameter() -> None:
    header = signature_header(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, now=T + 3600, tolerance_seconds=3600) == T
    with pytest.raises(SignatureError):
        verify(SECRET, header, BODY, now=T + 11, tolerance_seconds=10)


def test_delivery_headers_name_event_delivery_task_and_signature() -> None:
    headers = delivery_headers(SECRET, "abc", 3, BODY, timestamp=T)
    assert headers == {
        "Content-Type": "application/json",
        "X-Agent-Event": "task.finished",
        "X-Agent-Delivery": "abc:3",
        "X-Agent-Task-Id": "abc",
        "X-Agent-Signature": f"t={T},v1={OPENSSL_HEX}",
    }


def test_the_verification_recipe_in_the_api_doc_accepts_our_signatures() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = doc.split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # the reader's copy-paste, run as is
    recipe = namespace["verify"]
    now = int(time.time())
    assert recipe(SECRET, signature_header(SECRET, now, BODY), BODY)
    assert not recipe("other", signature_header(SECRET, now, BODY), BODY)
    assert not recipe(SECRET, signature_header(SECRET, now, BODY), BODY + b"x")
    assert not recipe(SECRET, signature_header(SECRET, now - 600, BODY), BODY)
    assert not recipe(SECRET, "garbage", BODY)

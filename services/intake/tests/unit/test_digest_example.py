"""The README's worked digest example holds: a resident following the documented rules
gets the same canonical form and digest as intake does."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake.domain.submission import canonical_form, digest_of
from shared.contracts.intake import Channel, SubmissionContent

README = Path(__file__).resolve().parents[4] / "README.md"
CONSULTATION_ID = "0b2c3a52-6a8e-4e53-9d0e-2f1f5f6a7b8c"
RECEIVED_AT = "2026-11-26T14:04:00Z"


def example(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    if marker == "digest":
        found = re.search(r"<!-- digest-example:digest --> `([0-9a-f]{64})`", text)
    else:
        found = re.search(rf"<!-- digest-example:{marker} -->\n```json\n(.*?)\n```", text, re.S)
    assert found, f"README lost its digest example ({marker})"
    return found.group(1)


def by_the_documented_rules(sent: dict[str, Any]) -> dict[str, Any]:
    """What the README says, implemented independently of intake's code."""

    def clean(text: str) -> str:
        return unicodedata.normalize("NFC", text).strip().strip("\u200b\u200c\u200d\u2060\ufeff")

    submitter = {key: clean(value) for key, value in sent["submitter"].items() if value}
    local, _, domain = submitter["email"].partition("@")
    submitter["email"] = f"{local}@{domain.lower()}"
    return {
        "consultation_id": CONSULTATION_ID,
        "submitter": submitter,
        "theme": sent["theme"],
        "title": clean(sent["title"]),
        "body": clean(sent["body"]),
        "channel": "web",
        "received_at": RECEIVED_AT,
    }


def test_the_readme_example_recomputes() -> None:
    sent = json.loads(example("sent"))
    canonical = example("canonical")
    digest = example("digest")

    mine = by_the_documented_rules(sent)
    rendered = json.dumps(mine, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert rendered == canonical
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest

    intakes = canonical_form(
        uuid.UUID(CONSULTATION_ID),
        SubmissionContent.model_validate(sent),
        Channel.WEB,
        datetime(2026, 11, 26, 14, 4, tzinfo=UTC),
    )
    assert intakes == mine
    assert digest_of(intakes) == digest

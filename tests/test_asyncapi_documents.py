"""The committed AsyncAPI documents are what the code declares.

Regenerate with `make asyncapi` after changing a contract, and commit the result: event
consumers review contract changes in the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.platform.asyncapi import SERVICES, document_path, render

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("service", SERVICES)
def test_committed_document_matches_code(service: str) -> None:
    path = document_path(REPO, service)
    assert path.exists(), f"{path} missing: run `make asyncapi`"
    assert path.read_text(encoding="utf-8") == render(service), (
        f"{path} is stale: run `make asyncapi` and commit the result"
    )


def test_documents_list_every_topic_of_their_owner() -> None:
    from shared.contracts.topics import Topic

    for service in SERVICES:
        document = yaml.safe_load(document_path(REPO, service).read_text(encoding="utf-8"))
        assert document["asyncapi"] == "3.0.0"
        addresses = {channel["address"] for channel in document.get("channels", {}).values()}
        owned = {topic.value for topic in Topic if topic.owner == service}
        assert owned <= addresses, f"{service} does not document {owned - addresses}"

"""Rules of a data-subject request: complete once every listed service has answered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from intake.domain.privacy import PrivacyRequest, Reply, RequestKind
from intake.entrypoints.privacy import PersonQuery
from shared.contracts.privacy import SubjectKind

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_request_is_complete_only_when_every_service_answered() -> None:
    request = PrivacyRequest(
        id=uuid.uuid4(),
        kind=RequestKind.ERASURE,
        subject_kind=SubjectKind.EMAIL,
        services=("intake", "groups"),
        requested_at=NOW,
    )
    assert not request.complete
    request.replies["intake"] = Reply(service="intake", records=1, answered_at=NOW)
    assert not request.complete
    assert request.per_service()["groups"] == {"done": False, "records": None, "answered_at": None}
    request.replies["groups"] = Reply(service="groups", records=0, answered_at=NOW)
    assert request.complete
    # An answer from a service not asked does not count, nor block.
    request.replies["other"] = Reply(service="other", records=3, answered_at=NOW)
    assert set(request.per_service()) == {"intake", "groups"}


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "a@example.org", "phone": "601234567"}, {"email": "not-an-email"}, {"x": 1}],
)
def test_a_request_names_exactly_one_address(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        PersonQuery.model_validate(body)


def test_the_subject_travels_as_hashes_only() -> None:
    subject = PersonQuery(email="Jan@Example.org").subject("PL")
    assert "jan" not in subject.model_dump_json().lower()
    assert PersonQuery(phone="601 234 567").subject("PL").kind is SubjectKind.PHONE

"""Rules of the shared RODO helpers: naming a person by hashes, sealed answers."""

from __future__ import annotations

import uuid

import pytest
from cryptography.exceptions import InvalidTag

from shared.contracts.privacy import SubjectKind
from shared.errors import InvalidRequest
from shared.platform.privacy import (
    email_hash,
    export_associated_data,
    names_subject,
    new_key_pair,
    open_sealed,
    seal,
    subject_for_email,
    subject_for_phone,
)


def test_an_email_is_named_case_and_space_insensitively_and_never_in_clear() -> None:
    subject = subject_for_email("  Jan.Kowalski@Example.COM ")
    assert subject.kind is SubjectKind.EMAIL
    assert subject.hashes == (email_hash("jan.kowalski@example.com"),)
    assert "example" not in subject.model_dump_json().lower()


def test_a_phone_is_named_as_dialled_internationally_and_nationally() -> None:
    subject = subject_for_phone("601 234 567")
    for stored in ("+48 601 234 567", "601-234-567", "0048601234567"):
        assert names_subject(f"tel. {stored}", subject), stored
    assert not names_subject("tel. 601 234 568", subject)
    with pytest.raises(InvalidRequest):
        subject_for_phone("not a number")


def test_names_subject_finds_an_address_in_a_message() -> None:
    subject = subject_for_email("jan@example.org")
    assert names_subject('{"submitter_email": "Jan@Example.org"}', subject)
    assert not names_subject('{"submitter_email": "janek@example.org"}', subject)


def test_a_sealed_answer_opens_only_with_its_key_and_for_its_request() -> None:
    private, public = new_key_pair()
    request = uuid.uuid4()
    box = seal(public, b'{"a": 1}', associated_data=export_associated_data(request, "groups"))
    opened = open_sealed(private, box, associated_data=export_associated_data(request, "groups"))
    assert opened == b'{"a": 1}'
    with pytest.raises(InvalidTag):  # replayed as another service's answer
        open_sealed(private, box, associated_data=export_associated_data(request, "intake"))
    other_private, _ = new_key_pair()
    with pytest.raises(InvalidTag):  # after the key is gone, no other key opens it
        open_sealed(other_private, box, associated_data=export_associated_data(request, "groups"))

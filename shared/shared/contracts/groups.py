"""Contracts published by the groups service.

Data minimisation: only `groups.volunteer-messages.v2` carries an email address, a name or
an emailed link's secret, because notifications needs exactly that to write to a
volunteer; the address and names travel sealed under their person's key (crypto-shredding;
v1 carried them in clear), and the topic keeps its messages no longer than the longest
token lives (see `topics.TOPIC_CONFIGS`). Every other groups topic carries ids, themes and
public texts: no phone number, no email address, no token.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from shared.contracts.envelope import TOLERANT_READER, EventPayload
from shared.contracts.fields import Text
from shared.contracts.intake import Body, Language, Theme, Title
from shared.contracts.sealed import PersonKeyPublished, SealedValue

Name = Annotated[str, Text(200, multiline=False)]
GroupName = Annotated[str, Text(200, multiline=False)]
PublicReason = Annotated[str, Text(2_000)]
ReceiptNumber = Annotated[str, Text(40, multiline=False)]
# An emailed link's secret (`secrets.token_urlsafe(32)`: 43 URL-safe characters).
LinkToken = Annotated[str, Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class SignUpChannel(StrEnum):
    WEB = "web"
    PHONE = "phone"
    PAPER = "paper"
    EMAIL = "email"


class ThemeSource(StrEnum):
    """How a submission's theme was chosen."""

    SUBMITTED = "submitted"  # the submitter chose it
    CLASSIFIER = "classifier"  # the text classifier chose it (no theme given)
    COORDINATOR = "coordinator"  # a coordinator overrode it


class Outcome(StrEnum):
    """A submission's final state in its working group."""

    RECOMMENDED = "recommended"
    MERGED = "merged"
    OUT_OF_SCOPE = "out_of_scope"
    REJECTED = "rejected"


# --- groups.groups.v1 (key: group id) -------------------------------------------------------


class GroupFormed(EventPayload):
    event_type = "groups.GroupFormed"

    group_id: uuid.UUID
    consultation_id: uuid.UUID
    theme: Theme
    ordinal: int = Field(ge=1)
    name_pl: GroupName
    name_en: GroupName


class LeadAppointed(EventPayload):
    """A coordinator appointed the group's lead (a member; identified by volunteer id)."""

    event_type = "groups.LeadAppointed"

    group_id: uuid.UUID
    consultation_id: uuid.UUID
    lead_volunteer_id: uuid.UUID


# --- groups.volunteers.v1 (key: volunteer id) ------------------------------------------------


class VolunteerSignedUp(EventPayload):
    """A new volunteer signed up (a web sign-up counts only after `VolunteerConfirmed`)."""

    event_type = "groups.VolunteerSignedUp"

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    channel: SignUpChannel
    themes: tuple[Theme, ...]
    counts: bool


class VolunteerConfirmed(EventPayload):
    """A web volunteer confirmed their email address: from now on they count."""

    event_type = "groups.VolunteerConfirmed"

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID


class VolunteerAssigned(EventPayload):
    event_type = "groups.VolunteerAssigned"

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID
    theme: Theme


class VolunteerWaitlisted(EventPayload):
    event_type = "groups.VolunteerWaitlisted"

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    themes: tuple[Theme, ...]


class VolunteerLeft(EventPayload):
    """The volunteer withdrew; `group_id` is the group whose place they freed, if any."""

    event_type = "groups.VolunteerLeft"

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID | None = None


# --- groups.volunteer-messages.v1 (key: volunteer id; short retention) ----------------------
# No longer written (groups publishes v2): notifications reads it while it drains.


class VolunteerMessage(EventPayload):
    """What every email to a volunteer needs: address, name, language, and the secret of
    the withdrawal link every such email carries."""

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    consultation_title: Title
    email: EmailStr
    name: Name
    locale: Language
    withdraw_token: LinkToken
    withdraw_expires_at: AwareDatetime


# What each kind of email adds, the same in both contract versions.


class ConfirmationFields(BaseModel):
    model_config = TOLERANT_READER

    confirm_token: LinkToken
    confirm_expires_at: AwareDatetime
    themes: tuple[Theme, ...]


class AssignmentFields(BaseModel):
    model_config = TOLERANT_READER

    group_id: uuid.UUID
    group_name_pl: GroupName
    group_name_en: GroupName
    theme: Theme


class WaitlistFields(BaseModel):
    model_config = TOLERANT_READER

    themes: tuple[Theme, ...]


class SignInFields(BaseModel):
    model_config = TOLERANT_READER

    sign_in_token: LinkToken
    sign_in_expires_at: AwareDatetime
    group_name_pl: GroupName
    group_name_en: GroupName


class VolunteerConfirmationRequested(ConfirmationFields, VolunteerMessage):
    """A web sign-up waits for its email address to be confirmed (link in the email)."""

    event_type = "groups.VolunteerConfirmationRequested"


class VolunteerAssignmentNotice(AssignmentFields, VolunteerMessage):
    """The volunteer has a seat: which group, its theme, its lead, how to sign in."""

    event_type = "groups.VolunteerAssignmentNotice"

    lead_name: Name | None = None


class VolunteerWaitlistNotice(WaitlistFields, VolunteerMessage):
    """No group can take the volunteer yet; they are placed as soon as one can."""

    event_type = "groups.VolunteerWaitlistNotice"


class MemberSignInLinkRequested(SignInFields, VolunteerMessage):
    """A member asked for a sign-in link (magic link, single use)."""

    event_type = "groups.MemberSignInLinkRequested"


# --- groups.volunteer-messages.v2 (key: volunteer id; short retention) ----------------------
# Crypto-shredding (shared/platform/shredding.py): the address and the names travel only
# sealed under their person's key (groups.person-keys.v1), so erasing the person's key
# makes every copy — the topic, its dead letters, a backup — unreadable. The links' tokens
# stay in clear: single use, kept hashed by groups and dead within 48 hours.


class VolunteerMessageV2(EventPayload):
    """Version 2 of `VolunteerMessage`: `email` and `name` only sealed, under the volunteer's
    key, bound to the message (`volunteer_message_associated_data`)."""

    event_version = 2
    # The v1 model the message reads as once opened (notifications composes from it).
    clear_model: ClassVar[type[VolunteerMessage]]

    volunteer_id: uuid.UUID
    consultation_id: uuid.UUID
    consultation_title: Title
    email_sealed: SealedValue
    name_sealed: SealedValue
    locale: Language
    withdraw_token: LinkToken
    withdraw_expires_at: AwareDatetime

    def opened(self, *, email: str, name: str, **opened: object) -> VolunteerMessage:
        """The message as its v1 model, with the fields opened by the reader (in memory)."""
        sealed = {field for field in type(self).model_fields if field.endswith("_sealed")}
        clear = self.model_dump(exclude=sealed)
        return self.clear_model.model_validate({**clear, "email": email, "name": name, **opened})


class VolunteerConfirmationRequestedV2(ConfirmationFields, VolunteerMessageV2):
    """A web sign-up waits for its email address to be confirmed (link in the email)."""

    event_type = VolunteerConfirmationRequested.event_type
    clear_model = VolunteerConfirmationRequested


class VolunteerAssignmentNoticeV2(AssignmentFields, VolunteerMessageV2):
    """The volunteer has a seat; the lead's name is sealed under the lead's own key."""

    event_type = VolunteerAssignmentNotice.event_type
    clear_model = VolunteerAssignmentNotice

    lead_name_sealed: SealedValue | None = None


class VolunteerWaitlistNoticeV2(WaitlistFields, VolunteerMessageV2):
    """No group can take the volunteer yet; they are placed as soon as one can."""

    event_type = VolunteerWaitlistNotice.event_type
    clear_model = VolunteerWaitlistNotice


class MemberSignInLinkRequestedV2(SignInFields, VolunteerMessageV2):
    """A member asked for a sign-in link (magic link, single use)."""

    event_type = MemberSignInLinkRequested.event_type
    clear_model = MemberSignInLinkRequested


def volunteer_message_associated_data(
    model: type[VolunteerMessageV2], field: str, volunteer_id: uuid.UUID, withdraw_token: str
) -> bytes:
    """Binds a sealed field to its message: every message carries a fresh withdrawal
    token, so a sealed value moved to another message (or field) does not open."""
    return f"{model.event_type}:{field}:{volunteer_id}:{withdraw_token}".encode()


# --- groups.person-keys.v1 (key: key id; compacted) -----------------------------------------


class GroupsPersonKeyPublished(EventPayload, PersonKeyPublished):
    """A volunteer's data key, created with the first message that seals a field of theirs
    (same transaction, earlier in the outbox). Erasure publishes the key id's tombstone."""

    event_type = "groups.PersonKeyPublished"


# --- groups.submissions.v1 (key: submission id) ---------------------------------------------


class SubmissionRouted(EventPayload):
    """A submission reached a working group; `theme_source` says how its theme was chosen."""

    event_type = "groups.SubmissionRouted"

    submission_id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID
    theme: Theme
    theme_source: ThemeSource
    confidence: float | None = Field(default=None, ge=0, le=1)


class SubmissionDecided(EventPayload):
    """The lead (or a coordinator) moved a submission to a final state."""

    event_type = "groups.SubmissionDecided"

    submission_id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID
    receipt_number: ReceiptNumber
    title: Title
    outcome: Outcome
    public_reason: PublicReason | None = None
    merged_into_receipt_number: ReceiptNumber | None = None
    decided_at: AwareDatetime


# --- groups.recommendations.v1 (key: recommendation id) -------------------------------------


class RecommendationPublished(EventPayload):
    event_type = "groups.RecommendationPublished"

    recommendation_id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID
    theme: Theme
    title: Title
    body: Body
    submission_ids: tuple[uuid.UUID, ...]
    trend_snapshot: int | None = Field(default=None, ge=1)
    published_at: AwareDatetime

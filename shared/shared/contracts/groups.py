"""Contracts published by the groups service.

Data minimisation: only `groups.volunteer-messages.v1` carries an email address, a name or
an emailed link's secret, because notifications needs exactly that to write to a
volunteer; that topic keeps its messages no longer than the longest token lives (see
`topics.TOPIC_CONFIGS`). Every other groups topic carries ids, themes and public texts:
no phone number, no email address, no token.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, EmailStr, Field

from shared.contracts.envelope import EventPayload
from shared.contracts.fields import Text
from shared.contracts.intake import Body, Language, Theme, Title

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


class VolunteerConfirmationRequested(VolunteerMessage):
    """A web sign-up waits for its email address to be confirmed (link in the email)."""

    event_type = "groups.VolunteerConfirmationRequested"

    confirm_token: LinkToken
    confirm_expires_at: AwareDatetime
    themes: tuple[Theme, ...]


class VolunteerAssignmentNotice(VolunteerMessage):
    """The volunteer has a seat: which group, its theme, its lead, how to sign in."""

    event_type = "groups.VolunteerAssignmentNotice"

    group_id: uuid.UUID
    group_name_pl: GroupName
    group_name_en: GroupName
    theme: Theme
    lead_name: Name | None = None


class VolunteerWaitlistNotice(VolunteerMessage):
    """No group can take the volunteer yet; they are placed as soon as one can."""

    event_type = "groups.VolunteerWaitlistNotice"

    themes: tuple[Theme, ...]


class MemberSignInLinkRequested(VolunteerMessage):
    """A member asked for a sign-in link (magic link, single use)."""

    event_type = "groups.MemberSignInLinkRequested"

    sign_in_token: LinkToken
    sign_in_expires_at: AwareDatetime
    group_name_pl: GroupName
    group_name_en: GroupName


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

"""A thematic working group, its lead, and the role an actor has in it.

A group is named after its theme and ordinal ("Grupa społeczna 2" / "Social group 2"); the
first group of a theme is numbered too, so a name never changes when a second one forms.
Until a coordinator appoints a lead from the members, coordinators act as lead (a coordinator
always may).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from groups.domain.errors import InvalidInput, NotPermitted


class Role(StrEnum):
    """What an actor is with respect to one group (and so to its submissions)."""

    MEMBER = "member"
    LEAD = "lead"
    COORDINATOR = "coordinator"


LEAD_ROLES = frozenset({Role.LEAD, Role.COORDINATOR})


@dataclass(frozen=True, slots=True)
class ThemeLabel:
    """How a theme reads in a group's name: Polish feminine adjective (agrees with "grupa")."""

    group_pl: str
    group_en: str


# The consultation's default themes; a custom theme without a label is quoted by its key.
DEFAULT_THEME_LABELS: Mapping[str, ThemeLabel] = {
    "social": ThemeLabel("społeczna", "Social"),
    "environmental": ThemeLabel("środowiskowa", "Environmental"),
    "economic": ThemeLabel("gospodarcza", "Economic"),
    "spatial": ThemeLabel("przestrzenna", "Spatial"),
}


def group_names(
    theme: str, ordinal: int, labels: Mapping[str, ThemeLabel] = DEFAULT_THEME_LABELS
) -> tuple[str, str]:
    """("Grupa społeczna 2", "Social group 2"); ("Grupa „kultura” 1", "Group “kultura” 1")."""
    label = labels.get(theme)
    if label is None:
        return f"Grupa „{theme}” {ordinal}", f"Group “{theme}” {ordinal}"
    return f"Grupa {label.group_pl} {ordinal}", f"{label.group_en} group {ordinal}"


@dataclass(frozen=True, slots=True)
class Group:
    id: uuid.UUID
    theme: str
    ordinal: int  # 1, 2, ... within the theme, never reused
    name_pl: str
    name_en: str
    member_ids: tuple[uuid.UUID, ...] = ()  # in the order they were placed
    lead_id: uuid.UUID | None = None
    consultation_id: uuid.UUID | None = None  # known once stored

    @property
    def size(self) -> int:
        return len(self.member_ids)


def role_of(group: Group, actor_id: uuid.UUID | None, *, is_coordinator: bool) -> Role | None:
    """The actor's role in this group, or None when they have none (not a member)."""
    if is_coordinator:
        return Role.COORDINATOR
    if actor_id is None or actor_id not in group.member_ids:
        return None
    return Role.LEAD if actor_id == group.lead_id else Role.MEMBER


def appoint_lead(group: Group, member_id: uuid.UUID, *, actor: Role | None) -> Group:
    """A coordinator appoints the lead from the group's members."""
    if actor is not Role.COORDINATOR:
        raise NotPermitted("lead_id", "only a coordinator appoints a group's lead")
    if member_id not in group.member_ids:
        raise InvalidInput("lead_id", "the lead must be a member of the group")
    return replace(group, lead_id=member_id)


def remove_member(group: Group, member_id: uuid.UUID) -> Group:
    """A member leaves; a leaving lead leaves the group without one (coordinators act)."""
    if member_id not in group.member_ids:
        raise InvalidInput("member_id", "not a member of this group")
    return replace(
        group,
        member_ids=tuple(m for m in group.member_ids if m != member_id),
        lead_id=None if group.lead_id == member_id else group.lead_id,
    )

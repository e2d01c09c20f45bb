"""Who is acting: a coordinator or clerk (role tokens), a signed-in member, or nobody."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from groups.domain.errors import NotPermitted
from groups.domain.group import LEAD_ROLES, Group, Role, role_of


@dataclass(frozen=True, slots=True)
class Actor:
    volunteer_id: uuid.UUID | None = None  # a signed-in member
    coordinator: bool = False  # role coordinator (or admin): acts in every group
    clerk: bool = False  # role clerk (or admin): enters sign-ups and withdrawals

    def role_in(self, group: Group) -> Role | None:
        return role_of(group, self.volunteer_id, is_coordinator=self.coordinator)

    def require_in(self, group: Group, field: str = "group_id") -> Role:
        """The actor's role in `group`; members of other groups get 403."""
        role = self.role_in(group)
        if role is None:
            raise NotPermitted(field, "only the group's members and coordinators may do this")
        return role

    def require_lead_of(self, group: Group, field: str = "group_id") -> Role:
        """The group's lead, or a coordinator (who acts as lead, with or without one)."""
        role = self.require_in(group, field)
        if role not in LEAD_ROLES:
            raise NotPermitted(field, "only the group's lead or a coordinator may do this")
        return role

    def require_coordinator(self, field: str = "authorization") -> None:
        if not self.coordinator:
            raise NotPermitted(field, "only a coordinator may do this")

    def require_clerk(self, field: str = "authorization") -> None:
        if not (self.clerk or self.coordinator):
            raise NotPermitted(field, "only a clerk or a coordinator may do this")

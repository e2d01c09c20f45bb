"""Groups: names, roles, lead appointment."""

from __future__ import annotations

import uuid

import pytest

from groups.domain.errors import InvalidInput, NotPermitted
from groups.domain.group import Group, Role, appoint_lead, group_names, remove_member, role_of


def vid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


GROUP = Group(vid(100), "social", 2, "Grupa społeczna 2", "Social group 2", (vid(1), vid(2)))


def test_names() -> None:
    assert group_names("environmental", 1) == ("Grupa środowiskowa 1", "Environmental group 1")
    assert group_names("spatial", 3) == ("Grupa przestrzenna 3", "Spatial group 3")
    assert group_names("kultura", 1) == ("Grupa „kultura” 1", "Group “kultura” 1")


def test_coordinators_act_as_lead_until_one_is_appointed() -> None:
    assert role_of(GROUP, vid(1), is_coordinator=False) is Role.MEMBER
    assert role_of(GROUP, vid(9), is_coordinator=False) is None
    assert role_of(GROUP, None, is_coordinator=True) is Role.COORDINATOR
    led = appoint_lead(GROUP, vid(2), actor=Role.COORDINATOR)
    assert role_of(led, vid(2), is_coordinator=False) is Role.LEAD


def test_only_a_coordinator_appoints_a_member_as_lead() -> None:
    with pytest.raises(NotPermitted):
        appoint_lead(GROUP, vid(2), actor=Role.LEAD)
    with pytest.raises(NotPermitted):
        appoint_lead(GROUP, vid(2), actor=Role.MEMBER)
    with pytest.raises(InvalidInput) as error:
        appoint_lead(GROUP, vid(9), actor=Role.COORDINATOR)
    assert error.value.field == "lead_id"


def test_a_leaving_lead_leaves_the_group_without_one() -> None:
    led = appoint_lead(GROUP, vid(2), actor=Role.COORDINATOR)
    after = remove_member(led, vid(2))
    assert after.member_ids == (vid(1),) and after.lead_id is None
    assert remove_member(led, vid(1)).lead_id == vid(2)
    with pytest.raises(InvalidInput):
        remove_member(GROUP, vid(9))

"""Routing inside a unit of work: submissions to groups, assessors to submissions.

Callers hold the consultation's lock (`uow.consultations.lock`), so the loads read here
cannot change before the unit commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from groups.domain.group import Group
from groups.domain.routing import (
    ASSESSORS_PER_SUBMISSION,
    Assignment,
    GroupLoad,
    pick_assessors,
    route_waiting,
)
from groups.domain.submission import GroupSubmission
from groups.service.ports import GroupsUnitOfWork
from shared.contracts.groups import SubmissionRouted


async def member_loads(uow: GroupsUnitOfWork, group: Group) -> dict[uuid.UUID, int]:
    """Open assignments of each member of the group (0 for those without any)."""
    loads = dict.fromkeys(group.member_ids, 0)
    for assignment in await uow.assignments.open_of_group(group.id):
        if assignment.member_id in loads:
            loads[assignment.member_id] += 1
    return loads


async def route_waiting_submissions(
    uow: GroupsUnitOfWork, consultation_id: uuid.UUID, groups: Sequence[Group], now: datetime
) -> list[GroupSubmission]:
    """Route every waiting submission whose theme has a group: least-loaded group first,
    then two of its least-loaded members as assessors. Returns the routed submissions."""
    waiting = [
        s
        for s in await uow.submissions.of_consultation(consultation_id)
        if s.group_id is None and s.theme is not None and not s.is_final
    ]
    if not waiting or not groups:
        return []
    open_counts = await uow.submissions.open_per_group(consultation_id)
    loads = [GroupLoad(g.id, g.theme, g.ordinal, open_counts.get(g.id, 0)) for g in groups]
    routes = route_waiting([(s.id, s.theme) for s in waiting], loads)
    by_id = {s.id: s for s in waiting}
    by_group = {g.id: g for g in groups}
    routed: list[GroupSubmission] = []
    for route in routes:
        submission = replace(by_id[route.submission_id], group_id=route.group_id, routed_at=now)
        await uow.submissions.save(submission)
        await assign_assessors(uow, submission, by_group[route.group_id])
        assert submission.theme is not None and submission.theme_source is not None
        uow.stage_event(
            SubmissionRouted(
                submission_id=submission.id,
                consultation_id=consultation_id,
                group_id=route.group_id,
                theme=submission.theme,
                theme_source=submission.theme_source,
                confidence=submission.confidence,
            ),
            key=submission.id,
        )
        routed.append(submission)
    return routed


async def assign_assessors(
    uow: GroupsUnitOfWork, submission: GroupSubmission, group: Group
) -> tuple[uuid.UUID, ...]:
    """Top the submission up to two assessors from its group, least loaded first."""
    if submission.is_final:
        return ()
    already = await uow.assignments.of_submission(submission.id)
    missing = ASSESSORS_PER_SUBMISSION - len([m for m in already if m in group.member_ids])
    if missing <= 0:
        return ()
    chosen = pick_assessors(await member_loads(uow, group), count=missing, exclude=already)
    await uow.assignments.add(Assignment(submission.id, member) for member in chosen)
    return chosen


async def top_up_group(uow: GroupsUnitOfWork, group: Group) -> None:
    """After members joined or left: every open submission of the group gets its two."""
    for submission in await uow.submissions.of_group(group.id):
        await assign_assessors(uow, submission, group)

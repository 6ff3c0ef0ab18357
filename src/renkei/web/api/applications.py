"""``/api/v1/applications``, ``/api/v1/reviews``, ``/api/v1/parts``: the data-use application workflow.

Each move is one :class:`~renkei.hub.services.applications.Step`, which the workflow of
:mod:`renkei.hub.access.applications` decides with ``authorize()``, re-checks under a lock, applies and audits
in one transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from renkei.hub.services.applications import Step
from renkei.web import portal
from renkei.web.context import SignedIn, SteppedUp
from renkei.web.models import (
    ApplicationIn,
    ApplicationView,
    CommentIn,
    ReasonIn,
    RequiredCommentIn,
    ReviewItem,
)
from renkei.web.params import ApplicationId, PartId

router = APIRouter(tags=["applications"])

OptionalComment = Annotated[CommentIn | None, Body()]


@router.get("/applications", response_model=list[ApplicationView])
def my_applications(caller: SignedIn) -> list[ApplicationView]:
    """The caller's own applications, newest first."""
    return portal.my_applications(caller)


@router.post("/applications", response_model=ApplicationView, status_code=status.HTTP_201_CREATED)
def create(body: ApplicationIn, caller: SignedIn) -> ApplicationView:
    """A draft application (analysts); submit it with ``/applications/{id}/submit``."""
    return portal.create_application(caller, body)


@router.get("/applications/{application_id}", response_model=ApplicationView)
def show(application_id: ApplicationId, caller: SignedIn) -> ApplicationView:
    return portal.show_application(caller, application_id)


@router.post("/applications/{application_id}/submit", response_model=ApplicationView)
def submit(application_id: ApplicationId, caller: SignedIn) -> ApplicationView:
    return portal.take_step(caller, Step.SUBMIT, application_id)


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationView)
def withdraw(
    application_id: ApplicationId, caller: SignedIn, body: OptionalComment = None
) -> ApplicationView:
    """The applicant withdraws (取下げ); an optional ``comment`` says why. Its grants end."""
    return portal.take_step(caller, Step.WITHDRAW, application_id, body.comment if body else "")


@router.post("/applications/{application_id}/revoke", response_model=ApplicationView)
def revoke(application_id: ApplicationId, body: ReasonIn, caller: SignedIn) -> ApplicationView:
    """An admin revokes the whole application; its grants end."""
    return portal.take_step(caller, Step.REVOKE, application_id, body.reason)


@router.get("/reviews", response_model=list[ReviewItem])
def reviews(caller: SignedIn) -> list[ReviewItem]:
    """Parts of the caller's department awaiting the caller's decision (stewards)."""
    return portal.review_queue(caller)


@router.post("/parts/{part_id}/approve", response_model=ApplicationView)
def approve(part_id: PartId, caller: SteppedUp, body: OptionalComment = None) -> ApplicationView:
    return portal.take_step(caller, Step.APPROVE_PART, part_id, body.comment if body else "")


@router.post("/parts/{part_id}/reject", response_model=ApplicationView)
def reject(part_id: PartId, body: RequiredCommentIn, caller: SignedIn) -> ApplicationView:
    """Reject a department's part; the comment (the reason) is required."""
    return portal.take_step(caller, Step.REJECT_PART, part_id, body.comment)


@router.post("/parts/{part_id}/revoke", response_model=ApplicationView)
def revoke_part(part_id: PartId, body: ReasonIn, caller: SignedIn) -> ApplicationView:
    """A steward of the part's department (or an admin) revokes its approval; the application ends."""
    return portal.take_step(caller, Step.REVOKE_PART, part_id, body.reason)

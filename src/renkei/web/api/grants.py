"""``/api/v1/grants``: one's own grants; stewards of the owning department and admins revoke them."""

from __future__ import annotations

from fastapi import APIRouter

from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.models import GrantView, ReasonIn
from renkei.web.params import GrantId

router = APIRouter(prefix="/grants", tags=["grants"])


@router.get("", response_model=list[GrantView])
def my_grants(caller: SignedIn) -> list[GrantView]:
    return portal.my_grants(caller)


@router.get("/{grant_id}", response_model=GrantView)
def show(grant_id: GrantId, caller: SignedIn) -> GrantView:
    return portal.show_grant(caller, grant_id)


@router.post("/{grant_id}/revoke", response_model=GrantView)
def revoke(grant_id: GrantId, body: ReasonIn, caller: SignedIn) -> GrantView:
    """Takes effect on the holder's next request."""
    return portal.revoke(caller, grant_id, body.reason)

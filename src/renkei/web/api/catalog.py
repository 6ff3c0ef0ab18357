"""``/api/v1/datasets``: the catalog (metadata only; ``catalog.read``) and a folder's access list."""

from __future__ import annotations

from fastapi import APIRouter

from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.models import DatasetSummary, DatasetView, FolderAclView
from renkei.web.params import DatasetName

router = APIRouter(prefix="/datasets", tags=["catalog"])


@router.get("", response_model=list[DatasetSummary])
def datasets(caller: SignedIn) -> list[DatasetSummary]:
    return portal.list_datasets(caller)


@router.get("/{name}", response_model=DatasetView)
def dataset(name: DatasetName, caller: SignedIn) -> DatasetView:
    """Periods and versions, columns and the treatment each received on the sending side."""
    return portal.dataset_detail(caller, name)


@router.get("/{name}/acl", response_model=FolderAclView)
def dataset_acl(name: DatasetName, caller: SignedIn) -> FolderAclView:
    """Who may use the dataset's folder now (``folder.read_acl``: its stewards, admins, auditors)."""
    return portal.dataset_acl(caller, name)

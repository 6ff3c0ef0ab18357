"""The data catalog as pages: datasets by owning department, and one dataset with its periods and columns."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.pages.common import page
from renkei.web.params import DatasetName

router = APIRouter(include_in_schema=False)


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request, caller: SignedIn) -> HTMLResponse:
    found = sorted(portal.list_datasets(caller), key=lambda d: (d.owner, d.name))
    return page(request, caller, "datasets.html", datasets=found)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset(request: Request, name: DatasetName, caller: SignedIn) -> HTMLResponse:
    return page(request, caller, "dataset.html", dataset=portal.dataset_detail(caller, name))

"""``/api/v1/opendata/preview``, ``/api/v1/opendata/publish``: a released table as open data.

Thin: parse, call :mod:`renkei.hub.analysis.opendata`, render. The preview spends nothing (its values are one
example draw); publishing spends the privacy budget and returns the CSV with its release record.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from renkei.hub.analysis.opendata import OpenDataTable, preview_opendata, publish_opendata
from renkei.hub.tables.files import Cell
from renkei.web.context import SignedIn, SteppedUp
from renkei.web.models import View

router = APIRouter(tags=["opendata"])


class OpenDataIn(View):
    release_id: int = Field(ge=1, le=2**31 - 1)
    epsilon: float | None = Field(None, gt=0, le=100)  # None: only where the policy asks no DP


class BudgetView(View):
    dataset: str
    fiscal_year: int  # 年度: April of this year to March of the next
    total: float
    spent: float
    left_after: float


class OpenDataView(View):
    release_id: int
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    epsilon: float
    error: float | None  # per cell: |error| below it with probability ``confidence``
    confidence: float
    budgets: list[BudgetView]
    record: dict[str, Any]


class PublishedView(OpenDataView):
    opendata_id: int
    file_name: str
    csv: str  # UTF-8 with BOM, as written
    sha256: str
    record_name: str


def _view(table: OpenDataTable) -> dict[str, Any]:
    return {
        "release_id": table.release_id,
        "header": table.header,
        "rows": table.rows,
        "notes": table.notes,
        "epsilon": table.epsilon,
        "error": table.error,
        "confidence": table.confidence,
        "budgets": [
            BudgetView(
                dataset=b.dataset, fiscal_year=b.fiscal_year, total=b.total, spent=b.spent, left_after=b.after
            )
            for b in table.budgets
        ],
        "record": table.record,
    }


@router.post("/opendata/preview", response_model=OpenDataView)
def preview(body: OpenDataIn, caller: SignedIn) -> OpenDataView:
    """The table as it would be published at ε: one example draw, the error per cell, the budget; spends
    nothing."""
    table = preview_opendata(caller.portal.hub, caller.actor, body.release_id, body.epsilon,
                             clock=caller.portal.clock)  # fmt: skip
    return OpenDataView(**_view(table))


@router.post("/opendata/publish", response_model=PublishedView)
def publish(body: OpenDataIn, caller: SteppedUp) -> PublishedView:
    """Publish as open data: spends ε on every dataset and 年度 the table reads, or is refused (409). Like an
    export or an approval, it needs a fresh proof of the second factor (step-up)."""
    published = publish_opendata(caller.portal.hub, caller.actor, body.release_id, body.epsilon,
                                 clock=caller.portal.clock)  # fmt: skip
    return PublishedView(
        **_view(published.table),
        opendata_id=published.opendata_id,
        file_name=published.file_name,
        csv=published.content.decode("utf-8"),
        sha256=published.sha256,
        record_name=published.record_name,
    )

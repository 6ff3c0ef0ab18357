"""What a user asks of the table builder (集計表の作成), as data: validated, serializable, saved as is.

A request names a base dataset and its periods, the population (filters, and links to other datasets by pid),
the dimensions of the table and one measure. :mod:`renkei.hub.tables.compile` turns it into SQL over the
workspace's views; nothing here touches data.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_DIMENSIONS = 4
MAX_FILTER_VALUES = 200


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgeBand(_Frozen):
    """年齢階級: ``width``-year bands (5 → 0–4, 5–9 …); ages at or above ``top`` form one open band."""

    kind: Literal["age_band"] = "age_band"
    width: int = Field(default=5, ge=1, le=50)
    top: int = Field(default=100, ge=1, le=130)
    column: str = "age"


class SchoolAge(_Frozen):
    """学年年齢: the age a child counts as for its school year."""

    kind: Literal["school_age"] = "school_age"
    column: str = "school_age"


class Period(_Frozen):
    """基準日: one row or column per period."""

    kind: Literal["period"] = "period"


class HouseholdSize(_Frozen):
    """世帯人員: persons in the resident's household (from 住基 of the same period)."""

    kind: Literal["household_size"] = "household_size"
    top: int = Field(default=6, ge=1, le=20)  # 6 → "6人以上"


class Category(_Frozen):
    """Any categorical column of the base dataset (性別, 住所_ward, 住所_town, 要介護度 …)."""

    kind: Literal["column"] = "column"
    column: str


Dimension = Annotated[AgeBand | SchoolAge | Period | HouseholdSize | Category, Field(discriminator="kind")]


class Measure(_Frozen):
    """人数 (persons), 世帯数 (households), or the sum, mean or median of a numeric column per person."""

    kind: Literal["persons", "households", "sum", "mean", "median"] = "persons"
    column: str | None = None

    @model_validator(mode="after")
    def _column_for_values(self) -> Measure:
        if (self.kind in {"sum", "mean", "median"}) != (self.column is not None):
            raise ValueError("sum, mean and median need a column; persons and households take none")
        return self


class Filter(_Frozen):
    """Keep rows whose ``column`` is one of ``values`` (``in``) or within ``low``..``high`` (``between``)."""

    column: str
    op: Literal["in", "not_in", "between"] = "in"
    values: list[str | int] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    low: int | None = None
    high: int | None = None

    @model_validator(mode="after")
    def _operands(self) -> Filter:
        if self.op == "between":
            if self.low is None and self.high is None:
                raise ValueError("between needs low or high")
        elif not self.values:
            raise ValueError("in and not_in need at least one value")
        return self


class Link(_Frozen):
    """Restrict the population to persons (or households) found, or not found, in another dataset in the
    same period: 連携 by the city's pseudonymous ID. The linked dataset's own filters apply to it."""

    dataset: str
    present: bool = True
    level: Literal["person", "household"] = "person"
    filters: list[Filter] = Field(default_factory=list)


# 区の模式図 (wardmap): the nine wards as tiles in a grid, in their rough relative positions (a tile-grid
# cartogram, not their boundaries: no package this project reaches holds them). Only for a table by ward alone.
ChartKind = Literal["bar", "line", "pyramid", "wardmap", "none"]
WARD_SUFFIX = "_ward"  # the ward column an address column becomes on import (住所 → 住所_ward)


def is_by_ward(dimensions: list[Dimension]) -> bool:
    """A table with one dimension, a ward column (``住所_ward``): the one shape the ward map draws."""
    return (
        len(dimensions) == 1
        and isinstance(dimensions[0], Category)
        and dimensions[0].column.endswith(WARD_SUFFIX)
    )


class TableRequest(_Frozen):
    """One table: base dataset and periods, population, dimensions, measure, chart."""

    dataset: str
    periods: list[dt.date] = Field(default_factory=list)  # empty: every granted period
    filters: list[Filter] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list, max_length=4)
    dimensions: list[Dimension] = Field(min_length=1, max_length=MAX_DIMENSIONS)
    measure: Measure = Measure()
    chart: ChartKind = "bar"
    title: str = Field(default="", max_length=200)

    @field_validator("chart")
    @classmethod
    def _wardmap_by_ward(cls, chart: ChartKind, info: ValidationInfo) -> ChartKind:
        dimensions = info.data.get("dimensions")  # absent when they were wrong themselves
        if chart == "wardmap" and dimensions is not None and not is_by_ward(dimensions):
            raise PydanticCustomError(
                "chart_needs_wards", "the ward map needs a table by one ward column alone (such as 住所_ward)"
            )
        return chart

    @model_validator(mode="after")
    def _distinct_dimensions(self) -> TableRequest:
        keys = [_dimension_key(d) for d in self.dimensions]
        if len(set(keys)) != len(keys):
            raise ValueError("each dimension may appear once")
        return self


def _dimension_key(dimension: AgeBand | SchoolAge | Period | HouseholdSize | Category) -> str:
    return f"{dimension.kind}:{getattr(dimension, 'column', '')}"

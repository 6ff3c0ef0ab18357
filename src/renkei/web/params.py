"""Path parameters, bounded so that no input reaches the database out of its column's range."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_DB_ID = 2**31 - 1  # INTEGER on PostgreSQL; a larger number would fail in the database, not here

ApplicationId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
PartId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
GrantId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
DatasetName = Annotated[str, Path(min_length=1, max_length=63)]
ReleaseId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]

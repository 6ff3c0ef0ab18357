"""The manifest that travels with every pseudonymized dataset: what it is, how it was made, how to check it.

Written by the sending side next to the Parquet file; validated by the hub on import (schema, spec hash, row
count, content hash), so the two sides share this one definition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FORMAT = "renkei.extract/1"
DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"


class FieldInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    type: str


class ColumnTreatment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    role: str
    treatment: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = MANIFEST_FORMAT
    dataset: str
    title: str
    owner: str
    as_of: dt.date
    rows_in: int = Field(ge=0)
    rows_out: int = Field(ge=0)
    counts: dict[str, dict[str, int]]
    schema_: list[FieldInfo] = Field(alias="schema")
    columns: list[ColumnTreatment]
    spec_hash: str
    tool: str
    data_file: str = DATA_FILE
    data_bytes: int = Field(ge=0)
    content_sha256: str
    created_at: dt.datetime

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        return cls.model_validate_json(text)


def schema_fields(schema: pa.Schema) -> list[FieldInfo]:
    return [FieldInfo(name=f.name, type=str(f.type)) for f in schema]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()

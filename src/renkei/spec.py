"""Dataset specs: one YAML file per source dataset, declaring every column and the rule it gets.

Default deny: the spec must declare every column of the source file, and the extract stops on any column it
does not declare (see :mod:`renkei.sending.read`). Validation errors name the file, the key path and the line.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from renkei.errors import Location, SpecError
from renkei.identifier_kinds import IdentifierKind

SPEC_DIR = Path(__file__).parent / "specs"


class Role(StrEnum):
    """What the sending side does with a column."""

    PERSON_KEY = "person_key"  # 宛名番号 → keyed pseudonymous ID (pid)
    LINK_KEY = "link_key"  # 世帯番号 etc. → keyed pseudonymous ID, domain-separated from pid
    NAME = "name"  # 氏名 → deleted
    IDENTIFIER = "identifier"  # 個人識別符号 → deleted
    BIRTH_DATE = "birth_date"  # 生年月日 → age, school_age; deleted
    ADDRESS = "address"  # 住所 → truncated, plus structured columns
    DATE = "date"  # kept as a date, or coarsened
    KEEP = "keep"  # kept as is (trimmed)
    DROP = "drop"  # deleted


DELETED_ROLES = frozenset({Role.NAME, Role.IDENTIFIER, Role.BIRTH_DATE, Role.DROP})

# Output columns the birth-date and address rules add.
AGE, SCHOOL_AGE = "age", "school_age"
ADDRESS_PARTS = (("ward", pa.string()), ("town", pa.string()), ("chome", pa.int16()))

SLUG = r"^[a-z][a-z0-9_]{0,62}$"

# A quasi-identifier the hub derives rather than reads: the number of rows sharing the row's household_id.
HOUSEHOLD_SIZE, HOUSEHOLD_ID = "household_size", "household_id"


class ColumnSpec(BaseModel):
    """The declaration of one source column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    kind: str | None = Field(default=None, description="identifier kind, or link-key domain (household)")
    coarsen: Literal["month", "year"] | None = None
    output: str | None = Field(default=None, description="output column name of a person or link key")
    type: Literal["string", "integer"] = "string"

    @model_validator(mode="after")
    def _check_role_options(self) -> ColumnSpec:
        role = self.role
        if role is Role.IDENTIFIER:
            if self.kind not in {k.value for k in IdentifierKind}:
                allowed = ", ".join(k.value for k in IdentifierKind)
                raise ValueError(f"identifier needs kind, one of: {allowed}")
        elif role is Role.LINK_KEY:
            if self.kind is None or not _is_slug(self.kind):
                raise ValueError("link_key needs kind, a lower-case identifier such as household")
        elif self.kind is not None:
            raise ValueError(f"kind applies only to identifier and link_key, not {role.value}")
        if self.coarsen is not None and role is not Role.DATE:
            raise ValueError("coarsen applies only to role date")
        if self.output is not None and role not in {Role.PERSON_KEY, Role.LINK_KEY}:
            raise ValueError("output applies only to person_key and link_key")
        if self.output is not None and not _is_slug(self.output):
            raise ValueError("output must be a lower-case identifier such as guardian_pid")
        if self.type != "string" and role is not Role.KEEP:
            raise ValueError("type applies only to role keep")
        return self

    @property
    def key_domain(self) -> str:
        """Pseudonym domain: every person key shares 'person' so that pids link across datasets."""
        return "person" if self.role is Role.PERSON_KEY else f"link:{self.kind}"

    def output_key_name(self) -> str:
        if self.output is not None:
            return self.output
        return "pid" if self.role is Role.PERSON_KEY else f"{self.kind}_id"

    def treatment(self) -> str:
        """A short description of the rule applied, for the manifest and the catalog's column dictionary."""
        match self.role:
            case Role.PERSON_KEY | Role.LINK_KEY:
                return f"pseudonymized ({self.key_domain}) → {self.output_key_name()}"
            case Role.BIRTH_DATE:
                return f"deleted → {AGE}, {SCHOOL_AGE}"
            case Role.ADDRESS:
                return "finest of 番地/枝番/号 and 方書 deleted"
            case Role.DATE:
                return f"date coarsened to {self.coarsen}" if self.coarsen else "date"
            case Role.KEEP:
                return f"kept ({self.type})"
            case _:
                return "deleted"


class DatasetSpec(BaseModel):
    """A validated dataset spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(pattern=SLUG)
    title: str = Field(min_length=1)
    description: str = ""
    owner: str = Field(min_length=1, description="owning department (所管課)")
    encoding: Literal["cp932", "utf-8"]
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    quasi_identifiers: tuple[str, ...] = Field(
        default=(),
        max_length=12,
        description="output columns (or household_size) the hub's re-identification risk report groups by",
    )

    @model_validator(mode="after")
    def _check_columns(self) -> DatasetSpec:
        if sum(c.role is Role.BIRTH_DATE for c in self.columns.values()) > 1:
            raise ValueError("at most one column may have role birth_date")
        seen: dict[str, str] = {}
        for source, names in self._outputs_by_source().items():
            for name in names:
                if name in seen:
                    raise ValueError(f"output column {name!r} of {source!r} clashes with {seen[name]!r}")
                seen[name] = source
        self._check_quasi_identifiers(set(seen))
        return self

    def _check_quasi_identifiers(self, outputs: set[str]) -> None:
        """Each quasi-identifier is an output column once (not a pseudonymous key), or the derived household_size."""
        if len(set(self.quasi_identifiers)) != len(self.quasi_identifiers):
            raise ValueError("a quasi-identifier is listed twice")
        keys = {c.output_key_name() for _, c in self.columns_with(Role.PERSON_KEY, Role.LINK_KEY)}
        for name in self.quasi_identifiers:
            if name == HOUSEHOLD_SIZE:
                if HOUSEHOLD_ID not in outputs:
                    raise ValueError("household_size needs a link_key of kind household (household_id)")
            elif name in keys:
                raise ValueError(f"quasi-identifier {name!r} is a pseudonymous key, not a quasi-identifier")
            elif name not in outputs:
                raise ValueError(f"quasi-identifier {name!r} is not an output column of this spec")

    def _outputs_by_source(self) -> dict[str, list[str]]:
        return {name: [f.name for f in self._output_fields(name, col)] for name, col in self.columns.items()}

    @staticmethod
    def _output_fields(name: str, col: ColumnSpec) -> list[pa.Field]:
        match col.role:
            case Role.PERSON_KEY | Role.LINK_KEY:
                return [pa.field(col.output_key_name(), pa.string())]
            case Role.BIRTH_DATE:
                return [pa.field(AGE, pa.int16()), pa.field(SCHOOL_AGE, pa.int16())]
            case Role.ADDRESS:
                return [pa.field(name, pa.string())] + [pa.field(f"{name}_{p}", t) for p, t in ADDRESS_PARTS]
            case Role.DATE:
                return [pa.field(name, pa.date32())]
            case Role.KEEP:
                return [pa.field(name, pa.int64() if col.type == "integer" else pa.string())]
            case _:
                return []

    @cached_property
    def output_schema(self) -> pa.Schema:
        """The schema of the pseudonymized dataset, in spec order."""
        fields = [f for name, col in self.columns.items() for f in self._output_fields(name, col)]
        return pa.schema(fields)

    @cached_property
    def pseudonym_columns(self) -> frozenset[str]:
        """The output columns holding keyed pseudonymous IDs (random-looking text: the leftover scan skips them)."""
        return frozenset(c.output_key_name() for _, c in self.columns_with(Role.PERSON_KEY, Role.LINK_KEY))

    def columns_with(self, *roles: Role) -> list[tuple[str, ColumnSpec]]:
        return [(name, col) for name, col in self.columns.items() if col.role in roles]

    @cached_property
    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON of the validated spec: comments and key order do not change it."""
        dumped = self.model_dump(mode="json")
        if not self.quasi_identifiers:  # a spec that declares none keeps the hash it had before they existed
            del dumped["quasi_identifiers"]
        canonical = json.dumps(dumped, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def column_dictionary(self) -> list[dict[str, str]]:
        """Each source column, its role and the treatment it receives (the catalog shows this)."""
        return [
            {"source": name, "role": col.role.value, "treatment": col.treatment()}
            for name, col in self.columns.items()
        ]


def _is_slug(text: str) -> bool:
    return re.fullmatch(SLUG, text) is not None


def load_spec(path: Path) -> DatasetSpec:
    """Load and validate one spec file; errors name the file, the key path and the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError("仕様ファイルが見つかりません", "spec file not found", Location(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            "仕様ファイルは UTF-8 で保存してください", f"spec file is not UTF-8: {exc.reason}", Location(path)
        ) from None
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            "YAML の書式に誤りがあります", f"invalid YAML: {problem}", Location(path, line)
        ) from None
    if not isinstance(data, CommentedMap):
        raise SpecError(
            "仕様ファイルの中身がキーと値の組ではありません", "spec must be a YAML mapping", Location(path)
        )
    try:
        return DatasetSpec.model_validate(_plain(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        raise SpecError(
            f"仕様の誤り: {_ja_reason(err)}",
            f"invalid spec: {err['msg']}",
            Location(path, line=_line_of(data, loc), key=".".join(loc) or None),
        ) from None


def _ja_reason(err: Any) -> str:
    kinds = {
        "missing": "必須のキーがありません",
        "extra_forbidden": "不明なキーです",
        "enum": "使えない値です",
        "literal_error": "使えない値です",
        "string_pattern_mismatch": "形式が正しくありません（英小文字・数字・_）",
        "too_short": "空にはできません",
        "string_too_short": "空にはできません",
        "value_error": "値の組み合わせが正しくありません",
    }
    return f"{kinds.get(err['type'], '値が正しくありません')}: {err['msg']}"


def _line_of(data: CommentedMap, loc: tuple[str, ...]) -> int | None:
    """1-based line of the deepest key of ``loc`` that exists in the YAML document."""
    node: Any = data
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and part.isdigit() and int(part) < len(node):
            line = node.lc.item(int(part))[0] + 1
            node = node[int(part)]
        else:
            break
    if line is None and isinstance(node, CommentedMap):
        line = node.lc.line + 1
    return line


def _plain(node: Any) -> Any:
    """ruamel's round-trip types → plain dicts and lists (keys as str) for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def bundled_specs() -> dict[str, Path]:
    """The specs shipped with renkei, one per dataset of the synthetic city."""
    return {p.stem: p for p in sorted(SPEC_DIR.glob("*.yaml"))}

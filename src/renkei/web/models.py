"""What goes in and out of the portal: request bodies (extra fields refused) and views (only what is shown).

Inputs forbid unknown fields, so nobody sets a state, an applicant or an id by adding it to a body (ASVS
v5.0.0-15.3.3). Views list their fields explicitly: no raw spec, no hashes, no row counts (15.3.1).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

MAX_ID = 256
MAX_PASSWORD = 1024  # passwords may be long (≥ 64 is required); the hasher checks the real limit
MAX_TEXT = 4000
MAX_COMMENT = 1000
# The hub refuses a reason or comment that is empty after str.strip(); the schema says the same: at least one
# character that strip() keeps (spelled \uXXXX, which Python and JSON Schema read alike). The check itself is
# strip(), as in the hub, so that the error reads as a sentence rather than as the pattern.
STRIPPED_BY_PYTHON = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())  # none lies beyond the BMP
NOT_BLANK = "[^" + "".join(f"\\u{ord(c):04x}" for c in STRIPPED_BY_PYTHON) + "]"


def _not_blank(text: str) -> str:
    if not text.strip():  # worded by renkei.web.errors (type "blank"), naming the field
        raise PydanticCustomError("blank", "must not be empty or only spaces")
    return text


NotBlank = Annotated[str, AfterValidator(_not_blank), Field(json_schema_extra={"pattern": NOT_BLANK})]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class View(BaseModel):
    """What the portal shows; built from the hub services' read models by attribute, taking only these fields."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


# --- session -----------------------------------------------------------------------------------------------


class PasswordStep(Input):
    login_id: str = Field(min_length=1, max_length=MAX_ID)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class CardStep(Input):
    assertion: dict[str, Any]  # the JSON of navigator.credentials.get()


class TotpStep(Input):
    code: str = Field(min_length=1, max_length=32)


class PasswordChange(Input):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class CardEnrollmentStart(Input):
    login_id: str = Field(min_length=1, max_length=MAX_ID)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    ticket: str = Field(min_length=1, max_length=128)


class CardEnrollmentFinish(Input):
    response: dict[str, Any]  # the JSON of navigator.credentials.create()


class CsrfView(View):
    csrf_token: str
    terminal_registered: bool


class PendingView(View):
    factor: Literal["card", "totp"]
    card_options: dict[str, Any] | None  # PublicKeyCredentialRequestOptions, for a card
    expires_at: AwareDatetime


class MeView(View):
    login_id: str
    display_name: str
    role: str
    department: str
    terminal: str
    session_expires_at: AwareDatetime
    password_change_required: bool
    csrf_token: str


class EnrollmentOptionsView(View):
    options: dict[str, Any]  # PublicKeyCredentialCreationOptions
    expires_at: AwareDatetime


class EnrollmentDoneView(View):
    registered_at: AwareDatetime


# --- catalog -----------------------------------------------------------------------------------------------


class CombinationRiskView(View):
    columns: list[str]
    sample_unique_share: float
    records_at_risk: float
    minimal_unique_share: float


class RiskView(View):
    """A snapshot's re-identification risk report: shares and risks, never counts (docs/risk.md)."""

    flagged: bool
    quasi_identifiers: list[str]
    k: int
    records_at_risk: float
    sample_unique_share: float
    highest_risk: float
    average_risk: float
    class_sizes: dict[str, float]
    top_combination: list[str]
    combinations: list[CombinationRiskView]


class LinkView(View):
    """The share of the snapshot's rows whose pid is in the resident register of its period."""

    rate: float
    register_version: int
    drift: float | None


class SnapshotView(View):
    period: dt.date
    version: int
    imported_at: AwareDatetime
    risk: RiskView | None
    link: LinkView | None


class ColumnView(View):
    source: str
    role: str
    treatment: str


class DatasetSummary(View):
    name: str
    title: str
    owner: str
    periods: list[dt.date]
    owner_has_steward: bool  # False: applications for it cannot be decided


class DatasetView(View):
    name: str
    title: str
    description: str
    owner: str
    snapshots: list[SnapshotView]
    columns: list[ColumnView]


# --- applications ------------------------------------------------------------------------------------------


class DatasetRequestIn(Input):
    dataset: str = Field(min_length=1, max_length=63)
    periods: list[dt.date] = Field(default_factory=list, max_length=200)
    all_periods: bool = False


class ApplicationIn(Input):
    datasets: list[DatasetRequestIn] = Field(min_length=1, max_length=50)
    purpose: str = Field(max_length=MAX_TEXT)
    outputs: str = Field(max_length=MAX_TEXT)
    use_start: dt.date
    use_end: dt.date
    row_level: bool = False


class CommentIn(Input):
    comment: str = Field(default="", max_length=MAX_COMMENT)


class RequiredCommentIn(Input):
    """A comment that must say something (a rejection's reason): not empty, not only spaces."""

    comment: NotBlank = Field(max_length=MAX_COMMENT)


class ReasonIn(Input):
    reason: NotBlank = Field(max_length=MAX_COMMENT)


class PartView(View):
    id: int
    department: str
    state: str
    state_label_ja: str
    decided_by: str | None
    decided_at: AwareDatetime | None
    comment: str
    snapshots: list[str]
    department_has_steward: bool
    second_approval: bool
    first_approved_by: str | None


class ApplicationView(View):
    id: int
    applicant: str
    applicant_name: str
    state: str
    state_label_ja: str
    purpose: str
    outputs: str
    use_start: dt.date
    use_end: dt.date
    row_level: bool
    applied_on: dt.date
    submitted_at: AwareDatetime | None
    closed_at: AwareDatetime | None
    close_reason: str
    parts: list[PartView]


class ReviewItem(View):
    part_id: int
    department: str
    application: ApplicationView


# --- grants ------------------------------------------------------------------------------------------------


class GrantView(View):
    id: int
    application_id: int
    dataset: str
    holder: str
    row_level: bool
    valid_from: dt.date
    valid_until: dt.date
    status: str
    snapshots: list[str]
    revoked_at: AwareDatetime | None
    revoke_reason: str


class AclEntryView(View):
    grant_id: int
    login_id: str
    display_name: str
    row_level: bool
    valid_from: dt.date
    valid_until: dt.date
    snapshots: list[str]


class FolderAclView(View):
    dataset: str
    owner: str
    stewards: list[str]
    readers: list[AclEntryView]


# --- audit log ---------------------------------------------------------------------------------------------


class AuditRowView(View):
    seq: int
    at: AwareDatetime
    actor: str
    terminal: str
    action: str
    resource: str
    result: str
    reason: str
    details: dict[str, Any]

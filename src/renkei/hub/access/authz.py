"""The choke point (ARCHITECTURE invariant 5): every access decision passes through :func:`authorize`.

- **Deny by default.** An unknown action, an unknown resource type, a resource type the action does not take,
  an action without a rule, an unknown or disabled user: all denied.
- **Every decision is on the record.** Allowed or denied, each call appends one ``authz.decision`` entry to
  the audit log in its own transaction (durable before the caller acts), with Apache Ranger's fields: who
  (``actor``, ``terminal``, ``client_addr``, ``session_id``), what (``access``, ``resource``,
  ``resource_type``), the result, the reason, the rule that decided (``policy``, ``policy_version``) and,
  when a grant decided, ``grant_ids`` and ``application_id``. Never a data value.
- **Rules live next to the data they judge.** :mod:`applications`, :mod:`grants` and :mod:`quotas` register
  theirs with :func:`rule`; :data:`RULE_MODULES` are imported before the first decision they hold. The roles' rules
  (catalog, audit, administration) are below.

``check_…`` raises :class:`Forbidden` (HTTP 403) or :class:`InvalidTransition` (409); ``can_…`` returns a bool.

Call :func:`authorize` before the session writes anything: the decision is committed on a connection of its
own, and on SQLite that connection would wait for this session's write lock.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.people import Role, User
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Snapshot

if TYPE_CHECKING:  # sessions load the terminals' X.509 code, which a console decision never needs
    from renkei.hub.access.sessions import LoginSession

POLICY_VERSION = 1  # raise when a rule changes, so an audit entry names the rules it was decided by
RULE_MODULES = (
    "renkei.hub.access.applications",
    "renkei.hub.access.grants",
    "renkei.hub.access.quotas",
    "renkei.hub.analysis.review",
    "renkei.hub.analysis.opendata",
)
_MAX_LOGGED_NAME = 64  # unknown action or type names come from outside; log only their start
_MAX_LOGGED_RESOURCE = 256
_MAX_LISTED_NAMES_BYTES = (
    6 * 1024
)  # of an entry's 8 KiB details: the listed objects' names, the rest for the others

E = TypeVar("E", bound=enum.StrEnum)


class Action(enum.StrEnum):
    """Every access the hub decides. The audit log and authz_matrix.yaml use these names."""

    CATALOG_READ = "catalog.read"  # metadata: datasets, periods, columns
    SNAPSHOT_READ = "snapshot.read"  # query data (aggregates) in the workspace
    SNAPSHOT_READ_ROWS = "snapshot.read_rows"  # 個票閲覧: see individual rows
    EXPORT = "export"  # a file leaves the hub
    RELEASE_REVIEW = "release.review"  # approve or reject a table the automatic checks sent to review
    OPENDATA_PREVIEW = "opendata.preview"  # see a table as it would be published as open data
    OPENDATA_PUBLISH = "opendata.publish"  # publish it as open data, spending the privacy budget
    APPLICATION_CREATE = "application.create"
    APPLICATION_READ = "application.read"
    APPLICATION_EDIT = "application.edit"  # the applicant rewrites their draft
    APPLICATION_SUBMIT = "application.submit"
    APPLICATION_WITHDRAW = "application.withdraw"
    APPLICATION_APPROVE = "application.approve"
    APPLICATION_REJECT = "application.reject"
    APPLICATION_REVOKE = "application.revoke"
    GRANT_READ = "grant.read"
    GRANT_REVOKE = "grant.revoke"
    FOLDER_READ_ACL = "folder.read_acl"
    AUDIT_READ = "audit.read"
    ADMIN_USERS = "admin.users"  # designate, disable, change roles
    ADMIN_TERMINALS = "admin.terminals"  # register terminals and staff cards
    ADMIN_QUOTAS = "admin.quotas"  # set download quotas
    ADMIN_CATALOG = "admin.catalog"  # register datasets and senders, import


class ResourceType(enum.StrEnum):
    CATALOG = "catalog"  # the list of datasets
    DATASET = "dataset"  # one dataset, one folder
    SNAPSHOT = "snapshot"
    EXPORT = "export"  # a file about to leave the hub, computed from snapshots
    RELEASE = "release"  # a table in the release ledger
    APPLICATION = "application"
    APPLICATION_PART = "application_part"  # one owning department's part of an application
    GRANT = "grant"
    AUDIT_LOG = "audit_log"
    SYSTEM = "system"  # the hub's administration


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks and from where. ``session_id`` names the login session; never pass its secret token."""

    name: str  # the audit log's actor: a login id, or ``cli:<os user>``
    user_id: int | None = None
    terminal: str = ""
    client_addr: str = ""
    session_id: str = ""
    console_admin: bool = False  # the hub's operator at its console, who holds its keys anyway

    @classmethod
    def for_user(
        cls, user: User, *, terminal: str = "", client_addr: str = "", session_id: str = ""
    ) -> Actor:
        return cls(user.login_id, user.id, terminal, client_addr, session_id)

    @classmethod
    def for_session(cls, login: LoginSession, *, client_addr: str = "") -> Actor:
        """The web's actor: the session's user and terminal, and the session's record id (not its token)."""
        return cls(login.login_id, login.user_id, login.terminal_name, client_addr, str(login.id))

    @classmethod
    def cli(cls, name: str) -> Actor:
        """The CLI acts with admin rights: whoever runs it on the hub already holds the hub's keys."""
        return cls(name, terminal="console", console_admin=True)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is asked for: a type, an id (loaded afresh by the rule) and a name for the audit log."""

    type: str
    id: int | None = None
    name: str = ""
    snapshot_ids: tuple[int, ...] = ()  # export: the snapshots the file was computed from
    rows: int = 0  # export: rows in the file
    bytes: int = 0  # export: size of the file

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.type if self.id is None else f"{self.type}/{self.id}"

    @classmethod
    def of(cls, kind: ResourceType, id_: int | None = None) -> Resource:
        return cls(kind.value, id_)

    @classmethod
    def dataset(cls, dataset: Dataset) -> Resource:
        return cls(ResourceType.DATASET.value, dataset.id, f"dataset/{dataset.name}")

    @classmethod
    def snapshot(cls, snapshot: Snapshot) -> Resource:
        return cls(ResourceType.SNAPSHOT.value, snapshot.id, f"snapshot/{snapshot.resource}")

    @classmethod
    def export(cls, snapshot_ids: Iterable[int], rows: int, size: int) -> Resource:
        ids = tuple(sorted(set(snapshot_ids)))
        return cls(ResourceType.EXPORT.value, None, "export", ids, rows, size)


@dataclass(frozen=True, slots=True)
class Principal:
    """The actor as the database says now (role, department), never as a login session remembered it."""

    name: str
    role: Role
    user_id: int | None
    department_id: int | None


class Forbidden(RenkeiError):  # noqa: N818 (the name every layer uses: HTTP 403 Forbidden)
    """Access denied. The web answers 403; the CLI exits with ``exit_code``."""

    def __init__(self, ja: str, en: str, decision: Decision | None = None) -> None:
        super().__init__(ja, en)
        self.decision = decision


class InvalidTransition(Forbidden):
    """The object's state does not allow it (already decided, withdrawn, expired …): HTTP 409."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a rule decided and why; ``error`` is what :func:`check` raises when it denies."""

    allowed: bool
    policy: str
    reason_ja: str
    reason_en: str
    grant_ids: tuple[int, ...] = ()
    application_id: int | None = None
    label: str = ""  # a readable name of the resource, once the rule has loaded it
    error: type[Forbidden] = Forbidden


def allow(policy: str, ja: str, en: str, **kwargs: Any) -> Verdict:
    return Verdict(True, policy, ja, en, **kwargs)


def deny(policy: str, ja: str, en: str, **kwargs: Any) -> Verdict:
    return Verdict(False, policy, ja, en, **kwargs)


@dataclass(frozen=True, slots=True)
class Decision:
    """A recorded verdict: ``audit_seq`` is its entry in the audit log."""

    action: str
    resource: Resource
    verdict: Verdict
    audit_seq: int

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed


# --- rules ------------------------------------------------------------------------------------------------

RuleFunc = Callable[[Session, Principal, Action, Resource, Clock], Verdict]


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    resource_types: frozenset[ResourceType]
    decide: RuleFunc = field(repr=False)


RULES: dict[Action, Rule] = {}


def rule(*actions: Action, on: Iterable[ResourceType]) -> Callable[[RuleFunc], RuleFunc]:
    """Register ``func`` as the one rule for ``actions`` on resources of the types ``on``."""
    types = frozenset(on)

    def register(func: RuleFunc) -> RuleFunc:
        for action in actions:
            if action in RULES:
                raise RuntimeError(f"two rules for {action}")
            RULES[action] = Rule(action, types, func)
        return func

    return register


@functools.cache
def rules() -> dict[Action, Rule]:
    """Every registered rule, after importing the modules that hold them."""
    for module in RULE_MODULES:
        importlib.import_module(module)
    return RULES


def rule_for(action: Action) -> Rule | None:
    """The one rule for ``action``: the roles' rules (below) are there from the start, and the rule modules
    are imported only for an action they hold, so a console command that reads the catalog never loads them."""
    return RULES.get(action) or rules().get(action)


# --- the choke point --------------------------------------------------------------------------------------


def authorize(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    action: Action | str,
    resource: Resource,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Decision:
    """Decide whether ``actor`` may do ``action`` on ``resource`` now, and record the decision."""
    _refuse_if_writing(session)
    try:
        verdict = _decide(session, actor, str(action), resource, clock)
    except Exception as exc:
        # A rule that fails decides nothing: the request fails, and the log says so.
        record_decision(audit, actor, str(action), resource, deny("error", "", type(exc).__name__), "error")
        raise
    entry = record_decision(audit, actor, str(action), resource, verdict)
    return Decision(str(action), resource, verdict, entry)


def authorize_each(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    action: Action | str,
    resources: Sequence[Resource],
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Decision]:
    """:func:`authorize` for several objects of one request, recorded as ONE entry naming them all.

    A query over ten periods, or one list page, is one access, and the log should say so once (issue 9 item 8),
    not ten times. Each object gets its own verdict; the entry is ``denied`` if any was, and lists the denied
    ones. Only a list whose names would not fit one entry's details is split into several entries (``batch``
    of ``batches``), so that no object goes unrecorded.
    """
    _refuse_if_writing(session)
    if not resources:
        return []
    try:
        verdicts = [_decide(session, actor, str(action), r, clock) for r in resources]
    except Exception as exc:
        record_decision(
            audit, actor, str(action), resources[0], deny("error", "", type(exc).__name__), "error"
        )
        raise
    seqs = _record_many(audit, actor, str(action), resources, verdicts)
    return [Decision(str(action), r, v, seq) for r, v, seq in zip(resources, verdicts, seqs, strict=True)]


def _record_many(
    audit: AuditLog, actor: Actor, action: str, resources: Sequence[Resource], verdicts: Sequence[Verdict]
) -> list[int]:
    """One entry per :func:`_batches` of the objects (one entry, unless their names outgrow it); the seq of each."""
    batches = _batches(resources, verdicts)
    seqs: list[int] = []
    for number, batch in enumerate(batches, start=1):
        numbering = {"batch": number, "batches": len(batches)} if len(batches) > 1 else {}
        seqs += [_record_batch(audit, actor, action, batch, numbering)] * len(batch)
    return seqs


def _batches(
    resources: Sequence[Resource], verdicts: Sequence[Verdict]
) -> list[list[tuple[Resource, Verdict]]]:
    """The objects in groups whose names fit one entry's details (8 KiB): a long list is split, never cut."""
    batches: list[list[tuple[Resource, Verdict]]] = [[]]
    used = 0
    for resource, verdict in zip(resources, verdicts, strict=True):
        name = json.dumps(resource.label[:_MAX_LOGGED_RESOURCE], ensure_ascii=False)  # as the entry stores it
        cost = (len(name.encode()) + 1) * (1 if verdict.allowed else 2)  # in `resources`, and in `denied`
        if batches[-1] and used + cost > _MAX_LISTED_NAMES_BYTES:
            batches.append([])
            used = 0
        batches[-1].append((resource, verdict))
        used += cost
    return batches


def _record_batch(
    audit: AuditLog,
    actor: Actor,
    action: str,
    batch: Sequence[tuple[Resource, Verdict]],
    numbering: Mapping[str, int],
) -> int:
    """One decision entry for ``batch``; its seq."""
    verdicts = [v for _, v in batch]
    denied = [r.label[:_MAX_LOGGED_RESOURCE] for r, v in batch if not v.allowed]
    first_denial = next((v for v in verdicts if not v.allowed), verdicts[0])
    first = batch[0][0].label
    details: dict[str, object] = {
        "access": action[:_MAX_LOGGED_NAME],
        "resource_type": batch[0][0].type[:_MAX_LOGGED_NAME],
        "policy": first_denial.policy,
        "policy_version": POLICY_VERSION,
        "resources": [r.label[:_MAX_LOGGED_RESOURCE] for r, _ in batch],
    }
    optional: dict[str, object] = {
        "session_id": actor.session_id,
        "grant_ids": sorted({g for v in verdicts for g in v.grant_ids}),
        "denied": denied,
    }
    details.update({key: value for key, value in optional.items() if value})
    entry = audit.append(
        actor=actor.name,
        action=AuditAction.AUTHZ_DECISION,
        resource=(f"{first} …(+{len(batch) - 1})" if len(batch) > 1 else first)[:_MAX_LOGGED_RESOURCE],
        result="denied" if denied else "allowed",
        reason=first_denial.reason_en if denied else "",
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details={**details, **numbering},
    )
    return entry.seq


def check(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    action: Action | str,
    resource: Resource,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Decision:
    """:func:`authorize`, raising :class:`Forbidden` (or :class:`InvalidTransition`) when denied."""
    decision = authorize(session, audit, actor, action, resource, clock=clock)
    verdict = decision.verdict
    if not verdict.allowed:
        raise verdict.error(verdict.reason_ja, verdict.reason_en, decision)
    return decision


def can(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    action: Action | str,
    resource: Resource,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """:func:`authorize` as a bool, e.g. to show a button; the decision is recorded all the same."""
    return authorize(session, audit, actor, action, resource, clock=clock).allowed


def record_decision(
    audit: AuditLog, actor: Actor, action: str, resource: Resource, verdict: Verdict, result: str = ""
) -> int:
    """Append one ``authz.decision`` entry (own transaction) and return its sequence number."""
    details: dict[str, object] = {
        "access": action[:_MAX_LOGGED_NAME],
        "resource_type": resource.type[:_MAX_LOGGED_NAME],
        "policy": verdict.policy,
        "policy_version": POLICY_VERSION,
    }
    optional: dict[str, object] = {
        "session_id": actor.session_id,
        "grant_ids": list(verdict.grant_ids),
        "application_id": verdict.application_id,
        "snapshot_ids": list(resource.snapshot_ids),
        "rows": resource.rows,
        "bytes": resource.bytes,
    }
    details.update({key: value for key, value in optional.items() if value})
    entry = audit.append(
        actor=actor.name,
        action=AuditAction.AUTHZ_DECISION,
        resource=(verdict.label or resource.label)[:_MAX_LOGGED_RESOURCE],
        result=result or ("allowed" if verdict.allowed else "denied"),
        reason=verdict.reason_en,
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details=details,
    )
    return entry.seq


def resolve_principal(session: Session, actor: Actor) -> Principal | None:
    """The actor's role and department as stored now; None for an unknown or disabled user."""
    if actor.console_admin:
        return Principal(actor.name, Role.ADMIN, None, None)
    if actor.user_id is None:
        return None
    user = session.get(User, actor.user_id, populate_existing=True)
    if user is None or user.disabled:
        return None
    return Principal(user.login_id, user.role, user.id, user.department_id)


def _decide(session: Session, actor: Actor, action: str, resource: Resource, clock: Clock) -> Verdict:
    known = _parse(Action, action)
    kind = _parse(ResourceType, resource.type)
    if known is None:
        return deny(
            "deny:unknown-action", "未定義の操作です", f"unknown action {action[:_MAX_LOGGED_NAME]!r}"
        )
    if kind is None:
        return deny("deny:unknown-resource-type", "未定義の対象です", "unknown resource type")
    found = rule_for(known)
    if found is None:
        return deny("deny:no-rule", "この操作を許可する規則がありません", f"no rule decides {known}")
    if kind not in found.resource_types:
        return deny("deny:resource-type", "この操作の対象になりません", f"{known} does not apply to a {kind}")
    principal = resolve_principal(session, actor)
    if principal is None:
        return deny(
            "deny:not-designated",
            "指名された有効な利用者ではありません",
            "not a designated, enabled user",
        )
    return found.decide(session, principal, known, resource, clock)


def _parse(enum_type: type[E], value: str) -> E | None:
    try:
        return enum_type(value)
    except ValueError:
        return None


def _refuse_if_writing(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("authorize() before changing anything in the session (the decision commits alone)")
    if session.get_bind().dialect.name == "sqlite" and session.in_transaction():
        dbapi = session.connection().connection.dbapi_connection
        if getattr(dbapi, "in_transaction", False):
            raise RuntimeError(
                "authorize() before the session writes: on SQLite the decision would wait for it"
            )


# --- rules of the roles -----------------------------------------------------------------------------------


@rule(Action.CATALOG_READ, on=[ResourceType.CATALOG, ResourceType.DATASET])
def _may_read_catalog(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    if resource.type == ResourceType.DATASET:
        dataset = session.get(Dataset, resource.id) if resource.id is not None else None
        if dataset is None:
            return deny("deny:not-found", "データセットがありません", "no such dataset")
        label = f"dataset/{dataset.name}"
        return allow(
            "designated-user",
            "指名職員はカタログを閲覧できます",
            "metadata is open to designated users",
            label=label,
        )
    return allow(
        "designated-user", "指名職員はカタログを閲覧できます", "metadata is open to designated users"
    )


@rule(Action.AUDIT_READ, on=[ResourceType.AUDIT_LOG])
def _may_read_audit(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    if principal.role in (Role.AUDITOR, Role.ADMIN):
        return allow(
            f"role:{principal.role}", "監査ログを閲覧できます", f"{principal.role}s read the audit log"
        )
    return deny(
        "deny:role",
        "監査ログは監査担当と基盤管理者だけが閲覧できます",
        "only auditors and admins read the audit log",
    )


ADMIN_ACTIONS = (Action.ADMIN_USERS, Action.ADMIN_TERMINALS, Action.ADMIN_QUOTAS, Action.ADMIN_CATALOG)


@rule(*ADMIN_ACTIONS, on=[ResourceType.SYSTEM])
def _may_administer(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    if principal.role is Role.ADMIN:
        return allow("role:admin", "基盤管理者の操作です", "admins run the hub")
    return deny("deny:role", "基盤管理者（政策調査課）だけの操作です", f"{action} is for admins")


# --- check_/can_ pairs for the common questions -------------------------------------------------------------


def check_read_catalog(
    session: Session, audit: AuditLog, actor: Actor, *, clock: Clock = SYSTEM_CLOCK
) -> Decision:
    return check(session, audit, actor, Action.CATALOG_READ, Resource.of(ResourceType.CATALOG), clock=clock)


def can_read_catalog(session: Session, audit: AuditLog, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> bool:
    return can(session, audit, actor, Action.CATALOG_READ, Resource.of(ResourceType.CATALOG), clock=clock)


def check_read_snapshot(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    snapshot: Snapshot,
    *,
    rows: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> Decision:
    """May ``actor`` query ``snapshot`` (``rows``: see its individual rows, 個票閲覧)?"""
    action = Action.SNAPSHOT_READ_ROWS if rows else Action.SNAPSHOT_READ
    return check(session, audit, actor, action, Resource.snapshot(snapshot), clock=clock)


def can_read_snapshot(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    snapshot: Snapshot,
    *,
    rows: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    action = Action.SNAPSHOT_READ_ROWS if rows else Action.SNAPSHOT_READ
    return can(session, audit, actor, action, Resource.snapshot(snapshot), clock=clock)


def check_export(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    snapshots: Sequence[Snapshot],
    rows: int,
    size: int,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Decision:
    """May ``actor`` export a file of ``rows`` rows and ``size`` bytes computed from ``snapshots``?

    To consume the quota atomically, use :func:`renkei.hub.access.quotas.reserve_export`.
    """
    resource = Resource.export((s.id for s in snapshots), rows, size)
    return check(session, audit, actor, Action.EXPORT, resource, clock=clock)


def can_export(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    snapshots: Sequence[Snapshot],
    rows: int,
    size: int,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    resource = Resource.export((s.id for s in snapshots), rows, size)
    return can(session, audit, actor, Action.EXPORT, resource, clock=clock)


def check_read_audit(
    session: Session, audit: AuditLog, actor: Actor, *, clock: Clock = SYSTEM_CLOCK
) -> Decision:
    return check(session, audit, actor, Action.AUDIT_READ, Resource.of(ResourceType.AUDIT_LOG), clock=clock)


def can_read_audit(session: Session, audit: AuditLog, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> bool:
    return can(session, audit, actor, Action.AUDIT_READ, Resource.of(ResourceType.AUDIT_LOG), clock=clock)


def check_admin(
    session: Session, audit: AuditLog, actor: Actor, action: Action, *, clock: Clock = SYSTEM_CLOCK
) -> Decision:
    """One of the ``admin.*`` actions, on the hub itself."""
    return check(session, audit, actor, action, Resource.of(ResourceType.SYSTEM), clock=clock)


def can_admin(
    session: Session, audit: AuditLog, actor: Actor, action: Action, *, clock: Clock = SYSTEM_CLOCK
) -> bool:
    return can(session, audit, actor, action, Resource.of(ResourceType.SYSTEM), clock=clock)

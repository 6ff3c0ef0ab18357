"""指名: an admin designates a user. One function shared by the CLI and the demo, so both follow the same rules."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.errors import RenkeiError
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Department


def designate_user(
    session: Session,
    audit: AuditLog,
    *,
    login_id: str,
    display_name: str,
    role: Role,
    department: str,
    password: str,
    actor: str,
    passwords: Passwords | None = None,
) -> User:
    """Create the user with an initial password they must change, and record the designation (same transaction)."""
    dept = session.scalar(select(Department).where(Department.name == department.strip()))
    if dept is None:
        raise RenkeiError(
            f"部署 {department} は登録されていません（renkei dept add で登録）",
            f"unknown department {department!r}",
        )
    if session.scalar(select(User.id).where(func.lower(User.login_id) == login_id.lower())) is not None:
        raise RenkeiError(f"利用者 {login_id} は指名済みです", f"user {login_id!r} already exists")
    user = User(login_id=login_id, display_name=display_name, role=role, department=dept, designated_by=actor)
    session.add(user)
    session.flush()
    set_password(
        session, user, password, passwords=passwords or Passwords(), changed_by=actor, must_change=True
    )
    audit.append_in(
        session,
        actor=actor,
        action=AuditAction.ADMIN_USER_ADD,
        resource=f"user/{login_id}",
        details={"role": str(role), "department": dept.name},
    )
    return user

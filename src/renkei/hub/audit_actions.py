"""Every action the hub writes to its audit log, declared once (docs/audit-log.md lists the same names).

``AuditLog.append`` refuses an action that is not a member, and tests/unit/test_audit_actions.py fails on a
bare string at any append in ``src``: a new kind of entry starts here, with its line in the doc. The names are
the log's vocabulary for auditors and their queries, so a member's value never changes once written.

An access decision is one ``authz.decision`` entry whatever was decided; the access it decided
(``catalog.read``, ``admin.users`` …) is in its ``details.access``, from :class:`renkei.hub.access.authz.Action`.
This module imports nothing of the hub, so the log itself can check against it.
"""

from __future__ import annotations

import enum


class AuditAction(enum.StrEnum):
    # the hub itself
    HUB_INIT = "hub.init"
    HUB_MIGRATE = "hub.migrate"
    BACKUP = "backup"  # renkei backup: ok with the manifest's hash, or error with the stage that failed
    RESTORE = "restore"  # renkei restore: the first entry after the restored log
    # imports (the importer's own system actor)
    IMPORT = "import"
    IMPORT_REJECTED = "import.rejected"
    IMPORT_DUPLICATE = "import.duplicate"
    IMPORT_RELEASED = "import.released"
    IMPORT_ASSESS = "import.assess"
    # the vault and its keys
    VAULT_VERIFY = "vault.verify"
    VAULT_ROTATE_KEY_BEGIN = "vault.rotate_key_begin"  # a rotation's intent
    VAULT_ROTATE_KEY = "vault.rotate_key"  # its outcome
    # the choke point (invariant 5)
    AUTHZ_DECISION = "authz.decision"
    # administration from the console
    ADMIN_SENDER_ADD = "admin.sender_add"
    ADMIN_DEPT_ADD = "admin.dept_add"
    ADMIN_USER_ADD = "admin.user_add"
    ADMIN_USER_DISABLE = "admin.user_disable"
    ADMIN_USER_ENABLE = "admin.user_enable"
    ADMIN_USER_CHANGE = "admin.user_change"  # a new role or department
    ADMIN_USER_SET_PASSWORD = "admin.user_set_password"  # noqa: S105 (an action name, not a password)
    ADMIN_CARD_TICKET = "admin.card_ticket"
    ADMIN_CARD_REVOKE = "admin.card_revoke"
    ADMIN_TOTP_ENROLL = "admin.totp_enroll"
    ADMIN_TERMINAL_ENROLL = "admin.terminal_enroll"
    ADMIN_TERMINAL_REVOKE = "admin.terminal_revoke"
    QUOTA_SET = "quota.set"
    # login and sessions
    LOGIN_PASSWORD = "login.password"  # noqa: S105
    LOGIN_CARD = "login.card"
    LOGIN_TOTP = "login.totp"
    CARD_REGISTER_BEGIN = "card.register_begin"
    CARD_REGISTER = "card.register"
    PASSWORD_CHANGE = "password.change"  # noqa: S105
    LOGOUT = "logout"
    SESSION_REJECTED = "session.rejected"
    SESSION_STEP_UP = "session.step_up"  # the second factor proved again (renkei.hub.access.step_up)
    SESSION_STEP_UP_REQUIRED = "session.step_up_required"  # a protected action refused: no fresh step-up
    SESSION_PASSWORD_CHANGE_REQUIRED = "session.password_change_required"  # noqa: S105 (refused until changed)
    WEB_CSRF = "web.csrf"
    WEB_PROXY = "web.proxy"
    # data-use applications and grants
    APPLICATION_CREATE = "application.create"
    APPLICATION_EDIT = "application.edit"
    APPLICATION_SUBMIT = "application.submit"
    APPLICATION_WITHDRAW = "application.withdraw"
    APPLICATION_APPROVE = "application.approve"
    APPLICATION_REJECT = "application.reject"
    APPLICATION_REVOKE = "application.revoke"
    APPLICATION_EXPIRE = "application.expire"
    GRANT_REVOKE = "grant.revoke"
    # analysis
    WORKSPACE_OPEN = "workspace.open"
    WORKSPACE_QUERY = "workspace.query"
    WORKSPACE_CLOSED = "workspace.closed"
    TABLE_RELEASE = "table.release"
    RELEASE_REVIEW = "release.review"
    ANALYSIS_SAVE = "analysis.save"
    DASHBOARD_PIN = "dashboard.pin"  # a saved table pinned to (or taken off) a dashboard theme
    EXPORT_FILE = "export.file"
    OPENDATA_PUBLISH = "opendata.publish"


AUDIT_ACTIONS = frozenset(a.value for a in AuditAction)

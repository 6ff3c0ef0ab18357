"""User-facing errors, and the one table of what each answers: a CLI exit code and an HTTP status.

Every error a user can cause, and every fault of the machine renkei can name (a full disk, a lost database
connection: :mod:`renkei.faults`), is a :class:`RenkeiError` that says what is wrong and where, Japanese first.
The CLI prints it and exits with its ``exit_code``; the portal answers its ``http_status``. Both are looked up
in :data:`ERRORS`, the only place they are set: by the class's dotted name, walking up its base classes, so this
module imports none of the classes it lists (a sending process never loads hub code for it). Anything else is a
bug and gets a traceback (exit code 1, HTTP 500).

Exit codes are for scripts: :data:`EXIT_CODES` gives each family of failure its own, and ``docs/exit-codes.md``
lists them (``tests/unit/test_errors_registry.py`` checks that the table, the classes and the doc agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_BUG = 1  # an unexpected exception: Python's own code, with a traceback
EXIT_INPUT = 2
EXIT_LEFTOVER_IDENTIFIERS = 3
EXIT_PACKAGE_REJECTED = 4
EXIT_INTEGRITY = 5
EXIT_FORBIDDEN = 6
EXIT_NO_SPACE = 7
EXIT_AUDIT_UNSIGNED = 8
EXIT_LOGIN = 9
EXIT_KEY = 10
EXIT_WORKSPACE = 11
EXIT_DATABASE = 12
EXIT_BUSY = 13

# code -> (Japanese, English): what a script may conclude from it
EXIT_CODES: dict[int, tuple[str, str]] = {
    EXIT_OK: ("正常終了", "success"),
    EXIT_BUG: (
        "想定外のエラー（不具合）。トレースバックを添えて報告してください",
        "unexpected error (a bug): report it with the traceback",
    ),
    EXIT_INPUT: (
        "入力・設定・使い方の誤り（メッセージが直し方を示します）",
        "wrong input, setup or usage (the message says what to fix)",
    ),
    EXIT_LEFTOVER_IDENTIFIERS: (
        "残すはずの列に識別符号らしい値が残っているため、仮名加工を中止しました",
        "the extract stopped: a kept column still holds identifier-shaped values",
    ),
    EXIT_PACKAGE_REJECTED: (
        "パッケージを受け入れませんでした（何も保存していません）",
        "a package was rejected (nothing stored)",
    ),
    EXIT_INTEGRITY: (
        "監査ログまたは保管庫の検査で改ざん・破損を検出しました",
        "the audit log or the vault does not verify: tampering or damage found",
    ),
    EXIT_FORBIDDEN: (
        "権限がないか、対象の状態では許されない操作です",
        "not permitted, or not in the object's current state",
    ),
    EXIT_NO_SPACE: (
        "ディスク（または一時ディレクトリ）の空きが足りません",
        "no space left on a disk (or in the temporary directory)",
    ),
    EXIT_AUDIT_UNSIGNED: (
        "監査ログの古い記録が署名済みチェックポイントで保護されていません",
        "old audit entries are not covered by a signed checkpoint",
    ),
    EXIT_LOGIN: ("ログイン・セッションを受け付けませんでした", "a login or session was refused"),
    EXIT_KEY: (
        "鍵（鍵暗号化鍵・記録鍵など）を使えないか、鍵が一致しません",
        "a key (the KEK, the record key …) cannot be used or does not match",
    ),
    EXIT_WORKSPACE: (
        "分析作業環境を開けないか、照会を実行できません",
        "the analysis workspace cannot be opened or run the query",
    ),
    EXIT_DATABASE: (
        "カタログのデータベースに接続できないか、接続が切れました",
        "the catalog database cannot be reached, or the connection was lost",
    ),
    EXIT_BUSY: (
        "データベースが使用中か、同時に実行中の処理と競合しました。もう一度実行してください",
        "the database stayed busy, or concurrent work took what was needed: run it again",
    ),
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What an error answers: the CLI's exit code, the portal's HTTP status and error code."""

    exit_code: int
    http_status: int = 400
    code: str | None = None  # the API's ``error.code``; None: the HTTP status's own (renkei.web.errors)


# Every RenkeiError subclass in src/, by dotted name. A subclass not listed answers as its nearest listed base.
ERRORS: dict[str, Answer] = {
    "renkei.errors.RenkeiError": Answer(EXIT_INPUT),
    "renkei.errors.SpecError": Answer(EXIT_INPUT),
    "renkei.errors.InputError": Answer(EXIT_INPUT),
    "renkei.errors.KeyFileError": Answer(EXIT_INPUT),
    "renkei.errors.LeftoverIdentifierError": Answer(EXIT_LEFTOVER_IDENTIFIERS),
    "renkei.errors.NoSpaceError": Answer(EXIT_NO_SPACE, 507, "insufficient_storage"),
    "renkei.errors.DatabaseUnavailableError": Answer(EXIT_DATABASE, 503, "database_unavailable"),
    "renkei.errors.DatabaseBusyError": Answer(EXIT_BUSY, 503, "database_busy"),
    "renkei.config.HomeError": Answer(EXIT_INPUT),
    "renkei.hub.settings.SettingsError": Answer(EXIT_INPUT),
    "renkei.cli.analysis.CliInputError": Answer(EXIT_INPUT),
    # the hub: packages, vault, keys, audit
    "renkei.hub.importer.PackageRejectedError": Answer(EXIT_PACKAGE_REJECTED),
    "renkei.hub.storing.ImportConflictError": Answer(EXIT_BUSY, 409, "import_conflict"),
    "renkei.hub.vault.VaultError": Answer(EXIT_INPUT),
    "renkei.hub.vault.SnapshotExistsError": Answer(EXIT_INPUT),
    "renkei.hub.vault.SnapshotNotFoundError": Answer(EXIT_INPUT),
    "renkei.hub.vault.CorruptedFileError": Answer(EXIT_INTEGRITY),
    "renkei.hub.vault.VaultFullError": Answer(EXIT_NO_SPACE, 507, "insufficient_storage"),
    "renkei.hub.keys.KekError": Answer(EXIT_KEY),
    "renkei.hub.keys.WrongKekError": Answer(EXIT_KEY),
    "renkei.hub.disclosure.record_keys.RecordKeyError": Answer(EXIT_KEY),
    "renkei.hub.access.totp.TotpSecretError": Answer(EXIT_KEY),
    "renkei.hub.audit.AuditError": Answer(EXIT_INPUT),
    "renkei.hub.backup.BackupError": Answer(EXIT_INPUT),
    "renkei.hub.backup.BackupDamagedError": Answer(EXIT_INTEGRITY),
    "renkei.hub.backup.BackupKeyError": Answer(EXIT_KEY),
    # people and permissions
    "renkei.hub.access.authz.Forbidden": Answer(EXIT_FORBIDDEN, 403, "forbidden"),
    "renkei.hub.access.authz.InvalidTransition": Answer(EXIT_FORBIDDEN, 409, "invalid_transition"),
    "renkei.hub.access.applications.SeparationOfDuties": Answer(EXIT_FORBIDDEN, 403, "separation_of_duties"),
    "renkei.hub.access.quotas.QuotaExceeded": Answer(EXIT_FORBIDDEN, 403, "forbidden"),
    "renkei.hub.analysis.opendata.PrivacyBudgetExceededError": Answer(
        EXIT_FORBIDDEN, 409, "privacy_budget_exceeded"
    ),
    "renkei.hub.access.applications.ApplicationError": Answer(EXIT_INPUT, 422, "application_invalid"),
    "renkei.hub.services.decisions.NotFoundError": Answer(EXIT_INPUT, 404),
    "renkei.hub.access.passwords.WeakPasswordError": Answer(EXIT_INPUT, 422, "weak_password"),
    "renkei.hub.access.cards.CardError": Answer(EXIT_INPUT),
    "renkei.hub.access.sessions.SessionRejectedError": Answer(EXIT_LOGIN, 401, "unauthenticated"),
    "renkei.hub.access.login.LoginError": Answer(EXIT_LOGIN),
    "renkei.hub.access.login.LoginFailedError": Answer(EXIT_LOGIN, 401, "login_failed"),
    "renkei.hub.access.login.SecondFactorError": Answer(EXIT_LOGIN, 401, "second_factor_failed"),
    "renkei.hub.access.login.TotpCodeUsedError": Answer(EXIT_LOGIN, 401, "second_factor_failed"),
    "renkei.hub.access.login.LoginThrottledError": Answer(EXIT_LOGIN, 429, "login_throttled"),
    "renkei.hub.access.login.TerminalNotRegisteredError": Answer(EXIT_LOGIN, 403, "terminal_not_registered"),
    "renkei.hub.access.login.NoSecondFactorError": Answer(EXIT_LOGIN, 403, "no_second_factor"),
    "renkei.hub.access.login.EnrollmentError": Answer(EXIT_LOGIN, 403, "enrollment_refused"),
    "renkei.hub.access.step_up.StepUpRequired": Answer(EXIT_LOGIN, 403, "step_up_required"),
    "renkei.hub.access.step_up.StepUpFailedError": Answer(EXIT_LOGIN, 403, "step_up_failed"),
    "renkei.hub.access.step_up.StepUpCodeUsedError": Answer(EXIT_LOGIN, 403, "step_up_failed"),
    # analysis
    "renkei.hub.workspace.errors.WorkspaceError": Answer(EXIT_WORKSPACE, 409),
    "renkei.hub.workspace.errors.WorkspaceClosed": Answer(EXIT_WORKSPACE, 409),
    "renkei.hub.workspace.pool.WorkspacesFull": Answer(EXIT_WORKSPACE, 503, "workspaces_full"),
    "renkei.hub.workspace.slots.WorkspaceBusy": Answer(EXIT_WORKSPACE, 503, "workspace_busy"),
    "renkei.hub.workspace.errors.QueryRefused": Answer(EXIT_WORKSPACE, 422),
    "renkei.hub.workspace.errors.QueryTimeout": Answer(EXIT_WORKSPACE, 504),
    "renkei.hub.workspace.errors.QueryFailed": Answer(EXIT_WORKSPACE, 422),
    "renkei.hub.workspace.process.WorkerGone": Answer(EXIT_WORKSPACE, 409),
    "renkei.hub.sql.lineage.LineageError": Answer(EXIT_INPUT),
    "renkei.hub.tables.compile.TableRequestError": Answer(EXIT_INPUT),
    "renkei.hub.analysis.errors.AnalysisError": Answer(EXIT_INPUT, 422),
    "renkei.hub.analysis.errors.ReleaseNotFound": Answer(EXIT_INPUT, 404),
    "renkei.hub.disclosure.policy.DisclosurePolicyError": Answer(EXIT_INPUT),
    # the portal's own (never raised by the CLI)
    "renkei.web.errors.WebError": Answer(EXIT_INPUT, 400, "bad_request"),
    "renkei.web.errors.NotFoundError": Answer(EXIT_INPUT, 404, "not_found"),
    "renkei.web.errors.UnauthenticatedError": Answer(EXIT_INPUT, 401, "unauthenticated"),
    "renkei.web.errors.CsrfRejectedError": Answer(EXIT_INPUT, 403, "csrf_rejected"),
    "renkei.web.errors.ProxyRefusedError": Answer(EXIT_INPUT, 403, "proxy_refused"),
    "renkei.web.errors.FormExpiredError": Answer(EXIT_INPUT, 403, "csrf_rejected"),
    "renkei.web.errors.PasswordChangeRequiredError": Answer(EXIT_INPUT, 403, "password_change_required"),
    "renkei.web.errors.CurrentPasswordWrongError": Answer(EXIT_INPUT, 403, "current_password_wrong"),
}


def dotted_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def answer_for(cls: type[BaseException]) -> Answer:
    """The entry of ``cls`` or of its nearest listed base class (every RenkeiError has one)."""
    for base in cls.__mro__:
        if (answer := ERRORS.get(dotted_name(base))) is not None:
            return answer
    raise LookupError(f"{dotted_name(cls)} is not a RenkeiError")


class _Answered:
    """A class attribute read from :data:`ERRORS` (works on the class and on instances)."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, instance: object, owner: type[BaseException]) -> int:
        value: int = getattr(answer_for(owner), self.field)
        return value


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file, and optionally a line, a column (CSV) or a key path (YAML)."""

    file: Path | str | None = None
    line: int | None = None
    column: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"{self.line}行目 (line {self.line})")
        if self.column is not None:
            parts.append(f"列「{self.column}」 (column {self.column!r})")
        if self.key is not None:
            parts.append(f"キー {self.key} (key {self.key})")
        return ", ".join(parts)


class RenkeiError(Exception):
    """An error the user can fix (or a fault renkei can name). ``ja`` is shown first, ``en`` after it."""

    exit_code = _Answered("exit_code")
    http_status = _Answered("http_status")
    detail = ""  # for the operator at the console, never shown by the portal (a driver's message, say)

    def __init__(self, ja: str, en: str, where: Location | None = None) -> None:
        self.ja = ja
        self.en = en
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> tuple[str, ...]:
        """The message's lines: where and the Japanese, the English, and any detail (each may hold untrusted text)."""
        head = f"{self.where}: " if self.where is not None and str(self.where) else ""
        tail = (f"  {self.detail}",) if self.detail else ()
        return (f"{head}{self.ja}", f"  ({self.en})", *tail)


class SpecError(RenkeiError):
    """A dataset spec is invalid."""


class InputError(RenkeiError):
    """An input file cannot be read as the spec says (encoding, shape, columns)."""


class LeftoverIdentifierError(RenkeiError):
    """A kept column still holds identifier-shaped values; the extract is stopped."""


class KeyFileError(RenkeiError):
    """A key file is missing, unreadable, too permissive, or would be overwritten."""


class NoSpaceError(RenkeiError):
    """A disk (or the temporary directory) has no room for what is being written; the write did not complete."""


class DatabaseUnavailableError(RenkeiError):
    """The catalog database cannot be reached, or the connection to it was lost mid-way (rolled back)."""


class DatabaseBusyError(RenkeiError):
    """The catalog database stayed locked by other work (or a transaction conflicted) past the waiting time."""

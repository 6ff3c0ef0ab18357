"""Japanese first, English on request: ``?lang=en`` (remembered in a cookie), else the browser's first language.

Pages use :func:`translator`; JSON errors carry both languages, so the API needs no negotiation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from starlette.requests import HTTPConnection

Language = Literal["ja", "en"]
LANG_COOKIE = "__Host-renkei_lang"
LANGUAGES: tuple[Language, ...] = ("ja", "en")

# key -> (日本語, English). Templates use t("key").
MESSAGES: dict[str, tuple[str, str]] = {
    "app.name": ("庁内データ連携基盤", "City data hub"),
    "nav.home": ("ホーム", "Home"),
    "nav.catalog": ("データカタログ", "Data catalog"),
    "nav.skip": ("本文へ移動", "Skip to content"),
    "nav.main": ("メニュー", "Main menu"),
    "nav.applications": ("利用申請", "Applications"),
    "nav.new": ("新規申請", "New application"),
    "nav.reviews": ("審査", "Reviews"),
    "nav.grants": ("利用承認", "Grants"),
    "nav.audit": ("監査ログ", "Audit log"),
    "nav.password": ("パスワード変更", "Change password"),
    "nav.logout": ("ログアウト", "Log out"),
    "lang.switch": ("English", "日本語"),
    "common.submit": ("送信", "Submit"),
    "common.none": ("なし", "None"),
    "common.yes": ("あり", "Yes"),
    "common.no": ("なし", "No"),
    "common.optional": ("任意", "optional"),
    "common.required": ("必須", "required"),
    "common.back": ("戻る", "Back"),
    "login.title": ("ログイン", "Log in"),
    "login.login_id": ("利用者ID", "Login ID"),
    "login.password": ("パスワード", "Password"),
    "login.next": ("次へ", "Next"),
    "login.unregistered": (
        "この端末は登録されていません。登録された専用端末からログインしてください。",
        "This terminal is not registered. Log in from a registered terminal.",
    ),
    "login.card.title": ("職員証による認証", "Staff card"),
    "login.card.help": (
        "職員証をカードリーダーに置き、ボタンを押してください。",
        "Place your staff card on the reader and press the button.",
    ),
    "login.card.button": ("職員証で認証する", "Use my staff card"),
    "login.totp.title": ("確認コード", "Verification code"),
    "login.totp.help": (
        "認証アプリに表示されている 6 桁の確認コードを入力してください。",
        "Enter the 6-digit code shown by your authenticator app.",
    ),
    "login.totp.code": ("確認コード", "Code"),
    "login.session_ended": (
        "セッションが終了しました（ログアウトしたか、一定時間操作がありませんでした）。もう一度ログインしてください。",
        "Your session has ended (you logged out, or it timed out). Please log in again.",
    ),
    "login.enroll_link": (
        "職員証を登録する（管理者が発行した登録チケットが必要です）",
        "Register a staff card (needs a ticket from the admin)",
    ),
    "webauthn.unsupported": (
        "このブラウザは職員証（WebAuthn）に対応していません。",
        "This browser does not support staff cards (WebAuthn).",
    ),
    "webauthn.failed": (
        "職員証を読み取れませんでした。もう一度お試しください。",
        "The staff card could not be read. Please try again.",
    ),
    "enroll.title": ("職員証の登録", "Register a staff card"),
    "enroll.ticket": ("登録チケット", "Enrollment ticket"),
    "enroll.help": (
        "基盤管理者（政策調査課）から受け取った登録チケットと、利用者ID・パスワードを入力してください。",
        "Enter the ticket from the platform admin, your login ID and your password.",
    ),
    "enroll.button": ("職員証を登録する", "Register the card"),
    "enroll.done": ("職員証を登録しました。ログインしてください。", "The card is registered. Please log in."),
    "password.title": ("パスワード変更", "Change password"),
    "password.required": (
        "パスワードの変更が必要です。新しいパスワードを設定してください。",
        "You must change your password before continuing.",
    ),
    "password.current": ("現在のパスワード", "Current password"),
    "password.new": ("新しいパスワード", "New password"),
    "password.done": ("パスワードを変更しました。", "Your password has been changed."),
    "password.only": (
        "パスワードを変更するまで、ほかの画面は使えません。",
        "Other pages open once you have changed your password.",
    ),
    "password.go": ("パスワード変更の画面へ", "Go to the password change"),
    "error.login": ("ログイン画面へ", "Go to the login page"),
    "apps.title": ("自分の利用申請", "My applications"),
    "apps.empty": ("申請はありません。", "No applications."),
    "apps.id": ("申請番号", "No."),
    "apps.state": ("状態", "State"),
    "apps.applied_on": ("申請日", "Applied on"),
    "apps.period": ("利用期間", "Period of use"),
    "apps.datasets": ("データセット", "Datasets"),
    "apps.applicant": ("申請者", "Applicant"),
    "new.title": ("データ利用承認申請", "Apply for data"),
    "new.datasets": ("利用するデータセットと基準日", "Datasets and periods"),
    "new.all_periods": ("申請日までの全期間", "every period up to today"),
    "new.purpose": ("目的", "Purpose"),
    "new.outputs": ("想定する成果物", "Intended outputs"),
    "new.use_start": ("利用開始日", "Use from"),
    "new.use_end": ("利用終了日", "Use until"),
    "new.row_level": ("個票閲覧（個々の記録の閲覧）が必要", "Row-level viewing (個票閲覧) is needed"),
    "new.save": ("下書き保存", "Save draft"),
    "new.apply": ("申請する", "Submit application"),
    "new.no_datasets": ("申請できるデータセットがまだありません。", "No datasets can be applied for yet."),
    "new.analysts_only": (
        "データの利用を申請できるのは分析担当の職員だけです。申請の状況は「利用申請」の一覧で確かめられます。",
        "Only analysts apply for data. You can follow applications in the list of applications.",
    ),
    "new.no_steward": (
        "所管課にデータ管理者がいないため、この申請は審査されません。基盤管理者に連絡してください。",
        "Its department has no data steward, so nobody can decide on it: tell the platform admin.",
    ),
    "app.title": ("利用申請", "Application"),
    "app.row_level": ("個票閲覧", "Row-level viewing"),
    "app.parts": ("所管課ごとの審査", "Decisions by owning department"),
    "app.department": ("所管課", "Department"),
    "app.decision": ("判断", "Decision"),
    "app.decided_by": ("判断者", "Decided by"),
    "app.comment": ("コメント", "Comment"),
    "app.approve_comment": ("承認のコメント（任意）", "Comment on the approval (optional)"),
    "app.no_steward": (
        "この所管課にはデータ管理者がいないため、審査されません。基盤管理者に連絡してください。",
        "This department has no data steward, so nobody can decide: tell the platform admin.",
    ),
    "app.revoke_part": ("{department}の承認を取り消す", "Revoke {department}'s approval"),
    "app.revoke_all": ("申請全体の承認を取り消す", "Revoke the whole application"),
    "app.decide": ("{department}の審査", "Decision for {department}"),
    "app.snapshots": ("データ（基準日・版）", "Snapshots"),
    "app.closed": ("終了", "Closed"),
    "app.submit": ("申請する", "Submit"),
    "app.edit": ("下書きを直す", "Edit the draft"),
    "app.withdraw": ("取り下げる", "Withdraw"),
    "app.withdraw_reason": ("取下げの理由（任意）", "Reason for withdrawing (optional)"),
    "app.approve": ("承認する", "Approve"),
    "app.reject": ("却下する", "Reject"),
    "app.reject_reason": ("却下の理由（必須）", "Reason for rejection (required)"),
    "app.revoke": ("承認を取り消す", "Revoke approval"),
    "app.revoke_reason": ("取消しの理由（必須）", "Reason for revocation (required)"),
    "reviews.title": ("審査待ちの申請", "Applications awaiting your decision"),
    "reviews.empty": ("審査待ちの申請はありません。", "Nothing awaits your decision."),
    "reviews.stewards_only": (
        "申請を審査するのは、データを所管する課のデータ管理者です。",
        "Applications are decided by the data stewards of the departments that own the data.",
    ),
    "grants.title": ("自分の利用承認", "My grants"),
    "grants.department": ("所管データセットの利用承認", "Grants on your department's datasets"),
    "grants.empty": ("利用承認はありません。", "No grants."),
    "grants.dataset": ("データセット", "Dataset"),
    "grants.holder": ("利用者", "Holder"),
    "grants.valid": ("利用期間", "Valid"),
    "grants.status": ("状態", "Status"),
    "grants.revoke": ("取り消す", "Revoke"),
    "grants.revoke_one": (
        "{holder}の {dataset} の利用承認を取り消す",
        "Revoke {holder}'s grant on {dataset}",
    ),
    "grants.all": ("すべての利用承認", "All grants"),
    "grants.expires": ("有効期限", "Expires"),
    "done.approved": ("申請 {id} を承認しました。", "You approved application {id}."),
    "done.rejected": (
        "申請 {id} を却下しました。申請者に理由が表示されます。",
        "You rejected application {id}; the applicant sees your reason.",
    ),
    "done.revoked": (
        "申請 {id} の承認を取り消しました。利用承認は無効になりました。",
        "You revoked the approval of application {id}; its grants have ended.",
    ),
    "done.grant_revoked": ("利用承認 {id} を取り消しました。", "You revoked grant {id}."),
    "done.submitted": (
        "申請 {id} を提出しました。所管課の審査を待っています。",
        "Application {id} is submitted and awaits the departments' decisions.",
    ),
    "done.saved": ("申請 {id} を下書きとして保存しました。", "Application {id} is saved as a draft."),
    "done.withdrawn": ("申請 {id} を取り下げました。", "You withdrew application {id}."),
    "state.application.draft": ("作成中", "Draft"),
    "state.application.submitted": ("申請中", "Submitted"),
    "state.application.partially_approved": ("一部承認", "Partly approved"),
    "state.application.approved": ("承認", "Approved"),
    "state.application.rejected": ("却下", "Rejected"),
    "state.application.withdrawn": ("取下げ", "Withdrawn"),
    "state.application.expired": ("期間満了", "Expired"),
    "state.application.revoked": ("取消し", "Revoked"),
    "state.part.pending": ("審査待ち", "Awaiting decision"),
    "state.part.approved": ("承認", "Approved"),
    "state.part.rejected": ("却下", "Rejected"),
    "state.part.revoked": ("取消し", "Revoked"),
    "state.part.not_submitted": ("未提出", "Not submitted"),
    "state.part.closed": ("審査なし（申請は終了）", "Not decided (application closed)"),
    "state.grant.active": ("有効", "Active"),
    "state.grant.scheduled": ("開始前", "Not yet started"),
    "state.grant.expired": ("期間満了", "Expired"),
    "state.grant.revoked": ("取消し", "Revoked"),
    "home.title": ("ホーム", "Home"),
    "home.my_grants": ("自分の利用承認", "My grants"),
    "home.my_applications": ("自分の利用申請", "My applications"),
    "home.waiting": ("あなたの審査を待っている申請", "Applications awaiting your decision"),
    "home.waiting_count": (
        "{n} 件の申請があなたの審査を待っています。",
        "{n} applications await your decision.",
    ),
    "home.no_grants": (
        "有効な利用承認はまだありません。データを使うには、まず利用申請をしてください。",
        "You have no grants yet. To use data, apply first.",
    ),
    "home.all_applications": ("すべての利用申請", "All applications"),
    "home.open_applications": ("審査中の申請", "Applications under review"),
    "home.no_steward": ("データ管理者のいない所管課", "Departments without a data steward"),
    "home.no_steward_help": (
        "次の課のデータへの申請は審査されません。データ管理者を指名してください（renkei user add --role steward）。",
        "Applications for these departments' data cannot be decided: designate a data steward (renkei user add --role steward).",
    ),
    "home.auditor_help": (
        "監査担当として、すべての利用申請と利用承認を確かめられます。",
        "As an auditor you can review every application and grant.",
    ),
    "home.admin_help": (
        "基盤管理者として、申請全体の取消しと利用承認の取消しができます。",
        "As platform admin you can revoke whole applications and grants.",
    ),
    "home.department_grants": ("所管データの利用承認", "Grants on your department's data"),
    "audit.title": ("監査ログ", "Audit log"),
    "audit.help": (
        "すべての判断とファイル操作の記録です。利用者・操作・対象・結果・期間で絞り込めます（新しい順に最大 200 件）。",
        "Every decision and file operation on record. Narrow by user, action, resource, result and dates (newest first, at most 200).",
    ),
    "audit.actor": ("利用者", "User"),
    "audit.action": ("操作", "Action"),
    "audit.resource": ("対象", "Resource"),
    "audit.result": ("結果", "Result"),
    "audit.result.any": ("すべて", "Any"),
    "audit.result.ok": ("許可・成功", "Allowed"),
    "audit.result.denied": ("拒否", "Denied"),
    "audit.since": ("開始日", "From"),
    "audit.until": ("終了日", "Until"),
    "audit.search": ("検索", "Search"),
    "audit.seq": ("番号", "No."),
    "audit.at": ("日時（日本時間）", "Time (JST)"),
    "audit.reason": ("理由", "Reason"),
    "audit.count": ("{n} 件", "{n} entries"),
    "audit.empty": ("条件に合う記録はありません。", "No entries match."),
    "catalog.title": ("データカタログ", "Data catalog"),
    "catalog.owner": ("所管課", "Owning department"),
    "catalog.periods": ("基準日", "Periods"),
    "catalog.columns": ("項目と加工", "Columns and their treatment"),
    "catalog.column": ("項目", "Column"),
    "catalog.role": ("種類", "Kind"),
    "catalog.treatment": ("加工", "Treatment"),
    "catalog.snapshots": ("取り込まれたデータ", "Imported snapshots"),
    "catalog.version": ("版", "Version"),
    "catalog.rows": ("行数", "Rows"),
    "catalog.imported_at": ("取込日時", "Imported at"),
    "catalog.empty": ("まだ取り込まれたデータはありません。", "Nothing imported yet."),
    "catalog.detail": ("詳細", "Detail"),
    "treatment.person_key": ("仮名ID化（個人）", "Pseudonymous ID (person)"),
    "treatment.link_key": ("仮名ID化（つながり）", "Pseudonymous ID (link)"),
    "treatment.name": ("削除（氏名）", "Deleted (name)"),
    "treatment.identifier": ("削除（個人識別符号）", "Deleted (identifier)"),
    "treatment.drop": ("削除", "Deleted"),
    "treatment.birth_date": ("年齢化（生年月日は削除）", "Turned into ages (birth date deleted)"),
    "treatment.address": (
        "住所の丸め（番地・号・方書の最も細かい部分を削除）",
        "Address coarsened (finest part deleted)",
    ),
    "treatment.date": ("年月に丸め", "Coarsened to the month"),
    "treatment.keep": ("そのまま", "Kept as is"),
    "error.title": ("エラー", "Error"),
    "error.request_id": ("受付番号", "Request ID"),
    "error.home": ("トップへ戻る", "Back to the start"),
}


def language_of(connection: HTTPConnection) -> Language:
    """``?lang=`` first, then the remembered choice, then the first language the browser asks for."""
    for candidate in (connection.query_params.get("lang"), connection.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return "en" if candidate == "en" else "ja"
    first = connection.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "ja"


def translator(language: Language) -> Callable[..., str]:
    """``t(key)``, or ``t(key, name=value …)`` for a message with ``{name}`` fields (values are the page's)."""
    index = LANGUAGES.index(language)

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][index]
        return text.format(**values) if values else text

    return t


def both(key: str) -> tuple[str, str]:
    return MESSAGES[key]


def has_message(key: str) -> bool:
    return key in MESSAGES

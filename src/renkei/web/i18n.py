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
    "nav.applications": ("利用申請", "Applications"),
    "nav.new": ("新規申請", "New application"),
    "nav.reviews": ("審査", "Reviews"),
    "nav.grants": ("利用承認", "Grants"),
    "nav.password": ("パスワード変更", "Change password"),
    "nav.logout": ("ログアウト", "Log out"),
    "lang.switch": ("English", "日本語"),
    "common.submit": ("送信", "Submit"),
    "common.none": ("なし", "none"),
    "common.yes": ("あり", "yes"),
    "common.no": ("なし", "no"),
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
    "app.title": ("利用申請", "Application"),
    "app.row_level": ("個票閲覧", "Row-level viewing"),
    "app.parts": ("所管課ごとの審査", "Decisions by owning department"),
    "app.department": ("所管課", "Department"),
    "app.decision": ("判断", "Decision"),
    "app.decided_by": ("判断者", "Decided by"),
    "app.comment": ("コメント", "Comment"),
    "app.snapshots": ("データ（基準日・版）", "Snapshots"),
    "app.closed": ("終了", "Closed"),
    "app.submit": ("申請する", "Submit"),
    "app.withdraw": ("取り下げる", "Withdraw"),
    "app.withdraw_reason": ("取下げの理由（任意）", "Reason (optional)"),
    "app.approve": ("承認する", "Approve"),
    "app.reject": ("却下する", "Reject"),
    "app.reject_reason": ("却下の理由（必須）", "Reason for rejection (required)"),
    "app.revoke": ("承認を取り消す", "Revoke approval"),
    "app.revoke_reason": ("取消しの理由（必須）", "Reason for revocation (required)"),
    "reviews.title": ("審査待ちの申請", "Applications awaiting your decision"),
    "reviews.empty": ("審査待ちの申請はありません。", "Nothing awaits your decision."),
    "grants.title": ("自分の利用承認", "My grants"),
    "grants.department": ("所管データセットの利用承認", "Grants on your department's datasets"),
    "grants.empty": ("利用承認はありません。", "No grants."),
    "grants.dataset": ("データセット", "Dataset"),
    "grants.holder": ("利用者", "Holder"),
    "grants.valid": ("利用期間", "Valid"),
    "grants.status": ("状態", "Status"),
    "grants.revoke": ("取り消す", "Revoke"),
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


def translator(language: Language) -> Callable[[str], str]:
    index = LANGUAGES.index(language)

    def t(key: str) -> str:
        return MESSAGES[key][index]

    return t


def both(key: str) -> tuple[str, str]:
    return MESSAGES[key]

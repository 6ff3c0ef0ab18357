"""Admin commands for people and devices: departments, designated users (指名職員), staff cards, TOTP, terminals.

Each change is a function of :mod:`renkei.hub.services.admin` called as the console actor ``cli:<os user>``:
decided by ``authorize()`` (``admin.users`` / ``admin.terminals``) and audited. Secrets that a command creates
(enrollment tickets, TOTP URIs, PKCS#12 passwords) are printed once and never stored.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from renkei.cli.common import HomeOption, handle_errors, hub_home, out
from renkei.cli.hub import console_actor
from renkei.cli.listing import listing
from renkei.hub.access.people import ROLE_LABELS_JA, Role
from renkei.hub.home import Hub
from renkei.hub.services import admin

dept_app = typer.Typer(help="部署（所管課など）の登録と一覧 (departments)", no_args_is_help=True)
user_app = typer.Typer(
    help="指名職員: 指名・無効化・パスワード・職員証・TOTP (designated users and their authenticators)",
    no_args_is_help=True,
)
terminal_app = typer.Typer(help="専用端末: 登録・失効・一覧 (dedicated terminals)", no_args_is_help=True)

LoginArgument = Annotated[str, typer.Argument(help="利用者ID (login id)")]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="パスワードを標準入力の1行目から読む (read the password from the first line of stdin)",
    ),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    entered: str = typer.prompt(
        "パスワード (password)", hide_input=True, confirmation_prompt="確認のためもう一度 (repeat)"
    )
    return entered


# --- departments --------------------------------------------------------------------------------------------


@dept_app.command("add")
@handle_errors
def dept_add(
    name: Annotated[str, typer.Argument(help="部署名 (department name)")], home: HomeOption = None
) -> None:
    """部署を登録する (register a department)."""
    name = admin.add_department(Hub(hub_home(home)), console_actor(), name)
    out.print(f"部署を登録しました (department added): {name}")


@dept_app.command("list")
@handle_errors
def dept_list(home: HomeOption = None) -> None:
    """部署の一覧 (list departments)."""
    view = listing("部署 (department)", "指名職員数 (users)", "データ所管者 (stewards)")
    for dept in admin.list_departments(Hub(hub_home(home)), console_actor()):
        view.add_row(dept.name, str(dept.users), str(dept.stewards))
    out.print(view)


# --- users --------------------------------------------------------------------------------------------------


@user_app.command("add")
@handle_errors
def user_add(
    login_id: LoginArgument,
    name: Annotated[str, typer.Option("--name", help="氏名 (display name)")],
    role: Annotated[Role, typer.Option("--role", help="役割 (role)")],
    dept: Annotated[str, typer.Option("--dept", help="所属部署 (department)")],
    password_stdin: PasswordStdinOption = False,
    home: HomeOption = None,
) -> None:
    """職員を指名し、初期パスワードを設定する。初回ログイン後に本人が変更する (designate a user)."""
    home = hub_home(home)  # before asking for a password
    login_id, display_name = admin.check_login_id(login_id), admin.check_display_name(name)
    password = _read_password(password_stdin)
    user = admin.designate(
        Hub(home),
        console_actor(),
        login_id=login_id,
        display_name=display_name,
        role=role,
        department=dept,
        password=password,
    )
    out.print(
        f"指名しました (designated): {login_id} — {display_name}, {ROLE_LABELS_JA[role]}, {user.department}"
    )
    out.print("次に職員証の登録チケット（user card-ticket）か TOTP（user totp-enroll）を発行してください")


@user_app.command("disable")
@handle_errors
def user_disable(login_id: LoginArgument, home: HomeOption = None) -> None:
    """利用者を無効にし、そのセッションを直ちに終了する (disable a user; their sessions end at once)."""
    done = admin.disable_user(Hub(hub_home(home)), console_actor(), login_id)
    out.print(
        f"無効にしました (disabled): {done.name} — 終了したセッション (sessions ended): {done.sessions_ended}"
    )


@user_app.command("list")
@handle_errors
def user_list(home: HomeOption = None) -> None:
    """指名職員の一覧: 役割・部署・第二要素・状態 (list designated users)."""
    view = listing(
        "利用者ID", "氏名 (name)", "役割 (role)", "部署 (dept)", "第二要素 (factor)", "状態 (status)"
    )
    for user in admin.list_users(Hub(hub_home(home)), console_actor()):
        factor = {"card": f"職員証 (card) ×{user.cards}", "totp": "TOTP", "none": "なし (none)"}[user.factor]
        status = "無効 (disabled)" if user.disabled else "有効 (active)"
        view.add_row(user.login_id, user.display_name, str(user.role), user.department, factor, status)
    out.print(view)


@user_app.command("enable")
@handle_errors
def user_enable(login_id: LoginArgument, home: HomeOption = None) -> None:
    """無効にした利用者を再び有効にする (enable a disabled user again)."""
    done = admin.enable_user(Hub(hub_home(home)), console_actor(), login_id)
    out.print(f"有効にしました (enabled): {done.name}")


@user_app.command("change")
@handle_errors
def user_change(
    login_id: LoginArgument,
    role: Annotated[Role, typer.Option("--role", help="役割 (role)")],
    dept: Annotated[str, typer.Option("--dept", help="所属部署 (department)")],
    home: HomeOption = None,
) -> None:
    """役割と所属部署を変更する。その利用者のセッションは終了する (change a user's role and department)."""
    done = admin.change_user(Hub(hub_home(home)), console_actor(), login_id, role=role, department=dept)
    out.print(
        f"変更しました (changed): {done.name} — {ROLE_LABELS_JA[role]}, {dept}"
        f"（終了したセッション (sessions ended): {done.sessions_ended}）"
    )


@user_app.command("set-password")
@handle_errors
def user_set_password(
    login_id: LoginArgument, password_stdin: PasswordStdinOption = False, home: HomeOption = None
) -> None:
    """パスワードを再設定する。本人は次のログインで変更し、既存のセッションは終了する (reset a password)."""
    home = hub_home(home)  # before asking for a password
    password = _read_password(password_stdin)
    done = admin.reset_password(Hub(home), console_actor(), login_id, password)
    out.print(f"パスワードを再設定しました (password reset): {done.name}（次回ログイン時に変更が必要）")


@user_app.command("card-ticket")
@handle_errors
def user_card_ticket(login_id: LoginArgument, home: HomeOption = None) -> None:
    """職員証の登録チケット（1回限り・期限付き）を発行する (issue a one-time card enrollment ticket)."""
    ticket = admin.issue_card_ticket(Hub(hub_home(home)), console_actor(), login_id)
    expires = ticket.expires_at.isoformat(timespec="minutes")
    out.print(f"職員証の登録チケット (card enrollment ticket) for {ticket.login_id}:")
    out.print(f"  {ticket.code}", highlight=False)
    out.print(f"有効期限 (valid until): {expires} UTC。本人に直接渡してください（1回限り）")


@user_app.command("card-revoke")
@handle_errors
def user_card_revoke(login_id: LoginArgument, home: HomeOption = None) -> None:
    """利用者の職員証をすべて無効にする（紛失・退職時）(disable all of a user's staff cards)."""
    done = admin.revoke_user_cards(Hub(hub_home(home)), console_actor(), login_id)
    out.print(f"職員証を無効にしました (cards disabled): {done.name} — {done.sessions_ended} 枚")


@user_app.command("totp-enroll")
@handle_errors
def user_totp_enroll(login_id: LoginArgument, home: HomeOption = None) -> None:
    """カード読取機のない端末向けに TOTP を登録し、otpauth URI を一度だけ表示する (enroll TOTP)."""
    enrolled = admin.enroll_user_totp(Hub(hub_home(home)), console_actor(), login_id)
    out.print(
        f"TOTP を登録しました (TOTP enrolled) for {enrolled.login_id}。本人の認証アプリに次の URI を登録してください:"
    )
    out.print(f"  {enrolled.uri}", highlight=False, soft_wrap=True)
    out.print("この URI は二度と表示されません（保存しないでください）(shown once; do not keep it)")


# --- terminals ----------------------------------------------------------------------------------------------


@terminal_app.command("enroll")
@handle_errors
def terminal_enroll(
    name: Annotated[str, typer.Argument(help="端末名 (terminal name, the certificate's CN)")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="端末の鍵と証明書の書き出し先 (directory for the files)")
    ],
    home: HomeOption = None,
) -> None:
    """専用端末を登録し、クライアント証明書を発行する (register a terminal and issue its certificate)."""
    terminal = admin.enroll_new_terminal(Hub(hub_home(home)), console_actor(), name, out_dir)
    out.print(f"端末を登録しました (terminal enrolled): {terminal.name}, serial {terminal.serial}")
    for path in terminal.files:
        out.print(f"  {path}", highlight=False)
    out.print(
        f"PKCS#12 のパスワード (bundle password, shown once): {terminal.bundle_password}", highlight=False
    )
    out.print("端末に導入したら、書き出したファイルは削除してください (delete the files once installed)")


@terminal_app.command("revoke")
@handle_errors
def terminal_revoke(
    name: Annotated[str, typer.Argument(help="端末名 (terminal name)")], home: HomeOption = None
) -> None:
    """端末の証明書を失効させ、その端末のセッションを直ちに終了する (revoke a terminal at once)."""
    done = admin.revoke_named_terminal(Hub(hub_home(home)), console_actor(), name)
    out.print(
        f"端末を失効させました (terminal revoked): {done.name} — 終了したセッション: {done.sessions_ended}"
    )


@terminal_app.command("list")
@handle_errors
def terminal_list(home: HomeOption = None) -> None:
    """登録端末の一覧 (list terminals)."""
    view = listing(
        "端末 (terminal)", "serial", "SHA-256", "登録 (enrolled)", "期限 (not after)", "状態 (status)"
    )
    for t in admin.list_terminals(Hub(hub_home(home)), console_actor()):
        status = "有効 (active)" if t.revoked_at is None else f"失効 (revoked {t.revoked_at:%Y-%m-%d})"
        view.add_row(
            t.name,
            t.serial,
            t.fingerprint_sha256[:16] + "…",
            f"{t.enrolled_at:%Y-%m-%d}",
            f"{t.not_after:%Y-%m-%d}",
            status,
        )
    out.print(view)


def register(app: typer.Typer) -> None:
    app.add_typer(dept_app, name="dept")
    app.add_typer(user_app, name="user")
    app.add_typer(terminal_app, name="terminal")

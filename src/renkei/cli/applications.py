"""Commands for applications, grants, download quotas and folder access lists.

Analysts apply and stewards decide in the web portal. The CLI is the admin's view, plus the admin's levers:
revoking a grant and setting quotas. It acts as ``cli:<os user>`` with admin rights. Every command calls the
same service functions (:mod:`renkei.hub.services`) as the portal, so each one passes the same choke point and
is on the audit record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from renkei.cli.common import HomeOption, handle_errors, hub_home, out, print_lines, styled
from renkei.cli.hub import cli_actor
from renkei.cli.listing import listing
from renkei.hub.access.authz import Actor
from renkei.hub.access.quotas import set_quota
from renkei.hub.home import Hub
from renkei.hub.services import applications, grants
from renkei.hub.services.applications import ApplicationDetail
from renkei.hub.services.grants import GrantDetail

application_app = typer.Typer(help="データ利用承認申請 (data-use applications)", no_args_is_help=True)
grant_app = typer.Typer(help="利用承認 (grants)", no_args_is_help=True)
quota_app = typer.Typer(help="ダウンロード制限 (download quotas)", no_args_is_help=True)
folder_app = typer.Typer(help="フォルダのアクセス制御 (folder access lists)", no_args_is_help=True)


def _actor() -> Actor:
    return Actor.cli(cli_actor())


def _yes_no(flag: bool) -> str:
    return "あり (yes)" if flag else "なし (no)"


@application_app.command("list")
@handle_errors
def application_list(home: HomeOption = None) -> None:
    """申請の一覧 (list applications)."""
    found = applications.list_applications(Hub(hub_home(home)), _actor())
    view = listing(
        "ID", "申請者 (applicant)", "状態 (state)", "利用期間 (period of use)", "所管課 (parts)", "個票"
    )
    for a in found:
        view.add_row(
            str(a.id),
            a.applicant,
            f"{a.state_label_ja} ({a.state})",
            f"{a.use_start} 〜 {a.use_end}",
            ", ".join(f"{p.department}: {p.state_label_ja}" for p in a.parts),
            _yes_no(a.row_level),
        )
    out.print(view)


@application_app.command("show")
@handle_errors
def application_show(
    application_id: Annotated[int, typer.Argument(help="申請 ID (application id)")], home: HomeOption = None
) -> None:
    """申請の詳細: 目的・成果物・所管課ごとの判断・利用承認 (purpose, outputs, decisions, grants)."""
    application, issued = applications.application_with_grants(Hub(hub_home(home)), _actor(), application_id)
    _print_application(application)
    if issued:
        out.print(_grant_table(issued))


def _print_application(a: ApplicationDetail) -> None:
    out.print(styled(f"申請 {a.id}", "bold"), f"— {a.state_label_ja} ({a.state})")
    out.print(f"申請者 (applicant): {a.applicant} {a.applicant_name}")
    out.print(f"申請日 (applied on): {a.applied_on}   利用期間 (period of use): {a.use_start} 〜 {a.use_end}")
    out.print(f"個票閲覧 (row-level viewing): {_yes_no(a.row_level)}")
    out.print("目的 (purpose):")
    print_lines(out, a.purpose, indent="  ")
    out.print("想定する成果物 (intended outputs):")
    print_lines(out, a.outputs, indent="  ")
    if a.closed_at is not None:
        out.print(f"終了 (closed): {a.closed_at:%Y-%m-%d %H:%M} by {a.closed_by} {a.close_reason}")
    parts = listing(
        "所管課 (department)", "判断 (decision)", "判断者 (by)", "日時 (at)", "コメント", "データ (snapshots)"
    )
    for p in a.parts:
        parts.add_row(
            p.department,
            p.state_label_ja,
            p.decided_by or "—",
            f"{p.decided_at:%Y-%m-%d %H:%M}" if p.decided_at else "—",
            p.comment or "—",
            ", ".join(p.snapshots),
        )
    out.print(parts)


def _grant_table(found: Sequence[GrantDetail]) -> Table:
    view = listing(
        "ID",
        "利用者 (user)",
        "データセット",
        "基準日・版 (snapshots)",
        "個票",
        "期間 (valid)",
        "状態",
        "申請",
    )
    for g in found:
        view.add_row(
            str(g.id),
            g.holder,
            g.dataset,
            ", ".join(g.snapshots),
            _yes_no(g.row_level),
            f"{g.valid_from} 〜 {g.valid_until}",
            str(g.status),
            str(g.application_id),
        )
    return view


@grant_app.command("list")
@handle_errors
def grant_list(
    user: Annotated[
        str | None, typer.Option("--user", help="利用者のログイン ID (only this user's grants)")
    ] = None,
    home: HomeOption = None,
) -> None:
    """利用承認の一覧 (list grants)."""
    out.print(_grant_table(grants.list_grants(Hub(hub_home(home)), _actor(), holder=user)))


@grant_app.command("revoke")
@handle_errors
def grant_revoke(
    grant_id: Annotated[int, typer.Argument(help="利用承認 ID (grant id)")],
    reason: Annotated[str, typer.Option("--reason", help="取消しの理由 (why; kept in the audit log)")],
    home: HomeOption = None,
) -> None:
    """利用承認を取り消す。次の要求から効く (revoke a grant; effective on the next request)."""
    grant = grants.revoke(Hub(hub_home(home)), _actor(), grant_id, reason)
    out.print(f"利用承認 {grant.id} を取り消しました (grant revoked): {grant.holder} / {grant.dataset}")


@quota_app.command("set")
@handle_errors
def quota_set(
    login: Annotated[str, typer.Argument(help="利用者のログイン ID (user)")],
    may_download: Annotated[
        bool | None,
        typer.Option("--may-download/--no-may-download", help="ダウンロードの可否 (downloads allowed)"),
    ] = None,
    files_per_day: Annotated[
        int | None, typer.Option("--files-per-day", min=0, help="1日のファイル数")
    ] = None,
    rows_per_file: Annotated[
        int | None, typer.Option("--rows-per-file", min=0, help="1ファイルの行数")
    ] = None,
    bytes_per_month: Annotated[
        int | None, typer.Option("--bytes-per-month", min=0, help="1か月のバイト数")
    ] = None,
    home: HomeOption = None,
) -> None:
    """ダウンロード制限を設定する。指定しない項目は変わらない (set download limits; others unchanged)."""
    hub = Hub(hub_home(home))
    with hub.session() as session:
        quota = set_quota(
            session,
            hub.audit,
            _actor(),
            login,
            may_download=may_download,
            files_per_day=files_per_day,
            rows_per_file=rows_per_file,
            bytes_per_month=bytes_per_month,
            defaults=hub.settings.quotas,
        )
        out.print(
            f"{login}: ダウンロード {_yes_no(quota.may_download)}, 1日 {quota.files_per_day} ファイル, "
            f"1ファイル {quota.rows_per_file:,} 行, 1か月 {quota.bytes_per_month:,} バイト"
        )


@folder_app.command("acl")
@handle_errors
def folder_acl_command(
    dataset: Annotated[str, typer.Argument(help="データセット名 (dataset)")], home: HomeOption = None
) -> None:
    """フォルダのアクセス一覧: 利用承認から導かれる (the folder's access list, derived from grants)."""
    acl = grants.dataset_acl(Hub(hub_home(home)), _actor(), dataset)
    out.print(styled(acl.dataset, "bold"), f"— 所管課 (owner): {acl.owner}")
    out.print(f"承認者 (stewards): {', '.join(acl.stewards) or '—'}")
    view = listing(
        "利用者 (user)", "氏名", "利用承認", "権限 (access)", "期間 (valid)", "基準日・版 (snapshots)"
    )
    for entry in acl.readers:
        view.add_row(
            entry.login_id,
            entry.display_name,
            str(entry.grant_id),
            "読取・個票 (read, rows)" if entry.row_level else "読取 (read)",
            f"{entry.valid_from} 〜 {entry.valid_until}",
            ", ".join(entry.snapshots),
        )
    out.print(view)


def register(app: typer.Typer) -> None:
    app.add_typer(application_app, name="application")
    app.add_typer(grant_app, name="grant")
    app.add_typer(quota_app, name="quota")
    app.add_typer(folder_app, name="folder")

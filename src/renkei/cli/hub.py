"""Commands of the hub (庁内データ連携基盤): init, senders, import, catalog, vault, audit."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.text import Text

from renkei.cli.common import (
    HomeOption,
    err,
    exit_for,
    handle_errors,
    hub_home,
    out,
    print_error,
    print_lines,
    styled,
)
from renkei.cli.listing import listing
from renkei.clock import JST
from renkei.errors import EXIT_AUDIT_UNSIGNED, EXIT_INTEGRITY, Location, RenkeiError
from renkei.faults import as_renkei_error
from renkei.hub.access.authz import Actor
from renkei.hub.audit import (
    TAIL_HEADERS,
    Checkpoint,
    load_audit_key,
    public_key_pem,
    tail_rows,
)
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub, init_hub, verify_vault
from renkei.hub.rotation import rotate_kek
from renkei.hub.services import catalog

if TYPE_CHECKING:
    from renkei.hub.services import inspection
from renkei.package import PACKAGE_SUFFIX

hub_app = typer.Typer(help="庁内データ連携基盤の設定 (hub setup)", no_args_is_help=True)
catalog_app = typer.Typer(help="カタログ: データセットとスナップショット (catalog)", no_args_is_help=True)
vault_app = typer.Typer(help="暗号化保管庫 (encrypted vault)", no_args_is_help=True)
audit_app = typer.Typer(help="監査ログ (tamper-evident audit log)", no_args_is_help=True)

EXIT_AUDIT_BROKEN = EXIT_INTEGRITY  # the log was tampered with (or the vault has a problem: `vault verify`)


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def console_actor() -> Actor:
    """Whoever runs the CLI on the hub: the admin role (they hold its keys), decided and audited as anyone."""
    return Actor.cli(cli_actor())


@hub_app.command("init")
@handle_errors
def hub_init(home: HomeOption = None) -> None:
    """基盤のホームを作成する: 鍵・カタログ・保管庫・受入箱 (create the hub's home)."""
    hub = init_hub(hub_home(home))
    out.print(f"基盤を作成しました (hub created): {hub.home}")
    out.print("送信側で次を実行して、この基盤を信頼させてください (on the sending side run):")
    out.print(f"  renkei sender trust-hub {hub.package_recipient()}", soft_wrap=True)


@hub_app.command("migrate")
@handle_errors
def hub_migrate(home: HomeOption = None) -> None:
    """カタログのスキーマを最新にする（既存の TOTP 秘密情報は鍵暗号化鍵で包む） (upgrade the catalog schema)."""
    from renkei.hub.migrate import upgrade  # noqa: PLC0415 (Alembic: only for this command)

    hub = Hub(hub_home(home))
    upgrade(hub.engine, kek=hub.kek)
    hub.audit.append(actor=cli_actor(), action=AuditAction.HUB_MIGRATE, details={})
    out.print("カタログのスキーマを最新にしました (catalog schema is up to date)")


@hub_app.command("public-key")
@handle_errors
def hub_public_key(home: HomeOption = None) -> None:
    """パッケージの暗号化先となる基盤の公開鍵を表示 (print the hub's age recipient)."""
    typer.echo(Hub(hub_home(home)).package_recipient())


@hub_app.command("add-sender")
@handle_errors
def hub_add_sender(
    name: Annotated[str, typer.Option("--name", help="送信元の名前 (sender name)")],
    public_key: Annotated[str, typer.Option("--public-key", help="送信元の Ed25519 公開鍵 (base64)")],
    home: HomeOption = None,
) -> None:
    """送信元（共通基盤）の署名公開鍵を登録する (register a sending system's public key)."""
    from renkei.hub.services import admin  # noqa: PLC0415 (the login stack: only for admin commands)

    admin.add_sender(Hub(hub_home(home)), console_actor(), name, _check_public_key(public_key))
    out.print(f"送信元を登録しました (sender registered): {name}")


def _check_public_key(value: str) -> str:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise RenkeiError(
            "Ed25519 公開鍵（base64）ではありません", "not a base64 Ed25519 public key"
        ) from None
    return value.strip()


@handle_errors
def import_packages(
    packages: Annotated[list[Path] | None, typer.Argument(help="封緘パッケージ (sealed packages)")] = None,
    inbox: Annotated[
        Path | None, typer.Option("--inbox", help="受入箱の全パッケージ (every package in DIR)")
    ] = None,
    home: HomeOption = None,
) -> None:
    """封緘パッケージを検証して保管庫に受け入れる (verify and import sealed packages)."""
    from renkei.hub.importer import ImportOutcome, PackageRejectedError  # noqa: PLC0415 (pyarrow: only here)
    from renkei.hub.services import admin  # noqa: PLC0415

    hub = Hub(hub_home(home))
    paths = list(packages or [])
    if inbox is not None:
        paths += sorted(inbox.glob(f"*{PACKAGE_SUFFIX}"))
    if not paths:
        raise RenkeiError(
            "受け入れるパッケージがありません", "no packages given", Location(inbox) if inbox else None
        )

    def report(path: Path, outcome: ImportOutcome | PackageRejectedError) -> None:
        if isinstance(outcome, PackageRejectedError):
            print_error(err, "拒否 (rejected)", outcome, style="red")
            return
        mark = "受入 (imported)" if outcome.status == "imported" else "受入済み (already imported)"
        out.print(f"{mark}: {outcome.resource} — {outcome.rows:,} 行 ← {path.name}")

    if admin.import_packages(hub, console_actor(), paths, report):
        raise typer.Exit(PackageRejectedError.exit_code)


@catalog_app.command("list")
@handle_errors
def catalog_list(home: HomeOption = None) -> None:
    """登録データセットの一覧 (list datasets)."""
    datasets = catalog.list_datasets(Hub(hub_home(home)), Actor.cli(cli_actor()))
    view = listing(
        "データセット", "名称 (title)", "所管課 (owner)", "期間数 (periods)", "最新 (latest)", "行数 (rows)"
    )
    for ds in datasets:
        latest = ds.latest
        view.add_row(
            ds.name,
            ds.title,
            ds.owner,
            str(len(ds.periods)),
            f"{latest.period} v{latest.version}" if latest else "—",
            f"{latest.rows:,}" if latest else "—",
        )
    out.print(view)


@catalog_app.command("show")
@handle_errors
def catalog_show(
    dataset: Annotated[str, typer.Argument(help="データセット名 (dataset)")], home: HomeOption = None
) -> None:
    """データセットの詳細: 期間・版・行数・所管課・列と処理 (periods, versions, columns, treatments)."""
    ds = catalog.dataset_detail(Hub(hub_home(home)), Actor.cli(cli_actor()), dataset)
    out.print(styled(ds.title, "bold"), f"({ds.name}) — 所管課 (owner): {ds.owner}")
    if ds.description:
        print_lines(out, ds.description)
    snaps = listing(
        "基準日 (period)", "版 (version)", "行数 (rows)", "バイト (bytes)", "送信元", "受入日時 (imported)"
    )
    for s in ds.snapshots:
        snaps.add_row(
            str(s.period),
            f"v{s.version}",
            f"{s.rows:,}",
            f"{s.bytes:,}",
            s.sender,
            f"{s.imported_at:%Y-%m-%d %H:%M}",
        )
    out.print(snaps)
    cols = listing("元の列 (source column)", "役割 (role)", "処理 (treatment)")
    for c in ds.columns:
        cols.add_row(c.source, c.role, c.treatment)
    out.print(cols)


@vault_app.command("verify")
@handle_errors
def vault_verify(home: HomeOption = None) -> None:
    """全スナップショットのハッシュ・復号可能性と監査ログを検査する (verify every snapshot and the audit log).

    終了コード (exit codes): 0 正常 (ok), 5 問題あり (problems found), 7/12/13 検査は済んだが監査ログに記録できない
    (checked, but the check could not be appended to the audit log: no space, database lost or busy).
    """
    hub = Hub(hub_home(home))
    problems = verify_vault(hub)
    report = hub.audit.verify()
    for p in problems:
        err.print(styled("問題 (problem)", "red"), str(p), highlight=False)
    ok = not problems and report.ok
    snapshots = len(hub.vault.snapshots()) if hub.vault.root.is_dir() else 0
    unrecorded = None
    if report.ok:
        unrecorded = _append_or_fault(
            hub,
            action=AuditAction.VAULT_VERIFY,
            result="ok" if ok else "error",
            details={"snapshots": snapshots, "problems": len(problems), "audit_ok": True},
        )
    out.print(f"保管庫 (vault): {snapshots} スナップショット, 問題 {len(problems)} 件")
    out.print(f"監査ログ (audit log): {'正常 (ok)' if report.ok else report.message_ja}")
    if not report.ok:  # appending would bury the evidence under a new head
        err.print(
            "監査ログが壊れているため、この検査は監査ログに記録しません"
            " (the audit log is broken: this check is not appended to it)"
        )
    if not ok:
        raise typer.Exit(EXIT_AUDIT_BROKEN)
    if unrecorded is not None:
        err.print(
            "検査は完了しましたが、監査ログに記録できませんでした (the check is done, but it could not be"
            " appended to the audit log)",
        )
        raise exit_for(unrecorded)


def _append_or_fault(
    hub: Hub, action: AuditAction, result: str, details: dict[str, object]
) -> RenkeiError | None:
    """Append a check's own audit entry; a full disk or a lost database is returned, not raised, so that the
    check's findings are still reported (``vault verify`` on a full disk)."""
    try:
        hub.audit.append(actor=cli_actor(), action=action, result=result, details=details)
    except Exception as exc:
        fault = as_renkei_error(exc)
        if fault is None or isinstance(exc, RenkeiError):
            raise
        return fault
    return None


@vault_app.command("rotate-key")
@handle_errors
def vault_rotate_key(home: HomeOption = None) -> None:
    """鍵暗号化鍵を更新し、データ鍵を包み直す。データは書き換えない (rotate the KEK; data untouched)."""
    hub = Hub(hub_home(home))
    done = rotate_kek(hub, actor=cli_actor())  # audits its intent before and its outcome after
    out.print(
        f"データ鍵 {done.data_keys} 個と TOTP 秘密情報 {done.totp_secrets} 件を新しい鍵暗号化鍵で包み直しました"
        f" (rewrapped {done.data_keys} data keys and {done.totp_secrets} TOTP secrets)"
    )


@audit_app.command("verify")
@handle_errors
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="外部に保管したチェックポイント")
    ] = None,
    max_unsigned_hours: Annotated[
        float | None,
        typer.Option(
            "--max-unsigned-hours",
            min=0,
            help="署名済みチェックポイントで保護されない記録を許す時間。既定は設定 audit.max_unsigned_hours"
            " (hours an entry may stay unsigned; default: the setting audit.max_unsigned_hours, 24)",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """監査ログの改ざん・削除・並べ替え・挿入・切り詰めを検出する (verify the audit log).

    終了コード (exit codes): 0 正常 (ok), 5 改ざん等を検出 (tampering found),
    8 古い記録が署名済みチェックポイントで保護されていない (old entries not covered by a signed checkpoint).
    """
    hub = Hub(hub_home(home))
    if max_unsigned_hours is None:
        max_unsigned_hours = hub.settings.audit.max_unsigned_hours
    kept = Checkpoint.from_json(checkpoint.read_text(encoding="utf-8")) if checkpoint else None
    report = hub.audit.verify(kept)
    for warning in report.warnings:
        err.print(f"警告 (warning): {warning}", highlight=False, soft_wrap=True)
    if not report.ok:
        err.print(
            Text.assemble(styled("監査ログの異常 (audit log does not verify)", "red"), ":"), report.message_ja
        )
        err.print(f"  ({report.message_en})", soft_wrap=True)
        raise typer.Exit(EXIT_AUDIT_BROKEN)
    max_age = dt.timedelta(hours=max_unsigned_hours)
    if report.unsigned_too_long(max_age, dt.datetime.now(dt.UTC)):
        unsigned = (
            f"監査ログの seq {report.covered} 以降が {max_unsigned_hours:g} 時間を超えて署名されていません"
        )
        err.print(styled(unsigned, "red"), "（`renkei audit checkpoint` を定期実行してください）", sep="")
        err.print(
            f"  (entries from seq {report.covered} on have gone unsigned for over {max_unsigned_hours:g} hours;"
            " run `renkei audit checkpoint` on a schedule)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_AUDIT_UNSIGNED)
    out.print(f"監査ログは正常です (audit log verifies): {report.size} 件")


@audit_app.command("checkpoint")
@handle_errors
def audit_checkpoint(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="控えの書き出し先 (also write it to FILE, to keep outside)")
    ] = None,
    home: HomeOption = None,
) -> None:
    """署名付きチェックポイントを作成する: 定期実行用 (sign a checkpoint; run it on a schedule).

    データベースとホームの audit_checkpoints.jsonl に記録し、--out があればそのファイルにも書き出す
    (stored in the database and appended to <home>/audit_checkpoints.jsonl; --out writes a copy to keep outside).
    """
    cp = Hub(hub_home(home)).audit.checkpoint()
    where = ""
    if out_file is not None:
        out_file.write_text(cp.to_json(), encoding="utf-8")
        where = f" → {out_file}"
    out.print(f"チェックポイント (checkpoint): size {cp.size}, root {cp.root_hex[:16]}…{where}")


@audit_app.command("tail")
@handle_errors
def audit_tail(
    n: Annotated[int, typer.Option("-n", min=1, help="件数 (entries)")] = 20, home: HomeOption = None
) -> None:
    """監査ログの末尾を表示 (show the last entries; control characters are shown escaped)."""
    from renkei.hub.services.audit import tail_audit  # noqa: PLC0415 (as the inspection: only this command)

    entries = tail_audit(Hub(hub_home(home)), console_actor(), n)
    view = listing(
        TAIL_HEADERS[0],
        "日時・主体・操作・結果 / 対象・理由 / 詳細 (time UTC, actor, action, result / resource, reason / details)",
    )
    for seq, at, actor, action, resource, result, reason, details in tail_rows(
        entries
    ):  # one entry on up to three lines, so the details are never cut at 80 columns
        lines = [f"{at}  {actor}  {action}  {result}", f"{resource}  {reason}".rstrip(), details]
        view.add_row(seq, Text("\n".join(line for line in lines if line not in {"", "{}"})))
    out.print(view, markup=False)


@audit_app.command("inspection")
@handle_errors
def audit_inspection(
    month: Annotated[str, typer.Option("--month", help="点検する月 YYYY-MM (the city's month to inspect)")],
    home: HomeOption = None,
) -> None:
    """月次点検: ログイン・端末・データ利用・出力・承認・拒否・異常 (the monthly inspection report)."""
    from renkei.hub.services import inspection  # noqa: PLC0415 (its rule modules would slow every command)

    hub = Hub(hub_home(home))  # the home is checked before anything else
    report = inspection.monthly_inspection(hub, console_actor(), inspection.parse_month(month))
    for line in inspection_lines(report):
        out.print(line, highlight=False, soft_wrap=True)


def inspection_lines(report: inspection.InspectionReport) -> list[str]:
    """The report as plain lines of at most 80 columns (login ids and dataset names are short ASCII)."""
    v = report.verification
    state = "正常 (ok)" if v.ok else f"異常 (FAILED) seq {v.first_bad_seq}"
    start, end = report.working_hours
    lines = [
        f"監査ログの月次点検 (monthly inspection) {report.label}",
        f"作成 (generated): {report.generated_at.astimezone(JST):%Y-%m-%d %H:%M} JST, {report.generated_by}"[
            :80
        ],
        f"検証 (verification): {state}",
        f"  全 {v.size} 件・署名で保護 {v.covered} 件・当月の署名 {v.checkpoints_in_month} 回",
        f"当月の記録 (entries): {report.entries}",
        "",
        "ログイン (logins)                          成功 (ok)   拒否 (refused)",
    ]
    lines += [f"  {r.actor[:36]:<36} {r.logins:>9} {r.refused:>16}" for r in report.logins] or [
        "  なし (none)"
    ]
    lines += ["", "未登録・失効端末からのアクセス (unregistered or revoked terminals)"]
    lines += [
        f"  {r.at.astimezone(JST):%m-%d %H:%M} {r.client_addr[:20]:<20} {r.terminal[:16]:<16} {r.reason[:21]}"
        for r in report.terminal_refusals
    ] or ["  なし (none)"]
    lines += ["", "データ利用 (data access)          データセット     集計 (reads)  個票 (rows)"]
    lines += [
        f"  {r.actor[:30]:<30} {r.dataset[:16]:<16} {r.reads:>12} {r.row_reads:>12}"
        for r in report.data_access
    ] or ["  なし (none)"]
    lines += ["", "出力 (exports)"]
    lines += [
        f"  {r.at.astimezone(JST):%m-%d %H:%M} {r.actor[:16]:<16} {r.resource[:14]:<14} {r.bytes:>10} B\n"
        f"    SHA-256 {r.sha256}"
        for r in report.exports
    ] or ["  なし (none)"]
    if report.quota:
        lines += ["  出力量 (quota used this month)"]
        lines += [
            f"  {q.actor[:30]:<30} {q.files:>4} 件 {q.bytes:>12} B / "
            + (f"{q.bytes_per_month} B" if q.bytes_per_month is not None else "既定 (default)")
            for q in report.quota
        ]
    lines += ["", "承認・却下・取消 (approvals, rejections, revocations)"]
    lines += [_entry_line(r) for r in report.decisions] or ["  なし (none)"]
    lines += ["", "管理操作 (administration)"]
    lines += [_entry_line(r) for r in report.admin_changes] or ["  なし (none)"]
    lines += ["", f"拒否 (denials): {report.denial_total}"]
    lines += [f"  {d.actor[:30]:<30} {d.access[:30]:<30} {d.count:>8}" for d in report.denials]
    lines += [
        "",
        f"注意 (unusual): 勤務時間外 (outside {start}:00-{end}:00)、"
        f"1 日 {report.repeated_denials} 回以上の拒否",
    ]
    kinds = {"off_hours": "時間外 (off hours)", "repeated_denials": "拒否の繰り返し (denials)"}
    lines += [
        f"  {u.day:%m-%d} {u.actor[:24]:<24} {kinds[u.kind]} {u.count} 件 seq {u.first_seq}"
        for u in report.unusual
    ] or ["  なし (none)"]
    return [part for line in lines for part in line.split("\n")]


def _entry_line(row: inspection.Listed) -> str:
    at = row.at.astimezone(JST)
    return f"  {at:%m-%d %H:%M} {row.actor[:16]:<16} {row.action[:22]:<22} {row.resource[:26]}"


@audit_app.command("public-key")
@handle_errors
def audit_public_key(home: HomeOption = None) -> None:
    """チェックポイント検証用の公開鍵 (PEM) を表示: 外部の保管者に渡す (print the checkpoint verification key)."""
    typer.echo(public_key_pem(load_audit_key(hub_home(home))), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")
    app.command("import")(import_packages)
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(vault_app, name="vault")
    app.add_typer(audit_app, name="audit")

"""``renkei backup`` and ``renkei restore``: parse, call :mod:`renkei.hub.backup`, render (docs/backup.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from renkei.cli.common import HomeOption, err, handle_errors, hub_home, out
from renkei.cli.hub import console_actor
from renkei.hub.home import Hub

STAGES = {
    "catalog": "カタログ (catalog)",
    "vault": "保管庫 (vault)",
    "verify": "検証 (verify)",
    "restore-catalog": "カタログ (catalog)",
    "restore-vault": "保管庫 (vault)",
}


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A bar per stage on stderr, shown only on a terminal; the backup's steps are tables and files."""
    if not err.is_terminal:
        yield lambda stage, done, total: None
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, object] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        yield update


@handle_errors
def backup_command(
    to: Annotated[
        Path,
        typer.Option("--to", help="作成する新しいディレクトリ (a new directory to create)"),
    ],
    home: HomeOption = None,
) -> None:
    """基盤をバックアップする: 保管庫・カタログ・監査ログ。鍵は含めない (back up the hub; keys excluded)."""
    from renkei.hub.backup import backup  # noqa: PLC0415 (only for this command)

    with stage_progress() as progress:
        done = backup(Hub(hub_home(home)), console_actor(), to, progress=progress)
    out.print("バックアップを作成しました (backup written):")
    out.print(f"  {done.path}", soft_wrap=True)
    out.print(f"  スナップショット (snapshots): {done.snapshots}")
    out.print(f"  カタログの行 (catalog rows): {done.rows:,}")
    out.print(f"  監査ログ (audit entries): {done.audit_size:,}")
    out.print(f"  ファイル (files): {done.files:,}, {done.bytes:,} bytes")
    out.print(f"  目録 SHA-256 (manifest): {done.manifest_sha256[:16]}…")
    out.print("鍵は含みません。鍵の保管者が別に保管してください (keys are not in it)")


@handle_errors
def restore_command(
    source: Annotated[Path, typer.Option("--from", help="バックアップのディレクトリ (backup directory)")],
    home: Annotated[Path, typer.Option("--home", help="復元先の新しいホーム（空であること） (new home)")],
    keys: Annotated[
        Path,
        typer.Option("--keys", help="基盤の鍵ファイルのあるディレクトリ (directory holding the hub's keys)"),
    ],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="復元先の空のデータベース。省略時はホームの SQLite (empty database; default: SQLite)",
        ),
    ] = None,
) -> None:
    """バックアップから新しいホームに基盤を復元する (restore a backup into a fresh home)."""
    from renkei.hub.backup import restore  # noqa: PLC0415

    with stage_progress() as progress:
        done = restore(source, home, keys, console_actor(), database_url=database_url, progress=progress)
    out.print("復元しました (restored):")
    out.print(f"  {done.home}", soft_wrap=True)
    out.print(f"  データベース (database): {done.database}, スキーマ {done.revision}")
    out.print(f"  スナップショット (snapshots): {done.snapshots}")
    out.print(f"  カタログの行 (catalog rows): {done.rows:,}")
    out.print("  保管庫と監査ログを検証しました (vault and audit log verify)")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)

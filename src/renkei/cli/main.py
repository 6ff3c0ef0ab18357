"""The ``renkei`` command.

Command modules import heavy libraries (pyarrow, SQLAlchemy, scipy, FastAPI), so none is imported at start-up:
:data:`COMMANDS` names each top-level command's module and help line, and :class:`LazyGroup` imports a module
the first time one of its commands is resolved. ``renkei --help`` lists every command from :data:`COMMANDS`
alone; a test checks that each help line there is the command's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import typer
from typer._click import Command, Context, HelpFormatter  # typer vendors click; its groups take these
from typer.core import TyperCommand, TyperGroup

from renkei import __version__


@dataclass(frozen=True, slots=True)
class Entry:
    module: str  # its ``register(app)`` adds the command
    help: str  # the first line of the command's help, shown by ``renkei --help``


COMMANDS: dict[str, Entry] = {
    "extract": Entry(
        "renkei.cli.sending",
        "仮名加工して Parquet とマニフェストを書き出す (pseudonymize a core-system export).",
    ),
    "preview": Entry(
        "renkei.cli.sending",
        "加工結果を標準出力に表示する。何も書き込まない (print transformed rows; writes nothing).",
    ),
    "synth": Entry(
        "renkei.cli.sending", "架空の神戸型都市の基幹系 CSV を生成する (generate a synthetic Kobe-like city)."
    ),
    "import": Entry(
        "renkei.cli.hub", "封緘パッケージを検証して保管庫に受け入れる (verify and import sealed packages)."
    ),
    "table": Entry(
        "renkei.cli.analysis",
        "集計表を作成（秘匿処理つき）: build a disclosure-controlled table without writing SQL.",
    ),
    "query": Entry(
        "renkei.cli.analysis", "SQL で集計（結果は秘匿処理の対象）: run SQL in your sandboxed workspace."
    ),
    "export": Entry(
        "renkei.cli.analysis",
        "集計表をファイルに出力（ダウンロード上限の範囲で）: export a released table as CSV or XLSX.",
    ),
    "demo": Entry(
        "renkei.cli.demo",
        "架空都市で一連の流れを実演する: 生成 → 仮名加工・封緘 → 受入 → 検証 → 分析 → ポータル (run the whole flow).",
    ),
    "serve": Entry("renkei.cli.web", "ポータル（API と画面）を起動する (serve the web portal)."),
    "sender": Entry("renkei.cli.sending", "共通基盤（送信側）の設定 (sending-side setup)"),
    "hub": Entry("renkei.cli.hub", "庁内データ連携基盤の設定 (hub setup)"),
    "catalog": Entry("renkei.cli.hub", "カタログ: データセットとスナップショット (catalog)"),
    "vault": Entry("renkei.cli.hub", "暗号化保管庫 (encrypted vault)"),
    "audit": Entry("renkei.cli.hub", "監査ログ (tamper-evident audit log)"),
    "backup": Entry(
        "renkei.cli.backup",
        "基盤をバックアップする: 保管庫・カタログ・監査ログ。鍵は含めない (back up the hub; keys excluded).",
    ),
    "restore": Entry(
        "renkei.cli.backup",
        "バックアップから新しいホームに基盤を復元する (restore a backup into a fresh home).",
    ),
    "dept": Entry("renkei.cli.access", "部署（所管課など）の登録と一覧 (departments)"),
    "user": Entry(
        "renkei.cli.access",
        "指名職員: 指名・無効化・パスワード・職員証・TOTP (designated users and their authenticators)",
    ),
    "terminal": Entry("renkei.cli.access", "専用端末: 登録・失効・一覧 (dedicated terminals)"),
    "application": Entry("renkei.cli.applications", "データ利用承認申請 (data-use applications)"),
    "grant": Entry("renkei.cli.applications", "利用承認 (grants)"),
    "quota": Entry("renkei.cli.applications", "ダウンロード制限 (download quotas)"),
    "folder": Entry("renkei.cli.applications", "フォルダのアクセス制御 (folder access lists)"),
    "analysis": Entry("renkei.cli.analysis", "保存した分析 (saved analyses)"),
    "review": Entry("renkei.cli.analysis", "集計表の審査（所管課のデータ管理者） (review of tables)"),
    "opendata": Entry(
        "renkei.cli.opendata", "オープンデータ公開（差分プライバシー） (open data with differential privacy)"
    ),
}


@cache
def registered(module: str) -> typer.Typer:
    """The Typer app a module's ``register(app)`` fills, its commands not built yet; imported once per process."""
    app = typer.Typer()
    importlib.import_module(module).register(app)
    return app


def module_commands(module: str) -> dict[str, Command]:
    """Every command a module registers (built anew: each is a new object)."""
    return dict(typer.main.get_group(registered(module)).commands)


@cache
def module_command(module: str, name: str) -> Command:
    """One command of a module, built once per process: building reads each parameter of each function of its
    subcommands, so a run builds only the command it runs, not the module's others (``catalog list`` does not
    build ``hub``, ``vault``, ``audit`` and ``import``)."""
    app = registered(module)
    one = typer.Typer()
    one.registered_commands = [info for info in app.registered_commands if info.name == name]
    one.registered_groups = [info for info in app.registered_groups if info.name == name]
    if not one.registered_commands and not one.registered_groups:  # registered without a name: build them all
        return module_commands(module)[name]
    return typer.main.get_group(one).commands[name]


class Listed(TyperCommand):
    """A command as ``--help`` lists it: its name and help line, its module not imported."""


class LazyGroup(TyperGroup):
    """The top-level group: its commands are :data:`COMMANDS`, each imported when first resolved."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, Listed(name=name, help=entry.help, callback=None))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, Listed) and not self._listing:
            command = self.commands[cmd_name] = module_command(COMMANDS[cmd_name].module, cmd_name)
        return command

    def invoke(self, ctx: Context) -> Any:
        """Every command runs inside this: an error or fault it lets through becomes its message and exit code
        here (``renkei.cli.common.exit_for``, the one choke point), so no command can leak a traceback for one."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from renkei.cli.common import CLI_CONTROL, exit_for  # noqa: PLC0415 (only when something failed)

            if isinstance(exc, CLI_CONTROL):
                raise
            raise exit_for(exc) from None

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        with self._listed():
            super().format_help(ctx, formatter)

    @contextmanager
    def _listed(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False


app = typer.Typer(
    name="renkei",
    help="renkei (連携): 庁内データ連携基盤 — 共通基盤での仮名加工と、基盤での蓄積・分析。",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"renkei {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="版を表示 (show version)"
    ),
) -> None:
    """renkei (連携): pseudonymize on the sending side, accumulate and analyse on the hub."""


if __name__ == "__main__":
    app()

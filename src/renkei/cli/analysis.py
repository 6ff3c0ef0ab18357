"""``renkei table``, ``renkei query``, ``renkei export``: the analysis path from a registered terminal's console.

Each command logs the staff member in as the portal does (ID, password, TOTP, on a registered terminal), opens a
workspace over exactly their granted snapshots, calls one service function, and renders. Passwords and codes
are prompted for (or read from RENKEI_PASSWORD / RENKEI_TOTP for scripts) and never echoed or logged.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from renkei.cli.common import HomeOption, err, handle_errors, hub_home, out, parse_date, print_lines
from renkei.cli.listing import print_wide
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import ExportFormat
from renkei.hub.home import Hub
from renkei.hub.tables.files import Cell
from renkei.hub.tables.request import (
    AgeBand,
    Category,
    Dimension,
    Filter,
    HouseholdSize,
    Link,
    Measure,
    Period,
    SchoolAge,
    TableRequest,
)

OutputFormat = Literal["table", "csv", "json"]
UserOption = Annotated[str, typer.Option("--user", help="ログイン ID (your login ID)")]
TerminalOption = Annotated[
    str, typer.Option("--terminal", help="この端末の登録名 (this terminal's registered name)")
]
FormatOption = Annotated[str, typer.Option("--format", help="table | csv | json")]
SaveOption = Annotated[
    str | None,
    typer.Option("--save", help="定義をこの名前で保存（結果は保存しません） (save the definition)"),
]


class CliInputError(RenkeiError):
    """A command-line value that cannot be used as given."""


def login(hub: Hub, login_id: str, terminal: str) -> Actor:
    """Log in as the portal does; the password and the TOTP code are prompted for, never echoed."""
    password = os.environ.get("RENKEI_PASSWORD") or typer.prompt("パスワード (password)", hide_input=True)
    code = os.environ.get("RENKEI_TOTP") or typer.prompt("確認コード (TOTP code)", hide_input=True)
    return service.console_login(hub, login_id, terminal, password, code)


def parse_dimension(text: str) -> Dimension:
    """``age:5`` (5-year bands), ``age:5:90`` (top band 90+), ``school_age``, ``period``, ``household_size``,
    or any categorical column (``住所_ward``, ``性別``)."""
    name, *args = text.split(":")
    try:
        numbers = [int(a) for a in args]
    except ValueError:
        raise CliInputError(f"--by {text}: 数値が不正です", f"--by {text}: bad number", None) from None
    if name == "age":
        return AgeBand(width=numbers[0] if numbers else 5, top=numbers[1] if len(numbers) > 1 else 100)
    if args:
        raise CliInputError(
            f"--by {text}: {name} は引数をとりません", f"--by {text}: {name} takes no argument", None
        )
    simple: dict[str, Dimension] = {
        "school_age": SchoolAge(),
        "period": Period(),
        "household_size": HouseholdSize(top=6),
    }
    return simple.get(name) or Category(column=name)


def parse_measure(text: str) -> Measure:
    kind, _, column = text.partition(":")
    return Measure.model_validate({"kind": kind, "column": column or None})


def parse_filter(text: str) -> Filter:
    """``col=a,b`` (in), ``col!=a,b`` (not in), ``col=65..`` or ``col=0..14`` (between)."""
    column, sep, values = text.partition("!=") if "!=" in text else text.partition("=")
    if not sep or not column:
        raise CliInputError(
            f"--filter {text}: 列=値 の形で指定してください", f"--filter {text}: use column=values", None
        )
    if ".." in values:
        low, _, high = values.partition("..")
        return Filter(
            column=column, op="between", low=int(low) if low else None, high=int(high) if high else None
        )
    items: list[str | int] = [int(v) if v.lstrip("-").isdigit() else v for v in values.split(",") if v]
    return Filter(column=column, op="not_in" if sep == "!=" else "in", values=items)


def build_request(
    dataset: str,
    by: Sequence[str],
    measure: str,
    filters: Sequence[str],
    links: Sequence[str],
    periods: Sequence[str],
    title: str,
) -> TableRequest:
    try:
        return TableRequest(
            dataset=dataset,
            periods=[parse_date(p, "--period") for p in periods],
            filters=[parse_filter(f) for f in filters],
            links=[_link(link) for link in links],
            dimensions=[parse_dimension(d) for d in by],
            measure=parse_measure(measure),
            title=title,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CliInputError(
            f"集計表の指定が不正です: {problems}", f"invalid table request: {problems}", None
        ) from None


def _link(text: str) -> Link:
    """``kaigo`` (persons found in kaigo), ``!kaigo`` (not found), ``household:jido_teate`` (households)."""
    present = not text.startswith("!")
    level, _, dataset = text.lstrip("!").rpartition(":")
    return Link(dataset=dataset, present=present, level="household" if level == "household" else "person")


def render(
    header: Sequence[str], rows: Sequence[Sequence[Cell]], notes: Sequence[str], fmt: str, title: str = ""
) -> None:
    if fmt == "json":
        out.print_json(
            json.dumps(
                {"header": list(header), "rows": [list(r) for r in rows], "notes": list(notes)},
                ensure_ascii=False,
                default=str,
            )
        )
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        print_lines(
            out, buffer.getvalue().removesuffix("\n")
        )  # a quoted newline in a cell stays a line break
        return
    if fmt != "table":
        raise CliInputError(
            f"--format {fmt}: table / csv / json のいずれかです", f"--format {fmt}: table, csv or json", None
        )
    shown = [["" if v is None else str(v) for v in row] for row in rows]
    print_wide(out, [str(h) for h in header], shown, title=title or None, right={len(header) - 1})
    for note in notes:
        out.print(note, markup=False, highlight=False)


@handle_errors
def table_command(
    dataset: Annotated[str, typer.Option("--dataset", help="基にするデータセット (base dataset), e.g. juki")],
    by: Annotated[list[str], typer.Option("--by", help="表側・表頭 (dimension): age:5, 住所_ward, period …")],
    user: UserOption,
    terminal: TerminalOption,
    measure: Annotated[
        str, typer.Option("--measure", help="persons | households | sum:列 | mean:列 | median:列")
    ] = "persons",
    filters: Annotated[list[str] | None, typer.Option("--filter", help="列=値,値 / 列!=値 / 列=65..")] = None,
    links: Annotated[
        list[str] | None, typer.Option("--link", help="連携: kaigo / !kaigo / household:jido_teate")
    ] = None,
    periods: Annotated[
        list[str] | None, typer.Option("--period", help="基準日 YYYY-MM-DD (default: all granted)")
    ] = None,
    title: Annotated[str, typer.Option("--title", help="表題 (title)")] = "",
    fmt: FormatOption = "table",
    show_sql: Annotated[bool, typer.Option("--show-sql", help="生成した SQL を表示 (show the SQL)")] = False,
    save: SaveOption = None,
    home: HomeOption = None,
) -> None:
    """集計表を作成（秘匿処理つき）: build a disclosure-controlled table without writing SQL."""
    request = build_request(dataset, by, measure, filters or [], links or [], periods or [], title)
    hub = Hub(hub_home(home))
    actor = login(hub, user, terminal)
    with err.status("ワークスペースを準備し集計しています (opening the workspace and computing)…"):
        outcome = service.table_for(hub, actor, request)
    if save:
        service.save_analysis(hub, actor, save, request)
    render(outcome.shown.header, outcome.shown.rows, outcome.shown.notes, fmt, request.title)
    err.print(
        f"集計表 {outcome.release_id} として記録しました (released as {outcome.release_id}); "
        f"出力: renkei export {outcome.release_id}",
        markup=False,
        highlight=False,
    )
    if show_sql:
        print_lines(err, outcome.sql)


@handle_errors
def query_command(
    sql: Annotated[str, typer.Argument(help="SQL（SELECT 文 1 つ）; '-' で標準入力から")],
    user: UserOption,
    terminal: TerminalOption,
    fmt: FormatOption = "table",
    save: SaveOption = None,
    review: Annotated[
        str | None,
        typer.Option(
            "--request-review", help="自動で秘匿処理できない結果を、この理由で審査に出す (send for review)"
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """SQL で集計（結果は秘匿処理の対象）: run SQL in your sandboxed workspace."""
    text = typer.get_text_stream("stdin").read() if sql == "-" else sql
    hub = Hub(hub_home(home))
    actor = login(hub, user, terminal)
    with err.status("ワークスペースで実行しています (running in the workspace)…"):
        result = service.sql_for(hub, actor, text, review_reason=review)
    if save:
        service.save_analysis(hub, actor, save, text)
    _render_sql(result, fmt)


def _render_sql(result: service.SqlResult, fmt: str) -> None:
    render(result.header, result.rows, result.notes, fmt)
    if result.release_id is not None:
        err.print(
            f"集計表 {result.release_id} として記録しました (released as {result.release_id})", markup=False
        )


@handle_errors
def export_command(
    release: Annotated[int, typer.Argument(help="集計表の番号 (release id)")],
    user: UserOption,
    terminal: TerminalOption,
    output: Annotated[Path, typer.Option("--out", help="書き出すファイル (file to write)")],
    fmt: Annotated[str, typer.Option("--format", help="csv | xlsx")] = "xlsx",
    home: HomeOption = None,
) -> None:
    """集計表をファイルに出力（ダウンロード上限の範囲で）: export a released table as CSV or XLSX."""
    try:
        file_format = ExportFormat(fmt)
    except ValueError:
        raise CliInputError(
            f"--format {fmt}: csv か xlsx です", f"--format {fmt}: csv or xlsx", None
        ) from None
    if output.exists():
        raise CliInputError(
            f"{output} は既に存在します（上書きしません）", f"{output} exists; not overwriting", None
        )
    hub = Hub(hub_home(home))
    actor = login(hub, user, terminal)
    exported = service.export_release(hub, actor, release, file_format)
    _write_new(output, exported.content)
    out.print(
        f"{output} に出力しました (written): {len(exported.content):,} bytes, SHA-256 {exported.sha256}",
        markup=False,
    )


def _write_new(path: Path, content: bytes) -> None:
    """Write all or nothing: a temporary file in the same directory, renamed into place."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.link(partial, path)  # fails if the target appeared meanwhile: never overwrite
    finally:
        partial.unlink(missing_ok=True)


analysis_app = typer.Typer(help="保存した分析 (saved analyses)", no_args_is_help=True)


@analysis_app.command("list")
@handle_errors
def analysis_list(user: UserOption, terminal: TerminalOption, home: HomeOption = None) -> None:
    """保存した分析の一覧 (your saved analyses)."""
    hub = Hub(hub_home(home))
    saved = service.saved_analyses(hub, login(hub, user, terminal))
    rows: list[list[Cell]] = [
        [s.name, s.kind, s.theme, s.updated_at.isoformat(timespec="minutes")] for s in saved
    ]
    render(["名前 (name)", "種類 (kind)", "テーマ (theme)", "更新 (updated)"], rows, [], "table")


@analysis_app.command("run")
@handle_errors
def analysis_run(
    name: Annotated[str, typer.Argument(help="保存した分析の名前 (name)")],
    user: UserOption,
    terminal: TerminalOption,
    periods: Annotated[
        list[str] | None, typer.Option("--period", help="基準日 (default: all granted)")
    ] = None,
    fmt: FormatOption = "table",
    home: HomeOption = None,
) -> None:
    """保存した分析を最新の期間で再実行 (re-run a saved analysis, e.g. on a newly imported period)."""
    hub = Hub(hub_home(home))
    actor = login(hub, user, terminal)
    dates = [parse_date(p, "--period") for p in periods or []]
    with err.status("再実行しています (re-running)…"):
        outcome = service.rerun_saved(hub, actor, name, periods=dates)
    if isinstance(outcome, service.SqlResult):
        _render_sql(outcome, fmt)
    else:
        render(outcome.shown.header, outcome.shown.rows, outcome.shown.notes, fmt, name)


review_app = typer.Typer(help="集計表の審査（所管課のデータ管理者） (review of tables)", no_args_is_help=True)


@review_app.command("list")
@handle_errors
def review_list(
    user: UserOption, terminal: TerminalOption, fmt: FormatOption = "table", home: HomeOption = None
) -> None:
    """審査待ちの集計表 (tables waiting for your decision)."""
    hub = Hub(hub_home(home))
    waiting = service.in_review_for(hub, login(hub, user, terminal))
    rows: list[list[Cell]] = [[r.id, ", ".join(r.datasets), r.review_reason, r.sql[:80]] for r in waiting]
    render(["番号 (id)", "データセット", "理由 (reason)", "SQL"], rows, [], fmt)


@review_app.command("decide")
@handle_errors
def review_decide(
    release: Annotated[int, typer.Argument(help="集計表の番号 (release id)")],
    user: UserOption,
    terminal: TerminalOption,
    comment: Annotated[str, typer.Option("--comment", help="理由 (the reason; kept in the audit log)")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="承認か却下 (approve or reject)")
    ] = False,
    home: HomeOption = None,
) -> None:
    """審査を決定 (approve or reject a table in review)."""
    hub = Hub(hub_home(home))
    decided = service.decide_review(
        hub, login(hub, user, terminal), release, approve=approve, comment=comment
    )
    out.print(f"集計表 {decided.id}: {decided.status}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("table")(table_command)
    app.command("query")(query_command)
    app.command("export")(export_command)
    app.add_typer(analysis_app, name="analysis")
    app.add_typer(review_app, name="review")

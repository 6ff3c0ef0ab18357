"""``renkei opendata preview|publish``: a released table as open data, with differential privacy.

Thin: log in as the portal does, call :mod:`renkei.hub.analysis.opendata`, render. The preview spends
nothing; publishing spends the privacy budget and writes the CSV and its release record (JSON) beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renkei.cli.analysis import (
    CliInputError,
    FormatOption,
    TerminalOption,
    UserOption,
    _write_new,
    login,
    render,
)
from renkei.cli.common import HomeOption, err, handle_errors, hub_home, out
from renkei.hub.analysis.opendata import OpenDataTable, preview_opendata, publish_opendata
from renkei.hub.home import Hub

ReleaseArgument = Annotated[int, typer.Argument(help="集計表の番号 (release id)")]
EpsilonOption = Annotated[
    float | None,
    typer.Option(
        "--epsilon",
        help="使うプライバシー予算 ε (epsilon to spend; optional only if the policy asks no DP)",
    ),
]

opendata_app = typer.Typer(
    help="オープンデータ公開（差分プライバシー） (open data with differential privacy)", no_args_is_help=True
)


@opendata_app.command("preview")
@handle_errors
def preview_command(
    release: ReleaseArgument,
    user: UserOption,
    terminal: TerminalOption,
    epsilon: EpsilonOption = None,
    fmt: FormatOption = "table",
    home: HomeOption = None,
) -> None:
    """公開前の確認（予算は使いません。値は一例で、公開時に改めて雑音を加えます） (preview; spends nothing)."""
    hub = Hub(hub_home(home))
    table = preview_opendata(hub, login(hub, user, terminal), release, epsilon)
    render(table.header, table.rows, table.notes, fmt)
    _summary(table)
    err.print("公開時に改めて雑音を加えます (publishing draws the noise afresh)", markup=False)


@opendata_app.command("publish")
@handle_errors
def publish_command(
    release: ReleaseArgument,
    user: UserOption,
    terminal: TerminalOption,
    output: Annotated[Path, typer.Option("--out", help="書き出す CSV (the CSV to write)")],
    epsilon: EpsilonOption = None,
    home: HomeOption = None,
) -> None:
    """オープンデータとして公開（予算を使い、CSV と公表記録を書き出す） (publish: spends the budget)."""
    record_path = output.with_name(output.stem + ".record.json")
    for path in (output, record_path):
        if path.exists():
            raise CliInputError(
                f"{path} は既に存在します（上書きしません）", f"{path} exists; not overwriting", None
            )
    hub = Hub(hub_home(home))
    published = publish_opendata(hub, login(hub, user, terminal), release, epsilon)
    _write_new(output, published.content)
    _write_new(record_path, published.record_json)
    _summary(published.table)
    out.print(f"オープンデータ {published.opendata_id} を公開しました (published)", markup=False)
    out.print(f"CSV: SHA-256 {published.sha256}", markup=False)
    out.print(str(output), markup=False)
    out.print(str(record_path), markup=False)


def _summary(table: OpenDataTable) -> None:
    if table.error is not None:
        out.print(
            f"ε={table.epsilon:g}, δ=0; 誤差（{table.confidence:.0%}）±{table.error:.2f} / セル (per cell)",
            markup=False,
        )
    if table.budgets:
        out.print("プライバシー予算（使用済み / 総量 → 公開後の残り）", markup=False)
        out.print("(privacy budget: spent / total → left after publishing)", markup=False)
    for b in table.budgets:
        out.print(f"  {b.dataset} {b.fiscal_year}年度: {b.spent:g} / {b.total:g} → {b.after:g}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(opendata_app, name="opendata")

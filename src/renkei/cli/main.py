"""The ``renkei`` command."""

from __future__ import annotations

import typer

from renkei import __version__
from renkei.cli import access, analysis, applications, demo, hub, sending, web

app = typer.Typer(
    name="renkei",
    help="renkei (連携): 庁内データ連携基盤 — 共通基盤での仮名加工と、基盤での蓄積・分析。",
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


sending.register(app)
hub.register(app)
access.register(app)
applications.register(app)
analysis.register(app)
demo.register(app)
web.register(app)

if __name__ == "__main__":
    app()

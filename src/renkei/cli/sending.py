"""Commands of the sending side (共通基盤): sender init, extract, preview, synth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import typer

from renkei.cli.common import HomeOption, byte_progress, handle_errors, out, parse_date, sender_home, styled
from renkei.cli.listing import listing, print_wide
from renkei.manifest import Manifest
from renkei.sending.extract import extract as run_extract
from renkei.sending.extract import open_source
from renkei.sending.pseudonym import Pseudonymizer, create_key, load_key
from renkei.sending.seal import create_sender, load_sender, trust_hub
from renkei.sending.synth import generate_city
from renkei.sending.transform import Transformer
from renkei.spec import load_spec

sender = typer.Typer(help="共通基盤（送信側）の設定 (sending-side setup)", no_args_is_help=True)

SpecOption = Annotated[Path, typer.Option("--spec", help="データセット仕様 YAML (dataset spec)")]
InputOption = Annotated[Path, typer.Option("--input", help="基幹系システムの CSV (core-system export)")]
AsOfOption = Annotated[str, typer.Option("--as-of", help="基準日 YYYY-MM-DD (as-of date)")]


@sender.command("init")
@handle_errors
def sender_init(
    name: Annotated[str, typer.Option("--name", help="この送信元の名前 (sender name)")] = "kyotsu-kiban",
    home: HomeOption = None,
) -> None:
    """仮名化鍵と署名鍵を作成する。既存の鍵は上書きしない (create the keys; never overwrites)."""
    where = sender_home(home)
    path = create_key(where)
    identity = create_sender(where, name)
    out.print(f"仮名化鍵を作成しました (created the pseudonymization key): {path}")
    out.print(
        "この鍵を失うと、以後の pid は過去の pid と連結できません。安全な場所に控えを保管してください。"
    )
    out.print("(If this key is lost, new pids no longer link to earlier ones. Keep a protected backup.)")
    out.print("基盤の管理者に次を登録してもらってください (ask the hub admin to run):")
    out.print(f"  renkei hub add-sender --name {name} --public-key {identity.public_key_b64}", soft_wrap=True)


@sender.command("trust-hub")
@handle_errors
def sender_trust_hub(
    recipient: Annotated[str, typer.Argument(help="基盤の公開鍵 age1… (`renkei hub public-key`)")],
    home: HomeOption = None,
) -> None:
    """パッケージの暗号化先として基盤の公開鍵を登録する (register the hub's public key)."""
    path = trust_hub(sender_home(home), recipient)
    out.print(
        f"基盤の公開鍵を登録しました。以後の抽出は封緘されます (registered; extracts are now sealed): {path}"
    )


@sender.command("public-key")
@handle_errors
def sender_public_key(home: HomeOption = None) -> None:
    """この送信元の署名公開鍵を表示 (print this sender's Ed25519 public key)."""
    typer.echo(load_sender(sender_home(home)).public_key_b64)


@handle_errors
def extract(
    spec: SpecOption,
    input_file: InputOption,
    as_of: AsOfOption,
    out_dir: Annotated[Path, typer.Option("--out", help="出力先ディレクトリ (output directory)")],
    home: HomeOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="要約を表示しない (no summary)")] = False,
) -> None:
    """仮名加工して Parquet とマニフェストを書き出す (pseudonymize a core-system export)."""
    dataset = load_spec(spec)
    with byte_progress(f"{dataset.dataset} 仮名加工中", enabled=not quiet) as progress:
        result = run_extract(dataset, input_file, parse_date(as_of), out_dir, sender_home(home), progress)
    if not quiet:
        print_summary(result.manifest, result.directory)
        if result.package is not None:
            out.print(f"封緘パッケージ (sealed package for the hub): {result.package}")


@handle_errors
def preview(
    spec: SpecOption,
    input_file: InputOption,
    as_of: AsOfOption,
    limit: Annotated[int, typer.Option("--limit", min=0, help="表示する行数、0 で全行 (rows; 0 = all)")] = 20,
    fmt: Annotated[Literal["table", "csv"], typer.Option("--format", help="table または csv")] = "table",
    home: HomeOption = None,
) -> None:
    """加工結果を標準出力に表示する。何も書き込まない (print transformed rows; writes nothing)."""
    dataset = load_spec(spec)
    transformer = Transformer(dataset, parse_date(as_of), Pseudonymizer(load_key(sender_home(home))))
    batches: list[pa.RecordBatch] = []
    remaining = limit or None
    for raw in open_source(dataset, input_file):
        batch = raw if remaining is None else raw.slice(0, remaining)
        if remaining is not None:
            remaining -= batch.num_rows
        batches.append(transformer.transform(batch))
        if remaining == 0:
            break
    transformer.raise_on_leftovers()
    table = pa.Table.from_batches(batches, schema=dataset.output_schema)
    if fmt == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        sys.stdout.buffer.write(sink.getvalue().to_pybytes())
        return
    rows = [["" if v is None else str(v) for v in row.values()] for row in table.to_pylist()]
    print_wide(
        out, table.column_names, rows, title=f"{dataset.title} ({dataset.dataset}) — {table.num_rows} 行"
    )


@handle_errors
def synth(
    residents: Annotated[int, typer.Option("--residents", min=1, help="住民数 (number of residents)")],
    as_of: AsOfOption,
    out_dir: Annotated[Path, typer.Option("--out", help="出力先 (output directory)")],
    seed: Annotated[int, typer.Option("--seed", help="乱数の種 (random seed)")] = 0,
    years: Annotated[
        int, typer.Option("--years", min=1, help="年次スナップショットの数 (annual snapshots)")
    ] = 1,
) -> None:
    """架空の神戸型都市の基幹系 CSV を生成する (generate a synthetic Kobe-like city)."""
    snapshots = generate_city(residents, parse_date(as_of), out_dir, seed=seed, years=years)
    view = listing("基準日 (as-of)", "データセット (dataset)", "行数 (rows)", "ファイル (file)")
    for snap in snapshots:
        for name, path in snap.paths.items():
            view.add_row(snap.as_of.isoformat(), name, f"{snap.rows[name]:,}", str(path))
    out.print(view)


def print_summary(manifest: Manifest, directory: Path) -> None:
    """A readable account of one extract: rows, and what each rule did to each column."""
    out.print(
        styled(manifest.title, "bold"),
        f"({manifest.dataset}) 基準日 {manifest.as_of}: "
        f"{manifest.rows_in:,} 行を読み、{manifest.rows_out:,} 行を書きました (rows in/out) → {directory}",
    )
    view = listing("列 (column)", "処理 (treatment)", "件数 (rows per outcome)")
    treatments = {c.source: c.treatment for c in manifest.columns}
    for source, outcomes in manifest.counts.items():
        detail = ", ".join(f"{k} {v:,}" for k, v in outcomes.items())
        view.add_row(source, treatments.get(source, ""), detail)
    out.print(view)


def register(app: typer.Typer) -> None:
    app.add_typer(sender, name="sender")
    app.command("extract")(extract)
    app.command("preview")(preview)
    app.command("synth")(synth)

"""Issue 9, item 6: nothing unexpected enters the vault through a package's Parquet metadata.

Each hostile package is signed by the registered sender (so only the Parquet check can stop it): the real
extract's ``data.parquet`` is rewritten with something the extract never writes, the manifest's hash and size
follow, and it is sealed again.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from renkei.hub.importer import PackageRejectedError
from renkei.hub.parquet_check import unexpected_content
from renkei.identifiers import my_number_check_digit
from renkei.manifest import DATA_FILE, MANIFEST_FILE, Manifest, sha256_file
from renkei.sending.seal import load_sender, seal
from renkei.spec import DatasetSpec, bundled_specs, load_spec
from tests.integration.hub_world import World, make_world
from tests.integration.test_import import expect_rejected
from tests.support import parquet_footer as footer

AS_OF = dt.date(2025, 1, 1)
DATASET = "juki"
NAME = "山田 太郎"
MY_NUMBER = "12345678901" + str(my_number_check_digit("12345678901"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"), residents=200, years=1)


@pytest.fixture(scope="module")
def spec() -> DatasetSpec:
    return load_spec(bundled_specs()[DATASET])


def text_column(spec: DatasetSpec) -> str:
    """A kept text column (the leftover scan covers it; pseudonymous IDs it skips)."""
    return next(
        f.name
        for f in spec.output_schema
        if pa.types.is_string(f.type) and f.name not in spec.pseudonym_columns
    )


def forge(world: World, tmp_path: Path, name: str, rewrite: Callable[[Path], None]) -> Path:
    """The real extract, its Parquet file rewritten by ``rewrite``, signed and sealed by the real sender."""
    good = world.extract(DATASET, AS_OF, out=f"forge-{name}").with_suffix("")
    work = tmp_path / name
    shutil.copytree(good, work)
    rewrite(work / DATA_FILE)
    manifest = Manifest.from_json((work / MANIFEST_FILE).read_text(encoding="utf-8"))
    updates = {
        "content_sha256": sha256_file(work / DATA_FILE),
        "data_bytes": (work / DATA_FILE).stat().st_size,
    }
    manifest = Manifest.model_validate(manifest.model_dump(by_alias=True) | updates)
    (work / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    sender = load_sender(world.sender_home)
    return seal(work, manifest, sender, world.hub.package_recipient(), tmp_path / f"{name}.rkpkg")


def rewritten(
    path: Path, *, schema: Callable[[pa.Schema], pa.Schema] | None = None, file: dict[str, str] | None = None
) -> None:
    """Write the same rows again, as pyarrow lets anyone: another Arrow schema, extra file metadata."""
    table = pq.read_table(path)
    if schema is not None:
        table = table.cast(schema(table.schema))
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        writer.write_table(table)
        if file:
            writer.add_key_value_metadata(file)


def edited_footer(path: Path, edit: Callable[[footer.Struct], None]) -> None:
    tree = footer.read_footer(path)
    edit(tree)
    footer.write_footer(path, tree)


def with_field_metadata(schema: pa.Schema) -> pa.Schema:
    first = schema.field(0)
    return schema.set(0, first.with_metadata({"宛名番号": "000123456", "氏名": NAME}))


def with_column_chunk_metadata(tree: footer.Struct) -> None:
    for meta in footer.column_meta(tree, 0):
        meta.set(footer.META_KEY_VALUE, footer.LIST, footer.key_values({"宛名番号": "000123456"}))


def with_file_path(tree: footer.Struct) -> None:
    for row_group in tree.get(footer.FILE_ROW_GROUPS).items:
        row_group.get(footer.ROW_GROUP_COLUMNS).items[0].set(
            footer.CHUNK_FILE_PATH, footer.BINARY, b"x.parquet"
        )


def with_created_by(tree: footer.Struct) -> None:
    tree.set(footer.FILE_CREATED_BY, footer.BINARY, NAME.encode())


def with_root_name(tree: footer.Struct) -> None:
    tree.get(footer.FILE_SCHEMA).items[0].set(footer.SCHEMA_ELEMENT_NAME, footer.BINARY, NAME.encode())


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "file key": (lambda p: rewritten(p, file={"作成者": NAME}), r"file metadata has the key '作成者'"),
    "schema key": (
        lambda p: rewritten(p, schema=lambda s: s.with_metadata({"担当": NAME})),
        r"schema metadata has the key '担当'",
    ),
    "field key": (
        lambda p: rewritten(p, schema=with_field_metadata),
        r"metadata of column '[^']+' has the key '宛名番号'.*has the key '氏名'",
    ),
    "column chunk key": (
        lambda p: edited_footer(p, with_column_chunk_metadata),
        r"column chunk metadata of '[^']+' has the key '宛名番号'",
    ),
    "external file": (lambda p: edited_footer(p, with_file_path), "points to another file"),
    "created_by": (lambda p: edited_footer(p, with_created_by), "created_by is not pyarrow's: '山田 太郎'"),
    "root name": (lambda p: edited_footer(p, with_root_name), "schema root named '山田 太郎'"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_metadata_the_extract_never_writes_is_refused(world: World, tmp_path: Path, case: str) -> None:
    rewrite, reason = HOSTILE[case]
    package = forge(world, tmp_path, case.replace(" ", "-"), rewrite)
    expect_rejected(world, package, reason)
    entry = world.hub.audit.tail(1)[0]
    assert entry.reason is not None and DATA_FILE in entry.reason


def test_identifier_shaped_metadata_is_named_by_its_kind_never_by_its_value(
    world: World, tmp_path: Path
) -> None:
    """The scan of the data runs over the metadata too, and the refusal carries no identifier."""
    package = forge(
        world,
        tmp_path,
        "identifier-value",
        lambda p: rewritten(p, file={"備考": f"個人番号 {MY_NUMBER}", "090-1234-5678": "x"}),
    )
    with pytest.raises(PackageRejectedError) as refused:
        world.import_(package)
    message = str(refused.value)
    assert "'備考' (holding a value shaped like my_number)" in message
    assert "個人番号の形の値を含む" in message  # Japanese first
    assert (
        "<識別符号の形の値 (identifier-shaped)>" in message
        and "(holding a value shaped like phone)" in message
    )
    assert MY_NUMBER not in message and "090-1234-5678" not in message
    reason = world.hub.audit.tail(1)[0].reason or ""
    assert MY_NUMBER not in reason and "090-1234-5678" not in reason


def test_statistics_holding_an_identifier_are_refused(
    world: World, tmp_path: Path, spec: DatasetSpec
) -> None:
    """A writer can put any value in a column chunk's min/max; the data there is clean."""
    column = text_column(spec)
    index = spec.output_schema.names.index(column)

    def forged_max(tree: footer.Struct) -> None:
        for meta in footer.column_meta(tree, index):
            stats = meta.get(footer.META_STATISTICS)
            stats.set(footer.STATS_MAX_VALUE, footer.BINARY, "090-1234-5678 まで".encode())

    package = forge(world, tmp_path, "statistics", lambda p: edited_footer(p, forged_max))
    expect_rejected(
        world, package, rf"statistics \(min/max\) of column '{column}' hold a value shaped like phone"
    )


def test_the_extracts_own_parquet_passes_and_holds_only_the_arrow_schema(
    world: World, spec: DatasetSpec
) -> None:
    """The positive control: what the extract writes is exactly what the check allows."""
    data = world.extract(DATASET, AS_OF, out="plain").with_suffix("") / DATA_FILE
    parquet = pq.ParquetFile(data)
    assert set(parquet.metadata.metadata or {}) == {b"ARROW:schema"}
    assert unexpected_content(parquet, spec) is None
    assert world.import_(data.parent.with_suffix(".rkpkg")).status == "imported"
